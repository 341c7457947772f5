# The Debian package postgresql-15-runtime-sweeper: it builds, holds the right files, and works installed in a clean cluster.
#
# test/run builds it (dpkg-buildpackage -b in a copy of the tree, as this
# unprivileged user) and, as root, installs it with dpkg -i, then runs this
# file with RS_PACKAGE_DIR pointing at the outcome.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Compare qw(compare);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SweeperTest;
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $dir = $ENV{RS_PACKAGE_DIR};
plan skip_all => 'the package is built by test/run (RS_PACKAGE_DIR is not set)'
  unless $dir && -d $dir;

my $pkg = 'postgresql-15-runtime-sweeper';
my $meta = decode_json(slurp_file("$root/META.json"));

# The last lines of a log, for diagnostics.
sub tail_of
{
	my ($file, $n) = @_;
	return "($file is missing)" unless -f $file;
	my @lines = split /\n/, slurp_file($file);
	splice(@lines, 0, @lines - $n) if @lines > $n;
	return join("\n", @lines);
}

# Standard output of a command run without a shell; dies when it fails.
sub run_out
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err)
	  or die "@cmd failed: $err";
	return $out;
}

# Rule: dpkg-buildpackage builds the binary package from a clean copy of the tree.
my $build_rc = -f "$dir/build.rc" ? slurp_file("$dir/build.rc") =~ s/\s+//gr : 'missing';
is($build_rc, '0', 'dpkg-buildpackage -us -uc -b succeeded')
  or diag(tail_of("$dir/build.log", 60));
my ($deb) = grep { !/-dbgsym_/ } glob("$dir/${pkg}_*.deb");
ok($deb, "it produced ${pkg}_*.deb");
if ($build_rc ne '0' || !$deb)
{
	done_testing();
	exit 0;
}
unlike(slurp_file("$dir/build.log"), qr/^(dpkg-shlibdeps|dh_\w+): warning/mi,
	'no dpkg-shlibdeps or debhelper warning in the build log');

