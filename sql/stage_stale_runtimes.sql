-- Stage 1 (mark_stale_runtimes_offline) and the offline_tasks stage (fail_offline_runtime_tasks): SPEC sections 2 and 7.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_stale_rt;
SET search_path = t_stale_rt, public;
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
SET runtime_sweeper.app_schema = t_stale_rt;
SET runtime_sweeper.event_log = on;
-- Only events of this file are shown.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);
\pset null '(null)'

-- Runtimes with their state and whether updated_at / last_seen_at moved since the snapshot.
CREATE TABLE rt_before AS SELECT id, status, last_seen_at, updated_at FROM agent_runtime WHERE false;
CREATE VIEW v_runtimes AS
SELECT n.label, r.status,
       r.last_seen_at IS NOT DISTINCT FROM b.last_seen_at AS last_seen_kept,
       r.updated_at IS NOT DISTINCT FROM b.updated_at AS updated_kept
FROM agent_runtime r JOIN fx_names n ON n.id = r.id LEFT JOIN rt_before b ON b.id = r.id
ORDER BY n.label;
-- Tasks with the columns a failure writes.
CREATE VIEW v_tasks AS
SELECT n.label, t.status, t.failure_reason, t.error, t.wait_reason,
       t.completed_at IS NOT NULL AS completed
FROM agent_task_queue t JOIN fx_names n ON n.id = t.id
ORDER BY n.label;
CREATE FUNCTION snapshot() RETURNS void LANGUAGE sql AS $$
    DELETE FROM rt_before;
    INSERT INTO rt_before SELECT id, status, last_seen_at, updated_at FROM agent_runtime;
$$;

-- Two workspaces; issues are 'todo' so that no issue rollback is involved here.
SELECT fx_name(fx_workspace('ws1'), 'ws1') AS ws1 \gset
SELECT fx_name(fx_workspace('ws2'), 'ws2') AS ws2 \gset
-- Stale threshold 150 s (default): both sides of it, a NULL heartbeat, an offline runtime.
SELECT fx_name(fx_runtime(:'ws1', 'online', '140 s'), 'rt_fresh') AS rt_fresh \gset
SELECT fx_name(fx_runtime(:'ws1', 'online', '160 s'), 'rt_stale') AS rt_stale \gset
SELECT fx_name(fx_runtime(:'ws2', 'online', '1 h'), 'rt_stale_ws2') AS rt_stale_ws2 \gset
SELECT fx_name(fx_runtime(:'ws1', 'online', NULL), 'rt_never_seen') AS rt_never_seen \gset
SELECT fx_name(fx_runtime(:'ws1', 'offline', '1 h'), 'rt_off') AS rt_off \gset
SELECT fx_name(fx_agent(:'ws1', :'rt_stale', 'agent_a'), 'agent_a') AS agent_a \gset
SELECT fx_name(fx_agent(:'ws2', :'rt_stale_ws2', 'agent_b'), 'agent_b') AS agent_b \gset
SELECT fx_name(fx_agent(:'ws1', :'rt_off', 'agent_c'), 'agent_c') AS agent_c \gset
SELECT fx_name(fx_agent(:'ws1', :'rt_fresh', 'agent_d'), 'agent_d') AS agent_d \gset
-- Tasks of every kind on the stale runtime (max_attempts 1: no retries here).
SELECT fx_name(fx_task(:'agent_a', :'rt_stale', fx_issue(:'ws1', 'todo'), 'dispatched', '9 min', 1, 1), 'a1_dispatched') AS a1_dispatched \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_stale', fx_issue(:'ws1', 'todo'), 'running', '8 min', 1, 1), 'a2_running') AS a2_running \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_stale', fx_issue(:'ws1', 'todo'), 'waiting_local_directory', '7 min', 1, 1), 'a3_waiting') AS a3_waiting \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_stale', fx_issue(:'ws1', 'todo'), 'queued', '6 min', 1, 1), 'a4_queued') AS a4_queued \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_stale', fx_issue(:'ws1', 'todo'), 'completed', '5 min', 1, 1), 'a5_completed') AS a5_completed \gset
SELECT fx_name(fx_task(:'agent_b', :'rt_stale_ws2', fx_issue(:'ws2', 'todo'), 'running', '4 min', 1, 1), 'b1_running') AS b1_running \gset
-- A runtime that was already offline, with a task still running.
SELECT fx_name(fx_task(:'agent_c', :'rt_off', fx_issue(:'ws1', 'todo'), 'running', '3 min', 1, 1), 'c1_running') AS c1_running \gset
-- A task on the fresh (online) runtime.
SELECT fx_name(fx_task(:'agent_d', :'rt_fresh', fx_issue(:'ws1', 'todo'), 'dispatched', '2 min', 1, 1), 'd1_dispatched') AS d1_dispatched \gset
SELECT snapshot();

