# Soak: concurrent heartbeats, claims, starts, completions and dying daemons against a worker sweeping every second; every invariant holds at the end.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# Short thresholds so that every stage has work within seconds; the soak
# itself lasts $seconds (loopback, bounded).
my $seconds = 40;
my $node = sweeper_node('soak', conf => q{
runtime_sweeper.interval = '1s'
runtime_sweeper.stale_threshold = '3s'
runtime_sweeper.dispatch_timeout = '4s'
runtime_sweeper.running_timeout = '8s'
runtime_sweeper.queued_ttl = '10s'
runtime_sweeper.offline_ttl = '15s'
runtime_sweeper.event_log = on
max_connections = 40
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

# The cast: 20 daemons (runtimes) with two agents each, 3 runtimes without
# agents (GC candidates once they die), 200 issues; small numbered maps let
# the pgbench scripts pick at random.  A trigger records every online ->
# offline flip with the heartbeat it overruled.
sql(q{
	CREATE TABLE soak_rt (n int PRIMARY KEY, id uuid NOT NULL, alive bool NOT NULL DEFAULT true);
	CREATE TABLE soak_ag (n int PRIMARY KEY, id uuid NOT NULL);
	CREATE TABLE soak_issue (n int PRIMARY KEY, id uuid NOT NULL);
	CREATE TABLE soak_flip (runtime_id uuid, last_seen_at timestamptz, flipped_at timestamptz, by_app text);
	CREATE FUNCTION public.soak_flip() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.soak_flip VALUES (NEW.id, OLD.last_seen_at, pg_catalog.now(),
		                                     pg_catalog.current_setting('application_name'));
		RETURN NULL;
	END $$;
	CREATE TRIGGER soak_flip AFTER UPDATE OF status ON agent_runtime
		FOR EACH ROW WHEN (OLD.status = 'online' AND NEW.status = 'offline') EXECUTE FUNCTION public.soak_flip();
	DO $$
	DECLARE
		ws uuid := fx_workspace('soak');
		rt uuid;
	BEGIN
		FOR n IN 1 .. 23 LOOP
			rt := fx_runtime(ws);
			INSERT INTO soak_rt VALUES (n, rt);
			IF n <= 20 THEN
				INSERT INTO soak_ag VALUES (2 * n - 1, fx_agent(ws, rt, 'agent-' || (2 * n - 1))),
				                           (2 * n, fx_agent(ws, rt, 'agent-' || (2 * n)));
			END IF;
		END LOOP;
		FOR n IN 1 .. 200 LOOP
			INSERT INTO soak_issue VALUES (n, fx_issue(ws, 'todo'));
		END LOOP;
	END $$;
});

# Runtime 23 (no agents) is dead from the start: flipped offline after the
# threshold, collected after offline_ttl.
sql('UPDATE soak_rt SET alive = false WHERE n = 23');

# The clients, as pgbench scripts (one statement each, with relative weights;
# a daemon dies or comes back about once per second in all):
my %scripts = (
	# a live daemon's heartbeat (re-registers it online after a revival)
	heartbeat => [ 3000, q{
\set r random(1, 23)
UPDATE agent_runtime r SET last_seen_at = now(), status = 'online', updated_at = now()
FROM soak_rt s WHERE s.n = :r AND s.alive AND r.id = s.id;
} ],
	# the server queues a task for an agent and an issue
	enqueue => [ 1800, q{
\set a random(1, 40)
\set i random(1, 200)
INSERT INTO agent_task_queue (agent_id, runtime_id, issue_id, status)
SELECT g.id, g.runtime_id, si.id, 'queued' FROM soak_ag sa JOIN agent g ON g.id = sa.id, soak_issue si
WHERE sa.n = :a AND si.n = :i
ON CONFLICT DO NOTHING;
} ],
	# a live daemon claims its oldest queued task
	claim => [ 1800, q{
\set r random(1, 20)
WITH c AS (SELECT t.id FROM agent_task_queue t JOIN soak_rt s ON s.id = t.runtime_id
           WHERE s.n = :r AND s.alive AND t.status = 'queued'
           ORDER BY t.created_at LIMIT 1 FOR UPDATE OF t SKIP LOCKED)
UPDATE agent_task_queue t SET status = 'dispatched', dispatched_at = now() FROM c WHERE t.id = c.id;
} ],
	# a live daemon starts a dispatched task: the issue goes in_progress
	start => [ 1500, q{
\set r random(1, 20)
WITH c AS (SELECT t.id FROM agent_task_queue t JOIN soak_rt s ON s.id = t.runtime_id
           WHERE s.n = :r AND s.alive AND t.status = 'dispatched'
           ORDER BY t.dispatched_at LIMIT 1 FOR UPDATE OF t SKIP LOCKED),
     u AS (UPDATE agent_task_queue t SET status = 'running', started_at = now() FROM c WHERE t.id = c.id
           RETURNING t.issue_id)
UPDATE issue i SET status = 'in_progress', updated_at = now() FROM u WHERE i.id = u.issue_id;
} ],
	# a live daemon completes a running task: the issue is done
	complete => [ 1500, q{
\set r random(1, 20)
WITH c AS (SELECT t.id FROM agent_task_queue t JOIN soak_rt s ON s.id = t.runtime_id
           WHERE s.n = :r AND s.alive AND t.status = 'running'
           ORDER BY t.started_at LIMIT 1 FOR UPDATE OF t SKIP LOCKED),
     u AS (UPDATE agent_task_queue t SET status = 'completed', completed_at = now() FROM c WHERE t.id = c.id
           RETURNING t.issue_id)
UPDATE issue i SET status = 'done', updated_at = now() FROM u WHERE i.id = u.issue_id;
} ],
	# a daemon dies (stops heartbeating, claiming, starting, completing) ...
	die => [ 2, q{
\set r random(1, 22)
UPDATE soak_rt SET alive = false WHERE n = :r;
} ],
	# ... or comes back
	revive => [ 1, q{
\set r random(1, 22)
UPDATE soak_rt SET alive = true WHERE n = :r;
} ],
);
my $dir = PostgreSQL::Test::Utils::tempdir();
my @script_args;
for my $name (sort keys %scripts)
{
	my ($weight, $text) = @{ $scripts{$name} };
	open my $fh, '>', "$dir/$name.sql" or die $!;
	print $fh $text;
	close $fh;
	push @script_args, '-f', "$dir/$name.sql\@$weight";
}

# The listener: every event from before the first client statement.
my $listener = $node->background_psql('postgres');
$listener->set_query_timer_restart();
$listener->query_safe('LISTEN runtime_sweeper');

my $pid = expect_worker_pid($node);
my $ticks0 = worker_status($node, 'ticks');

# Rule (the run): 8 clients for $seconds s while the worker sweeps every second.
my ($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[ 'pgbench', '-n', '-c', '8', '-j', '4', '-T', $seconds, '-R', '1500', '--max-tries', '10',
	  '-h', $node->host, '-p', $node->port, @script_args, 'postgres' ],
	'>', \$out, '2>', \$err);
ok($ok, 'pgbench ran its clients to the end') or diag($err);
my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
my ($failed_tx) = $out =~ /number of failed transactions: (\d+)/;
diag("pgbench: $tx transactions, " . ($failed_tx // 0) . ' failed');
cmp_ok($tx // 0, '>', 1000, 'the clients did real work');

# The final sweep, after the clients stopped; then the worker is paused so
# that the database holds still while it is checked (a pause takes effect
# between ticks: the last tick ran whole).
tick($node);
sql(q{ALTER SYSTEM SET runtime_sweeper.enabled = off; SELECT pg_reload_conf()});
$node->poll_query_until('postgres',
	"SELECT state = 'paused' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker did not pause';
my $ticks = worker_status($node, 'ticks') - $ticks0;
cmp_ok($ticks, '>=', $seconds / 2, "the worker kept sweeping ($ticks ticks)");
is(worker_status($node, 'pid'), $pid, 'the worker kept its process');
my $stage_errors = sql(q{SELECT coalesce(string_agg(stage || ': ' || errors || ' (' || last_error || ')', '; '), '')
		FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND errors > 0});
is($stage_errors, '', 'no stage failed under load');

# What the run did (so that the invariants below are not vacuous).
my %did = split /[=\n]/, sql(q{
	SELECT 'flips=' || (SELECT count(*) FROM soak_flip)
	UNION ALL SELECT 'failed_' || failure_reason || '=' || count(*) FROM agent_task_queue
	          WHERE status = 'failed' GROUP BY failure_reason
	UNION ALL SELECT 'retries=' || count(*) FROM agent_task_queue WHERE parent_task_id IS NOT NULL
	UNION ALL SELECT 'completed=' || count(*) FROM agent_task_queue WHERE status = 'completed'
	UNION ALL SELECT 'collected=' || (23 - count(*)) FROM agent_runtime});
diag(join(', ', map { "$_ $did{$_}" } sort keys %did));
cmp_ok($did{flips} // 0, '>', 0, 'daemons died and were marked offline');
cmp_ok($did{failed_runtime_offline} // 0, '>', 0, 'tasks failed with runtime_offline');
cmp_ok($did{failed_timeout} // 0, '>', 0, 'tasks failed with timeout');
cmp_ok($did{failed_queued_expired} // 0, '>', 0, 'tasks expired in the queue');
cmp_ok($did{retries} // 0, '>', 0, 'retries were created');
cmp_ok($did{completed} // 0, '>', 0, 'tasks were completed');

# Invariant: no runtime whose heartbeat was newer than the threshold was
# marked offline (the trigger saw the heartbeat each flip overruled).
is(sql(q{SELECT count(*) FROM soak_flip WHERE last_seen_at >= flipped_at - interval '3 s' OR last_seen_at IS NULL}),
	'0', 'every flip overruled a heartbeat older than stale_threshold');
is(sql(q{SELECT coalesce(string_agg(DISTINCT by_app, ','), '') FROM soak_flip}), 'runtime_sweeper',
	'only the sweeper flipped runtimes');

# Invariant: every failed task has completed_at, a reason and exactly one
# task:failed event (every task has an issue, so its workspace resolves).
is(sql(q{SELECT count(*) FROM agent_task_queue WHERE status = 'failed'
		 AND (completed_at IS NULL OR failure_reason IS NULL OR error IS NULL)}), '0',
	'every failed task has completed_at, failure_reason and error');
# (the event log as a table, parsed once)
sql(q{CREATE TABLE ev AS SELECT e.id, e.event->>'type' AS type, e.event->>'workspace_id' AS ws,
		  (e.event->'payload'->>'task_id')::uuid AS task_id, (e.event->'payload'->>'agent_id')::uuid AS agent_id,
		  e.event->'payload'->>'failure_reason' AS reason, e.event->'payload'->>'action' AS action
	  FROM runtime_sweeper.event_log e;
	  CREATE INDEX ON ev (task_id); ANALYZE ev});
is(sql(q{SELECT count(*) FROM agent_task_queue t
		 LEFT JOIN (SELECT task_id, count(*) AS n FROM ev WHERE type = 'task:failed' GROUP BY 1) f ON f.task_id = t.id
		 WHERE t.status = 'failed' AND f.n IS DISTINCT FROM 1}), '0',
	'every failed task has exactly one task:failed event')
  or diag(sql(q{SELECT t.id || ' ' || t.failure_reason || ' ' || t.completed_at || ' n=' || coalesce(f.n, 0) || ' retries='
		|| (SELECT count(*) FROM agent_task_queue k WHERE k.parent_task_id = t.id) || ' attempt=' || t.attempt
		FROM agent_task_queue t
		LEFT JOIN (SELECT task_id, count(*) AS n FROM ev WHERE type = 'task:failed' GROUP BY 1) f ON f.task_id = t.id
		WHERE t.status = 'failed' AND f.n IS DISTINCT FROM 1}));
is(sql(q{SELECT count(*) FROM ev LEFT JOIN agent_task_queue t ON t.id = ev.task_id
		 WHERE ev.type = 'task:failed' AND (t.status IS DISTINCT FROM 'failed' OR t.failure_reason IS DISTINCT FROM ev.reason)}),
	'0', 'every task:failed event matches a failed task and its reason');

# Invariant: no task has two retry children; each retry has its task:queued.
is(sql(q{SELECT count(*) FROM (SELECT parent_task_id FROM agent_task_queue WHERE parent_task_id IS NOT NULL
		 GROUP BY 1 HAVING count(*) > 1) d}), '0', 'no task has two retry children');
is(sql(q{SELECT count(*) FROM agent_task_queue k
		 LEFT JOIN (SELECT task_id, count(*) AS n FROM ev WHERE type = 'task:queued' GROUP BY 1) q ON q.task_id = k.id
		 WHERE k.parent_task_id IS NOT NULL AND q.n IS DISTINCT FROM 1}), '0',
	'every retry has exactly one task:queued event');

# Invariant: after the final sweep no issue is in_progress without an active task.
is(sql(q{SELECT count(*) FROM issue i WHERE i.status = 'in_progress' AND NOT EXISTS (
		   SELECT 1 FROM agent_task_queue t WHERE t.issue_id = i.id
		   AND t.status IN ('queued', 'dispatched', 'running', 'waiting_local_directory'))}), '0',
	'no issue is in_progress without an active task');

# Invariant: the listener heard exactly the committed events (event log ids),
# each once, and none about a change the database does not have.
# (a notification reaches psql with the next command after the listener's
# backend sent it: ask until the last logged event has arrived)
my $last_id = sql('SELECT max(id) FROM runtime_sweeper.event_log');
my $heard = '';
for (my $i = 0; $i < 1000 && $heard !~ /^Asynchronous notification "runtime_sweeper" with payload "\{"id":$last_id,/m; $i++)
{
	$heard .= $listener->query_safe('SELECT 1');
}
$listener->quit;
my @payloads = ($heard =~ /^Asynchronous notification "runtime_sweeper" with payload "(.*)" received from server process with PID \d+\.$/mg);
my @ids = map { /^\{"id":(\d+),/ ? $1 : -1 } @payloads;
my %count;
$count{$_}++ for @ids;
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'the listener heard each event once');
is(join(',', sort { $a <=> $b } keys %count),
	sql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM runtime_sweeper.event_log}),
	'the listener heard exactly the events of the event log (' . scalar(@ids) . ')');
is(sql(q{SELECT count(*) FROM ev WHERE NOT CASE ev.type
		   WHEN 'task:failed' THEN EXISTS (SELECT 1 FROM agent_task_queue t
		        WHERE t.id = ev.task_id AND t.status = 'failed')
		   WHEN 'task:queued' THEN EXISTS (SELECT 1 FROM agent_task_queue t
		        WHERE t.id = ev.task_id AND t.parent_task_id IS NOT NULL)
		   WHEN 'agent:status' THEN EXISTS (SELECT 1 FROM agent a WHERE a.id = ev.agent_id)
		   WHEN 'daemon:register' THEN ev.action IN ('stale_sweep', 'runtime_gc')
		        AND EXISTS (SELECT 1 FROM workspace w WHERE w.id::text = ev.ws)
		   ELSE false END}), '0',
	'every event describes a change the database has');

$node->stop;
done_testing();
