-- Events: order within a batch, envelope and payload encoding, truncation, analytics, transactionality (SPEC section 4).
SET client_min_messages = warning;  -- quiet whether or not an earlier test created it
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_events;
SET search_path = t_events, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_events;
SET runtime_sweeper.event_log = on;
\pset null '(null)'

-- Labels the retry child returned for a task "<task label>.retry".
CREATE FUNCTION name_retry(task uuid, retry uuid) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF retry IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM fx_name(retry, fx_redact(task::text) || '.retry');
    RETURN fx_redact(retry::text);
END
$$;

-- One counter of this database's row of the status view.
CREATE FUNCTION counter(name text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT coalesce((SELECT (to_jsonb(s) ->> name)::bigint FROM runtime_sweeper.status s
                     WHERE s.database = current_database()), 0)
$$;

SELECT fx_name(fx_workspace(), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws'), 'rt') AS rt \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'a1'), 'a1') AS a1 \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'a2'), 'a2') AS a2 \gset
-- Events of earlier test files are not ours.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);

-- Rule: order within a batch: tasks in (created_at, id) order, each retried
-- task's task:queued right before its own task:failed; then one agent:status
-- per agent (in order of first appearance) after all task events.  Envelope:
-- type, workspace_id, actor_type "system", actor_id "".  A NULL issue_id is
-- "" (T3 is a chat-session task, whose task:queued carries chat_session_id).
SELECT fx_name(fx_task(:'a2', :'rt', fx_name(fx_issue(:'ws'), 'I1'), 'running', '40 min'), 'T1') AS t1 \gset
SELECT fx_name(fx_task(:'a1', :'rt', fx_name(fx_issue(:'ws', 'in_review'), 'I2'), 'running', '30 min', 2, 2), 'T2') AS t2 \gset
SELECT fx_name(fx_task(:'a2', :'rt', NULL, 'dispatched', '20 min'), 'T3') AS t3 \gset
UPDATE agent_task_queue SET chat_session_id = fx_name(fx_chat_session(:'ws', :'a2'), 'chat3') WHERE id = :'t3';
SELECT fx_name(fx_task(:'a1', :'rt', fx_name(fx_issue(:'ws'), 'I4'), 'running', '10 min'), 'T4') AS t4 \gset
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM fx_events();

-- Rule: tasks with the same created_at are handled in id order.
BEGIN;
SELECT fx_task(:'a1', :'rt', fx_issue(:'ws', 'done'), 'running', '10 min', 2, 2) IS NOT NULL AS tie,
       fx_task(:'a1', :'rt', fx_issue(:'ws', 'done'), 'running', '10 min', 2, 2) IS NOT NULL AS tie,
       fx_task(:'a1', :'rt', fx_issue(:'ws', 'done'), 'running', '10 min', 2, 2) IS NOT NULL AS tie;
COMMIT;
SELECT count(fx_name(id, 'tie' || n)) AS named
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM agent_task_queue WHERE status = 'running') t;
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT event::json ->> 'type' AS type, event::json -> 'payload' ->> 'task_id' AS task FROM fx_events();

-- Rule: stage 1 (mark_stale_runtimes_offline): the task events of the
-- runtimes' in-flight tasks and the agent:status come first, then one
-- daemon:register {"action":"stale_sweep"} per distinct workspace, last.
-- With analytics_channel set, each flipped runtime is an analytics record
-- (counted in analytics_records; the record itself is a NOTIFY only).
SET runtime_sweeper.analytics_channel = 'rs_analytics';
SELECT counter('analytics_records') AS analytics0 \gset
SELECT fx_name(fx_workspace(), 'ws_a') AS ws_a \gset
SELECT fx_name(fx_workspace(), 'ws_b') AS ws_b \gset
SELECT fx_name(fx_runtime(:'ws_a', 'online', '10 min'), 'rt_a1') AS rt_a1 \gset
SELECT fx_name(fx_runtime(:'ws_a', 'online', '10 min'), 'rt_a2') AS rt_a2 \gset
SELECT fx_name(fx_runtime(:'ws_b', 'online', '10 min'), 'rt_b') AS rt_b \gset
SELECT fx_name(fx_agent(:'ws_a', :'rt_a1', 'agent_a'), 'agent_a') AS agent_a \gset
SELECT fx_name(fx_agent(:'ws_b', :'rt_b', 'agent_b'), 'agent_b') AS agent_b \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_a1', fx_name(fx_issue(:'ws_a'), 'Ia1'), 'running', '30 min', 2, 2), 'Ta1') AS ta1 \gset
SELECT fx_name(fx_task(:'agent_b', :'rt_b', fx_name(fx_issue(:'ws_b'), 'Ib'), 'running', '20 min', 2, 2), 'Tb') AS tb \gset
SELECT fx_name(fx_task(:'agent_a', :'rt_a2', fx_name(fx_issue(:'ws_a'), 'Ia2'), 'dispatched', '10 min', 2, 2), 'Ta2') AS ta2 \gset
SELECT fx_redact(runtime_id::text) AS runtime, fx_redact(workspace_id::text) AS workspace
FROM runtime_sweeper.mark_stale_runtimes_offline('1 min') ORDER BY 1;
CREATE TEMP TABLE stage1 AS SELECT n, event FROM fx_events() WITH ORDINALITY AS e(event, n);
SELECT n, event::json ->> 'type' AS type, event::json ->> 'workspace_id' AS workspace,
       coalesce(event::json -> 'payload' ->> 'task_id', event::json -> 'payload' ->> 'agent_id') AS subject
