-- Workload: the application enqueues a chat task for a random agent of an online
-- runtime, unless that agent already has two queued (a bounded queue keeps the
-- workload in a steady state: claims stay cheap over a long run).
\set n random(1, :agents)
INSERT INTO agent_task_queue (agent_id, runtime_id, chat_session_id, status, priority, trigger_summary)
SELECT b.agent_id, b.runtime_id, b.chat_session_id, 'queued', 0, 'workload'
FROM bench_agents b
WHERE b.n = :n
  AND (SELECT count(*) FROM agent_task_queue q
       WHERE q.agent_id = b.agent_id AND q.status = 'queued') < 2;
