# SweeperTest: small shared helpers for the TAP suites of runtime_sweeper.
#
# test/run puts test/lib on PERL5LIB.  Every helper works on a
# PostgreSQL::Test::Cluster node; nothing here sleeps: waiting is always a
# bounded poll (poll_query_until, default bound PG_TEST_TIMEOUT_DEFAULT = 180 s).
#
#   my $node = sweeper_node('main', conf => "runtime_sweeper.interval = '1h'");
#       A started node with the library preloaded and runtime_sweeper.database =
#       'postgres', the extension created in database postgres and the fixture
#       (test/fixtures/app_schema.sql + sample_data.sql) loaded there.  Options:
#         conf             => extra postgresql.conf text (appended after ours)
#         preload          => 0: library NOT in shared_preload_libraries
#         extension        => 0: no CREATE EXTENSION (implies fixture => 0)
#         fixture          => 0: no application tables
#         allows_streaming => 1: passed to $node->init
#         start            => 0: initialise and configure only
#   load_fixture($node, $db, @files)   psql -1 -f each file (default: the schema
#       and the helpers), in ONE transaction, so the tables appear at once.
#   fixture_path($file)                absolute path of test/fixtures/$file
#   worker_status($node, $col, $db)    a column of runtime_sweeper.status for
#       the worker's database ('postgres' unless $db); queried in database postgres
#   tick($node, $db)                   wake() the worker and wait until a whole
#       tick that started after the call has finished; returns the tick count
#   idle_loop($node, $db)              wake() a worker that does not tick (paused,
#       standby, waiting) and wait until it has been round its loop once more
#   log_count($node, $regex)           how many times $regex matches the server log
#   expect_worker_pid($node)           wait for a worker pid in the status view
package SweeperTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter 'import';
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(sweeper_node load_fixture fixture_path worker_status tick
  idle_loop log_count expect_worker_pid);

my $fixtures = abs_path(dirname(__FILE__) . '/../fixtures');

sub fixture_path
{
	my ($file) = @_;
	return "$fixtures/$file";
}

sub sweeper_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(allows_streaming => $opt{allows_streaming} ? 1 : 0);
	my $conf = "runtime_sweeper.database = 'postgres'\n";
	$conf = "shared_preload_libraries = 'runtime_sweeper'\n" . $conf
	  unless defined $opt{preload} && !$opt{preload};
	$conf .= "$opt{conf}\n" if defined $opt{conf};
	$node->append_conf('postgresql.conf', $conf);
	return $node if defined $opt{start} && !$opt{start};

	$node->start;
	return $node if defined $opt{extension} && !$opt{extension};
	$node->safe_psql('postgres', 'CREATE EXTENSION runtime_sweeper');
	load_fixture($node, 'postgres')
	  unless defined $opt{fixture} && !$opt{fixture};
	return $node;
}

sub load_fixture
{
	my ($node, $db, @files) = @_;
	@files = ('app_schema.sql', 'sample_data.sql') unless @files;
	my ($out, $err);
	my $rc = $node->psql(
		$db, undef,
		stdout => \$out,
		stderr => \$err,
		extra_params =>
		  [ '-v', 'ON_ERROR_STOP=1', '-1', map { ('-f', fixture_path($_)) } @files ]);
	BAIL_OUT("loading fixture @files failed: $err") if $rc != 0;
	return;
}

sub worker_status
{
	my ($node, $col, $db) = @_;
	$db //= 'postgres';
	return $node->safe_psql('postgres',
		"SELECT $col FROM runtime_sweeper.status WHERE database = '$db'");
}

# A tick that started after this call has finished when either two more ticks
# have completed (the second began after the first, which was still running
# when we looked), or the latest tick started after our timestamp and the
# worker is no longer sweeping.
sub tick
{
	my ($node, $db) = @_;
	$db //= 'postgres';
	my ($n, $t) = split /\|/,
	  $node->safe_psql('postgres',
		"SELECT ticks, clock_timestamp() FROM runtime_sweeper.status WHERE database = '$db'");
	die "no status row for database $db" unless defined $t;
	$node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()') eq 't'
	  or die "wake() found no worker on " . $node->name;
	$node->poll_query_until(
		'postgres', qq{
		SELECT ticks >= $n + 2
		       OR (last_tick_start > '$t' AND state <> 'sweeping')
		FROM runtime_sweeper.status WHERE database = '$db'})
	  or die "no tick after wake() on " . $node->name;
	return worker_status($node, 'ticks', $db);
}

# The loop records its next wake-up (next_tick) every time round, ticking or
# not; each pass has a later "now", so a larger next_tick is a later pass.
# Two passes: the second certainly began after this call.
sub idle_loop
{
	my ($node, $db) = @_;
	$db //= 'postgres';
	for (1 .. 2)
	{
		my $before = worker_status($node, 'next_tick', $db);
		$node->safe_psql('postgres', 'SELECT runtime_sweeper.wake()');
		$node->poll_query_until(
			'postgres', qq{
			SELECT next_tick > coalesce(nullif('$before', '')::timestamptz, '-infinity')
			FROM runtime_sweeper.status WHERE database = '$db'})
		  or die "the worker did not go round its loop on " . $node->name;
	}
	return;
}

sub log_count
{
	my ($node, $re) = @_;
	my $log = slurp_file($node->logfile);
	my $n = () = $log =~ /$re/g;
	return $n;
}

sub expect_worker_pid
{
	my ($node, $db) = @_;
	$db //= 'postgres';
	$node->poll_query_until('postgres',
		"SELECT pid IS NOT NULL FROM runtime_sweeper.status WHERE database = '$db'")
	  or die "no worker pid on " . $node->name;
	return worker_status($node, 'pid', $db);
}

1;
