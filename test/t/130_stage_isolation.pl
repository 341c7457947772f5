# Bounded, isolated stages: per-stage lock and statement timeouts, rows a client holds are skipped (and counted), a failing stage rolls back alone.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# Every tick below is caused by wake() (interval one hour); the outage guard
# is off so that a woken tick may flip runtimes.
my $node = sweeper_node('isolation', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
});
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the first tick never finished';
my $pid = worker_status($node, 'pid');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# A column list of one stage's row of stage_status.
sub stage
{
	my ($name, $cols) = @_;
	return sql("SELECT $cols FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND stage = '$name'");
}

# Changes worker settings with ALTER SYSTEM and waits until the worker's
# ticks see them: $seen is a query that is true once a tick used them.
sub reconfigure
{
	my ($settings, $seen) = @_;
	for my $k (sort keys %$settings)
	{
		my $v = $settings->{$k};
		sql(defined $v
			? "ALTER SYSTEM SET runtime_sweeper.$k = '$v'"
			: "ALTER SYSTEM RESET runtime_sweeper.$k");
	}
	sql('SELECT pg_reload_conf()');
	$node->poll_query_until('postgres', "SELECT runtime_sweeper.wake() AND ($seen)")
	  or die "the worker never used the new settings (@{[ %$settings ]})";
	return;
}

# One workspace with a runtime and an agent to hang tasks on.
my ($ws, $rt, $ag) = split /\|/, sql(q{
	WITH ws AS (SELECT fx_workspace() AS ws),
	     rt AS (SELECT ws, fx_runtime(ws) AS rt FROM ws)
	SELECT ws, rt, fx_agent(ws, rt) FROM rt});

# A task past the dispatch timeout (stage stale_tasks), with its own issue.
sub stale_task
{
	my ($max_attempts) = @_;
	$max_attempts //= 2;
	return sql("SELECT fx_task('$ag', '$rt', fx_issue('$ws'), 'dispatched', '1 hour', 1, $max_attempts)");
}

sub task_status { return sql("SELECT status FROM agent_task_queue WHERE id = '$_[0]'"); }
sub runtime_status { return sql("SELECT status FROM agent_runtime WHERE id = '$_[0]'"); }

# ---------------------------------------------------------------------------
# Rule: the lock and statement timeouts of sweep transactions are settings
# with the documented defaults.
is(sql('SHOW runtime_sweeper.lock_timeout'), '1s', 'runtime_sweeper.lock_timeout defaults to 1s');
is(sql('SHOW runtime_sweeper.statement_timeout'), '30s',
	'runtime_sweeper.statement_timeout defaults to 30s');

# ---------------------------------------------------------------------------
# Rule: the worker applies both to every stage transaction (an application
# trigger records what the stage's transaction sees), and a reload changes them.
sql(q{
	CREATE TABLE public.seen_settings (activity text, lock_timeout text, statement_timeout text);
	CREATE FUNCTION public.note_settings() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.seen_settings
		SELECT a.query, pg_catalog.current_setting('lock_timeout'),
		       pg_catalog.current_setting('statement_timeout')
		FROM pg_catalog.pg_stat_activity a WHERE a.pid = pg_catalog.pg_backend_pid();
		RETURN NULL;
	END $$;
	CREATE TRIGGER note_settings BEFORE UPDATE ON agent_task_queue
		FOR EACH STATEMENT EXECUTE FUNCTION public.note_settings();
});
tick($node);
is(sql(q{SELECT string_agg(DISTINCT activity || ' ' || lock_timeout || ' ' || statement_timeout, ', ')
		 FROM public.seen_settings}),
	'runtime_sweeper: offline_tasks 1s 30s, runtime_sweeper: queued_expiry 1s 30s, runtime_sweeper: stale_tasks 1s 30s',
	'each task stage runs with lock_timeout 1s and statement_timeout 30s');
sql('TRUNCATE public.seen_settings');
reconfigure({ lock_timeout => '250ms', statement_timeout => '7s' },
	q{EXISTS (SELECT 1 FROM public.seen_settings WHERE lock_timeout = '250ms')});
sql('TRUNCATE public.seen_settings');
tick($node);
is(sql(q{SELECT string_agg(DISTINCT lock_timeout || ' ' || statement_timeout, ', ') FROM public.seen_settings}),
	'250ms 7s', 'after a reload every stage transaction uses the new timeouts');
is(sql('SHOW lock_timeout') . '|' . sql('SHOW statement_timeout'), '0|0',
	'the settings do not leak into client sessions');
sql('DROP TRIGGER note_settings ON agent_task_queue; DROP TABLE public.seen_settings');