-- preview() lists the stale runtimes (not the fresh, never-seen or offline
-- ones) and the in-flight task of the offline runtime (and, for stage 2, the
-- task dispatched 9 minutes ago), and changes nothing.
SELECT stage, fx_redact(id::text) AS id, fx_redact(detail) AS detail FROM runtime_sweeper.preview();
SELECT * FROM v_runtimes;
SELECT * FROM v_tasks;
SELECT * FROM fx_events();

-- When no runtime flips, stage 1 fails no task (as in the original): the
-- offline runtime's running task stays running.
SELECT * FROM runtime_sweeper.mark_stale_runtimes_offline('2 h');
SELECT label, status FROM v_tasks WHERE label = 'c1_running';
SELECT * FROM fx_events();

-- The default threshold flips exactly the two stale runtimes and returns
-- (runtime_id, workspace_id); updated_at is bumped, last_seen_at kept.
SELECT fx_redact(runtime_id::text) AS runtime_id, fx_redact(workspace_id::text) AS workspace_id
FROM runtime_sweeper.mark_stale_runtimes_offline()
ORDER BY 1;
SELECT * FROM v_runtimes;
-- The bumped updated_at is the time of the sweep, after the last heartbeat.
SELECT n.label, r.updated_at > r.last_seen_at AS updated_after_seen,
       r.updated_at > now() - interval '1 min' AS updated_now
FROM agent_runtime r JOIN fx_names n ON n.id = r.id
WHERE n.label IN ('rt_stale', 'rt_stale_ws2') ORDER BY 1;

-- In-flight tasks of offline runtimes (also the one that was offline before)
-- failed with runtime_offline, wait_reason cleared, completed_at set; the
-- queued and completed tasks and the online runtime's task are untouched.
SELECT * FROM v_tasks;

-- Events: task:failed per task and agent:status per agent (failed-task
-- handling, oldest task first), then one daemon:register stale_sweep per
-- workspace of the flipped runtimes, last.
SELECT * FROM fx_events();

-- Running it again changes nothing and sends nothing.
SELECT snapshot();
SELECT count(*) AS flipped FROM runtime_sweeper.mark_stale_runtimes_offline();
SELECT * FROM v_runtimes;
SELECT * FROM fx_events();

-- Any positive threshold works: with '1 s' the runtime last seen 140 s ago
-- goes too, but one that never sent a heartbeat is never stale.
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.mark_stale_runtimes_offline('1 s');
SELECT label, status FROM v_runtimes WHERE label IN ('rt_fresh', 'rt_never_seen');
-- The task of rt_fresh failed with it.
SELECT * FROM v_tasks WHERE label = 'd1_dispatched';
SELECT count(*) >= 0 AS events_drained FROM fx_events();

-- With a reconnect grace, a stale runtime still flips, but its in-flight
-- tasks are failed only once it has been silent for the grace.
SET runtime_sweeper.reconnect_grace = '1h';
SELECT fx_name(fx_runtime(:'ws1', 'online', '10 min'), 'rt_grace') AS rt_grace \gset
SELECT fx_name(fx_agent(:'ws1', :'rt_grace', 'agent_g'), 'agent_g') AS agent_g \gset
SELECT fx_name(fx_task(:'agent_g', :'rt_grace', fx_issue(:'ws1', 'todo'), 'running', '9 min', 1, 1), 'g1_running') AS g1_running \gset
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.mark_stale_runtimes_offline();
SELECT label, status FROM v_runtimes WHERE label = 'rt_grace';
SELECT * FROM v_tasks WHERE label = 'g1_running';
SELECT * FROM fx_events();
-- ... until the silence exceeds the grace: the offline_tasks stage fails it.
UPDATE agent_runtime SET last_seen_at = now() - interval '61 min' WHERE id = :'rt_grace';
SELECT fx_redact(task_id::text) AS task_id, retry_task_id FROM runtime_sweeper.fail_offline_runtime_tasks();
SELECT * FROM v_tasks WHERE label = 'g1_running';
RESET runtime_sweeper.reconnect_grace;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

