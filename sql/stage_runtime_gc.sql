-- Stage 4 (gc_offline_runtimes): offline runtimes past the TTL that nothing references or needs are deleted (SPEC sections 2 and 7).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_gc;
SET search_path = t_gc, public;
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
SET runtime_sweeper.app_schema = t_gc;
SET runtime_sweeper.event_log = on;
-- Only events of this file are shown.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);
\pset null '(null)'

CREATE VIEW v_runtimes AS
SELECT n.label, r.status FROM agent_runtime r JOIN fx_names n ON n.id = r.id ORDER BY 1;
CREATE VIEW v_tasks AS
SELECT n.label, t.status, rn.label AS runtime
FROM agent_task_queue t JOIN fx_names n ON n.id = t.id LEFT JOIN fx_names rn ON rn.id = t.runtime_id
ORDER BY 1;

SELECT fx_name(fx_workspace('ws1'), 'ws1') AS ws1 \gset
SELECT fx_name(fx_workspace('ws2'), 'ws2') AS ws2 \gset
-- The runtime the agents live on now (online, fresh).
SELECT fx_name(fx_runtime(:'ws1', 'online', '0 s'), 'rt_home') AS rt_home \gset
SELECT fx_name(fx_agent(:'ws1', :'rt_home', 'agent_home'), 'agent_home') AS agent_home \gset

-- TTL 7 days (default): both sides of it.
SELECT fx_name(fx_runtime(:'ws1', 'offline', '8 days'), 'g01_old') AS g01 \gset
SELECT fx_name(fx_runtime(:'ws1', 'offline', '6 days'), 'g02_young') AS g02 \gset
-- Online runtimes are never collected, however long silent.
SELECT fx_name(fx_runtime(:'ws1', 'online', '30 days'), 'g03_online_30days') AS g03 \gset
-- NULL last_seen_at is never collected, even with an old updated_at.
SELECT fx_name(fx_runtime(:'ws1', 'offline', NULL), 'g04_never_seen') AS g04 \gset
UPDATE agent_runtime SET updated_at = now() - interval '30 days', created_at = now() - interval '30 days'
WHERE id = :'g04';
-- An agent blocks collection, also an archived one (the foreign key is RESTRICT).
SELECT fx_name(fx_runtime(:'ws1', 'offline', '8 days'), 'g05_agent') AS g05 \gset
SELECT fx_name(fx_agent(:'ws1', :'g05', 'agent_on_g05'), 'agent_on_g05') AS agent_on_g05 \gset
SELECT fx_name(fx_runtime(:'ws1', 'offline', '8 days'), 'g06_archived_agent') AS g06 \gset
SELECT fx_name(fx_agent(:'ws1', :'g06', 'agent_archived'), 'agent_archived') AS agent_archived \gset
UPDATE agent SET archived_at = now() - interval '10 days', status = 'offline' WHERE id = :'agent_archived';
-- A runtime with a non-terminal task is kept (the original's cascade would
-- have deleted the queued work with it).
SELECT fx_name(fx_runtime(:'ws1', 'offline', '8 days'), 'g07_queued') AS g07 \gset
SELECT fx_name(fx_task(:'agent_home', :'g07', fx_issue(:'ws1', 'todo'), 'queued', '9 days'), 'k1_queued') AS k1 \gset
SELECT fx_name(fx_runtime(:'ws1', 'offline', '8 days'), 'g08_dispatched') AS g08 \gset
SELECT fx_name(fx_task(:'agent_home', :'g08', fx_issue(:'ws1', 'todo'), 'dispatched', '9 days'), 'k2_dispatched') AS k2 \gset
SELECT fx_name(fx_runtime(:'ws1', 'offline', '8 days'), 'g09_running') AS g09 \gset
SELECT fx_name(fx_task(:'agent_home', :'g09', fx_issue(:'ws1', 'todo'), 'running', '9 days'), 'k3_running') AS k3 \gset
SELECT fx_name(fx_runtime(:'ws1', 'offline', '8 days'), 'g10_waiting') AS g10 \gset
SELECT fx_name(fx_task(:'agent_home', :'g10', fx_issue(:'ws1', 'todo'), 'waiting_local_directory', '9 days'), 'k4_waiting') AS k4 \gset
-- A runtime with only terminal tasks is collected, and its tasks go with it.
SELECT fx_name(fx_runtime(:'ws1', 'offline', '8 days'), 'g11_terminal_only') AS g11 \gset
SELECT fx_name(fx_task(:'agent_home', :'g11', fx_issue(:'ws1', 'todo'), 'completed', '9 days'), 'h1_completed') AS h1 \gset
SELECT fx_name(fx_task(:'agent_home', :'g11', fx_issue(:'ws1', 'todo'), 'failed', '9 days'), 'h2_failed') AS h2 \gset
SELECT fx_name(fx_task(:'agent_home', :'g11', fx_issue(:'ws1', 'todo'), 'cancelled', '9 days'), 'h3_cancelled') AS h3 \gset
-- Two collectable runtimes in a second workspace.
SELECT fx_name(fx_runtime(:'ws2', 'offline', '8 days'), 'g12_ws2_a') AS g12 \gset
SELECT fx_name(fx_runtime(:'ws2', 'offline', '9 days'), 'g13_ws2_b') AS g13 \gset