# Rule: the control data: package name, the release version of META.json and
# debian/changelog, and dependencies on the server and on libhiredis (shlibs).
my %f = map { $_ => run_out('dpkg-deb', '-f', $deb, $_) =~ s/\s+$//r }
  qw(Package Version Architecture Depends Source);
is($f{Package}, $pkg, 'package name');
is($f{Source}, 'runtime-sweeper', 'source package name');
is($f{Version}, $meta->{version}, "version is the release version $meta->{version}");
isnt($f{Architecture}, 'all', "architecture-specific package ($f{Architecture})");
like($f{Depends}, qr/(^|, )postgresql-15( |,|$)/, 'depends on postgresql-15');
like($f{Depends}, qr/(^|, )libhiredis[0-9.]+ /, 'depends on the libhiredis runtime package (from shlibs)');

# Rule: the package holds the library, the control file and every install and
# update script of the tree, in the server's directories, plus the docs.
my %files = map { s{^\./}{/}r => 1 }
  grep { !m{/$} } map { (split ' ', $_, 6)[5] } split /\n/, run_out('dpkg-deb', '-c', $deb);
my $lib = '/usr/lib/postgresql/15/lib/runtime_sweeper.so';
my $extdir = '/usr/share/postgresql/15/extension';
my @sql = map { basename($_) } glob("$root/sql/runtime_sweeper--*.sql");
cmp_ok(scalar @sql, '>=', 2, 'the tree has an install script and an update script (' . join(' ', @sql) . ')');
my @want = ($lib, "$extdir/runtime_sweeper.control", map { "$extdir/$_" } @sql);
for my $file (@want)
{
	ok($files{$file}, "package contains $file");
}
ok($files{"/usr/share/doc/$pkg/copyright"}, 'package contains the copyright file');
ok($files{"/usr/share/doc/$pkg/changelog.gz"}
	  || $files{"/usr/share/doc/$pkg/changelog.Debian.gz"}, 'package contains the changelog');
my @extra = grep { !m{^/usr/share/doc/$pkg/} } sort keys %files;
is_deeply(\@extra, [ sort @want ], 'nothing else outside the doc directory (no bitcode, no test files)');

# Rule: the extension files in the package are those of the tree, byte for byte.
my $x = PostgreSQL::Test::Utils::tempdir('unpacked');
run_out('dpkg-deb', '-x', $deb, $x);
is(compare("$x$extdir/runtime_sweeper.control", "$root/runtime_sweeper.control"), 0,
	'the packaged control file is the tree\'s');
for my $s (@sql)
{
	is(compare("$x$extdir/$s", "$root/sql/$s"), 0, "the packaged $s is the tree's");
}

# Rule: the library links libhiredis and every library it needs is found.
my $ldd = run_out('ldd', "$x$lib");
like($ldd, qr/libhiredis\.so\.\S+ => \/\S+/, 'runtime_sweeper.so links libhiredis, resolved') or diag($ldd);
unlike($ldd, qr/not found/, 'ldd finds every library') or diag($ldd);

# The files of the preloaded runtime_sweeper.so that a process has mapped.
sub mapped_libs
{
	my ($pid) = @_;
	my %libs = map { (split ' ', $_, 6)[5] => 1 }
	  grep { /runtime_sweeper\.so/ } split /\n/, slurp_file("/proc/$pid/maps");
	return join(' ', sort map { s/\s+$//r } keys %libs);
}

# In a new cluster that preloads the library: the worker starts, CREATE
# EXTENSION installs default_version, an upgrade from 1.0 works, and sweep()
# flips a stale runtime offline.  Returns the node (stopped).
sub check_cluster
{
	my ($name, $conf, $expect_lib) = @_;
	my $node = sweeper_node($name, conf => $conf);
	my $worker = expect_worker_pid($node);
	is(mapped_libs($worker), $expect_lib, "$name: the worker runs $expect_lib");
	is(mapped_libs($node->{_pid}), $expect_lib, "$name: the postmaster preloaded $expect_lib");
	my ($default) = slurp_file("$root/runtime_sweeper.control") =~ /default_version\s*=\s*'([^']+)'/;
	is($node->safe_psql('postgres',
			"SELECT extversion FROM pg_extension WHERE extname = 'runtime_sweeper'"),
		$default, "$name: CREATE EXTENSION installed version $default");
	$node->safe_psql('postgres', 'CREATE DATABASE upgrade');
	$node->safe_psql('upgrade',
		"CREATE EXTENSION runtime_sweeper VERSION '1.0'; ALTER EXTENSION runtime_sweeper UPDATE");
	is($node->safe_psql('upgrade',
			"SELECT extversion FROM pg_extension WHERE extname = 'runtime_sweeper'"),
		$default, "$name: ALTER EXTENSION UPDATE from 1.0 reaches $default");
	my $rt = $node->safe_psql('postgres', q{SELECT fx_runtime(fx_workspace(), 'online', '1 hour')});
	is($node->safe_psql('postgres',
			"SELECT affected FROM runtime_sweeper.sweep() WHERE stage = 'stale_runtimes'"),
		'1', "$name: sweep() flips the stale runtime");
	is($node->safe_psql('postgres', "SELECT status FROM agent_runtime WHERE id = '$rt'"),
		'offline', "$name: the stale runtime is offline");
	is(worker_status($node, 'errors'), '0', "$name: the worker counted no error");
	$node->stop;
	return $node;
}

# Rule: the package's own files work, unpacked anywhere (no root needed):
# Debian's extension_destdir finds control and scripts under the unpacked
# tree and the '$libdir' of module_pathname there; dynamic_library_path finds
# the preloaded library there.
check_cluster('unpacked', qq{
extension_destdir = '$x'
dynamic_library_path = '$x/usr/lib/postgresql/15/lib:\$libdir'
runtime_sweeper.interval = '1h'
}, "$x$lib");

# Rule: installed with dpkg -i (test/run does that as root) the package is
# registered with its files, and a clean cluster with nothing but
# shared_preload_libraries loads it from the system directories.
SKIP:
{
	skip 'package not installed: ' . tail_of("$dir/install.log", 1), 1
	  unless -f "$dir/install.rc";
	is(slurp_file("$dir/install.rc") =~ s/\s+//gr, '0', "dpkg -i $pkg succeeded")
	  or diag(tail_of("$dir/install.log", 40));
	is(run_out('dpkg-query', '-W', '-f', '${Status} ${Version}', $pkg),
		"install ok installed $f{Version}", "dpkg knows $pkg $f{Version} as installed");
	my %listed = map { $_ => 1 } split /\n/, run_out('dpkg-query', '-L', $pkg);
	is_deeply([ grep { !$listed{$_} } @want ], [], 'dpkg lists every extension file as the package\'s');
	check_cluster('installed', "runtime_sweeper.interval = '1h'", $lib);
}

done_testing();