# ---------------------------------------------------------------------------
# Rule: statement_timeout bounds a stage: a trigger that hangs inside the
# stage's transaction is cancelled, only that stage is rolled back, and the
# other stages of the tick still run.
sql(q{
	CREATE FUNCTION public.hang() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_catalog.pg_sleep(300);
		RETURN NEW;
	END $$;
	CREATE TRIGGER hang BEFORE UPDATE ON agent_task_queue
		FOR EACH ROW WHEN (OLD.trigger_summary = 'hang') EXECUTE FUNCTION public.hang();
});
my $hanging = stale_task();
sql("UPDATE agent_task_queue SET trigger_summary = 'hang' WHERE id = '$hanging'");
my $stale_rt = sql(q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
reconfigure({ statement_timeout => '500ms' },
	q{(SELECT errors > 0 FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND stage = 'stale_tasks')});
like(stage('stale_tasks', 'last_error'), qr/canceling statement due to statement timeout/,
	'the hanging stage was cancelled by the statement timeout');
is(task_status($hanging), 'dispatched', 'the cancelled stage changed nothing');
is(runtime_status($stale_rt), 'offline', 'stage stale_runtimes ran in the same tick');
cmp_ok(worker_status($node, q{extract(epoch FROM last_tick_duration)}), '<', 60,
	'the tick did not wait for the 300 s trigger');
is(worker_status($node, 'pid'), $pid, 'the worker kept its process');
sql('DROP TRIGGER hang ON agent_task_queue');
tick($node);
is(task_status($hanging), 'failed', 'the next tick, without the hanging trigger, failed the task');
reconfigure({ lock_timeout => undef, statement_timeout => undef },
	q{(SELECT last_error IS NOT NULL FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND stage = 'stale_tasks')});

# ---------------------------------------------------------------------------
# Rule: a stage never waits on a row a client holds.  With lock_timeout one
# hour, a tick still finishes at once: the held runtime, tasks and GC
# candidate are skipped (SKIP LOCKED) and counted in rows_skipped; the free
# rows are swept.  Once the client lets go, the next tick sweeps them.
reconfigure({ lock_timeout => '1h' }, 'true');
# (the wake() calls of reconfigure may have left one more tick queued: let
# it pass before the rows exist, so each tick below sees them held)
tick($node) for 1 .. 2;
my $held_rt = sql(q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
my $free_rt = sql(q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
my $held_gc = sql(q{SELECT fx_runtime(fx_workspace(), 'offline', '30 days')});
my $free_gc = sql(q{SELECT fx_runtime(fx_workspace(), 'offline', '30 days')});
my $held_task = stale_task();
my $free_task = stale_task();
my ($held_queued, $free_queued) = split /\n/, sql(qq{
	SELECT fx_task('$ag', '$rt', fx_issue('$ws'), 'queued', '3 hours')
	FROM generate_series(1, 2)});
my $all_errors0 = worker_status($node, 'errors');

my $client = $node->background_psql('postgres');
$client->query_safe('BEGIN');
# a heartbeat in flight (row lock on the runtime), a claimer holding tasks,
# a daemon re-registering an old runtime
$client->query_safe("UPDATE agent_runtime SET updated_at = updated_at WHERE id IN ('$held_rt', '$held_gc')");
$client->query_safe(
	"SELECT id FROM agent_task_queue WHERE id IN ('$held_task', '$held_queued') FOR UPDATE");
tick($node);
is(runtime_status($held_rt) . '|' . runtime_status($free_rt), 'online|offline',
	'stale_runtimes skipped the runtime a client holds and flipped the other');
is(task_status($held_task) . '|' . task_status($free_task), 'dispatched|failed',
	'stale_tasks skipped the task a client holds and failed the other');
is(task_status($held_queued) . '|' . task_status($free_queued), 'queued|failed',
	'queued_expiry skipped the task a claimer holds and expired the other');
is(sql("SELECT count(*) FROM agent_runtime WHERE id IN ('$held_gc', '$free_gc')"), '1',
	'runtime_gc skipped the runtime a client holds and deleted the other');
is(worker_status($node, 'errors'), $all_errors0, 'no stage waited into an error');
my ($ticks_a, $skipped_a) = split /\|/, worker_status($node, 'ticks, rows_skipped');
tick($node);
my ($ticks_b, $skipped_b) = split /\|/, worker_status($node, 'ticks, rows_skipped');
is($skipped_b - $skipped_a, 4 * ($ticks_b - $ticks_a),
	"status.rows_skipped counts the four held rows in each tick ($skipped_a -> $skipped_b)");
is(worker_status($node, 'errors'), $all_errors0, 'still no error');
$client->query_safe('COMMIT');
tick($node);
is(runtime_status($held_rt) . '|' . task_status($held_task) . '|' . task_status($held_queued),
	'offline|failed|failed', 'after the client let go, the next tick swept the held rows');
is(sql("SELECT count(*) FROM agent_runtime WHERE id = '$held_gc'"), '0',
	'... and collected the held runtime');
reconfigure({ lock_timeout => undef }, 'true');

# ---------------------------------------------------------------------------
# Rule: a lock the stage cannot skip (a client holding ACCESS EXCLUSIVE on
# issue, which failed-task handling must read and update) costs that stage
# one lock_timeout and an error; the other stages run; the next tick after
# the client lets go succeeds.
my $blocked_task = stale_task();
my $rt2 = sql(q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
my $gc2 = sql(q{SELECT fx_runtime(fx_workspace(), 'offline', '30 days')});
my $errors0 = stage('stale_tasks', 'errors');
my $lock_re = qr/runtime_sweeper: stage stale_tasks failed: canceling statement due to lock timeout/;
my $logged0 = log_count($node, $lock_re);
$client = $node->background_psql('postgres');
$client->query_safe('BEGIN');
$client->query_safe('LOCK TABLE issue IN ACCESS EXCLUSIVE MODE');
tick($node);
is(stage('stale_tasks', 'errors'), $errors0 + 1, 'the lock timeout is counted in stage_status.errors');
like(stage('stale_tasks', 'last_error'), qr/canceling statement due to lock timeout/,
	'stage_status.last_error says lock timeout');
is(task_status($blocked_task), 'dispatched', 'the timed-out stage was rolled back');
is(runtime_status($rt2), 'offline', 'stale_runtimes ran in the same tick');
is(sql("SELECT count(*) FROM agent_runtime WHERE id = '$gc2'"), '0', 'runtime_gc ran in the same tick');
cmp_ok(worker_status($node, q{extract(epoch FROM last_tick_duration)}), '<', 30,
	'the tick waited about one lock_timeout, not for the client');
tick($node) for 1 .. 2;
is(stage('stale_tasks', 'errors'), $errors0 + 3, 'the error is counted in each of three ticks');
is(log_count($node, $lock_re) - $logged0, 1, 'the WARNING is logged once over three ticks');
is(worker_status($node, 'pid'), $pid, 'the worker kept its process');
$client->query_safe('ROLLBACK');
$client->quit;
tick($node);
is(task_status($blocked_task), 'failed', 'once the lock is gone the next tick fails the task');
is(stage('stale_tasks', 'errors'), $errors0 + 3, 'no new error');

# ---------------------------------------------------------------------------
# Rule: a table dropped under an application trigger makes the stages whose
# writes fire it fail, counted and logged once; the other stages run; the
# next tick after the table is back succeeds.
sql(q{
	CREATE TABLE public.task_audit (task_id uuid, reason text);
	CREATE FUNCTION public.audit_timeout() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.task_audit VALUES (NEW.id, NEW.failure_reason);
		RETURN NEW;
	END $$;
	CREATE TRIGGER audit_timeout AFTER UPDATE ON agent_task_queue
		FOR EACH ROW WHEN (NEW.failure_reason = 'timeout') EXECUTE FUNCTION public.audit_timeout();
	DROP TABLE public.task_audit;
});
my $audited = stale_task();
my $expiring = sql(qq{SELECT fx_task('$ag', '$rt', fx_issue('$ws'), 'queued', '3 hours')});
my $drop_re = qr/runtime_sweeper: stage stale_tasks failed: relation "public.task_audit" does not exist/;
$errors0 = stage('stale_tasks', 'errors');
my $expiry_errors0 = stage('queued_expiry', 'errors');
tick($node) for 1 .. 3;
is(stage('stale_tasks', 'errors'), $errors0 + 3, 'the missing table fails stale_tasks in each tick');
like(stage('stale_tasks', 'last_error'), qr/relation "public.task_audit" does not exist/,
	'stage_status.last_error names the missing relation');
is(log_count($node, $drop_re), 1, 'the WARNING is logged once over three ticks');
is(task_status($audited), 'dispatched', 'the failing stage was rolled back');
is(task_status($expiring) . '|' . stage('queued_expiry', 'errors'), "failed|$expiry_errors0",
	'queued_expiry ran in the same ticks without error');
sql('CREATE TABLE public.task_audit (task_id uuid, reason text)');
tick($node);
is(task_status($audited), 'failed', 'with the table back the next tick fails the task');
is(sql("SELECT reason FROM public.task_audit WHERE task_id = '$audited'"), 'timeout',
	'... and the application trigger ran in the sweep transaction');
is(log_count($node, qr/runtime_sweeper: stage stale_tasks succeeds again/) >= 1, 1,
	'recovery is logged');
sql('DROP TRIGGER audit_timeout ON agent_task_queue');

# ---------------------------------------------------------------------------
# Rule: an application table the sweep needs disappearing (renamed away)
# stops sweeping quietly: the worker waits, says why once, keeps its
# process, and sweeps again as soon as the table is back.
my $missing_re = qr/runtime_sweeper: not sweeping database "postgres": table public\.chat_session does not exist/;
sql('ALTER TABLE chat_session RENAME TO chat_session_away');
$node->poll_query_until('postgres', q{
	SELECT runtime_sweeper.wake() AND state = 'waiting for schema'
	FROM runtime_sweeper.status WHERE database = 'postgres'})
  or die 'the worker did not notice the missing table';
idle_loop($node);
is(log_count($node, $missing_re), 1, 'the missing table is logged once');
is(worker_status($node, 'pid'), $pid, 'the waiting worker kept its process');
my $waiting_rt = sql(q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
idle_loop($node);
is(runtime_status($waiting_rt), 'online', 'nothing is swept while the table is missing');
sql('ALTER TABLE chat_session_away RENAME TO chat_session');
tick($node);
is(runtime_status($waiting_rt), 'offline', 'with the table back the worker sweeps again');
is(worker_status($node, 'pid'), $pid, 'still the same worker process');

$node->stop;
done_testing();
