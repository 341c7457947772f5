# Crash safety: SIGKILL of the worker in the middle of a stage's transaction loses nothing and doubles nothing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# Batches of 10 tasks, so that a drain commits batch after batch; timeouts
# long enough that the stage blocked on purpose below is not cancelled.
my $node = sweeper_node('crash', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
runtime_sweeper.task_batch_size = 10
runtime_sweeper.lock_timeout = '10min'
runtime_sweeper.statement_timeout = '10min'
restart_after_crash = on
});
$node->safe_psql('postgres',
	'ALTER SYSTEM SET runtime_sweeper.event_log = on; SELECT pg_reload_conf()');
tick($node);
tick($node);

sub sql { return $node->safe_psql('postgres', $_[0]); }

# The crash gate: an application trigger on agent (the agent reconcile, the
# last write of failed-task handling) counts the passes of one stage (by the
# worker's activity) in the stage's own transaction, and on pass block_at
# waits for an advisory lock the test holds: the worker is then parked
# inside the stage's transaction with all its other writes done.
sql(q{
	CREATE TABLE public.crash_gate (activity text PRIMARY KEY, passes int NOT NULL DEFAULT 0,
	                                block_at int NOT NULL);
	CREATE FUNCTION public.crash_gate() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		n int;
		b int;
	BEGIN
		UPDATE public.crash_gate g SET passes = g.passes + 1
		WHERE g.activity = (SELECT a.query FROM pg_catalog.pg_stat_activity a
		                    WHERE a.pid = pg_catalog.pg_backend_pid())
		RETURNING g.passes, g.block_at INTO n, b;
		IF n = b THEN
			PERFORM pg_catalog.pg_advisory_xact_lock(4242);
		END IF;
		RETURN NULL;
	END $$;
	CREATE TRIGGER crash_gate BEFORE UPDATE ON agent
		FOR EACH STATEMENT EXECUTE FUNCTION public.crash_gate();
});

# Parks the worker in pass $block_at of $stage, kills it with SIGKILL there
# and waits for the cluster to come back with a new, paused worker.
# Returns what the database held while the worker was parked.
sub crash_in
{
	my ($stage, $block_at, $snapshot_sql) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('SELECT pg_advisory_lock(4242)');
	sql("INSERT INTO public.crash_gate VALUES ('runtime_sweeper: $stage', 0, $block_at)");
	my $pid = worker_status($node, 'pid');
	sql('SELECT runtime_sweeper.wake()');
	# wait (no sleep) until the worker waits on the gate's lock inside the stage
	$node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.pid = $pid AND l.locktype = 'advisory' AND NOT l.granted
		  AND a.query = 'runtime_sweeper: $stage'})
	  or die "the worker never reached pass $block_at of $stage";
	my $parked = sql($snapshot_sql);
	# the stage has written: it holds row-exclusive locks on what it changed
	is(sql(qq{SELECT string_agg(l.relation::regclass::text, ',' ORDER BY l.relation::regclass::text)
			  FROM pg_locks l WHERE l.pid = $pid AND l.locktype = 'relation' AND l.mode = 'RowExclusiveLock'
			    AND l.relation IN ('agent_task_queue'::regclass, 'runtime_sweeper.event_log'::regclass)}),
		'agent_task_queue,runtime_sweeper.event_log',
		"parked in $stage after writing tasks and event log rows (uncommitted)");
	# the new worker must not sweep before we have looked
	sql('ALTER SYSTEM SET runtime_sweeper.enabled = off; SELECT pg_reload_conf()');
	kill 'KILL', $pid or die "could not kill the worker $pid";
	eval { $holder->quit; };
	$node->poll_query_until('postgres', qq{
		SELECT state = 'paused' FROM runtime_sweeper.status
		WHERE database = 'postgres' AND pid <> $pid})
	  or die 'no paused worker after the crash';
	sql('DELETE FROM public.crash_gate');
	return $parked;
}

