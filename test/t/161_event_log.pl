# The durable event log: NOTIFY <-> event_log rows 1:1, events_since() paging, commit-ordered ids, trimming by the worker.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# A long interval: every tick below comes from wake() or a reload.  Retention
# 1 h and no row cap to begin with; the later cases change them.
my $node = sweeper_node('event_log', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
runtime_sweeper.event_log = on
runtime_sweeper.event_log_retention = '1h'
runtime_sweeper.event_log_max_rows = 0
});
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the first tick never finished';

sub sql
{
	return $node->safe_psql('postgres', $_[0]);
}

sub max_id
{
	return sql('SELECT coalesce(max(id), 0) FROM runtime_sweeper.event_log');
}

# The notifications psql printed: a list of [channel, payload].
sub notifications
{
	my ($out) = @_;
	my @found;
	while ($out =~ /^Asynchronous notification "([^"]*)" with payload "(.*)" received from server process with PID \d+\.$/mg)
	{
		push @found, [ $1, $2 ];
	}
	return @found;
}

# Collects what the listener has been sent so far (psql prints notifications
# after each command; the server sends them before its next ReadyForQuery).
sub collect
{
	my ($listener) = @_;
	return notifications($listener->query_safe('SELECT 1'));
}

# The logged events after $after: a list of [id, channel, event text].
sub logged_after
{
	my ($after) = @_;
	return map { [ split /\|/, $_, 3 ] } split /\n/,
	  sql("SELECT id, channel, event::text FROM runtime_sweeper.event_log WHERE id > $after ORDER BY id");
}

