-- ALTER EXTENSION runtime_sweeper UPDATE works from every released version to
-- the next, keeps data, grants and settings, and ends up with exactly the
-- objects of a fresh install.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS runtime_sweeper CASCADE;
DROP ROLE IF EXISTS rs_upgrade_reader;
RESET client_min_messages;

-- The objects of an extension version: every function with its signature,
-- every relation with its kind, every column.
CREATE TEMP VIEW rs_objects AS
SELECT 'function' AS kind, p.oid::regprocedure::text AS name,
       pg_get_function_result(p.oid) AS detail
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
JOIN pg_extension e ON d.refobjid = e.oid AND e.extname = 'runtime_sweeper' AND d.deptype = 'e'
UNION ALL
SELECT 'column', c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'runtime_sweeper'
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v');

-- Version 1.0, with data and a grant an operator made.
CREATE EXTENSION runtime_sweeper VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'runtime_sweeper';
INSERT INTO runtime_sweeper.event_log (channel, event)
VALUES ('runtime_sweeper', '{"type":"task:failed","n":1}'),
       ('runtime_sweeper', '{"type":"agent:status","n":2}');
CREATE ROLE rs_upgrade_reader;
GRANT USAGE ON SCHEMA runtime_sweeper TO rs_upgrade_reader;
GRANT SELECT ON runtime_sweeper.event_log TO rs_upgrade_reader;
-- 1.0 has no catch-up function yet.
SELECT to_regprocedure('runtime_sweeper.events_since(bigint,integer)') IS NULL AS absent_in_1_0;

-- 1.0 -> 1.1.
ALTER EXTENSION runtime_sweeper UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'runtime_sweeper';

-- Nothing was lost: the events, their ids, the grant.
SELECT id, channel, event::text FROM runtime_sweeper.event_log ORDER BY id;
SELECT has_table_privilege('rs_upgrade_reader', 'runtime_sweeper.event_log', 'SELECT') AS grant_kept;

-- The new functions work on the old data, and are not open to PUBLIC.
SELECT id, event::text FROM runtime_sweeper.events_since(1);
SELECT count(*) FROM runtime_sweeper.events_since(0, 1);
SELECT runtime_sweeper.metrics() LIKE '%# TYPE runtime_sweeper_up gauge%' AS metrics_work;
SELECT has_function_privilege('rs_upgrade_reader', 'runtime_sweeper.events_since(bigint,integer)', 'EXECUTE') AS reader_may_call,
       has_function_privilege('rs_upgrade_reader', 'runtime_sweeper.metrics()', 'EXECUTE') AS reader_may_scrape;
-- An updated installation has exactly the objects of a fresh one.
CREATE TEMP TABLE rs_updated AS SELECT * FROM rs_objects;
SET client_min_messages = warning;
DROP EXTENSION runtime_sweeper;
RESET client_min_messages;
CREATE EXTENSION runtime_sweeper;
SELECT extversion FROM pg_extension WHERE extname = 'runtime_sweeper';
SELECT 'only after update' AS side, * FROM (SELECT * FROM rs_updated EXCEPT SELECT * FROM rs_objects) x
UNION ALL
SELECT 'only in fresh install', * FROM (SELECT * FROM rs_objects EXCEPT SELECT * FROM rs_updated) y
ORDER BY 1, 2, 3;
SELECT count(*) > 0 AS compared_something FROM rs_updated;

-- The schema outlives DROP EXTENSION with the operator's grants on it.
DROP OWNED BY rs_upgrade_reader;
DROP ROLE rs_upgrade_reader;
