-- Stage 2 (fail_stale_tasks): dispatched and running tasks past their timeouts fail with reason timeout (SPEC section 2).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_stale_tasks;
SET search_path = t_stale_tasks, public;
\set ECHO none
-- The application schema: the original shape unless the including file
-- (sql/later_*.sql) set :fixture to the later one.
\if :{?fixture}
\else
\set fixture test/fixtures/app_schema.sql
\endif
\i :fixture
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_stale_tasks;
SET runtime_sweeper.event_log = on;
-- Only events of this file are shown.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);
\pset null '(null)'

-- Tasks with the columns a failure writes, and retry children by their parent.
CREATE VIEW v_tasks AS
SELECT coalesce(n.label, 'retry of ' || p.label) AS label, t.status, t.failure_reason, t.error,
       t.wait_reason, t.completed_at IS NOT NULL AS completed, t.attempt
FROM agent_task_queue t
LEFT JOIN fx_names n ON n.id = t.id
LEFT JOIN fx_names p ON p.id = t.parent_task_id
ORDER BY 1;

SELECT fx_name(fx_workspace('ws'), 'ws') AS ws \gset
-- An online, fresh runtime: only the task timeouts decide here.
SELECT fx_name(fx_runtime(:'ws', 'online', '0 s'), 'rt') AS rt \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'agent_a'), 'agent_a') AS agent_a \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'agent_b'), 'agent_b') AS agent_b \gset

-- Dispatch timeout 5 min (default): both sides of it.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'dispatched', '4 min'), 'd1_dispatched_4min') AS d1 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'dispatched', '6 min'), 'd2_dispatched_6min') AS d2 \gset
-- Running timeout 150 min (default): both sides of it; the last attempt gets no retry.
SELECT fx_name(fx_task(:'agent_b', :'rt', fx_issue(:'ws', 'todo'), 'running', '149 min'), 'r1_running_149min') AS r1 \gset
SELECT fx_name(fx_task(:'agent_b', :'rt', fx_issue(:'ws', 'todo'), 'running', '151 min', 2, 2), 'r2_running_151min') AS r2 \gset
-- NULL dispatched_at / started_at never match, however old the task is.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'dispatched', NULL), 'n1_dispatched_null') AS n1 \gset
SELECT fx_name(fx_task(:'agent_b', :'rt', fx_issue(:'ws', 'todo'), 'running', NULL), 'n2_running_null') AS n2 \gset
UPDATE agent_task_queue SET created_at = now() - interval '1 day' WHERE id IN (:'n1', :'n2');
-- A running task is judged by started_at, not by an old dispatched_at.
SELECT fx_name(fx_task(:'agent_b', :'rt', fx_issue(:'ws', 'todo'), 'running', '10 min'), 'r3_running_10min_dispatched_1day') AS r3 \gset
UPDATE agent_task_queue SET dispatched_at = now() - interval '1 day' WHERE id = :'r3';
-- waiting_local_directory is never failed by the timeout path, nor queued.
SELECT fx_name(fx_task(:'agent_b', :'rt', fx_issue(:'ws', 'todo'), 'waiting_local_directory', '1 day'), 'w1_waiting_1day') AS w1 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'queued', '1 h'), 'q1_queued_1h') AS q1 \gset
-- Terminal tasks stay as they are.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'completed', '1 day'), 't1_completed_1day') AS t1 \gset

-- preview() names exactly the two tasks past their timeouts, and changes nothing.
SELECT stage, fx_redact(id::text) AS id, detail FROM runtime_sweeper.preview() WHERE stage = 'stale_tasks';
SELECT label, status FROM v_tasks;

-- The settings' timeouts (NULL arguments) fail exactly those two, oldest
-- first, and return (task_id, retry_task_id): a retry for the first attempt,
-- NULL for the last one.
CREATE TEMP TABLE returned AS SELECT * FROM runtime_sweeper.fail_stale_tasks();
SELECT fx_redact(task_id::text) AS task_id, retry_task_id IS NOT NULL AS has_retry FROM returned;
-- The returned retry is the queued child of the failed task.
SELECT fx_redact(q.parent_task_id::text) AS parent, q.status, q.attempt, q.max_attempts
FROM returned r JOIN agent_task_queue q ON q.id = r.retry_task_id;
-- Failed with reason timeout, error 'task timed out', completed_at set;
-- everything else untouched (the waiting task keeps its wait_reason).
SELECT * FROM v_tasks;
-- Events: the retry's task:queued before its parent's task:failed, then agent:status.
SELECT * FROM fx_events();

-- Again: nothing left to fail.
SELECT count(*) AS failed FROM runtime_sweeper.fail_stale_tasks();

-- Arguments override the settings, each for its own status: a 3 min
-- dispatch timeout catches the task dispatched 4 min ago and no running one.
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks('3 min', NULL);
-- A 100 min running timeout catches the task running for 149 min.
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks(NULL, '100 min');
-- Even 1 s timeouts leave NULL dispatched_at/started_at, waiting and queued tasks alone.
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks('1 s', '1 s') ORDER BY 1;
SELECT label, status, failure_reason FROM v_tasks;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_stale_tasks CASCADE;
