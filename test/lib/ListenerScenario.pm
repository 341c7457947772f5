# ListenerScenario: the scenario both listener examples (examples/listener-*)
# must survive, shared by test/t/140_listener_python.pl and 141_listener_node.pl.
#
#   run_listener_scenario('python', [ '/usr/bin/python3', "$root/.../listener.py" ]);
#
# A node with event_log on and a fast worker; events come in rounds, from the
# SQL API and from the worker, while the listener runs, while the server
# restarts (a session commits events until the shutdown kills it), while the
# listener cannot connect (stop, start, events, then it may log in again), and
# while the listener itself is stopped (SIGTERM) and started again from its
# state file.  In the end every event in runtime_sweeper.event_log must have
# been printed exactly once, in id order, with its type and workspace.
# Waiting is a bounded poll, never a sleep.
package ListenerScenario;

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter 'import';
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(run_listener_scenario example_path);

my $root = abs_path(dirname(__FILE__) . '/../..');

# Listeners still running; killed at exit should a check die before stopping them.
my @live;
END { $_->{h}->kill_kill for grep { $_->{h}->pumpable } @live }

# Absolute path of examples/$file.
sub example_path
{
	my ($file) = @_;
	return "$root/examples/$file";
}

# One round from the SQL API: $n stale runtimes, each with an agent working on
# a running task, created and swept in ONE transaction (the worker cannot take
# them first): 4 events each (task:queued, task:failed, agent:status,
# daemon:register).  Returns the SQL.
sub round_sql
{
	my ($n) = @_;
	return qq{
BEGIN;
SELECT fx_task(fx_agent(w, r, 'agent', 'working'), r, fx_issue(w), 'running', '10 min')
FROM (SELECT w, fx_runtime(w, 'online', '1 hour') AS r
      FROM (SELECT fx_workspace() AS w FROM generate_series(1, $n)) ws) s;
SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline();
COMMIT;
};
}

sub max_id
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		'SELECT coalesce(max(id), 0) FROM runtime_sweeper.event_log');
}

# Runs a round through the SQL API; returns how many events it logged.
sub api_round
{
	my ($node, $n) = @_;
	my $before = max_id($node);
	$node->safe_psql('postgres', round_sql($n));
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM runtime_sweeper.event_log WHERE id > $before");
}

# Commits $n stale runtimes with working agents and lets the worker sweep them.
sub worker_round
{
	my ($node, $n) = @_;
	my $before = max_id($node);
	$node->safe_psql(
		'postgres', qq{
		SELECT fx_task(fx_agent(w, r, 'agent', 'working'), r, fx_issue(w), 'running', '10 min')
		FROM (SELECT w, fx_runtime(w, 'online', '1 hour') AS r
		      FROM (SELECT fx_workspace() AS w FROM generate_series(1, $n)) ws) s});
	$node->poll_query_until('postgres',
		"SELECT count(*) >= 4 * $n FROM runtime_sweeper.event_log WHERE id > $before")
	  or die 'the worker did not sweep the stale runtimes';
	return;
}

# The JSON lines a listener printed: [ [id, type, workspace_id], ... ].
sub printed
{
	my ($file) = @_;
	return [] unless -e $file;
	my @rows;
	for my $line (split /\n/, slurp_file($file))
	{
		$line =~ /^\{"id":(\d+),"type":"([^"]*)","workspace_id":"([^"]*)"\}$/
		  or die "unexpected output line from the listener: $line";
		push @rows, [ $1, $2, $3 ];
	}
	return \@rows;
}

# Polls until the listener printed event $id (or a later one).
sub wait_printed
{
	my ($l, $id) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		# only whole lines: the listener may be writing the next one
		my $text = -e $l->{out} ? slurp_file($l->{out}) : '';
		return 1 if $text =~ /"id":(\d+)[^\n]*\n\z/ && $1 >= $id;
		die "the listener exited early; stderr:\n" . slurp_file($l->{err})
		  unless $l->{h}->pumpable;
		usleep(50_000);
	}
	die "the listener never printed event $id; stderr:\n" . slurp_file($l->{err});
}

# Starts the listener (as role listener through the node's socket).
sub start_listener
{
	my ($node, $cmd, $state, $tag) = @_;
	my $dir = $node->basedir;
	my %l = (out => "$dir/listener_$tag.out", err => "$dir/listener_$tag.err");
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGUSER} = 'listener';
	local $ENV{PGDATABASE} = 'postgres';
	$l{h} = IPC::Run::start(
		[ @$cmd, '--state', $state, '--max-seconds', 2 * $PostgreSQL::Test::Utils::timeout_default ],
		'<', \undef, '>', $l{out}, '2>', $l{err},
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 3));
	return \%l;
}

# SIGTERM; returns the exit status (wait status: 0 = exited with 0).
sub stop_listener
{
	my ($l) = @_;
	$l->{h}->signal('TERM');
	$l->{h}->finish;
	return scalar $l->{h}->full_result(0);
}

# The Ns of the "connected, caught up N events" lines in a listener's stderr,
# once there are $n of them (a listener prints the events it caught up before
# that line: a bounded poll).
sub catch_ups
{
	my ($l, $n) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (1)
	{
		my @ups = slurp_file($l->{err}) =~ /^listener: connected, caught up (\d+) events/mg;
		return \@ups if @ups >= $n || time >= $deadline;
		usleep(50_000);
	}
}

