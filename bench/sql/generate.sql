-- bench/sql/generate.sql: a realistic application data set for the benchmarks.
--
-- psql -1 -v schema=S -v tasks=T -v runtimes=R -f bench/sql/generate.sql, then
-- VACUUM ANALYZE (R a multiple of 10, T a multiple of 5).  Creates schema S
-- from the project's fixture (test/fixtures/app_schema.sql: the original
-- shape, its indexes and foreign keys, no advised index) and fills it
-- set-based:
--   workspaces R/10 (one user each), runtimes R (30% online, heartbeat within
--   the last 60 s; 70% offline, silent for 1 h to 60 days), agents 2R (two per
--   runtime, so no runtime is ever collectable), issues T/5 with five tasks
--   each (one agent per issue: its task history).  The first four tasks of an
--   issue are terminal (90% completed, 7% failed, 3% cancelled); the last one
--   is what the issue is doing now: queued for 5% of the issues (created
--   within 30 min), running 3% (started within 60 min), dispatched 1% and
--   waiting_local_directory 1% (within 60 s), else completed 85%, failed 3%,
--   cancelled 2%.  The table is then 89% completed, 6.2% failed, 2.8%
--   cancelled, 1% queued, 0.6% running, 0.2% dispatched, 0.2% waiting.
--   In-flight tasks sit on online runtimes only.
-- Nothing here is due under thresholds of at least: stale 2 min, dispatch
-- 2 min, running 61 min, queued TTL 31 min; offline runtimes older than the
-- offline TTL all keep agents (so GC finds nothing, but has to look).
-- Run in one transaction (-1) with wal_level = minimal, the load writes no
-- WAL.  It drops the task table's secondary indexes and primary key, skips
-- foreign-key triggers (session_replication_role = replica; the ids are
-- consistent by construction), then rebuilds them, so the result has the
-- production shape.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET maintenance_work_mem = '1GB';
SET max_parallel_maintenance_workers = 2;
DROP SCHEMA IF EXISTS :"schema" CASCADE;
CREATE SCHEMA :"schema";
SET search_path = :"schema", public;
\ir ../../test/fixtures/app_schema.sql

SELECT :runtimes::bigint AS r, (:runtimes / 10)::bigint AS w, (2 * :runtimes)::bigint AS a,
       (:tasks / 5)::bigint AS i \gset

