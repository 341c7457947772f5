# RedisServer: a throw-away redis-server for the TAP tests of liveness = redis.
#
# The server listens on 127.0.0.1 at a free port and on a unix socket in its
# own short temporary directory; it keeps no data on disk.  An END block kills
# (SIGCONT, then SIGKILL) every server this process started and did not stop,
# so a failed or bailed-out test leaves none behind, even a SIGSTOPped one.
# Waiting is a bounded poll (PG_TEST_TIMEOUT_DEFAULT).
#
#   my $redis = RedisServer->new;           not started yet
#   $redis->start;                          start and wait until it answers PING
#   $redis->start(password => $secret);     the same with requirepass
#   $redis->cli('SET', $key, '1');          redis-cli against it, output chomped
#   $redis->port, ->socket_path, ->url, ->pid    where it listens; pid while running
#   $redis->stop;                           SIGCONT + SIGTERM, wait until gone
package RedisServer;

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# pid => 1 for each server started by this process and not stopped yet.
my %running;
# The process that loaded us: forked children must not kill the servers.
my $owner_pid = $$;

# A new (not yet started) server on a free port with its own directory.
sub new
{
	my ($class) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir_short();
	return bless {
		port => PostgreSQL::Test::Cluster::get_free_port(),
		dir => $dir,
		socket => "$dir/redis.sock",
		pid => undef,
		password => undef,
	}, $class;
}

# The TCP port on 127.0.0.1.
sub port { return $_[0]{port}; }

# The path of the unix socket.
sub socket_path { return $_[0]{socket}; }

# The redis:// URL of the TCP port, without password or database.
sub url { return "redis://127.0.0.1:$_[0]{port}"; }

# The pid of the running server (undef when stopped), e.g. to SIGSTOP it.
sub pid { return $_[0]{pid}; }

# Runs redis-cli against the server (with the password of the last start);
# returns its output without the trailing newline.
sub cli
{
	my ($self, @args) = @_;
	my @cmd = ('redis-cli', '-p', $self->{port});
	push @cmd, '-a', $self->{password}, '--no-auth-warning'
	  if defined $self->{password};
	my ($out, $err) = ('', '');
	IPC::Run::run([ @cmd, @args ], '>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

# Starts the server (option password => requirepass) and waits until it
# answers PING; bails out if it does not.
sub start
{
	my ($self, %opt) = @_;
	die 'redis-server is running already' if $self->{pid};
	my $dir = $self->{dir};
	my @extra;
	push @extra, '--requirepass', $opt{password} if defined $opt{password};
	$self->{password} = $opt{password};
	unlink "$dir/redis.pid";
	system('redis-server', '--port', $self->{port}, '--bind', '127.0.0.1',
		'--save', '', '--appendonly', 'no', '--daemonize', 'yes',
		'--pidfile', "$dir/redis.pid", '--dir', $dir,
		'--logfile', "$dir/redis.log", '--unixsocket', $self->{socket},
		'--unixsocketperm', '700', @extra) == 0
	  or BAIL_OUT('redis-server did not start');
	# Learn the pid first, so that the END block can stop the server even if
	# it never answers.
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	until (-s "$dir/redis.pid")
	{
		BAIL_OUT('redis-server wrote no pid file') if time > $deadline;
		usleep(20_000);
	}
	my $pid = slurp_file("$dir/redis.pid");
	chomp $pid;
	$self->{pid} = $pid;
	$running{$pid} = 1;
	until ($self->cli('PING') eq 'PONG')
	{
		BAIL_OUT('redis-server never answered PING') if time > $deadline;
		usleep(20_000);
	}
	return;
}

# Stops the server (thawing it first if it was SIGSTOPped) and waits until
# the process is gone; nothing happens if it is not running.
sub stop
{
	my ($self) = @_;
	my $pid = $self->{pid};
	return unless $pid;
	kill 'CONT', $pid;
	kill 'TERM', $pid;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (kill 0, $pid)
	{
		die 'redis-server did not stop' if time > $deadline;
		usleep(20_000);
	}
	delete $running{$pid};
	$self->{pid} = undef;
	return;
}

# Whatever happened (die, BAIL_OUT, a failed test), no server outlives the test.
END
{
	if ($$ == $owner_pid)
	{
		for my $pid (keys %running)
		{
			kill 'CONT', $pid;
			kill 'KILL', $pid;
		}
	}
}

1;
