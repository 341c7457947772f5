# Several databases: one worker per listed database, per-database settings, list changes on reload, restarts with back-off.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;
use Time::HiRes qw(time);

# A long interval: every tick below comes from wake(), a reload or a worker
# start, never from the clock.  The outage guard is off so that a woken tick
# may flip runtimes at once.
my $node = sweeper_node('several_dbs', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
});
expect_worker_pid($node);

# The bound for "the launcher brings a worker back": its back-off starts at 5 s.
my $restart_bound = 15;

# A column of the status row of a database (queried in database postgres).
sub status
{
	my ($db, $col) = @_;
	return $node->safe_psql('postgres',
		"SELECT $col FROM runtime_sweeper.status WHERE database = '$db'");
}

# poll_query_until in database postgres, bounded to about $secs seconds.
sub poll_within
{
	my ($secs, $query) = @_;
	local $PostgreSQL::Test::Utils::timeout_default = $secs;
	return $node->poll_query_until('postgres', $query);
}

# wake() in $db itself, then wait until a whole tick of $db's worker that
# started after the call has finished (the rule of SweeperTest::tick, whose
# wake() runs in database postgres).
sub tick_in
{
	my ($db) = @_;
	my ($n, $t) = split /\|/,
	  $node->safe_psql('postgres',
		"SELECT ticks, clock_timestamp() FROM runtime_sweeper.status WHERE database = '$db'");
	die "no status row for database $db" unless defined $t;
	is($node->safe_psql($db, 'SELECT runtime_sweeper.wake()'), 't', "wake() in $db finds its worker");
	$node->poll_query_until(
		'postgres', qq{
		SELECT ticks >= $n + 2
		       OR (last_tick_start > '$t' AND state <> 'sweeping')
		FROM runtime_sweeper.status WHERE database = '$db'})
	  or die "no tick in $db after wake()";
	return status($db, 'ticks');
}

# Waits (bounded) for a worker of $db whose pid differs from $old (if given).
sub wait_worker
{
	my ($db, $old) = @_;
	my $cond = defined $old ? "pid IS NOT NULL AND pid <> $old" : 'pid IS NOT NULL';
	poll_within($restart_bound,
		"SELECT $cond FROM runtime_sweeper.status WHERE database = '$db'")
	  or die "no worker for $db within ${restart_bound}s";
	return status($db, 'pid');
}

# A runtime last seen $ago ago, in database $db.
sub runtime
{
	my ($db, $ago) = @_;
	return $node->safe_psql($db, "SELECT fx_runtime(fx_workspace(), 'online', '$ago')");
}

sub runtime_status
{
	my ($db, $id) = @_;
	return $node->safe_psql($db, "SELECT status FROM agent_runtime WHERE id = '$id'");
}

# Pid of the launcher (a child of the postmaster by its process title: it has
# no database connection, so pg_stat_activity does not show it), or undef.
sub launcher_pid
{
	my $postmaster = $node->{_pid};
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		my ($pid) = $stat =~ m{/proc/(\d+)/stat};
		my $line = eval { slurp_file($stat) } // next;
		my ($ppid) = $line =~ /^\d+ \(.*\) \S+ (\d+)/s or next;
		next unless $ppid == $postmaster;
		my $cmd = eval { slurp_file("/proc/$pid/cmdline") } // next;
		return $pid if $cmd =~ /runtime_sweeper launcher/;
	}
	return undef;
}

# Sets runtime_sweeper.database and reloads.
sub set_databases
{
	my ($list) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET runtime_sweeper.database = '$list'; SELECT pg_reload_conf()");
}

sub create_db
{
	my ($db) = @_;
	$node->safe_psql('postgres', qq{CREATE DATABASE "$db"});
	$node->safe_psql($db, 'CREATE EXTENSION runtime_sweeper');
	load_fixture($node, $db);
}

create_db($_) for qw(db_a db_b);
my $pg_pid = status('postgres', 'pid');
set_databases('db_a, db_b');

