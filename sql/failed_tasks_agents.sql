-- Failed-task handling, last step: the agent status reconcile and refresh_agent_status() (SPEC sections 2, 5, 7).
SET client_min_messages = warning;  -- quiet whether or not an earlier test created it
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_agents;
SET search_path = t_agents, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_agents;
SET runtime_sweeper.event_log = on;
\pset null '(null)'

-- The events since the last call, in order; agent:status shortened to its
-- agent, status and the status inside its agent map.
CREATE FUNCTION ev() RETURNS TABLE (type text, workspace text, payload text)
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT e::json ->> 'type', e::json ->> 'workspace_id',
           CASE WHEN e::json ->> 'type' = 'agent:status'
                THEN concat_ws(' ', e::json -> 'payload' ->> 'agent_id', e::json -> 'payload' ->> 'status',
                               'agent.status=' || (e::json -> 'payload' -> 'agent' ->> 'status'))
                ELSE (e::json -> 'payload')::text END
    FROM fx_events() WITH ORDINALITY AS f(e, n) ORDER BY n
$$;

SELECT fx_name(fx_workspace(), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws'), 'rt') AS rt \gset
-- Events of earlier test files are not ours.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);

-- Rule: after a batch each agent becomes working when it still has a
-- dispatched, running or waiting_local_directory task, idle otherwise (a
-- queued task does not count; the previous status does not matter);
-- one agent:status per agent, after all task events, in batch order.
SELECT fx_name(fx_agent(:'ws', :'rt', 'g_dispatched', 'idle'), 'g_dispatched') AS g_dispatched \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'g_running', 'idle'), 'g_running') AS g_running \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'g_waiting', 'offline'), 'g_waiting') AS g_waiting \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'g_queued', 'working'), 'g_queued') AS g_queued \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'g_nothing', 'error'), 'g_nothing') AS g_nothing \gset
SELECT fx_task(:'g_dispatched', :'rt', fx_issue(:'ws'), 'dispatched') IS NOT NULL AS kept,
       fx_task(:'g_running', :'rt', fx_issue(:'ws'), 'running') IS NOT NULL AS kept,
       fx_task(:'g_waiting', :'rt', fx_issue(:'ws'), 'waiting_local_directory', '1 day') IS NOT NULL AS kept,
       fx_task(:'g_queued', :'rt', fx_issue(:'ws'), 'queued') IS NOT NULL AS kept,
       fx_task(:'g_nothing', :'rt', fx_issue(:'ws'), 'completed') IS NOT NULL AS kept;
SELECT fx_name(fx_task(:'g_dispatched', :'rt', fx_name(fx_issue(:'ws'), 'I1'), 'running', '50 min', 2, 2), 'T1') AS t1 \gset
SELECT fx_name(fx_task(:'g_running', :'rt', fx_name(fx_issue(:'ws'), 'I2'), 'running', '40 min', 2, 2), 'T2') AS t2 \gset
SELECT fx_name(fx_task(:'g_waiting', :'rt', fx_name(fx_issue(:'ws'), 'I3'), 'running', '30 min', 2, 2), 'T3') AS t3 \gset
SELECT fx_name(fx_task(:'g_queued', :'rt', fx_name(fx_issue(:'ws'), 'I4'), 'running', '20 min', 2, 2), 'T4') AS t4 \gset
SELECT fx_name(fx_task(:'g_nothing', :'rt', fx_name(fx_issue(:'ws'), 'I5'), 'running', '10 min', 2, 2), 'T5') AS t5 \gset
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT fx_redact(id::text) AS agent, status FROM agent WHERE name LIKE 'g\_%' ORDER BY name;
SELECT * FROM ev();

-- Rule: once per distinct agent per batch: two failed tasks of one agent
-- give one agent:status (after both task events).
SELECT fx_name(fx_agent(:'ws', :'rt', 'twice'), 'twice') AS twice \gset
SELECT fx_name(fx_task(:'twice', :'rt', fx_name(fx_issue(:'ws'), 'I6'), 'running', '20 min', 2, 2), 'T6') AS t6 \gset
SELECT fx_name(fx_task(:'twice', :'rt', fx_name(fx_issue(:'ws'), 'I7'), 'dispatched', '10 min', 2, 2), 'T7') AS t7 \gset
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM ev();

