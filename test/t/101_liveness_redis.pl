# liveness = redis: heartbeat keys keep stale runtimes online; a Redis that is down or refuses us falls back to the database window.
use strict;
use warnings;

use IPC::Run;
use LivenessTest;
use PostgreSQL::Test::Utils;
use RedisServer;
use SweeperTest;
use Test::More;
use Time::HiRes qw(time usleep);

# A real redis-server on loopback and a unix socket (RedisServer stops it
# whatever happens).
my $redis = RedisServer->new;
my $redis_port = $redis->port;
my $redis_sock = $redis->socket_path;

# Runs redis-cli against our server; returns its output without the newline.
sub rcli { return $redis->cli(@_); }

# Calls of a Redis command since the last CONFIG RESETSTAT.
sub redis_calls
{
	my ($cmd) = @_;
	my $stats = rcli('INFO', 'commandstats');
	return $stats =~ /^cmdstat_\Q$cmd\E:calls=(\d+)/m ? $1 : 0;
}

my $prefix = 'mul:runtime:hb:';

$redis->start;

# ------------------------------------------------------------------ node
my ($node, $ws) = liveness_node('redis', 'redis', qq{
runtime_sweeper.liveness = 'redis'
runtime_sweeper.redis_url = 'redis://127.0.0.1:$redis_port'
runtime_sweeper.redis_timeout = '250ms'
});

# ------------------------------------------------------------------ cases

# Rule: a stale runtime whose heartbeat key exists stays online; a stale one
# without a key goes offline, and the worker deletes the key of exactly the
# runtime it flipped (one MGET for the batch, one DEL).
my $alive = stale_runtime();
my $dead = stale_runtime();
is(rcli('SET', "$prefix$alive", '1'), 'OK', 'heartbeat key set for the live runtime');
rcli('CONFIG', 'RESETSTAT');
my ($mon_in, $mon_out) = ('', '');
my $monitor = IPC::Run::start([ 'redis-cli', '-p', $redis_port, 'MONITOR' ],
	'<', \$mon_in, '>', \$mon_out, '2>', \my $mon_err);
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
until ($mon_out =~ /OK/)
{
	$monitor->pump_nb;
	die 'MONITOR did not start' if time > $deadline;
	usleep(10_000);
}
my $checks = worker_status($node, 'liveness_checks');
my $kept = worker_status($node, 'liveness_kept_alive');
tick($node);
is(runtime_status($alive), 'online', 'the runtime with a heartbeat key stayed online');
is(runtime_status($dead), 'offline', 'the stale runtime without a key went offline');
until ($mon_out =~ /"DEL"/)
{
	$monitor->pump_nb;
	die 'no DEL seen by MONITOR' if time > $deadline;
	usleep(10_000);
}
$monitor->kill_kill;
my @del = grep { /"DEL"/ } split /\n/, $mon_out;
is(scalar(@del), 1, 'one DEL command');
like($del[0], qr/"DEL" "\Q$prefix$dead\E"$/, 'DEL names the key of the flipped runtime only');
like($mon_out, qr/"MGET" "\Q$prefix\E[0-9a-f-]{36}" "\Q$prefix\E[0-9a-f-]{36}"/,
	'MGET asks for both candidates, keys in lower case');
is(redis_calls('mget'), 1, 'one MGET for the batch');
is(worker_status($node, 'liveness_checks'), $checks + 1, 'liveness_checks counted the check');
is(worker_status($node, 'liveness_kept_alive'), $kept + 1, 'liveness_kept_alive counted the live runtime');
is(worker_status($node, q{liveness || '|' || liveness_healthy || '|' || coalesce(liveness_last_error, '')}),
	'redis|true|', 'status: source redis, healthy, no error');

# Rule: the connection is kept across ticks (only redis-cli's own INFO
# connections show up in the count).
my ($conn_before) = rcli('INFO', 'stats') =~ /total_connections_received:(\d+)/;
stale_runtime();
tick($node);
stale_runtime();
tick($node);
my ($conn_after) = rcli('INFO', 'stats') =~ /total_connections_received:(\d+)/;
is($conn_after - $conn_before, 1, 'two more ticks opened no new Redis connection');

# Rule: a kept connection that the server closed while idle (a Redis
# restart, its idle timeout) is replaced at the next check, without a fallback.
is(rcli('CLIENT', 'KILL', 'TYPE', 'normal'), '1', 'the worker\'s idle connection was killed');
my $fallbacks_before = worker_status($node, 'liveness_fallbacks');
my $after_kill = stale_runtime();
rcli('SET', "$prefix$after_kill", '1');
tick($node);
is(runtime_status($after_kill), 'online', 'after the kill the key-holder stayed online');
is(worker_status($node, 'liveness_fallbacks'), $fallbacks_before, 'no fallback: the worker reconnected');

