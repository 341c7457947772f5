-- Demo helpers (schema "demo"): readable names for the demo's rows, one line
-- per event for the listener, the demo's expectations, and its clock.
-- Loaded by examples/demo/run after the application schema; nothing here is
-- part of the extension.

CREATE SCHEMA demo;

-- Start of the demo (the cluster start), so every time can be shown as T+n,
-- and the time of the workload (now() of the transaction that loaded it).
CREATE TABLE demo.clock (
    t0         timestamptz NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now()
);

-- A readable name for every row the demo creates.
CREATE TABLE demo.label (
    id     uuid PRIMARY KEY,
    label  text NOT NULL UNIQUE
);

-- Records a name for id and returns id.
CREATE FUNCTION demo.tag(id uuid, label text) RETURNS uuid
LANGUAGE sql AS $$
    INSERT INTO demo.label VALUES (id, label) RETURNING id
$$;

-- A time as T+n.n s since the demo started.
CREATE FUNCTION demo.rel(ts timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN ts IS NULL THEN '-'
                ELSE 'T' || CASE WHEN ts >= c.t0 THEN '+' ELSE '-' END
                     || to_char(abs(extract(epoch FROM ts - c.t0)), 'FM999990.0') || 's'
           END
    FROM demo.clock c
$$;

-- The name of a demo row; a retry task is named after its parent ("t-build#2").
CREATE FUNCTION demo.name(id uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT l.label FROM demo.label l WHERE l.id = name.id),
        (SELECT coalesce(p.label, left(t.parent_task_id::text, 8)) || '#' || t.attempt
           FROM public.agent_task_queue t
           LEFT JOIN demo.label p ON p.id = t.parent_task_id
          WHERE t.id = name.id AND t.parent_task_id IS NOT NULL),
        left(id::text, 8),
        '-')
$$;

-- The same for a uuid as sent in an event ("" for none).
CREATE FUNCTION demo.name(id text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT demo.name(nullif(id, '')::uuid)
$$;

-- One line for an event envelope: its type and what it says, in demo names.
CREATE FUNCTION demo.describe(envelope json) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    typ  text := envelope->>'type';
    p    json := envelope->'payload';
    ws   text := demo.name(envelope->>'workspace_id');
    what text;
    t    record;
BEGIN
    CASE typ
    WHEN 'task:failed' THEN
        what := format('%s failed (%s); agent %s, issue %s',
                       demo.name(p->>'task_id'), p->>'failure_reason',
                       demo.name(p->>'agent_id'), demo.name(p->>'issue_id'));
    WHEN 'task:queued' THEN
        SELECT r.attempt, r.max_attempts, r.parent_task_id, r.runtime_id INTO t
          FROM public.agent_task_queue r WHERE r.id = (p->>'task_id')::uuid;
        what := format('%s queued: retry of %s, attempt %s of %s, on %s; issue %s',
                       demo.name(p->>'task_id'), demo.name(t.parent_task_id),
                       t.attempt, t.max_attempts, demo.name(t.runtime_id),
                       demo.name(p->>'issue_id'));
    WHEN 'agent:status' THEN
        what := format('agent %s is now %s', demo.name(p->>'agent_id'), p->>'status');
    WHEN 'issue:updated' THEN
        what := format('issue %s: %s -> %s', demo.name(p->>'issue_id'),
                       p->>'prev_status', p->>'status');
    WHEN 'daemon:register' THEN
        what := format('workspace %s: %s (%s)', ws, p->>'action',
                       CASE p->>'action'
                       WHEN 'stale_sweep' THEN 'its runtimes changed: clients refresh the runtime list'
                       WHEN 'runtime_gc' THEN 'a runtime was deleted: clients refresh the runtime list'
                       ELSE 'clients refresh the runtime list' END);
    ELSE
        what := p::text;
    END CASE;
    RETURN format('%-16s %s', typ, what);
END
$$;

-- One short key per event, to compare what was sent with what the demo expects.
CREATE FUNCTION demo.event_key(envelope json) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT envelope->>'type' || ' ' ||
           CASE envelope->>'type'
           WHEN 'task:failed'     THEN demo.name(envelope->'payload'->>'task_id') || ' ' ||
                                       (envelope->'payload'->>'failure_reason')
           WHEN 'task:queued'     THEN demo.name(envelope->'payload'->>'task_id')
           WHEN 'agent:status'    THEN demo.name(envelope->'payload'->>'agent_id') || ' ' ||
                                       (envelope->'payload'->>'status')
           WHEN 'issue:updated'   THEN demo.name(envelope->'payload'->>'issue_id') || ' ' ||
                                       (envelope->'payload'->>'status')
           WHEN 'daemon:register' THEN demo.name(envelope->>'workspace_id') || ' ' ||
                                       (envelope->'payload'->>'action')
           ELSE '?' END
$$;

-- State of a runtime by name: its status, or 'deleted'.
CREATE FUNCTION demo.runtime_status(label text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT r.status FROM public.agent_runtime r
                       JOIN demo.label l ON l.id = r.id
                      WHERE l.label = runtime_status.label), 'deleted')
