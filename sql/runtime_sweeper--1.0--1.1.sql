-- runtime_sweeper 1.0 -> 1.1: catch-up for listeners and Prometheus metrics.

\echo Use "ALTER EXTENSION runtime_sweeper UPDATE TO '1.1'" to load this file. \quit

-- The events after after_id, oldest first, at most max of them.  A listener
-- remembers the id of the last event it handled (NOTIFY payloads carry it
-- when runtime_sweeper.event_log is on) and, after reconnecting, asks for
-- what it missed.  Ids become visible in commit order, so nothing is skipped.
CREATE FUNCTION runtime_sweeper.events_since(after_id bigint, max int DEFAULT 1000)
RETURNS TABLE (id bigint, created_at timestamptz, channel text, event json)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.id, l.created_at, l.channel, l.event
    FROM runtime_sweeper.event_log l
    WHERE l.id > after_id
    ORDER BY l.id
    LIMIT greatest(max, 0)
$$;
COMMENT ON FUNCTION runtime_sweeper.events_since(bigint, int) IS
    'Events logged after after_id (at most max), for a listener catching up.';

CREATE FUNCTION runtime_sweeper._metrics()
RETURNS text
AS 'MODULE_PATHNAME', 'runtime_sweeper_metrics'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- Counters and gauges in the Prometheus text format: the shared counters of
-- every database, and for the current database the rows each stage would
-- change now (capped at the stage's batch size).  A database whose
-- application tables are missing or unreadable still gets the counters.
CREATE FUNCTION runtime_sweeper.metrics()
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_out text := runtime_sweeper._metrics();
    v_due text;
BEGIN
    BEGIN
        SELECT string_agg(format('runtime_sweeper_due_rows{database="%s",stage="%s"} %s',
                                 replace(replace(current_database(), '\', '\\'), '"', '\"'),
                                 s.stage, coalesce(p.n, 0)), E'\n' ORDER BY s.ord)
        INTO v_due
        FROM (VALUES (1, 'stale_runtimes'), (2, 'offline_tasks'), (3, 'stale_tasks'),
                     (4, 'queued_expiry'), (5, 'runtime_gc')) AS s(ord, stage)
        LEFT JOIN (SELECT pr.stage, count(*) AS n
                   FROM runtime_sweeper.preview() pr GROUP BY pr.stage) p ON p.stage = s.stage;
    EXCEPTION WHEN OTHERS THEN
        RETURN v_out;
    END;
    RETURN v_out
        || '# HELP runtime_sweeper_due_rows Rows each stage would change now (capped at its batch size).' || E'\n'
        || '# TYPE runtime_sweeper_due_rows gauge' || E'\n'
        || v_due || E'\n';
END
$$;
COMMENT ON FUNCTION runtime_sweeper.metrics() IS
    'Counters and gauges in the Prometheus text format (runtime_sweeper_*).';

-- 1.1 also advises a partial index on in-flight tasks by runtime: the
-- offline_tasks stage and the worker's look-ahead find in-flight tasks of
-- offline runtimes through it without visiting every offline runtime (an
-- index on all of a runtime's tasks does not do that, so only a partial
-- index counts for it).
CREATE OR REPLACE FUNCTION runtime_sweeper.missing_indexes()
RETURNS TABLE (table_name text, index_name text, ddl text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema text := current_setting('runtime_sweeper.app_schema');
    a record;
BEGIN
    FOR a IN
        SELECT * FROM (VALUES
            (1, 'agent_runtime', 'last_seen_at', 'online', 'agent_runtime_online_last_seen_idx',
             '(last_seen_at) WHERE status = ''online''', false),
            (2, 'agent_runtime', 'last_seen_at', 'offline', 'agent_runtime_offline_last_seen_idx',
             '(last_seen_at) WHERE status = ''offline''', false),
            (3, 'agent_task_queue', 'dispatched_at', 'dispatched', 'agent_task_queue_dispatched_at_idx',
             '(dispatched_at) WHERE status = ''dispatched''', false),
            (4, 'agent_task_queue', 'started_at', 'running', 'agent_task_queue_running_started_at_idx',
             '(started_at) WHERE status = ''running''', false),
            (5, 'agent_task_queue', 'created_at', 'queued', 'agent_task_queue_queued_created_at_idx',
             '(created_at, id) WHERE status = ''queued''', false),
            (6, 'agent_task_queue', 'runtime_id', NULL, 'agent_task_queue_runtime_id_idx',
             '(runtime_id)', false),
            (7, 'agent_task_queue', 'runtime_id', 'waiting_local_directory', 'agent_task_queue_in_flight_runtime_idx',
             '(runtime_id) WHERE status IN (''dispatched'', ''running'', ''waiting_local_directory'')', true),
            (8, 'agent_task_queue', 'agent_id', NULL, 'agent_task_queue_agent_id_idx',
             '(agent_id)', false),
            (9, 'agent_task_queue', 'issue_id', NULL, 'agent_task_queue_issue_id_idx',
             '(issue_id)', false),
            (10, 'agent', 'runtime_id', NULL, 'agent_runtime_id_idx',
             '(runtime_id)', false)
        ) AS v(ord, tbl, col, status, idx, spec, partial_only)
        ORDER BY ord
    LOOP
        CONTINUE WHEN to_regclass(format('%I.%I', v_schema, a.tbl)) IS NULL;
        CONTINUE WHEN EXISTS (
            SELECT 1
            FROM pg_index i
            JOIN pg_attribute att ON att.attrelid = i.indrelid AND att.attnum = i.indkey[0]
            WHERE i.indrelid = format('%I.%I', v_schema, a.tbl)::regclass
              AND i.indisvalid
              AND att.attname = a.col
              AND ((i.indpred IS NULL AND NOT a.partial_only)
                   OR (a.status IS NOT NULL
                       AND pg_get_expr(i.indpred, i.indrelid) LIKE '%''' || a.status || '''%')));
        table_name := format('%I.%I', v_schema, a.tbl);
        index_name := a.idx;
        ddl := format('CREATE INDEX CONCURRENTLY %I ON %I.%I %s', a.idx, v_schema, a.tbl, a.spec);
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION runtime_sweeper.events_since(bigint, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION runtime_sweeper._metrics() FROM PUBLIC;
REVOKE ALL ON FUNCTION runtime_sweeper.metrics() FROM PUBLIC;

-- status.rows_skipped: candidate rows the stages left for a later tick
-- because a client held them (SKIP LOCKED) or changed them first.  The view
-- gains the column at its end (CREATE OR REPLACE VIEW keeps its grants); its
-- source function is replaced by one with the extra OUT column, and the
-- EXECUTE grants of the old one are carried over.
CREATE FUNCTION runtime_sweeper._status_1_1(
    OUT database text, OUT pid int, OUT state text, OUT ticks bigint,
    OUT last_tick_start timestamptz, OUT last_tick_duration interval, OUT next_tick timestamptz,
    OUT liveness text, OUT liveness_healthy boolean, OUT liveness_last_error text,
    OUT errors bigint, OUT tasks_failed bigint,
    OUT runtimes_offline bigint, OUT tasks_failed_runtime_offline bigint,
    OUT tasks_failed_timeout bigint, OUT tasks_failed_queued_expired bigint,
    OUT retries_created bigint, OUT retries_skipped bigint, OUT issues_rolled_back bigint,
    OUT agents_reconciled bigint, OUT runtimes_collected bigint, OUT gc_held_back bigint,
    OUT events_sent bigint, OUT events_truncated bigint, OUT analytics_records bigint,
    OUT liveness_checks bigint, OUT liveness_fallbacks bigint, OUT liveness_kept_alive bigint,
    OUT mass_offline_blocked bigint, OUT outage_deferred bigint, OUT rows_skipped bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'runtime_sweeper_status'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION runtime_sweeper._status_1_1() FROM PUBLIC;
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT r.rolname, a.is_grantable
        FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
        JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
        WHERE p.oid = 'runtime_sweeper._status()'::pg_catalog.regprocedure
          AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION runtime_sweeper._status_1_1() TO %I%s',
                                  g.rolname, CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;
CREATE OR REPLACE VIEW runtime_sweeper.status AS SELECT * FROM runtime_sweeper._status_1_1();
DROP FUNCTION runtime_sweeper._status();
ALTER FUNCTION runtime_sweeper._status_1_1() RENAME TO _status;