# Checks that notifications and logged rows correspond one to one: same ids
# in the same order, the NOTIFY payload is the logged envelope with "id":N in
# front, and both name the same channel.
sub same_events
{
	my ($notes, $rows, $what) = @_;
	my @note_ids = map { $_->[1] =~ /^\{"id":(\d+),/ ? $1 : 'no id' } @$notes;
	my @row_ids = map { $_->[0] } @$rows;
	is("@note_ids", "@row_ids", "$what: the NOTIFY ids are the event_log ids, in order");
	my $bad = 0;
	for my $i (0 .. $#$rows)
	{
		my ($id, $channel, $event) = @{ $rows->[$i] };
		my $expect = qq({"id":$id,) . substr($event, 1);
		next if defined $notes->[$i] && $notes->[$i][1] eq $expect && $notes->[$i][0] eq $channel;
		diag("event $id: logged $channel $event, notified "
			  . (defined $notes->[$i] ? "$notes->[$i][0] $notes->[$i][1]" : 'nothing'));
		$bad++;
	}
	is($bad, 0, "$what: each NOTIFY payload is its logged envelope with the id in front");
	return;
}

my $listener = $node->background_psql('postgres');
$listener->set_query_timer_restart;
$listener->query_safe('LISTEN runtime_sweeper');

# Rule: every event a listener receives from the worker carries "id" and
# matches one event_log row (same id, same envelope); no row without a NOTIFY.
my $before = max_id();
sql(q{
	WITH ws AS (SELECT fx_workspace() AS ws),
	     rt AS (SELECT ws, fx_runtime(ws, 'online', '1 hour') AS rt FROM ws),
	     ag AS (SELECT ws, rt, fx_agent(ws, rt) AS ag FROM rt)
	SELECT fx_task(ag, rt, fx_issue(ws), 'running', '0 s') FROM ag});
tick($node);
my @notes = collect($listener);
my @rows = logged_after($before);
cmp_ok(scalar(@rows), '>=', 4,
	'the worker logged the events of a flip (task:queued, task:failed, agent:status, daemon:register): '
	  . scalar(@rows));
same_events(\@notes, \@rows, 'worker tick');
is(join(',', map { $_->[1] } @rows), join(',', ('runtime_sweeper') x @rows),
	'the rows record the notify channel');

# Rule: a transaction that rolls back leaves neither a NOTIFY nor a row.
sql(q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
$before = max_id();
sql(q{BEGIN; SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline(); ROLLBACK});
is(scalar(collect($listener)), 0, 'a rolled-back sweep notified nothing');
is(max_id(), $before, 'and logged nothing');

# Rule: the SQL API logs its events the same way (in the caller's transaction).
sql(q{SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline()});
@notes = collect($listener);
@rows = logged_after($before);
cmp_ok(scalar(@rows), '>=', 1, 'mark_stale_runtimes_offline() logged its daemon:register');
same_events(\@notes, \@rows, 'SQL API call');

# Rule: events_since(after, max) returns the rows after "after", oldest
# first, at most max; paging through it yields every row exactly once.
my @all = map { [ split /\|/, $_, 4 ] } split /\n/,
  sql('SELECT id, created_at, channel, event::text FROM runtime_sweeper.event_log ORDER BY id');
cmp_ok(scalar(@all), '>', 3, 'enough events to page through (' . scalar(@all) . ')');
my (@paged, $pages);
my $after = 0;
while (1)
{
	my @page = map { [ split /\|/, $_, 4 ] } split /\n/,
	  sql("SELECT id, created_at, channel, event::text FROM runtime_sweeper.events_since($after, 3)");
	last unless @page;
	$pages++;
	cmp_ok(scalar(@page), '<=', 3, "page $pages has at most 3 rows");
	push @paged, @page;
	$after = $page[-1][0];
	last if $pages > 100;
}
is_deeply(\@paged, \@all, "paging by 3 returns every row once, in id order ($pages pages)");
is(sql("SELECT count(*) FROM runtime_sweeper.events_since($all[-1][0])"), '0',
	'nothing after the last id');
is(sql('SELECT count(*) FROM runtime_sweeper.events_since(0, 0)'), '0', 'max 0 returns nothing');
is(sql('SELECT count(*) FROM runtime_sweeper.events_since(0)'), scalar(@all),
	'the default max (1000) returns all of them');
is(sql("SELECT string_agg(id::text, ',') FROM runtime_sweeper.events_since($all[0][0], 2)"),
	"$all[1][0],$all[2][0]", 'the id given is excluded, the next two follow');

# Rule: ids are handed out in commit order.  A sweep that logs events holds
# the event-log lock until it commits: a second sweep that wants to log waits
# for it, so each transaction's ids form one contiguous block and a listener
# never sees a smaller id after a larger one.
my ($ws_x, $ws_y) = split /\|/, sql(q{
	WITH x AS (SELECT fx_workspace('x') AS ws), y AS (SELECT fx_workspace('y') AS ws)
	SELECT x.ws, y.ws FROM x, y});
sql(qq{
	-- x: a stale runtime with a running task, and a queued task past its TTL
	WITH rt AS (SELECT fx_runtime('$ws_x', 'online', '1 hour') AS rt),
	     ag AS (SELECT rt, fx_agent('$ws_x', rt) AS ag FROM rt)
	SELECT fx_task(ag, rt, fx_issue('$ws_x'), 'running', '0 s') FROM ag;
	WITH rt AS (SELECT fx_runtime('$ws_x') AS rt),
	     ag AS (SELECT rt, fx_agent('$ws_x', rt) AS ag FROM rt)
	SELECT fx_task(ag, rt, fx_issue('$ws_x'), 'queued', '3 hours') FROM ag;
	-- y: a live runtime with a task dispatched an hour ago
	WITH rt AS (SELECT fx_runtime('$ws_y') AS rt),
	     ag AS (SELECT rt, fx_agent('$ws_y', rt) AS ag FROM rt)
	SELECT fx_task(ag, rt, fx_issue('$ws_y'), 'dispatched', '1 hour') FROM ag;
});
$before = max_id();
my $ta = $node->background_psql('postgres');
my $tb = $node->background_psql('postgres');
my $tb_pid = $tb->query_safe('SELECT pg_backend_pid()');
$ta->query_safe('BEGIN');
is($ta->query_safe('SELECT count(*) FROM runtime_sweeper.mark_stale_runtimes_offline()'), '1',
	'transaction A flipped the runtime of x (and logged events)');
$tb->query_safe('BEGIN');
$tb->query_until(qr/b started/, "\\echo b started\nSELECT count(*) FROM runtime_sweeper.fail_stale_tasks();\n");
$node->poll_query_until('postgres',
	"SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE pid = $tb_pid",
	'Lock:advisory')
  or die 'transaction B never waited for the event-log lock';
pass('transaction B (fail_stale_tasks in y) waits on the event-log lock held by A');
is($ta->query_safe('SELECT count(*) FROM runtime_sweeper.expire_queued_tasks()'), '1',
	'A logs more events while B waits');
$ta->query_safe('COMMIT');
my $tb_out = $tb->query_safe('COMMIT');
like($tb_out, qr/^1$/m, 'B went on once A committed, and failed the task of y');
@rows = map { [ split /\|/ ] } split /\n/,
  sql("SELECT id, event->>'workspace_id' FROM runtime_sweeper.event_log WHERE id > $before ORDER BY id");
my @a_ids = map { $_->[0] } grep { $_->[1] eq $ws_x } @rows;
my @b_ids = map { $_->[0] } grep { $_->[1] eq $ws_y } @rows;
is(scalar(@a_ids) + scalar(@b_ids), scalar(@rows), 'every new event belongs to A (x) or B (y)');
cmp_ok(scalar(@a_ids), '>=', 4, 'A logged the events of both its calls: ' . scalar(@a_ids));
cmp_ok(scalar(@b_ids), '>=', 2, 'B logged its events: ' . scalar(@b_ids));
is("@a_ids", join(' ', $a_ids[0] .. $a_ids[-1]), "A's ids are one contiguous block (@a_ids)");
is("@b_ids", join(' ', $b_ids[0] .. $b_ids[-1]), "B's ids are one contiguous block (@b_ids)");
cmp_ok($a_ids[-1], '<', $b_ids[0], 'A committed first and has the smaller ids');
@notes = collect($listener);
same_events(\@notes, [ logged_after($before) ], 'two concurrent transactions');
$ta->quit;
$tb->quit;
$listener->quit;

# Rule: the worker trims rows older than event_log_retention and keeps newer ones.
sql(q{
	INSERT INTO runtime_sweeper.event_log (created_at, channel, event)
	SELECT now() - interval '2 hours', 'old', '{}' FROM generate_series(1, 3);
	INSERT INTO runtime_sweeper.event_log (created_at, channel, event)
	SELECT now() - interval '1 minute', 'recent', '{}' FROM generate_series(1, 2)});
tick($node);
is(sql(q{SELECT string_agg(channel || ':' || n, ',' ORDER BY channel)
	FROM (SELECT channel, count(*) AS n FROM runtime_sweeper.event_log
	      WHERE channel IN ('old', 'recent') GROUP BY channel) c}),
	'recent:2', 'after a tick rows older than 1 h are gone, rows of a minute ago remain');

# Rule: one tick deletes at most 10000 rows (oldest first); the rest go on later ticks.
my $first_bulk = sql(q{
	INSERT INTO runtime_sweeper.event_log (created_at, channel, event)
	SELECT now() - interval '2 hours', 'bulk', '{}' FROM generate_series(1, 25000);
	SELECT min(id) FROM runtime_sweeper.event_log WHERE channel = 'bulk'});
# Each round: the ticks the worker ran (a tick may come on top of the woken
# one: any latch set makes the worker tick) and the bulk rows left, which
# must be exactly 10000 fewer per tick, oldest ids first.
my ($left, @rounds) = (25000);
while ($left > 0 && @rounds < 5)
{
	my $ticks = worker_status($node, 'ticks');
	tick($node);
	my $ran = worker_status($node, 'ticks') - $ticks;
	$left = $left > 10000 * $ran ? $left - 10000 * $ran : 0;
	my $expect = $left ? sprintf('%d@%d', $left, $first_bulk + 25000 - $left) : '0@0';
	push @rounds, sprintf('%d tick(s): %s', $ran,
		sql(q{SELECT count(*) || '@' || coalesce(min(id), 0) FROM runtime_sweeper.event_log WHERE channel = 'bulk'})
		  eq $expect ? 'ok' : "expected $expect");
}
is(join('; ', grep { !/: ok$/ } @rounds), '',
	'25000 old rows: 10000 deleted per tick, oldest ids first (' . join('; ', @rounds) . ')');
cmp_ok(scalar(@rounds), '>=', 2, 'it took more than one tick');
is($left, 0, 'all of them are gone in the end');

# Rule: with event_log_max_rows = 5 the worker keeps only the newest 5 rows
# (a reload applies the setting and makes the worker tick).
sql(q{INSERT INTO runtime_sweeper.event_log (channel, event)
	SELECT 'cap', json_build_object('n', n) FROM generate_series(1, 20) AS n});
my $newest = sql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM
	(SELECT id FROM runtime_sweeper.event_log ORDER BY id DESC LIMIT 5) t});
cmp_ok(sql('SELECT count(*) FROM runtime_sweeper.event_log'), '>=', 20, 'at least 20 rows before the cap');
sql(q{ALTER SYSTEM SET runtime_sweeper.event_log_max_rows = 5; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', 'SELECT count(*) = 5 FROM runtime_sweeper.event_log')
  or die 'the row cap was never applied';
is(sql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM runtime_sweeper.event_log}), $newest,
	'the 5 newest rows remain');
is(sql(q{SELECT string_agg(event->>'n', ',' ORDER BY id) FROM runtime_sweeper.event_log}),
	'16,17,18,19,20', 'they are the last 5 inserted');

# Rule: a shorter retention applies on reload: with '1s' every row older than
# a second goes (each poll wakes the worker, whose tick trims).
sql(q{ALTER SYSTEM SET runtime_sweeper.event_log_max_rows = 0;
	ALTER SYSTEM SET runtime_sweeper.event_log_retention = '1s'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres',
	'SELECT runtime_sweeper.wake() AND NOT EXISTS (SELECT FROM runtime_sweeper.event_log)')
  or die 'retention 1s never emptied the log';
pass('retention 1s: the worker trimmed every row');

$node->stop;
done_testing();
