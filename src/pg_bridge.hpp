/*
 * pg_bridge.hpp
 *	  The boundary between C++ and PostgreSQL.
 *
 * PostgreSQL reports errors with longjmp; C++ unwinds with exceptions.  The
 * two must never cross: a longjmp over a C++ frame skips its destructors, and
 * an exception through a PostgreSQL frame corrupts its error stack.  Every
 * file of this extension includes PostgreSQL through this header and crosses
 * the boundary only through the helpers below:
 *
 *	 rs::pg_guard(f)	run PostgreSQL code (which may ereport(ERROR)) from
 *						C++; the error comes out as rs::PgError.
 *	 rs::cpp_entry(f)	run C++ from a PostgreSQL entry point; any exception
 *						becomes ereport(ERROR) after the C++ scope is closed.
 */
#pragma once

extern "C"
{
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include <exception>
#include <functional>
#include <string>
#include <utility>

namespace rs
{

/* A PostgreSQL error caught by pg_guard, carried through C++ frames. */
class PgError : public std::exception
{
public:
	explicit PgError(ErrorData *edata);
	const char *what() const noexcept override { return message_.c_str(); }
	ErrorData  *edata() const { return edata_; }
	int			sqlerrcode() const { return edata_ ? edata_->sqlerrcode : 0; }

private:
	ErrorData  *edata_;			/* palloc'd in the context current at the catch */
	std::string message_;
};

/* Runs fn(arg) inside PG_TRY; a PostgreSQL error is rethrown as PgError. */
void		pg_guard_impl(void (*fn) (void *), void *arg);

/*
 * Run PostgreSQL code from C++.  The callable must not create C++ objects
 * with destructors of its own (the error path longjmps out of it); it may
 * assign to variables of the caller, which live outside the PG_TRY frame.
 */
template <typename F>
void
pg_guard(F &&f)
{
	pg_guard_impl([](void *p) { (*static_cast<std::remove_reference_t<F> *>(p))(); },
				  static_cast<void *>(&f));
}

/* pg_guard for a call that returns a value. */
template <typename F>
auto
pg_call(F &&f) -> decltype(f())
{
	decltype(f()) result{};

	pg_guard([&]() { result = f(); });
	return result;
}

/*
 * Report a caught C++ exception as a PostgreSQL error.  Called only after the
 * catch block that held the exception has closed.
 */
[[noreturn]] void report_cpp_failure(ErrorData *pg_error, const char *message);

/*
 * Run C++ code from a PostgreSQL entry point (SQL function, worker, hook).
 * Exceptions are caught here and turned into ereport(ERROR) once no C++
 * object of this frame is alive any more.
 */
template <typename F>
auto
cpp_entry(F &&f) -> decltype(f())
{
	ErrorData  *pg_error = nullptr;
	char		message[512];

	message[0] = '\0';
	try
	{
		return f();
	}
	catch (const PgError &e)
	{
		pg_error = e.edata();
		strlcpy(message, e.what(), sizeof(message));
	}
	catch (const std::exception &e)
	{
		strlcpy(message, e.what(), sizeof(message));
	}
	catch (...)
	{
		strlcpy(message, "unknown C++ exception", sizeof(message));
	}
	report_cpp_failure(pg_error, message);
}

/* Thrown by extension code for a condition it detects itself. */
class Failure : public std::exception
{
public:
	explicit Failure(std::string message) : message_(std::move(message)) {}
	const char *what() const noexcept override { return message_.c_str(); }

private:
	std::string message_;
};

/* An SPI connection for the lifetime of a C++ scope. */
class SpiConnection
{
public:
	SpiConnection();
	~SpiConnection();
	SpiConnection(const SpiConnection &) = delete;
	SpiConnection &operator=(const SpiConnection &) = delete;

private:
	bool		connected_;
};

/*
 * Runs fn in an internal subtransaction.  A PostgreSQL error inside rolls the
 * subtransaction back (with its events) and comes back as false with the
 * message; the enclosing transaction goes on.  Other exceptions propagate
 * after the rollback.
 */
bool		try_in_subtransaction(const std::function<void()> &fn, std::string *error);

/* Copies a PostgreSQL string into C++ (NULL becomes ""). */
inline std::string
to_string(const char *s)
{
	return s ? std::string(s) : std::string();
}

}							/* namespace rs */
