/*
 * sweep.cpp
 *	  One stage with the settings' thresholds, and the check that the
 *	  application tables are there at all.  The worker and sweep() both
 *	  come through run_stage; only the transaction around it differs.
 */
#include "stages/stages.hpp"

extern "C"
{
#include "utils/lsyscache.h"
}

namespace rs
{

uint64
run_stage(Stage stage, SweepContext &ctx)
{
	const Settings &s = ctx.settings;
	uint64		affected = 0;

	switch (stage)
	{
		case STAGE_STALE_RUNTIMES:
			affected = stage_stale_runtimes(ctx, SweepContext::us(s.stale_threshold)).size();
			break;
		case STAGE_OFFLINE_TASKS:
			affected = stage_offline_tasks(ctx, SweepContext::us(s.reconnect_grace),
										   s.task_batch_size).size();
			break;
		case STAGE_STALE_TASKS:
			affected = stage_stale_tasks(ctx, SweepContext::us(s.dispatch_timeout),
										 SweepContext::us(s.running_timeout),
										 s.task_batch_size).size();
			break;
		case STAGE_QUEUED_EXPIRY:
			affected = stage_queued_expiry(ctx, SweepContext::us(s.queued_ttl),
										   s.queued_batch_size).size();
			break;
		case STAGE_RUNTIME_GC:
			affected = stage_runtime_gc(ctx, SweepContext::us(s.offline_ttl),
										s.gc_batch_size).size();
			break;
		case STAGE_COUNT:
			break;
	}
	ctx.tally.affected = affected;
	return affected;
}

void
count_skipped(SweepContext &ctx, const char *sql, int64 interval_us, uint64 done, int max_rows)
{
	Args		args;

	if (done >= static_cast<uint64>(max_rows))
		return;
	args.interval_us(interval_us).int4(max_rows);
	/*
	 * Not read-only: a read-only SPI query reuses the snapshot of the
	 * transaction's (worker) or the calling statement's (sweep()) start,
	 * which does not see this stage's write, so every row just written
	 * would count as skipped.
	 */
	execute(ctx.sql(sql), args);
	ctx.tally.add(C_ROWS_SKIPPED, static_cast<uint64>(row::int64_value(0, 1)));
}

namespace
{

const char *const required_tables[] = {
	"agent_runtime", "agent_task_queue", "agent", "issue", "chat_session", "autopilot_run", "autopilot"
};

}							/* namespace */

bool
app_schema_ready(const Settings &settings, std::string *missing)
{
	for (const char *table : required_tables)
	{
		Oid			relid = pg_call([&]() {
			Oid			nsp = get_namespace_oid(settings.app_schema.c_str(), true);

			return OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;
		});

		if (!OidIsValid(relid))
		{
			*missing = settings.app_schema + "." + table;
			return false;
		}
	}
	return true;
}

}							/* namespace rs */
