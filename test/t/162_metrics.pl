# runtime_sweeper.metrics() against a running worker: valid Prometheus text, and the series operators alert on move.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Run;
use JSON::PP qw(decode_json);
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
my %delta = map { $_ => $m->{"runtime_sweeper_stage_errors_total{$pg,stage=\"$_\"}"} - $errors0{$_} }
  qw(stale_runtimes offline_tasks stale_tasks queued_expiry runtime_gc);
# (any latch set makes the worker tick, so a tick may come on top of ours)
cmp_ok($delta{stale_tasks}, '>=', 1, "stage_errors_total{stage=\"stale_tasks\"} went up ($delta{stale_tasks})");
is(join(',', map { $delta{$_} } qw(stale_runtimes offline_tasks queued_expiry runtime_gc)), '0,0,0,0',
	'stage_errors_total of the other stages did not move');
is($m->{"runtime_sweeper_tasks_failed_total{$pg,reason=\"timeout\"}"}, $timeouts,
	'the rolled-back stage failed no task');
is($m->{"runtime_sweeper_due_rows{$pg,stage=\"stale_tasks\"}"}, 1,
	'due_rows{stage="stale_tasks"} shows the task still waiting');

# Rule: a stale task failed by the worker moves tasks_failed_total{reason="timeout"}.
$node->safe_psql('postgres', 'DROP TRIGGER refuse_update ON agent_task_queue');
my $errors1 = $node->safe_psql('postgres',
	"SELECT errors FROM runtime_sweeper.stage_status WHERE database = 'postgres' AND stage = 'stale_tasks'");
tick_now();
$m = scrape('after a timeout');
is($m->{"runtime_sweeper_tasks_failed_total{$pg,reason=\"timeout\"}"} - $timeouts, 1,
	'tasks_failed_total{reason="timeout"} went up by one');
is($m->{"runtime_sweeper_stage_errors_total{$pg,stage=\"stale_tasks\"}"}, $errors1,
	'no new stage error once the trigger is gone');
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

# Rule: a database that leaves runtime_sweeper.database reports up 0, and so
# does a listed one whose worker cannot start (it has no other series); a
# database name with a quote and a backslash is escaped in its label.
$node->safe_psql('postgres', q{CREATE DATABASE "we""ird\db"});
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET runtime_sweeper.database = '"we""ird\db", no_such_db'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{
	SELECT bool_and(CASE database WHEN 'postgres' THEN pid IS NULL ELSE pid IS NOT NULL END)
	       AND count(*) = 2
	FROM runtime_sweeper.status WHERE database IN ('postgres', 'we"ird\db')})
  or die 'the workers did not follow the new list';
$m = scrape('after the list changed');
is($m->{"runtime_sweeper_up{$pg}"}, 0, 'runtime_sweeper_up is 0 for the database removed from the list');
is($m->{'runtime_sweeper_up{database="we\\"ird\\\\db"}'}, 1,
	'runtime_sweeper_up is 1 for we"ird\\db, its label escaped');
is($m->{'runtime_sweeper_up{database="no_such_db"}'}, 0,
	'runtime_sweeper_up is 0 for a listed database that does not exist');
ok(defined $m->{"runtime_sweeper_due_rows{$pg,stage=\"queued_expiry\"}"},
	'due_rows is still served for the current database');

# ---------------------------------------------------------------- docs/monitoring
# The query file for postgres_exporter and the alert rules the docs ship.
my $docs = abs_path(dirname(__FILE__) . '/../../docs/monitoring');
my $python_yaml = system('python3 -c "import yaml" >/dev/null 2>&1') == 0;

# A YAML file as Perl data (through python3-yaml and JSON).
sub load_yaml
{
	my ($file) = @_;
	my ($out, $err);
	IPC::Run::run(
		[ 'python3', '-c', 'import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', $file ],
		'>', \$out, '2>', \$err)
	  or return (undef, $err);
	return (decode_json($out), '');
}