$$;

-- State of a task by name: status, failure_reason, attempt.
CREATE FUNCTION demo.task_state(label text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT concat_ws(' ', t.status, t.failure_reason,
                                      'attempt ' || t.attempt || '/' || t.max_attempts)
                       FROM public.agent_task_queue t
                      WHERE demo.name(t.id) = task_state.label), 'missing')
$$;

-- Status of an issue or agent by name.
CREATE FUNCTION demo.status_of(label text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT i.status FROM public.issue i JOIN demo.label l ON l.id = i.id
          WHERE l.label = status_of.label),
        (SELECT a.status FROM public.agent a JOIN demo.label l ON l.id = a.id
          WHERE l.label = status_of.label),
        'missing')
$$;

-- Everything the sweeper is expected to have done by the end of the demo.
CREATE FUNCTION demo.check()
RETURNS TABLE (ok boolean, expectation text, actual text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    expected_events text[] := ARRAY[
        'daemon:register globex runtime_gc',
        'daemon:register globex stale_sweep',
        'task:failed t-hang timeout',
        'issue:updated ACME-2 todo',
        'agent:status ada idle',
        'task:queued t-build#2',
        'task:failed t-build runtime_offline',
        'agent:status linus idle',
        'daemon:register acme stale_sweep',
        'task:failed t-queued queued_expired',
        'issue:updated GLOBEX-1 todo',
        'task:failed t-build#2 queued_expired',
        'issue:updated ACME-1 todo'];
    sent        text[];
    missing     text[];
    unexpected  text[];
    flipped_at  timestamptz;
    guard_end   timestamptz;
    errs        bigint;
BEGIN
    -- Runtimes.
    RETURN QUERY SELECT demo.runtime_status('rt-retired') = 'deleted',
        'rt-retired (offline for an hour, no agents) is garbage-collected',
        demo.runtime_status('rt-retired');
    SELECT r.updated_at INTO flipped_at
      FROM public.agent_runtime r JOIN demo.label l ON l.id = r.id
     WHERE l.label = 'rt-lapsed' AND r.status = 'offline';
    SELECT a.backend_start + current_setting('runtime_sweeper.stale_threshold')::interval
      INTO guard_end
      FROM pg_stat_activity a WHERE a.backend_type = 'runtime_sweeper';
    RETURN QUERY SELECT flipped_at IS NOT NULL AND flipped_at >= guard_end,
        'rt-lapsed goes offline, not before one stale_threshold after the worker started',
        CASE WHEN flipped_at IS NULL THEN demo.runtime_status('rt-lapsed')
             ELSE 'offline at ' || demo.rel(flipped_at) || ', guard until ' || demo.rel(guard_end) END;
    RETURN QUERY SELECT demo.runtime_status('rt-dead') = 'offline',
        'rt-dead goes offline once it stops heartbeating',
        demo.runtime_status('rt-dead');
    RETURN QUERY SELECT demo.runtime_status('rt-alpha') = 'online' AND demo.runtime_status('rt-beta') = 'online',
        'rt-alpha and rt-beta (heartbeating) stay online',
        demo.runtime_status('rt-alpha') || ', ' || demo.runtime_status('rt-beta');
    -- Tasks.
    RETURN QUERY SELECT demo.task_state('t-build') = 'failed runtime_offline attempt 1/2',
        't-build fails with runtime_offline', demo.task_state('t-build');
    RETURN QUERY SELECT demo.task_state('t-build#2') = 'failed queued_expired attempt 2/2',
        't-build is retried (t-build#2), which nobody claims and which expires',
        demo.task_state('t-build#2');
    RETURN QUERY SELECT demo.task_state('t-hang') = 'failed timeout attempt 2/2'
                        AND demo.task_state('t-hang#3') = 'missing',
        't-hang times out in dispatched, no retry (last attempt)', demo.task_state('t-hang');
    RETURN QUERY SELECT demo.task_state('t-queued') = 'failed queued_expired attempt 1/2'
                        AND demo.task_state('t-queued#2') = 'missing',
        't-queued expires in the queue, no retry', demo.task_state('t-queued');
    RETURN QUERY SELECT demo.task_state('t-healthy') = 'running attempt 1/2',
        't-healthy (running on a live runtime) is left alone', demo.task_state('t-healthy');
    -- Issues and agents.
    RETURN QUERY SELECT demo.status_of('ACME-1') = 'todo' AND demo.status_of('ACME-2') = 'todo'
                        AND demo.status_of('GLOBEX-1') = 'todo' AND demo.status_of('GLOBEX-2') = 'in_progress',
        'issues without live work go back to todo; GLOBEX-2 stays in_progress',
        format('ACME-1 %s, ACME-2 %s, GLOBEX-1 %s, GLOBEX-2 %s', demo.status_of('ACME-1'),
               demo.status_of('ACME-2'), demo.status_of('GLOBEX-1'), demo.status_of('GLOBEX-2'));
    RETURN QUERY SELECT demo.status_of('ada') = 'idle' AND demo.status_of('linus') = 'idle'
                        AND demo.status_of('turing') = 'working',
        'agents without in-flight work are idle; turing keeps working',
        format('ada %s, linus %s, turing %s', demo.status_of('ada'),
               demo.status_of('linus'), demo.status_of('turing'));
    -- Events.
    SELECT coalesce(array_agg(demo.event_key(e.event) ORDER BY e.id), '{}') INTO sent
      FROM runtime_sweeper.event_log e;
    SELECT coalesce(array_agg(x), '{}') INTO missing
      FROM (SELECT unnest(expected_events) EXCEPT ALL SELECT unnest(sent)) m(x);
    SELECT coalesce(array_agg(x), '{}') INTO unexpected
      FROM (SELECT unnest(sent) EXCEPT ALL SELECT unnest(expected_events)) u(x);
    RETURN QUERY SELECT cardinality(missing) = 0 AND cardinality(unexpected) = 0,
        format('exactly the %s expected events were sent', cardinality(expected_events)),
        format('%s sent', cardinality(sent))
        || CASE WHEN cardinality(missing) > 0 THEN '; missing: ' || array_to_string(missing, ', ') ELSE '' END
        || CASE WHEN cardinality(unexpected) > 0 THEN '; unexpected: ' || array_to_string(unexpected, ', ') ELSE '' END;
    -- Health.
    SELECT coalesce(sum(s.errors), 0) INTO errs FROM runtime_sweeper.stage_status s;
    RETURN QUERY SELECT errs = 0, 'no stage failed', errs || ' stage errors';
END
$$;
