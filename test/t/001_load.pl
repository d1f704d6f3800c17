# Loading the library: queue must be preloaded (shared_preload_libraries).
#
# Without the preload, CREATE EXTENSION (which loads the library for its C
# functions) must fail with the documented error and hint, and leave
# nothing behind; LOAD fails the same way.  With the preload, the extension
# installs and a job goes the whole way: create_queue, enqueue, claim,
# complete, and it shows up as completed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('load');
$node->init;
$node->start;

# --- not preloaded -------------------------------------------------------

my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION queue', on_error_stop => 1);
isnt($ret, 0, 'CREATE EXTENSION fails when queue is not preloaded');
like(
	$stderr,
	qr/ERROR:  queue must be loaded via shared_preload_libraries/,
	'the error says the library must be preloaded');
like(
	$stderr,
	qr/HINT:  Add queue to shared_preload_libraries in postgresql\.conf and restart the server\./,
	'the hint says how to fix it');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_extension WHERE extname = 'queue'"),
	'0',
	'the failed CREATE EXTENSION left no extension behind');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_namespace WHERE nspname = 'queue'"),
	'0',
	'nor a schema');

($ret, $stdout, $stderr) = $node->psql('postgres', "LOAD 'queue'");
isnt($ret, 0, 'LOAD fails when queue is not preloaded');
like(
	$stderr,
	qr/queue must be loaded via shared_preload_libraries/,
	'LOAD gives the same error');

# --- preloaded -----------------------------------------------------------

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'queue'");
$node->restart;

is( $node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'queue', 'queue is preloaded after the restart');
($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION queue', on_error_stop => 1);
is($ret,    0,  'CREATE EXTENSION works when queue is preloaded');
is($stderr, '', 'without a message');

# One job, round trip.  The claim and the completion are separate
# transactions, as a worker would run them.
$node->safe_psql('postgres',
	q{SELECT queue.create_queue('roundtrip', lease_timeout => '5 minutes')});
my $id = $node->safe_psql('postgres',
	q{SELECT queue.enqueue('roundtrip', '{"n": 1}')});
like($id, qr/^\d+$/, 'enqueue returns the job id');

my $claimed = $node->safe_psql('postgres',
	q{SELECT job_id, lease_token, payload, attempt
	    FROM queue.claim('roundtrip', 'worker-1')});
my ($cid, $token, $payload, $attempt) = split /\|/, $claimed;
is($cid,     $id,        'claim returns the enqueued job');
is($payload, '{"n": 1}', 'with its payload');
is($attempt, '1',        'as attempt 1');
like($token, qr/^[0-9a-f-]{36}$/, 'and a lease token');

is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM queue.claim('roundtrip', 'worker-2')}),
	'0',
	'a running job is not claimed twice');

$node->safe_psql('postgres',
	qq{SELECT queue.complete($id, '$token', '{"ok": true}')});
is( $node->safe_psql(
		'postgres',
		"SELECT state, attempts, worker, result FROM queue.get_job($id)"),
	'completed|1|worker-1|{"ok": true}',
	'the job is completed, with its result');
is($node->safe_psql('postgres', 'SELECT count(*) FROM queue.job'),
	'0', 'and no longer live');

# Completing it again with the same token is refused: fencing.
($ret, $stdout, $stderr) = $node->psql('postgres',
	qq{SELECT queue.complete($id, '$token')});
isnt($ret, 0, 'a second completion fails');
like(
	$stderr,
	qr/lease token \Q$token\E is not the current lease of job $id/,
	'because the lease is no longer held');

$node->stop;
done_testing();
