-- Fixed by default: a retry that would break the one-pending-task index is skipped with no error and no WARNING (SPEC sections 2 and 7).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_prod_conflict;
SET search_path = t_prod_conflict, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_prod_conflict;
SET runtime_sweeper.event_log = on;
-- Only events of this file are shown.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);
\pset null '(null)'

CREATE FUNCTION counter_now(name text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT coalesce((SELECT (to_jsonb(s) ->> name)::bigint FROM runtime_sweeper.status s
                     WHERE s.database = current_database()), 0)
$$;
CREATE VIEW v_tasks AS
SELECT coalesce(n.label, 'retry of ' || p.label) AS label, t.status, t.failure_reason, t.attempt
FROM agent_task_queue t
LEFT JOIN fx_names n ON n.id = t.id
LEFT JOIN fx_names p ON p.id = t.parent_task_id
ORDER BY 1;

SELECT fx_name(fx_workspace('ws'), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws', 'online', '0 s'), 'rt_live') AS rt_live \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '1 h'), 'rt_dead') AS rt_dead \gset
SELECT fx_name(fx_agent(:'ws', :'rt_live', 'agent_a'), 'agent_a') AS agent_a \gset
SELECT fx_name(fx_agent(:'ws', :'rt_dead', 'agent_b'), 'agent_b') AS agent_b \gset
-- Issue i1: a running task past the running timeout (retryable: attempt 1
-- of 2) while the application has already queued the next task of the same
-- issue and agent.  Issue i2 likewise for a task of the offline runtime.
SELECT fx_name(fx_issue(:'ws', 'in_progress'), 'i1') AS i1 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_live', :'i1', 'running', '3 h'), 't1_timeout') AS t1 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_live', :'i1', 'queued', '1 min'), 'q1_pending') AS q1 \gset
SELECT fx_name(fx_issue(:'ws', 'in_progress'), 'i2') AS i2 \gset
SELECT fx_name(fx_task(:'agent_b', :'rt_dead', :'i2', 'running', '10 min'), 't2_offline') AS t2 \gset
SELECT fx_name(fx_task(:'agent_b', :'rt_dead', :'i2', 'queued', '1 min'), 'q2_pending') AS q2 \gset
-- Issue i3: a retryable task without a competitor gets its retry in the same sweep.
SELECT fx_name(fx_issue(:'ws', 'in_progress'), 'i3') AS i3 \gset
SELECT fx_name(fx_task(:'agent_b', :'rt_dead', :'i3', 'running', '5 min'), 't3_offline') AS t3 \gset
SELECT counter_now('retries_skipped') AS skipped0, counter_now('retries_created') AS created0 \gset

-- Rule: the conflicting retries are skipped silently.  Only WARNINGs and
-- errors are shown from here on: a stage that raised on the conflict would
-- print "WARNING: runtime_sweeper: stage ... failed" and affected NULL, and a
-- conflict reported at warning level would print its WARNING; neither appears.
-- (Without ON CONFLICT DO NOTHING the INSERT of the retry raises a unique
-- violation and rolls the stage back: t1 and t2 would stay running.)
SET client_min_messages = warning;
SELECT * FROM runtime_sweeper.sweep();
RESET client_min_messages;
-- The tasks failed; t1 and t2 got no second pending task, the application's
-- queued tasks are untouched; t3 got its retry.
SELECT * FROM v_tasks;
SELECT counter_now('retries_skipped') - :skipped0 AS retries_skipped,
       counter_now('retries_created') - :created0 AS retries_created;
-- No issue was rolled back: each still has a queued task.
SELECT fx_redact(id::text) AS issue, status FROM issue ORDER BY 1;
-- Events: offline_tasks first (t2 without a task:queued, t3 with one), then
-- stale_tasks (t1 without one).
SELECT * FROM fx_events();

-- Rule: the same through the single-stage functions, still without a WARNING.
SELECT fx_name(fx_task(:'agent_a', :'rt_live', :'i1', 'running', '4 h'), 't4_timeout') AS t4 \gset
SELECT fx_name(fx_task(:'agent_b', :'rt_dead', :'i2', 'waiting_local_directory', '2 min'), 't5_offline') AS t5 \gset
SET client_min_messages = warning;
SELECT fx_redact(task_id::text) AS task_id, retry_task_id FROM runtime_sweeper.fail_stale_tasks();
SELECT fx_redact(task_id::text) AS task_id, retry_task_id FROM runtime_sweeper.fail_offline_runtime_tasks();
RESET client_min_messages;
SELECT * FROM v_tasks WHERE label IN ('t4_timeout', 't5_offline', 'q1_pending', 'q2_pending');
SELECT count(*) >= 0 AS events_drained FROM fx_events();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_prod_conflict CASCADE;
