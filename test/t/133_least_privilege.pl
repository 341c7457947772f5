# Least privilege: the worker sweeps everything as a plain role with exactly the GRANTs of docs/operations.md, each of which is needed; the SQL API is closed to PUBLIC and opened by the documented roles.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# The application lives in schema app; the worker starts as the superuser
# and is switched to the documented role below (runtime_sweeper.role needs
# a restart).
my $node = sweeper_node('least_priv', fixture => 0, conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
runtime_sweeper.app_schema = 'app'
runtime_sweeper.event_log = on
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql('CREATE SCHEMA app');
{
	my ($out, $err);
	$node->psql('postgres', undef, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'ON_ERROR_STOP=1', '-1', '-c', 'SET search_path = app',
			'-f', fixture_path('app_schema.sql'), '-f', fixture_path('sample_data.sql') ]) == 0
	  or BAIL_OUT("fixture: $err");
}
# Hardening an operator may have done: no CONNECT for PUBLIC.
sql('REVOKE CONNECT ON DATABASE postgres FROM PUBLIC');

# The GRANT blocks exactly as docs/operations.md prints them.
my $docs = slurp_file(abs_path(dirname(__FILE__) . '/../../docs/operations.md'));
my ($worker_grants) = $docs =~ /<!-- worker-grants -->\s*```sql\n(.*?)```/s
  or BAIL_OUT('docs/operations.md has no worker-grants block');
my ($ops_grants) = $docs =~ /<!-- ops-grants -->\s*```sql\n(.*?)```/s
  or BAIL_OUT('docs/operations.md has no ops-grants block');
$worker_grants =~ s/\bappdb\b/postgres/g;
sql($worker_grants);

# Each privilege of the block, one per (privilege, object) pair, for the
# revoke-one-at-a-time check below.
my @privileges;
for my $line (split /\n/, $worker_grants)
{
	next unless $line =~ /^GRANT (.+?) ON (.+?) TO runtime_sweeper_worker;$/;
	my ($privs, $objs) = ($1, $2);
	my $kind = '';
	$kind = $1 if $objs =~ s/^(DATABASE|SCHEMA|FUNCTION) //;
	for my $priv (split /, /, $privs)
	{
		for my $obj (split /, /, $objs)
		{
			push @privileges, "$priv ON " . ($kind ? "$kind " : '') . $obj;
		}
	}
}
cmp_ok(scalar(@privileges), '>=', 15, 'the documented block lists the worker\'s privileges (' . scalar(@privileges) . ')');

# Restart with the worker as that role.
sql("ALTER SYSTEM SET runtime_sweeper.role = 'runtime_sweeper_worker'");
$node->restart;
my $pid = expect_worker_pid($node);
is(sql(qq{SELECT a.usename || ' ' || r.rolsuper || ' ' || r.rolbypassrls
		  FROM pg_stat_activity a JOIN pg_roles r ON r.rolname = a.usename WHERE a.pid = $pid}),
	'runtime_sweeper_worker false false', 'the worker runs as the plain documented role');
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker never ticked as runtime_sweeper_worker';
ok(log_count($node, qr/runtime_sweeper: an index would make the sweep cheaper: CREATE INDEX CONCURRENTLY \S+ ON app\./) >= 1,
	'the index advice (missing_indexes()) works as that role');

# Work for every stage and every step of failed-task handling, labelled:
#  - a stale online runtime with a running task on an issue (flip, retry)
#  - an offline runtime with a dispatched task of a chat session (offline_tasks)
#  - a dispatched task past the timeout on its last attempt, of an autopilot
#    run, on an in_progress issue (stale_tasks, no retry, issue rollback)
#  - a queued task past its TTL with a quick_create context (queued_expiry)
#  - an offline runtime silent for 30 days without agents (runtime_gc)
sql(q{
	CREATE FUNCTION app.make_work(label text) RETURNS void LANGUAGE plpgsql
	SET search_path = app AS $$
	DECLARE
		ws uuid := fx_workspace(label);
		r1 uuid := fx_runtime(ws, 'online', '1 hour');
		r2 uuid := fx_runtime(ws, 'offline', '1 min');
		r3 uuid := fx_runtime(ws, 'online', NULL);
		a1 uuid := fx_agent(ws, r1, 'a1', 'working');
		a2 uuid := fx_agent(ws, r2, 'a2', 'working');
		a3 uuid := fx_agent(ws, r3, 'a3', 'working');
		t uuid;
	BEGIN
		PERFORM fx_task(a1, r1, fx_issue(ws), 'running', '1 min');
		t := fx_task(a2, r2, NULL, 'dispatched', '1 min');
		UPDATE agent_task_queue SET chat_session_id = fx_chat_session(ws, a2) WHERE id = t;
		t := fx_task(a3, r3, fx_issue(ws), 'dispatched', '1 hour', 1, 1);
		UPDATE agent_task_queue SET autopilot_run_id = fx_autopilot_run(ws) WHERE id = t;
		t := fx_task(a3, r3, NULL, 'queued', '3 hours');
		UPDATE agent_task_queue SET context = jsonb_build_object('type', 'quick_create', 'workspace_id', ws)
		WHERE id = t;
		PERFORM fx_runtime(ws, 'offline', '30 days');
	END $$;
});

