-- bench/sql/backlog.sql: an expired queue backlog (SPEC stage 3), the MUL-1899 kind.
-- psql -v schema=S -v n=N -v created=TS: N issues in progress, each with one queued
-- task created at TS, on the agents of offline runtimes (round robin).
\set ON_ERROR_STOP 1
SET search_path = :"schema", public;
CREATE SEQUENCE IF NOT EXISTS bench_issue_number START 100000000;
CREATE TEMP TABLE backlog_agent AS
SELECT row_number() OVER (ORDER BY a.id) - 1 AS k, a.id, a.runtime_id, a.workspace_id
FROM agent a JOIN agent_runtime r ON r.id = a.runtime_id WHERE r.status = 'offline';
SELECT count(*) AS agents FROM backlog_agent \gset
CREATE TEMP TABLE backlog AS
SELECT g, gen_random_uuid() AS issue_id, b.id AS agent_id, b.runtime_id, b.workspace_id
FROM generate_series(0, :n - 1) g JOIN backlog_agent b ON b.k = g % :agents;
INSERT INTO issue (id, workspace_id, number, title, status, assignee_type, assignee_id)
SELECT issue_id, workspace_id, nextval('bench_issue_number'), 'backlog issue', 'in_progress',
       'agent', agent_id
FROM backlog;
INSERT INTO agent_task_queue (agent_id, runtime_id, issue_id, status, created_at, trigger_summary)
SELECT agent_id, runtime_id, issue_id, 'queued', :'created'::timestamptz, 'backlog'
FROM backlog ORDER BY g;
