-- Workload: a daemon starts and completes one in-flight task of one of its agents.
\set n random(1, :agents)
UPDATE agent_task_queue
SET status = 'completed', started_at = COALESCE(started_at, now()), completed_at = now(),
    result = '{"output": "ok"}'
WHERE id = (
    SELECT id FROM agent_task_queue
    WHERE agent_id = (SELECT agent_id FROM bench_agents WHERE n = :n)
      AND status IN ('dispatched', 'running')
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id;
