-- SQL API (SPEC section 5): argument rules, settings as defaults, sweep() per stage, a failing stage, a rolled-back sweep.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_api;
SET search_path = t_api, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_api;
SET runtime_sweeper.event_log = on;
-- Only events of this file are shown.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);
\pset null '(null)'

CREATE VIEW v_runtimes AS
SELECT n.label, r.status FROM agent_runtime r JOIN fx_names n ON n.id = r.id ORDER BY 1;
CREATE VIEW v_tasks AS
SELECT coalesce(n.label, 'retry of ' || p.label) AS label, t.status, t.failure_reason
FROM agent_task_queue t
LEFT JOIN fx_names n ON n.id = t.id
LEFT JOIN fx_names p ON p.id = t.parent_task_id
ORDER BY 1;
-- Event types with the task, or the action, they are about.
CREATE FUNCTION event_summary() RETURNS TABLE (type text, workspace text, subject text)
LANGUAGE sql AS $$
    SELECT e::json->>'type', e::json->>'workspace_id',
           coalesce(e::json->'payload'->>'task_id', e::json->'payload'->>'agent_id',
                    e::json->'payload'->>'action')
    FROM fx_events() AS f(e)
$$;

SELECT fx_name(fx_workspace('ws'), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws', 'online', '0 s'), 'rt_home') AS rt_home \gset
SELECT fx_name(fx_agent(:'ws', :'rt_home', 'agent'), 'agent') AS agent \gset

------------------------------------------------------------------------------
-- A negative interval is an error with a clear message, for every function
-- and argument (also one negative only in total); nothing is changed.
------------------------------------------------------------------------------
SELECT * FROM runtime_sweeper.mark_stale_runtimes_offline('-1 s');
SELECT * FROM runtime_sweeper.fail_offline_runtime_tasks('-1 s');
SELECT * FROM runtime_sweeper.fail_stale_tasks('-5 min');
SELECT * FROM runtime_sweeper.fail_stale_tasks(NULL, '-1 h');
SELECT * FROM runtime_sweeper.expire_queued_tasks('-2 h');
SELECT * FROM runtime_sweeper.gc_offline_runtimes('-7 days');
SELECT * FROM runtime_sweeper.gc_offline_runtimes('1 day -25 hours');
-- max_tasks below 1 is an error.
SELECT * FROM runtime_sweeper.expire_queued_tasks(NULL, 0);
SELECT * FROM runtime_sweeper.expire_queued_tasks('1 h', -1);
SELECT * FROM runtime_sweeper.fail_offline_runtime_tasks(NULL, 0);
-- They are the caller's mistake (invalid_parameter_value), not internal errors.
DO $$
BEGIN
    PERFORM * FROM runtime_sweeper.fail_stale_tasks('-1 s');
EXCEPTION WHEN invalid_parameter_value THEN
    RAISE NOTICE 'SQLSTATE %: %', SQLSTATE, SQLERRM;
END
$$;
DO $$
BEGIN
    PERFORM * FROM runtime_sweeper.expire_queued_tasks(NULL, 0);
EXCEPTION WHEN invalid_parameter_value THEN
    RAISE NOTICE 'SQLSTATE %: %', SQLSTATE, SQLERRM;
END
$$;

------------------------------------------------------------------------------
-- NULL arguments use the session's settings: changing a setting changes what
-- the function selects.
------------------------------------------------------------------------------
-- stale_threshold: a runtime silent for 100 s is not stale at 150 s, is at 90 s.
SELECT fx_name(fx_runtime(:'ws', 'online', '100 s'), 'rt_100s') AS rt_100s \gset
SELECT count(*) AS flipped FROM runtime_sweeper.mark_stale_runtimes_offline();
SELECT count(*) AS flipped FROM runtime_sweeper.mark_stale_runtimes_offline(NULL);
SET runtime_sweeper.stale_threshold = '90s';
SELECT stage, fx_redact(id::text) AS id FROM runtime_sweeper.preview();
SELECT fx_redact(runtime_id::text) AS flipped FROM runtime_sweeper.mark_stale_runtimes_offline();
RESET runtime_sweeper.stale_threshold;

-- dispatch_timeout and running_timeout.
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'dispatched', '4 min', 1, 1), 'd_4min') AS d_4min \gset
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'running', '2 h', 1, 1), 'r_2h') AS r_2h \gset
SELECT count(*) AS failed FROM runtime_sweeper.fail_stale_tasks();
SET runtime_sweeper.dispatch_timeout = '3min';
SELECT fx_redact(task_id::text) AS failed FROM runtime_sweeper.fail_stale_tasks();
SET runtime_sweeper.running_timeout = '1h';
SELECT fx_redact(task_id::text) AS failed FROM runtime_sweeper.fail_stale_tasks(NULL, NULL);
RESET runtime_sweeper.dispatch_timeout;
RESET runtime_sweeper.running_timeout;

