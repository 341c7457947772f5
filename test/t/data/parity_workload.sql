-- Frozen workload of test/t/180_worker_sql_parity.pl: every row the sweeper
-- acts on is past its threshold by far more than the test runs, every row it
-- must leave alone is short of its threshold by minutes, so two copies loaded
-- a few seconds apart have the same due rows.  Load after app_schema.sql,
-- sample_data.sql and event_names.sql, in ONE transaction (psql -1), so that
-- a worker sees all of it or none.  Every row gets a label (fx_name); no two
-- rows one stage orders share a time, so ties never fall to the random uuids.
--
-- Thresholds the test sets: stale 10 min, dispatch 10 min, running 1 h,
-- queued TTL 1 h, offline TTL 1 day.
--
--   ws-a  rt-stale1  online, silent 3 h       ag-1, ag-2 (working)
--         rt-stale-gc online, silent 3 days   no agents (a task of ag-4): flipped, then collected
--         rt-live    online, fresh            ag-4, ag-5 (huge description), ag-chat
--         rt-gc2     offline 3 days, nothing  collected
--         rt-held    offline 3 days, agent ag-held: kept (agent)
--         rt-never   online, never seen (NULL): never stale
--   ws-b  rt-stale2  online, silent 2 h       ag-3 (working)
--         rt-live-b  online, fresh            ag-6
--         rt-off     offline 1 h              ag-7 (working): its running task fails
--         rt-gc      offline 4 days, only task history: collected (history cascades)
--         rt-busy    offline 4 days, a fresh queued task: kept
--   ws-q  (no rows) the workspace of a quick_create context
--
-- One pass fails 11 tasks with runtime_offline, 4 with timeout, 4 with
-- queued_expired, creates 7 retries (1 skipped on conflict), rolls 4 issues
-- back, collects 3 runtimes and truncates ag-5's agent:status twice.

CREATE TABLE pw_clock (loaded_at timestamptz NOT NULL);
INSERT INTO pw_clock VALUES (now());

-- A task via fx_task, labelled; age also orders the batch (all ages differ).
CREATE FUNCTION pw_task(label text, ag text, rt text, iss text, status text,
                        age interval, attempt int DEFAULT 1, max_attempts int DEFAULT 2)
RETURNS uuid LANGUAGE sql AS $$
    SELECT fx_name(fx_task((SELECT id FROM fx_names WHERE fx_names.label = ag),
                           (SELECT id FROM fx_names WHERE fx_names.label = rt),
                           (SELECT id FROM fx_names WHERE fx_names.label = iss),
                           status, age, attempt, max_attempts), label)
$$;

-- The uuid of a label.
CREATE FUNCTION pw(label text) RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT id FROM fx_names WHERE fx_names.label = pw.label
$$;

-- The label of a uuid ('-' for NULL); a retry child is named after its
-- parent: "<parent>#<attempt>".
CREATE FUNCTION pw_label(p_id uuid) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_id IS NULL THEN '-' ELSE coalesce(
        (SELECT label FROM fx_names WHERE id = p_id),
        (SELECT pw_label(t.parent_task_id) || '#' || t.attempt
           FROM agent_task_queue t WHERE t.id = p_id AND t.parent_task_id IS NOT NULL),
        '<unlabelled>') END
$$;

-- Labels the retry children the sweep created (parents first), so that
-- fx_redact shows them in events too.  Returns how many it labelled.
CREATE FUNCTION pw_name_retries() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;
    k bigint;
BEGIN
    LOOP
        WITH c AS (
            SELECT t.id, p.label || '#' || t.attempt AS label
            FROM agent_task_queue t JOIN fx_names p ON p.id = t.parent_task_id
            WHERE NOT EXISTS (SELECT 1 FROM fx_names f WHERE f.id = t.id))
        SELECT count(fx_name(c.id, c.label)) INTO k FROM c;
        EXIT WHEN k = 0;
        n := n + k;
    END LOOP;
    RETURN n;
END
$$;

