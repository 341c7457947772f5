# The worker's offline_tasks stage: a runtime its daemon deregistered keeps no in-flight task, held rows are skipped, a conflicting retry is silent.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# Every tick is caused by wake() (interval one hour).  Nothing in this file is
# stale, so the outage guard (on, as by default) never matters: the stage
# under test fails tasks of runtimes that are offline already.  A one hour
# lock_timeout: a stage that waited on a row lock would hang its tick.
my $node = sweeper_node('deregistered', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.lock_timeout = '1h'
});
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the first tick never finished';

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub task_status { return sql("SELECT status FROM agent_task_queue WHERE id = '$_[0]'"); }
sub counter { return worker_status($node, $_[0]); }

sub stage_col
{
	my ($stage, $col) = @_;
	return sql("SELECT $col FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND stage = '$stage'");
}

# A workspace, a heartbeating runtime with an agent, and in-flight tasks (a
# first attempt with an issue, so it is retried).
sub runtime_with_tasks
{
	my ($ws) = @_;
	my $rt = sql("SELECT fx_runtime('$ws', 'online', '5 seconds')");
	my $ag = sql("SELECT fx_agent('$ws', '$rt')");
	return ($rt, $ag);
}

my $ws = sql('SELECT fx_workspace()');
my ($rt, $ag) = runtime_with_tasks($ws);
my ($rt_live, $ag_live) = runtime_with_tasks($ws);
my $running = sql("SELECT fx_task('$ag', '$rt', fx_issue('$ws'), 'running', '2 minutes')");
my $dispatched = sql("SELECT fx_task('$ag', '$rt', fx_issue('$ws'), 'dispatched', '1 minute', 1, 1)");
my $live_task = sql("SELECT fx_task('$ag_live', '$rt_live', fx_issue('$ws'), 'running', '2 minutes')");

# ---------------------------------------------------------------------------
# Rule: while the runtime is online and fresh, a tick leaves its tasks alone.
tick($node);
is(task_status($running) . '|' . task_status($dispatched), 'running|dispatched',
	'tasks of an online runtime are untouched');

# ---------------------------------------------------------------------------
# Rule: once the application marks the runtime offline itself (the daemon
# deregistered: status 'offline', last_seen_at still fresh), the next tick
# fails its in-flight tasks with runtime_offline and retries the first
# attempt, although no runtime went stale (stale_runtimes flips nothing).
# The original only failed such tasks in a tick that flipped some runtime:
# here they would stay "running" for ever.
my $failed0 = counter('tasks_failed_runtime_offline');
my $offline0 = counter('runtimes_offline');
my $affected0 = stage_col('offline_tasks', 'affected');
sql("UPDATE agent_runtime SET status = 'offline', updated_at = now() WHERE id = '$rt'");
tick($node);
is(sql("SELECT string_agg(status || ':' || failure_reason, ',' ORDER BY created_at) FROM agent_task_queue WHERE id IN ('$running', '$dispatched')"),
	'failed:runtime_offline,failed:runtime_offline',
	'the next tick failed both in-flight tasks of the deregistered runtime with runtime_offline');
is(sql("SELECT count(*) FROM agent_task_queue WHERE parent_task_id = '$running' AND status = 'queued'"), '1',
	'the first attempt got its queued retry');
is(task_status($live_task), 'running', 'the task of the online runtime is untouched');
is(counter('tasks_failed_runtime_offline') - $failed0, 2, 'status: tasks_failed_runtime_offline +2');
is(counter('runtimes_offline') - $offline0, 0, 'status: no runtime was flipped by the sweeper');
is(stage_col('offline_tasks', 'affected') - $affected0, 2, 'stage_status: offline_tasks affected +2');
is(sql("SELECT status FROM agent WHERE id = '$ag'"), 'idle', 'the agent was reconciled to idle');

# ---------------------------------------------------------------------------
# Rule: the stage skips a task a client holds (the daemon reporting its
# completion at that moment) instead of waiting on it, and fails the others
# in the same tick; the completed task stays completed.  Without SKIP LOCKED
# the stage would wait on the held row (the one hour lock_timeout would hang
# the tick and tick() would give up).
my ($rt2, $ag2) = runtime_with_tasks($ws);
my $held = sql("SELECT fx_task('$ag2', '$rt2', fx_issue('$ws'), 'running', '3 minutes', 1, 1)");
my $free = sql("SELECT fx_task('$ag2', '$rt2', fx_issue('$ws'), 'running', '2 minutes', 1, 1)");
my $errors0 = stage_col('offline_tasks', 'errors');
my $client = $node->background_psql('postgres');
$client->query_safe('BEGIN');
$client->query_safe("SELECT id FROM agent_task_queue WHERE id = '$held' FOR UPDATE");
sql("UPDATE agent_runtime SET status = 'offline', updated_at = now() WHERE id = '$rt2'");
tick($node);
is(task_status($held) . '|' . task_status($free), 'running|failed',
	'the held task was skipped, the free one failed in the same tick');
is(stage_col('offline_tasks', 'errors'), $errors0, 'no error: the stage did not wait on the held row');
$client->query_safe("UPDATE agent_task_queue SET status = 'completed', completed_at = now() WHERE id = '$held'");
$client->query_safe('COMMIT');
$client->quit;
tick($node);
is(task_status($held), 'completed', 'the task the daemon completed stays completed');

# ---------------------------------------------------------------------------
# Rule: a retry that would break the one-pending-task index (the application
# already queued the next task of the same issue and agent) is skipped
# without an error and without a WARNING in the server log; the task still
# fails and the pending task is untouched.  Without ON CONFLICT the stage
# would fail (WARNING "stage offline_tasks failed", the task still running).
my ($rt3, $ag3) = runtime_with_tasks($ws);
my $issue = sql("SELECT fx_issue('$ws')");
my $conflicting = sql("SELECT fx_task('$ag3', '$rt3', '$issue', 'running', '2 minutes')");
my $pending = sql("SELECT fx_task('$ag3', '$rt3', '$issue', 'queued', '1 minute')");
my $skipped0 = counter('retries_skipped');
my $warnings0 = log_count($node, qr/WARNING|ERROR/);
sql("UPDATE agent_runtime SET status = 'offline', updated_at = now() WHERE id = '$rt3'");
tick($node);
is(task_status($conflicting) . '|' . task_status($pending), 'failed|queued',
	'the task failed; the application\'s pending task is untouched');
is(sql("SELECT count(*) FROM agent_task_queue WHERE parent_task_id = '$conflicting'"), '0',
	'no second pending task was created');
is(counter('retries_skipped') - $skipped0, 1, 'status: retries_skipped +1');
is(log_count($node, qr/WARNING|ERROR/), $warnings0, 'no WARNING or ERROR in the server log');

$node->stop;
done_testing();
