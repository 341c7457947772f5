-- Workload: a daemon heartbeat (the original's TouchAgentRuntimeLastSeen).
\set n random(1, :agents)
UPDATE agent_runtime
SET last_seen_at = now()
WHERE id = (SELECT runtime_id FROM bench_agents WHERE n = :n) AND status = 'online';
