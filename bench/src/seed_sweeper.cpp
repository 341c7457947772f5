// seed_sweeper: the application-side baseline of the benchmarks.
//
// The original sweeper (the Go code in shared/seed, runtime_sweeper.go, and
// the TaskService.HandleFailedTasks path it calls) re-implemented as a libpq
// client: the same statements (its SQL text, parameters passed the same
// way), in the same order, one statement per round trip in autocommit, with
// the same per-task handling:
//
//   tick = sweepStaleRuntimes, sweepStaleTasks, sweepExpiredQueuedTasks, gcRuntimes
//   HandleFailedTasks, per failed task in RETURNING order:
//     MaybeRetryFailedTask: CreateRetryTask, then task:queued for the child
//       (its workspace: GetIssue / GetChatSession / GetAutopilotRun+GetAutopilot)
//     GetIssue; if in_progress and not yet processed or retried in this
//       batch: HasActiveTaskForIssue, then UpdateIssueStatus(todo)
//     ResolveTaskWorkspaceID when the issue gave none
//     task:failed
//   then per distinct agent: RefreshAgentStatusFromTasks and agent:status.
// Events go out with SELECT pg_notify(channel, payload), one round trip each
// (the original publishes to its event bus; here the database carries them).
// Left out, which only makes the baseline cheaper than the original:
// metrics/analytics captures (their GetAgentRuntime lookups), the Redis
// liveness store, and the daemon wake-ups after a retry.
//
// Usage:
//   seed_sweeper --dsn DSN [--schema S] [--stale SECS] [--dispatch SECS]
//                [--running SECS] [--queued-ttl SECS] [--queued-batch N]
//                [--offline-ttl SECS] [--channel C] [--ticks N]
//                [--interval-ms MS] [--until-idle] [--max-seconds S] [--quiet]
//                [--warmup N]
// --warmup N runs N ticks first that are neither printed nor counted (the
// connection's statement cache and the catalog caches warm up, as in a
// long-running server).
// Prints one line per tick:
//   tick=N ms=T statements=K stale_runtimes_ms=.. stale_tasks_ms=.. queued_ms=..
//   gc_ms=.. runtimes_offline=.. tasks_failed=.. retries=.. events=.. runtimes_deleted=..
// and a last line "total ..." with the sums.  Defaults are the original's
// constants (150 s, 300 s, 9000 s, 7200 s, 500, 7 days).
#include "pq.hpp"

