# Hijack and injection: objects planted on the search_path never run in a sweep, and identifier settings are quoted, never executed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# The application lives in schema app.
my $node = sweeper_node('injection', fixture => 0, conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
runtime_sweeper.app_schema = 'app'
runtime_sweeper.event_log = on
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Loads the fixture into a schema (created here, name given as an identifier).
sub load_into
{
	my ($schema_ident) = @_;
	sql("CREATE SCHEMA $schema_ident");
	my ($out, $err);
	$node->psql('postgres', undef, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'ON_ERROR_STOP=1', '-1', '-c', "SET search_path = $schema_ident",
			'-f', fixture_path('app_schema.sql'), '-f', fixture_path('sample_data.sql') ]) == 0
	  or BAIL_OUT("fixture: $err");
	return;
}
load_into('app');
sql('CREATE TABLE public.victim (x int); INSERT INTO public.victim VALUES (1)');

sub victim_ok { return sql("SELECT to_regclass('public.victim') IS NOT NULL AND (SELECT count(*) FROM public.victim) = 1"); }

# A stale runtime (with a running task of an issue) and a fresh one, in app.
sub make_work
{
	my ($schema_ident) = @_;
	$schema_ident //= 'app';
	return split /\|/, sql(qq{
		SET search_path = $schema_ident;
		WITH ws AS (SELECT fx_workspace() AS ws),
		     r AS (SELECT ws, fx_runtime(ws, 'online', '1 hour') AS stale, fx_runtime(ws) AS fresh FROM ws),
		     a AS (SELECT ws, stale, fresh, fx_agent(ws, stale, 'a', 'working') AS ag FROM r)
		SELECT stale, fresh, fx_task(ag, stale, fx_issue(ws), 'running', '1 min') FROM a});
}

# ---------------------------------------------------------------------------
# Planted objects.  mallory may create objects in public (an old default);
# she plants look-alikes of what a sweep uses, each of which records that it
# ran and tries to make mallory a superuser, then behaves like the original,
# plus tables named like the application's in public.
sql(q{
	CREATE ROLE mallory LOGIN;
	GRANT CREATE, USAGE ON SCHEMA public TO mallory;
	CREATE TABLE public.hijacked (what text, by_role name);
	GRANT INSERT ON public.hijacked TO PUBLIC;
});
sql(q{
	SET ROLE mallory;
	CREATE FUNCTION public.pwn(what text) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.hijacked VALUES (what || ' in ' || pg_catalog.current_setting('application_name'), current_user);
		BEGIN
			EXECUTE 'ALTER ROLE mallory SUPERUSER';
		EXCEPTION WHEN OTHERS THEN NULL;
		END;
	END $$;
	CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.pwn('now()'); RETURN pg_catalog.now() + interval '10 years'; END $$;
	CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.pwn('gen_random_uuid()'); RETURN '00000000-0000-0000-0000-000000000001'; END $$;
	CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.pwn('lower()'); RETURN pg_catalog.lower($1); END $$;
	CREATE FUNCTION public.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.pwn('jsonb_typeof()'); RETURN 'object'; END $$;
	CREATE FUNCTION public.to_char(timestamp, text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.pwn('to_char()'); RETURN 'hijacked'; END $$;
	CREATE FUNCTION public.count(anyelement) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.pwn('count()'); RETURN 0; END $$;
	CREATE FUNCTION public.uuid_eq(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.pwn('= for uuid'); RETURN true; END $$;
	CREATE OPERATOR public.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = public.uuid_eq);
	CREATE FUNCTION public.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.pwn('= for text'); RETURN pg_catalog.texteq($1, $2); END $$;
	CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.text_eq);
});
# (the decoy tables copy app's shape, which mallory cannot read: made for her)
sql(q{
	CREATE TABLE public.agent_runtime (LIKE app.agent_runtime INCLUDING DEFAULTS);
	CREATE TABLE public.agent_task_queue (LIKE app.agent_task_queue INCLUDING DEFAULTS);
	CREATE TABLE public.issue (LIKE app.issue INCLUDING DEFAULTS);
	ALTER TABLE public.agent_runtime OWNER TO mallory;
	ALTER TABLE public.agent_task_queue OWNER TO mallory;
	ALTER TABLE public.issue OWNER TO mallory;
	INSERT INTO public.agent_runtime (workspace_id, name, provider, status, last_seen_at)
	VALUES (pg_catalog.gen_random_uuid(), 'decoy', 'claude', 'online', pg_catalog.now() - interval '1 day');
	INSERT INTO public.agent_task_queue (agent_id, runtime_id, status, dispatched_at)
	VALUES (pg_catalog.gen_random_uuid(), pg_catalog.gen_random_uuid(), 'dispatched', pg_catalog.now() - interval '1 day');
});
sql('TRUNCATE public.hijacked');
# The worker runs as a superuser role of its own whose sessions put
# mallory's schema before pg_catalog (the test's own sessions keep the
# default path, so that they do not run mallory's objects themselves).
sql(q{CREATE ROLE sweeper_su SUPERUSER LOGIN;
	  ALTER ROLE sweeper_su SET search_path = public, pg_catalog;
	  ALTER SYSTEM SET runtime_sweeper.role = 'sweeper_su'});
