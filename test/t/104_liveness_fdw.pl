# liveness = relation through postgres_fdw: a foreign table served by a second cluster keeps runtimes online; the remote down or slow falls back to the database window.
use strict;
use warnings;

use LivenessTest;
use PostgreSQL::Test::Cluster;
use SweeperTest;
use Test::More;

# The second cluster holds the liveness record (a table, and a slow view).
my $remote = PostgreSQL::Test::Cluster->new('remote');
$remote->init;
$remote->start;
$remote->safe_psql('postgres', q{
	CREATE TABLE alive (runtime_id uuid PRIMARY KEY);
	CREATE VIEW slow_alive AS SELECT runtime_id FROM alive, pg_sleep(10) AS s;});

# The node (LivenessTest): every tick below comes from wake() or a reload.
my ($node) = liveness_node('main', 'fdw', q{
runtime_sweeper.redis_timeout = '500ms'
});
my $remote_host = $remote->host;
my $remote_port = $remote->port;
$node->safe_psql('postgres', qq{
	CREATE EXTENSION postgres_fdw;
	CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw
	    OPTIONS (host '$remote_host', port '$remote_port', dbname 'postgres', connect_timeout '2');
	CREATE USER MAPPING FOR PUBLIC SERVER remote OPTIONS (user 'postgres');
	CREATE FOREIGN TABLE remote_alive (runtime_id uuid) SERVER remote OPTIONS (table_name 'alive');
	CREATE FOREIGN TABLE remote_slow (runtime_id uuid) SERVER remote OPTIONS (table_name 'slow_alive');});

# ------------------------------------------------------------------ cases

# Rule: a runtime the remote cluster lists stays online; an unlisted one
# goes offline.
set_config('liveness', 'relation');
set_config('liveness_relation', 'remote_alive');
my $listed = stale_runtime();
my $unlisted = stale_runtime();
$remote->safe_psql('postgres', "INSERT INTO alive VALUES ('$listed')");
tick($node);
is(runtime_status($listed), 'online', 'foreign table: the runtime listed remotely stayed online');
is(runtime_status($unlisted), 'offline', 'foreign table: the unlisted runtime went offline');
is(worker_status($node, q{liveness || '|' || liveness_healthy}), 'relation|true', 'status: relation, healthy');
offline_all();

# Rule: a remote slower than the timeout (500 ms) is cancelled (on the remote
# too) and the tick falls back within the timeout plus a margin.
set_config('liveness_relation', 'remote_slow');
my $slow = stale_runtime();
$remote->safe_psql('postgres', "INSERT INTO alive VALUES ('$slow')");
tick($node);
my $stage_ms = stage_ms();
diag("slow foreign table: stale_runtimes stage took $stage_ms ms (redis_timeout 500 ms)");
cmp_ok($stage_ms, '<', 500 + 1000, 'the stage finished within the timeout plus a second');
is(runtime_status($slow), 'offline', 'slow remote: fell back to the database window');
like(worker_status($node, 'liveness_last_error'), qr/no answer within 500 ms/, 'status: no answer within 500 ms');
$remote->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep'})
  or die 'the remote query was never cancelled';
pass('the remote query was cancelled too');
offline_all();
set_config('liveness_relation', 'remote_alive');
my $healthy_again = stale_runtime();
$remote->safe_psql('postgres', "INSERT INTO alive VALUES ('$healthy_again')");
tick($node);
is(runtime_status($healthy_again), 'online', 'the cached remote connection still works after the cancel');
offline_all();

# Rule: the remote cluster stopped: each tick falls back, the status view
# says why, and the outage is logged once.
$remote->stop;
my $warnings = log_count($node, qr/WARNING:  runtime_sweeper: liveness source "relation" unavailable/);
my $down1 = stale_runtime();
tick($node);
my $down2 = stale_runtime();
tick($node);
is(runtime_status($down1) . '|' . runtime_status($down2), 'offline|offline',
	'remote down: both ticks fell back to the database window');
is(worker_status($node, 'liveness_healthy'), 'f', 'status: unhealthy');
like(worker_status($node, 'liveness_last_error'), qr/could not connect to server "remote"/,
	'status: could not connect to server "remote"');
is(log_count($node, qr/WARNING:  runtime_sweeper: liveness source "relation" unavailable/) - $warnings, 1,
	'the outage is logged once');

# Rule: the remote back: the next tick reconnects and trusts it again.
$remote->start;
my $back = stale_runtime();
$remote->safe_psql('postgres', "INSERT INTO alive VALUES ('$back')");
tick($node);
is(runtime_status($back), 'online', 'remote back: the listed runtime stayed online');
is(worker_status($node, 'liveness_healthy'), 't', 'status: healthy again');

$node->stop;
$remote->stop;
done_testing();
