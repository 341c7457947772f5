-- Failed-task handling, step 2: when a failed task's issue goes back to todo (SPEC section 2, section 7 issue:updated).
SET client_min_messages = warning;  -- quiet whether or not an earlier test created it
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_rollback;
SET search_path = t_rollback, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_rollback;
SET runtime_sweeper.event_log = on;
\pset null '(null)'

-- The events since the last call, in order; agent:status shortened to agent and status.
CREATE FUNCTION ev() RETURNS TABLE (type text, workspace text, payload text)
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT e::json ->> 'type', e::json ->> 'workspace_id',
           CASE WHEN e::json ->> 'type' = 'agent:status'
                THEN concat_ws(' ', e::json -> 'payload' ->> 'agent_id', e::json -> 'payload' ->> 'status')
                ELSE (e::json -> 'payload')::text END
    FROM fx_events() WITH ORDINALITY AS f(e, n) ORDER BY n
$$;

-- Issues as the tests print them (updated_at relative to a stored mark).
CREATE TABLE mark (at timestamptz NOT NULL);
INSERT INTO mark VALUES ('2000-01-01 00:00:00+00');
CREATE VIEW issues AS
    SELECT fx_redact(i.id::text) AS issue, i.status,
           i.updated_at > (SELECT at FROM mark) AS updated
    FROM issue i;

SELECT fx_name(fx_workspace(), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws'), 'rt') AS rt \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'a1'), 'a1') AS a1 \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'a2'), 'a2') AS a2 \gset
-- Events of earlier test files are not ours.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);

-- Rule: an in_progress issue whose failed task got no retry and which has no
-- other active task goes back to todo, with updated_at bumped to now().
-- issue_events is off: no issue:updated event.
SELECT fx_name(fx_issue(:'ws'), 'I1') AS i1 \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i1', 'running', '10 min', 2, 2), 'T1') AS t1 \gset
UPDATE issue SET updated_at = '2000-01-01 00:00:00+00' WHERE id = :'i1';
BEGIN;
SELECT fx_redact(task_id::text) AS task, retry_task_id FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT fx_redact(id::text) AS issue, status, updated_at = now() AS updated_now FROM issue WHERE id = :'i1';
COMMIT;
SELECT * FROM ev();

-- Rule: only status exactly in_progress is rolled back: in_review, done,
-- blocked, todo and backlog issues are left alone (updated_at untouched).
SELECT fx_name(fx_issue(:'ws', 'in_review'), 'I_review') AS i_review \gset
SELECT fx_name(fx_issue(:'ws', 'done'), 'I_done') AS i_done \gset
SELECT fx_name(fx_issue(:'ws', 'blocked'), 'I_blocked') AS i_blocked \gset
SELECT fx_name(fx_issue(:'ws', 'todo'), 'I_todo') AS i_todo \gset
SELECT fx_name(fx_issue(:'ws', 'backlog'), 'I_backlog') AS i_backlog \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_review', 'running', '50 min', 2, 2), 'T_review') AS t_review \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_done', 'running', '40 min', 2, 2), 'T_done') AS t_done \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_blocked', 'running', '30 min', 2, 2), 'T_blocked') AS t_blocked \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_todo', 'running', '20 min', 2, 2), 'T_todo') AS t_todo \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_backlog', 'running', '10 min', 2, 2), 'T_backlog') AS t_backlog \gset
UPDATE mark SET at = now();
SELECT fx_redact(task_id::text) AS task, retry_task_id FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM issues WHERE issue IN ('I_review', 'I_done', 'I_blocked', 'I_todo', 'I_backlog') ORDER BY issue;
SELECT * FROM ev();

-- Rule: no rollback while another task of the issue is queued, dispatched,
-- running or waiting_local_directory (that task is a2's, fresh, so it is not
-- failed itself); a completed, failed or cancelled task does not count.
SELECT fx_name(fx_issue(:'ws'), 'I_queued') AS i_queued \gset
SELECT fx_name(fx_issue(:'ws'), 'I_dispatched') AS i_dispatched \gset
SELECT fx_name(fx_issue(:'ws'), 'I_running') AS i_running \gset
SELECT fx_name(fx_issue(:'ws'), 'I_waiting') AS i_waiting \gset
SELECT fx_name(fx_issue(:'ws'), 'I_completed') AS i_completed \gset
SELECT fx_name(fx_issue(:'ws'), 'I_failed') AS i_failed \gset
SELECT fx_name(fx_issue(:'ws'), 'I_cancelled') AS i_cancelled \gset
SELECT fx_task(:'a2', :'rt', :'i_queued', 'queued') IS NOT NULL AS other,
       fx_task(:'a2', :'rt', :'i_dispatched', 'dispatched') IS NOT NULL AS other,
       fx_task(:'a2', :'rt', :'i_running', 'running') IS NOT NULL AS other,
       fx_task(:'a2', :'rt', :'i_waiting', 'waiting_local_directory') IS NOT NULL AS other,
       fx_task(:'a2', :'rt', :'i_completed', 'completed') IS NOT NULL AS other,
       fx_task(:'a2', :'rt', :'i_failed', 'failed') IS NOT NULL AS other,
       fx_task(:'a2', :'rt', :'i_cancelled', 'cancelled') IS NOT NULL AS other;