-- Rule: the reconcile bumps updated_at (to now(), in the sweeping
-- transaction) even when the status stays the same (quiet_agent_reconcile off).
SELECT fx_name(fx_agent(:'ws', :'rt', 'bump'), 'bump') AS bump \gset
UPDATE agent SET updated_at = '2000-01-01 00:00:00+00' WHERE id = :'bump';
SELECT fx_name(fx_task(:'bump', :'rt', fx_name(fx_issue(:'ws'), 'I8'), 'running', '10 min', 2, 2), 'T8') AS t8 \gset
BEGIN;
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT fx_redact(id::text) AS agent, status, updated_at = now() AS updated_now FROM agent WHERE id = :'bump';
COMMIT;
SELECT * FROM ev();

-- Rule: refresh_agent_status(agent) runs the same reconcile: it returns the
-- new status, writes it with updated_at and emits agent:status.
SELECT fx_name(fx_agent(:'ws', :'rt', 'refresh', 'idle'), 'refresh') AS refresh \gset
SELECT fx_task(:'refresh', :'rt', fx_issue(:'ws'), 'running') IS NOT NULL AS running_task;
UPDATE agent SET updated_at = '2000-01-01 00:00:00+00' WHERE id = :'refresh';
BEGIN;
SELECT runtime_sweeper.refresh_agent_status(:'refresh') AS new_status;
SELECT status, updated_at = now() AS updated_now FROM agent WHERE id = :'refresh';
COMMIT;
SELECT * FROM ev();
UPDATE agent_task_queue SET status = 'completed', completed_at = now() WHERE agent_id = :'refresh';
SELECT runtime_sweeper.refresh_agent_status(:'refresh') AS new_status;
SELECT * FROM ev();

-- Rule: refresh_agent_status() of an unknown agent (or NULL) returns NULL,
-- writes nothing and emits no event.
SELECT runtime_sweeper.refresh_agent_status(gen_random_uuid()) AS unknown_agent,
       runtime_sweeper.refresh_agent_status(NULL) AS null_agent;
SELECT count(*) AS events FROM ev();

-- Rule: with quiet_agent_reconcile on, an agent whose status does not change
-- is neither written (updated_at kept) nor announced; one whose status
-- changes is written and announced.  The agents_reconciled counter counts
-- only the agents actually written.
SET runtime_sweeper.quiet_agent_reconcile = on;
SELECT coalesce((SELECT agents_reconciled FROM runtime_sweeper.status WHERE database = current_database()), 0) AS reconciled0 \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'quiet_same', 'idle'), 'quiet_same') AS quiet_same \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'quiet_change', 'working'), 'quiet_change') AS quiet_change \gset
UPDATE agent SET updated_at = '2000-01-01 00:00:00+00' WHERE id IN (:'quiet_same', :'quiet_change');
-- through refresh_agent_status(): unchanged (idle, no active task)
SELECT runtime_sweeper.refresh_agent_status(:'quiet_same') AS new_status;
SELECT fx_redact(id::text) AS agent, status, updated_at = '2000-01-01 00:00:00+00' AS untouched
FROM agent WHERE id = :'quiet_same';
SELECT count(*) AS events FROM ev();
-- through a failed-task batch: quiet_same stays idle (no event), quiet_change
-- goes from working to idle (written, event)
SELECT fx_name(fx_task(:'quiet_same', :'rt', fx_name(fx_issue(:'ws'), 'I9'), 'running', '20 min', 2, 2), 'T9') AS t9 \gset
SELECT fx_name(fx_task(:'quiet_change', :'rt', fx_name(fx_issue(:'ws'), 'I10'), 'running', '10 min', 2, 2), 'T10') AS t10 \gset
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT fx_redact(id::text) AS agent, status, updated_at = '2000-01-01 00:00:00+00' AS untouched
FROM agent WHERE id IN (:'quiet_same', :'quiet_change') ORDER BY name;
SELECT * FROM ev();
SELECT agents_reconciled - :reconciled0 AS agents_reconciled
FROM runtime_sweeper.status WHERE database = current_database();
RESET runtime_sweeper.quiet_agent_reconcile;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_agents CASCADE;
