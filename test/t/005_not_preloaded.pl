# Without shared_preload_libraries: no worker, but the extension and its SQL API work.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

my $node = sweeper_node('plain', preload => 0, extension => 0);

# Rule: CREATE EXTENSION works and says that no worker runs.
my ($out, $err);
my $rc = $node->psql('postgres', 'CREATE EXTENSION runtime_sweeper',
	stdout => \$out, stderr => \$err);
is($rc, 0, 'CREATE EXTENSION succeeds without the preloaded library');
like($err, qr/NOTICE:  runtime_sweeper is not in shared_preload_libraries: no worker runs/,
	'CREATE EXTENSION notices that no worker runs');
is($node->safe_psql('postgres', 'SELECT runtime_sweeper._preloaded()'), 'f',
	'_preloaded() is false');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'runtime_sweeper'"),
	'0', 'no worker process');

# Rule: wake() is false: there is no worker to wake.
is($node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()'), 'f', 'wake() is false');
is($node->safe_psql('postgres',
		'SELECT count(*) FROM runtime_sweeper.status WHERE pid IS NOT NULL'),
	'0', 'the status view shows no worker (and does not fail)');

# Rule: sweep() runs a whole tick in the caller's session.
load_fixture($node, 'postgres');
my $rt = $node->safe_psql('postgres', q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
is($node->safe_psql('postgres',
		"SELECT affected FROM runtime_sweeper.sweep() WHERE stage = 'stale_runtimes'"),
	'1', 'sweep() flips the stale runtime');
is($node->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"),
	'offline', 'the stale runtime is offline');
is($node->safe_psql('postgres',
		"SELECT string_agg(stage || '=' || coalesce(affected::text, 'NULL'), ',') FROM runtime_sweeper.sweep()"),
	'stale_runtimes=0,offline_tasks=0,stale_tasks=0,queued_expiry=0,runtime_gc=0',
	'a second sweep() runs every stage and finds nothing');

$node->stop;
done_testing();
