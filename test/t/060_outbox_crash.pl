# The outbox across crashes: every committed event reaches every queue
# subscriber exactly once, in its key's order, although the server is
# stopped immediately and its postmaster killed (-9) while the relay runs.
#
# Topic "ob" delivers to two queues: ob_plain (unordered, never consumed:
# it keeps every job) and ob_ordered (ordered: the event's key is the job's
# group, consumed as the run goes).  The background worker relays
# (queue.databases = 'postgres'); nobody calls queue.relay() by hand.
#
# Publishers (a PL/pgSQL procedure each, CALLed by a psql in the
# background, as in 010_crash_exactly_once.pl) publish 20,000 events over
# 200 keys, 1 to 5 events per transaction with publish_many, and record in
# the same transaction, for each event, the key's next sequence number
# (then sleep up to 20 ms, the "business work", which paces the run):
#
#   publish_many(...)                -- takes the keys' locks, draws the ids
#   UPDATE keyseq SET seq = seq + 1  -- per event, in id order
#   INSERT INTO published (event_id, key, seq, ...)
#
# The sequence number is drawn after the ids, so it is the order in which
# the key's publishers got through publish (the key lock is what
# serializes them: the keyseq row lock is only reached with the key lock
# held), and it is committed with the event: "published" is exactly the set
# of committed events.  One transaction in twenty rolls back instead (its
# events must never be delivered).  After each COMMIT (or ROLLBACK) the
# procedure sends a NOTICE with the event ids: an acknowledgement, which
# must survive the crashes (synchronous_commit = on).  The procedure stops
# once "published" holds its share, so a restarted publisher goes on where
# the crash left it.
#
# Consumers of ob_ordered claim up to 50 jobs, complete them and record
# each completion (bigserial ordinal) in the same transaction, so the
# completion order per key can be checked ("working" up to 20 ms between
# claim and completion).  Lease 3 s: a job leased when a crash strikes
# comes back after that, its group blocked meanwhile.
#
# Crash 1 (stop immediate): a session holds ob_ordered's name lock
# (queue._lock_queue_name, as drop_queue takes it), so the relay blocks in
# the middle of its transaction, after it has enqueued its batch into
# ob_plain and before ob_ordered; the server is stopped while it waits.
# Crash 2 (kill -9 of the postmaster): as soon as the worker is seen
# relaying (pg_stat_activity; it may have finished its batch by the time
# the signal lands), with publishers and consumers running.
# Then everything is restarted, the publishers finish, the consumers drain.
#
# Checks, for each subscriber queue: one job per committed event (count,
# no duplicate, none for a rolled-back event, none missing); per key, the
# jobs' ids (creation order) follow the key's sequence; per key the event
# ids follow it too (the key lock); and for ob_ordered the completions per
# key follow it, and a group never has two jobs claimable at once (checked
# during the run, after each restart and at the end).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $nevents     = 20_000;
my $npublishers = 4;
my $nconsumers  = 2;
my $nkeys       = 200;
my $share       = $nevents / $npublishers;
my $t0          = time();

my $node = QueueTest::preloaded_node(
	'outbox_crash', q{
queue.databases = 'postgres'
queue.naptime = '100ms'
synchronous_commit = on
max_connections = 100
log_statement = none
});

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION queue;
SELECT queue.create_queue('ob_plain');
SELECT queue.create_queue('ob_ordered', ordered => true, max_attempts => 100,
						  lease_timeout => '3 seconds');
SELECT queue.create_topic('ob');
SELECT queue.subscribe('ob', queue => 'ob_plain');
SELECT queue.subscribe('ob', queue => 'ob_ordered');

@{[ QueueTest::publisher_sql(topic => 'ob', nkeys => $nkeys, ack => 'committed',
							rollback => 0.05) ]}
CREATE TABLE completed (ordinal bigserial PRIMARY KEY, job_id bigint NOT NULL UNIQUE,
						event_id bigint NOT NULL, attempt int NOT NULL);

