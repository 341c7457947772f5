# Failover: a streaming standby's worker never sweeps, writes or notifies; after promotion it sweeps there, and no change is swept twice.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# The outage guard stays on (its default): after promotion the new primary
# must give heartbeats one stale_threshold (10 s here) before it marks any
# runtime offline.  Ticks are caused by wake() (interval one hour).
my $primary = sweeper_node('primary', allows_streaming => 1, conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.stale_threshold = '10s'
runtime_sweeper.event_log = on
});

sub on { my ($node, $q) = @_; return $node->safe_psql('postgres', $q); }

# Tasks past the dispatch timeout on a runtime that never goes stale (NULL
# last_seen_at is never stale), labelled by trigger_summary.
my ($ws, $rt, $ag) = split /\|/, on($primary, q{
	WITH ws AS (SELECT fx_workspace() AS ws),
	     rt AS (SELECT ws, fx_runtime(ws, 'online', NULL) AS rt FROM ws)
	SELECT ws, rt, fx_agent(ws, rt) FROM rt});

sub stale_tasks
{
	my ($node, $label, $n) = @_;
	on($node, qq{
		SELECT fx_task('$ag', '$rt', fx_issue('$ws'), 'dispatched', make_interval(hours => 1, secs => g))
		FROM generate_series(1, $n) g;
		UPDATE agent_task_queue SET trigger_summary = '$label' WHERE trigger_summary IS NULL});
	return;
}

# "status failure_reason task:failed-events" per task of a label, with counts.
sub report
{
	my ($node, $label) = @_;
	return on($node, qq{
		SELECT t.status || ' ' || coalesce(t.failure_reason, '-') || ' '
		       || (SELECT count(*) FROM runtime_sweeper.event_log e
		           WHERE e.event->>'type' = 'task:failed' AND e.event->'payload'->>'task_id' = t.id::text),
		       count(*)
		FROM agent_task_queue t WHERE t.trigger_summary = '$label' AND t.parent_task_id IS NULL
		GROUP BY 1 ORDER BY 1});
}

# Rule: the primary sweeps (three tasks time out, each with its event).
tick($primary);
stale_tasks($primary, 'A', 3);
tick($primary);
is(report($primary, 'A'), 'failed timeout 1|3', 'the primary failed batch A once, one event each');

# A streaming standby from a base backup of the primary.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# The primary pauses (postgresql.auto.conf is not replicated), so the work
# below stays undone in the stream the standby replays.
on($primary, 'ALTER SYSTEM SET runtime_sweeper.enabled = off; SELECT pg_reload_conf()');
$primary->poll_query_until('postgres',
	"SELECT state = 'paused' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the primary did not pause';
stale_tasks($primary, 'B', 3);
my $stale_rt = on($primary, qq{SELECT fx_runtime('$ws', 'online', '1 hour')});
my $stale_ag = on($primary, qq{SELECT fx_agent('$ws', '$stale_rt', 'agent2', 'working')});
on($primary, qq{SELECT fx_task('$stale_ag', '$stale_rt', fx_issue('$ws'), 'running', '1 min')});
$primary->wait_for_catchup($standby);

# Rule: the standby's worker waits in state 'standby': woken or not, it
# ticks no stage, so it tries no write and sends no NOTIFY.
my $spid = expect_worker_pid($standby);
$standby->poll_query_until('postgres',
	"SELECT state = 'standby' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the standby worker never reported state standby';
idle_loop($standby) for 1 .. 3;
is(on($standby, q{SELECT state || ' ' || ticks || ' ' || errors || ' ' || events_sent
		FROM runtime_sweeper.status WHERE database = 'postgres'}),
	'standby 0 0 0', 'the standby worker: state standby, no tick, no error, no event sent');
is(on($standby, q{SELECT sum(runs) FROM runtime_sweeper.stage_status WHERE database = 'postgres'}), '0',
	'no stage ran on the standby');
is(report($standby, 'B'), 'dispatched - 0|3', 'batch B is untouched on the standby');
is(on($standby, "SELECT status FROM agent_runtime WHERE id = '$stale_rt'"), 'online',
	'the stale runtime is untouched on the standby');
is(log_count($standby, qr/read-only transaction|stage \w+ failed/), 0,
	'the standby log has no failed write and no failed stage');
is(log_count($standby, qr/not sweeping database "postgres": the server is a standby/), 1,
	'"not sweeping ... standby" is logged once');
is(on($standby, 'SELECT count(*) FROM runtime_sweeper.event_log'),
	on($primary, 'SELECT count(*) FROM runtime_sweeper.event_log'),
	'the standby has exactly the primary\'s event log');

# Failover: the primary goes away, the standby is promoted.
my $last_id = on($standby, 'SELECT coalesce(max(id), 0) FROM runtime_sweeper.event_log');
$primary->stop;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';
my $listener = $standby->background_psql('postgres');
$listener->query_safe('LISTEN runtime_sweeper');

# Rule: after promotion the same worker sweeps: batch B times out once.
tick($standby);
is(on($standby, q{SELECT pid || ' ' || state FROM runtime_sweeper.status WHERE database = 'postgres'}),
	"$spid idle", 'the same worker process sweeps after promotion');
is(report($standby, 'B'), 'failed timeout 1|3', 'the promoted node failed batch B, one event each');
is(report($standby, 'A'), 'failed timeout 1|3', 'batch A (failed by the old primary) was not failed again');

# Rule: the outage guard holds the stale runtime online for one threshold
# after promotion (its daemon may be reconnecting to the new primary), then
# it goes offline and its task fails.
is(on($standby, "SELECT status FROM agent_runtime WHERE id = '$stale_rt'"), 'online',
	'right after promotion the stale runtime is held online');
cmp_ok(worker_status($standby, 'outage_deferred'), '>', 0, 'status.outage_deferred counts it');
$standby->poll_query_until('postgres',
	"SELECT runtime_sweeper.wake() AND status = 'offline' FROM agent_runtime WHERE id = '$stale_rt'")
  or die 'the stale runtime never went offline on the promoted node';
pass('after the hold the promoted node marks the stale runtime offline');
is(on($standby, qq{SELECT status || ' ' || failure_reason FROM agent_task_queue
		WHERE runtime_id = '$stale_rt' AND parent_task_id IS NULL}),
	'failed runtime_offline', 'its running task failed with reason runtime_offline');

# Rule: the promoted node notifies: a listener hears exactly the events of
# the event log written after promotion.
my $out = $listener->query_safe('SELECT 1');
my @heard = ($out =~ /^Asynchronous notification "runtime_sweeper" with payload "(.*)" received from server process with PID \d+\.$/mg);
my %ids = map { /^\{"id":(\d+),/ ? ($1 => 1) : () } @heard;
my $logged = on($standby, qq{SELECT string_agg(id::text, ',' ORDER BY id) FROM runtime_sweeper.event_log
		WHERE id > $last_id});
is(join(',', sort { $a <=> $b } keys %ids), $logged,
	'the listener heard every event logged after promotion, and nothing else');
is(scalar(@heard), scalar(keys %ids), 'each event once');
like(join("\n", @heard), qr/"type":"daemon:register".*"action":"stale_sweep"/,
	'among them daemon:register for the stale sweep');
$listener->quit;

$standby->stop;
done_testing();
