# runtime_sweeper.metrics() against a running worker: valid Prometheus text, and the series operators alert on move.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

# ---------------------------------------------------------------- validator
# A strict reader of the Prometheus text exposition format (version 0.0.4),
# so the test does not depend on promtool (which is used too when installed).
# Returns (\@problems, \%samples) with samples keyed by their printed
# "name{labels}".  Beyond the format it enforces what an exporter should do:
# every family has one HELP and one TYPE before its samples, a family's lines
# are contiguous, no series repeats, counters end in _total and are finite
# and non-negative.
my $name_re = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $label_re = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $value_re = qr/(?:[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN)/;

sub check_exposition
{
	my ($text) = @_;
	my (@problems, %samples, %type, %help, %done, %seen);
	my $current = '';
	my $n = 0;

	push @problems, 'empty scrape' if $text eq '';
	push @problems, 'the scrape does not end with a newline' if $text ne '' && $text !~ /\n\z/;
	for my $line (split /\n/, $text)
	{
		$n++;
		my $family;
		if ($line eq '')
		{
			push @problems, "line $n: empty line";
			next;
		}
		elsif ($line =~ /^# HELP (\S+) (.*)$/)
		{
			my ($name, $doc) = ($1, $2);
			$family = $name;
			push @problems, "line $n: bad metric name '$name'" unless $name =~ /^$name_re$/;
			push @problems, "line $n: HELP text with a bad escape" if ($doc =~ s/\\[\\n]//gr) =~ /\\/;
			push @problems, "line $n: second HELP for $name" if $help{$name}++;
			push @problems, "line $n: HELP for $name after its samples" if $seen{$name};
		}
		elsif ($line =~ /^# TYPE (\S+) (\S+)$/)
		{
			my ($name, $t) = ($1, $2);
			$family = $name;
			push @problems, "line $n: bad metric name '$name'" unless $name =~ /^$name_re$/;
			push @problems, "line $n: unknown type '$t'"
			  unless $t =~ /^(counter|gauge|histogram|summary|untyped)$/;
			push @problems, "line $n: second TYPE for $name" if defined $type{$name};
			push @problems, "line $n: TYPE for $name after its samples" if $seen{$name};
			push @problems, "line $n: counter $name does not end in _total"
			  if $t eq 'counter' && $name !~ /_total$/;
			$type{$name} = $t;
		}
		elsif ($line =~ /^#/)
		{
			push @problems, "line $n: unexpected comment '$line'";
			next;
		}
		elsif ($line =~ /^($name_re)(?:\{(.*)\})? ($value_re)(?: (-?[0-9]+))?$/)
		{
			my ($name, $labels, $value) = ($1, $2 // '', $3);
			$family = $name;
			my @pairs;
			my $rest = $labels;
			while ($rest ne '')
			{
				if ($rest =~ s/^($label_re)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)//)
				{
					my ($l, $v, $comma) = ($1, $2, $3);
					push @problems, "line $n: reserved label name $l" if $l =~ /^__/;
					push @pairs, qq($l="$v");
					last if $comma eq '';
				}
				else
				{
					push @problems, "line $n: malformed labels '{$labels}'";
					last;
				}
			}
			my %names;
			$names{ (split /=/, $_)[0] }++ for @pairs;
			push @problems, "line $n: repeated label name" if grep { $_ > 1 } values %names;
			my $key = $name . '{' . join(',', sort @pairs) . '}';
			push @problems, "line $n: repeated series $key" if $seen{$key}++;
			$seen{$name}++;
			push @problems, "line $n: sample of $name without TYPE" unless defined $type{$name};
			push @problems, "line $n: sample of $name without HELP" unless $help{$name};
			push @problems, "line $n: counter $name is negative or not finite ($value)"
			  if ($type{$name} // '') eq 'counter' && ($value =~ /Inf|NaN/ || $value < 0);
			$samples{ $name . ($labels ne '' ? "{$labels}" : '') } = $value;
		}
		else
		{
			push @problems, "line $n: not a comment nor a sample: '$line'";
			next;
		}
		if ($family ne $current)
		{
			push @problems, "line $n: family $family appears again after other families" if $done{$family};
			$done{$current} = 1 if $current ne '';
			$current = $family;
		}
	}
	return (\@problems, \%samples);
}

# Rule: the validator itself rejects what it must (so a pass means something).
my %bad = (
	'no newline at the end' => "# HELP a_total x\n# TYPE a_total counter\na_total 1",
	'sample before TYPE' => "a_total 1\n# HELP a_total x\n# TYPE a_total counter\n",
	'unescaped quote' => qq(# HELP a x\n# TYPE a gauge\na{l="x"y"} 1\n),
	'bad escape' => qq(# HELP a x\n# TYPE a gauge\na{l="x\\y"} 1\n),
	'bad HELP escape' => qq(# HELP a x\\y\n# TYPE a gauge\na 1\n),
	'bad value' => "# HELP a x\n# TYPE a gauge\na 1,5\n",
	'repeated series' => "# HELP a x\n# TYPE a gauge\na{l=\"1\"} 1\na{l=\"1\"} 2\n",
	'split family' => "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na{l=\"2\"} 1\n",
	'counter without _total' => "# HELP a x\n# TYPE a counter\na 1\n",
	'bad name' => "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",
);
for my $case (sort keys %bad)
{
	my ($problems) = check_exposition($bad{$case});
	ok(@$problems > 0, "the validator rejects: $case");
}
my ($good_problems) = check_exposition(
	qq(# HELP a_total x \\\\ y\n# TYPE a_total counter\na_total{l="q\\"\\\\\\n",m="2"} 1.5e+3\n# HELP b x\n# TYPE b gauge\nb -Inf\n)
);
is("@$good_problems", '', 'the validator accepts escapes, exponents and -Inf');

# ---------------------------------------------------------------- the node
# A long interval (ticks come from wake()), no outage guard, and a liveness
# relation that does not exist: every check falls back to the database window.
my $node = sweeper_node('metrics', conf => q{
runtime_sweeper.interval = '1h'
runtime_sweeper.outage_guard = off
runtime_sweeper.liveness = 'relation'
runtime_sweeper.liveness_relation = 'no_such_alive_runtimes'
});
$node->poll_query_until('postgres',
	"SELECT ticks >= 1 AND state = 'idle' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the first tick never finished';

my $promtool;
for my $dir (split /:/, $ENV{PATH} // '')
{
	$promtool = "$dir/promtool" if !$promtool && -x "$dir/promtool";
}

# Scrapes metrics() in database postgres, checks the text (and with promtool
# when it is installed) and returns the samples.
sub scrape
{
	my ($what) = @_;
	# A marker after the text, so that its own last newline survives psql.
	my $text = $node->safe_psql('postgres', q{SELECT runtime_sweeper.metrics() || '<end>'});
	$text =~ s/<end>\z// or die 'the scrape lost its end marker';
	my ($problems, $samples) = check_exposition($text);
	is(join("\n", @$problems), '', "$what: the scrape is valid exposition text");
	SKIP:
	{
		skip 'promtool is not installed', 1 unless $promtool;
		my ($out, $err);
		IPC::Run::run([ $promtool, 'check', 'metrics' ], '<', \$text, '>', \$out, '2>', \$err);
		is(($? >> 8) . "|$out$err", '0|', "$what: promtool check metrics accepts it");
	}
	return $samples;
}

sub tick_now
{
	tick($node);
	return;
}

my $pg = 'database="postgres"';

# Rule: a scrape shows the running worker: up 1, ticks, a recent tick time.
my $m = scrape('first scrape');
is($m->{"runtime_sweeper_up{$pg}"}, 1, 'runtime_sweeper_up is 1 for the worker\'s database');
cmp_ok($m->{"runtime_sweeper_ticks_total{$pg}"}, '>=', 1, 'ticks_total counts the first tick');
my $now = $node->safe_psql('postgres', 'SELECT extract(epoch FROM now())::bigint');
cmp_ok(abs($m->{"runtime_sweeper_last_tick_timestamp_seconds{$pg}"} - $now), '<', 60,
	'last_tick_timestamp_seconds is the Unix time of the last tick');
is(join(',', map { $m->{"runtime_sweeper_due_rows{$pg,stage=\"$_\"}"} // 'missing' }
		qw(stale_runtimes offline_tasks stale_tasks queued_expiry runtime_gc)),
	'0,0,0,0,0', 'due_rows has one series per stage, all 0 with nothing to do');

# Rule: a liveness source that cannot answer moves liveness_fallbacks_total
# and shows liveness_healthy 0 for its source; the database window decides.
my $fallbacks = $m->{"runtime_sweeper_liveness_fallbacks_total{$pg}"};
my $offline = $m->{"runtime_sweeper_runtimes_offline_total{$pg}"};
my $rt = $node->safe_psql('postgres', q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
tick_now();
$m = scrape('after a liveness fallback');
is($m->{"runtime_sweeper_liveness_fallbacks_total{$pg}"} - $fallbacks, 1,
	'liveness_fallbacks_total went up by one');
is($m->{"runtime_sweeper_liveness_healthy{$pg,source=\"relation\"}"}, 0,
	'liveness_healthy{source="relation"} is 0');
is($m->{"runtime_sweeper_runtimes_offline_total{$pg}"} - $offline, 1,
	'runtimes_offline_total counts the runtime flipped by the database window');
is($node->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"), 'offline',
	'the runtime went offline');

# Rule: a stage that fails moves stage_errors_total for that stage only.
my ($stuck) = $node->safe_psql('postgres', q{
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
	SELECT fx_task(ag, rt, fx_issue(ws), 'dispatched', '1 hour') FROM ag;
});
$node->safe_psql('postgres',
	"UPDATE agent_task_queue SET trigger_summary = 'explode' WHERE id = '$stuck'");
my %errors0 = map { $_ => $m->{"runtime_sweeper_stage_errors_total{$pg,stage=\"$_\"}"} }
  qw(stale_runtimes offline_tasks stale_tasks queued_expiry runtime_gc);
my $timeouts = $m->{"runtime_sweeper_tasks_failed_total{$pg,reason=\"timeout\"}"};
tick_now();
$m = scrape('after a stage failure');
is(join(',', map { $m->{"runtime_sweeper_stage_errors_total{$pg,stage=\"$_\"}"} - $errors0{$_} }
		qw(stale_runtimes offline_tasks stale_tasks queued_expiry runtime_gc)),
	'0,0,1,0,0', 'stage_errors_total{stage="stale_tasks"} went up by one, the others did not');
is($m->{"runtime_sweeper_tasks_failed_total{$pg,reason=\"timeout\"}"}, $timeouts,
	'the rolled-back stage failed no task');
is($m->{"runtime_sweeper_due_rows{$pg,stage=\"stale_tasks\"}"}, 1,
	'due_rows{stage="stale_tasks"} shows the task still waiting');

# Rule: a stale task failed by the worker moves tasks_failed_total{reason="timeout"}.
$node->safe_psql('postgres', 'DROP TRIGGER refuse_update ON agent_task_queue');
tick_now();
$m = scrape('after a timeout');
is($m->{"runtime_sweeper_tasks_failed_total{$pg,reason=\"timeout\"}"} - $timeouts, 1,
	'tasks_failed_total{reason="timeout"} went up by one');
is($m->{"runtime_sweeper_stage_errors_total{$pg,stage=\"stale_tasks\"}"} - $errors0{stale_tasks}, 1,
	'no new stage error');
is($m->{"runtime_sweeper_due_rows{$pg,stage=\"stale_tasks\"}"}, 0, 'due_rows{stage="stale_tasks"} is back to 0');

# Rule: due_rows shows a backlog the worker has not swept (paused here), and
# drops to 0 once it has; the failed tasks move their reason's counter.
$node->safe_psql('postgres',
	'ALTER SYSTEM SET runtime_sweeper.enabled = off; SELECT pg_reload_conf()');
$node->poll_query_until('postgres',
	"SELECT state = 'paused' FROM runtime_sweeper.status WHERE database = 'postgres'")
  or die 'the worker never paused';
my $expired = $m->{"runtime_sweeper_tasks_failed_total{$pg,reason=\"queued_expired\"}"};
$node->safe_psql('postgres', q{
	WITH ws AS (SELECT fx_workspace() AS ws),
	     rt AS (SELECT ws, fx_runtime(ws) AS rt FROM ws),
	     ag AS (SELECT ws, rt, fx_agent(ws, rt) AS ag FROM rt)
	SELECT fx_task(ag, rt, fx_issue(ws), 'queued', '3 hours') FROM ag, generate_series(1, 3)});
$m = scrape('with a backlog');
is($m->{"runtime_sweeper_due_rows{$pg,stage=\"queued_expiry\"}"}, 3,
	'due_rows{stage="queued_expiry"} is 3 while the worker is paused');
is($m->{"runtime_sweeper_up{$pg}"}, 1, 'a paused worker is still up');
$node->safe_psql('postgres',
	'ALTER SYSTEM SET runtime_sweeper.enabled = on; SELECT pg_reload_conf()');
$node->poll_query_until('postgres', q{
	SELECT position(E'\nruntime_sweeper_due_rows{database="postgres",stage="queued_expiry"} 0\n'
	                IN runtime_sweeper.metrics()) > 0})
  or die 'due_rows never dropped to 0';
$m = scrape('after the backlog was swept');
is($m->{"runtime_sweeper_due_rows{$pg,stage=\"queued_expiry\"}"}, 0,
	'due_rows{stage="queued_expiry"} dropped to 0 once the worker resumed');
is($m->{"runtime_sweeper_tasks_failed_total{$pg,reason=\"queued_expired\"}"} - $expired, 3,
	'tasks_failed_total{reason="queued_expired"} went up by three');

# Rule: a database that leaves runtime_sweeper.database reports up 0; a
# database name with a quote and a backslash is escaped in its label.
$node->safe_psql('postgres', q{CREATE DATABASE "we""ird\db"});
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET runtime_sweeper.database = '"we""ird\db"'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{
	SELECT bool_and(CASE database WHEN 'postgres' THEN pid IS NULL ELSE pid IS NOT NULL END)
	       AND count(*) = 2
	FROM runtime_sweeper.status WHERE database IN ('postgres', 'we"ird\db')})
  or die 'the workers did not follow the new list';
$m = scrape('after the list changed');
is($m->{"runtime_sweeper_up{$pg}"}, 0, 'runtime_sweeper_up is 0 for the database removed from the list');
is($m->{'runtime_sweeper_up{database="we\\"ird\\\\db"}'}, 1,
	'runtime_sweeper_up is 1 for we"ird\\db, its label escaped');
ok(defined $m->{"runtime_sweeper_due_rows{$pg,stage=\"queued_expiry\"}"},
	'due_rows is still served for the current database');

$node->stop;
done_testing();