-- queued_ttl and queued_batch_size.
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'queued', '50 min'), 'q_50min') AS q_50min \gset
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'queued', '40 min'), 'q_40min') AS q_40min \gset
SELECT count(*) AS expired FROM runtime_sweeper.expire_queued_tasks();
SET runtime_sweeper.queued_ttl = '30min';
SET runtime_sweeper.queued_batch_size = 1;
SELECT fx_redact(task_id::text) AS expired FROM runtime_sweeper.expire_queued_tasks();
-- An explicit max_tasks overrides the batch size.
SELECT fx_redact(task_id::text) AS expired FROM runtime_sweeper.expire_queued_tasks(NULL, 10);
RESET runtime_sweeper.queued_ttl;
RESET runtime_sweeper.queued_batch_size;

-- reconnect_grace and task_batch_size.
SELECT fx_name(fx_runtime(:'ws', 'offline', '30 min'), 'rt_off_30min') AS rt_off_30min \gset
SELECT fx_name(fx_task(:'agent', :'rt_off_30min', fx_issue(:'ws', 'todo'), 'running', '20 min', 1, 1), 'o_20min') AS o_20min \gset
SELECT fx_name(fx_task(:'agent', :'rt_off_30min', fx_issue(:'ws', 'todo'), 'running', '10 min', 1, 1), 'o_10min') AS o_10min \gset
SET runtime_sweeper.reconnect_grace = '1h';
SELECT count(*) AS failed FROM runtime_sweeper.fail_offline_runtime_tasks();
SET runtime_sweeper.reconnect_grace = '10min';
SET runtime_sweeper.task_batch_size = 1;
SELECT fx_redact(task_id::text) AS failed FROM runtime_sweeper.fail_offline_runtime_tasks();
SELECT fx_redact(task_id::text) AS failed FROM runtime_sweeper.fail_offline_runtime_tasks(NULL, NULL);
RESET runtime_sweeper.reconnect_grace;
RESET runtime_sweeper.task_batch_size;

-- offline_ttl.
SELECT fx_name(fx_runtime(:'ws', 'offline', '3 days'), 'rt_off_3days') AS rt_off_3days \gset
SELECT count(*) AS collected FROM runtime_sweeper.gc_offline_runtimes();
SET runtime_sweeper.offline_ttl = '2d';
SELECT fx_redact(runtime_id::text) AS collected FROM runtime_sweeper.gc_offline_runtimes();
RESET runtime_sweeper.offline_ttl;

-- app_schema: the functions sweep the schema the session names; a schema
-- without the application's tables is an error, not a silent no-op.
SET runtime_sweeper.app_schema = t_api_missing;
DO $$
BEGIN
    PERFORM * FROM runtime_sweeper.mark_stale_runtimes_offline();
EXCEPTION WHEN undefined_table THEN
    RAISE NOTICE 'refused: %', SQLERRM;
END
$$;
RESET runtime_sweeper.app_schema;
SET runtime_sweeper.app_schema = t_api;

SELECT * FROM v_tasks;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

------------------------------------------------------------------------------
-- refresh_agent_status() and wake().
------------------------------------------------------------------------------
-- An unknown agent gives NULL and no event; so does NULL.
SELECT runtime_sweeper.refresh_agent_status('00000000-0000-0000-0000-000000000000');
SELECT runtime_sweeper.refresh_agent_status(NULL);
SELECT * FROM fx_events();
-- A known agent gets its status back (no in-flight task: idle).
SELECT runtime_sweeper.refresh_agent_status(:'agent');
-- The worker of this instance watches another database: nothing to wake here.
SELECT runtime_sweeper.wake();
SELECT count(*) >= 0 AS events_drained FROM fx_events();

------------------------------------------------------------------------------
-- sweep(): one row per stage, in order, with what each affected.
------------------------------------------------------------------------------
DELETE FROM agent_task_queue;
DELETE FROM agent_runtime WHERE id <> :'rt_home';
-- One candidate for each stage after the first.
SELECT fx_name(fx_runtime(:'ws', 'offline', '1 h'), 'rt_gone') AS rt_gone \gset
SELECT fx_name(fx_task(:'agent', :'rt_gone', fx_issue(:'ws', 'todo'), 'running', '30 min', 1, 1), 's1_on_gone') AS s1 \gset
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'dispatched', '10 min', 1, 1), 's2_dispatched_10min') AS s2 \gset
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'queued', '3 h', 1, 1), 's3_queued_3h') AS s3 \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '8 days'), 'rt_gc') AS rt_gc \gset
SELECT * FROM runtime_sweeper.sweep();
SELECT * FROM v_runtimes;
SELECT * FROM v_tasks;
SELECT * FROM event_summary();
-- A stale runtime: stage 1 flips it (the outage guard is the worker's, an
-- SQL call is not held back by it); nothing is left for the other stages.
SELECT fx_name(fx_runtime(:'ws', 'online', '10 min'), 'rt_stale') AS rt_stale \gset
SELECT * FROM runtime_sweeper.sweep();
SELECT * FROM v_runtimes;
SELECT * FROM event_summary();