-- drain: stop when every event is published and relayed and the queue is
-- empty; otherwise run until the connection goes (a crash).
CREATE PROCEDURE consume(cname text, drain boolean, deadline timestamptz)
LANGUAGE plpgsql AS \$\$
DECLARE
	ids bigint[];
	toks uuid[];
	atts int[];
	evs bigint[];
BEGIN
	LOOP
		SELECT coalesce(array_agg(c.job_id ORDER BY c.job_id), '{}'),
			   coalesce(array_agg(c.lease_token ORDER BY c.job_id), '{}'),
			   coalesce(array_agg(c.attempt ORDER BY c.job_id), '{}'),
			   coalesce(array_agg((c.headers->'event'->>'id')::bigint ORDER BY c.job_id), '{}')
		  INTO ids, toks, atts, evs
		  FROM queue.claim('ob_ordered', cname, 50) c;
		COMMIT;
		IF cardinality(ids) = 0 THEN
			IF drain AND (SELECT count(*) FROM published) >= $nevents
			   AND NOT EXISTS (SELECT 1 FROM queue.event)
			   AND NOT EXISTS (SELECT 1 FROM queue.jobs WHERE queue = 'ob_ordered'
								 AND state NOT IN ('completed', 'dead', 'cancelled')) THEN
				EXIT;
			END IF;
			IF clock_timestamp() > deadline THEN
				RAISE EXCEPTION 'consumer % gave up at the deadline', cname;
			END IF;
			PERFORM pg_sleep(0.02);
			CONTINUE;
		END IF;
		PERFORM pg_sleep(random() * 0.02);	-- the work
		BEGIN
			PERFORM queue.complete_many(ids, toks);
			INSERT INTO completed (job_id, event_id, attempt)
			SELECT u.i, u.e, u.a FROM unnest(ids, evs, atts) AS u(i, e, a) ORDER BY u.i;
		EXCEPTION WHEN SQLSTATE 'QU001' THEN
			RAISE NOTICE 'stale lease: %', SQLERRM;
		END;
		COMMIT;
	END LOOP;
END
\$\$;
});

my %acked;         # event id => acknowledged commits
my %rolled_back;   # event id => acknowledged rollbacks
my $stale = 0;
my @unexpected;

sub start_all
{
	my ($phase, $drain) = @_;
	my @ps;
	for my $i (1 .. $npublishers)
	{
		push @ps,
		  QueueTest::start_psql($node, "pub$i",
			"CALL pub('pub$i', $share, now() + interval '150 seconds')");
	}
	for my $i (1 .. $nconsumers)
	{
		push @ps,
		  QueueTest::start_psql($node, "p$phase-c$i",
			"CALL consume('p$phase-c$i', $drain, now() + interval '150 seconds')");
	}
	return @ps;
}

# Waits for the sessions to end (after a crash their connection is gone),
# reads their acknowledgements; returns how many exited with status 0.
sub collect
{
	my ($crashed, @ps) = @_;
	return QueueTest::finish_psql(
		\@ps,
		acks       => { committed => \%acked, 'rolled back' => \%rolled_back },
		stale      => \$stale,
		errors     => ($crashed ? undef : qr/ERROR|FATAL/),
		unexpected => \@unexpected);
}

# Every acknowledged event must be committed, and in the outbox or its
# archive, after a crash.
sub check_acked_durable
{
	my ($what) = @_;
	QueueTest::check_acked_durable(
		$node, $what, \%acked, q{
NOT EXISTS (SELECT 1 FROM published p WHERE p.event_id = a.id)
OR NOT EXISTS (SELECT 1 FROM queue.events e WHERE e.id = a.id)},
		'publishers acknowledged commits', 'events');
}

