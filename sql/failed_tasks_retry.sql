-- Failed-task handling, step 1: which failed tasks get a retry child, and its exact shape (SPEC section 2).
SET client_min_messages = warning;  -- quiet whether or not an earlier test created it
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_retry;
SET search_path = t_retry, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\i test/fixtures/event_names.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_retry;
SET runtime_sweeper.event_log = on;
\pset null '(null)'

-- The application may rewrite failure_reason when a task fails (reasons
-- runtime_recovery and codex_semantic_inactivity only come from it): this
-- trigger applies the reason registered for a task in reason_override.
CREATE TABLE reason_override (task_id uuid PRIMARY KEY, reason text NOT NULL);
CREATE FUNCTION rewrite_reason() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.status = 'failed' AND OLD.status IS DISTINCT FROM 'failed' THEN
        NEW.failure_reason := coalesce((SELECT r.reason FROM reason_override r WHERE r.task_id = NEW.id),
                                       NEW.failure_reason);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER rewrite_reason BEFORE UPDATE ON agent_task_queue
    FOR EACH ROW EXECUTE FUNCTION rewrite_reason();

-- Labels the retry child returned for a task "<task label>.retry" and
-- returns that label (NULL when no retry was returned).
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
CREATE FUNCTION counter_now(name text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT coalesce((SELECT (to_jsonb(s) ->> name)::bigint FROM runtime_sweeper.status s
                     WHERE s.database = current_database()), 0)
$$;

-- A task and its children, as the tests print them.
CREATE VIEW family AS
    SELECT fx_redact(coalesce(t.parent_task_id, t.id)::text) AS root, fx_redact(t.id::text) AS task,
           t.status, t.failure_reason, t.attempt, t.max_attempts,
           fx_redact(t.parent_task_id::text) AS parent, t.created_at
    FROM agent_task_queue t;

SELECT fx_name(fx_workspace(), 'ws') AS ws \gset
SELECT fx_name(fx_runtime(:'ws'), 'rt') AS rt \gset
SELECT fx_name(fx_runtime(:'ws', 'offline', '1 hour'), 'rt_off') AS rt_off \gset
SELECT fx_name(fx_agent(:'ws', :'rt'), 'agent') AS agent \gset
-- Events of earlier test files are not ours.
UPDATE fx_seen SET last_id = coalesce((SELECT max(id) FROM runtime_sweeper.event_log), 0);

-- Rule: runtime_offline is retryable: the child is queued with attempt + 1;
-- task:queued (no chat_session_id key: the task has none) comes before task:failed.
SELECT fx_name(fx_issue(:'ws'), 'I1') AS i1 \gset
SELECT fx_name(fx_task(:'agent', :'rt_off', :'i1', 'running', '10 min'), 'T1') AS t1 \gset
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_offline_runtime_tasks('1 s');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root = 'T1' ORDER BY created_at, task;
SELECT * FROM fx_events();

-- Rule: timeout is retryable.
SELECT fx_name(fx_issue(:'ws'), 'I2') AS i2 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i2', 'dispatched', '10 min'), 'T2') AS t2 \gset
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root = 'T2' ORDER BY created_at, task;
SELECT * FROM fx_events();

-- Rule: runtime_recovery (written by the application's trigger) is retryable;
-- the reason is read from the row as stored after the write.
SELECT fx_name(fx_issue(:'ws'), 'I3') AS i3 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i3', 'running', '10 min'), 'T3') AS t3 \gset
INSERT INTO reason_override VALUES (:'t3', 'runtime_recovery');
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root = 'T3' ORDER BY created_at, task;
SELECT * FROM fx_events();

-- Rule: codex_semantic_inactivity is retryable, and its child starts a fresh
-- session: session_id and work_dir NULL, force_fresh_session true.
SELECT fx_name(fx_issue(:'ws'), 'I4') AS i4 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i4', 'running', '10 min'), 'T4') AS t4 \gset
UPDATE agent_task_queue SET session_id = 'sess-4', work_dir = '/work/4' WHERE id = :'t4';
INSERT INTO reason_override VALUES (:'t4', 'codex_semantic_inactivity');
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT fx_redact(id::text) AS task, failure_reason, session_id, work_dir, force_fresh_session
FROM agent_task_queue WHERE :'t4' IN (id, parent_task_id) ORDER BY attempt;
SELECT * FROM fx_events();

-- Rule: for every other reason session_id and work_dir are copied and
-- force_fresh_session is false, even when the parent had it true.
SELECT fx_name(fx_issue(:'ws'), 'I5') AS i5 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i5', 'running', '10 min'), 'T5') AS t5 \gset
UPDATE agent_task_queue SET session_id = 'sess-5', work_dir = '/work/5', force_fresh_session = true WHERE id = :'t5';
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT fx_redact(id::text) AS task, failure_reason, session_id, work_dir, force_fresh_session
FROM agent_task_queue WHERE :'t5' IN (id, parent_task_id) ORDER BY attempt;
SELECT * FROM fx_events();

-- Rule: queued_expired is never retried (attempts and issue would allow it).
SELECT fx_name(fx_issue(:'ws'), 'I6') AS i6 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i6', 'queued', '3 hours'), 'T6') AS t6 \gset
SELECT fx_redact(task_id::text) AS task FROM runtime_sweeper.expire_queued_tasks('1 hour');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root = 'T6' ORDER BY created_at, task;
SELECT * FROM fx_events();

-- Rule: the reason as stored decides: a timeout that the application's
-- trigger rewrote to queued_expired is not retried.
SELECT fx_name(fx_issue(:'ws'), 'I7') AS i7 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i7', 'running', '10 min'), 'T7') AS t7 \gset
INSERT INTO reason_override VALUES (:'t7', 'queued_expired');
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root = 'T7' ORDER BY created_at, task;
SELECT * FROM fx_events();

-- Rule: attempt budget: attempt = max_attempts gets no retry (T8);
-- attempt < max_attempts gets a child with attempt + 1 and the same max_attempts (T9).
SELECT fx_name(fx_issue(:'ws'), 'I8') AS i8 \gset
SELECT fx_name(fx_issue(:'ws'), 'I9') AS i9 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i8', 'running', '20 min', 2, 2), 'T8') AS t8 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i9', 'running', '10 min', 2, 5), 'T9') AS t9 \gset
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root IN ('T8', 'T9') ORDER BY created_at, task;
SELECT * FROM fx_events();

