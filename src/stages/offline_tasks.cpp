/*
 * offline_tasks.cpp
 *	  In-flight tasks (dispatched, running, waiting_local_directory) of
 *	  offline runtimes fail with reason runtime_offline.
 *
 * The original only did this in a tick that had just flipped some runtime,
 * so a runtime taken offline by its daemon's deregistration kept "running"
 * tasks for ever when nothing else went stale.  Here it is also a stage of
 * its own, bounded, run every tick.
 */
#include "stages/stages.hpp"

#include "stages/predicates.hpp"

#include "failed_tasks.hpp"

namespace rs
{

namespace
{

/*
 * The runtime row is share-locked too: a heartbeat that committed since the
 * candidates were read makes the lock re-check the runtime (now online: the
 * task is left alone), and one in progress makes the task be skipped.
 *
 * $1 grace: the runtime must have been silent (last_seen_at, or updated_at
 * when it never heartbeated) for at least this long; $2 batch size.
 */
const char *const fail_sql =
	"WITH c AS ("
	"  SELECT t.id FROM @S@.agent_task_queue t"
	"  JOIN @S@.agent_runtime r ON r.id = t.runtime_id"
	"  WHERE " OFFLINE_TASK_PREDICATE("$1")
	"  ORDER BY t.created_at, t.id LIMIT $2"
	"  FOR UPDATE OF t SKIP LOCKED FOR SHARE OF r SKIP LOCKED)"
	" UPDATE @S@.agent_task_queue t"
	" SET status = 'failed', failure_reason = 'runtime_offline', error = 'runtime went offline',"
	"     wait_reason = NULL, completed_at = pg_catalog.now()@LEASE_CLEAR@"
	" FROM c WHERE t.id = c.id"
	"   AND t.status IN ('dispatched', 'running', 'waiting_local_directory')"
	" RETURNING t.id";

/*
 * After the write: candidates that are still there were held by a client
 * (SKIP LOCKED); $1 grace, $2 how many to look for.
 */
const char *const skipped_sql =
	"SELECT pg_catalog.count(*) FROM (SELECT 1 FROM @S@.agent_task_queue t"
	"  JOIN @S@.agent_runtime r ON r.id = t.runtime_id"
	"  WHERE " OFFLINE_TASK_PREDICATE("$1") " LIMIT $2) s";

}							/* namespace */

std::vector<FailedTaskRow>
stage_offline_tasks(SweepContext &ctx, int64 grace_us, int max_tasks)
{
	std::vector<Uuid> failed;
	Args		args;
	uint64		n;

	args.interval_us(grace_us).int4(max_tasks);
	n = execute(ctx.sql(fail_sql), args);
	for (uint64 r = 0; r < n; r++)
		failed.push_back(row::uuid(r, 1));
	ctx.tally.add(C_TASKS_FAILED_RUNTIME_OFFLINE, failed.size());
	count_skipped(ctx, skipped_sql, grace_us, n, max_tasks);
	return handle_failed_tasks(ctx, failed);
}

}							/* namespace rs */