-- When a timestamp was written: not at all, by the workload, or by a sweep.
CREATE FUNCTION pw_when(ts timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN ts IS NULL THEN 'null'
                WHEN ts <= (SELECT loaded_at FROM pw_clock) THEN 'workload'
                ELSE 'sweep' END
$$;

-- Every row of the four swept tables as one line, by label, in label order.
CREATE FUNCTION pw_snapshot() RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT line FROM (
        SELECT 'runtime ' || pw_label(r.id) || ': ' || concat_ws(' ',
               r.status, 'ws=' || pw_label(r.workspace_id),
               'last_seen=' || pw_when(r.last_seen_at), 'updated=' || pw_when(r.updated_at)) AS line
        FROM agent_runtime r
        UNION ALL
        SELECT 'task ' || pw_label(t.id) || ': ' || concat_ws(' ',
               t.status, 'reason=' || coalesce(t.failure_reason, '-'),
               'error=' || coalesce(quote_literal(t.error), '-'),
               'wait=' || coalesce(t.wait_reason, '-'),
               'attempt=' || t.attempt || '/' || t.max_attempts,
               'parent=' || pw_label(t.parent_task_id),
               'agent=' || pw_label(t.agent_id), 'rt=' || pw_label(t.runtime_id),
               'issue=' || pw_label(t.issue_id), 'chat=' || pw_label(t.chat_session_id),
               'autopilot=' || pw_label(t.autopilot_run_id),
               'prio=' || t.priority, 'ctx=' || coalesce(fx_redact(lower(t.context::text)), '-'),
               'session=' || coalesce(t.session_id, '-'), 'dir=' || coalesce(t.work_dir, '-'),
               'summary=' || coalesce(t.trigger_summary, '-'),
               'leader=' || t.is_leader_task, 'fresh=' || t.force_fresh_session,
               'created=' || pw_when(t.created_at), 'dispatched=' || pw_when(t.dispatched_at),
               'started=' || pw_when(t.started_at), 'completed=' || pw_when(t.completed_at))
        FROM agent_task_queue t
        UNION ALL
        SELECT 'agent ' || pw_label(a.id) || ': ' || concat_ws(' ',
               a.status, 'rt=' || pw_label(a.runtime_id), 'updated=' || pw_when(a.updated_at))
        FROM agent a
        UNION ALL
        SELECT 'issue ' || pw_label(i.id) || ': ' || concat_ws(' ',
               i.status, 'ws=' || pw_label(i.workspace_id), 'updated=' || pw_when(i.updated_at))
        FROM issue i
    ) s ORDER BY line COLLATE "C"
$$;

-- The event log, oldest first: channel and envelope with labels for uuids
-- and <ts> for timestamps.
CREATE FUNCTION pw_events() RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT l.channel || ' ' || fx_redact(l.event::text)
    FROM runtime_sweeper.event_log l ORDER BY l.id
$$;

DO $$
DECLARE
    ws_a uuid := fx_name(fx_workspace('a'), 'ws-a');
    ws_b uuid := fx_name(fx_workspace('b'), 'ws-b');
    ws_q uuid := fx_name(fx_workspace('q'), 'ws-q');
    owner uuid := fx_name(fx_user('owner'), 'owner');
BEGIN
    -- Runtimes (distinct last_seen_at: stages order runtimes by it).
    PERFORM fx_name(fx_runtime(ws_a, 'online', '3 hours', 'claude', owner), 'rt-stale1');
    PERFORM fx_name(fx_runtime(ws_a, 'online', '3 days', 'codex', owner), 'rt-stale-gc');
    PERFORM fx_name(fx_runtime(ws_a, 'online', '0 s', 'claude', owner), 'rt-live');
    PERFORM fx_name(fx_runtime(ws_a, 'offline', '3 days 1 hour', 'claude'), 'rt-gc2');
    PERFORM fx_name(fx_runtime(ws_a, 'offline', '3 days 2 hours', 'claude'), 'rt-held');
    PERFORM fx_name(fx_runtime(ws_a, 'online', NULL, 'gemini'), 'rt-never');
    PERFORM fx_name(fx_runtime(ws_b, 'online', '2 hours', 'claude'), 'rt-stale2');
    PERFORM fx_name(fx_runtime(ws_b, 'online', '1 s', 'claude'), 'rt-live-b');
    PERFORM fx_name(fx_runtime(ws_b, 'offline', '1 hour', 'codex'), 'rt-off');
    PERFORM fx_name(fx_runtime(ws_b, 'offline', '4 days', 'codex'), 'rt-gc');
    PERFORM fx_name(fx_runtime(ws_b, 'offline', '4 days 1 hour', 'gemini'), 'rt-busy');

    -- Agents.
    PERFORM fx_name(fx_agent(ws_a, pw('rt-stale1'), 'ag-1', 'working'), 'ag-1');
    PERFORM fx_name(fx_agent(ws_a, pw('rt-stale1'), 'ag-2', 'working'), 'ag-2');
    PERFORM fx_name(fx_agent(ws_a, pw('rt-live'), 'ag-4', 'working'), 'ag-4');
    PERFORM fx_name(fx_agent(ws_a, pw('rt-live'), 'ag-5', 'working'), 'ag-5');
    PERFORM fx_name(fx_agent(ws_a, pw('rt-live'), 'ag-chat', 'working'), 'ag-chat');
    PERFORM fx_name(fx_agent(ws_a, pw('rt-held'), 'ag-held', 'offline'), 'ag-held');
    PERFORM fx_name(fx_agent(ws_b, pw('rt-stale2'), 'ag-3', 'working'), 'ag-3');
    PERFORM fx_name(fx_agent(ws_b, pw('rt-live-b'), 'ag-6', 'working'), 'ag-6');
    PERFORM fx_name(fx_agent(ws_b, pw('rt-off'), 'ag-7', 'working'), 'ag-7');
    -- agent:status for ag-5 cannot fit a NOTIFY: it is sent truncated.
    UPDATE agent SET description = repeat('d', 9000), runtime_config = '{"model": "big"}'
    WHERE id = pw('ag-5');

    -- Issues.
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a1');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a2');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a3');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a4');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a5');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a6');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a7');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a8');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a9');
    PERFORM fx_name(fx_issue(ws_a, 'todo'), 'iss-a10');
    PERFORM fx_name(fx_issue(ws_a, 'in_progress'), 'iss-a11');
    PERFORM fx_name(fx_issue(ws_a, 'in_review'), 'iss-a12');
    PERFORM fx_name(fx_issue(ws_b, 'in_progress'), 'iss-b1');
    PERFORM fx_name(fx_issue(ws_b, 'in_progress'), 'iss-b2');
    PERFORM fx_name(fx_issue(ws_b, 'in_progress'), 'iss-b3');
    PERFORM fx_name(fx_issue(ws_b, 'done'), 'iss-b4');
    PERFORM fx_name(fx_issue(ws_b, 'in_progress'), 'iss-b5');

    PERFORM fx_name(fx_chat_session(ws_a, pw('ag-1')), 'chat-1');
    PERFORM fx_name(fx_chat_session(ws_a, pw('ag-chat')), 'chat-2');
    PERFORM fx_name(fx_autopilot_run(ws_a), 'run-1');

    -- In flight on stale runtime rt-stale1: runtime_offline for all.
    --   retried (1/2), issue kept in_progress; inherits the copied columns
    PERFORM pw_task('t-s1-run', 'ag-1', 'rt-stale1', 'iss-a1', 'running', '3 hours 5 min');
    UPDATE agent_task_queue SET priority = 7, trigger_summary = 'fix it', session_id = 'sess-1',
           work_dir = '/w/1', context = '{"k": 1}', is_leader_task = true, force_fresh_session = true
    WHERE id = pw('t-s1-run');
    --   last attempt (2/2): no retry, iss-a2 back to todo
    PERFORM pw_task('t-s1-disp', 'ag-2', 'rt-stale1', 'iss-a2', 'dispatched', '3 hours 4 min', 2, 2);
    --   waiting_local_directory: wait_reason cleared, retried
    PERFORM pw_task('t-s1-wait', 'ag-2', 'rt-stale1', 'iss-a3', 'waiting_local_directory', '3 hours 3 min');
    --   chat session, no issue: retried with its chat session
    PERFORM pw_task('t-s1-chat', 'ag-1', 'rt-stale1', NULL, 'running', '3 hours 2 min');
    UPDATE agent_task_queue SET chat_session_id = pw('chat-1') WHERE id = pw('t-s1-chat');
    --   its retry would conflict with the queued task of the same (issue, agent): skipped
    PERFORM pw_task('t-s1-conflict', 'ag-1', 'rt-stale1', 'iss-a4', 'running', '3 hours 1 min');
    PERFORM pw_task('t-s1-conflict-q', 'ag-1', 'rt-stale1', 'iss-a4', 'queued', '5 min');
    --   autopilot run: never retried; workspace through the autopilot
    PERFORM pw_task('t-s1-autopilot', 'ag-2', 'rt-stale1', NULL, 'running', '3 hours 6 min');
    UPDATE agent_task_queue SET autopilot_run_id = pw('run-1') WHERE id = pw('t-s1-autopilot');
    --   history: untouched
    PERFORM pw_task('t-s1-done', 'ag-1', 'rt-stale1', 'iss-a1', 'completed', '1 day');
    PERFORM pw_task('t-s1-cancelled', 'ag-2', 'rt-stale1', 'iss-a12', 'cancelled', '1 day 1 hour');

    -- In flight on rt-stale-gc (ag-4 of rt-live), last attempt: after the flip
    -- nothing keeps the runtime, so the same tick collects it with the task;
    -- iss-a11 stays in_progress (t-q-fresh is queued for it).
    PERFORM pw_task('t-sgc-run', 'ag-4', 'rt-stale-gc', 'iss-a11', 'running', '2 hours 50 min', 2, 2);

    -- Stale runtime rt-stale2 (ws-b).
    PERFORM pw_task('t-s2-run', 'ag-3', 'rt-stale2', 'iss-b1', 'running', '2 hours 10 min');
    --   quick_create context: task:failed in ws-q, no retry (no issue, no chat)
    PERFORM pw_task('t-s2-quick', 'ag-3', 'rt-stale2', NULL, 'running', '2 hours 9 min');
    UPDATE agent_task_queue
    SET context = jsonb_build_object('type', 'quick_create', 'workspace_id', upper(ws_q::text))
    WHERE id = pw('t-s2-quick');
    --   malformed context: workspace unresolved, no task:failed
    PERFORM pw_task('t-s2-badctx', 'ag-3', 'rt-stale2', NULL, 'dispatched', '2 hours 8 min');
    UPDATE agent_task_queue SET context = '["quick_create"]' WHERE id = pw('t-s2-badctx');

    -- Runtime already offline (rt-off): its running task fails runtime_offline
    -- and is retried on the same runtime.
    PERFORM pw_task('t-off-run', 'ag-7', 'rt-off', 'iss-b3', 'running', '50 min');

    -- Live runtime rt-live: timeouts.
    --   dispatched 2 h (> 10 min): timeout, retried
    PERFORM pw_task('t-hung-disp', 'ag-4', 'rt-live', 'iss-a5', 'dispatched', '2 hours');
    --   running 3 h 30 (> 1 h), last attempt: issue back to todo
    PERFORM pw_task('t-hung-run', 'ag-5', 'rt-live', 'iss-a6', 'running', '3 hours 30 min', 2, 2);
    --   chat task running 4 h: timeout, retried with its chat session
    PERFORM pw_task('t-chat-hung', 'ag-chat', 'rt-live', NULL, 'running', '4 hours');
    UPDATE agent_task_queue SET chat_session_id = pw('chat-2') WHERE id = pw('t-chat-hung');
    --   healthy: running 30 min, dispatched 1 min
    PERFORM pw_task('t-ok-run', 'ag-4', 'rt-live', 'iss-a7', 'running', '30 min');
    PERFORM pw_task('t-ok-disp', 'ag-5', 'rt-live', 'iss-a8', 'dispatched', '1 min');
    --   queued 2 h (> 1 h): expired, never retried, iss-a9 back to todo
    PERFORM pw_task('t-q-old', 'ag-5', 'rt-live', 'iss-a9', 'queued', '2 hours 1 min');
    --   expired on an issue that is not in_progress: no rollback
    PERFORM pw_task('t-q-old2', 'ag-4', 'rt-live', 'iss-a10', 'queued', '2 hours 2 min');
    --   expired without any workspace: no task:failed, agent still reconciled
    PERFORM pw_task('t-q-nows', 'ag-5', 'rt-live', NULL, 'queued', '2 hours 3 min');
    --   queued 5 min: left alone
    PERFORM pw_task('t-q-fresh', 'ag-4', 'rt-live', 'iss-a11', 'queued', '5 min 1 s');

    -- Live runtime rt-live-b (ws-b).
    --   running 2 h, max_attempts 1: timeout, no retry; iss-b2 keeps a queued
    --   task, so the timeout does not roll it back ...
    PERFORM pw_task('t-b-hung', 'ag-6', 'rt-live-b', 'iss-b2', 'running', '2 hours 20 min', 1, 1);
    --   ... until queued expiry fails that one in the next stage
    PERFORM pw_task('t-b-q', 'ag-6', 'rt-live-b', 'iss-b2', 'queued', '2 hours 21 min');

    -- Offline runtimes past the TTL.
    --   rt-gc: only terminal history (a task of ag-6): collected, history cascades
    PERFORM pw_task('t-gc-hist', 'ag-6', 'rt-gc', 'iss-b4', 'completed', '4 days');
    --   rt-busy: a queued task keeps it
    PERFORM pw_task('t-busy-q', 'ag-6', 'rt-busy', 'iss-b5', 'queued', '5 min 2 s');
END
$$;