-- Rule: a task of an autopilot run is never retried, even with an issue.
SELECT fx_name(fx_issue(:'ws'), 'I10') AS i10 \gset
SELECT fx_name(fx_autopilot_run(:'ws'), 'run10') AS run10 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i10', 'running', '10 min'), 'T10') AS t10 \gset
UPDATE agent_task_queue SET autopilot_run_id = :'run10' WHERE id = :'t10';
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root = 'T10' ORDER BY created_at, task;
SELECT * FROM fx_events();

-- Rule: a task with neither issue nor chat session is never retried
-- (its quick_create context only makes its task:failed event visible).
SELECT fx_name(fx_task(:'agent', :'rt', NULL, 'running', '10 min'), 'T11') AS t11 \gset
UPDATE agent_task_queue SET context = jsonb_build_object('type', 'quick_create', 'workspace_id', :'ws'::text)
WHERE id = :'t11';
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root = 'T11' ORDER BY created_at, task;
SELECT * FROM fx_events();

-- Rule: a chat-session-only task is retried, and its task:queued event
-- carries chat_session_id (issue_id is "").
SELECT fx_name(fx_chat_session(:'ws', :'agent'), 'chat12') AS chat12 \gset
SELECT fx_name(fx_task(:'agent', :'rt', NULL, 'running', '10 min'), 'T12') AS t12 \gset
UPDATE agent_task_queue SET chat_session_id = :'chat12' WHERE id = :'t12';
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family WHERE root = 'T12' ORDER BY created_at, task;
SELECT fx_redact(chat_session_id::text) AS chat_session FROM agent_task_queue WHERE parent_task_id = :'t12';
SELECT * FROM fx_events();

-- Rule: is_leader_task is inherited (true from T13, false from T14).
SELECT fx_name(fx_issue(:'ws'), 'I13') AS i13 \gset
SELECT fx_name(fx_issue(:'ws'), 'I14') AS i14 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i13', 'running', '20 min'), 'T13') AS t13 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i14', 'running', '10 min'), 'T14') AS t14 \gset
UPDATE agent_task_queue SET is_leader_task = true WHERE id = :'t13';
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT fx_redact(id::text) AS task, is_leader_task FROM agent_task_queue
WHERE id IN (:'t13', :'t14') OR parent_task_id IN (:'t13', :'t14') ORDER BY created_at, attempt;
SELECT count(*) AS events FROM fx_events();