sub make_work
{
	my ($label) = @_;
	return sql("SELECT app.make_work('$label')");
}

# What happened to a label's work: runtimes by status, tasks by reason (or
# status) and whether they are retries, issues by status, GC candidates left.
sub outcome
{
	my ($label) = @_;
	return sql(qq{
		WITH w AS (SELECT id FROM app.workspace WHERE name = '$label')
		SELECT (SELECT 'runtimes ' || string_agg(s || '=' || n, ' ' ORDER BY s) FROM
		          (SELECT r.status AS s, count(*) AS n FROM app.agent_runtime r, w
		           WHERE r.workspace_id = w.id AND r.last_seen_at IS DISTINCT FROM NULL
		             AND r.last_seen_at > now() - '1 day'::interval GROUP BY 1) x)
		    || ' | tasks ' || (SELECT string_agg(x, ' ' ORDER BY x) FROM
		                        (SELECT coalesce(t.failure_reason, t.status)
		                                || CASE WHEN t.parent_task_id IS NULL THEN '' ELSE '(retry)' END AS x
		                         FROM app.agent_task_queue t JOIN app.agent a ON a.id = t.agent_id, w
		                         WHERE a.workspace_id = w.id) x)
		    || ' | issues ' || (SELECT string_agg(i.status, ' ' ORDER BY i.status) FROM app.issue i, w
		                        WHERE i.workspace_id = w.id)
		    || ' | gc_left ' || (SELECT count(*) FROM app.agent_runtime r, w
		                         WHERE r.workspace_id = w.id AND r.last_seen_at < now() - '7 days'::interval)});
}

my $done = 'runtimes offline=2 | tasks queued(retry) queued(retry) queued_expired runtime_offline runtime_offline timeout | issues in_progress todo | gc_left 0';

# Events of a label's workspace, by type.
sub events
{
	my ($label) = @_;
	return sql(qq{
		SELECT string_agg(t || '=' || n, ' ' ORDER BY t) FROM (
			SELECT e.event->>'type' AS t, count(*) AS n FROM runtime_sweeper.event_log e
			JOIN app.workspace w ON w.id::text = e.event->>'workspace_id' WHERE w.name = '$label'
			GROUP BY 1) s});
}

sub total_errors { return worker_status($node, 'errors'); }

# ---------------------------------------------------------------------------
# Rule: with exactly the documented privileges the whole sweep runs: every
# stage, retries, issue rollback, agent reconcile, workspace resolution
# through issue, chat session, autopilot run and context, GC, event log.
make_work('full');
my $errors0 = total_errors();
tick($node);
is(total_errors(), $errors0, 'no stage failed as runtime_sweeper_worker');
is(outcome('full'), $done,
	'every stage did its work: two runtimes offline, GC done, four tasks failed, two retries, one issue rolled back');
is(events('full'), 'agent:status=4 daemon:register=2 task:failed=4 task:queued=2',
	'every event was sent and logged (workspace resolved through issue, chat session, autopilot run and context)');
is(sql(q{SELECT string_agg(stage || ':' || (runs > 0 AND errors = 0), ' ' ORDER BY stage)
		 FROM runtime_sweeper.stage_status WHERE database = 'postgres'}),
	'offline_tasks:true queued_expiry:true runtime_gc:true stale_runtimes:true stale_tasks:true',
	'each stage ran without error');
is(log_count($node, qr/permission denied/), 0, 'no permission error in the log');

# ---------------------------------------------------------------------------
# Rule: a privilege revoked from the running worker fails only the stages
# that need it: counted in stage_status, logged once, the others run, the
# worker keeps its process, and the next tick after the GRANT succeeds.
sql('REVOKE UPDATE ON app.issue FROM runtime_sweeper_worker');
make_work('revoked');
my $issue_re = qr/runtime_sweeper: stage \w+ failed: permission denied for table issue/;
tick($node) for 1 .. 3;
is(sql(q{SELECT string_agg(stage, ' ' ORDER BY stage) FROM runtime_sweeper.stage_status
		 WHERE database = 'postgres' AND last_error = 'permission denied for table issue'
		   AND last_error_at > now() - '1 min'::interval}),
	'offline_tasks queued_expiry stale_runtimes stale_tasks',
	'the stages that fail tasks (and so roll back issues) fail with permission denied');
is(log_count($node, $issue_re), 4, 'one WARNING per failing stage over three ticks');
is(outcome('revoked'), 'runtimes offline=1 online=1 | tasks dispatched dispatched queued running | issues in_progress in_progress | gc_left 0',
	'runtime_gc, which needs no issue, ran; the failing stages were rolled back');
is(worker_status($node, 'pid'), $pid, 'the worker kept its process');
sql('GRANT UPDATE ON app.issue TO runtime_sweeper_worker');
$errors0 = total_errors();
tick($node);
is(total_errors(), $errors0, 'after the GRANT the next tick succeeds');
is(outcome('revoked'), $done,
	'... and does all the work');

