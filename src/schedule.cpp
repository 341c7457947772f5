/*
 * schedule.cpp
 *	  Deadline-driven scheduling: one cheap statement after each tick finds
 *	  the next moment anything can become due.
 */
#include "schedule.hpp"

namespace rs
{

namespace
{

/*
 * Each branch is the oldest not-yet-due row of one stage plus its
 * threshold: an index-backed min() when the advised partial indexes exist
 * (see missing_indexes()), a scan otherwise.  $1 stale threshold, $2
 * dispatch timeout, $3 running timeout, $4 queued TTL, $5 offline TTL.
 */
const char *const deadline_sql =
	"SELECT LEAST("
	" (SELECT pg_catalog.min(r.last_seen_at) FROM @S@.agent_runtime r"
	"   WHERE r.status = 'online' AND r.last_seen_at >= pg_catalog.now() - $1) + $1,"
	" (SELECT pg_catalog.min(t.dispatched_at) FROM @S@.agent_task_queue t"
	"   WHERE t.status = 'dispatched' AND t.dispatched_at >= pg_catalog.now() - $2) + $2,"
	" (SELECT pg_catalog.min(t.started_at) FROM @S@.agent_task_queue t"
	"   WHERE t.status = 'running' AND t.started_at >= pg_catalog.now() - $3) + $3,"
	" (SELECT pg_catalog.min(t.created_at) FROM @S@.agent_task_queue t"
	"   WHERE t.status = 'queued' AND t.created_at >= pg_catalog.now() - $4) + $4,"
	" (SELECT pg_catalog.min(r.last_seen_at) FROM @S@.agent_runtime r"
	"   WHERE r.status = 'offline' AND r.last_seen_at >= pg_catalog.now() - $5) + $5)";

}							/* namespace */

TimestampTz
next_row_deadline(SweepContext &ctx)
{
	const Settings &s = ctx.settings;
	Args		args;

	args.interval_us(SweepContext::us(s.stale_threshold))
		.interval_us(SweepContext::us(s.dispatch_timeout))
		.interval_us(SweepContext::us(s.running_timeout))
		.interval_us(SweepContext::us(s.queued_ttl))
		.interval_us(SweepContext::us(s.offline_ttl));
	execute(ctx.sql(deadline_sql), args, true);
	if (row::is_null(0, 1))
		return 0;
	/* A row is due strictly after its threshold: wake just past it. */
	return static_cast<TimestampTz>(row::int64_value(0, 1)) + 1000;
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
