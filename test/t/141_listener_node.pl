# The Node.js listener example (examples/listener-node) gets every event exactly once across server restarts, lost logins and its own restart.
use strict;
use warnings;

use ListenerScenario;
use Test::More;

my $has_node = grep { -x "$_/node" } split /:/, $ENV{PATH};
plan skip_all => 'node is not installed (apt-get install nodejs npm)' unless $has_node;
# node is there: a missing pg package is a broken setup, not a reason to skip.
unless (-d example_path('listener-node/node_modules/pg'))
{
	fail('examples/listener-node/node_modules/pg is missing: run npm ci --omit=dev there (test/run does)');
	done_testing();
	exit;
}

# Rules: see ListenerScenario (catch-up on start, live delivery, reconnect after
# restart and after a refused login, SIGTERM with saved state, exactly once).
run_listener_scenario('node', [ 'node', example_path('listener-node/listener.js') ]);

done_testing();