# ---------------------------------------------------------------------------
# Rule: every documented privilege is needed: without any one of them some
# stage fails (or, for the event log's DELETE, trimming stops), and with it
# back everything works again.
my $n = 0;
for my $priv (@privileges)
{
	$n++;
	# CONNECT is checked when the worker connects, EXECUTE on
	# missing_indexes() when it starts: both were exercised by the restart.
	next if $priv =~ /^CONNECT |missing_indexes/;
	sql("REVOKE $priv FROM runtime_sweeper_worker");
	if ($priv =~ /^DELETE ON runtime_sweeper.event_log/)
	{
		# trimming (every tick): keep at most one event
		my $trim_re = qr/WARNING:  runtime_sweeper: trimming the event log failed: permission denied for table event_log/;
		my $again_re = qr/LOG:  runtime_sweeper: trimming the event log succeeds again/;
		my ($warned0, $again0) = (log_count($node, $trim_re), log_count($node, $again_re));
		sql(q{ALTER SYSTEM SET runtime_sweeper.event_log_max_rows = 1; SELECT pg_reload_conf()});
		make_work("w$n");
		tick($node) for 1 .. 2;
		cmp_ok(sql('SELECT count(*) FROM runtime_sweeper.event_log'), '>', 1,
			"without $priv the event log is not trimmed");
		is(log_count($node, $trim_re) - $warned0, 1, '... which is logged, once over two ticks');
		sql("GRANT $priv TO runtime_sweeper_worker");
		tick($node);
		is(sql('SELECT count(*) FROM runtime_sweeper.event_log'), '1',
			"with $priv the event log is trimmed to event_log_max_rows");
		is(log_count($node, $again_re) - $again0, 1, '... and the recovery is logged');
		sql(q{ALTER SYSTEM RESET runtime_sweeper.event_log_max_rows; SELECT pg_reload_conf()});
		tick($node);
		next;
	}
	make_work("w$n");
	$errors0 = total_errors();
	tick($node);
	cmp_ok(total_errors(), '>', $errors0, "without $priv a stage fails");
	sql("GRANT $priv TO runtime_sweeper_worker");
	$errors0 = total_errors();
	tick($node);
	is(total_errors(), $errors0, "with $priv back the next tick succeeds");
}

# ---------------------------------------------------------------------------
# Rule: nothing of the extension is open to PUBLIC, and the documented
# monitor and operator roles open exactly what they say.
is(sql(q{SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'runtime_sweeper'::regnamespace
		 AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))}),
	'0', 'no function of the extension is executable by PUBLIC');
is(sql(q{SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'runtime_sweeper'::regnamespace AND p.prosecdef}),
	'0', 'no function is SECURITY DEFINER');
is(sql(q{SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'runtime_sweeper'::regnamespace
		 AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp')}),
	'0', 'every function pins search_path = pg_catalog, pg_temp');
sql($ops_grants);
sql(q{CREATE ROLE nobody_special LOGIN; CREATE ROLE grafana LOGIN IN ROLE runtime_sweeper_monitor;
	  CREATE ROLE alice LOGIN IN ROLE runtime_sweeper_operator;
	  GRANT CONNECT ON DATABASE postgres TO nobody_special, grafana, alice});

# Runs $q as $role; returns 'ok' or the error's first line.
sub as_role
{
	my ($role, $q) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE $role; $q");
	return $ret == 0 ? 'ok' : ($err =~ /ERROR:\s+(.*)/)[0];
}

like(as_role('nobody_special', 'SELECT * FROM runtime_sweeper.status'),
	qr/permission denied for schema runtime_sweeper/, 'a plain role cannot even see the schema');
is(as_role('grafana', 'SELECT count(*) FROM runtime_sweeper.status'), 'ok', 'monitor reads status');
is(as_role('grafana', 'SELECT count(*) FROM runtime_sweeper.stage_status'), 'ok', 'monitor reads stage_status');
is(as_role('grafana', 'SELECT runtime_sweeper.metrics()'), 'ok', 'monitor scrapes metrics()');
like(as_role('grafana', 'SELECT * FROM runtime_sweeper.sweep()'), qr/permission denied for function sweep/,
	'monitor cannot sweep');
like(as_role('grafana', 'SELECT runtime_sweeper.wake()'), qr/permission denied for function wake/,
	'monitor cannot wake the worker');
like(as_role('grafana', 'SELECT count(*) FROM runtime_sweeper.event_log'), qr/permission denied for table event_log/,
	'monitor cannot read the event log');
make_work('alice');
is(as_role('alice', 'SELECT count(*) FROM runtime_sweeper.preview()'),
	'ok', 'operator runs preview()');
is(as_role('alice', 'SELECT count(*) FROM runtime_sweeper.sweep()'),
	'ok', 'operator runs sweep() with the worker\'s table privileges');
is(outcome('alice'), $done, '... which swept everything');
is(as_role('alice', 'SELECT count(*) FROM runtime_sweeper.events_since(0)'), 'ok', 'operator catches up with events_since()');
is(as_role('alice', 'SELECT runtime_sweeper.wake()'), 'ok', 'operator wakes the worker');

$node->stop;
done_testing();
