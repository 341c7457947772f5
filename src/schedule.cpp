/*
 * schedule.cpp
 *	  Deadline-driven scheduling: one cheap statement before each tick says
 *	  which stages have work now and when the next row becomes due.
 */
#include "schedule.hpp"

#include "stages/predicates.hpp"

extern "C"
{
#include "utils/guc.h"
}

namespace rs
{

namespace
{

/*
 * $1 stale threshold, $2 dispatch timeout, $3 running timeout, $4 queued
 * TTL, $5 reconnect grace.  The EXISTS probes use the stages' own
 * predicates; each deadline branch is the oldest not-yet-due row of one
 * stage plus its threshold.  With the indexes missing_indexes() advises,
 * every part but the offline_tasks probe is an index probe whatever the
 * table sizes; that probe visits each offline runtime once (one probe of
 * the small in-flight index).  The stale-runtime and stale-task probes are
 * guarded by the oldest heartbeat / dispatch / start (one index probe
 * each): the planner cannot estimate "older than now() - $n", and without
 * the guard it scans every online runtime and every in-flight task to
 * prove that none is due.  The guard is implied by the predicate, so the
 * result is the same.
 */
const char *const look_ahead_sql =
	"SELECT"
	" COALESCE((SELECT pg_catalog.min(r.last_seen_at) FROM @S@.agent_runtime r"
	"           WHERE r.status = 'online') < pg_catalog.now() - $1, false)"
	" AND EXISTS (SELECT 1 FROM @S@.agent_runtime r WHERE " STALE_RUNTIME_PREDICATE("$1") "),"
	" EXISTS (SELECT 1 FROM @S@.agent_task_queue t JOIN @S@.agent_runtime r ON r.id = t.runtime_id"
	"         WHERE " OFFLINE_TASK_PREDICATE("$5") "),"
	" (COALESCE((SELECT pg_catalog.min(t.dispatched_at) FROM @S@.agent_task_queue t"
	"            WHERE t.status = 'dispatched') < pg_catalog.now() - $2, false)"
	"  OR COALESCE((SELECT pg_catalog.min(t.started_at) FROM @S@.agent_task_queue t"
	"               WHERE t.status = 'running') < pg_catalog.now() - $3, false))"
	" AND EXISTS (SELECT 1 FROM @S@.agent_task_queue t LEFT JOIN @S@.agent_runtime r ON r.id = t.runtime_id"
	"         WHERE " STALE_TASK_PREDICATE("$2", "$3", "$5", "$1") "),"
	" EXISTS (SELECT 1 FROM @S@.agent_task_queue t WHERE " QUEUED_EXPIRY_PREDICATE("$4") "),"
	" LEAST("
	"  (SELECT pg_catalog.min(r.last_seen_at) FROM @S@.agent_runtime r"
	"    WHERE r.status = 'online' AND r.last_seen_at >= pg_catalog.now() - $1) + $1,"
	"  (SELECT pg_catalog.min(t.dispatched_at) FROM @S@.agent_task_queue t"
	"    WHERE t.status = 'dispatched' AND t.dispatched_at >= pg_catalog.now() - $2) + $2,"
	"  (SELECT pg_catalog.min(t.started_at) FROM @S@.agent_task_queue t"
	"    WHERE t.status = 'running' AND t.started_at >= pg_catalog.now() - $3) + $3,"
	"  (SELECT pg_catalog.min(t.created_at) FROM @S@.agent_task_queue t"
	"    WHERE t.status = 'queued' AND t.created_at >= pg_catalog.now() - $4) + $4)";

}							/* namespace */

Outlook
look_ahead(SweepContext &ctx)
{
	const Settings &s = ctx.settings;
	Outlook		outlook;
	Args		args;

	args.interval_us(SweepContext::us(s.stale_threshold))
		.interval_us(SweepContext::us(s.dispatch_timeout))
		.interval_us(SweepContext::us(s.running_timeout))
		.interval_us(SweepContext::us(s.queued_ttl))
		.interval_us(SweepContext::us(s.reconnect_grace));

	/*
	 * Planned once, not every tick: with the thresholds as parameters the
	 * plan cache keeps choosing custom plans, whose planning (about 1 ms)
	 * costs more than running the statement.  Local to this transaction.
	 */
	pg_guard([]() {
		set_config_option("plan_cache_mode", "force_generic_plan", PGC_USERSET, PGC_S_SESSION,
						  GUC_ACTION_LOCAL, true, 0, false);
	});
	execute(ctx.sql(look_ahead_sql), args, true);
	outlook.due[STAGE_STALE_RUNTIMES] = row::boolean(0, 1);
	outlook.due[STAGE_OFFLINE_TASKS] = row::boolean(0, 2);
	outlook.due[STAGE_STALE_TASKS] = row::boolean(0, 3);
	outlook.due[STAGE_QUEUED_EXPIRY] = row::boolean(0, 4);
	/* A row is due strictly after its threshold: wake just past it. */
	if (!row::is_null(0, 5))
		outlook.next_deadline = static_cast<TimestampTz>(row::int64_value(0, 5)) + 1000;
	return outlook;
}

/*
 * The longest the worker may sleep.  A row that appears (or changes status)
 * just after a tick becomes due one threshold later at the earliest; waking
 * at least that often lets the next tick see it and schedule its deadline
 * exactly, so detection is never late by more than the scheduling slack.
 */
static int64
max_sleep_us(const Settings &s)
{
	int64		us = static_cast<int64>(s.interval_ms) * 1000;
	const int	thresholds[] = {s.stale_threshold, s.dispatch_timeout, s.running_timeout,
		s.queued_ttl, s.offline_ttl};

	for (int t : thresholds)
		us = Min(us, SweepContext::us(t));
	return us;
}

TimestampTz
next_tick_time(const Settings &settings, TimestampTz last_tick_start, TimestampTz row_deadline)
{
	TimestampTz by_interval = last_tick_start + max_sleep_us(settings);

	if (row_deadline != 0 && row_deadline < by_interval)
		return row_deadline;
	return by_interval;
}

long
delay_until_ms(TimestampTz due, TimestampTz now)
{
	if (due <= now)
		return 0;
	return static_cast<long>((due - now + 999) / 1000);
}

}							/* namespace rs */