FROM stage1 WHERE event::json ->> 'type' <> 'daemon:register' ORDER BY n;
-- the daemon:register events (their relative order is not specified), all after the others
SELECT event, n > (SELECT max(n) FROM stage1 WHERE event::json ->> 'type' <> 'daemon:register') AS after_all_others
FROM stage1 WHERE event::json ->> 'type' = 'daemon:register' ORDER BY event;
SELECT counter('analytics_records') - :analytics0 AS analytics_records;
-- without analytics_channel the record is still counted
RESET runtime_sweeper.analytics_channel;
SELECT fx_name(fx_runtime(:'ws_b', 'online', '10 min'), 'rt_b2') AS rt_b2 \gset
SELECT fx_redact(runtime_id::text) AS runtime, fx_redact(workspace_id::text) AS workspace
FROM runtime_sweeper.mark_stale_runtimes_offline('1 min');
SELECT * FROM fx_events();
SELECT counter('analytics_records') - :analytics0 AS analytics_records;

-- Rule: the agent map of agent:status: every column, NULL uuids as JSON
-- null, set uuids as strings, runtime_config as a JSON value (not a string),
-- text escaped, timestamps RFC 3339 in UTC whatever the session time zone.
SET TimeZone = 'Asia/Kolkata';
SELECT fx_name(fx_user('owner'), 'owner') AS owner \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'map "quoted"'), 'agent_map') AS agent_map \gset
UPDATE agent SET description = E'line 1\nline 2 \\ "end"', avatar_url = 'https://example.com/a.png',
       runtime_config = '{"model": "opus", "args": ["--fast", 2], "env": {"A": null}}',
       visibility = 'private', max_concurrent_tasks = 3, owner_id = :'owner',
       archived_at = '2024-05-06 07:08:09.123456+02', archived_by = :'owner'
WHERE id = :'agent_map';
SELECT fx_name(fx_task(:'agent_map', :'rt', fx_name(fx_issue(:'ws', 'done'), 'I_map'), 'running', '10 min', 2, 2), 'T_map') AS t_map \gset
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM fx_events();
SELECT k AS field,
       v ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS rfc3339_utc,
       v::timestamptz = CASE k WHEN 'created_at' THEN a.created_at WHEN 'updated_at' THEN a.updated_at
                               ELSE a.archived_at END AS same_instant
FROM (SELECT event FROM runtime_sweeper.event_log ORDER BY id DESC LIMIT 1) e,
     LATERAL (VALUES ('created_at'), ('updated_at'), ('archived_at')) AS f(k),
     LATERAL (SELECT e.event -> 'payload' -> 'agent' ->> f.k AS v) x,
     agent a
WHERE a.id = :'agent_map'
ORDER BY k;
SELECT archived_at AT TIME ZONE 'UTC' AS archived_at_utc FROM agent WHERE id = :'agent_map';
RESET TimeZone;

-- Rule: an agent:status that would not fit a NOTIFY payload (runtime_config
-- over 8000 bytes) drops "agent" and adds "truncated": true; the batch goes
-- on normally and events_truncated counts it.
SELECT counter('events_truncated') AS truncated0 \gset
SELECT fx_name(fx_agent(:'ws', :'rt', 'big'), 'agent_big') AS agent_big \gset
UPDATE agent SET runtime_config = jsonb_build_object('prompt', repeat('x', 9000)) WHERE id = :'agent_big';
SELECT fx_name(fx_task(:'agent_big', :'rt', fx_name(fx_issue(:'ws'), 'I_big'), 'running', '10 min'), 'T_big') AS t_big \gset
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT * FROM fx_events();
SELECT counter('events_truncated') - :truncated0 AS events_truncated;

-- Rule: events belong to the transaction of the change: a rolled-back call
-- logs (and sends) nothing and leaves the task as it was; a committed one
-- logs its events in order.
SELECT fx_name(fx_task(:'a1', :'rt', fx_name(fx_issue(:'ws'), 'I_tx'), 'running', '10 min'), 'T_tx') AS t_tx \gset
BEGIN;
SELECT fx_redact(task_id::text) AS task, retry_task_id IS NOT NULL AS retried
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
ROLLBACK;
SELECT * FROM fx_events();
SELECT fx_redact(id::text) AS task, status FROM agent_task_queue WHERE :'t_tx' IN (id, parent_task_id);
BEGIN;
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
COMMIT;
SELECT * FROM fx_events();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_events CASCADE;
