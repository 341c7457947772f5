# The benchmark harness (bench/run) still works end to end: a tiny --smoke run produces its results.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $out = PostgreSQL::Test::Utils::tempdir('bench');

# bench/run starts (and removes) its own throwaway cluster; the bound only
# keeps a hung run from hanging the suite, it is not a performance check.
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ "$root/bench/run", '--smoke', '--out', "$out/smoke" ],
	'>', \$stdout, '2>', \$stderr, IPC::Run::timeout(600));
diag("bench/run output:\n$stdout$stderr") unless $ok;

# Rule: the one benchmark command runs to the end and says where its results are.
ok($ok, 'bench/run --smoke exits with status 0');
like($stdout, qr/done: \Q$out\E\/smoke\/summary\.md/, 'bench/run reports its summary file');

# Rule: the summary has a section for each measurement (a)-(f) of docs/benchmarks.md.
my $summary = -f "$out/smoke/summary.md" ? slurp_file("$out/smoke/summary.md") : '';
for my $section ('(a) Idle tick', '(b) Detection latency', '(c) Drain', '(d) Storm',
	'(e) Overhead', '(f) Worker memory')
{
	like($summary, qr/^## \Q$section\E/m, "summary has section $section");
}

# Rule: (a) measured both contenders on the same data, with and without the advised indexes.
my $tsv = -f "$out/smoke/tick_cost.tsv" ? slurp_file("$out/smoke/tick_cost.tsv") : '';
like($tsv, qr/^5000\t100\t[0-9.]+\t[0-9.]+\t[0-9.]+\t[0-9.]+\t/m,
	'tick_cost.tsv has a row with all four idle-tick figures for the smoke size');

# Rule: (b) every runtime that stopped heartbeating was reported offline to the listener.
my $det = -f "$out/smoke/b_detection.txt" ? slurp_file("$out/smoke/b_detection.txt") : '';
like($det, qr/^summary runtimes=20 detected=20 /m, 'all 20 dead runtimes were detected');

# Rule: (d) the extension and the baseline handled the same storm completely: every
# timed-out task was failed and got its retry.
my $ext = -f "$out/smoke/d_storm_ext.txt" ? slurp_file("$out/smoke/d_storm_ext.txt") : '';
my $seed = -f "$out/smoke/d_storm_seed.txt" ? slurp_file("$out/smoke/d_storm_seed.txt") : '';
like($ext, qr/\bretries=200\b/, 'the extension created 200 retries in the storm');
like($seed, qr/\btasks_failed=200 retries=200\b/, 'the baseline failed 200 tasks and created 200 retries');

# Rule: (f) the memory figures were read from the worker process.
my $mem = -f "$out/smoke/f_memory.txt" ? slurp_file("$out/smoke/f_memory.txt") : '';
like($mem, qr/RssAnon=\d+.*context_bytes=\d+/s, 'worker memory figures were collected');

# Rule: the harness cleans up after itself: its cluster is stopped and removed.
unlike($stdout, qr/cluster directory kept/, 'no cluster directory left behind');

done_testing();