sub resume
{
	sql('ALTER SYSTEM SET runtime_sweeper.enabled = on; SELECT pg_reload_conf()');
	$node->poll_query_until('postgres', q{
		SELECT state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'})
	  or die 'the worker did not resume';
	tick($node);
	return;
}

# Per task: "status failure_reason completed_at? retries task:failed-events
# task:queued-events issue-status", for the tasks whose trigger_summary is $label.
sub task_report
{
	my ($label) = @_;
	return sql(qq{
		SELECT t.status || ' ' || coalesce(t.failure_reason, '-') || ' '
		       || (t.completed_at IS NOT NULL) || ' '
		       || (SELECT count(*) FROM agent_task_queue k WHERE k.parent_task_id = t.id) || ' '
		       || (SELECT count(*) FROM runtime_sweeper.event_log e
		           WHERE e.event->>'type' = 'task:failed' AND e.event->'payload'->>'task_id' = t.id::text) || ' '
		       || (SELECT count(*) FROM runtime_sweeper.event_log e
		           WHERE e.event->>'type' = 'task:queued' AND e.event->'payload'->>'task_id' IN
		                 (SELECT k.id::text FROM agent_task_queue k WHERE k.parent_task_id = t.id)) || ' '
		       || i.status AS report, count(*)
		FROM agent_task_queue t JOIN issue i ON i.id = t.issue_id
		WHERE t.trigger_summary = '$label' AND t.parent_task_id IS NULL
		GROUP BY 1 ORDER BY 1});
}

# ---------------------------------------------------------------------------
# Case 1: 50 tasks past the dispatch timeout, failed by stale_tasks in
# batches of 10 (a third of them on their last attempt: no retry, issue
# rolled back).  The worker is killed inside batch 3, after its task
# updates, retries, issue rollbacks and event log rows, before its commit.
sql(q{
	WITH ws AS (SELECT fx_workspace() AS ws),
	     rt AS (SELECT ws, fx_runtime(ws) AS rt FROM ws),
	     ag AS (SELECT ws, rt, fx_agent(ws, rt, 'agent' || g) AS ag, g
	            FROM rt, generate_series(1, 5) g)
	SELECT count(*) FROM (
		SELECT fx_task(ag.ag, ag.rt, fx_issue(ag.ws), 'dispatched',
		               make_interval(hours => 1, secs => n), 1, CASE WHEN n % 3 = 0 THEN 1 ELSE 2 END)
		FROM generate_series(1, 50) n JOIN ag ON ag.g = 1 + n % 5) s;
	UPDATE agent_task_queue SET trigger_summary = 'case1';
});
my $parked = crash_in('stale_tasks', 3, q{
	SELECT count(*) FILTER (WHERE status = 'failed') || ' failed, '
	       || (SELECT count(*) FROM runtime_sweeper.event_log WHERE event->>'type' = 'task:failed')
	       || ' task:failed events'
	FROM agent_task_queue WHERE trigger_summary = 'case1' AND parent_task_id IS NULL});
is($parked, '20 failed, 20 task:failed events',
	'while parked in batch 3, batches 1 and 2 (20 tasks) were committed with their events');

# Rule: after recovery, the killed batch left no trace; the committed ones are intact.
is(task_report('case1'), join("\n",
		'dispatched - false 0 0 0 in_progress|30',
		'failed timeout true 0 1 0 todo|6',
		'failed timeout true 1 1 1 in_progress|14'),
	'after the crash: 20 tasks fully handled (event, retry or rollback), 30 untouched; nothing half-swept');
is(sql(q{SELECT count(*) FROM runtime_sweeper.event_log
		 WHERE event->>'type' NOT IN ('task:failed', 'task:queued', 'agent:status')}), '0',
	'no other event was logged');

# Rule: the restarted worker finishes the job exactly once.
resume();
is(task_report('case1'), join("\n",
		'failed timeout true 0 1 0 todo|16',
		'failed timeout true 1 1 1 in_progress|34'),
	'after resuming: all 50 failed once, one task:failed each, one retry (with one task:queued) per eligible task, issues rolled back for the rest');
is(sql(q{SELECT count(*) FROM (SELECT parent_task_id FROM agent_task_queue WHERE parent_task_id IS NOT NULL
		 GROUP BY 1 HAVING count(*) > 1) d}), '0', 'no task has two retry children');
is(sql(q{SELECT count(*) FROM (SELECT event->'payload'->>'task_id' FROM runtime_sweeper.event_log
		 WHERE event->>'type' = 'task:failed' GROUP BY 1 HAVING count(*) > 1) d}), '0',
	'no task was failed twice (one task:failed event per task)');
is(sql(q{SELECT count(*) FROM agent_task_queue WHERE parent_task_id IS NOT NULL AND status <> 'queued'}), '0',
	'every retry child is still queued');
is(sql(q{SELECT string_agg(DISTINCT a.status || '=' || (SELECT count(*) FROM agent_task_queue t
		 WHERE t.agent_id = a.id AND t.status IN ('dispatched', 'running', 'waiting_local_directory')), ',')
		 FROM agent a}), 'idle=0', 'every agent reconciled to idle (no active task left)');
is(sql(q{SELECT string_agg(DISTINCT s.status, ',') FROM (
		 SELECT DISTINCT ON (e.event->'payload'->>'agent_id') e.event->'payload'->>'status' AS status
		 FROM runtime_sweeper.event_log e WHERE e.event->>'type' = 'agent:status'
		 ORDER BY e.event->'payload'->>'agent_id', e.id DESC) s}), 'idle',
	'the last agent:status event of every agent says idle');

# ---------------------------------------------------------------------------
# Case 2: the worker is killed inside stale_runtimes, after it flipped a
# stale runtime offline and failed its three running tasks (with retries and
# events), before daemon:register and the commit.
my $rt2 = sql(q{
	WITH ws AS (SELECT fx_workspace() AS ws),
	     rt AS (SELECT ws, fx_runtime(ws, 'online', '1 hour') AS rt FROM ws),
	     ag AS (SELECT ws, rt, fx_agent(ws, rt, 'agent2', 'working') AS ag FROM rt),
	     t AS (SELECT fx_task(ag, rt, fx_issue(ws), 'running', make_interval(mins => n)) AS t
	           FROM ag, generate_series(1, 3) n)
	SELECT rt FROM ag, (SELECT count(*) FROM t) c});
sql(qq{UPDATE agent_task_queue SET trigger_summary = 'case2' WHERE runtime_id = '$rt2'});
my $events0 = sql('SELECT count(*) FROM runtime_sweeper.event_log');
$parked = crash_in('stale_runtimes', 1, qq{
	SELECT (SELECT status FROM agent_runtime WHERE id = '$rt2') || ' '
	       || (SELECT count(*) FROM runtime_sweeper.event_log) - $events0});
is($parked, 'online 0', 'while parked, nothing of the stage was visible to others');
is(sql("SELECT status FROM agent_runtime WHERE id = '$rt2'"), 'online',
	'after the crash the runtime is still online');
is(task_report('case2'), 'running - false 0 0 0 in_progress|3',
	'after the crash its tasks are untouched, without retry or event');
is(sql('SELECT count(*) FROM runtime_sweeper.event_log') - $events0, 0, 'no event of the killed stage');
resume();
is(sql("SELECT status FROM agent_runtime WHERE id = '$rt2'"), 'offline',
	'the restarted worker flipped the runtime offline');
is(task_report('case2'), 'failed runtime_offline true 1 1 1 in_progress|3',
	'... and failed its tasks once, one retry and one event each');
is(sql(qq{SELECT count(*) FROM runtime_sweeper.event_log
		  WHERE event->>'type' = 'daemon:register' AND event->>'workspace_id' =
		        (SELECT workspace_id::text FROM agent_runtime WHERE id = '$rt2')}), '1',
	'one daemon:register for the workspace');
is(sql(q{SELECT count(*) FROM (SELECT event->'payload'->>'task_id' FROM runtime_sweeper.event_log
		 WHERE event->>'type' = 'task:failed' GROUP BY 1 HAVING count(*) > 1) d}), '0',
	'still no task failed twice');
is(log_count($node, qr/all server processes terminated; reinitializing/), 2,
	'both kills went through crash recovery');

$node->stop;
done_testing();
