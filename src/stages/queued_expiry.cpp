/*
 * queued_expiry.cpp
 *	  Stage 3: tasks queued longer than the TTL fail with reason
 *	  queued_expired, oldest first, one bounded batch per transaction.
 *	  Rows a claimer holds (FOR UPDATE SKIP LOCKED on its side too) are
 *	  skipped, and status and age are checked again at the write.
 */
#include "stages/stages.hpp"

#include "stages/predicates.hpp"

#include "failed_tasks.hpp"

namespace rs
{

namespace
{

/* $1 TTL, $2 batch size. */
const char *const expire_sql =
	"WITH c AS ("
	"  SELECT t.id FROM @S@.agent_task_queue t"
	"  WHERE " QUEUED_EXPIRY_PREDICATE("$1")
	"  ORDER BY t.created_at, t.id LIMIT $2"
	"  FOR UPDATE SKIP LOCKED)"
	" UPDATE @S@.agent_task_queue t"
	" SET status = 'failed', failure_reason = 'queued_expired', error = 'task expired in queue',"
	"     completed_at = pg_catalog.now()@LEASE_CLEAR@"
	" FROM c WHERE t.id = c.id"
	"   AND " QUEUED_EXPIRY_PREDICATE("$1")
	" RETURNING t.id";

/*
 * After the write: candidates that are still there were held by a claimer
 * (SKIP LOCKED); $1 TTL, $2 how many to look for.
 */
const char *const skipped_sql =
	"SELECT pg_catalog.count(*) FROM (SELECT 1 FROM @S@.agent_task_queue t"
	"  WHERE " QUEUED_EXPIRY_PREDICATE("$1") " LIMIT $2) s";

}							/* namespace */

std::vector<Uuid>
stage_queued_expiry(SweepContext &ctx, int64 ttl_us, int max_tasks)
{
	std::vector<Uuid> failed;
	Args		args;
	uint64		n;

	args.interval_us(ttl_us).int4(max_tasks);
	n = execute(ctx.sql(expire_sql), args);
	for (uint64 r = 0; r < n; r++)
		failed.push_back(row::uuid(r, 1));
	ctx.tally.add(C_TASKS_FAILED_QUEUED_EXPIRED, failed.size());
	count_skipped(ctx, skipped_sql, ttl_us, n, max_tasks);

	/*
	 * RETURNING gives no order; hand back the tasks in the order they were
	 * handled (oldest first), as the other task stages do.
	 */
	std::vector<FailedTaskRow> handled = handle_failed_tasks(ctx, failed);
	std::vector<Uuid> ordered;

	for (const FailedTaskRow &task : handled)
		ordered.push_back(task.task_id);
	return ordered;
}

}							/* namespace rs */