#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace
{

using pq::Conn;
using pq::Param;
using pq::Result;

// The original's statements (server/pkg/db/queries), unqualified: the
// schema comes from search_path.
const char *const SelectStaleOnlineRuntimes =
	"SELECT id, workspace_id, owner_id, daemon_id, provider FROM agent_runtime\n"
	"WHERE status = 'online'\n"
	"  AND last_seen_at < now() - make_interval(secs => $1::double precision)";

const char *const MarkRuntimesOfflineByIDs =
	"UPDATE agent_runtime\n"
	"SET status = 'offline', updated_at = now()\n"
	"WHERE status = 'online'\n"
	"  AND id = ANY($1::uuid[])\n"
	"  AND last_seen_at < now() - make_interval(secs => $2::double precision)\n"
	"RETURNING id, workspace_id, owner_id, daemon_id, provider";

const char *const FailTasksForOfflineRuntimes =
	"UPDATE agent_task_queue\n"
	"SET status = 'failed', completed_at = now(), error = 'runtime went offline',\n"
	"    failure_reason = 'runtime_offline',\n"
	"    wait_reason = NULL\n"
	"WHERE status IN ('dispatched', 'running', 'waiting_local_directory')\n"
	"  AND runtime_id IN (\n"
	"    SELECT id FROM agent_runtime WHERE status = 'offline'\n"
	"  )\n"
	"RETURNING *";

const char *const FailStaleTasks =
	"UPDATE agent_task_queue\n"
	"SET status = 'failed', completed_at = now(), error = 'task timed out',\n"
	"    failure_reason = 'timeout'\n"
	"WHERE (status = 'dispatched' AND dispatched_at < now() - make_interval(secs => $1::double precision))\n"
	"   OR (status = 'running' AND started_at < now() - make_interval(secs => $2::double precision))\n"
	"RETURNING *";

const char *const ExpireStaleQueuedTasks =
	"WITH victims AS (\n"
	"    SELECT id FROM agent_task_queue\n"
	"    WHERE status = 'queued'\n"
	"      AND created_at < now() - make_interval(secs => $1::double precision)\n"
	"    ORDER BY created_at ASC\n"
	"    LIMIT $2::int\n"
	"    FOR UPDATE SKIP LOCKED\n"
	")\n"
	"UPDATE agent_task_queue t\n"
	"SET status = 'failed',\n"
	"    completed_at = now(),\n"
	"    error = 'task expired in queue',\n"
	"    failure_reason = 'queued_expired'\n"
	"FROM victims v\n"
	"WHERE t.id = v.id\n"
	"  AND t.status = 'queued'\n"
	"  AND t.created_at < now() - make_interval(secs => $1::double precision)\n"
	"RETURNING t.*";

const char *const DeleteStaleOfflineRuntimes =
	"DELETE FROM agent_runtime\n"
	"WHERE status = 'offline'\n"
	"  AND last_seen_at < now() - make_interval(secs => $1::double precision)\n"
	"  AND id NOT IN (SELECT DISTINCT runtime_id FROM agent)\n"
	"RETURNING id, workspace_id";

const char *const CreateRetryTask =
	"INSERT INTO agent_task_queue (\n"
	"    agent_id, runtime_id, issue_id, chat_session_id, autopilot_run_id,\n"
	"    status, priority, trigger_comment_id, trigger_summary, context,\n"
	"    session_id, work_dir,\n"
	"    attempt, max_attempts, parent_task_id, force_fresh_session, is_leader_task\n"
	")\n"
	"SELECT\n"
	"    p.agent_id, p.runtime_id, p.issue_id, p.chat_session_id, p.autopilot_run_id,\n"
	"    'queued', p.priority, p.trigger_comment_id, p.trigger_summary, p.context,\n"
	"    CASE WHEN p.failure_reason IS NOT DISTINCT FROM 'codex_semantic_inactivity' THEN NULL ELSE p.session_id END,\n"
	"    CASE WHEN p.failure_reason IS NOT DISTINCT FROM 'codex_semantic_inactivity' THEN NULL ELSE p.work_dir END,\n"
	"    p.attempt + 1, p.max_attempts, p.id,\n"
	"    p.failure_reason IS NOT DISTINCT FROM 'codex_semantic_inactivity',\n"
	"    p.is_leader_task\n"
	"FROM agent_task_queue p\n"
	"WHERE p.id = $1\n"
	"RETURNING *";

const char *const GetIssue = "SELECT * FROM issue\nWHERE id = $1";
const char *const GetChatSession = "SELECT * FROM chat_session\nWHERE id = $1";
const char *const GetAutopilotRun = "SELECT * FROM autopilot_run\nWHERE id = $1";
const char *const GetAutopilot = "SELECT * FROM autopilot\nWHERE id = $1";

const char *const HasActiveTaskForIssue =
	"SELECT count(*) > 0 AS has_active FROM agent_task_queue\n"
	"WHERE issue_id = $1 AND status IN ('queued', 'dispatched', 'running', 'waiting_local_directory')";

const char *const UpdateIssueStatus =
	"UPDATE issue SET\n"
	"    status = $2,\n"
	"    updated_at = now()\n"
	"WHERE id = $1 AND workspace_id = $3\n"
	"RETURNING *";

const char *const RefreshAgentStatusFromTasks =
	"UPDATE agent AS a\n"
	"SET status = CASE WHEN EXISTS (\n"
	"    SELECT 1 FROM agent_task_queue q\n"
	"    WHERE q.agent_id = a.id AND q.status IN ('dispatched', 'running', 'waiting_local_directory')\n"
	") THEN 'working' ELSE 'idle' END,\n"
	"    updated_at = now()\n"
	"WHERE a.id = $1\n"
	"RETURNING *";

const char *const Publish = "SELECT pg_notify($1, $2)";

struct Options
{
	double		stale = 150, dispatch = 300, running = 9000, queued_ttl = 7200, offline_ttl = 7 * 24 * 3600.0;
	int			queued_batch = 500;
	std::string channel = "seed_events";
};

// A failed task as the RETURNING * row gave it.
struct Task
{
	std::string id, agent_id, status;
	Param		issue_id, chat_session_id, autopilot_run_id, failure_reason, context;
	int			attempt = 1, max_attempts = 2;
};

std::vector<Task>
tasks_of(const Result &r)
{
	std::vector<Task> out;

	for (int i = 0; i < r.rows(); i++)
	{
		Task		t;

		t.id = r.get(i, "id");
		t.agent_id = r.get(i, "agent_id");
		t.status = r.get(i, "status");
		t.issue_id = r.opt(i, "issue_id");
		t.chat_session_id = r.opt(i, "chat_session_id");
		t.autopilot_run_id = r.opt(i, "autopilot_run_id");
		t.failure_reason = r.opt(i, "failure_reason");
		t.context = r.opt(i, "context");
		t.attempt = atoi(r.get(i, "attempt").c_str());
		t.max_attempts = atoi(r.get(i, "max_attempts").c_str());
		out.push_back(t);
	}
	return out;
}

// The value of a top-level string key of a flat JSON object, crudely (the
// original parses the quick-create context client-side).
std::string
json_field(const std::string &doc, const std::string &key)
{
	std::string needle = "\"" + key + "\"";
	size_t		p = doc.find(needle);

	if (p == std::string::npos)
		return "";
	p = doc.find(':', p + needle.size());
	if (p == std::string::npos)
		return "";
	p = doc.find('"', p);
	if (p == std::string::npos)
		return "";
	size_t		e = doc.find('"', p + 1);
	return e == std::string::npos ? "" : doc.substr(p + 1, e - p - 1);
}

struct Tally
{
	long		runtimes_offline = 0, tasks_failed = 0, retries = 0, events = 0, runtimes_deleted = 0;
};

class Sweeper
{
  public:
	Sweeper(Conn &c, const Options &o) : db(c), opt(o) {}

	Tally		tally;
	double		stage_ms[4] = {0, 0, 0, 0};

	void		tick()
	{
		double		t;

		t = pq::now_us();
		sweep_stale_runtimes();
		stage_ms[0] = (pq::now_us() - t) / 1000;
		t = pq::now_us();
		sweep_stale_tasks();
		stage_ms[1] = (pq::now_us() - t) / 1000;
		t = pq::now_us();
		sweep_expired_queued_tasks();
		stage_ms[2] = (pq::now_us() - t) / 1000;
		t = pq::now_us();
		gc_runtimes();
		stage_ms[3] = (pq::now_us() - t) / 1000;
	}

  private:
	Conn	   &db;
	Options		opt;

	std::string secs(double s) { return std::to_string(s); }

	// A statement whose failure the original only logs.
	std::optional<Result> try_exec(const char *sql, const std::vector<Param> &params)
	{
		try
		{
			return db.exec(sql, params);
		}
		catch (const pq::PqError &e)
		{
			return std::nullopt;
		}
	}

	void		publish(const std::string &type, const std::string &ws, const std::string &payload)
	{
		std::string ev = "{\"type\":" + pq::json_str(type) + ",\"workspace_id\":" + pq::json_str(ws) +
			",\"actor_type\":\"system\",\"actor_id\":\"\",\"payload\":" + payload + "}";

		try_exec(Publish, {opt.channel, ev});
		tally.events++;
	}

	void		sweep_stale_runtimes()
	{
		auto		cand = try_exec(SelectStaleOnlineRuntimes, {secs(opt.stale)});

		if (!cand || cand->rows() == 0)
			return;

		std::string ids = "{";
		for (int i = 0; i < cand->rows(); i++)
			ids += (i ? "," : "") + cand->get(i, "id");
		ids += "}";

		auto		stale = try_exec(MarkRuntimesOfflineByIDs, {ids, secs(opt.stale)});

		if (!stale || stale->rows() == 0)
			return;
		tally.runtimes_offline += stale->rows();

		std::vector<std::string> workspaces;
		std::set<std::string> seen;

		for (int i = 0; i < stale->rows(); i++)
			if (seen.insert(stale->get(i, "workspace_id")).second)
				workspaces.push_back(stale->get(i, "workspace_id"));

		auto		failed = try_exec(FailTasksForOfflineRuntimes, {});

		if (failed && failed->rows() > 0)
			handle_failed_tasks(tasks_of(*failed));
		for (const std::string &ws : workspaces)
			publish("daemon:register", ws, "{\"action\":\"stale_sweep\"}");
	}

	void		sweep_stale_tasks()
	{
		auto		failed = try_exec(FailStaleTasks, {secs(opt.dispatch), secs(opt.running)});

		if (failed && failed->rows() > 0)
			handle_failed_tasks(tasks_of(*failed));
	}

	void		sweep_expired_queued_tasks()
	{
		auto		failed = try_exec(ExpireStaleQueuedTasks,
									  {secs(opt.queued_ttl), std::to_string(opt.queued_batch)});

		if (failed && failed->rows() > 0)
			handle_failed_tasks(tasks_of(*failed));
	}

	void		gc_runtimes()
	{
		auto		deleted = try_exec(DeleteStaleOfflineRuntimes, {secs(opt.offline_ttl)});

		if (!deleted || deleted->rows() == 0)
			return;
		tally.runtimes_deleted += deleted->rows();

		std::set<std::string> seen;
		for (int i = 0; i < deleted->rows(); i++)
			if (seen.insert(deleted->get(i, "workspace_id")).second)
				publish("daemon:register", deleted->get(i, "workspace_id"), "{\"action\":\"runtime_gc\"}");
	}

	// ResolveTaskWorkspaceID: issue, chat session, autopilot run, quick-create context.
	std::string resolve_workspace(const Task &t)
	{
		if (t.issue_id)
			if (auto r = try_exec(GetIssue, {t.issue_id}); r && r->rows() == 1)
				return r->get(0, "workspace_id");
		if (t.chat_session_id)
			if (auto r = try_exec(GetChatSession, {t.chat_session_id}); r && r->rows() == 1)
				return r->get(0, "workspace_id");
		if (t.autopilot_run_id)
			if (auto run = try_exec(GetAutopilotRun, {t.autopilot_run_id}); run && run->rows() == 1)
				if (auto ap = try_exec(GetAutopilot, {run->get(0, "autopilot_id")}); ap && ap->rows() == 1)
					return ap->get(0, "workspace_id");
		if (t.context && json_field(*t.context, "type") == "quick_create")
			return json_field(*t.context, "workspace_id");
		return "";
	}

	static bool retryable(const Param &reason)
	{
		static const std::set<std::string> reasons = {"runtime_offline", "runtime_recovery", "timeout",
		"codex_semantic_inactivity"};

		return reason && reasons.count(*reason) > 0;
	}

	// MaybeRetryFailedTask: true when a child was created.
	bool		maybe_retry(const Task &parent)
	{
		if (parent.status != "failed" || !retryable(parent.failure_reason))
			return false;
		if (parent.attempt >= parent.max_attempts || parent.autopilot_run_id)
			return false;
		if (!parent.issue_id && !parent.chat_session_id)
			return false;

		auto		child = try_exec(CreateRetryTask, {parent.id});

		if (!child || child->rows() != 1)
			return false;
		tally.retries++;

		Task		c = tasks_of(*child)[0];
		std::string ws = resolve_workspace(c);

		if (!ws.empty())
		{
			std::string p = "{\"task_id\":" + pq::json_str(c.id) + ",\"agent_id\":" + pq::json_str(c.agent_id) +
				",\"issue_id\":" + pq::json_str(c.issue_id.value_or("")) + ",\"status\":\"queued\"";
			if (c.chat_session_id)
				p += ",\"chat_session_id\":" + pq::json_str(*c.chat_session_id);
			publish("task:queued", ws, p + "}");
		}
		return true;
	}

	void		handle_failed_tasks(const std::vector<Task> &tasks)
	{
		std::vector<std::string> agents;
		std::unordered_set<std::string> agent_seen, processed, retried;

		tally.tasks_failed += tasks.size();
		for (const Task &t : tasks)
		{
			if (maybe_retry(t) && t.issue_id)
				retried.insert(*t.issue_id);

			std::string reason = t.failure_reason && !t.failure_reason->empty() ? *t.failure_reason : "agent_error";
			std::string ws;

			if (t.issue_id)
			{
				if (auto issue = try_exec(GetIssue, {t.issue_id}); issue && issue->rows() == 1)
				{
					ws = issue->get(0, "workspace_id");
					if (issue->get(0, "status") == "in_progress" && !processed.count(*t.issue_id) &&
						!retried.count(*t.issue_id))
					{
						processed.insert(*t.issue_id);
						auto		active = try_exec(HasActiveTaskForIssue, {t.issue_id});

						if (active && active->get(0, "has_active") == "f")
							try_exec(UpdateIssueStatus, {t.issue_id, std::string("todo"), ws});
					}
				}
			}
			if (ws.empty())
				ws = resolve_workspace(t);
			if (!ws.empty())
				publish("task:failed", ws,
						"{\"task_id\":" + pq::json_str(t.id) + ",\"agent_id\":" + pq::json_str(t.agent_id) +
						",\"issue_id\":" + pq::json_str(t.issue_id.value_or("")) +
						",\"status\":\"failed\",\"failure_reason\":" + pq::json_str(reason) + "}");
			if (agent_seen.insert(t.agent_id).second)
				agents.push_back(t.agent_id);
		}
		for (const std::string &agent_id : agents)
		{
			auto		a = try_exec(RefreshAgentStatusFromTasks, {agent_id});

			if (!a || a->rows() != 1)
				continue;

			std::string map = "{";
			const char *cols[] = {"id", "workspace_id", "runtime_id", "name", "description", "avatar_url",
				"runtime_mode", "visibility", "status", "owner_id", "created_at", "updated_at",
			"archived_at", "archived_by"};
			bool		first = true;

			for (const char *c : cols)
			{
				map += std::string(first ? "" : ",") + pq::json_str(c) + ":" +
					(a->null(0, c) ? std::string("null") : pq::json_str(a->get(0, c)));
				first = false;
			}
			map += ",\"runtime_config\":" + a->get(0, "runtime_config") +
				",\"max_concurrent_tasks\":" + a->get(0, "max_concurrent_tasks") + "}";
			publish("agent:status", a->get(0, "workspace_id"), "{\"agent\":" + map + "}");
		}
	}
};

}							// namespace