# Rule: one worker per listed database (distinct processes, each connected to
# its database); the worker of a database that left the list stops by itself.
my $pid_a = wait_worker('db_a');
my $pid_b = wait_worker('db_b');
$node->poll_query_until('postgres',
	"SELECT pid IS NULL FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker of postgres did not stop';
isnt($pid_a, $pid_b, "db_a and db_b have workers of their own ($pid_a, $pid_b)");
is($node->safe_psql('postgres', q{
	SELECT string_agg(datname || ':' || pid, ',' ORDER BY datname)
	FROM pg_stat_activity WHERE backend_type = 'runtime_sweeper'}),
	"db_a:$pid_a,db_b:$pid_b",
	'pg_stat_activity: exactly one runtime_sweeper backend in each listed database');
ok(defined launcher_pid(), 'the launcher runs (it has no database connection)');
ok(!kill(0, $pg_pid), 'the worker of postgres (no longer listed) has exited');
is(log_count($node, qr/database "postgres" is no longer in runtime_sweeper\.database; worker stops/), 1,
	'it said why it stopped');
$node->poll_query_until('postgres', q{
	SELECT bool_and(ticks >= 1 AND state = 'idle') FROM runtime_sweeper.status
	WHERE database IN ('db_a', 'db_b')})
  or die 'the first ticks never finished';

# Rule: each worker sweeps its own database, and wake() in a database wakes
# only that database's worker.
my $rt_a = runtime('db_a', '1 hour');
my $rt_b = runtime('db_b', '1 hour');
my $ticks_b = status('db_b', 'ticks');
tick_in('db_a');
is(runtime_status('db_a', $rt_a), 'offline', "db_a's worker flipped db_a's stale runtime");
is(runtime_status('db_b', $rt_b), 'online', "db_b's stale runtime is untouched by db_a's tick");
is(status('db_b', 'ticks'), $ticks_b, "wake() in db_a did not make db_b's worker tick");
my $ticks_a = status('db_a', 'ticks');
tick_in('db_b');
is(runtime_status('db_b', $rt_b), 'offline', "db_b's worker flipped db_b's stale runtime");
is(status('db_a', 'ticks'), $ticks_a, "wake() in db_b did not make db_a's worker tick");
is($node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()'), 'f',
	'wake() in postgres (no longer listed) finds no worker');

# Rule: only wake(), a reload or the schedule start a tick.  The process latch
# is also set by signals of no concern to the sweep (SIGUSR1 for cache
# catch-up, the SIGALRM that PostgreSQL leaves armed after a statement
# timeout): those must not make it tick.  The window (a second after the
# signals) is what is under test here, not a synchronisation.
$ticks_b = status('db_b', 'ticks');
kill 'USR1', $pid_b for 1 .. 3;
my $t_sig = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->poll_query_until('postgres', "SELECT clock_timestamp() > '$t_sig'::timestamptz + '1 s'")
  or die 'the clock stopped';
is(status('db_b', 'ticks') . '|' . status('db_b', 'pid'), "$ticks_b|$pid_b",
	"SIGUSR1 (a latch set that is not wake()) did not make db_b's worker tick");

# Rule: ALTER DATABASE ... SET applies to that database's worker only.  A
# worker reads database-level settings when it connects (as every backend
# does): a reload is not enough, a restart of the worker is.
$node->safe_psql('postgres',
	q{ALTER DATABASE db_b SET runtime_sweeper.stale_threshold = '1h'; SELECT pg_reload_conf()});
my $rt_b_reload = runtime('db_b', '10 min');
tick_in('db_b');
note('after ALTER DATABASE and a reload only, the 10 min old runtime of db_b is '
	  . runtime_status('db_b', $rt_b_reload)
	  . ' (database settings are read when the worker connects)');

# Rule: a worker killed with SIGTERM is started again by the launcher within
# its back-off, and the new worker reads the database's settings.
my $t0 = time;
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid_b)"), 't',
	"SIGTERM to db_b's worker");
my $pid_b2 = wait_worker('db_b', $pid_b);
my $took = time - $t0;
cmp_ok($took, '<', $restart_bound,
	sprintf("the launcher restarted db_b's worker in %.1f s (pid %d -> %d)", $took, $pid_b, $pid_b2));
ok(!kill(0, $pid_b), 'the old worker has exited');
is(status('db_a', 'pid'), $pid_a, "db_a's worker was not disturbed");
my $rt_a2 = runtime('db_a', '10 min');
my $rt_b2 = runtime('db_b', '10 min');
tick_in('db_a');
tick_in('db_b');
is(runtime_status('db_a', $rt_a2), 'offline',
	"db_a (default stale_threshold 150s): a runtime silent for 10 min goes offline");
is(runtime_status('db_b', $rt_b2), 'online',
	"db_b (ALTER DATABASE stale_threshold 1h): a runtime silent for 10 min stays online");
my $rt_b_old = runtime('db_b', '2 hours');
tick_in('db_b');
is(runtime_status('db_b', $rt_b_old), 'offline',
	"db_b's worker still sweeps: a runtime silent for 2 h goes offline");

