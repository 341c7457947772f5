# Hostile data: malformed contexts, 1 MB texts, 10 000 tasks in one tick, a runtime with 10 000 agents, dangling references: handled or counted, never a crash.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

my $node = sweeper_node('hostile', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
runtime_sweeper.event_log = on
});
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the first tick never finished';
my $pid = worker_status($node, 'pid');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Events of the event log since the last call, as "type task_id" lines.
my $seen = 0;
sub new_events
{
	my $out = sql(qq{SELECT coalesce(string_agg(e.event->>'type' || ' ' || coalesce(e.event->'payload'->>'task_id', '-')
	                                            || ' ' || (e.event->>'workspace_id'), E'\\n' ORDER BY e.id), '')
	                 FROM runtime_sweeper.event_log e WHERE e.id > $seen});
	$seen = sql('SELECT coalesce(max(id), 0) FROM runtime_sweeper.event_log');
	return $out;
}

sub no_errors
{
	my ($what) = @_;
	is(worker_status($node, 'errors'), '0', "$what: no stage error");
	is(worker_status($node, 'pid'), $pid, "$what: the worker kept its process");
	return;
}

my ($ws, $rt, $ag) = split /\|/, sql(q{
	WITH ws AS (SELECT fx_workspace() AS ws),
	     rt AS (SELECT ws, fx_runtime(ws, 'online', NULL) AS rt FROM ws)
	SELECT ws, rt, fx_agent(ws, rt) FROM rt});

# ---------------------------------------------------------------------------
# Rule: a malformed context (not an object, wrong types, a workspace_id
# that is not exactly a UUID) leaves the task's workspace unresolved: the
# task is failed, and only a well-formed quick_create context (upper-case
# UUID included) gives a task:failed event, with the UUID in lower case.
my $WS = uc($ws);
my @contexts = (
	q{'[]'}, q{'"quick_create"'}, q{'42'}, q{'null'}, q{NULL}, q{'true'},
	qq{'{"type": "quick_create", "workspace_id": 42}'},
	qq{'{"type": "quick_create", "workspace_id": "not-a-uuid"}'},
	qq{'{"type": "quick_create", "workspace_id": {"id": "$ws"}}'},
	qq{'{"type": "quick_create", "workspace_id": ["$ws"]}'},
	qq{'{"type": ["quick_create"], "workspace_id": "$ws"}'},
	qq{'{"type": "other", "workspace_id": "$ws"}'},
	qq{'{"type": "quick_create", "workspace_id": "$ws\\n"}'},
	qq{'{"type": "quick_create", "workspace_id": " $ws"}'},
	qq{'{"type": "quick_create", "workspace_id": "{$ws}"}'},
	qq{'{"type": "quick_create", "workspace_id": "${ws}0"}'},
	qq{'{"type": "quick_create"}'},
	qq{'{"type": "quick_create", "workspace_id": "$WS"}'});
