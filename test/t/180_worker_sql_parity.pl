# Parity: the worker, left running against a frozen workload, leaves the same rows, events and counters as runtime_sweeper.sweep() called by hand.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# Pairs of databases with the same workload (test/t/data/parity_workload.sql):
# the first of a pair is swept by its worker, the second is not listed and is
# swept by sweep().
# Thresholds of minutes against rows backdated by hours: nothing becomes due
# while the test runs except what the workload made due.  The interval is an
# hour while the workload is loaded (the worker sleeps for the shortest
# threshold, 10 min, so it never starts a tick half before and half after the
# load) and 200 ms afterwards (the worker is left running and must not change
# anything more).
my $workload = abs_path(dirname(__FILE__) . '/data/parity_workload.sql');
my $node = sweeper_node('parity', fixture => 0, conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.stale_threshold = '10min'
runtime_sweeper.dispatch_timeout = '10min'
runtime_sweeper.running_timeout = '1h'
runtime_sweeper.queued_ttl = '1h'
runtime_sweeper.offline_ttl = '1d'
runtime_sweeper.outage_guard = off
runtime_sweeper.issue_events = on
runtime_sweeper.analytics_channel = 'parity_analytics'
});

# The counters of the status view that count what the sweep did.
my @counters = qw(errors tasks_failed runtimes_offline tasks_failed_runtime_offline
  tasks_failed_timeout tasks_failed_queued_expired retries_created retries_skipped
  issues_rolled_back agents_reconciled runtimes_collected gc_held_back events_sent
  events_truncated analytics_records liveness_checks liveness_fallbacks
  liveness_kept_alive mass_offline_blocked outage_deferred rows_skipped);

sub sql
{
	my ($db, $query) = @_;
	return $node->safe_psql($db, $query);
}

sub status
{
	my ($db, $col) = @_;
	return sql('postgres', "SELECT $col FROM runtime_sweeper.status WHERE database = '$db'");
}

sub preview_count
{
	my ($db) = @_;
	return sql($db, 'SELECT count(*) FROM runtime_sweeper.preview()');
}

# What preview() says is due, as "stage label" lines.
sub due_rows
{
	my ($db) = @_;
	return sql($db, q{SELECT stage || ' ' || pw_label(id) FROM runtime_sweeper.preview()});
}

# wake() in $db, then wait until a whole tick of its worker that started
# after the call has finished (the rule of SweeperTest::tick).
sub tick_in
{
	my ($db) = @_;
	my ($n, $t) = split /\|/,
	  sql('postgres', "SELECT ticks, clock_timestamp() FROM runtime_sweeper.status WHERE database = '$db'");
	die "no status row for database $db" unless defined $t;
	sql($db, 'SELECT runtime_sweeper.wake()') eq 't' or die "wake() found no worker in $db";
	$node->poll_query_until(
		'postgres', qq{
		SELECT ticks >= $n + 2
		       OR (last_tick_start > '$t' AND state <> 'sweeping')
		FROM runtime_sweeper.status WHERE database = '$db'})
	  or die "no tick in $db after wake()";
	return;
}

# What one database looks like: rows, events, counters, per-stage totals.
sub state_of
{
	my ($db) = @_;
	sql($db, 'SELECT pw_name_retries()');
	my $cols = join ', ', map { "'$_=' || $_" } @counters;
	return {
		rows => sql($db, 'SELECT * FROM pw_snapshot()'),
		events => sql($db, 'SELECT * FROM pw_events()'),
		counters => join("\n",
			split /\|/,
			sql('postgres', "SELECT $cols FROM runtime_sweeper.status WHERE database = '$db'")),
		stages => sql('postgres', qq{
			SELECT stage || ': affected=' || affected || ' errors=' || errors
			FROM runtime_sweeper.stage_status WHERE database = '$db' ORDER BY stage}),
	};
}

# Passes when the two texts are equal; otherwise fails and shows a diff.
sub same_text
{
	my ($name, $w, $s) = @_;
	return pass($name) if $w eq $s;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	PostgreSQL::Test::Utils::append_to_file("$dir/worker", "$w\n");
	PostgreSQL::Test::Utils::append_to_file("$dir/sql_api", "$s\n");
	my ($out) = run_command([ 'diff', '-u', "$dir/worker", "$dir/sql_api" ]);
	fail($name);
	diag("--- worker\n+++ sweep()\n$out");
	return;
}

sub compare_states
{
	my ($when, $w, $s) = @_;
	same_text("$when: agent_runtime, agent_task_queue, agent and issue rows are the same",
		$w->{rows}, $s->{rows});
	same_text("$when: the event logs are the same, in the same order", $w->{events}, $s->{events});
	same_text("$when: the status counters are the same", $w->{counters}, $s->{counters});
	same_text("$when: per-stage affected and errors are the same", $w->{stages}, $s->{stages});
	return;
}

# Two pairs of databases: w/s with the default GC (a collected runtime's
# task history cascades away), wh/sh with gc_keep_history = on (the original
# shape cannot detach history: such runtimes are kept and counted in the
# gc_held_back gauge).  Settings per database, seen by the worker's session
# and by ours alike.
my %pairs = (
	w => { s => 's', history => 'off', collected => 3, held => 0 },
	wh => { s => 'sh', history => 'on', collected => 1, held => 2 });
