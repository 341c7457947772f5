/*
 * failed_tasks.hpp
 *	  What happens after a batch of tasks has been failed: retries, issue
 *	  rollback, task events and the agent reconcile.
 */
#pragma once

#include "sweep_context.hpp"

#include <optional>
#include <string>
#include <vector>

namespace rs
{

/*
 * Handles tasks that a stage has just failed, in (created_at, id) order:
 * retry child, issue rollback, task:queued/task:failed events, then one
 * agent reconcile per distinct agent.  Returns one row per task.
 */
std::vector<FailedTaskRow> handle_failed_tasks(SweepContext &ctx, const std::vector<Uuid> &failed);

/*
 * Sets each agent's status from its active tasks and emits agent:status.
 * Returns the new status of the first agent (nullopt when it does not exist).
 */
std::optional<std::string> reconcile_agents(SweepContext &ctx, const std::vector<Uuid> &agents);

}							/* namespace rs */
