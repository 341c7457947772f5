-- autopkgtest smoke test of the installed package (run by debian/tests/smoke
-- from the source tree, in a cluster with shared_preload_libraries =
-- 'runtime_sweeper' and runtime_sweeper.database = 'postgres').

-- CREATE EXTENSION installs the default version.
CREATE EXTENSION runtime_sweeper;
DO $$
BEGIN
    ASSERT (SELECT extversion FROM pg_extension WHERE extname = 'runtime_sweeper')
        = (SELECT default_version FROM pg_available_extensions WHERE name = 'runtime_sweeper'),
        'CREATE EXTENSION did not install the default version';
END $$;

-- The preloaded library started a worker for database postgres (bounded poll:
-- the status view reads shared memory afresh on every call).
DO $$
BEGIN
    FOR i IN 1 .. 600 LOOP
        EXIT WHEN EXISTS (SELECT FROM runtime_sweeper.status
                          WHERE database = 'postgres' AND pid IS NOT NULL);
        PERFORM pg_sleep(0.1);
    END LOOP;
    ASSERT EXISTS (SELECT FROM runtime_sweeper.status
                   WHERE database = 'postgres' AND pid IS NOT NULL),
        'no runtime_sweeper worker after 60 s';
END $$;

-- sweep() flips a runtime whose heartbeat is an hour old offline.
\i test/fixtures/app_schema.sql
\i test/fixtures/sample_data.sql
CREATE TEMP TABLE smoke AS SELECT fx_runtime(fx_workspace(), 'online', '1 hour') AS rt;
DO $$
BEGIN
    ASSERT (SELECT affected FROM runtime_sweeper.sweep() WHERE stage = 'stale_runtimes') = 1,
        'sweep() did not flip the stale runtime';
    ASSERT (SELECT status FROM agent_runtime JOIN smoke ON id = rt) = 'offline',
        'the stale runtime is not offline';
END $$;

-- The update scripts are installed: 1.0 updates to the default version.
CREATE DATABASE upgrade;
\c upgrade
CREATE EXTENSION runtime_sweeper VERSION '1.0';
ALTER EXTENSION runtime_sweeper UPDATE;
DO $$
BEGIN
    ASSERT (SELECT extversion FROM pg_extension WHERE extname = 'runtime_sweeper')
        = (SELECT default_version FROM pg_available_extensions WHERE name = 'runtime_sweeper'),
        'ALTER EXTENSION UPDATE did not reach the default version';
END $$;