-- preview() names exactly the collectable runtimes, oldest first, and changes nothing.
SELECT stage, fx_redact(id::text) AS id, detail FROM runtime_sweeper.preview() WHERE stage = 'runtime_gc';
SELECT count(*) AS runtimes FROM agent_runtime;

-- The settings' TTL (NULL argument) collects those four and returns
-- (runtime_id, workspace_id).
SELECT fx_redact(runtime_id::text) AS runtime_id, fx_redact(workspace_id::text) AS workspace_id
FROM runtime_sweeper.gc_offline_runtimes()
ORDER BY 1;
SELECT * FROM v_runtimes;
-- The terminal tasks of the collected runtime went with it (cascade); the
-- non-terminal tasks and their runtimes stay.
SELECT * FROM v_tasks;
-- The agents are untouched.
SELECT n.label, a.status, a.archived_at IS NOT NULL AS archived
FROM agent a JOIN fx_names n ON n.id = a.id ORDER BY 1;
-- One daemon:register runtime_gc per distinct workspace of the deleted runtimes.
SELECT * FROM fx_events() ORDER BY 1;

-- Nothing left to collect.
SELECT count(*) AS collected FROM runtime_sweeper.gc_offline_runtimes();
SELECT * FROM fx_events();

-- Once its last non-terminal task completes, the runtime is collected.
UPDATE agent_task_queue SET status = 'completed', completed_at = now() WHERE id = :'k1';
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes();
SELECT * FROM v_tasks;
-- ... and once its agent is deleted, so is that runtime.
DELETE FROM agent WHERE id = :'agent_on_g05';
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes();
SELECT * FROM fx_events();

-- A shorter TTL argument collects the younger runtime; online and
-- never-seen runtimes stay even with a 1 s TTL.
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes('5 days');
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes('1 s');
SELECT * FROM v_runtimes;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

------------------------------------------------------------------------------
-- The later schema shape: agent.runtime_id is nullable.  One agent without a
-- runtime must not stop the collection of every runtime (the original's
-- NOT IN (SELECT runtime_id FROM agent) collected nothing then).
------------------------------------------------------------------------------
CREATE SCHEMA t_gc_later;
SET search_path = t_gc_later, public;
\set ECHO none
\i test/fixtures/app_schema_later.sql
\i test/fixtures/sample_data.sql
\set ECHO all
-- The labels of t_gc (fx_name, fx_redact) stay reachable.
SET search_path = t_gc_later, t_gc, public;
SET runtime_sweeper.app_schema = t_gc_later;

SELECT fx_workspace('ws_later') AS wsl \gset
SELECT fx_name(fx_runtime(:'wsl', 'offline', '8 days'), 'l1_unreferenced') AS l1 \gset
SELECT fx_name(fx_runtime(:'wsl', 'offline', '8 days'), 'l2_with_agent') AS l2 \gset
SELECT fx_name(fx_runtime(:'wsl', 'offline', '8 days'), 'l3_deferred_task') AS l3 \gset
SELECT fx_agent(:'wsl', NULL, 'agent_without_runtime') AS agent_nr \gset
SELECT fx_agent(:'wsl', :'l2', 'agent_on_l2') AS agent_l2 \gset
-- 'deferred' (a later status) is not terminal: it keeps its runtime too.
SELECT fx_task(:'agent_nr', :'l3', NULL, 'deferred', '9 days') AS deferred_task \gset
SELECT count(*) AS agents_without_runtime FROM agent WHERE runtime_id IS NULL;

SELECT stage, fx_redact(id::text) AS id FROM runtime_sweeper.preview() WHERE stage = 'runtime_gc';
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes();
SELECT fx_redact(id::text) AS runtime, status FROM agent_runtime ORDER BY 1;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_gc_later CASCADE;
DROP SCHEMA t_gc CASCADE;