------------------------------------------------------------------------------
-- The offline_tasks stage on its own (fail_offline_runtime_tasks).
------------------------------------------------------------------------------
DELETE FROM agent_task_queue;
SELECT fx_name(fx_workspace('ws3'), 'ws3') AS ws3 \gset
SELECT fx_name(fx_runtime(:'ws3', 'offline', '2 h'), 'rt_dead') AS rt_dead \gset
SELECT fx_name(fx_runtime(:'ws3', 'online', '0 s'), 'rt_live') AS rt_live \gset
SELECT fx_name(fx_agent(:'ws3', :'rt_dead', 'agent_e'), 'agent_e') AS agent_e \gset
SELECT fx_name(fx_agent(:'ws3', :'rt_live', 'agent_f'), 'agent_f') AS agent_f \gset

-- Every status on an offline runtime: only dispatched, running and
-- waiting_local_directory fail; a task of an online runtime is untouched.
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'queued', '70 min', 1, 1), 'e1_queued') AS e1_queued \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'dispatched', '69 min', 1, 1), 'e2_dispatched') AS e2_dispatched \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'running', '68 min', 1, 1), 'e3_running') AS e3_running \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'waiting_local_directory', '67 min', 1, 1), 'e4_waiting') AS e4_waiting \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'completed', '66 min', 1, 1), 'e5_completed') AS e5_completed \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'failed', '65 min', 1, 1), 'e6_failed') AS e6_failed \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'cancelled', '64 min', 1, 1), 'e7_cancelled') AS e7_cancelled \gset
SELECT fx_name(fx_task(:'agent_f', :'rt_live', fx_issue(:'ws3', 'todo'), 'running', '63 min', 1, 1), 'f1_running_online') AS f1_running_online \gset

-- max_tasks bounds the batch: the oldest in-flight task goes first.
SELECT fx_redact(task_id::text) AS task_id, retry_task_id
FROM runtime_sweeper.fail_offline_runtime_tasks(NULL, 1);
SELECT fx_redact(task_id::text) AS task_id, retry_task_id
FROM runtime_sweeper.fail_offline_runtime_tasks()
ORDER BY 1;
SELECT * FROM v_tasks;
SELECT * FROM fx_events();

-- A retry is created (and returned) for an eligible task.
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'running', '1 min', 1, 2), 'e8_running_retry') AS e8_running_retry \gset
CREATE TEMP TABLE returned AS SELECT * FROM runtime_sweeper.fail_offline_runtime_tasks();
SELECT fx_redact(t.task_id::text) AS task_id,
       q.status AS retry_status, q.attempt AS retry_attempt,
       fx_redact(q.parent_task_id::text) AS retry_parent
FROM returned t
JOIN agent_task_queue q ON q.id = t.retry_task_id;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

-- The grace: a runtime silent for less than the grace keeps its tasks, one
-- silent for longer loses them; with no heartbeat at all (NULL last_seen_at)
-- the silence is measured from updated_at.
DELETE FROM agent_task_queue;
SELECT fx_name(fx_runtime(:'ws3', 'offline', '10 min'), 'rt_recent') AS rt_recent \gset
SELECT fx_name(fx_runtime(:'ws3', 'offline', NULL), 'rt_null_recent') AS rt_null_recent \gset
SELECT fx_name(fx_runtime(:'ws3', 'offline', NULL), 'rt_null_old') AS rt_null_old \gset
UPDATE agent_runtime SET updated_at = now() - interval '10 min' WHERE id = :'rt_null_recent';
UPDATE agent_runtime SET updated_at = now() - interval '2 h' WHERE id = :'rt_null_old';
SELECT fx_name(fx_task(:'agent_e', :'rt_recent', fx_issue(:'ws3', 'todo'), 'running', '5 min', 1, 1), 'h1_recent') AS h1_recent \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_null_recent', fx_issue(:'ws3', 'todo'), 'running', '4 min', 1, 1), 'h2_null_recent') AS h2_null_recent \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_null_old', fx_issue(:'ws3', 'todo'), 'running', '3 min', 1, 1), 'h3_null_old') AS h3_null_old \gset
SELECT fx_name(fx_task(:'agent_e', :'rt_dead', fx_issue(:'ws3', 'todo'), 'running', '2 min', 1, 1), 'h4_dead') AS h4_dead \gset
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_offline_runtime_tasks('1 h') ORDER BY 1;
SELECT label, status, failure_reason FROM v_tasks;
-- A grace of 0 fails the rest at once (the original behaviour).
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_offline_runtime_tasks('0 s') ORDER BY 1;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_stale_rt CASCADE;
