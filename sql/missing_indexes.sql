-- runtime_sweeper.missing_indexes(): the CREATE INDEX CONCURRENTLY statements
-- for the partial indexes the stages and the look-ahead use, only for those
-- the application schema lacks.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS runtime_sweeper;
RESET client_min_messages;
CREATE SCHEMA t_indexes;
SET search_path = t_indexes, public;
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all
SET runtime_sweeper.app_schema = t_indexes;

-- The fixture has the application's own indexes, none of the sweeper's.
SELECT index_name, ddl FROM runtime_sweeper.missing_indexes();

-- Each advised statement creates a valid index, after which it is no
-- longer advised (CONCURRENTLY cannot run in a transaction block: plain
-- CREATE INDEX builds the same index here).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT ddl FROM runtime_sweeper.missing_indexes() LOOP
        EXECUTE replace(r.ddl, 'CREATE INDEX CONCURRENTLY', 'CREATE INDEX');
    END LOOP;
END
$$;
SELECT count(*) AS still_missing FROM runtime_sweeper.missing_indexes();

-- An index on the same column with another status's predicate does not
-- serve the stage; a full index on the column does.
DROP INDEX agent_task_queue_dispatched_at_idx;
CREATE INDEX dispatched_wrong_status ON agent_task_queue (dispatched_at) WHERE status = 'queued';
SELECT index_name FROM runtime_sweeper.missing_indexes();
CREATE INDEX dispatched_full ON agent_task_queue (dispatched_at);
SELECT count(*) AS still_missing FROM runtime_sweeper.missing_indexes();

-- A schema without the application tables gets no advice and no error.
SET runtime_sweeper.app_schema = t_indexes_missing;
SELECT count(*) FROM runtime_sweeper.missing_indexes();

RESET runtime_sweeper.app_schema;
SET client_min_messages = warning;
DROP SCHEMA t_indexes CASCADE;
