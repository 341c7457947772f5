/*
 * sql_api.cpp
 *	  The SQL-callable functions of SPEC section 5.  Thin: each runs the same
 *	  stage code as the worker, in the caller's transaction, with the
 *	  session's settings unless an argument overrides them.
 */
#include "stages/stages.hpp"

#include "failed_tasks.hpp"

namespace rs
{

namespace
{

/* A materialized result set for a set-returning function. */
class ResultSet
{
public:
	/*
	 * flags: MAT_SRF_USE_EXPECTED_DESC for a function returning a set of one
	 * scalar column (RETURNS TABLE with one column), whose result type is not
	 * a row type.
	 */
	explicit ResultSet(FunctionCallInfo fcinfo, bits32 flags = 0)
		: rsinfo_(reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo))
	{
		pg_guard([&]() { InitMaterializedSRF(fcinfo, flags); });
	}

	/* Adds one row; values must stay valid for the duration of the call. */
	void put(Datum *values, bool *nulls)
	{
		pg_guard([&]() { tuplestore_putvalues(rsinfo_->setResult, rsinfo_->setDesc, values, nulls); });
	}

private:
	ReturnSetInfo *rsinfo_;
};

/*
 * Microseconds of an interval argument; NULL means the setting.  A negative
 * one is the caller's mistake (invalid_parameter_value), not an internal error.
 */
int64
interval_arg(FunctionCallInfo fcinfo, int argno, const char *argname, int setting_seconds)
{
	if (PG_ARGISNULL(argno))
		return SweepContext::us(setting_seconds);

	const Interval *iv = PG_GETARG_INTERVAL_P(argno);
	int64		us = iv->time + (static_cast<int64>(iv->month) * DAYS_PER_MONTH + iv->day) * USECS_PER_DAY;

	if (us < 0)
		pg_guard([&]() {
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("runtime_sweeper: %s must not be negative", argname)));
		});
	return us;
}

/* A positive batch size argument; NULL means the setting; below 1 is invalid_parameter_value. */
int
batch_arg(FunctionCallInfo fcinfo, int argno, const char *argname, int setting)
{
	if (PG_ARGISNULL(argno))
		return setting;

	int			n = PG_GETARG_INT32(argno);

	if (n < 1)
		pg_guard([&]() {
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("runtime_sweeper: %s must be at least 1", argname)));
		});
	return n;
}

/* Publishes what a stage called through SQL did. */
void
count_stage(Stage stage, SweepContext &ctx, uint64 affected)
{
	ctx.tally.affected = affected;
	stats_stage_done(stage, ctx.tally, 0);
}

/* Returns runtime rows (runtime_id, workspace_id). */
void
put_runtimes(ResultSet &rs, const std::vector<RuntimeRow> &rows)
{
	for (const RuntimeRow &r : rows)
	{
		Uuid		id = r.runtime_id;
		Uuid		ws = r.workspace_id;
		Datum		values[2] = {UUIDPGetDatum(&id), UUIDPGetDatum(&ws)};
		bool		nulls[2] = {false, false};

		rs.put(values, nulls);
	}
}

/* Returns task rows (task_id, retry_task_id). */
void
put_failed_tasks(ResultSet &rs, const std::vector<FailedTaskRow> &rows)
{
	for (const FailedTaskRow &r : rows)
	{
		Uuid		id = r.task_id;
		Uuid		retry = r.retry_id;
		Datum		values[2] = {UUIDPGetDatum(&id), UUIDPGetDatum(&retry)};
		bool		nulls[2] = {false, !r.has_retry};

		rs.put(values, nulls);
	}
}

}							/* namespace */

}							/* namespace rs */

using namespace rs;

