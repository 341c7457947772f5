# liveness = redis with a frozen Redis (SIGSTOP): a tick costs at most redis_timeout, and SIGTERM, SIGHUP and cancels are still answered.
use strict;
use warnings;

use LivenessTest;
use PostgreSQL::Test::Utils;
use RedisServer;
use SweeperTest;
use Test::More;
use Time::HiRes qw(time usleep);

# A real redis-server on loopback (RedisServer thaws and stops it whatever
# happens).
my $redis = RedisServer->new;
my $redis_port = $redis->port;

# Runs redis-cli against our server; returns its output without the newline.
sub rcli { return $redis->cli(@_); }

my $prefix = 'mul:runtime:hb:';

$redis->start;

# ------------------------------------------------------------------ node
# The node (LivenessTest): every tick below comes from wake() or a reload.
my ($node, $ws) = liveness_node('frozen', 'frozen', qq{
runtime_sweeper.liveness = 'redis'
runtime_sweeper.redis_url = 'redis://127.0.0.1:$redis_port'
runtime_sweeper.redis_timeout = '250ms'
});
my $pid = worker_status($node, 'pid');

# Milliseconds of the last tick and of the last stale_runtimes stage.
sub last_durations
{
	return split /\|/, $node->safe_psql('postgres', q{
		SELECT round(extract(epoch FROM s.last_tick_duration) * 1000) || '|' ||
		       round(extract(epoch FROM g.last_duration) * 1000)
		FROM runtime_sweeper.status s
		JOIN runtime_sweeper.stage_status g USING (database)
		WHERE s.database = 'postgres' AND g.stage = 'stale_runtimes'});
}

# Waits until the worker is inside the stale_runtimes stage, waiting on Redis.
sub worker_waits_on_redis
{
	my ($wpid) = @_;
	$node->poll_query_until('postgres', qq{
		SELECT state = 'active' AND query = 'runtime_sweeper: stale_runtimes'
		       AND wait_event_type = 'Extension'
		FROM pg_stat_activity WHERE pid = $wpid})
	  or die 'the worker never waited on Redis';
	return;
}

# Sends the worker a signal (or runs pg_terminate_backend) and returns the
# seconds until the process is gone.
sub time_to_exit
{
	my ($wpid, $how) = @_;
	my $t0 = time;
	if ($how eq 'kill')
	{
		kill 'TERM', $wpid or die "could not signal $wpid";
	}
	else
	{
		$node->safe_psql('postgres', "SELECT pg_terminate_backend($wpid)") eq 't'
		  or die 'pg_terminate_backend failed';
	}
	my $deadline = $t0 + $PostgreSQL::Test::Utils::timeout_default;
	while (kill 0, $wpid)
	{
		die "worker $wpid did not exit" if time > $deadline;
		usleep(5_000);
	}
	return time - $t0;
}

# A healthy tick first, so that the worker holds an open connection.
my $warm = stale_runtime();
rcli('SET', "$prefix$warm", '1');
tick($node);
is(runtime_status($warm), 'online', 'Redis answering: the key-holder stayed online');
$node->safe_psql('postgres', qq{UPDATE agent_runtime SET status = 'offline' WHERE id = '$warm'});

# ------------------------------------------------------------------ cases

# Rule: Redis frozen while the worker holds a connection: the tick falls
# back after redis_timeout (250 ms) plus a small margin, not later.
kill 'STOP', $redis->pid or die 'could not SIGSTOP redis-server';
my $frozen1 = stale_runtime();
tick($node);
my ($tick_ms, $stage_ms) = last_durations();
diag("frozen Redis, kept connection: tick $tick_ms ms, stale_runtimes stage $stage_ms ms (redis_timeout 250 ms)");
cmp_ok($stage_ms, '>=', 250, 'the stage waited for Redis up to the timeout');
cmp_ok($tick_ms, '<', 250 + 500, 'the whole tick finished within the timeout plus 500 ms');
is(runtime_status($frozen1), 'offline', 'fallback: the stale runtime went offline by the database window');
like(worker_status($node, 'liveness_last_error'),
	qr/^Redis 127\.0\.0\.1:$redis_port: MGET: no answer within 250 ms/,
	'status: MGET got no answer within the timeout');
is(worker_status($node, 'liveness_healthy'), 'f', 'status: unhealthy');

