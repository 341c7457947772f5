-- reconnect_grace (off = 0 by default), both ways: offline runtimes keep their in-flight tasks for the grace, and the stale-task stage spares tasks whose runtime may still come back (SPEC section 7).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_prod_grace;
SET search_path = t_prod_grace, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_prod_grace;
\pset null '(null)'

CREATE VIEW v_tasks AS
SELECT n.label, t.status, t.failure_reason
FROM agent_task_queue t JOIN fx_names n ON n.id = t.id
ORDER BY 1;
-- Makes runtime rt last heartbeat `ago` ago.
CREATE PROCEDURE silent(rt uuid, ago interval) LANGUAGE sql AS $$
    UPDATE agent_runtime SET last_seen_at = now() - ago WHERE id = rt;
$$;

SELECT fx_name(fx_workspace('ws'), 'ws') AS ws \gset
SHOW runtime_sweeper.reconnect_grace;

------------------------------------------------------------------------------
-- Offline runtimes (stale_runtimes + offline_tasks, through sweep()).
------------------------------------------------------------------------------
-- Rule: with a grace, a stale runtime still flips offline at the stale
-- threshold, but its in-flight task fails only once the runtime has been
-- silent for the grace.  Without the grace check the first sweep would fail
-- the task at once.
SELECT fx_name(fx_runtime(:'ws', 'online', '10 min'), 'rt_flip') AS rt_flip \gset
SELECT fx_name(fx_agent(:'ws', :'rt_flip', 'agent_flip'), 'agent_flip') AS agent_flip \gset
SELECT fx_name(fx_task(:'agent_flip', :'rt_flip', fx_issue(:'ws', 'todo'), 'running', '20 min', 1, 1), 'f1_running') AS f1 \gset
SET runtime_sweeper.reconnect_grace = '1h';
SELECT * FROM runtime_sweeper.sweep();
SELECT fx_redact(id::text) AS runtime, status FROM agent_runtime WHERE id = :'rt_flip';
SELECT * FROM v_tasks WHERE label = 'f1_running';
-- The daemon stays away: 61 minutes of silence exceed the grace.
CALL silent(:'rt_flip', '61 min');
SELECT * FROM runtime_sweeper.sweep() WHERE stage = 'offline_tasks';
SELECT * FROM v_tasks WHERE label = 'f1_running';

-- Rule: grace 0 (the default): the same runtime's task fails in the sweep
-- that flips it.
RESET runtime_sweeper.reconnect_grace;
SELECT fx_name(fx_runtime(:'ws', 'online', '10 min'), 'rt_flip0') AS rt_flip0 \gset
SELECT fx_name(fx_agent(:'ws', :'rt_flip0', 'agent_flip0'), 'agent_flip0') AS agent_flip0 \gset
SELECT fx_name(fx_task(:'agent_flip0', :'rt_flip0', fx_issue(:'ws', 'todo'), 'running', '20 min', 1, 1), 'f2_running') AS f2 \gset
SELECT * FROM runtime_sweeper.sweep();
SELECT * FROM v_tasks WHERE label = 'f2_running';

------------------------------------------------------------------------------
-- Running tasks past the running timeout (fail_stale_tasks).
------------------------------------------------------------------------------
SELECT fx_name(fx_runtime(:'ws', 'online', '10 s'), 'rt_beat') AS rt_beat \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '30 min'), 'rt_away_30min') AS rt_away \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', NULL), 'rt_never_seen_recent') AS rt_nsr \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', NULL), 'rt_never_seen_old') AS rt_nso \gset
UPDATE agent_runtime SET updated_at = now() - interval '30 min' WHERE id = :'rt_nsr';
UPDATE agent_runtime SET updated_at = now() - interval '2 h' WHERE id = :'rt_nso';
SELECT fx_name(fx_agent(:'ws', :'rt_beat', 'agent_r'), 'agent_r') AS agent_r \gset
-- Running for 3 h, past the 150 min running timeout.
SELECT fx_name(fx_task(:'agent_r', :'rt_beat', fx_issue(:'ws', 'todo'), 'running', '3 h', 1, 1), 'r1_heartbeating') AS r1 \gset
-- Tasks of runtimes that are offline already (the offline_tasks stage would
-- fail them with the grace too; only the timeout stage runs here).
SELECT fx_name(fx_task(:'agent_r', :'rt_away', fx_issue(:'ws', 'todo'), 'running', '3 h', 1, 1), 'r2_away_30min') AS r2 \gset
SELECT fx_name(fx_task(:'agent_r', :'rt_nsr', fx_issue(:'ws', 'todo'), 'running', '3 h', 1, 1), 'r3_never_seen_recent') AS r3 \gset
SELECT fx_name(fx_task(:'agent_r', :'rt_nso', fx_issue(:'ws', 'todo'), 'running', '3 h', 1, 1), 'r4_never_seen_old') AS r4 \gset