# Rule: a database added to the list (a quoted, case-sensitive name here)
# gets a worker on reload; the running workers stay as they are.
create_db('Db_C');
set_databases('db_a, db_b, "Db_C"');
my $pid_c = wait_worker('Db_C');
ok($pid_c != $pid_a && $pid_c != $pid_b, "a third worker runs for Db_C (pid $pid_c)");
is(status('db_a', 'pid') . '|' . status('db_b', 'pid'), "$pid_a|$pid_b2",
	'the reload left the other workers running');
my $rt_c = runtime('Db_C', '1 hour');
tick_in('Db_C');
is(runtime_status('Db_C', $rt_c), 'offline', "Db_C's worker sweeps Db_C");

# Rule: a database removed from the list loses its worker on reload; the
# others keep theirs.
set_databases('db_b, "Db_C"');
$node->poll_query_until('postgres',
	"SELECT pid IS NULL AND state = 'stopped' FROM runtime_sweeper.status WHERE database = 'db_a'")
  or die "db_a's worker did not stop";
pass('db_a left the list: its status row shows no pid and state stopped');
ok(!kill(0, $pid_a), "db_a's worker process has exited");
is(log_count($node, qr/database "db_a" is no longer in runtime_sweeper\.database; worker stops/), 1,
	"db_a's worker said why it stopped");
is(status('db_b', 'pid') . '|' . status('Db_C', 'pid'), "$pid_b2|$pid_c",
	'db_b and Db_C keep their workers');
is($node->safe_psql('db_a', 'SELECT runtime_sweeper.wake()'), 'f', 'wake() in db_a finds no worker now');

# Rule: a restarted launcher starts no duplicate of a worker that still runs,
# and still restarts the workers it inherited.
my $launcher = launcher_pid();
kill 'TERM', $launcher;
$node->wait_for_log(qr/runtime_sweeper: launcher started(?s:.*)runtime_sweeper: launcher started/);
my $launcher2 = launcher_pid();
ok(defined $launcher2 && $launcher2 != $launcher,
	"the postmaster restarted the launcher (pid $launcher -> " . ($launcher2 // 'none') . ')');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid_c)");
my $pid_c2 = wait_worker('Db_C', $pid_c);
pass("the new launcher restarted Db_C's worker (pid $pid_c -> $pid_c2)");
is($node->safe_psql('postgres', q{
	SELECT string_agg(datname || ':' || pid, ',' ORDER BY datname COLLATE "C")
	FROM pg_stat_activity WHERE backend_type = 'runtime_sweeper'}),
	"Db_C:$pid_c2,db_b:$pid_b2",
	'still exactly one worker per listed database (db_b kept its worker)');

# Rule: a listed database that does not exist costs a dying worker and one
# back-off log line per attempt, with a doubling back-off: no crash loop,
# and the other workers are not disturbed.
my $log_from = -s $node->logfile;
set_databases('db_b, "Db_C", no_such_db');
my $off = $node->wait_for_log(
	qr/worker for database "no_such_db" stopped; restarting in 5 s/, $log_from);
$node->wait_for_log(qr/worker for database "no_such_db" stopped; restarting in 10 s/, $off);
my $log = slurp_file($node->logfile, $log_from);
my $fatals = () = $log =~ /FATAL:  database "no_such_db" does not exist/g;
my $backoffs = () = $log =~ /worker for database "no_such_db" stopped; restarting in/g;
is($fatals, 2, 'two attempts when the second back-off is announced (no crash loop)');
is($backoffs, 2, 'one back-off log line per attempt');
# The log's own timestamps: the second attempt waited the first back-off.
my @at = map { /^\S+ (\d+):(\d+):([\d.]+)/ ? $1 * 3600 + $2 * 60 + $3 : () }
  grep { /FATAL:  database "no_such_db" does not exist/ } split /\n/, $log;
my $gap = $at[1] - $at[0];
cmp_ok($gap, '>=', 4.9, sprintf('the second attempt came after the 5 s back-off (%.2f s)', $gap));
unlike($log, qr/terminating any other active server processes|all server processes terminated/,
	'the postmaster did not restart the cluster');
is(status('db_b', 'pid') . '|' . status('Db_C', 'pid'), "$pid_b2|$pid_c2",
	'the workers of the existing databases kept running');
is(status('db_a', 'pid'), '', 'db_a (unlisted) never got a worker again');

$node->stop;
done_testing();
