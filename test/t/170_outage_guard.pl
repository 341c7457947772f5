# The outage guard (on by default): after a start, a promotion or a long gap between ticks the worker marks no runtime offline for one stale threshold; SQL calls act as asked; outage_guard = off flips at once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

my $guard_log = qr/runtime_sweeper: outage guard: no runtime is marked offline before/;

# Ticks come from wake(), a restart, a reload, or the guard's own release
# (interval one hour).  A one hour stale threshold first: the hold lasts an
# hour, so "still online" below cannot race with its end.
my $node = sweeper_node('outage', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.stale_threshold = '1h'
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub status_of { return sql("SELECT status FROM agent_runtime WHERE id = '$_[0]'"); }

sub first_tick
{
	my ($n) = @_;
	$n->poll_query_until('postgres',
		"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
	  or die 'the first tick never finished on ' . $n->name;
	return;
}

# When the worker process of database postgres started (it holds from about then).
sub worker_start
{
	my ($n) = @_;
	my $pid = expect_worker_pid($n);
	return $n->safe_psql('postgres', "SELECT backend_start FROM pg_stat_activity WHERE pid = $pid");
}

sub clock { return sql('SELECT clock_timestamp()'); }

# Waits until runtime $rt is offline; returns its flip time (updated_at).
sub flipped_at
{
	my ($n, $rt) = @_;
	$n->poll_query_until('postgres', "SELECT status = 'offline' FROM agent_runtime WHERE id = '$rt'")
	  or die "runtime $rt never went offline on " . $n->name;
	return $n->safe_psql('postgres', "SELECT updated_at FROM agent_runtime WHERE id = '$rt'");
}

# Whether timestamp $a is at least $delta after timestamp $b.
sub at_least_after
{
	my ($n, $a, $b, $delta) = @_;
	return $n->safe_psql('postgres',
		"SELECT '$a'::timestamptz >= '$b'::timestamptz + interval '$delta'") eq 't';
}

my $ws = sql('SELECT fx_workspace()');

# ---------------------------------------------------------------------------
# Rule: after the cluster starts, the worker marks no runtime offline until
# one stale threshold has passed: runtimes silent for 2 h (threshold 1 h)
# stay online through the first ticks, counted in outage_deferred; the hold
# is logged once, not per tick.  Without the guard the first tick after the
# start would flip them (as with outage_guard = off below).
my $rt_a = sql("SELECT fx_runtime('$ws', 'online', '2 hours')");
my $rt_b = sql("SELECT fx_runtime('$ws', 'online', '2 hours')");
my $logged = log_count($node, $guard_log);
$node->restart;
first_tick($node);
is(status_of($rt_a) . '|' . status_of($rt_b), 'online|online',
	'after the start the first tick left both stale runtimes online');
cmp_ok(worker_status($node, 'outage_deferred'), '>=', 2, 'status: outage_deferred counts them');
is(log_count($node, $guard_log), $logged + 1, 'the hold is logged');
my $deferred = worker_status($node, 'outage_deferred');
tick($node);
tick($node);
is(status_of($rt_a) . '|' . status_of($rt_b), 'online|online', 'woken ticks during the hold flip nothing');
cmp_ok(worker_status($node, 'outage_deferred'), '>', $deferred, 'each held tick counts again');
is(log_count($node, $guard_log), $logged + 1, 'the hold is logged once, not per tick');

# Rule: an explicit SQL call acts as asked during the hold.
is(sql('SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline()'), '2',
	'mark_stale_runtimes_offline() flips both stale runtimes during the hold');
my $rt_c = sql("SELECT fx_runtime('$ws', 'online', '2 hours')");
is(sql(q{SELECT affected FROM runtime_sweeper.sweep() WHERE stage = 'stale_runtimes'}), '1',
	'sweep() flips a stale runtime during the hold');
is(status_of($rt_c), 'offline', '... and it is offline');

# ---------------------------------------------------------------------------
# Rule: once one threshold has passed since the start, the worker flips them
# by itself (it schedules a tick for the moment the hold ends).  Threshold
# 5 s from here on; interval stays one hour.
sql("ALTER SYSTEM SET runtime_sweeper.stale_threshold = '5s'");
my $rt_d = sql("SELECT fx_runtime('$ws', 'online', '1 hour')");
$logged = log_count($node, $guard_log);
$node->restart;
my $start = worker_start($node);
my $flip = flipped_at($node, $rt_d);
ok(at_least_after($node, $flip, $start, '5 s'),
	"after a restart the stale runtime went offline by itself, not before the threshold (worker $start, flip $flip)");
cmp_ok(worker_status($node, 'outage_deferred'), '>=', 1, 'status: outage_deferred counted the held runtime');
is(log_count($node, $guard_log), $logged + 1, 'the new hold was logged once');

# Rule: a worker ticking on its own schedule does not hold again: with
# interval >= stale_threshold it sleeps exactly one threshold between idle
# ticks, and that is not a gap.
my $ticks = worker_status($node, 'ticks');
$node->poll_query_until('postgres',
	"SELECT ticks >= $ticks + 2 FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker does not tick by itself';
my $rt_e = sql("SELECT fx_runtime('$ws', 'online', '1 hour')");
my $woken = clock();
tick($node);
$flip = flipped_at($node, $rt_e);
ok(!at_least_after($node, $flip, $woken, '5 s'),
	"idle ticks one threshold apart start no new hold: a woken tick flips at once (woken $woken, flip $flip)");
is(log_count($node, $guard_log), $logged + 1, 'no new hold was logged');

# ---------------------------------------------------------------------------
# Rule: after a gap between ticks longer than the threshold (the worker was
# paused for longer), the guard holds again for one threshold.  Without gap
# detection the stale runtime would be flipped by the first tick after the
# pause.
sql("ALTER SYSTEM SET runtime_sweeper.enabled = off; SELECT pg_reload_conf()");
$node->poll_query_until('postgres',
	"SELECT state = 'paused' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker never paused';
my $rt_f = sql("SELECT fx_runtime('$ws', 'online', '1 hour')");
# wait (bounded poll on the clock) until the pause is well past one threshold
$node->poll_query_until('postgres', q{
	SELECT clock_timestamp() > last_tick_start + last_tick_duration + interval '7 s'
	FROM runtime_sweeper.status WHERE database = 'postgres'})
  or die 'the clock never moved';
my $deferred0 = worker_status($node, 'outage_deferred');
my $resumed = clock();
sql("ALTER SYSTEM SET runtime_sweeper.enabled = on; SELECT pg_reload_conf()");
$flip = flipped_at($node, $rt_f);
ok(at_least_after($node, $flip, $resumed, '5 s'),
	"after a pause longer than the threshold the guard held again (resumed $resumed, flip $flip)");
cmp_ok(worker_status($node, 'outage_deferred'), '>', $deferred0, 'status: outage_deferred counted it');
is(log_count($node, $guard_log), $logged + 2, 'the hold after the gap was logged once');

# ---------------------------------------------------------------------------
# Rule: with outage_guard = off the first tick after a start flips stale
# runtimes at once (threshold one hour again: with the guard on, the
# hold would keep it online for an hour).
sql("ALTER SYSTEM SET runtime_sweeper.outage_guard = off");
sql("ALTER SYSTEM SET runtime_sweeper.stale_threshold = '1h'");
my $rt_g = sql("SELECT fx_runtime('$ws', 'online', '2 hours')");
$logged = log_count($node, $guard_log);
$node->restart;
first_tick($node);
is(status_of($rt_g), 'offline', 'outage_guard = off: the first tick flipped the stale runtime');
is(worker_status($node, 'outage_deferred'), '0', 'status: nothing deferred');
is(log_count($node, $guard_log), $logged, 'no hold was logged');
$node->stop;

# ---------------------------------------------------------------------------
# Rule: after promotion the guard holds for one threshold, even when the
# worker started (and its start hold ended) long before.  The primary is
# paused so the stale runtime stays online until the promotion.  Without the
# promotion hold the first tick after promotion would flip it.
my $primary = sweeper_node('outage_primary', allows_streaming => 1, conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.stale_threshold = '5s'
runtime_sweeper.enabled = off
});
my $rt_p = $primary->safe_psql('postgres', q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('outage_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', "runtime_sweeper.enabled = on\n");
$standby->start;
$primary->wait_for_catchup($standby);
$standby->poll_query_until('postgres',
	"SELECT state = 'standby' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the standby worker never reported state standby';
# the hold from the worker's start is over well before the promotion
my $standby_start = worker_start($standby);
$standby->poll_query_until('postgres',
	"SELECT clock_timestamp() > '$standby_start'::timestamptz + interval '7 s'")
  or die 'the clock never moved';
$primary->stop;
my $promoted = $standby->safe_psql('postgres', 'SELECT clock_timestamp()');
$standby->promote;
$flip = flipped_at($standby, $rt_p);
ok(at_least_after($standby, $flip, $promoted, '5 s'),
	"after promotion the guard held for one threshold (promoted $promoted, flip $flip)");
cmp_ok(worker_status($standby, 'outage_deferred'), '>=', 1, 'status: outage_deferred counted it');
is(log_count($standby, $guard_log), 1, 'the promotion hold was logged once');
$standby->stop;

done_testing();
