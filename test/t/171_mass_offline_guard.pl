# mass_offline_guard (off by default): a worker tick marks no runtime offline when too large a share of the online runtimes looks dead at once; the SQL API is not limited.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# Every tick is caused by wake() (interval one hour) or a restart; the outage
# guard is off so that only the mass-offline guard holds runtimes back.
my $node = sweeper_node('mass_offline', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
runtime_sweeper.mass_offline_guard = 0.5
runtime_sweeper.mass_offline_min = 5
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub first_tick
{
	$node->poll_query_until('postgres',
		"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
	  or die 'the first tick never finished';
	return;
}

# Creates, in one transaction, $stale runtimes silent for an hour and $fresh
# heartbeating ones in a new workspace; returns that workspace.
sub runtimes
{
	my ($stale, $fresh) = @_;
	my $ws = sql('SELECT fx_workspace()');
	sql(qq{
		BEGIN;
		SELECT fx_runtime('$ws', 'online', '1 hour') FROM generate_series(1, $stale);
		SELECT fx_runtime('$ws', 'online', '5 seconds') FROM generate_series(1, $fresh);
		COMMIT;});
	return $ws;
}

sub offline_in { return sql("SELECT count(*) FROM agent_runtime WHERE workspace_id = '$_[0]' AND status = 'offline'"); }

my $warning = qr/WARNING:  runtime_sweeper: not marking 6 of 10 online runtimes offline at once/;

first_tick();
is(sql('SELECT count(*) FROM agent_runtime'), '0', 'no runtimes yet');

# ---------------------------------------------------------------------------
# Rule: with mass_offline_guard 0.5 and mass_offline_min 5, a tick that
# would mark 6 of 10 online runtimes offline marks none, counts it in
# mass_offline_blocked and logs a WARNING.  Without the guard the tick would
# flip all six (as below, with the guard off).
my $ws1 = runtimes(6, 4);
my $blocked0 = worker_status($node, 'mass_offline_blocked');
tick($node);
is(offline_in($ws1), '0', 'the tick marked none of the 6 stale runtimes offline');
cmp_ok(worker_status($node, 'mass_offline_blocked'), '>', $blocked0, 'status: mass_offline_blocked counted it');
ok(log_count($node, $warning) >= 1, 'a WARNING says what was not done');
is(worker_status($node, 'runtimes_offline'), '0', 'status: no runtime offline');
tick($node);
is(offline_in($ws1), '0', 'the next tick holds them back too');

# ---------------------------------------------------------------------------
# Rule: an explicit mark_stale_runtimes_offline() is not limited by the guard:
# the operator confirms the mass outage and all six go offline.
is(sql('SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline()'), '6',
	'mark_stale_runtimes_offline() marked the 6 stale runtimes offline');
is(offline_in($ws1), '6', 'they are offline');

# ---------------------------------------------------------------------------
# Rule: up to the share is allowed: 4 stale of 8 online (exactly one half)
# are flipped by the tick.
my $ws2 = runtimes(4, 0);
tick($node);
is(offline_in($ws2), '4', '4 of 8 online runtimes (one half) went offline in one tick');

# ---------------------------------------------------------------------------
# Rule: below mass_offline_min online runtimes the guard does not apply:
# all 4 remaining online runtimes go stale and all 4 are flipped.
sql("UPDATE agent_runtime SET last_seen_at = now() - interval '1 hour' WHERE status = 'online'");
tick($node);
is(sql("SELECT count(*) FROM agent_runtime WHERE status = 'online'"), '0',
	'4 of 4 online runtimes (fewer than mass_offline_min) went offline in one tick');

# ---------------------------------------------------------------------------
# Rule: with the guard off (0, the default) the same 6 of 10 are flipped at
# the first tick, with no WARNING.
sql('DELETE FROM agent_runtime');
sql('ALTER SYSTEM SET runtime_sweeper.mass_offline_guard = 0');
my $ws3 = runtimes(6, 4);
my $warnings0 = log_count($node, $warning);
$node->restart;
is(sql(q{SELECT boot_val FROM pg_settings WHERE name = 'runtime_sweeper.mass_offline_guard'}), '0',
	'mass_offline_guard is off (0) by default');
first_tick();
is(offline_in($ws3), '6', 'with the guard off the first tick marked all 6 stale runtimes offline');
is(worker_status($node, 'mass_offline_blocked'), '0', 'status: nothing blocked');
is(log_count($node, $warning), $warnings0, 'no mass-offline WARNING');

$node->stop;
done_testing();