# Rule: the same with a new connection (the kernel still accepts it): the
# connect succeeds and the first command times out; still one timeout.
my $frozen2 = stale_runtime();
tick($node);
($tick_ms, $stage_ms) = last_durations();
diag("frozen Redis, new connection: tick $tick_ms ms, stale_runtimes stage $stage_ms ms (redis_timeout 250 ms)");
cmp_ok($tick_ms, '<', 250 + 500, 'a reconnecting tick also finished within the timeout plus 500 ms');
is(runtime_status($frozen2), 'offline', 'and fell back');

# Rule: the SQL API in a session is bounded by the timeout the same way, and
# the session is told (WARNING) why it fell back.
my $frozen3 = stale_runtime();
my $t0 = time;
my ($ret, $out, $err) = $node->psql('postgres', q{
	SET runtime_sweeper.redis_timeout = '300ms';
	SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline('1 s');});
my $api_ms = int((time - $t0) * 1000);
diag("frozen Redis, mark_stale_runtimes_offline() in a session: $api_ms ms (redis_timeout 300 ms)");
is($out, '1', 'mark_stale_runtimes_offline() fell back and flipped the runtime');
like($err, qr/WARNING:  runtime_sweeper: liveness source "redis" unavailable/, 'the session got the WARNING');
cmp_ok($api_ms, '<', 300 + 1000, 'the call (with psql start-up) returned within the timeout plus a second');

# Rule: a reload (SIGHUP) that arrives while the worker waits on a frozen
# Redis takes effect at the latest when the timeout expires.
set_config('redis_timeout', '3s');
my $frozen4 = stale_runtime();
$node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()');
worker_waits_on_redis($pid);
$t0 = time;
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET runtime_sweeper.enabled = off; SELECT pg_reload_conf();});
$node->poll_query_until('postgres',
	q{SELECT state = 'paused' FROM runtime_sweeper.status WHERE database = 'postgres'})
  or die 'the worker never paused';
my $hup_s = time - $t0;
diag(sprintf('SIGHUP during a frozen-Redis wait (redis_timeout 3 s): answered after %.3f s', $hup_s));
cmp_ok($hup_s, '<', 3 + 1, 'the reload was answered within the timeout plus a second');
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET runtime_sweeper.enabled = on; SELECT pg_reload_conf();});
$node->poll_query_until('postgres',
	q{SELECT state <> 'paused' FROM runtime_sweeper.status WHERE database = 'postgres'})
  or die 'the worker never resumed';

# Rule: SIGTERM while the worker waits on a frozen Redis ends it at once,
# without waiting for the (3 s) timeout.
my $frozen5 = stale_runtime();
$node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()');
worker_waits_on_redis($pid);
my $term_s = time_to_exit($pid, 'kill');
diag(sprintf('SIGTERM during a frozen-Redis wait (redis_timeout 3 s): worker gone after %.3f s', $term_s));
cmp_ok($term_s, '<', 2, 'kill -TERM ended the worker well before the timeout');
is(runtime_status($frozen5), 'online', 'the interrupted stage changed nothing');

# Rule: the restarted worker runs into the frozen Redis again, and
# pg_terminate_backend() ends it just as promptly.
my $pid2 = $node->poll_query_until('postgres', qq{
	SELECT pid IS NOT NULL AND pid <> $pid FROM runtime_sweeper.status WHERE database = 'postgres'})
  ? worker_status($node, 'pid') : die 'the worker was not restarted';
my $frozen6 = stale_runtime();
$node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()');
worker_waits_on_redis($pid2);
$term_s = time_to_exit($pid2, 'terminate');
diag(sprintf('pg_terminate_backend() during a frozen-Redis wait: worker gone after %.3f s', $term_s));
cmp_ok($term_s, '<', 2, 'pg_terminate_backend() ended the worker well before the timeout');

# Rule: when Redis thaws, the next tick trusts the keys again.
kill 'CONT', $redis->pid;
is(rcli('PING'), 'PONG', 'Redis answers again');
my $pid3 = $node->poll_query_until('postgres', qq{
	SELECT pid IS NOT NULL AND pid <> $pid2 FROM runtime_sweeper.status WHERE database = 'postgres'})
  ? worker_status($node, 'pid') : die 'the worker was not restarted';
set_config('redis_timeout', '250ms');
offline_all();
my $thawed = stale_runtime();
rcli('SET', "$prefix$thawed", '1');
tick($node);
is(runtime_status($thawed), 'online', 'thawed Redis: the key-holder stayed online');
is(worker_status($node, 'liveness_healthy'), 't', 'status: healthy again');

$node->stop;
$redis->stop;
done_testing();