extern "C"
{

PG_FUNCTION_INFO_V1(runtime_sweeper_sweep);
PG_FUNCTION_INFO_V1(runtime_sweeper_mark_stale_runtimes_offline);
PG_FUNCTION_INFO_V1(runtime_sweeper_fail_offline_runtime_tasks);
PG_FUNCTION_INFO_V1(runtime_sweeper_fail_stale_tasks);
PG_FUNCTION_INFO_V1(runtime_sweeper_expire_queued_tasks);
PG_FUNCTION_INFO_V1(runtime_sweeper_gc_offline_runtimes);
PG_FUNCTION_INFO_V1(runtime_sweeper_refresh_agent_status);
PG_FUNCTION_INFO_V1(runtime_sweeper_preview);
PG_FUNCTION_INFO_V1(runtime_sweeper_wake);
PG_FUNCTION_INFO_V1(runtime_sweeper_preloaded);

/*
 * sweep(): one whole tick in the caller's transaction, each stage in a
 * subtransaction so that a failing stage is rolled back alone (with its
 * events), reported as a WARNING, and the later stages still run.
 */
Datum
runtime_sweeper_sweep(PG_FUNCTION_ARGS)
{
	return cpp_entry([&]() {
		ResultSet	rs(fcinfo);
		Settings	settings = Settings::current();
		SpiConnection spi;

		for (int i = 0; i < STAGE_COUNT; i++)
		{
			Stage		stage = static_cast<Stage>(i);
			SweepContext ctx(settings);
			uint64		affected = 0;
			std::string error;
			bool		ok = try_in_subtransaction([&]() { affected = run_stage(stage, ctx); }, &error);

			if (ok)
				stats_stage_done(stage, ctx.tally, 0);
			else
			{
				stats_stage_failed(stage, error.c_str());
				pg_guard([&]() {
					ereport(WARNING,
							(errmsg("runtime_sweeper: stage %s failed: %s", stage_name(stage), error.c_str())));
				});
			}

			Datum		values[2];
			bool		nulls[2] = {false, !ok};

			values[0] = pg_call([&]() { return CStringGetTextDatum(stage_name(stage)); });
			values[1] = Int64GetDatum(static_cast<int64>(affected));
			rs.put(values, nulls);
		}
		return (Datum) 0;
	});
}

/* mark_stale_runtimes_offline(stale_after): stage 1 with its task failing. */
Datum
runtime_sweeper_mark_stale_runtimes_offline(PG_FUNCTION_ARGS)
{
	return cpp_entry([&]() {
		ResultSet	rs(fcinfo);
		SweepContext ctx(Settings::current());
		int64		stale_after = interval_arg(fcinfo, 0, "stale_after", ctx.settings.stale_threshold);
		SpiConnection spi;
		auto		rows = stage_stale_runtimes(ctx, stale_after);

		count_stage(STAGE_STALE_RUNTIMES, ctx, rows.size());
		put_runtimes(rs, rows);
		return (Datum) 0;
	});
}

/* fail_offline_runtime_tasks(grace, max_tasks): the offline_tasks stage. */
Datum
runtime_sweeper_fail_offline_runtime_tasks(PG_FUNCTION_ARGS)
{
	return cpp_entry([&]() {
		ResultSet	rs(fcinfo);
		SweepContext ctx(Settings::current());
		int64		grace = interval_arg(fcinfo, 0, "grace", ctx.settings.reconnect_grace);
		int			max_tasks = batch_arg(fcinfo, 1, "max_tasks", ctx.settings.task_batch_size);
		SpiConnection spi;
		auto		rows = stage_offline_tasks(ctx, grace, max_tasks);

		count_stage(STAGE_OFFLINE_TASKS, ctx, rows.size());
		put_failed_tasks(rs, rows);
		return (Datum) 0;
	});
}

/* fail_stale_tasks(dispatch_timeout, running_timeout): stage 2. */
Datum
runtime_sweeper_fail_stale_tasks(PG_FUNCTION_ARGS)
{
	return cpp_entry([&]() {
		ResultSet	rs(fcinfo);
		SweepContext ctx(Settings::current());
		int64		dispatch = interval_arg(fcinfo, 0, "dispatch_timeout", ctx.settings.dispatch_timeout);
		int64		running = interval_arg(fcinfo, 1, "running_timeout", ctx.settings.running_timeout);
		SpiConnection spi;
		auto		rows = stage_stale_tasks(ctx, dispatch, running, ctx.settings.task_batch_size);

		count_stage(STAGE_STALE_TASKS, ctx, rows.size());
		put_failed_tasks(rs, rows);
		return (Datum) 0;
	});
}

/* expire_queued_tasks(ttl, max_tasks): stage 3, one batch. */
Datum
runtime_sweeper_expire_queued_tasks(PG_FUNCTION_ARGS)
{
	return cpp_entry([&]() {
		ResultSet	rs(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
		SweepContext ctx(Settings::current());
		int64		ttl = interval_arg(fcinfo, 0, "ttl", ctx.settings.queued_ttl);
		int			max_tasks = batch_arg(fcinfo, 1, "max_tasks", ctx.settings.queued_batch_size);
		SpiConnection spi;
		auto		rows = stage_queued_expiry(ctx, ttl, max_tasks);

		count_stage(STAGE_QUEUED_EXPIRY, ctx, rows.size());
		for (Uuid id : rows)
		{
			Datum		values[1] = {UUIDPGetDatum(&id)};
			bool		nulls[1] = {false};

			rs.put(values, nulls);
		}
		return (Datum) 0;
	});
}

/* gc_offline_runtimes(ttl): stage 4. */
Datum
runtime_sweeper_gc_offline_runtimes(PG_FUNCTION_ARGS)
{
	return cpp_entry([&]() {
		ResultSet	rs(fcinfo);
		SweepContext ctx(Settings::current());
		int64		ttl = interval_arg(fcinfo, 0, "ttl", ctx.settings.offline_ttl);
		SpiConnection spi;
		auto		rows = stage_runtime_gc(ctx, ttl, ctx.settings.gc_batch_size);

		count_stage(STAGE_RUNTIME_GC, ctx, rows.size());
		put_runtimes(rs, rows);
		return (Datum) 0;
	});
}

/* refresh_agent_status(agent_id): the agent reconcile; NULL for an unknown agent. */
Datum
runtime_sweeper_refresh_agent_status(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();

	bool		found = false;
	Datum		result = cpp_entry([&]() {
		SweepContext ctx(Settings::current());
		Uuid		agent;

		memcpy(&agent, PG_GETARG_UUID_P(0), sizeof(agent));

		std::optional<std::string> status;

		/*
		 * SPI is finished before the result is built: a text palloc'd while
		 * connected would live in SPI's procedure context and be freed by
		 * SPI_finish before the caller reads it.
		 */
		{
			SpiConnection spi;

			status = reconcile_agents(ctx, {agent});
		}
		stats_count(ctx.tally);
		if (!status)
			return (Datum) 0;
		found = true;
		return pg_call([&]() { return CStringGetTextDatum(status->c_str()); });
	});

	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/* preview(): what each stage would change now. */
Datum
runtime_sweeper_preview(PG_FUNCTION_ARGS)
{
	return cpp_entry([&]() {
		ResultSet	rs(fcinfo);
		SweepContext ctx(Settings::current());
		SpiConnection spi;
		std::vector<PreviewRow> rows = preview_stages(ctx);

		for (PreviewRow &r : rows)
		{
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			pg_guard([&]() {
				values[0] = CStringGetTextDatum(stage_name(r.stage));
				values[2] = CStringGetTextDatum(r.detail.c_str());
			});
			values[1] = UUIDPGetDatum(&r.id);
			rs.put(values, nulls);
		}
		return (Datum) 0;
	});
}

/* wake(): sets the latch of this database's worker. */
Datum
runtime_sweeper_wake(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(stats_wake_worker(MyDatabaseId));
}

/* Whether the library was loaded by shared_preload_libraries (a worker can run). */
Datum
runtime_sweeper_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(stats_available());
}

}							/* extern "C" */
