/*
 * preview.cpp
 *	  preview(): what each stage would change now, read-only, with the same
 *	  predicates the stages write with.  It asks no liveness source and
 *	  sends nothing.
 */
#include "stages/stages.hpp"

#include "stages/predicates.hpp"

namespace rs
{

namespace
{

/* Silence of a runtime or age of a task, to the second. */
#define AGE(col) "pg_catalog.date_trunc('second', pg_catalog.now() - " col ")::text"

/*
 * $1 stale threshold, $2 grace, $3 dispatch timeout, $4 running timeout,
 * $5 queued TTL, $6 queued batch, $7 offline TTL, $8 task batch, $9 GC batch.
 */
const char *const preview_sql =
	"(SELECT 0::int8 AS stage, r.id, 'online, last seen ' || " AGE("r.last_seen_at") " || ' ago' AS detail,"
	"  r.last_seen_at AS k1, r.id AS k2"
	" FROM @S@.agent_runtime r WHERE " STALE_RUNTIME_PREDICATE("$1") ")"
	" UNION ALL"
	" (SELECT 1, t.id, t.status || ' on offline runtime ' || r.id::text, t.created_at, t.id"
	"  FROM @S@.agent_task_queue t JOIN @S@.agent_runtime r ON r.id = t.runtime_id"
	"  WHERE " OFFLINE_TASK_PREDICATE("$2") " ORDER BY t.created_at, t.id LIMIT $8)"
	" UNION ALL"
	" (SELECT 2, t.id, t.status || ' for ' || "
	AGE("CASE t.status WHEN 'dispatched' THEN t.dispatched_at ELSE t.started_at END") ","
	"   t.created_at, t.id"
	"  FROM @S@.agent_task_queue t LEFT JOIN @S@.agent_runtime r ON r.id = t.runtime_id"
	"  WHERE " STALE_TASK_PREDICATE("$3", "$4", "$2", "$1")
	"  ORDER BY t.created_at, t.id LIMIT $8)"
	" UNION ALL"
	" (SELECT 3, t.id, 'queued for ' || " AGE("t.created_at") ", t.created_at, t.id"
	"  FROM @S@.agent_task_queue t WHERE " QUEUED_EXPIRY_PREDICATE("$5")
	"  ORDER BY t.created_at, t.id LIMIT $6)"
	" UNION ALL"
	" (SELECT 4, r.id, 'offline, last seen ' || " AGE("r.last_seen_at") " || ' ago', r.last_seen_at, r.id"
	"  FROM @S@.agent_runtime r WHERE " GC_PREDICATE("$7")
	"  ORDER BY r.last_seen_at, r.id LIMIT $9)"
	" ORDER BY 1, 4, 5";

}							/* namespace */

std::vector<PreviewRow>
preview_stages(SweepContext &ctx)
{
	const Settings &s = ctx.settings;
	std::vector<PreviewRow> rows;
	Args		args;
	uint64		n;

	args.interval_us(SweepContext::us(s.stale_threshold))
		.interval_us(SweepContext::us(s.reconnect_grace))
		.interval_us(SweepContext::us(s.dispatch_timeout))
		.interval_us(SweepContext::us(s.running_timeout))
		.interval_us(SweepContext::us(s.queued_ttl))
		.int4(s.queued_batch_size)
		.interval_us(SweepContext::us(s.offline_ttl))
		.int4(s.task_batch_size)
		.int4(s.gc_batch_size);
	n = execute(ctx.sql(preview_sql), args, true);
	for (uint64 r = 0; r < n; r++)
		rows.push_back(PreviewRow{static_cast<Stage>(row::int64_value(r, 1) & 0xFF),
								  row::uuid(r, 2), row::text(r, 3)});
	return rows;
}

}							/* namespace rs */