my @workers = sort keys %pairs;
for my $wdb (@workers)
{
	for my $db ($wdb, $pairs{$wdb}{s})
	{
		sql('postgres', "CREATE DATABASE $db");
		sql('postgres', "ALTER DATABASE $db SET runtime_sweeper.event_log = on");
		sql('postgres', "ALTER DATABASE $db SET runtime_sweeper.gc_keep_history = $pairs{$wdb}{history}");
		sql($db, 'CREATE EXTENSION runtime_sweeper');
		load_fixture($node, $db, 'app_schema.sql', 'sample_data.sql', 'event_names.sql');
	}
}
sql('postgres', "ALTER SYSTEM SET runtime_sweeper.database = '" . join(', ', @workers)
	  . "'; SELECT pg_reload_conf()");
for my $wdb (@workers)
{
	$node->poll_query_until('postgres',
		"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = '$wdb'")
	  or die "the worker of $wdb never finished its first tick";
}

my %after;
for my $wdb (@workers)
{
	my $sdb = $pairs{$wdb}{s};
	my $ticks_before = status($wdb, 'ticks');

	# Both copies of the workload, each in one transaction.
	for my $db ($wdb, $sdb)
	{
		$node->psql($db, undef, on_error_die => 1,
			extra_params => [ '-v', 'ON_ERROR_STOP=1', '-1', '-f', $workload ]);
	}
	same_text("$wdb/$sdb: both databases have the same rows due (preview(): stage and label)",
		due_rows($wdb), due_rows($sdb));
	cmp_ok(preview_count($sdb), '>=', 20,
		"$wdb/$sdb: the workload makes many rows due (" . preview_count($sdb) . ')');
	is(status($wdb, 'ticks'), $ticks_before,
		"$wdb: the worker has not ticked since the workload was loaded");

	# Rule: one woken tick of the worker does what one sweep() call does:
	# both leave nothing due after the same number of passes.
	my ($passes_w, $passes_s) = (0, 0);
	while ($passes_w < 5)
	{
		tick_in($wdb);
		$passes_w++;
		last if preview_count($wdb) == 0;
	}
	while ($passes_s < 5)
	{
		sql($sdb, 'SELECT * FROM runtime_sweeper.sweep()');
		$passes_s++;
		last if preview_count($sdb) == 0;
	}
	is(preview_count($wdb), 0, "after $passes_w worker tick(s) nothing is due in $wdb");
	is(preview_count($sdb), 0, "after $passes_s sweep() call(s) nothing is due in $sdb");
	is($passes_w, $passes_s, "$wdb/$sdb: the worker and sweep() needed the same number of passes");

	# Rule: the worker path and the SQL path leave the same rows (retry
	# children compared by parent and attempt), send the same events in the
	# same order (uuids as labels, timestamps masked) and count the same in
	# the status views.
	my $w = state_of($wdb);
	my $s = state_of($sdb);
	compare_states("$wdb/$sdb after the sweep", $w, $s);
	$after{$wdb} = $w;

	# The comparison means something only if the sweep did all this (see
	# the table in the workload file).  No client held any row, so nothing
	# counts as skipped: a count taken after a stage's write must see it.
	my %c = map { split /=/ } split /\n/, $s->{counters};
	is(join(' ', map { "$_=$c{$_}" } qw(runtimes_offline tasks_failed_runtime_offline
		  tasks_failed_timeout tasks_failed_queued_expired retries_created retries_skipped
		  issues_rolled_back runtimes_collected gc_held_back events_truncated rows_skipped errors)),
		'runtimes_offline=3 tasks_failed_runtime_offline=11 tasks_failed_timeout=4 '
		  . 'tasks_failed_queued_expired=4 retries_created=7 retries_skipped=1 issues_rolled_back=4 '
		  . "runtimes_collected=$pairs{$wdb}{collected} gc_held_back=$pairs{$wdb}{held} "
		  . 'events_truncated=2 rows_skipped=0 errors=0',
		"$sdb: sweep() did what the workload asks for (status counters)");
}

# Rule: left running, the worker changes nothing more: further ticks at a
# 200 ms interval (and further sweep() calls) leave rows, events and counters
# as they were, and the same on both paths.
sql('postgres', "ALTER SYSTEM SET runtime_sweeper.interval = '200ms'; SELECT pg_reload_conf()");
my %ticks = map { $_ => status($_, 'ticks') } @workers;
for my $wdb (@workers)
{
	$node->poll_query_until('postgres',
		"SELECT ticks >= $ticks{$wdb} + 5 FROM runtime_sweeper.status WHERE database = '$wdb'")
	  or die "the worker of $wdb does not tick by itself at 200 ms";
}
for my $wdb (@workers)
{
	my $sdb = $pairs{$wdb}{s};
	sql($sdb, 'SELECT * FROM runtime_sweeper.sweep()') for 1 .. 3;
	my $w = state_of($wdb);
	compare_states("$wdb/$sdb after more ticks and sweep() calls", $w, state_of($sdb));
	same_text("$wdb: five more worker ticks changed no row and sent no event",
		$w->{rows} . $w->{events}, $after{$wdb}{rows} . $after{$wdb}{events});
	is(status($wdb, 'errors'), '0', "$wdb: the worker had no stage error");
}

$node->stop;
done_testing();