-- Rule: with a grace, a running task past the running timeout survives while
-- its runtime proves liveness within the grace (r1 heartbeats, r2's runtime
-- was seen 30 min ago, r3's runtime was updated 30 min ago); a runtime
-- silent beyond the grace (r4: updated_at 2 h ago, never a heartbeat) does
-- not save it.  Without the grace check all four would fail.
SET runtime_sweeper.reconnect_grace = '1h';
SELECT stage, fx_redact(id::text) AS id FROM runtime_sweeper.preview() WHERE stage = 'stale_tasks';
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks() ORDER BY 1;
SELECT * FROM v_tasks WHERE label LIKE 'r%';
-- Once the heartbeats stop for longer than the grace, the task fails.
CALL silent(:'rt_beat', '61 min');
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks();
SELECT * FROM v_tasks WHERE label = 'r1_heartbeating';

-- Rule: grace 0 (the default): a running task past the timeout fails at
-- once, even on a runtime that heartbeats again (r5); r2 and r3, spared by
-- the grace above, fail now too.
RESET runtime_sweeper.reconnect_grace;
SELECT fx_name(fx_task(:'agent_r', :'rt_beat', fx_issue(:'ws', 'todo'), 'running', '3 h', 1, 1), 'r5_heartbeating_grace0') AS r5 \gset
CALL silent(:'rt_beat', '10 s');
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks() ORDER BY 1;
SELECT * FROM v_tasks WHERE label LIKE 'r%';

------------------------------------------------------------------------------
-- Dispatched tasks past the dispatch timeout (fail_stale_tasks).
------------------------------------------------------------------------------
SELECT fx_name(fx_runtime(:'ws', 'online', '10 s'), 'rt_fresh') AS rt_fresh \gset
SELECT fx_name(fx_runtime(:'ws', 'online', '20 min'), 'rt_stale_20min') AS rt_stale \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '20 min'), 'rt_off_20min') AS rt_off \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '2 h'), 'rt_off_2h') AS rt_off_2h \gset
SELECT fx_name(fx_agent(:'ws', :'rt_fresh', 'agent_d'), 'agent_d') AS agent_d \gset
-- Each dispatched 10 min ago, past the 5 min dispatch timeout.
SELECT fx_name(fx_task(:'agent_d', :'rt_fresh', fx_issue(:'ws', 'todo'), 'dispatched', '10 min', 1, 1), 'd1_online_fresh') AS d1 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_stale', fx_issue(:'ws', 'todo'), 'dispatched', '10 min', 1, 1), 'd2_online_silent_20min') AS d2 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_off', fx_issue(:'ws', 'todo'), 'dispatched', '10 min', 1, 1), 'd3_offline_silent_20min') AS d3 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_off_2h', fx_issue(:'ws', 'todo'), 'dispatched', '10 min', 1, 1), 'd4_offline_silent_2h') AS d4 \gset

-- Rule: with a grace, a dispatched task past the dispatch timeout fails when
-- its runtime is online and fresh (d1: it had every chance to start the
-- task) or silent beyond the grace (d4); it survives while its runtime is
-- silent but within the grace, online (d2) or offline (d3): the daemon may
-- reconnect and start it.  (The runtime gone: see the later shape below.)
-- Without the online-and-fresh branch d1 would survive; without the grace
-- check d2 and d3 would fail.
SET runtime_sweeper.reconnect_grace = '1h';
SELECT stage, fx_redact(id::text) AS id FROM runtime_sweeper.preview() WHERE stage = 'stale_tasks';
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks() ORDER BY 1;
SELECT * FROM v_tasks WHERE label LIKE 'd%';
-- Once their runtimes are silent beyond the grace, d2 and d3 fail too.
CALL silent(:'rt_stale', '61 min');
CALL silent(:'rt_off', '61 min');
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks() ORDER BY 1;

-- Rule: grace 0: every dispatched task past the timeout fails, whatever its runtime.
RESET runtime_sweeper.reconnect_grace;
CALL silent(:'rt_stale', '20 min');
CALL silent(:'rt_off', '20 min');
SELECT fx_name(fx_task(:'agent_d', :'rt_stale', fx_issue(:'ws', 'todo'), 'dispatched', '10 min', 1, 1), 'd5_online_silent_20min_grace0') AS d5 \gset
SELECT fx_name(fx_task(:'agent_d', :'rt_off', fx_issue(:'ws', 'todo'), 'dispatched', '10 min', 1, 1), 'd6_offline_silent_20min_grace0') AS d6 \gset
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks() ORDER BY 1;

------------------------------------------------------------------------------
-- The later shape: a task whose runtime is gone (runtime_id NULL).
------------------------------------------------------------------------------
CREATE SCHEMA t_prod_grace_later;
SET search_path = t_prod_grace_later, public;
\set ECHO none
\i test/fixtures/app_schema_later.sql
\i test/fixtures/sample_data.sql
\set ECHO all
SET search_path = t_prod_grace_later, t_prod_grace, public;
CREATE VIEW v_tasks AS
SELECT n.label, t.status, t.failure_reason
FROM agent_task_queue t JOIN fx_names n ON n.id = t.id
ORDER BY 1;
SET runtime_sweeper.app_schema = t_prod_grace_later;
SELECT fx_workspace('ws_later') AS wsl \gset
SELECT fx_agent(:'wsl', NULL, 'agent_nowhere') AS agent_nw \gset
SELECT fx_name(fx_task(:'agent_nw', NULL, fx_issue(:'wsl', 'todo'), 'dispatched', '10 min', 1, 1), 'g1_dispatched_no_runtime') AS g1 \gset
SELECT fx_name(fx_task(:'agent_nw', NULL, fx_issue(:'wsl', 'todo'), 'running', '3 h', 1, 1), 'g2_running_no_runtime') AS g2 \gset
-- Rule: with a grace, a task past its timeout whose runtime is gone fails:
-- nothing can come back for it.  (An inner join on the runtime, or a grace
-- check that treated the missing runtime as fresh, would keep both for ever.)
SET runtime_sweeper.reconnect_grace = '1h';
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks() ORDER BY 1;
SELECT * FROM v_tasks;
RESET runtime_sweeper.reconnect_grace;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_prod_grace_later CASCADE;
DROP SCHEMA t_prod_grace CASCADE;
