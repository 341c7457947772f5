# The Python listener example (examples/listener-python) gets every event exactly once across server restarts, lost logins and its own restart.
use strict;
use warnings;

use ListenerScenario;
use Test::More;

my $python = '/usr/bin/python3';
plan skip_all => "$python with psycopg 3 is not available (apt-get install python3-psycopg)"
  unless -x $python && system($python, '-c', 'import psycopg') == 0;

# Rules: see ListenerScenario (catch-up on start, live delivery, reconnect after
# restart and after a refused login, SIGTERM with saved state, exactly once).
run_listener_scenario('python',
	[ $python, example_path('listener-python/listener.py') ]);

done_testing();