-- Rule: the exact shape of a retry child: every copied column equals the
-- parent's, status queued, attempt + 1, parent_task_id the parent, nothing
-- of the parent's run (times, error, reason, wait reason, result).
SELECT fx_name(fx_issue(:'ws'), 'I15') AS i15 \gset
SELECT fx_name(fx_chat_session(:'ws', :'agent'), 'chat15') AS chat15 \gset
SELECT fx_name(gen_random_uuid(), 'comment15') AS comment15 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i15', 'running', '10 min', 1, 3), 'T15') AS t15 \gset
UPDATE agent_task_queue
SET chat_session_id = :'chat15', priority = 7, trigger_comment_id = :'comment15',
    trigger_summary = 'Fix the build', context = '{"type": "issue", "hints": [1, "two"]}',
    session_id = 'sess-15', work_dir = '/work/15', result = '{"partial": true}'
WHERE id = :'t15';
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
WITH p AS (SELECT to_jsonb(t) AS j FROM agent_task_queue t WHERE t.id = :'t15'),
     c AS (SELECT to_jsonb(t) AS j FROM agent_task_queue t WHERE t.parent_task_id = :'t15')
SELECT u.col, fx_redact(p.j ->> u.col) AS parent, fx_redact(c.j ->> u.col) AS child
FROM p, c, unnest(ARRAY['id', 'agent_id', 'runtime_id', 'issue_id', 'chat_session_id', 'autopilot_run_id',
                        'priority', 'trigger_comment_id', 'trigger_summary', 'context', 'session_id',
                        'work_dir', 'attempt', 'max_attempts', 'parent_task_id', 'status',
                        'is_leader_task', 'force_fresh_session', 'failure_reason', 'error',
                        'wait_reason', 'result']) WITH ORDINALITY AS u(col, n)
ORDER BY u.n;
SELECT dispatched_at, started_at, completed_at, created_at > now() - interval '1 min' AS created_just_now
FROM agent_task_queue WHERE parent_task_id = :'t15';
SELECT * FROM fx_events();

-- Rule: a retry that would break the one-pending-task index (a queued task of
-- the same issue and agent exists) is skipped without an error, and the rest
-- of the batch is still handled: T17, failed after T16 in the same batch,
-- gets its retry; the status view counts one retry skipped, one created.
SELECT counter_now('retries_created') AS created0, counter_now('retries_skipped') AS skipped0 \gset
SELECT fx_name(fx_issue(:'ws'), 'I16') AS i16 \gset
SELECT fx_name(fx_issue(:'ws'), 'I17') AS i17 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i16', 'running', '20 min'), 'T16') AS t16 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i16', 'queued'), 'Q16') AS q16 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i17', 'running', '10 min'), 'T17') AS t17 \gset
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family
WHERE root IN ('T16', 'Q16', 'T17') ORDER BY created_at, task;
SELECT counter_now('retries_created') - :created0 AS retries_created,
       counter_now('retries_skipped') - :skipped0 AS retries_skipped;
SELECT * FROM fx_events();

-- Rule: two retryable tasks of one issue and agent in one batch: the older
-- (handled first) gets the child; the younger's child would be a second
-- pending task of the pair, so it is skipped without an error.
SELECT counter_now('retries_skipped') AS skipped1 \gset
SELECT fx_name(fx_issue(:'ws'), 'I18') AS i18 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i18', 'running', '20 min'), 'T18') AS t18 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i18', 'dispatched', '10 min'), 'T19') AS t19 \gset
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT task, status, failure_reason, attempt, max_attempts, parent FROM family
WHERE root IN ('T18', 'T19') ORDER BY created_at, task;
SELECT counter_now('retries_skipped') - :skipped1 AS retries_skipped;
SELECT * FROM fx_events();

-- Rule: a reason the application cleared (empty) is not retryable, and
-- task:failed reports it as "agent_error" (as the original does).
SELECT fx_name(fx_issue(:'ws'), 'I20') AS i20 \gset
SELECT fx_name(fx_task(:'agent', :'rt', :'i20', 'running', '10 min'), 'T20') AS t20 \gset
INSERT INTO reason_override VALUES (:'t20', '');
SELECT fx_redact(task_id::text) AS task, name_retry(task_id, retry_task_id) AS retry
FROM runtime_sweeper.fail_stale_tasks('1 min', '1 min');
SELECT event::json -> 'payload' AS payload FROM fx_events() AS e(event) WHERE event::json ->> 'type' = 'task:failed';

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_retry CASCADE;
