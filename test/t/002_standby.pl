# A streaming standby does not sweep; once promoted it sweeps.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# The primary is paused (enabled = off) so the stale runtime it writes stays
# online for the standby to (not) see; the standby runs with enabled = on and
# the outage guard off, so after promotion only the sweep decides.
my $primary = sweeper_node('primary', allows_streaming => 1, conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.enabled = off
});
my $rt = $primary->safe_psql('postgres',
	q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', q{
runtime_sweeper.enabled = on
runtime_sweeper.outage_guard = off
});
$standby->start;
$primary->wait_for_catchup($standby);

# Rule: the worker of a standby waits in state 'standby' and sweeps nothing.
expect_worker_pid($standby);
$standby->poll_query_until('postgres',
	"SELECT state = 'standby' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the standby worker never reported state standby';
pass('the standby worker is in state standby');
is($standby->safe_psql('postgres', 'SELECT runtime_sweeper.wake()'), 't',
	'wake() finds the standby worker');
idle_loop($standby);
idle_loop($standby);
is($standby->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"),
	'online', 'the stale runtime is untouched on the standby');
is($standby->safe_psql('postgres',
		"SELECT ticks, errors, state FROM runtime_sweeper.status WHERE database = 'postgres'"),
	'0|0|standby', 'no tick and no stage error on the standby, even when woken');
is(log_count($standby, qr/not sweeping database "postgres": the server is a standby/), 1,
	'"not sweeping ... standby" is logged once');
is($primary->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"),
	'online', 'the paused primary did not sweep it either');

# Rule: after promotion the same worker sweeps (a stale runtime goes offline).
my $pid = $standby->safe_psql('postgres',
	"SELECT pid FROM runtime_sweeper.status WHERE database = 'postgres'");
$primary->stop;
$standby->promote;
tick($standby);
is($standby->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"),
	'offline', 'the promoted node swept the stale runtime offline');
is($standby->safe_psql('postgres',
		"SELECT state, pid FROM runtime_sweeper.status WHERE database = 'postgres'"),
	"idle|$pid", 'the same worker process sweeps after promotion');
is(log_count($standby, qr/runtime_sweeper: sweeping database "postgres"/), 1,
	'"sweeping database" is logged after promotion');

$standby->stop;
done_testing();
