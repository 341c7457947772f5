-- bench/sql/workload_setup.sql: the table the pgbench workload picks its agents from.
-- psql -v schema=S: bench_agents(n, agent_id, runtime_id, chat_session_id) numbers
-- the agents of the online runtimes of S from 1, each with a chat session of its own.
\set ON_ERROR_STOP 1
SET search_path = :"schema", public;
DROP TABLE IF EXISTS bench_agents;
CREATE TABLE bench_agents AS
SELECT row_number() OVER (ORDER BY a.id)::int AS n, a.id AS agent_id, a.runtime_id,
       a.workspace_id, gen_random_uuid() AS chat_session_id
FROM agent a JOIN agent_runtime r ON r.id = a.runtime_id
WHERE r.status = 'online';
ALTER TABLE bench_agents ADD PRIMARY KEY (n);
INSERT INTO chat_session (id, workspace_id, agent_id, title)
SELECT chat_session_id, workspace_id, agent_id, 'workload chat' FROM bench_agents;
ANALYZE bench_agents;
ANALYZE chat_session;
SELECT count(*) AS agents FROM bench_agents \gset
\echo agents=:agents