int
main(int argc, char **argv)
{
	try
	{
		Options		o;
		std::string dsn = pq::arg(argc, argv, "--dsn", "");
		std::string schema = pq::arg(argc, argv, "--schema", "");
		int			ticks = atoi(pq::arg(argc, argv, "--ticks", "1").c_str());
		int			interval_ms = atoi(pq::arg(argc, argv, "--interval-ms", "0").c_str());
		double		max_seconds = atof(pq::arg(argc, argv, "--max-seconds", "600").c_str());
		bool		until_idle = pq::flag(argc, argv, "--until-idle");
		bool		quiet = pq::flag(argc, argv, "--quiet");

		o.stale = atof(pq::arg(argc, argv, "--stale", "150").c_str());
		o.dispatch = atof(pq::arg(argc, argv, "--dispatch", "300").c_str());
		o.running = atof(pq::arg(argc, argv, "--running", "9000").c_str());
		o.queued_ttl = atof(pq::arg(argc, argv, "--queued-ttl", "7200").c_str());
		o.queued_batch = atoi(pq::arg(argc, argv, "--queued-batch", "500").c_str());
		o.offline_ttl = atof(pq::arg(argc, argv, "--offline-ttl", "604800").c_str());
		o.channel = pq::arg(argc, argv, "--channel", o.channel);

		int			warmup = atoi(pq::arg(argc, argv, "--warmup", "0").c_str());
		pq::Conn	db(dsn);

		if (!schema.empty())
			db.exec("SELECT set_config('search_path', $1, false)", {schema});

		Sweeper		s(db, o);

		for (int i = 0; i < warmup; i++)
			s.tick();
		s.tally = Tally();
		double		start = pq::now_us();
		double		total_ms = 0;
		long		total_statements = 0;
		int			n = 0;

		for (;;)
		{
			n++;
			Tally		before = s.tally;
			double		t0 = pq::now_us();

			db.reset_tally();
			s.tick();

			double		ms = (pq::now_us() - t0) / 1000;
			Tally		d;

			d.runtimes_offline = s.tally.runtimes_offline - before.runtimes_offline;
			d.tasks_failed = s.tally.tasks_failed - before.tasks_failed;
			d.retries = s.tally.retries - before.retries;
			d.events = s.tally.events - before.events;
			d.runtimes_deleted = s.tally.runtimes_deleted - before.runtimes_deleted;
			total_ms += ms;
			total_statements += db.statements;
			if (!quiet)
				printf("tick=%d ms=%.3f statements=%ld stale_runtimes_ms=%.3f stale_tasks_ms=%.3f "
					   "queued_ms=%.3f gc_ms=%.3f runtimes_offline=%ld tasks_failed=%ld retries=%ld "
					   "events=%ld runtimes_deleted=%ld\n",
					   n, ms, db.statements, s.stage_ms[0], s.stage_ms[1], s.stage_ms[2], s.stage_ms[3],
					   d.runtimes_offline, d.tasks_failed, d.retries, d.events, d.runtimes_deleted);
			fflush(stdout);
			if (until_idle && d.runtimes_offline == 0 && d.tasks_failed == 0 && d.runtimes_deleted == 0)
				break;
			if (!until_idle && n >= ticks)
				break;
			if ((pq::now_us() - start) / 1e6 > max_seconds)
				break;
			if (interval_ms > 0)
			{
				double		left = interval_ms - (pq::now_us() - t0) / 1000;
				if (left > 0)
					std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(left * 1000)));
			}
		}
		printf("total ticks=%d ms=%.3f wall_ms=%.3f statements=%ld runtimes_offline=%ld tasks_failed=%ld "
			   "retries=%ld events=%ld runtimes_deleted=%ld\n",
			   n, total_ms, (pq::now_us() - start) / 1000, total_statements,
			   s.tally.runtimes_offline, s.tally.tasks_failed, s.tally.retries, s.tally.events,
			   s.tally.runtimes_deleted);
		return 0;
	}
	catch (const std::exception &e)
	{
		fprintf(stderr, "seed_sweeper: %s\n", e.what());
		return 1;
	}
}
