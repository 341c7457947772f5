-- Privileges (SPEC section 5): nothing is open to PUBLIC; the operator's grants open it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;

CREATE SCHEMA t_priv;
SET search_path = t_priv, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_priv;
-- Errors show their message only (not the SQL text of the stage).
\set VERBOSITY terse

-- One runtime silent for 10 minutes, so preview() has something to show.
SELECT fx_runtime(fx_workspace(), 'online', '10 min') IS NOT NULL AS runtime_created;

CREATE ROLE regress_rs_priv;

-- No PUBLIC USAGE on the schema, for a fresh role or for PUBLIC itself.
SELECT has_schema_privilege('regress_rs_priv', 'runtime_sweeper', 'USAGE') AS role_usage,
       has_schema_privilege('regress_rs_priv', 'runtime_sweeper', 'CREATE') AS role_create,
       EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
               WHERE n.nspname = 'runtime_sweeper' AND a.grantee = 0) AS public_entry;

-- No function of the schema is executable by a fresh role: its ACL is set
-- (a NULL ACL would mean PUBLIC EXECUTE) and has no PUBLIC entry.
SELECT p.proname,
       has_function_privilege('regress_rs_priv', p.oid, 'EXECUTE') AS role_execute,
       p.proacl IS NULL AS default_acl,
       EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0) AS public_entry
FROM pg_proc p
WHERE p.pronamespace = 'runtime_sweeper'::regnamespace
ORDER BY p.proname;

-- No table, view or sequence of the schema is readable or writable by a fresh role.
SELECT c.relname, c.relkind,
       CASE WHEN c.relkind = 'S'
            THEN has_sequence_privilege('regress_rs_priv', c.oid, 'USAGE, SELECT, UPDATE')
            ELSE has_table_privilege('regress_rs_priv', c.oid,
                                     'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       END AS role_any_privilege,
       EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0) AS public_entry
FROM pg_class c
WHERE c.relnamespace = 'runtime_sweeper'::regnamespace AND c.relkind IN ('r', 'v', 'S')
ORDER BY c.relname;

-- The role cannot reach anything: the schema itself is closed.
SET ROLE regress_rs_priv;
SELECT * FROM runtime_sweeper.preview();
SELECT * FROM runtime_sweeper.sweep();
SELECT count(*) FROM runtime_sweeper.status;
SELECT count(*) FROM runtime_sweeper.event_log;
RESET ROLE;

-- USAGE on the schema alone is not enough: every function and view is closed too.
GRANT USAGE ON SCHEMA runtime_sweeper TO regress_rs_priv;
SET ROLE regress_rs_priv;
SELECT * FROM runtime_sweeper.preview();
SELECT * FROM runtime_sweeper.mark_stale_runtimes_offline();
SELECT runtime_sweeper.wake();
SELECT count(*) FROM runtime_sweeper.stage_status;
SELECT count(*) FROM runtime_sweeper.event_log;
RESET ROLE;

-- The documented grants open the SQL API and the views to the role.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA runtime_sweeper TO regress_rs_priv;
GRANT SELECT ON ALL TABLES IN SCHEMA runtime_sweeper TO regress_rs_priv;
SELECT count(*) FILTER (WHERE has_function_privilege('regress_rs_priv', p.oid, 'EXECUTE')) AS executable,
       count(*) AS functions
FROM pg_proc p WHERE p.pronamespace = 'runtime_sweeper'::regnamespace;

-- The functions run with the caller's rights: without access to the
-- application's tables, preview() is refused by those tables.
SET ROLE regress_rs_priv;
DO $$
BEGIN
    PERFORM * FROM runtime_sweeper.preview();
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'preview() refused: %', SQLERRM;
END
$$;
RESET ROLE;

-- With read access to the application schema, the role can call preview(),
-- read the views and the event log.
GRANT USAGE ON SCHEMA t_priv TO regress_rs_priv;
GRANT SELECT ON ALL TABLES IN SCHEMA t_priv TO regress_rs_priv;
SET ROLE regress_rs_priv;
SELECT stage, detail FROM runtime_sweeper.preview();
SELECT count(*) >= 0 AS readable FROM runtime_sweeper.status;
SELECT count(*) >= 0 AS readable FROM runtime_sweeper.stage_status;
SELECT count(*) >= 0 AS readable FROM runtime_sweeper.event_log;
SELECT runtime_sweeper.wake() IS NOT NULL AS answered;
-- SELECT does not let it write the event log.
INSERT INTO runtime_sweeper.event_log (channel, event) VALUES ('x', '{}');
-- Read-only access to the application's tables does not let it sweep them.
SELECT * FROM runtime_sweeper.mark_stale_runtimes_offline();
RESET ROLE;
-- ... and the failed call changed nothing.
SELECT status FROM agent_runtime;

DROP OWNED BY regress_rs_priv;
DROP ROLE regress_rs_priv;
RESET runtime_sweeper.app_schema;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA t_priv CASCADE;
