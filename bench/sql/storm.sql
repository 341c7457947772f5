-- bench/sql/storm.sql: running tasks that all time out at once, each with a retry left.
-- psql -v schema=S -v n=N -v started=TS: N issues in progress, each with one running
-- task (attempt 1 of 2) started at TS, on the agents of online runtimes (round robin).
\set ON_ERROR_STOP 1
SET search_path = :"schema", public;
CREATE SEQUENCE IF NOT EXISTS bench_issue_number START 100000000;
CREATE TEMP TABLE storm_agent AS
SELECT row_number() OVER (ORDER BY a.id) - 1 AS k, a.id, a.runtime_id, a.workspace_id
FROM agent a JOIN agent_runtime r ON r.id = a.runtime_id WHERE r.status = 'online';
SELECT count(*) AS agents FROM storm_agent \gset
CREATE TEMP TABLE storm AS
SELECT g, gen_random_uuid() AS issue_id, s.id AS agent_id, s.runtime_id, s.workspace_id
FROM generate_series(0, :n - 1) g JOIN storm_agent s ON s.k = g % :agents;
INSERT INTO issue (id, workspace_id, number, title, status, assignee_type, assignee_id)
SELECT issue_id, workspace_id, nextval('bench_issue_number'), 'storm issue', 'in_progress',
       'agent', agent_id
FROM storm;
INSERT INTO agent_task_queue (agent_id, runtime_id, issue_id, status, created_at, dispatched_at,
                              started_at, attempt, max_attempts, session_id, work_dir,
                              trigger_summary)
SELECT agent_id, runtime_id, issue_id, 'running', :'started'::timestamptz - interval '1 min',
       :'started'::timestamptz - interval '30 s', :'started'::timestamptz, 1, 2,
       'session-storm-' || g, '/work/storm-' || g, 'storm'
FROM storm ORDER BY g;