# A group of ob_ordered never has two jobs that are not blocked, and never
# blocked jobs with no head (one snapshot: every commit keeps both true).
sub check_groups
{
	my ($what) = @_;
	is( $node->safe_psql(
			'postgres', q{
SELECT (SELECT count(*) FROM (SELECT j.group_key FROM queue.job j
								JOIN queue.queue q ON q.id = j.queue_id
							   WHERE q.name = 'ob_ordered' AND j.state <> 'blocked'
							   GROUP BY j.group_key HAVING count(*) > 1) two)
	 || '/' ||
	   (SELECT count(DISTINCT b.group_key) FROM queue.job b
		  JOIN queue.queue q ON q.id = b.queue_id
		 WHERE q.name = 'ob_ordered' AND b.state = 'blocked'
		   AND NOT EXISTS (SELECT 1 FROM queue.job h
							WHERE h.queue_id = b.queue_id AND h.group_key = b.group_key
							  AND h.state <> 'blocked'))}),
		'0/0',
		"$what: no group of ob_ordered has two heads, none is stranded");
}

sub counts
{
	return $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM published) || ' published, ' ||
	   (SELECT count(*) FROM queue.event) || ' in the outbox, ' ||
	   (SELECT count(*) FROM queue.event_archive) || ' relayed, ' ||
	   (SELECT count(*) FROM completed) || ' completed'});
}

# --- phase 1: stop immediate while the relay is in the middle of a batch ------

my @ps = start_all(1, 'false');
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) >= 3000 FROM queue.event_archive'),
	'phase 1: the worker relays events');

# Hold ob_ordered's name lock: the relay's next batch goes into ob_plain,
# then waits for this lock inside its transaction.
my $blocker = $node->background_psql('postgres');
$blocker->query_safe(
	"BEGIN; SELECT queue._lock_queue_name('ob_ordered'); SELECT pg_sleep(0)");
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'queue worker' AND query = 'queue: relaying events'
   AND state = 'active' AND wait_event_type = 'Lock'}),
	'phase 1: the relay waits, mid-transaction, for the name lock of ob_ordered');
my $inflight = $node->safe_psql('postgres',
	"SELECT count(*) FROM queue.event");
note sprintf("phase 1 (%.0f s): %s; stopping while the relay holds a batch",
	time() - $t0, counts());
QueueTest::crash_restart(
	$node, 'immediate',
	sub {
		eval { $blocker->quit; };
		collect(1, @ps);
	});
note "after crash 1: " . counts();
check_acked_durable('after stop immediate');
check_groups('after stop immediate');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM published'),
	'<', $nevents, 'crash 1 struck in the middle of the publishing');
cmp_ok($inflight, '>', 0, 'and of the relaying');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM queue.event e
 WHERE EXISTS (SELECT 1 FROM queue.jobs j WHERE j.queue = 'ob_plain'
				AND (j.headers->'event'->>'id')::bigint = e.id)}),
	'0',
	'the half-done relay batch left nothing behind: no job in ob_plain for an event still in the outbox'
);

# --- phase 2: kill -9 of the postmaster while the worker relays ----------------

@ps = start_all(2, 'false');
ok( $node->poll_query_until(
		'postgres', 'SELECT count(*) >= 9000 FROM queue.event_archive'),
	'phase 2: the worker relays events');
check_groups('phase 2, running');
my $relay_active = $node->poll_query_until(
	'postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'queue worker' AND query = 'queue: relaying events'
   AND state = 'active'});
QueueTest::crash_restart(
	$node, 'kill9',
	sub {
		note sprintf("phase 2 (%.0f s): killed; relay seen active just before: %s",
			time() - $t0, ($relay_active ? 'yes' : 'no'));
		collect(1, @ps);
	});
note "after crash 2: " . counts();
check_acked_durable('after kill -9 of the postmaster');
check_groups('after kill -9');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM published'),
	'<', $nevents, 'crash 2 struck in the middle of the publishing');
ok($relay_active, 'the worker was seen relaying just before the kill');

# --- phase 3: the publishers finish, the consumers drain -----------------------

@ps = start_all(3, 'true');
my $clean = collect(0, @ps);
is($clean, $npublishers + $nconsumers,
	'phase 3: every publisher finished and every consumer drained');
note sprintf("drained (%.0f s): %s", time() - $t0, counts());
is(join("\n", @unexpected), '', 'no session hit an unexpected error');
check_groups('at the end');

# --- the audit -------------------------------------------------------------------

is($node->safe_psql('postgres', 'SELECT count(*) FROM published'),
	$nevents, "$nevents events were committed");
