-- The extension installs into its own schema with its functions, views and event log.

-- Start from a clean slate whichever test ran before (earlier files may have
-- created the extension with IF NOT EXISTS).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS runtime_sweeper;
RESET client_min_messages;

-- CREATE EXTENSION works in a database with the library preloaded (no NOTICE).
CREATE EXTENSION runtime_sweeper;
SELECT extname, extversion, nspname, extrelocatable
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'runtime_sweeper';
SELECT runtime_sweeper._preloaded();

-- Every function of the SQL API, with its arguments and result (the
-- internal _status/_stage_status feed the views, whose columns follow);
-- none is SECURITY DEFINER, and all belong to the extension.
SELECT p.proname,
       CASE WHEN p.proname LIKE '\_%status' THEN '(view source)'
            ELSE pg_get_function_arguments(p.oid) END AS arguments,
       CASE WHEN p.proname LIKE '\_%status' THEN '(view source)'
            ELSE pg_get_function_result(p.oid) END AS result,
       p.provolatile,
       p.prosecdef,
       EXISTS (SELECT 1 FROM pg_depend d
               WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') AS member
FROM pg_proc p
WHERE p.pronamespace = 'runtime_sweeper'::regnamespace
ORDER BY p.proname;

-- The relations of the schema: the event log table and the two views.
SELECT c.relname, c.relkind
FROM pg_class c
WHERE c.relnamespace = 'runtime_sweeper'::regnamespace AND c.relkind IN ('r', 'v')
ORDER BY c.relname;

-- Columns of the status view, in order.
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
WHERE a.attrelid = 'runtime_sweeper.status'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;

-- Columns of the stage_status view, in order.
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
WHERE a.attrelid = 'runtime_sweeper.stage_status'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;

-- Columns of the event log table, in order, with nullability.
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
       a.attidentity
FROM pg_attribute a
WHERE a.attrelid = 'runtime_sweeper.event_log'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;

-- The views can be read right after installation (the worker of this
-- instance watches another database, so only the shape is checked here).
SELECT count(*) >= 0 AS readable FROM runtime_sweeper.status;
SELECT count(*) >= 0 AS readable FROM runtime_sweeper.stage_status;
SELECT count(*) AS events FROM runtime_sweeper.event_log;

-- A second CREATE EXTENSION is refused; IF NOT EXISTS is a no-op.
CREATE EXTENSION runtime_sweeper;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;

-- Relocation is refused: the functions pin the schema.
ALTER EXTENSION runtime_sweeper SET SCHEMA public;

-- DROP EXTENSION removes every function, view and table it created (the
-- schema that CREATE EXTENSION made may stay, empty), and the
-- extension installs again afterwards.
DROP EXTENSION runtime_sweeper;
SELECT count(*) AS leftover_relations
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'runtime_sweeper';
SELECT count(*) AS leftover_functions
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'runtime_sweeper';
CREATE EXTENSION runtime_sweeper;
SELECT count(*) AS functions FROM pg_proc WHERE pronamespace = 'runtime_sweeper'::regnamespace;
