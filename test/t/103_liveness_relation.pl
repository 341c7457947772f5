# liveness = relation: a table or a view (any rule) listing live runtimes keeps them online; a missing, slow or forbidden relation falls back to the database window.
use strict;
use warnings;

use IPC::Run;
use LivenessTest;
use SweeperTest;
use Test::More;

# The node (LivenessTest): every tick below comes from wake() or a reload.
my ($node) = liveness_node('relation', 'relation', q{
runtime_sweeper.redis_timeout = '250ms'
});

$node->safe_psql('postgres', q{
	CREATE TABLE alive_runtimes (runtime_id uuid PRIMARY KEY);
	CREATE TABLE heartbeat (runtime_id text PRIMARY KEY, seen_at timestamptz NOT NULL);
	CREATE VIEW recent_heartbeats AS
	    SELECT runtime_id FROM heartbeat WHERE seen_at > now() - interval '30 seconds';
	CREATE SCHEMA ops;
	CREATE VIEW ops.alive AS SELECT runtime_id FROM public.alive_runtimes;
	CREATE TABLE no_column (id uuid);
	CREATE TABLE int_column (runtime_id int);
	CREATE VIEW slow_alive AS SELECT runtime_id FROM alive_runtimes, pg_sleep(5) AS s;
	CREATE ROLE caller LOGIN;
	GRANT USAGE ON SCHEMA runtime_sweeper TO caller;
	GRANT EXECUTE ON FUNCTION runtime_sweeper.mark_stale_runtimes_offline(interval) TO caller;
	GRANT ALL ON ALL TABLES IN SCHEMA public TO caller;
	REVOKE ALL ON alive_runtimes FROM caller;});

# ------------------------------------------------------------------ cases

# Rule: a plain table: a stale runtime listed there stays online, an unlisted
# one goes offline; the status view shows the source, its health and counts.
set_config('liveness', 'relation');
set_config('liveness_relation', 'alive_runtimes');
my $listed = stale_runtime();
my $unlisted = stale_runtime();
$node->safe_psql('postgres', "INSERT INTO alive_runtimes VALUES ('$listed')");
my ($checks, $kept) = split /\|/, worker_status($node, q{liveness_checks || '|' || liveness_kept_alive});
tick($node);
is(runtime_status($listed), 'online', 'table: the listed runtime stayed online');
is(runtime_status($unlisted), 'offline', 'table: the unlisted runtime went offline');
is(worker_status($node, q{liveness || '|' || liveness_healthy || '|' || coalesce(liveness_last_error, '')}),
	'relation|true|', 'status: source relation, healthy, no error');
is(worker_status($node, q{liveness_checks || '|' || liveness_kept_alive}),
	($checks + 1) . '|' . ($kept + 1), 'status: one check, one runtime kept alive');
offline_all();

# Rule: a view can carry any rule; here a heartbeat newer than 30 s, with the
# id stored as text in upper case.
set_config('liveness_relation', 'recent_heartbeats');
my $fresh = stale_runtime();
my $old = stale_runtime();
$node->safe_psql('postgres', qq{
	INSERT INTO heartbeat VALUES (upper('$fresh'), now()), ('$old', now() - interval '5 minutes')});
tick($node);
is(runtime_status($fresh), 'online', 'view with a time rule: a fresh heartbeat (upper-case text id) keeps it online');
is(runtime_status($old), 'offline', 'view with a time rule: an old heartbeat does not');
offline_all();

# Rule: a schema-qualified name is used as written, whatever the search_path
# (the worker's is pg_catalog only).
set_config('liveness_relation', 'ops.alive');
my $in_ops = stale_runtime();
$node->safe_psql('postgres', "INSERT INTO alive_runtimes VALUES ('$in_ops')");
tick($node);
is(runtime_status($in_ops), 'online', 'schema.relation: the listed runtime stayed online');
offline_all();

# Rule: SET in a session checks the relation and its runtime_id column at
# once, with a clear message.
my ($ret, $out, $err) = $node->psql('postgres', q{SET runtime_sweeper.liveness_relation = 'nope'});
like($err, qr/invalid runtime_sweeper\.liveness_relation: relation "public\.nope" does not exist/,
	'SET: a missing relation is refused (unqualified names are looked up in app_schema)');
($ret, $out, $err) = $node->psql('postgres', q{SET runtime_sweeper.liveness_relation = 'no_column'});
like($err, qr/relation "public\.no_column" has no column "runtime_id"/, 'SET: a relation without runtime_id is refused');
($ret, $out, $err) = $node->psql('postgres', q{SET runtime_sweeper.liveness_relation = 'int_column'});
like($err, qr/column "runtime_id" of relation "public\.int_column" must be of type uuid or text/,
	'SET: a runtime_id of another type is refused');
($ret, $out, $err) = $node->psql('postgres', q{SET runtime_sweeper.liveness_relation = 'a.b.c'});
like($err, qr/runtime_sweeper\.liveness_relation "a\.b\.c" is not a relation name/, 'SET: a three-part name is refused');
is($node->safe_psql('postgres', q{SET runtime_sweeper.liveness_relation = 'ops.alive'; SHOW runtime_sweeper.liveness_relation}),
	'ops.alive', 'SET: a good relation is accepted');
