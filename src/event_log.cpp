/*
 * event_log.cpp
 *	  Appending to and trimming runtime_sweeper.event_log.
 */
#include "event_log.hpp"

namespace rs
{

namespace
{

/* The advisory lock key that orders event-log writers ('RSWE'). */
const char *const lock_sql = "SELECT pg_catalog.pg_advisory_xact_lock(1381193541)";

const char *const append_sql =
	"INSERT INTO runtime_sweeper.event_log (channel, event) VALUES ($1, $2::json) RETURNING id";

/* Most rows one trim deletes: the table stays available to listeners. */
constexpr int TRIM_BATCH = 10000;

/* $1 retention age, $2 row cap (0: none), $3 batch. */
const char *const trim_sql =
	"WITH doomed AS ("
	"  SELECT l.id FROM runtime_sweeper.event_log l"
	"  WHERE l.created_at < pg_catalog.now() - $1"
	"     OR ($2 > 0 AND l.id <= (SELECT pg_catalog.max(m.id) FROM runtime_sweeper.event_log m) - $2)"
	"  ORDER BY l.id LIMIT $3)"
	" DELETE FROM runtime_sweeper.event_log l USING doomed WHERE l.id = doomed.id";

}							/* namespace */

int64
event_log_append(const std::string &channel, const std::string &event)
{
	Args		none;
	Args		args;

	execute(lock_sql, none);
	args.text(channel).text(event);
	execute(append_sql, args);
	return row::int64_value(0, 1);
}

uint64
event_log_trim(SweepContext &ctx)
{
	Args		args;

	args.interval_us(SweepContext::us(ctx.settings.event_log_retention))
		.int4(ctx.settings.event_log_max_rows)
		.int4(TRIM_BATCH);
	return execute(trim_sql, args);
}

}							/* namespace rs */
