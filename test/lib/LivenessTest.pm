# LivenessTest: the node and the helpers shared by the liveness TAP tests
# (test/t/101-104).  One liveness node per test file: liveness_node() creates
# it and the other helpers work on it.
#
#   my ($node, $ws) = liveness_node($name, $workspace, $conf);
#       sweeper_node() (SweeperTest) with every tick coming from wake() or a
#       reload: interval 1h, outage_guard off, stale_threshold 30min,
#       dispatch_timeout 1000s, then $conf (the liveness settings); waits for
#       the worker and creates the workspace $workspace ($ws is its id).
#   stale_runtime()              a new online runtime silent for an hour
#   runtime_status($id)          its agent_runtime.status
#   offline_all()                every online runtime set offline
#   set_config($name, $value)    ALTER SYSTEM runtime_sweeper.$name, reload,
#                                and wait until the worker has read it
#   stage_ms()                   milliseconds the last stale_runtimes stage took
package LivenessTest;

use strict;
use warnings;

use Exporter 'import';
use SweeperTest;

our @EXPORT = qw(liveness_node stale_runtime runtime_status offline_all set_config
  stage_ms);

my ($node, $ws);
my $generation = 0;

# Creates the test's node (see above) and returns it with the workspace id.
sub liveness_node
{
	my ($name, $workspace, $conf) = @_;
	$node = sweeper_node($name, conf => qq{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
runtime_sweeper.stale_threshold = '30min'
runtime_sweeper.dispatch_timeout = '1000s'
$conf});
	expect_worker_pid($node);
	$ws = $node->safe_psql('postgres', qq{SELECT fx_workspace('$workspace')});
	return ($node, $ws);
}

# A stale online runtime (silent for an hour) in the test's workspace.
sub stale_runtime
{
	return $node->safe_psql('postgres', qq{SELECT fx_runtime('$ws', 'online', '1 hour')});
}

# The status (online/offline) of runtime $id.
sub runtime_status
{
	my ($id) = @_;
	return $node->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$id'");
}

# Sets every online runtime offline, so that the next case starts clean.
sub offline_all
{
	$node->safe_psql('postgres', q{UPDATE agent_runtime SET status = 'offline' WHERE status = 'online'});
	return;
}

# Changes a setting with ALTER SYSTEM and a reload, and waits until the worker
# has it: the same reload moves dispatch_timeout to a new value (1001 s,
# 1002 s, ...), and the worker's schedule (which never sleeps longer than that
# timeout) shows it once the worker has read the file.
sub set_config
{
	my ($name, $value) = @_;
	my $marker = 1000 + ++$generation;
	$node->safe_psql('postgres', qq{
		ALTER SYSTEM SET runtime_sweeper.$name = '$value';
		ALTER SYSTEM SET runtime_sweeper.dispatch_timeout = '${marker}s';
		SELECT pg_reload_conf();});
	$node->poll_query_until('postgres', qq{
		SELECT next_tick - last_tick_start BETWEEN '${marker}s' AND '${marker}.005s'
		FROM runtime_sweeper.status WHERE database = 'postgres'})
	  or die "the worker never read runtime_sweeper.$name = '$value'";
	return;
}

# Milliseconds (rounded) that the worker's last stale_runtimes stage took,
# the stage that asks the liveness source.
sub stage_ms
{
	return $node->safe_psql('postgres', q{
		SELECT round(extract(epoch FROM last_duration) * 1000) FROM runtime_sweeper.stage_status
		WHERE database = 'postgres' AND stage = 'stale_runtimes'});
}

1;