------------------------------------------------------------------------------
-- A stage that raises: WARNING, affected NULL for that stage only, its
-- changes and events rolled back, the later stages still run and commit.
------------------------------------------------------------------------------
CREATE FUNCTION forbid_failing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'task marked unfailable (test trigger)';
END
$$;
CREATE TRIGGER forbid_failing BEFORE UPDATE ON agent_task_queue
FOR EACH ROW WHEN (NEW.trigger_summary = 'unfailable' AND NEW.status = 'failed')
EXECUTE FUNCTION forbid_failing();

SELECT fx_name(fx_runtime(:'ws', 'online', '10 min'), 'rt_stale2') AS rt_stale2 \gset
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'dispatched', '11 min', 1, 1), 'x1_dispatched') AS x1 \gset
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'dispatched', '10 min', 1, 1), 'x2_dispatched_unfailable') AS x2 \gset
UPDATE agent_task_queue SET trigger_summary = 'unfailable' WHERE id = :'x2';
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'queued', '3 h', 1, 1), 'x3_queued_3h') AS x3 \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '8 days'), 'rt_gc2') AS rt_gc2 \gset
CREATE TEMP TABLE stage_before AS
SELECT stage, runs, errors FROM runtime_sweeper.stage_status WHERE database = current_database();

SELECT * FROM runtime_sweeper.sweep();
-- Stage 1 committed (rt_stale2 offline), stage 2 rolled back as a whole (both
-- dispatched tasks still dispatched, no retry), stages 3 and 4 committed.
SELECT * FROM v_runtimes;
SELECT * FROM v_tasks;
-- No event of the failed stage; the others' events are there.
SELECT * FROM event_summary();
-- stage_status counts the error and keeps its message.
SELECT s.stage, s.runs - coalesce(b.runs, 0) AS new_runs, s.errors - coalesce(b.errors, 0) AS new_errors,
       CASE WHEN s.errors > coalesce(b.errors, 0) THEN s.last_error END AS last_error
FROM runtime_sweeper.stage_status s LEFT JOIN stage_before b USING (stage)
WHERE s.database = current_database()
ORDER BY array_position(ARRAY['stale_runtimes', 'offline_tasks', 'stale_tasks', 'queued_expiry', 'runtime_gc'], s.stage);
-- The stage called on its own raises the error to the caller.
\set VERBOSITY terse
SELECT * FROM runtime_sweeper.fail_stale_tasks();
\set VERBOSITY default
DROP TRIGGER forbid_failing ON agent_task_queue;

------------------------------------------------------------------------------
-- A rolled-back transaction around sweep() leaves nothing changed and logs no event.
------------------------------------------------------------------------------
SELECT fx_name(fx_runtime(:'ws', 'online', '10 min'), 'rt_stale3') AS rt_stale3 \gset
SELECT fx_name(fx_task(:'agent', :'rt_home', fx_issue(:'ws', 'todo'), 'queued', '5 h', 1, 1), 'y1_queued_5h') AS y1 \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '9 days'), 'rt_gc3') AS rt_gc3 \gset
CREATE TEMP TABLE rt_snapshot AS SELECT * FROM agent_runtime;
CREATE TEMP TABLE task_snapshot AS SELECT * FROM agent_task_queue;
CREATE TEMP TABLE agent_snapshot AS SELECT * FROM agent;
CREATE TEMP TABLE issue_snapshot AS SELECT * FROM issue;
BEGIN;
SELECT * FROM runtime_sweeper.sweep();
ROLLBACK;
-- Every row as before (no difference either way), and no event logged.
SELECT count(*) AS runtime_diffs FROM
  ((SELECT * FROM agent_runtime EXCEPT ALL SELECT * FROM rt_snapshot)
   UNION ALL (SELECT * FROM rt_snapshot EXCEPT ALL SELECT * FROM agent_runtime)) d;
SELECT count(*) AS task_diffs FROM
  ((SELECT * FROM agent_task_queue EXCEPT ALL SELECT * FROM task_snapshot)
   UNION ALL (SELECT * FROM task_snapshot EXCEPT ALL SELECT * FROM agent_task_queue)) d;
SELECT count(*) AS agent_diffs FROM
  ((SELECT * FROM agent EXCEPT ALL SELECT * FROM agent_snapshot)
   UNION ALL (SELECT * FROM agent_snapshot EXCEPT ALL SELECT * FROM agent)) d;
SELECT count(*) AS issue_diffs FROM
  ((SELECT * FROM issue EXCEPT ALL SELECT * FROM issue_snapshot)
   UNION ALL (SELECT * FROM issue_snapshot EXCEPT ALL SELECT * FROM issue)) d;
SELECT * FROM event_summary();
-- The same sweep committed does change them.
SELECT * FROM runtime_sweeper.sweep();
SELECT count(*) >= 0 AS events_drained FROM fx_events();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_api CASCADE;
