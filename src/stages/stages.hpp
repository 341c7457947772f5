/*
 * stages.hpp
 *	  The sweep stages.  Each selects candidates, writes with a re-check of
 *	  its predicate (so a concurrent heartbeat, claim or completion wins), and
 *	  hands failed tasks on to failed-task handling.  A stage never knows
 *	  whether the worker or an SQL call runs it.
 */
#pragma once

#include "sweep_context.hpp"

#include <vector>

namespace rs
{

/* Stage 1: online runtimes silent longer than stale_after_us go offline. */
std::vector<RuntimeRow> stage_stale_runtimes(SweepContext &ctx, int64 stale_after_us);

/* In-flight tasks of offline runtimes silent longer than grace_us fail. */
std::vector<FailedTaskRow> stage_offline_tasks(SweepContext &ctx, int64 grace_us, int max_tasks);

/* Stage 2: dispatched/running tasks past their timeouts fail. */
std::vector<FailedTaskRow> stage_stale_tasks(SweepContext &ctx, int64 dispatch_timeout_us,
											 int64 running_timeout_us, int max_tasks);

/* Stage 3: queued tasks older than ttl_us fail, oldest first, one batch. */
std::vector<Uuid> stage_queued_expiry(SweepContext &ctx, int64 ttl_us, int max_tasks);

/* Stage 4: offline runtimes silent longer than ttl_us that nothing needs are deleted. */
std::vector<RuntimeRow> stage_runtime_gc(SweepContext &ctx, int64 ttl_us, int max_runtimes);

/*
 * Counts, after a stage's write, the candidates still there: rows a client
 * held (SKIP LOCKED) or changed first.  sql counts rows of the stage's
 * predicate with $1 an interval and $2 a limit; it runs only when the
 * write did not fill its batch (done < max_rows), else the rest is simply
 * the next batch.
 */
void		count_skipped(SweepContext &ctx, const char *sql, int64 interval_us,
						  uint64 done, int max_rows);

/* Runs one stage with the settings of ctx; returns the rows it affected. */
uint64		run_stage(Stage stage, SweepContext &ctx);

/* What each stage would change now, changing nothing. */
std::vector<PreviewRow> preview_stages(SweepContext &ctx);

/* Whether the application tables exist in the configured schema. */
bool		app_schema_ready(const Settings &settings, std::string *missing);

}							/* namespace rs */
