-- Runtime GC as production needs it: bounded batches (gc_batch_size), and gc_keep_history on both schema shapes (SPEC section 7).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_prod_gc;
SET search_path = t_prod_gc, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_prod_gc;
SET runtime_sweeper.event_log = on;
-- Only events of this file are shown.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);
\pset null '(null)'

-- A counter of the status view for this database (0 before anything counted).
CREATE FUNCTION counter_now(name text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT coalesce((SELECT (to_jsonb(s) ->> name)::bigint FROM runtime_sweeper.status s
                     WHERE s.database = current_database()), 0)
$$;
-- Labelled runtimes still there, and labelled tasks with the label of their runtime.
CREATE VIEW v_runtimes AS
SELECT n.label, r.status FROM agent_runtime r JOIN fx_names n ON n.id = r.id ORDER BY 1;
CREATE VIEW v_tasks AS
SELECT n.label, t.status, coalesce(rn.label, t.runtime_id::text) AS runtime
FROM agent_task_queue t JOIN fx_names n ON n.id = t.id LEFT JOIN fx_names rn ON rn.id = t.runtime_id
ORDER BY 1;

SELECT fx_name(fx_workspace('ws'), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws', 'online', '0 s'), 'rt_home') AS rt_home \gset
SELECT fx_name(fx_agent(:'ws', :'rt_home', 'agent_home'), 'agent_home') AS agent_home \gset

------------------------------------------------------------------------------
-- Rule: GC batches are bounded: with gc_batch_size 2 and three collectable
-- runtimes, a sweep deletes the two longest silent, the next one the third.
-- Without the bound the first sweep would delete all three.
------------------------------------------------------------------------------
SELECT fx_name(fx_runtime(:'ws', 'offline', '8 days'), 'b3_8days') AS b3 \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '10 days'), 'b1_10days') AS b1 \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '9 days'), 'b2_9days') AS b2 \gset
SET runtime_sweeper.gc_batch_size = 2;
-- preview() shows one batch, oldest first.
SELECT stage, fx_redact(id::text) AS id FROM runtime_sweeper.preview() WHERE stage = 'runtime_gc';
SELECT * FROM runtime_sweeper.sweep() WHERE stage = 'runtime_gc';
SELECT * FROM v_runtimes;
-- gc_offline_runtimes() obeys the same bound and takes what is left.
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes();
SELECT * FROM v_runtimes;
RESET runtime_sweeper.gc_batch_size;
-- One daemon:register runtime_gc per call (one workspace).
SELECT * FROM fx_events();

------------------------------------------------------------------------------
-- The original shape (agent_task_queue.runtime_id NOT NULL, ON DELETE CASCADE).
------------------------------------------------------------------------------
-- Rule: gc_keep_history off (the default): a runtime whose tasks are all
-- terminal is deleted and its task history goes with it (the cascade).
SELECT fx_name(fx_runtime(:'ws', 'offline', '8 days'), 'o1_history_off') AS o1 \gset
SELECT fx_name(fx_task(:'agent_home', :'o1', fx_issue(:'ws', 'todo'), 'completed', '9 days'), 'o1_completed') AS o1_completed \gset
SELECT fx_name(fx_task(:'agent_home', :'o1', fx_issue(:'ws', 'todo'), 'failed', '9 days'), 'o1_failed') AS o1_failed \gset
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes();
SELECT * FROM v_tasks;

-- Rule: gc_keep_history on, with a NOT NULL runtime_id: a runtime that still
-- has task history is kept (deleting it would cascade the history away) and
-- the status view's gc_held_back (a gauge: how many runtimes the last GC
-- run kept for their history) shows it; a runtime with no task at all is
-- still collected.  Without the setting o2 would be deleted with its tasks.
SELECT fx_name(fx_runtime(:'ws', 'offline', '8 days'), 'o2_history_on') AS o2 \gset
SELECT fx_name(fx_task(:'agent_home', :'o2', fx_issue(:'ws', 'todo'), 'completed', '9 days'), 'o2_completed') AS o2_completed \gset
SELECT fx_name(fx_task(:'agent_home', :'o2', fx_issue(:'ws', 'todo'), 'cancelled', '9 days'), 'o2_cancelled') AS o2_cancelled \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '8 days'), 'o3_no_tasks') AS o3 \gset
SET runtime_sweeper.gc_keep_history = on;
SELECT counter_now('runtimes_collected') AS collected0 \gset
-- preview() does not name the runtime kept for its history.
SELECT stage, fx_redact(id::text) AS id FROM runtime_sweeper.preview() WHERE stage = 'runtime_gc';
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes();
SELECT counter_now('gc_held_back') AS gc_held_back,
       counter_now('runtimes_collected') - :collected0 AS runtimes_collected;
