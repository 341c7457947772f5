/*
 * stale_tasks.cpp
 *	  Stage 2: tasks dispatched or running for too long fail with reason
 *	  timeout, even on a runtime that is still online (a hung agent, a lost
 *	  completion report).  waiting_local_directory is never touched here.
 */
#include "stages/stages.hpp"

#include "stages/predicates.hpp"

#include "failed_tasks.hpp"

namespace rs
{

namespace
{

/*
 * $1 dispatch timeout, $2 running timeout, $3 batch size, $4 reconnect
 * grace, $5 stale threshold.  The write re-checks status and age on the
 * locked row; the runtime side of the rule was read with the candidates.
 */
const char *const fail_sql =
	"WITH c AS ("
	"  SELECT t.id FROM @S@.agent_task_queue t"
	"  LEFT JOIN @S@.agent_runtime r ON r.id = t.runtime_id"
	"  WHERE " STALE_TASK_PREDICATE("$1", "$2", "$4", "$5")
	"  ORDER BY t.created_at, t.id LIMIT $3"
	"  FOR UPDATE OF t SKIP LOCKED)"
	" UPDATE @S@.agent_task_queue t"
	" SET status = 'failed', failure_reason = 'timeout', error = 'task timed out',"
	"     completed_at = pg_catalog.now()@LEASE_CLEAR@"
	" FROM c WHERE t.id = c.id"
	"   AND ((t.status = 'dispatched' AND t.dispatched_at < pg_catalog.now() - $1@LEASE_GUARD@)"
	"        OR (t.status = 'running' AND t.started_at < pg_catalog.now() - $2))"
	" RETURNING t.id";

/*
 * After the write: candidates that are still there were held by a client
 * (SKIP LOCKED); parameters as above, $3 how many to look for.
 */
const char *const skipped_sql =
	"SELECT pg_catalog.count(*) FROM (SELECT 1 FROM @S@.agent_task_queue t"
	"  LEFT JOIN @S@.agent_runtime r ON r.id = t.runtime_id"
	"  WHERE " STALE_TASK_PREDICATE("$1", "$2", "$4", "$5") " LIMIT $3) s";

}							/* namespace */

std::vector<FailedTaskRow>
stage_stale_tasks(SweepContext &ctx, int64 dispatch_timeout_us, int64 running_timeout_us, int max_tasks)
{
	std::vector<Uuid> failed;
	Args		args;
	uint64		n;

	args.interval_us(dispatch_timeout_us)
		.interval_us(running_timeout_us)
		.int4(max_tasks)
		.interval_us(SweepContext::us(ctx.settings.reconnect_grace))
		.interval_us(SweepContext::us(ctx.settings.stale_threshold));
	n = execute(ctx.sql(fail_sql), args);
	for (uint64 r = 0; r < n; r++)
		failed.push_back(row::uuid(r, 1));
	ctx.tally.add(C_TASKS_FAILED_TIMEOUT, failed.size());
	if (n < static_cast<uint64>(max_tasks))
	{
		/* Not read-only: a fresh snapshot that sees the write (see count_skipped). */
		execute(ctx.sql(skipped_sql), args);
		ctx.tally.add(C_ROWS_SKIPPED, static_cast<uint64>(row::int64_value(0, 1)));
	}
	return handle_failed_tasks(ctx, failed);
}

}							/* namespace rs */