# Rule: the SQL API consults the same source: a key-holder is not returned.
my $api_alive = stale_runtime();
my $api_dead = stale_runtime();
rcli('SET', "$prefix$api_alive", '1');
is($node->safe_psql('postgres',
		"SELECT runtime_id FROM runtime_sweeper.mark_stale_runtimes_offline('1 s')"),
	$api_dead, 'mark_stale_runtimes_offline() flips only the runtime without a key');
is(runtime_status($api_alive), 'online', 'and leaves the key-holder online');

# Rule: 1500 candidates go out as two pipelined MGETs (1000 + 500) and every
# answer maps to its own runtime, also in the second batch.
$node->safe_psql('postgres', qq{
	UPDATE agent_runtime SET status = 'offline' WHERE status = 'online';
	CREATE TABLE batch AS
	SELECT fx_runtime('$ws', 'online', g * interval '1 s' + interval '1 hour') AS id,
	       g
	FROM generate_series(1, 1500) g});
my @keyed = split /\n/, $node->safe_psql('postgres',
	q{SELECT id FROM batch WHERE g % 3 = 0 ORDER BY g});
is(scalar(@keyed), 500, '500 of the 1500 runtimes get a key');
is(rcli('MSET', map { ("$prefix$_", '1') } @keyed), 'OK', 'keys set');
rcli('CONFIG', 'RESETSTAT');
$kept = worker_status($node, 'liveness_kept_alive');
tick($node);
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE r.status = 'online' AND b.g % 3 = 0) || '|' ||
	       count(*) FILTER (WHERE r.status = 'offline' AND b.g % 3 <> 0) || '|' ||
	       count(*)
	FROM batch b JOIN agent_runtime r ON r.id = b.id}),
	'500|1000|1500', 'exactly the 500 key-holders stayed online, the 1000 others went offline');
is(redis_calls('mget'), 2, 'two MGET commands for 1500 candidates');
is(redis_calls('del'), 1, 'one DEL command for 1000 flipped runtimes');
is(worker_status($node, 'liveness_kept_alive'), $kept + 500, 'liveness_kept_alive +500');
is(rcli('DBSIZE'), 500 + 3, 'the keys of the runtimes kept alive remain');
offline_all();

# Rule: the source is switchable with a reload: none ignores the keys.
set_config('liveness', 'none');
my $ignored = stale_runtime();
rcli('SET', "$prefix$ignored", '1');
tick($node);
is(runtime_status($ignored), 'offline', 'liveness = none: the key does not keep it online');
is(worker_status($node, 'liveness'), 'none', 'status shows source none');
set_config('liveness', 'redis');

# Rule: a database number in the URL selects that database; a unix:// URL works.
set_config('redis_url', "redis://127.0.0.1:$redis_port/3");
my $in_db3 = stale_runtime();
my $in_db0 = stale_runtime();
rcli('-n', '3', 'SET', "$prefix$in_db3", '1');
rcli('SET', "$prefix$in_db0", '1');
tick($node);
is(runtime_status($in_db3) . '|' . runtime_status($in_db0), 'online|offline',
	'redis://host:port/3 reads database 3 only');
$node->safe_psql('postgres', qq{UPDATE agent_runtime SET status = 'offline' WHERE id = '$in_db3'});
set_config('redis_url', "unix://$redis_sock");
my $via_sock = stale_runtime();
rcli('SET', "$prefix$via_sock", '1');
tick($node);
is(runtime_status($via_sock), 'online', 'unix:// URL: the key-holder stayed online');
is(worker_status($node, 'liveness_healthy'), 't', 'healthy over the unix socket');
$node->safe_psql('postgres', qq{UPDATE agent_runtime SET status = 'offline' WHERE id = '$via_sock'});
set_config('redis_url', "redis://127.0.0.1:$redis_port");

# Rule: Redis stopped mid-run: the tick falls back to the database window
# (a key cannot help), the status view says so, and the outage is logged
# once however many ticks it lasts.
my $fallbacks = worker_status($node, 'liveness_fallbacks');
$redis->stop;
my $down1 = stale_runtime();
tick($node);
is(runtime_status($down1), 'offline', 'Redis down: the stale runtime went offline (database window)');
is(worker_status($node, 'liveness_healthy'), 'f', 'status: unhealthy');
like(worker_status($node, 'liveness_last_error'),
	qr/^Redis 127\.0\.0\.1:$redis_port: connecting: Connection refused/,
	'status: the last error says the connection was refused');
my $down2 = stale_runtime();
tick($node);
is(runtime_status($down2), 'offline', 'a second tick in the outage falls back too');
is(worker_status($node, 'liveness_fallbacks'), $fallbacks + 2, 'liveness_fallbacks counted both');
is(log_count($node, qr/WARNING:  runtime_sweeper: liveness source "redis" unavailable, using the database window alone/),
	1, 'the outage is logged once, not per tick');
