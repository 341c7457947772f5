-- The later schema's prepare_lease_expires_at: a dispatched task with a future lease is never timed out, every terminal write clears the lease, and the column is found in the catalog when it appears or goes (SPEC sections 1 and 7).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_lease;
SET search_path = t_lease, public;
\set ECHO none
\i test/fixtures/app_schema_later.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_lease;
\pset null '(null)'

-- Tasks with their status, reason, and whether their lease is in the future,
-- in the past, or cleared; retry children by their parent.
CREATE VIEW v_tasks AS
SELECT coalesce(n.label, 'retry of ' || p.label) AS label, t.status, t.failure_reason,
       CASE WHEN t.prepare_lease_expires_at IS NULL THEN 'none'
            WHEN t.prepare_lease_expires_at > now() THEN 'future'
            ELSE 'past' END AS lease
FROM agent_task_queue t
LEFT JOIN fx_names n ON n.id = t.id
LEFT JOIN fx_names p ON p.id = t.parent_task_id
ORDER BY 1;
CREATE PROCEDURE lease(task uuid, expires_in interval) LANGUAGE sql AS $$
    UPDATE agent_task_queue SET prepare_lease_expires_at = now() + expires_in WHERE id = task;
$$;

SELECT fx_name(fx_workspace('ws'), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws', 'online', '0 s'), 'rt') AS rt \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '1 h'), 'rt_off') AS rt_off \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'agent_a'), 'agent_a') AS agent_a \gset

------------------------------------------------------------------------------
-- stale_tasks: the lease guard.
------------------------------------------------------------------------------
-- Dispatched 10 min ago, past the 5 min dispatch timeout: with a lease that
-- runs 5 more minutes, with one that ran out a minute ago, without one.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'dispatched', '10 min'), 'd1_lease_future') AS d1 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'dispatched', '10 min'), 'd2_lease_past') AS d2 \gset
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'dispatched', '10 min'), 'd3_no_lease') AS d3 \gset
-- Running for 3 h, past the running timeout, with a future lease.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'running', '3 h'), 'r1_running_lease_future') AS r1 \gset
CALL lease(:'d1', '5 min');
CALL lease(:'d2', '-1 min');
CALL lease(:'r1', '5 min');

-- Rule: a dispatched task whose lease is still in the future is never timed
-- out, not even by a 1 s dispatch timeout; an expired lease or none does not
-- protect; the guard is for dispatched tasks only (a running task past its
-- timeout fails whatever its lease).  Every task the stage fails has its
-- lease cleared.  Without the guard d1 would fail; without the clear d2 and
-- r1 would keep their lease.  preview() and sweep() follow the same rule.
SELECT stage, fx_redact(id::text) AS id FROM runtime_sweeper.preview() WHERE stage = 'stale_tasks';
SELECT * FROM runtime_sweeper.sweep() WHERE stage = 'stale_tasks';
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks('1 s', NULL);
SELECT * FROM v_tasks;
-- Once the lease has run out, the task times out and the lease is cleared.
CALL lease(:'d1', '-1 s');
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks();
SELECT * FROM v_tasks WHERE label IN ('d1_lease_future', 'retry of d1_lease_future');

------------------------------------------------------------------------------
-- offline_tasks and queued_expiry clear the lease too.
------------------------------------------------------------------------------
DELETE FROM agent_task_queue;
-- A dispatched task of an offline runtime, with a future lease: the lease
-- protects against the dispatch timeout only, not against the runtime going
-- away.
SELECT fx_name(fx_task(:'agent_a', :'rt_off', fx_issue(:'ws', 'todo'), 'dispatched', '1 min'), 'o1_offline_lease_future') AS o1 \gset
CALL lease(:'o1', '5 min');
-- A queued task past the queued TTL that carries a lease.
SELECT fx_name(fx_task(:'agent_a', :'rt', fx_issue(:'ws', 'todo'), 'queued', '3 h'), 'q1_queued_lease') AS q1 \gset
CALL lease(:'q1', '5 min');
-- Rule: the runtime_offline and queued_expired writes clear the lease
-- (without @LEASE_CLEAR@ in them both would still show 'future').
SELECT * FROM runtime_sweeper.sweep() WHERE stage IN ('offline_tasks', 'queued_expiry');
SELECT * FROM v_tasks;
-- ... and so does stage 1's own task failing after a flip.
SELECT fx_name(fx_runtime(:'ws', 'online', '1 h'), 'rt_stale') AS rt_stale \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_stale', fx_issue(:'ws', 'todo'), 'running', '1 min'), 's1_running_lease') AS s1 \gset
CALL lease(:'s1', '5 min');
SELECT fx_redact(runtime_id::text) AS runtime_id FROM runtime_sweeper.mark_stale_runtimes_offline();
SELECT * FROM v_tasks WHERE label LIKE 's1%' OR label LIKE 'retry of s1%';

------------------------------------------------------------------------------
-- The shape is read from the catalog at every call: no restart, no cache.
------------------------------------------------------------------------------
-- Rule: on a schema of the original shape the lease column does not exist
-- and nothing refers to it; when the application adds it the next call uses
-- it; when it is dropped again the next call works without it.  A shape
-- cached from an earlier call would either ignore the new lease (d4 timed
-- out) or refer to the dropped column (an error).
CREATE SCHEMA t_lease_orig;
SET search_path = t_lease_orig, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\set ECHO all
SET search_path = t_lease_orig, t_lease, public;
SET runtime_sweeper.app_schema = t_lease_orig;
SELECT fx_workspace('ws_orig') AS wso \gset
SELECT fx_runtime(:'wso', 'online', '0 s') AS rto \gset
SELECT fx_agent(:'wso', :'rto', 'agent_o') AS agent_o \gset
SELECT fx_name(fx_task(:'agent_o', :'rto', fx_issue(:'wso', 'todo'), 'dispatched', '10 min', 1, 1), 'd4_original_shape') AS d4 \gset
SELECT fx_name(fx_task(:'agent_o', :'rto', fx_issue(:'wso', 'todo'), 'dispatched', '10 min', 1, 1), 'd5_original_shape') AS d5 \gset
-- No lease column: both time out.
SELECT * FROM runtime_sweeper.sweep();
-- The application adds the column and leases d4; both are dispatched again.
ALTER TABLE agent_task_queue ADD COLUMN prepare_lease_expires_at timestamptz;
UPDATE agent_task_queue SET status = 'dispatched', failure_reason = NULL, completed_at = NULL,
       prepare_lease_expires_at = now() + interval '5 min'
WHERE id = :'d4';
UPDATE agent_task_queue SET status = 'dispatched', failure_reason = NULL, completed_at = NULL
WHERE id = :'d5';
-- The very next call honours the lease: only d5 times out.
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks();
-- The column goes again: the next calls run without it, d4 times out.
ALTER TABLE agent_task_queue DROP COLUMN prepare_lease_expires_at;
SELECT fx_redact(task_id::text) AS task_id FROM runtime_sweeper.fail_stale_tasks();
SELECT * FROM runtime_sweeper.sweep();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_lease_orig CASCADE;
DROP SCHEMA t_lease CASCADE;