$node->restart;
my $wpid = expect_worker_pid($node);
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker never ticked';
is(sql("SELECT usename FROM pg_stat_activity WHERE pid = $wpid"), 'sweeper_su', 'the worker runs as sweeper_su');
is(sql(q{SELECT setconfig FROM pg_db_role_setting WHERE setrole = 'sweeper_su'::regrole}),
	'{"search_path=public, pg_catalog"}', 'whose sessions resolve public before pg_catalog');

# The trap is armed: an ordinary session of sweeper_su runs mallory's now().
is($node->safe_psql('postgres', q{SELECT now() > pg_catalog.now() + interval '1 year'},
		extra_params => [ '-U', 'sweeper_su' ]),
	't', 'a plain session of the worker\'s role would run the planted now()');
is(sql(q{SELECT string_agg(what, ', ') FROM public.hijacked}) . ' ' . sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}),
	'now() in 134_injection.pl t', '... which records itself and makes mallory a superuser');
sql(q{TRUNCATE public.hijacked; ALTER ROLE mallory NOSUPERUSER});

# Rule: the worker's sweep resolves nothing in public: the stale runtime
# goes offline, the fresh one stays, the task gets a real retry, the events
# carry real timestamps, and the decoy tables are untouched.
my ($stale, $fresh, $task) = make_work();
tick($node);
is(sql(qq{SELECT pg_catalog.string_agg(status, ' ' ORDER BY status) FROM app.agent_runtime WHERE id IN ('$stale', '$fresh')}),
	'offline online', 'the worker flipped the stale runtime only (no planted now())');
is(sql(qq{SELECT (id <> '00000000-0000-0000-0000-000000000001')::text || ' ' || status FROM app.agent_task_queue
		  WHERE parent_task_id = '$task'}), 'true queued', 'the retry has a real random id (no planted gen_random_uuid())');
like(sql(q{SELECT e.event->'payload'->'agent'->>'updated_at' FROM runtime_sweeper.event_log e
		   WHERE e.event->>'type' = 'agent:status' ORDER BY e.id DESC LIMIT 1}),
	qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'the agent:status timestamps are real (no planted to_char())');
is(sql(q{SELECT status FROM public.agent_runtime}) . ' ' . sql(q{SELECT status FROM public.agent_task_queue}),
	'online dispatched', 'the decoy tables in public were not swept');
is(sql(q{SELECT coalesce(string_agg(DISTINCT what, ', '), 'none') FROM public.hijacked}), 'none',
	'no planted function or operator ran in the worker');
is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f', 'mallory is not a superuser');
is(worker_status($node, 'errors'), '0', 'and no stage failed');

# Rule: the SQL API, called by a superuser whose own search_path puts
# mallory's schema first (and who has a temporary table named like an
# application table), resolves nothing planted either.
($stale, $fresh, $task) = make_work();
sql(q{TRUNCATE public.hijacked});
my $agent = sql(qq{SELECT agent_id FROM app.agent_task_queue WHERE id = '$task'});
# (the session's own statements below avoid every planted name)
my $api = sql(qq{
	SET search_path = public, pg_catalog;
	CREATE TEMP TABLE agent_runtime (LIKE app.agent_runtime);
	SELECT pg_catalog.string_agg(stage || '=' || coalesce(affected::text, 'error'), ' ')
	FROM runtime_sweeper.sweep();
	SELECT pg_catalog.count(*) FROM runtime_sweeper.preview();
	SELECT pg_catalog.count(*) FROM runtime_sweeper.missing_indexes();
	SELECT runtime_sweeper.refresh_agent_status('$agent'::uuid);});
