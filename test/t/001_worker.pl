# The background worker's life cycle: ticking, reload, wake(), pause, SIGTERM, crash restart.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;
use Time::HiRes qw(time usleep);

# A long interval and thresholds longer still: the worker sleeps at most the
# interval or until a row can become due, so every tick below is caused by
# wake() or a reload, never by the clock.  Stale runtimes are two days old.
# The outage guard is off so that a woken tick may flip runtimes.
my $node = sweeper_node('worker', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.stale_threshold = '1d'
runtime_sweeper.dispatch_timeout = '1d'
runtime_sweeper.running_timeout = '1d'
runtime_sweeper.queued_ttl = '1d'
runtime_sweeper.outage_guard = off
restart_after_crash = on
});

# Rule: the worker starts by itself, runs its first tick at once and says so.
my $pid = expect_worker_pid($node);
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'first tick never finished';
ok(kill(0, $pid), "status view shows the live worker pid $pid");
is($node->safe_psql('postgres',
		"SELECT backend_type, application_name, datname FROM pg_stat_activity WHERE pid = $pid"),
	'runtime_sweeper|runtime_sweeper|postgres',
	'pg_stat_activity shows the worker with its backend type and application name');
is(log_count($node, qr/runtime_sweeper: worker started for database "postgres"/), 1,
	'the worker logged its start once');
is(worker_status($node, q{next_tick - last_tick_start}), '01:00:00',
	'with nothing due sooner, the next tick is one interval after the last tick start');

# Rule: wake() makes the worker tick at once, although the interval is an hour.
my $ticks = worker_status($node, 'ticks');
my $after = tick($node);
cmp_ok($after, '>', $ticks, "wake() caused a tick ($ticks -> $after)");
my $rt = $node->safe_psql('postgres',
	q{SELECT fx_runtime(fx_workspace(), 'online', '2 days')});
tick($node);
is($node->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"),
	'offline', 'a woken tick sweeps: a stale runtime went offline');
is($node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()'), 't',
	'wake() is true in the worker\'s database');

# Rule: wake() is false in a database no worker watches.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION runtime_sweeper');
is($node->safe_psql('other', 'SELECT runtime_sweeper.wake()'), 'f',
	'wake() is false in a database without a worker');

# Rule: a new interval takes effect on reload, without a restart.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET runtime_sweeper.interval = '200ms'; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT next_tick - last_tick_start = '200 ms' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the new interval never showed in the schedule';
pass('after reload the schedule uses the new interval');
$ticks = worker_status($node, 'ticks');
$node->poll_query_until('postgres',
	"SELECT ticks >= $ticks + 5 FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker does not tick by itself at the new interval';
pass('the worker ticks by itself at the new interval (5 ticks without wake())');
is($pid, worker_status($node, 'pid'), 'same worker process after the reload');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET runtime_sweeper.interval = '1h'; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT next_tick - last_tick_start = '1 h' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the interval did not go back to one hour';

# Rule: enabled = off pauses the worker (nothing swept); on again resumes.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET runtime_sweeper.enabled = off; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT state = 'paused' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker never paused';
pass('enabled = off: state is paused');
$ticks = worker_status($node, 'ticks');
$rt = $node->safe_psql('postgres', q{SELECT fx_runtime(fx_workspace(), 'online', '2 days')});
is($node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()'), 't',
	'wake() is true for a paused worker');
idle_loop($node);
is($node->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"),
	'online', 'a paused worker sweeps nothing, even when woken');
is(worker_status($node, 'ticks'), $ticks, 'a paused worker does not tick');
is(worker_status($node, 'state'), 'paused', 'still paused after being woken');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET runtime_sweeper.enabled = on; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT status = 'offline' FROM agent_runtime WHERE id = '$rt'")
  or die 'the worker did not resume';
pass('enabled = on again: the worker resumes and sweeps the stale runtime');
is(worker_status($node, 'state'), 'idle', 'state is idle after the resumed tick');

# Rule: SIGTERM stops the worker within a second; the postmaster restarts it.
my $t0 = time;
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"), 't', 'SIGTERM sent');
while (kill(0, $pid) && time - $t0 < 10)
{
	usleep(10_000);
}
my $took = time - $t0;
diag(sprintf('worker exited %.3f s after SIGTERM', $took));
cmp_ok($took, '<', 2, sprintf('worker exits promptly on SIGTERM (%.3f s)', $took));
$node->poll_query_until('postgres',
	"SELECT pid IS NOT NULL AND pid <> $pid FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker was not restarted after SIGTERM';
my $pid2 = worker_status($node, 'pid');
pass("the postmaster restarted the worker (pid $pid -> $pid2)");
$ticks = worker_status($node, 'ticks');
cmp_ok(tick($node), '>', $ticks, 'the restarted worker ticks');
is(log_count($node, qr/runtime_sweeper: worker started for database "postgres"/), 2,
	'the restart logged a second start');

# Rule: after kill -9 of the worker the cluster recovers and the worker is back.
kill 'KILL', $pid2;
$node->poll_query_until('postgres',
	"SELECT pid IS NOT NULL AND pid <> $pid2 FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'no worker after the crash restart';
my $pid3 = worker_status($node, 'pid');
ok($pid3 != $pid2 && kill(0, $pid3), "a new worker runs after the crash restart (pid $pid3)");
ok(log_count($node, qr/all server processes terminated; reinitializing/) >= 1,
	'the postmaster went through crash recovery');
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the new worker never ticked';
$ticks = worker_status($node, 'ticks');
cmp_ok(tick($node), '>', $ticks, 'the new worker ticks when woken');
$rt = $node->safe_psql('postgres', q{SELECT fx_runtime(fx_workspace(), 'online', '2 days')});
tick($node);
is($node->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"),
	'offline', 'the new worker sweeps');

$node->stop;
done_testing();
