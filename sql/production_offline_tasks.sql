-- Fixed by default: the offline_tasks stage fails in-flight tasks of offline runtimes in every sweep, not only after a flip, bounded by task_batch_size (SPEC sections 2 and 7).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_prod_offline;
SET search_path = t_prod_offline, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_prod_offline;
SET runtime_sweeper.event_log = on;
-- Only events of this file are shown.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);
\pset null '(null)'

CREATE VIEW v_tasks AS
SELECT coalesce(n.label, 'retry of ' || p.label) AS label, t.status, t.failure_reason, t.error,
       t.wait_reason, t.completed_at IS NOT NULL AS completed
FROM agent_task_queue t
LEFT JOIN fx_names n ON n.id = t.id
LEFT JOIN fx_names p ON p.id = t.parent_task_id
ORDER BY 1;

SELECT fx_name(fx_workspace('ws'), 'ws') AS ws \gset
-- Two heartbeating runtimes: nothing is stale anywhere in this file.
SELECT fx_name(fx_runtime(:'ws', 'online', '5 s'), 'rt_dereg') AS rt_dereg \gset
SELECT fx_name(fx_runtime(:'ws', 'online', '5 s'), 'rt_live') AS rt_live \gset
SELECT fx_name(fx_agent(:'ws', :'rt_dereg', 'agent_d'), 'agent_d') AS agent_d \gset
SELECT fx_name(fx_agent(:'ws', :'rt_live', 'agent_l'), 'agent_l') AS agent_l \gset
-- In-flight tasks on the runtime about to deregister (young: no timeout applies).
SELECT fx_name(fx_task(:'agent_d', :'rt_dereg', fx_name(fx_issue(:'ws', 'todo'), 'i1'), 'running', '3 min'), 'd1_running') AS d1 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_dereg', fx_name(fx_issue(:'ws', 'todo'), 'i2'), 'dispatched', '2 min', 1, 1), 'd2_dispatched') AS d2 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_dereg', fx_name(fx_issue(:'ws', 'todo'), 'i3'), 'waiting_local_directory', '1 min', 1, 1), 'd3_waiting') AS d3 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_dereg', fx_name(fx_issue(:'ws', 'todo'), 'i4'), 'queued', '1 min', 1, 1), 'd4_queued') AS d4 \gset
SELECT fx_name(fx_task(:'agent_l', :'rt_live', fx_name(fx_issue(:'ws', 'todo'), 'i5'), 'running', '1 min', 1, 1), 'l1_running') AS l1 \gset

-- Rule: a runtime taken offline by its daemon's deregistration (the
-- application sets status = 'offline' itself, last_seen_at stays fresh)
-- keeps no in-flight task: the next sweep() fails them with runtime_offline
-- although no runtime is stale.  Without the offline_tasks stage (the
-- original only failed them in a call that had just flipped some runtime)
-- stale_runtimes flips nothing here and d1..d3 would stay in flight for ever.
UPDATE agent_runtime SET status = 'offline', updated_at = now() WHERE id = :'rt_dereg';
SELECT stage, fx_redact(id::text) AS id, fx_redact(detail) AS detail FROM runtime_sweeper.preview();
SELECT * FROM runtime_sweeper.sweep();
-- Failed with runtime_offline, wait_reason cleared; the first attempt of d1
-- got its retry; the queued task and the live runtime's task are untouched.
SELECT * FROM v_tasks;
-- task:queued for the retry before its parent's task:failed, then
-- agent:status; no daemon:register (no runtime was flipped by the sweeper).
SELECT * FROM fx_events();
-- Nothing left: the next sweep changes nothing.
SELECT * FROM runtime_sweeper.sweep();

-- Rule: the stage is bounded: with task_batch_size 2 a sweep fails the two
-- oldest in-flight tasks of offline runtimes, the next sweep the rest.
-- Without the bound one sweep would fail all three.
SELECT fx_name(fx_task(:'agent_d', :'rt_dereg', fx_issue(:'ws', 'todo'), 'running', '3 min', 1, 1), 'b2_running_3min') AS b2 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_dereg', fx_issue(:'ws', 'todo'), 'running', '1 min', 1, 1), 'b3_running_1min') AS b3 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_dereg', fx_issue(:'ws', 'todo'), 'running', '5 min', 1, 1), 'b1_running_5min') AS b1 \gset
SET runtime_sweeper.task_batch_size = 2;
SELECT * FROM runtime_sweeper.sweep() WHERE stage = 'offline_tasks';
SELECT label, status FROM v_tasks WHERE label LIKE 'b%';
SELECT * FROM runtime_sweeper.sweep() WHERE stage = 'offline_tasks';
SELECT label, status FROM v_tasks WHERE label LIKE 'b%';
RESET runtime_sweeper.task_batch_size;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_prod_offline CASCADE;
