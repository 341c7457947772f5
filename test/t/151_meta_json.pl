# META.json is valid PGXN metadata (meta-spec 1.0) and agrees with the control file, the tree and debian/changelog.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempfile);
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/../..');
my $schema = "$root/test/pgxn/meta-spec-v1.schema.json";
my $validate = "$root/test/pgxn/validate.py";
my $json = JSON::PP->new->canonical;

my $meta_text = slurp_file("$root/META.json");
my $meta = eval { $json->decode($meta_text) };
ok($meta, 'META.json is a JSON document') or diag($@);
BAIL_OUT('META.json does not parse') unless $meta;

# Runs the schema validator on a Perl structure (or on the file itself);
# returns (exit status, output).
sub validate
{
	my ($doc) = @_;
	my $file = "$root/META.json";
	if (ref $doc)
	{
		(my $fh, $file) = tempfile(TMPDIR => 1, SUFFIX => '.json', UNLINK => 1);
		print $fh $json->encode($doc);
		close $fh;
	}
	my $out = `python3 '$validate' '$schema' '$file' 2>&1`;
	return ($? >> 8, $out);
}

# A deep copy of META.json with one change applied by $edit.
sub mutated
{
	my ($edit) = @_;
	my $copy = $json->decode($meta_text);
	$edit->($copy);
	return $copy;
}

# Rule: META.json follows every rule of the PGXN Meta Spec 1.0 schema.
my ($rc, $out) = validate();
is($rc, 0, 'META.json validates against the PGXN meta-spec 1.0 schema') or diag($out);

# Rule: the validator really enforces the spec: each broken copy is rejected
# and the complaint names the offending key.
my @broken = (
	[ 'no abstract', sub { delete $_[0]{abstract} }, qr/'abstract' is a required property/ ],
	[ 'no provides', sub { delete $_[0]{provides} }, qr/'provides' is a required property/ ],
	[ 'version not semver', sub { $_[0]{version} = '1.1' }, qr/\$\['version'\]/ ],
	[ 'provides version not semver', sub { $_[0]{provides}{runtime_sweeper}{version} = '1.1' },
		qr/\$\['provides'\]\['runtime_sweeper'\]\['version'\]/ ],
	[ 'license not in the list', sub { $_[0]{license} = 'PostgreSQL' }, qr/\$\['license'\]/ ],
	[ 'unknown top-level key', sub { $_[0]{homepage} = 'https://example.org/' },
		qr/'homepage' does not match any of the regexes: '\^\[xX\]_'/ ],
	[ 'provides entry without file', sub { delete $_[0]{provides}{runtime_sweeper}{file} },
		qr/'file' is a required property/ ],
	[ 'absolute provides file', sub { $_[0]{provides}{runtime_sweeper}{file} = '/sql/x.sql' },
		qr/\$\['provides'\]\['runtime_sweeper'\]\['file'\]/ ],
	[ 'unknown prereq phase', sub { $_[0]{prereqs}{install} = { requires => { PostgreSQL => '15.0.0' } } },
		qr/\$\['prereqs'\]/ ],
	[ 'prereq version not a range', sub { $_[0]{prereqs}{runtime}{requires}{PostgreSQL} = '15' },
		qr/\$\['prereqs'\]\['runtime'\]\['requires'\]\['PostgreSQL'\]/ ],
	[ 'meta-spec 2', sub { $_[0]{'meta-spec'}{version} = '2.0.0' }, qr/\$\['meta-spec'\]\['version'\]/ ],
	[ 'bad release_status', sub { $_[0]{release_status} = 'final' }, qr/\$\['release_status'\]/ ],
	[ 'name with a space', sub { $_[0]{name} = 'runtime sweeper' }, qr/\$\['name'\]/ ],
);
for my $case (@broken)
{
	my ($what, $edit, $complaint) = @$case;
	my ($brc, $bout) = validate(mutated($edit));
	is($brc, 1, "rejected: $what");
	like($bout, $complaint, "the complaint names the key: $what");
}
# (and custom x_ keys are allowed, as the spec says)
($rc, $out) = validate(mutated(sub { $_[0]{x_build} = { ci => 'test/run' } }));
is($rc, 0, 'a custom x_ key is accepted') or diag($out);

# Rule: META.json names the right things: the distribution and its one
# extension are runtime_sweeper, under the PostgreSQL license, stable.
is($meta->{name}, 'runtime_sweeper', 'distribution name');
is_deeply([ sort keys %{ $meta->{provides} } ], ['runtime_sweeper'], 'provides exactly the extension');
is($meta->{license}, 'postgresql', 'license is postgresql');
is($meta->{release_status}, 'stable', 'release_status is stable');

# Rule: every file META.json points at is in the tree, and the provided
# file is the extension's base install script.
my $ext = $meta->{provides}{runtime_sweeper};
ok(-f "$root/$ext->{file}", "provides file $ext->{file} exists");
ok(-f "$root/$ext->{docfile}", "provides docfile $ext->{docfile} exists");
like($ext->{file}, qr{^sql/runtime_sweeper--[0-9.]+\.sql$}, 'the provided file is an install script of the extension');

# Rule: the versions agree: META.json's version is the semver of the control
# file's default_version ('1.1' -> '1.1.0'), and so is the extension's.
my ($default_version) = slurp_file("$root/runtime_sweeper.control") =~ /^\s*default_version\s*=\s*'([^']+)'/m;
ok(defined $default_version, 'runtime_sweeper.control has a default_version');
my @parts = split /\./, $default_version;
push @parts, 0 while @parts < 3;
my $semver = join '.', @parts;
is($meta->{version}, $semver, "distribution version is default_version $default_version as semver");
is($ext->{version}, $semver, 'the provided extension has the same version');

# Rule: CREATE EXTENSION can reach default_version from the provided base
# script through the update scripts in sql/ (what PostgreSQL chains).
my ($base) = $ext->{file} =~ /--([0-9.]+)\.sql$/;
my %step;
for my $f (glob "$root/sql/runtime_sweeper--*--*.sql")
{
	$step{$1} = $2 if $f =~ m{/runtime_sweeper--([^-]+)--([^-]+)\.sql$};
}
my ($v, @path) = ($base);
for (1 .. 100)
{
	last if $v eq $default_version || !exists $step{$v};
	push @path, $v = $step{$v};
}
is($v, $default_version, "update scripts lead from $base to $default_version (@path)");

# Rule: the prerequisites are well formed and met by the server we build for.
my $pg_req = $meta->{prereqs}{runtime}{requires}{PostgreSQL};
like($pg_req, qr/^\d+\.\d+\.\d+$/, "runtime requires PostgreSQL $pg_req");
my ($pg_major) = `pg_config --version` =~ /PostgreSQL (\d+)/;
my ($req_major) = $pg_req =~ /^(\d+)/;
cmp_ok($pg_major, '>=', $req_major, "the server we build for (PostgreSQL $pg_major) meets it");

# Rule: the Debian package is released with the same version.
my ($deb_version) = slurp_file("$root/debian/changelog") =~ /^runtime-sweeper \(([^)]+)\)/;
is($deb_version, $meta->{version}, 'debian/changelog is at the META.json version');

done_testing();