SELECT fx_name(fx_task(:'a1', :'rt', :'i_queued', 'running', '70 min', 2, 2), 'T_queued') AS t_queued \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_dispatched', 'running', '60 min', 2, 2), 'T_dispatched') AS t_dispatched \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_running', 'running', '50 min', 2, 2), 'T_running') AS t_running \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_waiting', 'running', '40 min', 2, 2), 'T_waiting') AS t_waiting \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_completed', 'running', '30 min', 2, 2), 'T_completed') AS t_completed \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_failed', 'running', '20 min', 2, 2), 'T_failed') AS t_failed \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_cancelled', 'running', '10 min', 2, 2), 'T_cancelled') AS t_cancelled \gset
UPDATE mark SET at = now();
SELECT fx_redact(task_id::text) AS task, retry_task_id FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM issues WHERE issue IN ('I_queued', 'I_dispatched', 'I_running', 'I_waiting',
                                     'I_completed', 'I_failed', 'I_cancelled') ORDER BY issue;
SELECT count(*) AS events FROM ev();

-- Rule: no rollback when a retry was created for the issue's task.
SELECT fx_name(fx_issue(:'ws'), 'I_retry') AS i_retry \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_retry', 'running', '10 min', 1, 2), 'T_retry') AS t_retry \gset
UPDATE mark SET at = now();
SELECT fx_redact(task_id::text) AS task, retry_task_id IS NOT NULL AS retried
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM issues WHERE issue = 'I_retry';
SELECT * FROM ev();

-- Rule: two failing tasks of one issue in one batch.  Tasks are handled in
-- (created_at, id) order and the issue is evaluated once per batch, at its
-- first task, which must not have created a retry; retry children created
-- by LATER tasks of the batch do not count as active at that point (the
-- original created them only after it had evaluated the issue).
-- (a) the older task (a1) is retryable, the younger (a2) is not: the first
--     task created a retry, so the issue is not rolled back; the younger
--     task does not evaluate it again.  Expected: I_a stays in_progress.
SELECT fx_name(fx_issue(:'ws'), 'I_a') AS i_a \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_a', 'running', '20 min', 1, 2), 'T_a_old') AS t_a_old \gset
SELECT fx_name(fx_task(:'a2', :'rt', :'i_a', 'running', '10 min', 2, 2), 'T_a_young') AS t_a_young \gset
UPDATE mark SET at = now();
SELECT fx_redact(task_id::text) AS task, retry_task_id IS NOT NULL AS retried
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM issues WHERE issue = 'I_a';
SELECT * FROM ev();
-- (b) the older task (a1) is not retryable, the younger (a2) is: the issue is
--     evaluated at the older task, which created no retry; the younger task
--     is already failed and its retry child does not exist yet, so no task of
--     the issue is active: rolled back to todo.  The younger task then gets
--     its retry (a queued child on a todo issue).  Expected: I_b todo.
SELECT fx_name(fx_issue(:'ws'), 'I_b') AS i_b \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_b', 'running', '20 min', 2, 2), 'T_b_old') AS t_b_old \gset
SELECT fx_name(fx_task(:'a2', :'rt', :'i_b', 'running', '10 min', 1, 2), 'T_b_young') AS t_b_young \gset
UPDATE mark SET at = now();
SELECT fx_redact(task_id::text) AS task, retry_task_id IS NOT NULL AS retried
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM issues WHERE issue = 'I_b';
SELECT fx_redact(agent_id::text) AS agent, status FROM agent_task_queue WHERE issue_id = :'i_b' AND status = 'queued';
SELECT * FROM ev();

-- Rule: with issue_events on, a rollback emits issue:updated
-- {"issue_id","status":"todo","prev_status":"in_progress","status_changed":true}
-- (before the task's task:failed); an issue that is not rolled back emits none.
SET runtime_sweeper.issue_events = on;
SELECT fx_name(fx_issue(:'ws'), 'I_ev') AS i_ev \gset
SELECT fx_name(fx_issue(:'ws', 'in_review'), 'I_ev_review') AS i_ev_review \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_ev', 'running', '20 min', 2, 2), 'T_ev') AS t_ev \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_ev_review', 'running', '10 min', 2, 2), 'T_ev_review') AS t_ev_review \gset
UPDATE mark SET at = now();
SELECT fx_redact(task_id::text) AS task, retry_task_id FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM issues WHERE issue IN ('I_ev', 'I_ev_review') ORDER BY issue;
SELECT * FROM fx_events();
RESET runtime_sweeper.issue_events;

-- Rule: the status view counts each rollback (issues_rolled_back moves by one).
SELECT coalesce((SELECT issues_rolled_back FROM runtime_sweeper.status WHERE database = current_database()), 0) AS rolled0 \gset
SELECT fx_name(fx_issue(:'ws'), 'I_count') AS i_count \gset
SELECT fx_name(fx_task(:'a1', :'rt', :'i_count', 'running', '10 min', 2, 2), 'T_count') AS t_count \gset
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT issues_rolled_back - :rolled0 AS issues_rolled_back
FROM runtime_sweeper.status WHERE database = current_database();
SELECT * FROM issues WHERE issue = 'I_count';
SELECT count(*) AS events FROM ev();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_rollback CASCADE;
