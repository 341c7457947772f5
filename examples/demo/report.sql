-- The demo's final report: the application tables in demo names, then the
-- sweeper's own status views.

\pset footer off
\pset null '-'

\echo
\echo '-- Runtimes (rt-retired is gone: garbage-collected)'
SELECT demo.name(r.id) AS runtime, demo.name(r.workspace_id) AS workspace, r.status,
       demo.rel(r.last_seen_at) AS last_seen, demo.rel(r.updated_at) AS updated,
       (SELECT string_agg(a.name, ', ' ORDER BY a.name) FROM agent a WHERE a.runtime_id = r.id) AS agents
  FROM agent_runtime r
 ORDER BY 2, 1;

\echo '-- Tasks'
SELECT demo.name(t.id) AS task, demo.name(t.agent_id) AS agent, demo.name(t.runtime_id) AS runtime,
       demo.name(t.issue_id) AS issue, t.status, t.failure_reason, t.error,
       t.attempt || '/' || t.max_attempts AS attempt, demo.name(t.parent_task_id) AS parent,
       demo.rel(t.created_at) AS created, demo.rel(t.completed_at) AS completed
  FROM agent_task_queue t
 ORDER BY t.created_at, 1;

\echo '-- Issues'
SELECT demo.name(i.id) AS issue, i.title, i.status, demo.rel(i.updated_at) AS updated
  FROM issue i
 ORDER BY 1;

\echo '-- Agents'
SELECT a.name AS agent, demo.name(a.runtime_id) AS runtime, a.status, demo.rel(a.updated_at) AS updated
  FROM agent a
 ORDER BY 2, 1;

\echo '-- SELECT * FROM runtime_sweeper.status;'
\x on
SELECT * FROM runtime_sweeper.status;
\x off

\echo '-- SELECT stage, runs, affected, errors, last_duration, last_error FROM runtime_sweeper.stage_status;'
SELECT stage, runs, affected, errors, last_duration, last_error
  FROM runtime_sweeper.stage_status
 WHERE database = current_database();