# Prometheus label-value escaping.
sub escape_label
{
	my ($v) = @_;
	$v =~ s/\\/\\\\/g;
	$v =~ s/"/\\"/g;
	$v =~ s/\n/\\n/g;
	return $v;
}

my %families = map { $_ => 1 } map { /^(runtime_sweeper_[a-z_]+)\{/ ? $1 : () } keys %$m;
SKIP:
{
	skip 'python3 with the yaml module is not installed', 1 unless $python_yaml;

	# Rule: queries.yaml parses, each query runs as written, declares exactly the
	# columns it returns, and yields the series of metrics() with the same
	# names, labels and values.
	my ($queries, $err) = load_yaml("$docs/queries.yaml");
	ok(ref $queries eq 'HASH' && %$queries, 'queries.yaml parses') or diag($err);
	$queries = {} unless ref $queries eq 'HASH';
	my ($mismatch, $compared, %covered) = (0, 0);
	for my $key (sort keys %$queries)
	{
		my $q = $queries->{$key};
		my @cols = map { (keys %$_)[0] } @{ $q->{metrics} // [] };
		my %usage = map { my ($c) = keys %$_; ($c => $_->{$c}{usage} // '') } @{ $q->{metrics} // [] };
		ok($q->{master}, "queries.yaml $key: master: true (the views are cluster-wide)");
		is(join(',', grep { $usage{$_} !~ /^(LABEL|COUNTER|GAUGE)$/ } @cols), '',
			"queries.yaml $key: every column has usage LABEL, COUNTER or GAUGE");
		my @rows = map { decode_json($_) } split /\n/,
		  $node->safe_psql('postgres', "SELECT row_to_json(q) FROM ($q->{query}) q");
		cmp_ok(scalar(@rows), '>', 0, "queries.yaml $key: the query runs and returns rows");
		is(join(',', sort keys %{ $rows[0] // {} }), join(',', sort @cols),
			"queries.yaml $key: the declared columns are the returned columns");
		my @labels = sort grep { $usage{$_} eq 'LABEL' } @cols;
		for my $row (@rows)
		{
			my $lbl = join(',', map { qq($_=") . escape_label($row->{$_}) . '"' } @labels);
			for my $col (grep { $usage{$_} ne 'LABEL' } @cols)
			{
				my $name = "${key}_$col";
				$covered{$name} = 1;
				next unless defined $row->{$col};
				my $got = $m->{"$name\{$lbl\}"};
				my $tolerance = $name =~ /timestamp/ ? 1 : 1e-6;
				$compared++;
				next if defined $got && abs($got - $row->{$col}) <= $tolerance;
				diag("$name\{$lbl\}: queries.yaml gives $row->{$col}, metrics() " . ($got // 'nothing'));
				$mismatch++;
			}
		}
	}
	cmp_ok($compared, '>', 50, "compared $compared series of queries.yaml with metrics()");
	is($mismatch, 0, 'queries.yaml yields the series of metrics(): same names, labels and values');
	is(join(', ', grep { !$covered{$_} } sort keys %families), '',
		'queries.yaml exports every family of metrics() (add new counters to both)');

	# Rule: the monitoring role of docs/monitoring.md (its grants, run as
	# written) can scrape metrics() with due_rows and run every query of
	# queries.yaml, and nothing more: no wake(), no sweep, no event log.
	my ($grants) = slurp_file(abs_path("$docs/../monitoring.md")) =~ /```sql\n([^`]*CREATE ROLE prometheus LOGIN[^`]*)```/s;
	ok(defined $grants, 'docs/monitoring.md has the monitoring role\'s grants');
	$node->safe_psql('postgres', $grants // 'SELECT 1');
	my $as_monitor = sub {
		my ($sql) = @_;
		my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE prometheus; $sql");
		return $ret == 0 ? $out : "ERROR: $err";
	};
	like($as_monitor->('SELECT runtime_sweeper.metrics()'),
		qr/^runtime_sweeper_due_rows\{database="postgres",stage="queued_expiry"\} 0$/m,
		'the monitoring role scrapes metrics(), due_rows included');
	for my $key (sort keys %$queries)
	{
		unlike($as_monitor->("SELECT count(*) FROM ($queries->{$key}{query}) q"), qr/ERROR/,
			"the monitoring role runs queries.yaml $key");
	}
	like($as_monitor->('SELECT runtime_sweeper.wake()'), qr/permission denied/, 'it cannot wake the worker');
	like($as_monitor->('SELECT * FROM runtime_sweeper.sweep()'), qr/permission denied/, 'it cannot sweep');
	like($as_monitor->('SELECT count(*) FROM runtime_sweeper.event_log'), qr/permission denied/,
		'it cannot read the event log');

	# Rule: alerts.yaml parses, every rule is complete, and every series it
	# uses is one metrics() serves.
	my ($alerts, $err2) = load_yaml("$docs/alerts.yaml");
	my @rules = map { @{ $_->{rules} // [] } } @{ (ref $alerts eq 'HASH' && $alerts->{groups}) || [] };
	cmp_ok(scalar(@rules), '>=', 6, 'alerts.yaml parses and has the rule group (' . scalar(@rules) . ' rules)')
	  or diag($err2);
	my %alert_names;
	my @incomplete = grep {
		!$_->{alert} || !$_->{expr} || !$_->{labels}{severity}
		  || !$_->{annotations}{summary} || !$_->{annotations}{description} || $alert_names{ $_->{alert} }++
	} @rules;
	is(scalar(@incomplete), 0, 'every alert has a unique name, expr, severity, summary and description');
	my %used = map { $_ => 1 } map { $_->{expr} =~ /\b(runtime_sweeper_[a-z_]+)/g } @rules;
	is(join(',', grep { !$families{$_} } sort keys %used), '', 'every series the alerts use is served by metrics()');
	for my $want (qw(RuntimeSweeperWorkerDown RuntimeSweeperNotTicking RuntimeSweeperStageErrors
		RuntimeSweeperLivenessFallback RuntimeSweeperBacklog RuntimeSweeperMassOfflineBlocked
		RuntimeSweeperEventsTruncated))
	{
		ok($alert_names{$want}, "alerts.yaml has $want");
	}

	# Rule: the alerts fire when they should and stay quiet otherwise
	# (promtool test rules on synthetic series; only when promtool is there).
	SKIP:
	{
		skip 'promtool is not installed', 2 unless $promtool;
		my ($out, $perr);
		IPC::Run::run([ $promtool, 'check', 'rules', "$docs/alerts.yaml" ], '>', \$out, '2>', \$perr);
		is($? >> 8, 0, 'promtool check rules accepts alerts.yaml') or diag("$out$perr");

		my %rule = map { $_->{alert} => $_ } @rules;
		# Renders the annotation templates the rules use.
		my $render = sub {
			my ($text, $labels, $value) = @_;
			$text =~ s/\{\{ \$labels\.(\w+) \}\}/$labels->{$1}/g;
			$text =~ s/\{\{ \$value \| humanizeDuration \}\}/sprintf('%dm %ds', int($value \/ 60), $value % 60)/ge;
			$text =~ s/\{\{ \$value \}\}/$value/g;
			return $text;
		};
		my $expect = sub {
			my ($alert, @fired) = @_;
			return {
				eval_time => '12m',
				alertname => $alert,
				exp_alerts => [
					map {
						my ($labels, $value) = @$_;
						{
							exp_labels => { %$labels, %{ $rule{$alert}{labels} } },
							exp_annotations => { map { $_ => $render->($rule{$alert}{annotations}{$_}, $labels, $value) }
								  keys %{ $rule{$alert}{annotations} } },
						}
					} @fired
				],
			};
		};
		# "app": its worker stopped at minute 2, one stale runtime is due.
		# "ok": up, but its last tick was at time 0; a stage error at minute 3;
		# a liveness fallback; 3 queued tasks due; 2 stale runtimes that the
		# liveness source keeps alive.
		my $test = {
			rule_files => ["$docs/alerts.yaml"],
			evaluation_interval => '1m',
			tests => [ {
				interval => '1m',
				input_series => [
					{ series => 'runtime_sweeper_up{database="app"}', values => '1 1 0x20' },
					{ series => 'runtime_sweeper_up{database="ok"}', values => '1x22' },
					{ series => 'runtime_sweeper_last_tick_timestamp_seconds{database="app"}', values => '0x22' },
					{ series => 'runtime_sweeper_last_tick_timestamp_seconds{database="ok"}', values => '0x22' },
					{ series => 'runtime_sweeper_stage_errors_total{database="ok",stage="stale_tasks"}', values => '0 0 0 1x19' },
					{ series => 'runtime_sweeper_stage_errors_total{database="ok",stage="queued_expiry"}', values => '0x22' },
					{ series => 'runtime_sweeper_liveness_fallbacks_total{database="ok"}', values => '0x4 1x17' },
					{ series => 'runtime_sweeper_liveness_fallbacks_total{database="app"}', values => '0x22' },
					{ series => 'runtime_sweeper_due_rows{database="ok",stage="queued_expiry"}', values => '3x22' },
					{ series => 'runtime_sweeper_due_rows{database="ok",stage="stale_tasks"}', values => '0x22' },
					{ series => 'runtime_sweeper_due_rows{database="ok",stage="stale_runtimes"}', values => '2x22' },
					{ series => 'runtime_sweeper_liveness_kept_alive_total{database="ok"}', values => '0+1x22' },
					{ series => 'runtime_sweeper_due_rows{database="app",stage="stale_runtimes"}', values => '1x22' },
					{ series => 'runtime_sweeper_liveness_kept_alive_total{database="app"}', values => '0x22' },
					{ series => 'runtime_sweeper_mass_offline_blocked_total{database="ok"}', values => '0x22' },
					{ series => 'runtime_sweeper_events_truncated_total{database="ok"}', values => '0 0 0 0 2x18' },
				],
				alert_rule_test => [
					$expect->('RuntimeSweeperMetricsAbsent'),
					$expect->('RuntimeSweeperWorkerDown', [ { database => 'app' }, 0 ]),
					$expect->('RuntimeSweeperNotTicking', [ { database => 'ok' }, 720 ]),
					$expect->('RuntimeSweeperStageErrors', [ { database => 'ok', stage => 'stale_tasks' }, 1 ]),
					$expect->('RuntimeSweeperLivenessFallback', [ { database => 'ok' }, 1 ]),
					$expect->('RuntimeSweeperBacklog', [ { database => 'ok', stage => 'queued_expiry' }, 3 ]),
					$expect->('RuntimeSweeperStaleRuntimesBacklog', [ { database => 'app', stage => 'stale_runtimes' }, 1 ]),
					$expect->('RuntimeSweeperMassOfflineBlocked'),
					$expect->('RuntimeSweeperEventsTruncated', [ { database => 'ok' }, 2 ]),
				],
			} ],
		};
		my $file = PostgreSQL::Test::Utils::tempdir() . '/alerts_test.yaml';
		open my $fh, '>', $file or die "$file: $!";
		print $fh JSON::PP->new->canonical->pretty->encode($test);
		close $fh;
		($out, $perr) = ('', '');
		IPC::Run::run([ $promtool, 'test', 'rules', $file ], '>', \$out, '2>', \$perr);
		is($? >> 8, 0, 'promtool test rules: each alert fires on its condition only') or diag("$out$perr");
	}
}

$node->stop;
done_testing();
