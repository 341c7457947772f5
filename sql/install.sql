-- The extension installs into its own schema with its views.
CREATE EXTENSION runtime_sweeper;
SELECT extname, extversion, nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE extname = 'runtime_sweeper';
SELECT runtime_sweeper._preloaded();
