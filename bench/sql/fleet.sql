-- bench/sql/fleet.sql: a small fleet for the latency and memory runs.
-- psql -v schema=S -v runtimes=R: the fixture schema and R online runtimes
-- (heartbeat now), one agent each, in R/10 workspaces (at least one).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS :"schema" CASCADE;
CREATE SCHEMA :"schema";
SET search_path = :"schema", public;
\ir ../../test/fixtures/app_schema.sql
INSERT INTO workspace (name, slug)
SELECT 'workspace ' || g, 'ws-' || g FROM generate_series(0, greatest(:runtimes / 10, 1) - 1) g;
CREATE TEMP TABLE ws AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM workspace;
INSERT INTO agent_runtime (workspace_id, daemon_id, name, provider, status, last_seen_at)
SELECT ws.id, 'daemon-' || g, 'runtime ' || g, 'claude', 'online', now()
FROM generate_series(0, :runtimes - 1) g
JOIN ws ON ws.k = g % greatest(:runtimes / 10, 1);
INSERT INTO agent (workspace_id, runtime_id, name)
SELECT workspace_id, id, 'agent of ' || name FROM agent_runtime;
ANALYZE;