SELECT * FROM v_runtimes WHERE label LIKE 'o%';
SELECT * FROM v_tasks;
-- The next run still holds it back: the gauge stays at 1 (not 2).
SELECT count(*) AS collected FROM runtime_sweeper.gc_offline_runtimes();
SELECT counter_now('gc_held_back') AS gc_held_back;
-- Turned off again, the held runtime is collected with its history.
RESET runtime_sweeper.gc_keep_history;
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes();
SELECT * FROM v_tasks;
SELECT count(*) >= 0 AS events_drained FROM fx_events();

------------------------------------------------------------------------------
-- The later shape (agent_task_queue.runtime_id nullable, still ON DELETE CASCADE).
------------------------------------------------------------------------------
CREATE SCHEMA t_prod_gc_later;
SET search_path = t_prod_gc_later, public;
\set ECHO none
\i test/fixtures/app_schema_later.sql
\i test/fixtures/sample_data.sql
\set ECHO all
-- The labels and views of t_prod_gc read this schema's tables from here on.
SET search_path = t_prod_gc_later, t_prod_gc, public;
CREATE VIEW v_runtimes AS
SELECT n.label, r.status FROM agent_runtime r JOIN fx_names n ON n.id = r.id ORDER BY 1;
CREATE VIEW v_tasks AS
SELECT n.label, t.status, coalesce(rn.label, t.runtime_id::text) AS runtime
FROM agent_task_queue t JOIN fx_names n ON n.id = t.id LEFT JOIN fx_names rn ON rn.id = t.runtime_id
ORDER BY 1;
SET runtime_sweeper.app_schema = t_prod_gc_later;

SELECT fx_name(fx_workspace('ws_later'), 'ws_later') AS wsl \gset
SELECT fx_name(fx_runtime(:'wsl', 'online', '0 s'), 'rt_later_home') AS rt_later_home \gset
SELECT fx_name(fx_agent(:'wsl', :'rt_later_home', 'agent_later'), 'agent_later') AS agent_later \gset

-- Rule: gc_keep_history off: the later shape cascades exactly like the original.
SELECT fx_name(fx_runtime(:'wsl', 'offline', '8 days'), 'l1_history_off') AS l1 \gset
SELECT fx_name(fx_task(:'agent_later', :'l1', fx_issue(:'wsl', 'todo'), 'completed', '9 days'), 'l1_completed') AS l1_completed \gset
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.gc_offline_runtimes();
SELECT * FROM v_tasks;

-- Rule: gc_keep_history on, with a nullable runtime_id: the runtime is
-- deleted and its terminal tasks are detached (runtime_id NULL), not
-- cascaded away; nothing is held back.  A runtime with a non-terminal
-- (here deferred) task is still kept, and so is its history.  Without the
-- setting l2's tasks would be gone (the cascade above).
SELECT fx_name(fx_runtime(:'wsl', 'offline', '8 days'), 'l2_history_on') AS l2 \gset
SELECT fx_name(fx_task(:'agent_later', :'l2', fx_issue(:'wsl', 'todo'), 'completed', '9 days'), 'l2_completed') AS l2_completed \gset
SELECT fx_name(fx_task(:'agent_later', :'l2', fx_issue(:'wsl', 'todo'), 'failed', '9 days'), 'l2_failed') AS l2_failed \gset
SELECT fx_name(fx_runtime(:'wsl', 'offline', '8 days'), 'l3_deferred') AS l3 \gset
SELECT fx_name(fx_task(:'agent_later', :'l3', fx_issue(:'wsl', 'todo'), 'completed', '9 days'), 'l3_completed') AS l3_completed \gset
SELECT fx_name(fx_task(:'agent_later', :'l3', NULL, 'deferred', '9 days'), 'l3_deferred_task') AS l3_deferred_task \gset
-- A task of another runtime is not detached.
SELECT fx_name(fx_task(:'agent_later', :'rt_later_home', fx_issue(:'wsl', 'todo'), 'completed', '9 days'), 'h1_home_completed') AS h1 \gset
SET runtime_sweeper.gc_keep_history = on;
SELECT fx_redact(runtime_id::text) AS runtime_id, fx_redact(workspace_id::text) AS workspace_id
FROM runtime_sweeper.gc_offline_runtimes();
SELECT * FROM v_runtimes WHERE label LIKE 'l%';
SELECT * FROM v_tasks;
SELECT counter_now('gc_held_back') AS gc_held_back;
-- One daemon:register runtime_gc per call that deleted (l1's, then l2's).
SELECT * FROM fx_events();
RESET runtime_sweeper.gc_keep_history;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_prod_gc_later CASCADE;
DROP SCHEMA t_prod_gc CASCADE;