-- A stable uuid per (kind, number), so references need no join.  The
-- leading bytes are a bijective scramble of the number: keys land all over
-- the btrees as random uuids do, at a third of the cost of md5().
CREATE FUNCTION bench_id(kind text, n bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT encode(int8send(((n * 2654435761) % 2147483648) * 4294967296 + ascii(kind))
                  || int8send(n), 'hex')::uuid
$$;

CREATE TEMP TABLE saved_index AS
    SELECT indexname, indexdef FROM pg_indexes
    WHERE schemaname = :'schema' AND tablename = 'agent_task_queue'
      AND indexname <> 'agent_task_queue_pkey';
SELECT format('DROP INDEX %I.%I', :'schema', indexname) FROM saved_index \gexec
-- The primary key too (random uuids make a slow index to grow row by row);
-- only the self-reference depends on it, and every parent_task_id is NULL.
CREATE TEMP TABLE saved_constraint AS
    SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def, contype
    FROM pg_constraint
    WHERE (conrelid = 'agent_task_queue'::regclass AND contype = 'p')
       OR (confrelid = 'agent_task_queue'::regclass AND contype = 'f');
ALTER TABLE agent_task_queue DROP CONSTRAINT agent_task_queue_pkey CASCADE;

SET session_replication_role = replica;

INSERT INTO "user" (id, email, name)
SELECT bench_id('u', g), 'user' || g || '@example.com', 'user ' || g
FROM generate_series(0, :w - 1) g;

INSERT INTO workspace (id, name, slug)
SELECT bench_id('w', g), 'workspace ' || g, 'ws-' || g
FROM generate_series(0, :w - 1) g;

INSERT INTO agent_runtime (id, workspace_id, daemon_id, name, runtime_mode, provider, status,
                           owner_id, last_seen_at, created_at, updated_at)
SELECT bench_id('r', g), bench_id('w', g % :w), 'daemon-' || g, 'runtime ' || g, 'local',
       (ARRAY['claude', 'codex', 'opencode'])[1 + g % 3],
       CASE WHEN g % 10 < 3 THEN 'online' ELSE 'offline' END,
       bench_id('u', g % :w), s.seen, s.seen - interval '30 days', s.seen
FROM generate_series(0, :r - 1) g,
     LATERAL (SELECT CASE WHEN g % 10 < 3 THEN now() - random() * interval '60 s'
                          ELSE now() - interval '1 hour' - random() * interval '60 days' END AS seen) s;

INSERT INTO agent (id, workspace_id, runtime_id, name, description, runtime_config, status,
                   owner_id, created_at, updated_at)
SELECT bench_id('a', g), bench_id('w', (g % :r) % :w), bench_id('r', g % :r), 'agent ' || g,
       'benchmark agent', '{"model": "default"}',
       CASE WHEN g % 10 < 3 THEN 'working' ELSE 'idle' END,
       bench_id('u', (g % :r) % :w), now() - interval '60 days', now() - interval '1 day'
FROM generate_series(0, :a - 1) g;

-- Issue n: agent j (adjusted onto an online runtime when its current task is
-- in flight); b = n % 100 says what its last task is doing.
CREATE TEMP TABLE issue_plan AS
SELECT n, b, j, (j % :r) % :w AS ws,
       CASE WHEN b < 5 THEN 'queued' WHEN b < 8 THEN 'running' WHEN b < 9 THEN 'dispatched'
            WHEN b < 10 THEN 'waiting_local_directory' WHEN b < 95 THEN 'completed'
            WHEN b < 98 THEN 'failed' ELSE 'cancelled' END AS last_status
FROM (SELECT n, n % 100 AS b,
             CASE WHEN n % 100 BETWEEN 5 AND 9 THEN (n % :a) - (n % :a) % 10 + (n % :a) % 10 % 3
                  ELSE n % :a END AS j
      FROM generate_series(0, :i - 1) n) p;

INSERT INTO issue (id, workspace_id, number, title, status, priority, assignee_type, assignee_id,
                   creator_type, created_at, updated_at)
SELECT bench_id('i', n), bench_id('w', ws), n + 1, 'issue ' || n,
       CASE WHEN last_status IN ('queued', 'running', 'dispatched', 'waiting_local_directory')
            THEN 'in_progress' WHEN last_status = 'completed' THEN 'done' ELSE 'todo' END,
       'medium', 'agent', bench_id('a', j), 'member',
       now() - interval '90 days', now() - interval '1 day'
FROM issue_plan;

-- Tasks: five per issue, k = 0..4 in time order; k = 4 is the current one.
INSERT INTO agent_task_queue (id, agent_id, runtime_id, issue_id, status, priority,
                              dispatched_at, started_at, completed_at, created_at, error,
                              failure_reason, wait_reason, attempt, max_attempts, context,
                              session_id, work_dir, trigger_summary, result)
SELECT bench_id('t', p.n * 5 + k), bench_id('a', p.j), bench_id('r', p.j % :r), bench_id('i', p.n),
       st, (p.n % 3)::int,
       CASE WHEN st = 'queued' THEN NULL
            WHEN st IN ('dispatched', 'waiting_local_directory') THEN now() - random() * interval '60 s'
            ELSE t0 + interval '5 s' END,
       CASE WHEN st IN ('queued', 'dispatched', 'waiting_local_directory') THEN NULL
            WHEN st = 'running' THEN now() - random() * interval '60 min'
            ELSE t0 + interval '10 s' END,
       CASE WHEN st IN ('completed', 'failed', 'cancelled') THEN t0 + random() * interval '20 min' END,
       CASE WHEN st = 'queued' THEN now() - random() * interval '30 min'
            WHEN st IN ('dispatched', 'waiting_local_directory') THEN now() - interval '2 min'
            WHEN st = 'running' THEN now() - interval '61 min'
            ELSE t0 END,
       CASE st WHEN 'failed' THEN 'agent exited with status 1' END,
       CASE st WHEN 'failed' THEN 'agent_error' END,
       CASE st WHEN 'waiting_local_directory' THEN 'local_directory_busy' END,
       1, 2, NULL, 'session-' || (p.n * 5 + k), '/work/issue-' || p.n, 'benchmark task',
       CASE st WHEN 'completed' THEN '{"output": "done", "tokens": 1234}'::jsonb END
FROM issue_plan p
CROSS JOIN generate_series(0, 4) k,
     LATERAL (SELECT CASE WHEN k < 4 THEN
                          CASE WHEN (p.n + k) % 100 < 90 THEN 'completed'
                               WHEN (p.n + k) % 100 < 97 THEN 'failed' ELSE 'cancelled' END
                          ELSE p.last_status END AS st,
                     now() - interval '90 days' + (p.n % 1000) * interval '2 hours'
                         + k * interval '3 hours' AS t0) x;

RESET session_replication_role;
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl, conname, def)
FROM saved_constraint ORDER BY contype = 'f' \gexec
SELECT indexdef FROM saved_index \gexec
DROP FUNCTION bench_id(text, bigint);
