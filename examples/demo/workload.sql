-- The demo's workload: two workspaces, five runtimes, five agents, four
-- issues and four tasks, built with the test fixture helpers
-- (test/fixtures/sample_data.sql).  All times are relative to now(); the
-- psql variable t0 (epoch seconds of the cluster start) sets the demo clock.
--
--   acme    rt-alpha  live daemon    agent ada     t-hang    dispatched, never started   ACME-2
--           rt-dead   dies at T+~5s  agent linus   t-build   running                     ACME-1
--   globex  rt-beta   live daemon    agent grace   t-queued  queued, nobody claims it    GLOBEX-1
--                                    agent turing  t-healthy running                     GLOBEX-2
--           rt-lapsed online, silent for 2 minutes    agent hopper (idle)
--           rt-retired offline for an hour, no agents

INSERT INTO demo.clock VALUES (to_timestamp(:t0));

DO $$
DECLARE
    acme      uuid := demo.tag(fx_workspace('acme'), 'acme');
    globex    uuid := demo.tag(fx_workspace('globex'), 'globex');
    alice     uuid := fx_user('alice');
    bob       uuid := fx_user('bob');
    rt_alpha  uuid := demo.tag(fx_runtime(acme, 'online', '0 s', 'claude', alice), 'rt-alpha');
    rt_dead   uuid := demo.tag(fx_runtime(acme, 'online', '0 s', 'codex', alice), 'rt-dead');
    rt_beta   uuid := demo.tag(fx_runtime(globex, 'online', '0 s', 'claude', bob), 'rt-beta');
    rt_lapsed uuid := demo.tag(fx_runtime(globex, 'online', '2 min', 'codex', bob), 'rt-lapsed');
    rt_gone   uuid := demo.tag(fx_runtime(globex, 'offline', '1 hour', 'claude', bob), 'rt-retired');
    ada       uuid := demo.tag(fx_agent(acme, rt_alpha, 'ada', 'working'), 'ada');
    linus     uuid := demo.tag(fx_agent(acme, rt_dead, 'linus', 'working'), 'linus');
    grace     uuid := demo.tag(fx_agent(globex, rt_beta, 'grace', 'idle'), 'grace');
    turing    uuid := demo.tag(fx_agent(globex, rt_beta, 'turing', 'working'), 'turing');
    hopper    uuid := demo.tag(fx_agent(globex, rt_lapsed, 'hopper', 'idle'), 'hopper');
    acme1     uuid := demo.tag(fx_issue(acme, 'in_progress'), 'ACME-1');
    acme2     uuid := demo.tag(fx_issue(acme, 'in_progress'), 'ACME-2');
    globex1   uuid := demo.tag(fx_issue(globex, 'in_progress'), 'GLOBEX-1');
    globex2   uuid := demo.tag(fx_issue(globex, 'in_progress'), 'GLOBEX-2');
BEGIN
    UPDATE agent_runtime r SET name = l.label FROM demo.label l WHERE l.id = r.id;
    UPDATE issue SET title = 'Fix the flaky login test' WHERE id = acme1;
    UPDATE issue SET title = 'Upgrade the build image' WHERE id = acme2;
    UPDATE issue SET title = 'Write the release notes' WHERE id = globex1;
    UPDATE issue SET title = 'Profile the search endpoint' WHERE id = globex2;
    -- Attempt 1 of 2: retried when its runtime dies.
    PERFORM demo.tag(fx_task(linus, rt_dead, acme1, 'running', '0 s', 1, 2), 't-build');
    -- Attempt 2 of 2: dispatched, never started; no retry left.
    PERFORM demo.tag(fx_task(ada, rt_alpha, acme2, 'dispatched', '0 s', 2, 2), 't-hang');
    PERFORM demo.tag(fx_task(grace, rt_beta, globex1, 'queued', '0 s', 1, 2), 't-queued');
    PERFORM demo.tag(fx_task(turing, rt_beta, globex2, 'running', '0 s', 1, 2), 't-healthy');
END
$$;