($ret, $out, $err) = $node->psql('postgres',
	q{ALTER DATABASE postgres SET runtime_sweeper.liveness_relation = 'not_yet'});
is($ret, 0, 'ALTER DATABASE SET accepts a relation that does not exist yet');
like($err, qr/NOTICE:  runtime_sweeper\.liveness_relation: relation "public\.not_yet" does not exist/,
	'... with a NOTICE');
$node->safe_psql('postgres', q{ALTER DATABASE postgres RESET runtime_sweeper.liveness_relation});

# Rule: postgresql.conf can name a relation that does not exist (no catalog
# at reload); the worker then falls back, shows the error in the status
# view, and logs it once for the whole outage.
my $warnings = log_count($node, qr/WARNING:  runtime_sweeper: liveness source "relation" unavailable/);
my $recoveries = log_count($node, qr/LOG:  runtime_sweeper: liveness source "relation" is answering again/);
set_config('liveness_relation', 'missing_view');
is(worker_status($node, q{liveness_healthy || '|' || liveness_last_error}),
	'false|relation "public.missing_view" does not exist',
	'right after the reload, before any runtime is stale, the status view reports the missing relation');
is(log_count($node, qr/WARNING:  runtime_sweeper: liveness source "relation" unavailable.*\n.*DETAIL:  relation "public\.missing_view" does not exist/),
	1, '... and so does the log');
my $m1 = stale_runtime();
tick($node);
my $m2 = stale_runtime();
tick($node);
is(runtime_status($m1) . '|' . runtime_status($m2), 'offline|offline',
	'missing relation: both ticks fell back to the database window');
is(worker_status($node, 'liveness_healthy'), 'f', 'status: unhealthy');
like(worker_status($node, 'liveness_last_error'), qr/relation "public\.missing_view" does not exist/,
	'status: the last error names the missing relation');
is(log_count($node, qr/WARNING:  runtime_sweeper: liveness source "relation" unavailable/) - $warnings, 1,
	'the outage is logged once');
$node->safe_psql('postgres', q{CREATE VIEW missing_view AS SELECT runtime_id FROM alive_runtimes});
my $m3 = stale_runtime();
$node->safe_psql('postgres', "INSERT INTO alive_runtimes VALUES ('$m3')");
tick($node);
is(runtime_status($m3), 'online', 'once the view exists, it keeps its runtime online');
is(log_count($node, qr/LOG:  runtime_sweeper: liveness source "relation" is answering again/) - $recoveries, 1,
	'the recovery is logged once');
offline_all();

# Rule: a relation slower than the timeout (redis_timeout, 250 ms) is
# cancelled: the tick falls back within the timeout plus a margin.
set_config('liveness_relation', 'slow_alive');
my $slow = stale_runtime();
$node->safe_psql('postgres', "INSERT INTO alive_runtimes VALUES ('$slow')");
tick($node);
my $stage_ms = stage_ms();
diag("relation slower than the timeout: stale_runtimes stage took $stage_ms ms (redis_timeout 250 ms)");
cmp_ok($stage_ms, '>=', 250, 'the stage waited up to the timeout');
cmp_ok($stage_ms, '<', 250 + 500, 'and not much longer');
is(runtime_status($slow), 'offline', 'slow relation: fell back to the database window');
like(worker_status($node, 'liveness_last_error'), qr/: no answer within 250 ms/, 'status: no answer within 250 ms');
offline_all();

# Rule: a cancel that is not the timer's (pg_cancel_backend) cancels the
# caller's statement instead of being taken for a fallback.
my $cancelled = stale_runtime();
my ($c_in, $c_out, $c_err) = ('', '', '');
my $h = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', q{
		SET runtime_sweeper.liveness_relation = 'slow_alive';
		SET runtime_sweeper.redis_timeout = '60s';
		SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline('1 s');} ],
	'<', \$c_in, '>', \$c_out, '2>', \$c_err);
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE query LIKE '%mark_stale_runtimes_offline%' AND wait_event = 'PgSleep'})
  or die 'the session never reached the slow relation';
$node->safe_psql('postgres', q{
	SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	WHERE query LIKE '%mark_stale_runtimes_offline%' AND wait_event = 'PgSleep'});
$h->finish;
like($c_err, qr/canceling statement due to user request/, 'the caller\'s statement was cancelled');
is(runtime_status($cancelled), 'online', 'and changed nothing');
offline_all();

# Rule: permission denied on the relation (a non-superuser caller of the SQL
# API) is a fallback, not an error of the call.
set_config('liveness_relation', 'alive_runtimes');
my $denied = stale_runtime();
$node->safe_psql('postgres', "INSERT INTO alive_runtimes VALUES ('$denied')");
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline('1 s')},
	extra_params => [ '-U', 'caller' ]);
is($ret, 0, 'the call succeeded');
is($out, '1', 'the listed runtime was flipped by the database window');
like($err, qr/liveness source "relation" unavailable.*\n.*DETAIL:  permission denied for table alive_runtimes/,
	'the caller is told why');

$node->stop;
done_testing();