like(slurp_file($node->logfile),
	qr/DETAIL:  Redis 127\.0\.0\.1:$redis_port: connecting: Connection refused/,
	'the log line says why');

# Rule: when Redis is back, the next tick reconnects and trusts the keys again.
$redis->start;
my $back = stale_runtime();
rcli('SET', "$prefix$back", '1');
tick($node);
is(runtime_status($back), 'online', 'Redis back: the key-holder stayed online');
is(worker_status($node, 'liveness_healthy'), 't', 'status: healthy again');
is(log_count($node, qr/LOG:  runtime_sweeper: liveness source "redis" is answering again/), 1,
	'the recovery is logged once');
$node->safe_psql('postgres', qq{UPDATE agent_runtime SET status = 'offline' WHERE id = '$back'});

# Rule: a wrong password falls back with a clear log line, and the password
# never reaches the log (not even in "parameter ... changed to").
$redis->stop;
$redis->start(password => 'right-secret-4711');
my $log_offset = -s $node->logfile;
set_config('redis_url', "redis://:wrong-secret-0815\@127.0.0.1:$redis_port");
like(worker_status($node, q{liveness_healthy || '|' || liveness_last_error}),
	qr/^false\|Redis 127\.0\.0\.1:$redis_port: AUTH failed: WRONGPASS/,
	'right after the reload, before any runtime is stale, the status view reports the wrong password');
my $wrong = stale_runtime();
rcli('SET', "$prefix$wrong", '1');
tick($node);
is(runtime_status($wrong), 'offline', 'wrong password: fallback, the stale runtime went offline');
like(worker_status($node, 'liveness_last_error'),
	qr/^Redis 127\.0\.0\.1:$redis_port: AUTH failed: WRONGPASS/, 'status: AUTH failed: WRONGPASS');
my $log = substr(slurp_file($node->logfile), $log_offset);
like($log, qr/WARNING:  runtime_sweeper: liveness source "redis" unavailable.*\n.*DETAIL:  Redis 127\.0\.0\.1:$redis_port: AUTH failed: WRONGPASS/,
	'the log says AUTH failed');
like($log, qr/parameter "runtime_sweeper\.redis_url" changed to "redis:\/\/:\*+\@127\.0\.0\.1:$redis_port"/,
	'the reload log line shows the URL with the password masked');

# Rule: the right password works.
set_config('redis_url', "redis://:right-secret-4711\@127.0.0.1:$redis_port");
my $authed = stale_runtime();
rcli('SET', "$prefix$authed", '1');
tick($node);
is(runtime_status($authed), 'online', 'right password: the key-holder stayed online');
is(worker_status($node, 'liveness_healthy'), 't', 'status: healthy with AUTH');
$log = slurp_file($node->logfile);
unlike($log, qr/wrong-secret-0815|right-secret-4711/, 'no password anywhere in the server log');

# Rule: no other role can read the password: SHOW is refused to a plain
# role, pg_settings hides the row, and even pg_read_all_settings members and
# superusers see it masked.
$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN;
	CREATE ROLE monitor LOGIN IN ROLE pg_read_all_settings});
my ($ret, $out, $err) = $node->psql('postgres', 'SHOW runtime_sweeper.redis_url',
	extra_params => [ '-U', 'app' ]);
isnt($ret, 0, 'SHOW runtime_sweeper.redis_url fails for a plain role');
like($err, qr/must be superuser or have privileges of pg_read_all_settings/, '... with a permission error');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_settings WHERE name = 'runtime_sweeper.redis_url'},
		extra_params => [ '-U', 'app' ]),
	'0', 'pg_settings has no row for it (plain role)');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_settings WHERE setting ~ 'secret' OR reset_val ~ 'secret'},
		extra_params => [ '-U', 'monitor' ]),
	'0', 'pg_settings shows the password to no pg_read_all_settings member');
is($node->safe_psql('postgres', 'SHOW runtime_sweeper.redis_url', extra_params => [ '-U', 'monitor' ]),
	"redis://:********\@127.0.0.1:$redis_port", 'SHOW masks the password for pg_read_all_settings');
is($node->safe_psql('postgres', q{SELECT current_setting('runtime_sweeper.redis_url')}),
	"redis://:********\@127.0.0.1:$redis_port", 'and for a superuser');
($ret, $out, $err) = $node->psql('postgres',
	"ALTER DATABASE postgres SET runtime_sweeper.redis_url = 'redis://:x\@127.0.0.1:1'");
like($err, qr/cannot be stored per database, role or function/,
	'a URL with a password cannot go into pg_db_role_setting');

$node->stop;
$redis->stop;
done_testing();
