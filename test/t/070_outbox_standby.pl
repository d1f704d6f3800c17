# The relay on a streaming standby, and at its promotion.
#
# Both servers preload the library with queue.databases = 'postgres'.  The
# primary relays a first lot of events with its worker; then its worker is
# stopped (queue.databases emptied on the primary alone, as in
# 050_standby.pl) and a second lot is published: those stay in the outbox.
# The standby replays all of it.  On the standby nothing relays: no queue
# launcher or worker runs, the outbox keeps its events however many
# naptimes go by, and nothing about the queue is logged; queue.relay()
# called by hand fails as any write does in a read-only transaction, and
# moves nothing.  The primary is then stopped (immediate) and the standby
# promoted: its worker starts and relays the second lot, and every event
# reaches both subscribed queues exactly once, per key in publishing
# order; the first lot is not relayed again.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $lot1  = 300;
my $lot2  = 700;
my $nkeys = 20;

my $primary = QueueTest::preloaded_node(
	'ob_primary', q{
queue.databases = 'postgres'
queue.naptime = '100ms'
synchronous_commit = on
max_connections = 100
},
	allows_streaming => 1);
$primary->safe_psql(
	'postgres', qq{
CREATE EXTENSION queue;
SELECT queue.create_queue('sb_plain');
SELECT queue.create_queue('sb_ordered', ordered => true);
SELECT queue.create_topic('sb');
SELECT queue.subscribe('sb', queue => 'sb_plain');
SELECT queue.subscribe('sb', queue => 'sb_ordered');
CREATE TABLE keyseq (key text PRIMARY KEY, seq int NOT NULL);
INSERT INTO keyseq SELECT 'k' || g, 0 FROM generate_series(1, $nkeys) g;
CREATE TABLE published (event_id bigint PRIMARY KEY, key text NOT NULL,
						seq int NOT NULL, lot int NOT NULL);
-- publishes n events, one transaction each, with the key's sequence
-- number drawn after the event's id (under the key lock)
CREATE PROCEDURE pub(lot int, n int)
LANGUAGE plpgsql AS \$\$
DECLARE
	k text;
	id bigint;
	s int;
BEGIN
	FOR i IN 1 .. n LOOP
		k := 'k' || (1 + floor(random() * $nkeys))::int;
		id := queue.publish('sb', jsonb_build_object('lot', lot, 'i', i), key => k);
		UPDATE keyseq SET seq = seq + 1 WHERE key = k RETURNING seq INTO s;
		INSERT INTO published VALUES (id, k, s, lot);
		COMMIT;
	END LOOP;
END
\$\$;
});
ok(QueueTest::worker_idle($primary), 'the primary runs its worker');

my $standby = QueueTest::standby_of($primary, 'ob_standby');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');

# --- lot 1: relayed by the primary's worker -------------------------------------

$primary->safe_psql('postgres', "CALL pub(1, $lot1)");
ok( $primary->poll_query_until(
		'postgres', 'SELECT count(*) = 0 FROM queue.event'),
	'the primary relays lot 1');

# --- lot 2: published with the primary's worker stopped ---------------------------

ok(QueueTest::stop_workers($primary), "the primary's worker is stopped");
$primary->safe_psql('postgres', "CALL pub(2, $lot2)");
is($primary->safe_psql('postgres', 'SELECT count(*) FROM queue.event'),
	$lot2, 'lot 2 waits in the outbox of the primary');

$primary->wait_for_catchup($standby);
is( $standby->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM queue.event) || '/' ||
	   (SELECT count(*) FROM queue.event_archive) || '/' ||
	   (SELECT count(*) FROM queue.jobs)}),
	"$lot2/$lot1/" . (2 * $lot1),
	'the standby has replayed both lots: lot 2 in the outbox, lot 1 relayed');

# many naptimes (100ms) and relay idle intervals (1s)
usleep(2_500_000);
is($standby->safe_psql('postgres', 'SELECT count(*) FROM queue.event'),
	$lot2, 'on the standby, lot 2 stays in the outbox');
is( $standby->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type IN ('queue launcher', 'queue worker')}),
	'0',
	'no queue launcher or worker runs on the standby');

is(join("\n", QueueTest::queue_log_lines($standby)), '',
	'and the standby logged nothing about the queue');

# By hand, the relay fails as any write does on a standby.
my ($ret, $stdout, $stderr) =
  $standby->psql('postgres', 'SELECT queue.relay()');
isnt($ret, 0, 'queue.relay() by hand on the standby fails');
like($stderr, qr/read-only transaction|recovery/,
	'as a write in a read-only transaction');
note "queue.relay() on the standby: $stderr";
is($standby->safe_psql('postgres', 'SELECT count(*) FROM queue.event'),
	$lot2, 'and moves nothing');

# --- the primary dies; the standby takes over -------------------------------------

$primary->stop('immediate');
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the standby is promoted');
ok( $standby->poll_query_until(
		'postgres', 'SELECT count(*) = 0 FROM queue.event'),
	"the new primary's worker relays lot 2");
is( $standby->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'queue worker'"),
	'1',
	'its worker runs');

my $n = $lot1 + $lot2;
is($standby->safe_psql('postgres', q{SELECT count(*) FROM queue.event_archive WHERE state = 'relayed'}),
	$n, 'every event is archived as relayed');
for my $q (qw(sb_plain sb_ordered))
{
	is( $standby->safe_psql(
			'postgres', qq{
SELECT count(*) || '/' || count(DISTINCT (j.headers->'event'->>'id')) || '/' || count(p.event_id)
  FROM queue.jobs j LEFT JOIN published p ON p.event_id = (j.headers->'event'->>'id')::bigint
 WHERE j.queue = '$q'}),
		"$n/$n/$n",
		"$q: one job per event, none twice, none unknown");
	is(QueueTest::jobs_out_of_key_order($standby, $q),
		'0', "$q: per key, jobs in publishing order across the failover");
}
# the ordered queue: one head per key, the rest blocked behind it
is( $standby->safe_psql(
		'postgres', q{
SELECT count(DISTINCT group_key) || '/' || count(*) FILTER (WHERE state = 'ready')
  FROM queue.jobs WHERE queue = 'sb_ordered'}),
	"$nkeys/$nkeys",
	'sb_ordered: exactly one claimable job per key');

$standby->stop('fast');
my $log = slurp_file($standby->logfile);
unlike($log, qr/terminated by signal|PANIC|TRAP:|could not be delivered/,
	'nothing crashed on the promoted standby, no event went dead');

done_testing();
