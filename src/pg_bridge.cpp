/*
 * pg_bridge.cpp
 *	  The C++/PostgreSQL boundary: error conversion in both directions.
 */
#include "pg_bridge.hpp"

namespace rs
{

/* Keeps the caught error and a copy of its message for what(). */
PgError::PgError(ErrorData *edata)
	: edata_(edata),
	  message_(edata && edata->message ? edata->message : "PostgreSQL error")
{
}

/*
 * The only place that runs PG_TRY on behalf of C++ code.  A C++ exception
 * escaping fn would leave PG_exception_stack pointing into this dead frame,
 * so it is caught inside the try block and rethrown after PG_END_TRY.
 */
void
pg_guard_impl(void (*fn) (void *), void *arg)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ErrorData  *volatile edata = nullptr;
	std::exception_ptr cpp_error;	/* address-taken: survives the longjmp */

	PG_TRY();
	{
		try
		{
			fn(arg);
		}
		catch (...)
		{
			cpp_error = std::current_exception();
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();

	if (edata != nullptr)
		throw PgError(edata);
	if (cpp_error)
		std::rethrow_exception(cpp_error);
}

/* Turns a caught exception into ereport(ERROR); no C++ object is alive here. */
void
report_cpp_failure(ErrorData *pg_error, const char *message)
{
	if (pg_error != nullptr)
		ReThrowError(pg_error);
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("runtime_sweeper: %s", message)));
	pg_unreachable();
}

bool
try_in_subtransaction(const std::function<void()> &fn, std::string *error)
{
	MemoryContext outer_context = CurrentMemoryContext;
	ResourceOwner outer_owner = CurrentResourceOwner;
	auto		restore = [&]() {
		MemoryContextSwitchTo(outer_context);
		CurrentResourceOwner = outer_owner;
	};

	pg_guard([]() { BeginInternalSubTransaction(nullptr); });
	MemoryContextSwitchTo(outer_context);
	try
	{
		fn();
	}
	catch (const PgError &e)
	{
		if (error)
			*error = e.what();
		pg_guard([]() { RollbackAndReleaseCurrentSubTransaction(); });
		restore();
		return false;
	}
	catch (...)
	{
		pg_guard([]() { RollbackAndReleaseCurrentSubTransaction(); });
		restore();
		throw;
	}
	pg_guard([]() { ReleaseCurrentSubTransaction(); });
	restore();
	return true;
}

/* Connects to SPI; the error path of SPI_connect is guarded. */
SpiConnection::SpiConnection() : connected_(false)
{
	int			rc = pg_call([]() { return SPI_connect(); });

	if (rc != SPI_OK_CONNECT)
		throw Failure("SPI_connect failed");
	connected_ = true;
}

/*
 * Finishes SPI on the normal path.  While an exception unwinds, the
 * (sub)transaction abort that follows cleans SPI up; finishing here would pop
 * a connection that the abort is about to pop again.
 */
SpiConnection::~SpiConnection()
{
	if (connected_ && std::uncaught_exceptions() == 0)
		SPI_finish();
}

}							/* namespace rs */
