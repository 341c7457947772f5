-- runtime_sweeper 1.0: the SQL API, the status views and the event log.
-- The sweep itself is C++ (runtime_sweeper.so); these are its SQL faces.

\echo Use "CREATE EXTENSION runtime_sweeper" to load this file. \quit

-- Durable record of every event, written only when runtime_sweeper.event_log is on.
CREATE TABLE runtime_sweeper.event_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    channel     text NOT NULL,
    event       json NOT NULL
);
COMMENT ON TABLE runtime_sweeper.event_log IS
    'Events of the sweeper, in the order they were sent (runtime_sweeper.event_log = on).';

CREATE FUNCTION runtime_sweeper.sweep()
RETURNS TABLE (stage text, affected bigint)
AS 'MODULE_PATHNAME', 'runtime_sweeper_sweep'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION runtime_sweeper.sweep() IS
    'Run one whole tick now, in this transaction; one row per stage.';

CREATE FUNCTION runtime_sweeper.mark_stale_runtimes_offline(stale_after interval DEFAULT NULL)
RETURNS TABLE (runtime_id uuid, workspace_id uuid)
AS 'MODULE_PATHNAME', 'runtime_sweeper_mark_stale_runtimes_offline'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION runtime_sweeper.fail_offline_runtime_tasks(grace interval DEFAULT NULL,
                                                           max_tasks int DEFAULT NULL)
RETURNS TABLE (task_id uuid, retry_task_id uuid)
AS 'MODULE_PATHNAME', 'runtime_sweeper_fail_offline_runtime_tasks'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION runtime_sweeper.fail_stale_tasks(dispatch_timeout interval DEFAULT NULL,
                                                 running_timeout interval DEFAULT NULL)
RETURNS TABLE (task_id uuid, retry_task_id uuid)
AS 'MODULE_PATHNAME', 'runtime_sweeper_fail_stale_tasks'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION runtime_sweeper.expire_queued_tasks(ttl interval DEFAULT NULL,
                                                    max_tasks int DEFAULT NULL)
RETURNS TABLE (task_id uuid)
AS 'MODULE_PATHNAME', 'runtime_sweeper_expire_queued_tasks'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION runtime_sweeper.gc_offline_runtimes(ttl interval DEFAULT NULL)
RETURNS TABLE (runtime_id uuid, workspace_id uuid)
AS 'MODULE_PATHNAME', 'runtime_sweeper_gc_offline_runtimes'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION runtime_sweeper.refresh_agent_status(agent_id uuid)
RETURNS text
AS 'MODULE_PATHNAME', 'runtime_sweeper_refresh_agent_status'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION runtime_sweeper.preview()
RETURNS TABLE (stage text, id uuid, detail text)
AS 'MODULE_PATHNAME', 'runtime_sweeper_preview'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION runtime_sweeper.preview() IS
    'What each stage would change now; changes nothing, sends nothing.';

CREATE FUNCTION runtime_sweeper.wake()
RETURNS boolean
AS 'MODULE_PATHNAME', 'runtime_sweeper_wake'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION runtime_sweeper.wake() IS
    'Make this database''s worker tick now; false when no worker runs for it.';

CREATE FUNCTION runtime_sweeper._preloaded()
RETURNS boolean
AS 'MODULE_PATHNAME', 'runtime_sweeper_preloaded'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION runtime_sweeper._status(
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
    OUT mass_offline_blocked bigint, OUT outage_deferred bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'runtime_sweeper_status'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION runtime_sweeper._stage_status(
    OUT database text, OUT stage text, OUT runs bigint, OUT affected bigint, OUT errors bigint,
    OUT last_duration interval, OUT last_error text, OUT last_error_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'runtime_sweeper_stage_status'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

-- One row per database the sweeper has worked in: its worker, schedule,
-- liveness source and counters.
CREATE VIEW runtime_sweeper.status AS SELECT * FROM runtime_sweeper._status();

-- One row per database and stage: runs, rows affected, errors, last error.
CREATE VIEW runtime_sweeper.stage_status AS SELECT * FROM runtime_sweeper._stage_status();

-- The partial indexes the stages and the schedule use, as CREATE INDEX
-- CONCURRENTLY statements, for those the application schema lacks.  Every
-- stage is correct without them; with them an idle tick costs a few index
-- probes whatever the table sizes.  An existing valid index whose first
-- column is the same and whose predicate (if any) names the same status
-- counts as present.
CREATE FUNCTION runtime_sweeper.missing_indexes()
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
             '(last_seen_at) WHERE status = ''online'''),
            (2, 'agent_runtime', 'last_seen_at', 'offline', 'agent_runtime_offline_last_seen_idx',
             '(last_seen_at) WHERE status = ''offline'''),
            (3, 'agent_task_queue', 'dispatched_at', 'dispatched', 'agent_task_queue_dispatched_at_idx',
             '(dispatched_at) WHERE status = ''dispatched'''),
            (4, 'agent_task_queue', 'started_at', 'running', 'agent_task_queue_running_started_at_idx',
             '(started_at) WHERE status = ''running'''),
            (5, 'agent_task_queue', 'created_at', 'queued', 'agent_task_queue_queued_created_at_idx',
             '(created_at, id) WHERE status = ''queued'''),
            (6, 'agent_task_queue', 'runtime_id', NULL, 'agent_task_queue_runtime_id_idx',
             '(runtime_id)'),
            (7, 'agent_task_queue', 'agent_id', NULL, 'agent_task_queue_agent_id_idx',
             '(agent_id)'),
            (8, 'agent_task_queue', 'issue_id', NULL, 'agent_task_queue_issue_id_idx',
             '(issue_id)'),
            (9, 'agent', 'runtime_id', NULL, 'agent_runtime_id_idx',
             '(runtime_id)')
        ) AS v(ord, tbl, col, status, idx, spec)
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
              AND (i.indpred IS NULL
                   OR (a.status IS NOT NULL
                       AND pg_get_expr(i.indpred, i.indrelid) LIKE '%''' || a.status || '''%')));
        table_name := format('%I.%I', v_schema, a.tbl);
        index_name := a.idx;
        ddl := format('CREATE INDEX CONCURRENTLY %I ON %I.%I %s', a.idx, v_schema, a.tbl, a.spec);
        RETURN NEXT;
    END LOOP;
END
$$;

-- Nothing is open to PUBLIC: the operator grants what each role needs.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA runtime_sweeper FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA runtime_sweeper FROM PUBLIC;
REVOKE ALL ON SCHEMA runtime_sweeper FROM PUBLIC;

DO $$
BEGIN
    IF NOT runtime_sweeper._preloaded() THEN
        -- CREATE EXTENSION runs this script with client_min_messages raised to
        -- WARNING (undone when the script ends): use the session's level here.
        PERFORM pg_catalog.set_config('client_min_messages',
            (SELECT s.reset_val FROM pg_catalog.pg_settings s WHERE s.name = 'client_min_messages'),
            true);
        RAISE NOTICE 'runtime_sweeper is not in shared_preload_libraries: no worker runs; the SQL API works';
    END IF;
END
$$;
