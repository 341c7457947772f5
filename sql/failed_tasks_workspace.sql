-- Failed-task handling: the workspace a task's events go to, and tasks whose workspace cannot be resolved (SPEC section 2).
SET client_min_messages = warning;  -- quiet whether or not an earlier test created it
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_workspace;
SET search_path = t_workspace, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_workspace;
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

SELECT fx_name(fx_workspace('issue'), 'ws_issue') AS ws_issue \gset
SELECT fx_name(fx_workspace('chat'), 'ws_chat') AS ws_chat \gset
SELECT fx_name(fx_workspace('autopilot'), 'ws_autopilot') AS ws_autopilot \gset
SELECT fx_name(fx_workspace('context'), 'ws_context') AS ws_context \gset
SELECT fx_name(fx_runtime(:'ws_issue'), 'rt') AS rt \gset
SELECT fx_name(fx_agent(:'ws_issue', :'rt'), 'agent') AS agent \gset
SELECT fx_name(fx_chat_session(:'ws_chat', :'agent'), 'chat') AS chat \gset
SELECT fx_name(fx_autopilot_run(:'ws_autopilot'), 'run') AS run \gset
-- A task on no issue, failing now (attempt 2 of 2: no retry), with the given
-- chat session, autopilot run and context.
CREATE FUNCTION failing_task(label text, age interval, chat uuid, run uuid, ctx jsonb,
                             issue uuid DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    task_id uuid := fx_name(fx_task((SELECT a.id FROM agent a WHERE a.name = 'agent'),
                               (SELECT r.id FROM agent_runtime r LIMIT 1),
                               issue, 'running', age, 2, 2), label);
BEGIN
    UPDATE agent_task_queue t SET chat_session_id = chat, autopilot_run_id = run, context = ctx
    WHERE t.id = task_id;
    RETURN task_id;
END
$$;
-- Events of earlier test files are not ours.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);

-- Rule: the resolution chain: the issue's workspace first, else the chat
-- session's, else the autopilot run's autopilot's, else the quick_create
-- context's workspace_id (sent lower case even when stored upper case);
-- the task:failed event goes to that workspace.
SELECT failing_task('T_issue', '40 min', :'chat', :'run',
                    jsonb_build_object('type', 'quick_create', 'workspace_id', :'ws_context'::text),
                    fx_name(fx_issue(:'ws_issue', 'done'), 'I')) IS NOT NULL AS created;
SELECT failing_task('T_chat', '30 min', :'chat', :'run',
                    jsonb_build_object('type', 'quick_create', 'workspace_id', :'ws_context'::text)) IS NOT NULL AS created;
SELECT failing_task('T_autopilot', '20 min', NULL, :'run',
                    jsonb_build_object('type', 'quick_create', 'workspace_id', :'ws_context'::text)) IS NOT NULL AS created;
SELECT failing_task('T_context', '10 min', NULL, NULL,
                    jsonb_build_object('type', 'quick_create', 'workspace_id', upper(:'ws_context'::text))) IS NOT NULL AS created;
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM ev();

-- Rule: a context that is not a quick_create object with a valid UUID
-- workspace_id leaves the task unresolved, never raises: the task is still
-- failed and its agent reconciled, but it gets no task:failed event.
SELECT now() AS batch2 \gset
SELECT failing_task('T_other_type', '120 min', NULL, NULL,
                    jsonb_build_object('type', 'issue', 'workspace_id', :'ws_context'::text)) IS NOT NULL AS created;
SELECT failing_task('T_array', '110 min', NULL, NULL,
                    jsonb_build_array(jsonb_build_object('type', 'quick_create', 'workspace_id', :'ws_context'::text))) IS NOT NULL AS created;
SELECT failing_task('T_string', '100 min', NULL, NULL, '"quick_create"') IS NOT NULL AS created;
SELECT failing_task('T_number', '90 min', NULL, NULL, '42') IS NOT NULL AS created;
SELECT failing_task('T_json_null', '80 min', NULL, NULL, 'null') IS NOT NULL AS created;
SELECT failing_task('T_sql_null', '75 min', NULL, NULL, NULL) IS NOT NULL AS created;
SELECT failing_task('T_ws_number', '70 min', NULL, NULL, '{"type": "quick_create", "workspace_id": 42}') IS NOT NULL AS created;
SELECT failing_task('T_ws_object', '60 min', NULL, NULL,
                    jsonb_build_object('type', 'quick_create', 'workspace_id', jsonb_build_object('id', :'ws_context'::text))) IS NOT NULL AS created;
SELECT failing_task('T_ws_null', '50 min', NULL, NULL, '{"type": "quick_create", "workspace_id": null}') IS NOT NULL AS created;
SELECT failing_task('T_ws_missing', '45 min', NULL, NULL, '{"type": "quick_create"}') IS NOT NULL AS created;
SELECT failing_task('T_type_array', '40 min', NULL, NULL,
                    jsonb_build_object('type', jsonb_build_array('quick_create'), 'workspace_id', :'ws_context'::text)) IS NOT NULL AS created;
SELECT failing_task('T_bad_uuid', '30 min', NULL, NULL, '{"type": "quick_create", "workspace_id": "not-a-uuid"}') IS NOT NULL AS created;
SELECT failing_task('T_long_uuid', '20 min', NULL, NULL,
                    jsonb_build_object('type', 'quick_create', 'workspace_id', :'ws_context'::text || '0')) IS NOT NULL AS created;
SELECT failing_task('T_bad_hex', '10 min', NULL, NULL,
                    '{"type": "quick_create", "workspace_id": "g0000000-0000-0000-0000-000000000000"}') IS NOT NULL AS created;
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT fx_redact(id::text) AS task, status, failure_reason FROM agent_task_queue
WHERE completed_at > :'batch2' ORDER BY created_at;
SELECT * FROM ev();

-- Rule: an unresolved task that is retried (here its chat session row is
-- missing: the test drops the foreign key to leave a dangling reference) is
-- still failed and its retry child is created, but neither the child's
-- task:queued nor the parent's task:failed is sent; the agent still is.
ALTER TABLE agent_task_queue DROP CONSTRAINT agent_task_queue_chat_session_id_fkey;
SELECT fx_name(fx_task(:'agent', :'rt', NULL, 'running', '10 min', 1, 2), 'T_dangling') AS t_dangling \gset
UPDATE agent_task_queue SET chat_session_id = gen_random_uuid() WHERE id = :'t_dangling';
SELECT fx_redact(task_id::text) AS task, retry_task_id IS NOT NULL AS retried
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT status, attempt, chat_session_id = (SELECT chat_session_id FROM agent_task_queue WHERE id = :'t_dangling') AS same_chat
FROM agent_task_queue WHERE parent_task_id = :'t_dangling';
SELECT * FROM ev();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_workspace CASCADE;