is($node->safe_psql('postgres', 'SELECT count(*) FROM queue.event'),
	'0', 'the outbox is empty');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE a.state = 'relayed') || '/' || count(*)
  FROM queue.event_archive a}),
	"$nevents/$nevents",
	'every event is archived as relayed, none dead');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM queue.event_archive a
 WHERE NOT EXISTS (SELECT 1 FROM published p WHERE p.event_id = a.id)}),
	'0',
	'every archived event is a committed one');

my @rb = sort { $a <=> $b } keys %rolled_back;
cmp_ok(scalar(@rb), '>', 0, 'some publishing transactions rolled back');
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM unnest(@{[ QueueTest::sql_array(\@rb, 'bigint') ]}) r(id)
 WHERE EXISTS (SELECT 1 FROM queue.events e WHERE e.id = r.id)
	OR EXISTS (SELECT 1 FROM published p WHERE p.event_id = r.id)
	OR EXISTS (SELECT 1 FROM queue.jobs j WHERE (j.headers->'event'->>'id')::bigint = r.id)}),
	'0',
	'no rolled-back event exists or was delivered (' . scalar(@rb) . ' rolled back)');

# The key lock: per key, event ids are in sequence order.
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (
	SELECT seq, row_number() OVER (PARTITION BY key ORDER BY event_id) AS pos
	  FROM published) x
 WHERE seq <> pos}),
	'0',
	'within each key, event ids follow the publishing order (key lock)');

for my $q (qw(ob_plain ob_ordered))
{
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) || '/' || count(DISTINCT (j.headers->'event'->>'id')) || '/' ||
	   count(p.event_id) || '/' || count(*) FILTER (WHERE j.group_key IS DISTINCT FROM p.key)
  FROM queue.jobs j LEFT JOIN published p ON p.event_id = (j.headers->'event'->>'id')::bigint
 WHERE j.queue = '$q'}),
		"$nevents/$nevents/$nevents/0",
		"$q: one job per committed event, no duplicate, none unknown, group key = event key");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM published p
 WHERE NOT EXISTS (SELECT 1 FROM queue.jobs j WHERE j.queue = '$q'
					AND (j.headers->'event'->>'id')::bigint = p.event_id)}),
		'0',
		"$q: no committed event is missing");
	is(QueueTest::jobs_out_of_key_order($node, $q),
		'0', "$q: within each key, the jobs were created in publishing order");
}

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE state = 'completed') || '/' || count(*)
  FROM queue.jobs WHERE queue = 'ob_ordered'}),
	"$nevents/$nevents",
	'ob_ordered: every job completed');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) || '/' || count(DISTINCT event_id) FROM completed}),
	"$nevents/$nevents",
	'ob_ordered: one recorded completion per event');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (
	SELECT p.seq, row_number() OVER (PARTITION BY p.key ORDER BY c.ordinal) AS pos
	  FROM completed c JOIN published p ON p.event_id = c.event_id) x
 WHERE seq <> pos}),
	'0',
	'ob_ordered: within each key, jobs completed in publishing order');

my $ackn = scalar(keys %acked);
my @twice = grep { $acked{$_} > 1 } keys %acked;
is(scalar(@twice), 0, 'no event acknowledged twice');
check_acked_durable('at the end');

my $log = slurp_file($node->logfile);
unlike($log, qr/could not be delivered|TRAP:|PANIC/,
	'no event went dead, no assertion failure');

my $retried = $node->safe_psql('postgres',
	q{SELECT count(*) FROM completed WHERE attempt > 1});
diag sprintf(
	"%d events (%d acknowledged, %d rolled back), 2 crashes (relay batch in flight at "
	  . "crash 1: %d events in the outbox; relay seen active at crash 2: %s); "
	  . "ordered jobs completed on a later attempt: %d; stale leases: %d; %.0f s",
	$nevents, $ackn, scalar(@rb), $inflight, ($relay_active ? 'yes' : 'no'),
	$retried, $stale, time() - $t0);

$node->stop;
done_testing();
