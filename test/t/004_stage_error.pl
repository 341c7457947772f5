# A stage that raises is counted and logged once; the other stages and later ticks still run.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# Ticks come from wake(): the interval and the stale threshold are long, and
# the tasks below are past their timeouts already (nothing becomes due soon).
my $node = sweeper_node('stage_error', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.stale_threshold = '1d'
runtime_sweeper.outage_guard = off
});
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the first tick never finished';
my $pid = worker_status($node, 'pid');

# A dispatched task past the dispatch timeout whose row refuses every UPDATE
# (an application trigger that raises), and a queued task past its TTL.
my ($stuck, $queued) = split /\|/, $node->safe_psql('postgres', q{
	CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'task marked % refuses to change', OLD.trigger_summary;
	END
	$$;
	CREATE TRIGGER refuse_update BEFORE UPDATE ON agent_task_queue
		FOR EACH ROW WHEN (OLD.trigger_summary = 'explode') EXECUTE FUNCTION refuse_update();
	WITH ws AS (SELECT fx_workspace() AS ws),
	     rt AS (SELECT ws, fx_runtime(ws) AS rt FROM ws),
	     ag AS (SELECT ws, rt, fx_agent(ws, rt) AS ag FROM rt)
	SELECT fx_task(ag, rt, fx_issue(ws), 'dispatched', '1 hour'),
	       fx_task(ag, rt, fx_issue(ws), 'queued', '3 hours')
	FROM ag;
});
$node->safe_psql('postgres',
	"UPDATE agent_task_queue SET trigger_summary = 'explode' WHERE id = '$stuck'");

sub stage
{
	my ($name, $cols) = @_;
	return $node->safe_psql('postgres',
		"SELECT $cols FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND stage = '$name'");
}

sub task
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT status, coalesce(failure_reason, '-') FROM agent_task_queue WHERE id = '$id'");
}

my $failed_re = qr/WARNING:  runtime_sweeper: stage stale_tasks failed: task marked explode refuses to change/;

# Rule: the failing stage is rolled back and counted; the later stage runs in the same tick.
my $errors0 = stage('stale_tasks', 'errors');
my $expiry_runs0 = stage('queued_expiry', 'runs');
tick($node);
is(stage('stale_tasks', 'errors'), $errors0 + 1, 'stale_tasks error counted');
like(stage('stale_tasks', 'last_error'), qr/task marked explode refuses to change/,
	'stage_status shows the error');
is(task($stuck), 'dispatched|-', 'the failing stage changed nothing');
is(task($queued), 'failed|queued_expired', 'queued_expiry expired the queued task in the same tick');
is(stage('queued_expiry', 'runs || \'|\' || errors'), ($expiry_runs0 + 1) . '|0',
	'queued_expiry ran once, without error');
is(worker_status($node, 'pid'), $pid, 'the worker survived the failing stage');

# Rule: the same error is counted every tick but logged once.
my $ticks1 = worker_status($node, 'ticks');
my $errors1 = stage('stale_tasks', 'errors');
tick($node) for 1 .. 3;
my $ticks2 = worker_status($node, 'ticks');
cmp_ok($ticks2 - $ticks1, '>=', 3, 'three more ticks');
is(stage('stale_tasks', 'errors'), $errors1 + ($ticks2 - $ticks1),
	'the error is counted in every tick');
is(log_count($node, $failed_re), 1, 'the WARNING is logged once over all those ticks');
my $errors2 = stage('stale_tasks', 'errors');
is(worker_status($node, 'errors'), $errors2, 'the status view totals the errors');
is(worker_status($node, 'pid'), $pid, 'still the same worker process');

# Rule: once the cause is gone the next tick succeeds.
$node->safe_psql('postgres', 'DROP TRIGGER refuse_update ON agent_task_queue');
tick($node);
is(task($stuck), 'failed|timeout', 'the next tick failed the stuck task');
is(stage('stale_tasks', 'errors'), $errors2, 'no new error');
is(log_count($node, qr/runtime_sweeper: stage stale_tasks succeeds again/), 1,
	'recovery is logged once');
is(log_count($node, $failed_re), 1, 'no new WARNING');

$node->stop;
done_testing();
