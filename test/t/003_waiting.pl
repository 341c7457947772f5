# A worker whose database lacks the extension or the tables waits quietly, then sweeps by itself.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# A short interval: the waiting worker goes round its loop every 100 ms on its
# own (wake() needs the extension, which is what is missing here).
my $node = sweeper_node('waiting', extension => 0, conf => q{
runtime_sweeper.interval = '100ms'
runtime_sweeper.outage_guard = off
});

# The status views are read from a second database that has the extension:
# they show every database's worker.
$node->safe_psql('postgres', 'CREATE DATABASE observer');
$node->safe_psql('observer', 'CREATE EXTENSION runtime_sweeper');

# Runs a query on the worker's row of the status view, from database observer.
sub status
{
	my ($cols) = @_;
	return $node->safe_psql('observer',
		"SELECT $cols FROM runtime_sweeper.status WHERE database = 'postgres'");
}

# Waits until the worker has gone round its loop at least ten more times: each
# pass records next_tick = now + 100 ms.
sub many_loops
{
	my $before = status('next_tick');
	$node->poll_query_until('observer', qq{
		SELECT next_tick > '$before'::timestamptz + '1 s'
		FROM runtime_sweeper.status WHERE database = 'postgres'})
	  or die 'the waiting worker stopped going round its loop';
	return;
}

my $no_ext = qr/runtime_sweeper: not sweeping database "postgres": extension "runtime_sweeper" is not installed/;
my $no_table = qr/runtime_sweeper: not sweeping database "postgres": table public\.\w+ does not exist/;
my $started = qr/runtime_sweeper: worker started for database "postgres"/;
my $sweeping = qr/runtime_sweeper: sweeping database "postgres"/;

# Rule: without the extension the worker waits, logs the reason once, and does not crash-loop.
$node->poll_query_until('observer', q{
	SELECT state = 'waiting for schema' AND next_tick IS NOT NULL
	FROM runtime_sweeper.status WHERE database = 'postgres'})
  or die 'the worker never reported waiting for the schema';
my $pid = status('pid');
many_loops();
is(log_count($node, $no_ext), 1, 'no extension: "not sweeping" logged exactly once over many passes');
is(status('pid, state, ticks'), "$pid|waiting for schema|0",
	'same worker process, still waiting, no tick');
is(log_count($node, $started), 1, 'the worker started once (no crash loop)');

# Rule: with the extension but without the tables, the new reason is logged once.
$node->safe_psql('postgres', 'CREATE EXTENSION runtime_sweeper');
$node->wait_for_log($no_table);
many_loops();
is(log_count($node, $no_table), 1, 'no tables: "not sweeping" logged exactly once over many passes');
is(log_count($node, $no_ext), 1, 'the earlier reason is not repeated');
is(status('pid, state, ticks'), "$pid|waiting for schema|0",
	'same worker process, still waiting, no tick');
is($node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()'), 't',
	'wake() reaches the waiting worker');

# Rule: once the tables appear the worker sweeps by itself.
load_fixture($node, 'postgres');
$node->wait_for_log($sweeping);
my $rt = $node->safe_psql('postgres', q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
$node->poll_query_until('postgres', "SELECT status = 'offline' FROM agent_runtime WHERE id = '$rt'")
  or die 'the stale runtime never went offline';
pass('the worker swept the stale runtime offline without being told');
is(log_count($node, $sweeping), 1, '"sweeping database" logged once');
is(log_count($node, $no_table), 1, 'the fixture loaded in one transaction: no new reason logged');
is(status('pid'), $pid, 'still the same worker process');
cmp_ok(status('ticks'), '>=', 1, 'the worker ticks now');

$node->stop;
done_testing();