like($api, qr/^stale_runtimes=1 offline_tasks=\d+ stale_tasks=0 queued_expiry=0 runtime_gc=0\n/,
	'sweep() through the API flipped the one stale runtime');
is(sql(qq{SELECT pg_catalog.string_agg(status, ' ' ORDER BY status) FROM app.agent_runtime WHERE id IN ('$stale', '$fresh')}),
	'offline online', 'only the stale runtime went offline');
is(sql(q{SELECT coalesce(string_agg(DISTINCT what, ', '), 'none') FROM public.hijacked}), 'none',
	'no planted object ran in sweep(), preview(), missing_indexes() or refresh_agent_status()');
is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f', 'mallory is still not a superuser');

# ---------------------------------------------------------------------------
# Identifier settings carrying SQL.  After each step: the victim table is
# still there, and no "syntax error" (a sign of SQL pasted unquoted) was
# ever logged.
my $evil_schema = q{x"; DROP TABLE public.victim; --};
(my $evil_schema_ident = $evil_schema) =~ s/"/""/g;
$evil_schema_ident = qq{"$evil_schema_ident"};

# Rule: app_schema through the SQL API: a clean "does not exist" per stage.
my ($ret, $out, $err) = $node->psql('postgres', qq{
	SET runtime_sweeper.app_schema = '$evil_schema';
	SELECT pg_catalog.string_agg(stage || '=' || coalesce(affected::text, 'error'), ' ') FROM runtime_sweeper.sweep();});
is($out, 'stale_runtimes=error offline_tasks=error stale_tasks=error queued_expiry=error runtime_gc=error',
	'sweep() with an injecting app_schema: every stage fails cleanly');
like($err, qr/WARNING:  runtime_sweeper: stage stale_runtimes failed: relation "x""; DROP TABLE public\.victim; --\.agent_runtime" does not exist|schema "x""; DROP TABLE public.victim; --" does not exist|relation "x"; DROP TABLE public.victim; --.agent_runtime" does not exist/,
	'... with "does not exist" naming the quoted schema');
is(victim_ok(), 't', 'the victim table survived');

# Rule: app_schema for the worker: it waits for that schema, then sweeps the
# schema of exactly that name once it exists.
sql(qq{ALTER SYSTEM SET runtime_sweeper.app_schema = '$evil_schema'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{
	SELECT runtime_sweeper.wake() AND state = 'waiting for schema'
	FROM runtime_sweeper.status WHERE database = 'postgres'})
  or die 'the worker did not wait for the odd schema';
is(victim_ok(), 't', 'the waiting worker executed nothing');
load_into($evil_schema_ident);
($stale, $fresh, $task) = make_work($evil_schema_ident);
$node->poll_query_until('postgres', qq{
	SELECT runtime_sweeper.wake() AND status = 'offline' FROM $evil_schema_ident.agent_runtime WHERE id = '$stale'})
  or die 'the worker never swept the schema with the odd name';
pass('the worker swept the schema named x"; DROP TABLE public.victim; --');
is(sql(qq{SELECT status FROM $evil_schema_ident.agent_task_queue WHERE id = '$task'}), 'failed',
	'... including its task');
is(victim_ok(), 't', 'the victim table survived');
like(sql(q{SELECT string_agg(ddl, E'\n') FROM runtime_sweeper.missing_indexes()}),
	qr/^CREATE INDEX CONCURRENTLY \w+ ON "x""; DROP TABLE public\.victim; --"\.agent_runtime /m,
	'missing_indexes() prints the schema quoted');
sql(q{ALTER SYSTEM RESET runtime_sweeper.app_schema; SELECT pg_reload_conf()});

# Rule: notify_channel and analytics_channel are channel names, never SQL:
# events arrive on the channel of exactly that name, nothing on "evil".
my $evil_notify = q{a"; NOTIFY evil; --};
my $evil_analytics = q{b"; NOTIFY evil; --};
(my $notify_ident = $evil_notify) =~ s/"/""/g;
(my $analytics_ident = $evil_analytics) =~ s/"/""/g;
my $listener = $node->background_psql('postgres');
$listener->query_safe(qq{LISTEN evil; LISTEN "$notify_ident"; LISTEN "$analytics_ident"});
sql(qq{ALTER SYSTEM SET runtime_sweeper.notify_channel = '$evil_notify';
	   ALTER SYSTEM SET runtime_sweeper.analytics_channel = '$evil_analytics';
	   ALTER SYSTEM SET runtime_sweeper.app_schema = 'app';
	   SELECT pg_reload_conf()});
($stale, $fresh, $task) = make_work();
$node->poll_query_until('postgres', qq{
	SELECT runtime_sweeper.wake() AND status = 'offline' FROM app.agent_runtime WHERE id = '$stale'})
  or die 'the worker did not sweep with the odd channels';
# and the same through the API, with session settings
($stale, $fresh, $task) = make_work();
sql(qq{SET runtime_sweeper.notify_channel = '$evil_notify';
	   SET runtime_sweeper.analytics_channel = '$evil_analytics';
	   SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline()});
my $heard = $listener->query_safe('SELECT 1');
my %by_channel;
$by_channel{$1}++ while $heard =~ /^Asynchronous notification "(.*)" with payload ".*" received from server process with PID \d+\.$/mg;
is($by_channel{'evil'} // 0, 0, 'nothing was ever notified on channel "evil"');
cmp_ok($by_channel{$evil_notify} // 0, '>=', 6,
	"events arrived on the channel named $evil_notify (worker and API)");
is($by_channel{$evil_analytics} // 0, 2, "two runtime_offline records on the channel named $evil_analytics");
$listener->quit;
sql(q{ALTER SYSTEM RESET runtime_sweeper.notify_channel; ALTER SYSTEM RESET runtime_sweeper.analytics_channel;
	  SELECT pg_reload_conf()});

# Rule: liveness_relation is parsed as relation or schema.relation: SQL
# after a name is refused with a clear message, by SET and ALTER SYSTEM.
for my $bad (q{alive; DROP TABLE public.victim; --}, q{app.alive"; DROP TABLE public.victim; --},
	q{alive) l; DROP TABLE public.victim; --})
{
	($ret, $out, $err) = $node->psql('postgres', qq{SET runtime_sweeper.liveness_relation = '$bad'});
	like($err, qr/ERROR:  runtime_sweeper.liveness_relation ".*" is not a relation name/,
		"SET liveness_relation = '$bad' is refused");
	($ret, $out, $err) = $node->psql('postgres', qq{ALTER SYSTEM SET runtime_sweeper.liveness_relation = '$bad'});
	like($err, qr/ERROR:  runtime_sweeper.liveness_relation ".*" is not a relation name/,
		'... and so is ALTER SYSTEM');
}
is(victim_ok(), 't', 'the victim table survived');

# Rule: a quoted relation name is used as exactly that relation: a table
# literally named alive"; DROP TABLE public.victim; -- keeps its runtime online.
my $evil_rel = q{alive"; DROP TABLE public.victim; --};
(my $evil_rel_ident = $evil_rel) =~ s/"/""/g;
$evil_rel_ident = qq{"$evil_rel_ident"};
($ret, $out, $err) = $node->psql('postgres', qq{SET runtime_sweeper.liveness_relation = '$evil_rel_ident'});
like($err, qr/relation "app\.alive"; DROP TABLE public\.victim; --" does not exist/,
	'a quoted name of a relation that does not exist: a clean "does not exist"');
($stale, $fresh, $task) = make_work();
sql(qq{CREATE TABLE app.$evil_rel_ident (runtime_id uuid); INSERT INTO app.$evil_rel_ident VALUES ('$stale')});
my $kept0 = worker_status($node, 'liveness_kept_alive');
sql(qq{ALTER SYSTEM SET runtime_sweeper.liveness = 'relation';
	   ALTER SYSTEM SET runtime_sweeper.liveness_relation = '$evil_rel_ident';
	   SELECT pg_reload_conf()});
$node->poll_query_until('postgres', qq{
	SELECT runtime_sweeper.wake() AND liveness_kept_alive > $kept0
	FROM runtime_sweeper.status WHERE database = 'postgres'})
  or die 'the relation with the odd name was never asked';
is(sql(qq{SELECT status FROM app.agent_runtime WHERE id = '$stale'}), 'online',
	'the runtime listed in that relation was kept online');
is(worker_status($node, 'liveness_healthy || \' \' || coalesce(liveness_last_error, \'-\')'), 'true -',
	'the source is healthy');
is(victim_ok(), 't', 'the victim table survived');

is(log_count($node, qr/syntax error/), 0, 'no syntax error was ever logged: nothing was pasted unquoted');

$node->stop;
done_testing();
