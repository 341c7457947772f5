-- Stage 3 (expire_queued_tasks): queued tasks older than the TTL fail with reason queued_expired, oldest first, one batch (SPEC section 2).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_queued;
SET search_path = t_queued, public;
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
SET runtime_sweeper.app_schema = t_queued;
SET runtime_sweeper.event_log = on;
-- Only events of this file are shown.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);
\pset null '(null)'

-- Tasks with the columns a failure writes; children by their parent.
CREATE VIEW v_tasks AS
SELECT coalesce(n.label, 'retry of ' || p.label) AS label, t.status, t.failure_reason, t.error,
       t.completed_at IS NOT NULL AS completed
FROM agent_task_queue t
LEFT JOIN fx_names n ON n.id = t.id
LEFT JOIN fx_names p ON p.id = t.parent_task_id
ORDER BY 1;

SELECT fx_name(fx_workspace('ws'), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws', 'online', '0 s'), 'rt') AS rt \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'agent_a'), 'agent_a') AS agent_a \gset
-- Five queued tasks past the TTL (2 h by default), each a first attempt that
-- would be retry-eligible for any other reason; created out of age order.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'queued', '3 h'), 'q3_3h') AS q3 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'queued', '5 h'), 'q1_5h') AS q1 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'queued', '2 h 10 min'), 'q5_2h10') AS q5 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'queued', '4 h'), 'q2_4h') AS q2 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'queued', '2 h 30 min'), 'q4_2h30') AS q4 \gset
-- A queued task younger than the TTL.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'queued', '1 h 50 min'), 'q6_fresh_1h50') AS q6 \gset
-- Old tasks in other states are not this stage's business.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'running', '1 day'), 'o1_running_1day') AS o1 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'completed', '1 day'), 'o2_completed_1day') AS o2 \gset

-- preview() shows one batch (queued_batch_size) of the oldest candidates.
SET runtime_sweeper.queued_batch_size = 2;
SELECT stage, fx_redact(id::text) AS id, detail FROM runtime_sweeper.preview() WHERE stage = 'queued_expiry';
RESET runtime_sweeper.queued_batch_size;
SELECT stage, fx_redact(id::text) AS id, detail FROM runtime_sweeper.preview() WHERE stage = 'queued_expiry';

-- max_tasks 2 of 5 expired: the two oldest go, oldest first.
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.expire_queued_tasks(NULL, 2);
SELECT * FROM v_tasks;
-- The next call takes the rest of the expired ones, still oldest first; the
-- fresh task stays queued.
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.expire_queued_tasks();
SELECT count(*) AS expired FROM runtime_sweeper.expire_queued_tasks();

-- Failed with reason queued_expired, error 'task expired in queue',
-- completed_at set, and never retried (no child task); the fresh, running and
-- completed tasks are untouched.
SELECT * FROM v_tasks;
SELECT count(*) AS retries FROM agent_task_queue WHERE parent_task_id IS NOT NULL;

-- Events: task:failed with reason queued_expired and agent:status per batch; no task:queued.
SELECT * FROM fx_events();

-- A shorter TTL argument catches the younger task too.
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.expire_queued_tasks('1 h');
SELECT label, status, failure_reason FROM v_tasks WHERE label = 'q6_fresh_1h50';
SELECT count(*) AS retries FROM agent_task_queue WHERE parent_task_id IS NOT NULL;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_queued CASCADE;