my %ctx_task;
for my $i (0 .. $#contexts)
{
	my $task = sql(qq{SELECT fx_task('$ag', '$rt', NULL, 'queued', make_interval(hours => 3, secs => $i))});
	sql(qq{UPDATE agent_task_queue SET context = $contexts[$i]::jsonb WHERE id = '$task'});
	$ctx_task{$task} = $contexts[$i];
}
new_events();
tick($node);
is(sql(q{SELECT count(*) FILTER (WHERE status = 'failed' AND failure_reason = 'queued_expired')
		 || '/' || count(*) FROM agent_task_queue WHERE context IS NOT NULL OR issue_id IS NULL}),
	scalar(@contexts) . '/' . scalar(@contexts), 'every task with a malformed context was expired');
my ($last) = grep { $ctx_task{$_} =~ /\Q$WS\E/ } keys %ctx_task;
is(new_events(), "task:failed $last $ws\nagent:status - $ws",
	'only the well-formed quick_create context (upper-case UUID) resolved, sent in lower case');
no_errors('malformed contexts');

# ---------------------------------------------------------------------------
# Rule: an application trigger that sets a 1 MB failure_reason (multibyte
# text) and a 1 MB error when a task fails: the task is failed, the
# task:failed event stays under the NOTIFY limit (shortened, counted in
# events_truncated, still naming the task) and nothing fails.
sql(q{
	CREATE FUNCTION public.huge_reason() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.status = 'failed' AND NEW.trigger_summary = 'huge' THEN
			NEW.failure_reason := pg_catalog.repeat('é', 524288);
			NEW.error := pg_catalog.repeat('x', 1048576);
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER huge_reason BEFORE UPDATE ON agent_task_queue
		FOR EACH ROW EXECUTE FUNCTION public.huge_reason();
});
my $huge = sql(qq{SELECT fx_task('$ag', '$rt', fx_issue('$ws'), 'dispatched', '1 hour')});
sql(qq{UPDATE agent_task_queue SET trigger_summary = 'huge' WHERE id = '$huge'});
my $truncated0 = worker_status($node, 'events_truncated');
tick($node);
is(sql(qq{SELECT status || ' ' || octet_length(failure_reason) || ' ' || octet_length(error)
		  FROM agent_task_queue WHERE id = '$huge'}), 'failed 1048576 1048576',
	'the task failed with the 1 MB texts the trigger set');
is(worker_status($node, 'events_truncated') - $truncated0, 1, 'one event was shortened (events_truncated)');
is(new_events(), "task:failed $huge $ws\nagent:status - $ws",
	'the shortened task:failed still names its task and workspace');
is(sql(q{SELECT max(octet_length(event::text)) < 8000 FROM runtime_sweeper.event_log}), 't',
	'every logged event fits a NOTIFY payload');
is(sql(q{SELECT (e.event->'payload'->>'truncated') || ' ' || (e.event->'payload'->>'status') || ' '
		        || (octet_length(e.event->'payload'->>'failure_reason') BETWEEN 1 AND 1024)
		 FROM runtime_sweeper.event_log e WHERE e.event->>'type' = 'task:failed' ORDER BY e.id DESC LIMIT 1}),
	'true failed true', 'its payload says truncated, with a cut failure_reason');
is(sql(qq{SELECT count(*) FROM agent_task_queue WHERE parent_task_id = '$huge'}), '0',
	'no retry: the stored reason (the trigger\'s) is not a retryable one');
no_errors('1 MB failure_reason');
sql('DROP TRIGGER huge_reason ON agent_task_queue');

# Rule: a trigger that raises a 1 MB (multibyte) error fails its stage,
# counted; stage_status.last_error is cut on a character boundary (valid
# text for any client encoding) and the log line stays short.
sql(q{
	CREATE FUNCTION public.huge_error() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION '%', pg_catalog.repeat('é', 524288);
	END $$;
	CREATE TRIGGER huge_error BEFORE UPDATE ON agent_task_queue
		FOR EACH ROW WHEN (OLD.trigger_summary = 'raise') EXECUTE FUNCTION public.huge_error();
});
my $raising = sql(qq{SELECT fx_task('$ag', '$rt', fx_issue('$ws'), 'dispatched', '1 hour')});
sql(qq{UPDATE agent_task_queue SET trigger_summary = 'raise' WHERE id = '$raising'});
tick($node);
is(sql(q{SELECT errors FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND stage = 'stale_tasks'}),
	'1', 'the 1 MB error is counted');
is(sql(q{SELECT octet_length(last_error) BETWEEN 100 AND 512
		        AND pg_catalog.convert_from(pg_catalog.convert_to(last_error, 'UTF8'), 'UTF8') = last_error
		        AND last_error ~ '^é+$'
		 FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND stage = 'stale_tasks'}), 't',
	'last_error is cut, on a character boundary');
is(sql(q{SET client_encoding = 'LATIN1'; SELECT count(*) FROM runtime_sweeper.stage_status WHERE last_error IS NOT NULL}),
	'1', 'a LATIN1 client reads it');
my ($longest) = sort { $b <=> $a } map { length } split /\n/, slurp_file($node->logfile);
cmp_ok($longest, '<', 4096, "no log line is long ($longest bytes at most)");
is(worker_status($node, 'pid'), $pid, 'the worker kept its process');
sql('DROP TRIGGER huge_error ON agent_task_queue');
tick($node);
is(sql(qq{SELECT status FROM agent_task_queue WHERE id = '$raising'}), 'failed', 'the next tick succeeds');
new_events();

# ---------------------------------------------------------------------------
# Rule: 10 000 tasks failing in one tick (100 agents, 10 000 issues) are all
# handled in that tick: each failed once with one task:failed, one retry
# with one task:queued, one agent:status per agent.
my $errors0 = worker_status($node, 'errors');
sql(qq{
	INSERT INTO agent (workspace_id, runtime_id, name, status)
	SELECT '$ws', '$rt', 'bulk-' || g, 'working' FROM generate_series(1, 100) g;
	INSERT INTO issue (workspace_id, number, title, status)
	SELECT '$ws', 1000 + g, 'bulk ' || g, 'in_progress' FROM generate_series(1, 10000) g;
	INSERT INTO agent_task_queue (agent_id, runtime_id, issue_id, status, created_at, dispatched_at, trigger_summary)
	SELECT a.id, '$rt', i.id, 'dispatched', now() - make_interval(hours => 1, secs => i.number),
	       now() - '1 hour'::interval, 'bulk'
	FROM issue i JOIN agent a ON a.name = 'bulk-' || (1 + i.number % 100)
	WHERE i.number > 1000;
});
my $ticks0 = worker_status($node, 'ticks');
tick($node);
is(worker_status($node, 'ticks') - $ticks0, 1, 'one tick');
is(sql(q{SELECT count(*) FILTER (WHERE status = 'failed' AND failure_reason = 'timeout' AND completed_at IS NOT NULL)
		 FROM agent_task_queue WHERE trigger_summary = 'bulk' AND parent_task_id IS NULL}), '10000',
	'10 000 tasks failed in one tick');
is(sql(q{SELECT count(*) || ' ' || count(DISTINCT parent_task_id) FROM agent_task_queue
		 WHERE trigger_summary = 'bulk' AND parent_task_id IS NOT NULL AND status = 'queued'}),
	'10000 10000', 'one retry each');
is(sql(q{SELECT string_agg(t || '=' || n, ' ' ORDER BY t) FROM (
		   SELECT e.event->>'type' AS t, count(DISTINCT coalesce(e.event->'payload'->>'task_id', e.event->'payload'->>'agent_id')) AS n
		   FROM runtime_sweeper.event_log e WHERE e.id > } . $seen . q{ GROUP BY 1) s}),
	'agent:status=100 task:failed=10000 task:queued=10000', 'one event per task, retry and agent');
is(sql(qq{SELECT count(*) FROM runtime_sweeper.event_log WHERE id > $seen}), '20100', '... and no more');
is(worker_status($node, 'errors'), $errors0, '10 000 tasks: no stage error');
new_events();

# ---------------------------------------------------------------------------
# Rule: a runtime with 10 000 agents, each running a task, goes offline:
# every task fails once (retry on the shared issue for each agent), every
# agent is reconciled with one agent:status, and the agents whose row would
# not fit a NOTIFY (a 20 kB runtime_config) get a shortened agent:status
# without the agent map, counted in events_truncated.
my $big_rt = sql(qq{SELECT fx_runtime('$ws', 'online', '1 hour')});
my $shared_issue = sql(qq{SELECT fx_issue('$ws')});
sql(qq{
	INSERT INTO agent (workspace_id, runtime_id, name, status, description, runtime_config)
	SELECT '$ws', '$big_rt', 'many-' || g, 'working',
	       CASE WHEN g % 1000 = 0 THEN pg_catalog.repeat('ü', 3000) ELSE '' END,
	       CASE WHEN g % 1000 = 0 THEN jsonb_build_object('blob', pg_catalog.repeat('z', 20000)) ELSE '{}' END
	FROM generate_series(1, 10000) g;
	INSERT INTO agent_task_queue (agent_id, runtime_id, issue_id, status, created_at, dispatched_at, started_at,
	                              trigger_summary)
	SELECT a.id, '$big_rt', '$shared_issue', 'running', now() - '1 min'::interval, now() - '1 min'::interval,
	       now() - '1 min'::interval, 'many'
	FROM agent a WHERE a.runtime_id = '$big_rt';
});
$truncated0 = worker_status($node, 'events_truncated');
$errors0 = worker_status($node, 'errors');
tick($node);
is(sql(qq{SELECT status FROM agent_runtime WHERE id = '$big_rt'}), 'offline', 'the runtime went offline');
is(sql(q{SELECT count(*) FILTER (WHERE status = 'failed' AND failure_reason = 'runtime_offline')
		 FROM agent_task_queue WHERE trigger_summary = 'many' AND parent_task_id IS NULL}), '10000',
	'its 10 000 tasks failed');
is(sql(q{SELECT count(*) || ' ' || count(DISTINCT agent_id) FROM agent_task_queue
		 WHERE trigger_summary = 'many' AND parent_task_id IS NOT NULL}), '10000 10000',
	'one retry per agent on the shared issue');
is(sql(qq{SELECT count(*) FILTER (WHERE status = 'idle') FROM agent WHERE runtime_id = '$big_rt'}), '10000',
	'all 10 000 agents reconciled to idle');
is(sql(qq{SELECT string_agg(t || '=' || n, ' ' ORDER BY t) FROM (
		   SELECT e.event->>'type' AS t, count(*) AS n FROM runtime_sweeper.event_log e WHERE e.id > $seen GROUP BY 1) s}),
	'agent:status=10000 daemon:register=1 task:failed=10000 task:queued=10000',
	'one event per task, retry and agent, one daemon:register');
is(sql(qq{SELECT count(*) FROM runtime_sweeper.event_log e WHERE e.id > $seen
		  AND e.event->>'type' = 'agent:status' AND (e.event->'payload'->>'truncated')::bool
		  AND e.event->'payload'->'agent' IS NULL AND e.event->'payload'->>'agent_id' IS NOT NULL}), '10',
	'the 10 agents with a 20 kB config got a shortened agent:status that still names the agent');
is(worker_status($node, 'events_truncated') - $truncated0, 10, 'events_truncated counts them');
is(sql(q{SELECT max(octet_length(event::text)) < 8000 FROM runtime_sweeper.event_log}), 't',
	'every logged event fits a NOTIFY payload');
is(worker_status($node, 'errors'), $errors0, '10 000 agents: no stage error');
new_events();

# ---------------------------------------------------------------------------
# Rule: on a schema without the foreign keys, tasks whose issue, chat
# session, autopilot run, autopilot, agent or runtime was deleted are
# failed like any other; a missing row counts as no row (no workspace: no
# task:failed; no agent: no agent:status; no issue: no rollback).
sql('CREATE SCHEMA nofk');
{
	my ($out, $err);
	$node->psql('postgres', undef, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'ON_ERROR_STOP=1', '-1', '-c', 'SET search_path = nofk',
			'-f', fixture_path('app_schema.sql'), '-f', fixture_path('sample_data.sql') ]) == 0
	  or BAIL_OUT("fixture: $err");
}
sql(q{
	ALTER TABLE nofk.agent_task_queue
		DROP CONSTRAINT agent_task_queue_issue_id_fkey,
		DROP CONSTRAINT agent_task_queue_chat_session_id_fkey,
		DROP CONSTRAINT agent_task_queue_autopilot_run_id_fkey,
		DROP CONSTRAINT agent_task_queue_agent_id_fkey,
		DROP CONSTRAINT agent_task_queue_runtime_id_fkey;
	ALTER TABLE nofk.autopilot_run DROP CONSTRAINT autopilot_run_autopilot_id_fkey;
	ALTER TABLE nofk.chat_session DROP CONSTRAINT chat_session_agent_id_fkey;
	ALTER TABLE nofk.autopilot DROP CONSTRAINT autopilot_assignee_id_fkey;
});
my $dangling = sql(q{
	SET search_path = nofk;
	CREATE TEMP TABLE d (label text, task uuid);
	DO $$
	DECLARE
		ws uuid := fx_workspace();
		rt uuid := fx_runtime(ws, 'online', NULL);
		ag uuid := fx_agent(ws, rt);
		gone_ag uuid := fx_agent(ws, rt, 'gone');
		gone_rt uuid := fx_runtime(ws, 'online', NULL);
		t uuid;
		x uuid;
	BEGIN
		-- issue deleted
		x := fx_issue(ws);
		t := fx_task(ag, rt, x, 'dispatched', '1 hour');
		DELETE FROM issue WHERE id = x;
		INSERT INTO d VALUES ('issue', t);
		-- chat session deleted
		t := fx_task(ag, rt, NULL, 'dispatched', '1 hour');
		x := fx_chat_session(ws, ag);
		UPDATE agent_task_queue SET chat_session_id = x WHERE id = t;
		DELETE FROM chat_session WHERE id = x;
		INSERT INTO d VALUES ('chat_session', t);
		-- autopilot run deleted
		t := fx_task(ag, rt, NULL, 'dispatched', '1 hour');
		x := fx_autopilot_run(ws);
		UPDATE agent_task_queue SET autopilot_run_id = x WHERE id = t;
		DELETE FROM autopilot_run WHERE id = x;
		INSERT INTO d VALUES ('autopilot_run', t);
		-- the run's autopilot deleted
		t := fx_task(ag, rt, NULL, 'dispatched', '1 hour');
		x := fx_autopilot_run(ws);
		UPDATE agent_task_queue SET autopilot_run_id = x WHERE id = t;
		DELETE FROM autopilot WHERE id = (SELECT autopilot_id FROM autopilot_run WHERE id = x);
		INSERT INTO d VALUES ('autopilot', t);
		-- agent deleted (task on a live issue)
		t := fx_task(gone_ag, rt, fx_issue(ws), 'dispatched', '1 hour');
		DELETE FROM agent WHERE id = gone_ag;
		INSERT INTO d VALUES ('agent', t);
		-- runtime deleted (task on a live issue)
		t := fx_task(ag, gone_rt, fx_issue(ws), 'running', '3 hours');
		DELETE FROM agent_runtime WHERE id = gone_rt;
		INSERT INTO d VALUES ('runtime', t);
	END $$;
	SELECT string_agg(label || '=' || task, ' ' ORDER BY label) FROM d;
});
my %dt = map { split /=/ } split / /, $dangling;
$errors0 = worker_status($node, 'errors');
sql(q{ALTER SYSTEM SET runtime_sweeper.app_schema = 'nofk';
	  ALTER SYSTEM SET runtime_sweeper.running_timeout = '2h'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', qq{
	SELECT runtime_sweeper.wake() AND count(*) = 6 FROM nofk.agent_task_queue
	WHERE id IN ('@{[ join("', '", values %dt) ]}') AND status = 'failed'})
  or die 'the tasks with dangling references were never failed';
pass('every task with a dangling reference was failed');
is(sql(qq{SELECT string_agg(d.label || ':' || (SELECT count(*) FROM nofk.agent_task_queue k WHERE k.parent_task_id = d.task),
		                    ' ' ORDER BY d.label)
		  FROM (VALUES @{[ join(', ', map { "('$_', '$dt{$_}'::uuid)" } sort keys %dt) ]}) d(label, task)}),
	'agent:1 autopilot:0 autopilot_run:0 chat_session:1 issue:1 runtime:1',
	'retries as the rules say (not for autopilot runs; the dangling ids are copied)');
my $ev = new_events();
my @failed_events = ($ev =~ /^task:failed (\S+)/mg);
is(join(' ', sort map { my $t = $_; (grep { $dt{$_} eq $t } keys %dt)[0] } @failed_events), 'agent runtime',
	'task:failed only where the workspace still resolves (live issue)');
is(worker_status($node, 'errors'), $errors0, 'dangling references: no stage error');
is(worker_status($node, 'pid'), $pid, 'the worker kept its process through everything');

$node->stop;
done_testing();