sub run_listener_scenario
{
	my ($name, $cmd) = @_;
	my $node = sweeper_node(
		"listener_$name", conf => q{
runtime_sweeper.event_log = on
runtime_sweeper.interval = '200ms'
runtime_sweeper.outage_guard = off
});
	# The least a listener needs (README of the examples).
	$node->safe_psql(
		'postgres', q{
		CREATE ROLE listener LOGIN;
		GRANT USAGE ON SCHEMA runtime_sweeper TO listener;
		GRANT EXECUTE ON FUNCTION runtime_sweeper.events_since(bigint, int) TO listener;
		GRANT SELECT ON runtime_sweeper.event_log TO listener});
	my $state = $node->basedir . "/listener.state";

	# Rule: a listener without a state file starts from the beginning of the log.
	my $before = api_round($node, 2);
	my $l1 = start_listener($node, $cmd, $state, 'first');
	push @live, $l1;
	wait_printed($l1, max_id($node));
	is_deeply(catch_ups($l1, 1), [$before],
		"$name: on start the listener caught up the $before events logged before it");

	# Rule: live events, from the SQL API and from the worker, arrive at once.
	api_round($node, 3);
	worker_round($node, 2);
	wait_printed($l1, max_id($node));
	pass("$name: live events from the SQL API and the worker arrived");

	# Rule: ids taken by a transaction that rolled back leave a hole in the log;
	# the next event after the hole is still printed, once.
	my $hole = max_id($node);
	$node->safe_psql('postgres', round_sql(2) =~ s/COMMIT;/ROLLBACK;/r);
	api_round($node, 1);
	is($node->safe_psql('postgres',
			"SELECT min(id) > $hole + 1 FROM runtime_sweeper.event_log WHERE id > $hole"),
		't', "$name: the rolled-back events left a hole in the ids");
	wait_printed($l1, max_id($node));
	pass("$name: the events after the hole arrived");

	# Rule: events committed until a restart kills the session sending them,
	# and events right after the restart, all arrive.
	my $many = $node->basedir . '/many.sql';
	PostgreSQL::Test::Utils::append_to_file($many, round_sql(1) x 3000);
	my $base = max_id($node);
	my ($gen_out, $gen_err) = ('', '');
	my $gen = IPC::Run::start(
		[ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-f', $many ],
		'<', \undef, '>', \$gen_out, '2>', \$gen_err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$node->poll_query_until('postgres',
		"SELECT max(id) >= $base + 40 FROM runtime_sweeper.event_log")
	  or die 'the generating session logged no events';
	$node->restart;
	$gen->finish;
	like($gen_err, qr/terminating connection due to administrator command|connection to server was lost/,
		"$name: the restart interrupted a session that was committing events");
	api_round($node, 2);
	wait_printed($l1, max_id($node));
	is(scalar @{ catch_ups($l1, 2) }, 2, "$name: the listener reconnected after the restart");

	# Rule: events sent while the listener cannot connect are caught up when
	# it can: it may not log in across a stop and start, events are sent, then
	# it may log in again.
	my $seen = max_id($node);    # the listener printed all of these
	$node->safe_psql('postgres', 'ALTER ROLE listener NOLOGIN');
	$node->stop;
	$node->start;
	api_round($node, 3);
	worker_round($node, 1);
	my $missed = $node->safe_psql('postgres',
		"SELECT count(*) FROM runtime_sweeper.event_log WHERE id > $seen");
	$node->safe_psql('postgres', 'ALTER ROLE listener LOGIN');
	wait_printed($l1, max_id($node));
	my $ups = catch_ups($l1, 3);
	is(scalar @$ups, 3, "$name: the listener reconnected after the stop and start");
	cmp_ok($ups->[2], '>=', $missed,
		"$name: on reconnecting it caught up the $missed events sent while it could not connect");
	like(slurp_file($l1->{err}), qr/^listener: error: .*not permitted to log in/m,
		"$name: it kept retrying while it could not log in");
	api_round($node, 1);
	wait_printed($l1, max_id($node));

	# Rule: SIGTERM stops the listener cleanly with its state saved; started
	# again it continues from there, catching up what it missed meanwhile.
	is(stop_listener($l1), 0, "$name: SIGTERM: the listener exited with status 0");
	@live = ();
	my $last1 = printed($l1->{out})->[-1][0];
	is(slurp_file($state), "$last1\n", "$name: the state file holds the last id printed ($last1)");
	my $stopped = api_round($node, 2);
	my $l2 = start_listener($node, $cmd, $state, 'second');
	push @live, $l2;
	wait_printed($l2, max_id($node));
	cmp_ok(catch_ups($l2, 1)->[0], '>=', $stopped,
		"$name: restarted from its state, it caught up the $stopped events sent while it was stopped");
	api_round($node, 1);
	wait_printed($l2, max_id($node));
	is(stop_listener($l2), 0, "$name: SIGTERM again: exit status 0");
	@live = ();

	# Rule: every logged event was printed exactly once, in id order, with its
	# type and workspace.
	my @got = (@{ printed($l1->{out}) }, @{ printed($l2->{out}) });
	my @want = map { [ split /\|/ ] } split /\n/,
	  $node->safe_psql('postgres', q{
		SELECT id, event->>'type', event->>'workspace_id'
		FROM runtime_sweeper.event_log ORDER BY id});
	cmp_ok(scalar @want, '>=', 4 * (2 + 3 + 2 + 1 + 2 + 3 + 1 + 1 + 2 + 1) + 40,
		"$name: the scenario logged enough events (" . scalar(@want) . ')');
	is(scalar @got, scalar @want, "$name: as many events printed as logged");
	is_deeply(\@got, \@want,
		"$name: every logged event printed exactly once, in id order, with its type and workspace");
	unlike(slurp_file($l1->{err}) . slurp_file($l2->{err}), qr/^listener: fatal|Traceback/m,
		"$name: no crash in the listener's stderr");

	note("stderr of the listener, first run:\n" . slurp_file($l1->{err}));
	note("stderr of the listener, second run:\n" . slurp_file($l2->{err}));
	$node->stop;
	return;
}

1;
