/*
 * failed_tasks.cpp
 *	  Failed-task handling, set-based.
 *
 * The original handles each failed task with several round trips (retry
 * insert, issue lookup, active check, rollback, workspace lookups, agent
 * refresh).  Here a batch costs three statements whatever its size:
 *
 *	1. one INSERT ... SELECT creates every retry child, in batch order, with
 *	   ON CONFLICT DO NOTHING so that a child that would break the
 *	   one-pending-task index is simply not created;
 *	2. one statement rolls issues back and returns, per task, what its
 *	   events need (workspace, retry child, rollback);
 *	3. one statement reconciles the batch's agents.
 *
 * The per-issue rules of the original's sequential loop ("evaluated once per
 * batch", "no retry created for it earlier in the batch") reduce to: the
 * issue is decided by its first task in batch order, which must not have
 * created a retry, and no task of the issue may be active apart from the
 * retry children of later tasks (which did not exist yet when the original
 * evaluated the issue).
 */
#include "failed_tasks.hpp"

#include <unordered_set>

extern "C"
{
#include "mb/pg_wchar.h"
}

namespace rs
{

namespace
{

/* The retry rules of SPEC section 2, on a task row aliased t. */
#define RETRY_ELIGIBLE \
	"t.status = 'failed'" \
	" AND t.failure_reason IN ('runtime_offline', 'runtime_recovery', 'timeout', 'codex_semantic_inactivity')" \
	" AND t.attempt < t.max_attempts" \
	" AND t.autopilot_run_id IS NULL" \
	" AND (t.issue_id IS NOT NULL OR t.chat_session_id IS NOT NULL)"

/* Timestamps in events: RFC 3339 in UTC. */
#define RFC3339(col) \
	"pg_catalog.to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

const char *const create_retries_sql =
	"INSERT INTO @S@.agent_task_queue AS q"
	" (id, agent_id, runtime_id, issue_id, chat_session_id, autopilot_run_id, status, priority,"
	"  trigger_comment_id, trigger_summary, context, session_id, work_dir, attempt, max_attempts,"
	"  parent_task_id, is_leader_task, force_fresh_session, created_at)"
	" SELECT pg_catalog.gen_random_uuid(), t.agent_id, t.runtime_id, t.issue_id, t.chat_session_id,"
	"  t.autopilot_run_id, 'queued', t.priority, t.trigger_comment_id, t.trigger_summary, t.context,"
	"  CASE WHEN t.failure_reason = 'codex_semantic_inactivity' THEN NULL ELSE t.session_id END,"
	"  CASE WHEN t.failure_reason = 'codex_semantic_inactivity' THEN NULL ELSE t.work_dir END,"
	"  t.attempt + 1, t.max_attempts, t.id, t.is_leader_task,"
	"  t.failure_reason = 'codex_semantic_inactivity', pg_catalog.now()"
	" FROM @S@.agent_task_queue t"
	" WHERE t.id = ANY ($1) AND " RETRY_ELIGIBLE
	" ORDER BY t.created_at, t.id"
	" ON CONFLICT DO NOTHING"
	" RETURNING q.id, q.parent_task_id";

/*
 * The checks against the batch's retry children are NOT IN (uncorrelated,
 * never NULL), not NOT EXISTS: PostgreSQL hashes such a subquery once,
 * whereas an anti-join may be planned as a nested loop over the CTE when
 * the tables have no statistics yet (a burst of new rows), which costs
 * batch size squared: 10 000 failed tasks then took half a minute.
 */
const char *const rollback_and_describe_sql =
	"WITH b AS ("
	"  SELECT t.* FROM @S@.agent_task_queue t WHERE t.id = ANY ($1)),"
	" kids AS ("
	"  SELECT k.child, k.parent FROM ROWS FROM (pg_catalog.unnest($2::uuid[]), pg_catalog.unnest($3::uuid[])) AS k(child, parent)),"
	" first_of_issue AS ("
	"  SELECT DISTINCT ON (b.issue_id) b.issue_id, b.id FROM b"
	"  WHERE b.issue_id IS NOT NULL ORDER BY b.issue_id, b.created_at, b.id),"
	" rolled AS ("
	"  UPDATE @S@.issue i SET status = 'todo', updated_at = pg_catalog.now()"
	"  FROM first_of_issue f"
	"  WHERE i.id = f.issue_id AND i.status = 'in_progress'"
	"   AND f.id NOT IN (SELECT kids.parent FROM kids)"
	"   AND NOT EXISTS (SELECT 1 FROM @S@.agent_task_queue a"
	"                   WHERE a.issue_id = f.issue_id"
	"                     AND a.status IN ('queued', 'dispatched', 'running', 'waiting_local_directory')"
	"                     AND a.id NOT IN (SELECT kids.child FROM kids))"
	"  RETURNING f.id AS task_id)"
	" SELECT t.id, t.agent_id, t.issue_id, t.chat_session_id, t.failure_reason, kids.child,"
	"  COALESCE(iss.workspace_id, cs.workspace_id, ap.workspace_id,"
	"   CASE WHEN pg_catalog.jsonb_typeof(t.context) = 'object'"
	"         AND t.context ->> 'type' = 'quick_create'"
	"         AND t.context ->> 'workspace_id' ~*"
	"             '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
	"        THEN (t.context ->> 'workspace_id')::uuid END),"
	"  rolled.task_id IS NOT NULL,"
	"  (" RETRY_ELIGIBLE ")"
	" FROM b t"
	" LEFT JOIN kids ON kids.parent = t.id"
	" LEFT JOIN @S@.issue iss ON iss.id = t.issue_id"
	" LEFT JOIN @S@.chat_session cs ON cs.id = t.chat_session_id"
	" LEFT JOIN @S@.autopilot_run ar ON ar.id = t.autopilot_run_id"
	" LEFT JOIN @S@.autopilot ap ON ap.id = ar.autopilot_id"
	" LEFT JOIN rolled ON rolled.task_id = t.id"
	" ORDER BY t.created_at, t.id";

/*
 * $1: the agents in order of first appearance; $2: quiet (write only on a
 * change).  Returns every existing agent with its new status and, when it
 * was written, the row for the agent map.
 */
const char *const reconcile_agents_sql =
	"WITH o AS ("
	"  SELECT a.id, pg_catalog.min(a.ord) AS ord"
	"  FROM pg_catalog.unnest($1::uuid[]) WITH ORDINALITY AS a(id, ord) GROUP BY a.id),"
	" n AS ("
	"  SELECT g.id, o.ord, g.status AS old_status,"
	"   CASE WHEN EXISTS (SELECT 1 FROM @S@.agent_task_queue t WHERE t.agent_id = g.id"
	"                     AND t.status IN ('dispatched', 'running', 'waiting_local_directory'))"
	"        THEN 'working' ELSE 'idle' END AS status"
	"  FROM @S@.agent g JOIN o ON o.id = g.id),"
	" u AS ("
	"  UPDATE @S@.agent g SET status = n.status, updated_at = pg_catalog.now()"
	"  FROM n WHERE g.id = n.id AND (NOT $2 OR g.status IS DISTINCT FROM n.status)"
	"  RETURNING g.id, g.workspace_id, g.runtime_id, g.name, g.description, g.avatar_url,"
	"   g.runtime_mode, g.runtime_config::text AS runtime_config, g.visibility, g.status,"
	"   g.max_concurrent_tasks, g.owner_id, " RFC3339("g.created_at") " AS created_at,"
	"   " RFC3339("g.updated_at") " AS updated_at, " RFC3339("g.archived_at") " AS archived_at,"
	"   g.archived_by)"
	" SELECT n.id, n.status, u.id IS NOT NULL, u.workspace_id, u.runtime_id, u.name, u.description,"
	"  u.avatar_url, u.runtime_mode, u.runtime_config, u.visibility, u.status,"
	"  u.max_concurrent_tasks, u.owner_id, u.created_at, u.updated_at, u.archived_at, u.archived_by"
	" FROM n LEFT JOIN u ON u.id = n.id ORDER BY n.ord";

/* Longest failure_reason of a task:failed event shortened to fit a NOTIFY. */
constexpr int SHORT_REASON = 200;

/* text cut to at most max bytes on a character boundary (a trigger may set any text). */
std::string
clipped(const std::string &text, int max)
{
	if (text.size() <= static_cast<size_t>(max))
		return text;

	int			len = pg_call([&]() {
		return pg_mbcliplen(text.c_str(), static_cast<int>(Min(text.size(), static_cast<size_t>(INT_MAX))), max);
	});

	return text.substr(0, static_cast<size_t>(len));
}

/* A UUID column as top-level payload text: NULL is "". */
std::string
uuid_or_empty(uint64 r, int col)
{
	return row::is_null(r, col) ? std::string() : uuid_text(row::uuid(r, col));
}

/* A column inside the agent map: NULL is JSON null. */
void
map_field(JsonObject &o, const char *key, uint64 r, int col)
{
	o.str_or_null(key, !row::is_null(r, col), row::text(r, col));
}

/* A numeric or JSON column inside the agent map, copied as JSON. */
void
map_raw(JsonObject &o, const char *key, uint64 r, int col)
{
	if (row::is_null(r, col))
		o.null(key);
	else
		o.raw(key, row::text(r, col));
}

/* One task's row of rollback_and_describe_sql, copied out of SPI. */
struct TaskOutcome
{
	Uuid		task_id;
	Uuid		agent_id;
	std::string issue_id;
	std::string chat_session_id;
	std::string failure_reason;
	bool		has_retry;
	Uuid		retry_id;
	bool		has_workspace;
	std::string workspace_id;
	bool		rolled_back;
	bool		retry_eligible;
};

}							/* namespace */

std::optional<std::string>
reconcile_agents(SweepContext &ctx, const std::vector<Uuid> &agents)
{
	std::optional<std::string> first_status;

	if (agents.empty())
		return first_status;

	Args		args;
	std::string sql = ctx.sql(reconcile_agents_sql);

	args.uuid_array(agents).boolean(ctx.settings.quiet_agent_reconcile);

	uint64		n = execute(sql, args);

	/* Copy everything out before any event is sent (the log reuses SPI). */
	struct AgentEvent
	{
		std::string workspace_id;
		std::string payload;
		std::string fallback;
	};
	std::vector<AgentEvent> pending;

	for (uint64 r = 0; r < n; r++)
	{
		std::string agent_id = uuid_text(row::uuid(r, 1));
		std::string status = row::text(r, 2);

		if (agent_id == uuid_text(agents[0]))
			first_status = status;
		if (!row::boolean(r, 3))
			continue;

		JsonObject	map;

		map.str("id", agent_id);
		map_field(map, "workspace_id", r, 4);
		map_field(map, "runtime_id", r, 5);
		map_field(map, "name", r, 6);
		map_field(map, "description", r, 7);
		map_field(map, "avatar_url", r, 8);
		map_field(map, "runtime_mode", r, 9);
		map_raw(map, "runtime_config", r, 10);
		map_field(map, "visibility", r, 11);
		map_field(map, "status", r, 12);
		map_raw(map, "max_concurrent_tasks", r, 13);
		map_field(map, "owner_id", r, 14);
		map_field(map, "created_at", r, 15);
		map_field(map, "updated_at", r, 16);
		map_field(map, "archived_at", r, 17);
		map_field(map, "archived_by", r, 18);

		AgentEvent	e;

		e.workspace_id = uuid_or_empty(r, 4);
		e.payload = JsonObject().str("agent_id", agent_id).str("status", status)
			.raw("agent", map.finish()).finish();
		e.fallback = JsonObject().str("agent_id", agent_id).str("status", status)
			.boolean("truncated", true).finish();
		pending.push_back(std::move(e));
	}
	ctx.tally.add(C_AGENTS_RECONCILED, pending.size());
	for (const AgentEvent &e : pending)
		ctx.events.emit("agent:status", e.workspace_id, e.payload, e.fallback);
	return first_status;
}

std::vector<FailedTaskRow>
handle_failed_tasks(SweepContext &ctx, const std::vector<Uuid> &failed)
{
	std::vector<FailedTaskRow> result;

	if (failed.empty())
		return result;

	std::vector<Uuid> children;
	std::vector<Uuid> parents;

	{
		Args		args;
		uint64		n;

		args.uuid_array(failed);
		n = execute(ctx.sql(create_retries_sql), args);
		for (uint64 r = 0; r < n; r++)
		{
			children.push_back(row::uuid(r, 1));
			parents.push_back(row::uuid(r, 2));
		}
	}

	std::vector<TaskOutcome> outcomes;

	{
		Args		args;
		uint64		n;

		args.uuid_array(failed).uuid_array(children).uuid_array(parents);
		n = execute(ctx.sql(rollback_and_describe_sql), args);
		outcomes.reserve(n);
		for (uint64 r = 0; r < n; r++)
		{
			TaskOutcome o;

			o.task_id = row::uuid(r, 1);
			o.agent_id = row::uuid(r, 2);
			o.issue_id = uuid_or_empty(r, 3);
			o.chat_session_id = uuid_or_empty(r, 4);
			o.failure_reason = row::text(r, 5);
			o.has_retry = !row::is_null(r, 6);
			o.retry_id = row::uuid(r, 6);
			o.has_workspace = !row::is_null(r, 7);
			o.workspace_id = uuid_or_empty(r, 7);
			o.rolled_back = row::boolean(r, 8);
			o.retry_eligible = row::boolean(r, 9);
			outcomes.push_back(std::move(o));
		}
	}

	std::vector<Uuid> agents;
	std::unordered_set<std::string> seen_agents;

	for (const TaskOutcome &o : outcomes)
	{
		std::string task_id = uuid_text(o.task_id);
		std::string agent_id = uuid_text(o.agent_id);

		if (o.has_retry)
		{
			ctx.tally.add(C_RETRIES_CREATED);
			if (o.has_workspace)
			{
				JsonObject	p;

				p.str("task_id", uuid_text(o.retry_id))
					.str("agent_id", agent_id)
					.str("issue_id", o.issue_id)
					.str("status", "queued");
				if (!o.chat_session_id.empty())
					p.str("chat_session_id", o.chat_session_id);
				ctx.events.emit("task:queued", o.workspace_id, p.finish());
			}
		}
		else if (o.retry_eligible)
			ctx.tally.add(C_RETRIES_SKIPPED);

		if (o.rolled_back)
		{
			ctx.tally.add(C_ISSUES_ROLLED_BACK);
			if (ctx.settings.issue_events && o.has_workspace)
				ctx.events.emit("issue:updated", o.workspace_id,
								JsonObject().str("issue_id", o.issue_id)
								.str("status", "todo")
								.str("prev_status", "in_progress")
								.boolean("status_changed", true)
								.finish());
		}

		if (o.has_workspace)
		{
			const std::string &reason = o.failure_reason.empty() ? std::string("agent_error") : o.failure_reason;

			/*
			 * A reason too long for a NOTIFY (an application trigger may
			 * store any text) is cut; the event still names the task.
			 */
			ctx.events.emit("task:failed", o.workspace_id,
							JsonObject().str("task_id", task_id)
							.str("agent_id", agent_id)
							.str("issue_id", o.issue_id)
							.str("status", "failed")
							.str("failure_reason", reason)
							.finish(),
							JsonObject().str("task_id", task_id)
							.str("agent_id", agent_id)
							.str("issue_id", o.issue_id)
							.str("status", "failed")
							.str("failure_reason", clipped(reason, SHORT_REASON))
							.boolean("truncated", true)
							.finish());
		}

		if (seen_agents.insert(agent_id).second)
			agents.push_back(o.agent_id);

		result.push_back(FailedTaskRow{o.task_id, o.has_retry, o.retry_id});
	}

	reconcile_agents(ctx, agents);
	return result;
}

}							/* namespace rs */
