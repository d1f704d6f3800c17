# Promotion under load: a streaming standby is promoted while producers,
# workers, publishers, the relay and sagas all run on the primary; after
# the promotion everything resumes on the new primary and drains, and
# nothing acknowledged is lost, nothing is done twice.
#
# Both servers preload the library with queue.databases = 'postgres' (as in
# 050_standby.pl and 070_outbox_standby.pl): the primary's background worker
# relays and does the maintenance, the standby's starts at its promotion.
# Replication is synchronous (synchronous_standby_names names the standby,
# synchronous_commit = on): a commit returns only once the standby has
# flushed its WAL, and a promotion replays all the WAL the standby has, so
# every commit a client saw acknowledged must be on the new primary.  That
# is what makes "nothing lost" exact here.  (With asynchronous replication
# the tail of commits not yet streamed when the primary dies is lost - jobs,
# events, completions and saga moves alike, each with the business rows of
# its transaction - and nothing else.  This test runs the synchronous case
# only; run asynchronously, with the standby cut off for a second before
# the stop, its checks of the acknowledgements fail, as they must.)
# The standby is made from a backup taken before synchronous_standby_names
# is set, so it does not have it: once promoted it has no standby, and its
# commits must not wait for one.
#
# The load, all at once, as PL/pgSQL procedures CALLed by psql sessions in
# the background (010_crash_exactly_once.pl says why not pgbench); each
# sends a NOTICE after every COMMIT - the client's acknowledgement:
#
#   producers    enqueue_many 1-5 jobs into "jobs", each payload carrying a
#                unique id (producer-n, n counted from the committed rows),
#                recorded in "enqueued" in the same transaction; the
#                acknowledgement names payload id and job id, so a lost job
#                whose id a producer re-used would not pass for it;
#   publishers   publish_many 1-5 events of topic "ev" over 40 keys, with
#                the key's next sequence number recorded in "published" in
#                the same transaction (as in 060_outbox_crash.pl); the topic
#                is subscribed by "ev_plain" and by the ordered "ev_ordered",
#                and the background worker relays them;
#   a starter    starts sagas of the 3-step type "trip" (idempotency keys
#                trip-n), 5 per transaction;
#   workers      claim from all four queues (jobs, ev_plain, ev_ordered,
#                steps) and complete; saga step jobs (actions and
#                compensations share the queue "steps") one at a time, 5 %
#                of actions failing for good (the saga compensates).
#
# Every completion writes its row into "done" in the completing transaction:
# job_id is its primary key and (queue, uid), (queue, event_id) and
# (saga_id, step, kind) are unique, so a second completion of a job, of a
# payload id, of an event in a queue or of a saga step would be a unique
# violation; the workers catch it (dup_log, which must stay empty).  A stale
# lease (QU001) rolls back the completion and the worker goes on.
#
# The failover: once every kind of work is under way, the primary is
# stopped (immediate) with the load running; the standby is promoted; every
# acknowledged enqueue, publish, saga start and completion is checked on it;
# then the same sessions are started against the new primary: producers,
# publishers and the starter go on from what committed, the jobs the old
# primary had leased come back when their lease (2 s) ends, the new
# primary's worker relays.  The workers stop by themselves once all the
# work is produced and nothing is live: no job, no pending event, no saga
# running or compensating - so a lost job would end the drain early and
# show in the counts below rather than hang the test.
#
# Checks at the end: every acknowledged job exists exactly once and
# completed, and so does every committed one ("enqueued"), and nothing
# else; every committed event was relayed exactly once to each subscriber
# queue, in its key's order (job ids, and completions in ev_ordered); every
# saga ended completed (steps 1-3 once each, no compensation) or
# compensated (a prefix of the steps, compensated in reverse, after a step
# failed for good); no job is live, no event pending; each job completed
# once (done); the jobs leased when the primary died came back when their
# lease ended and finished on a later attempt; the background worker runs
# on the new primary and relayed there.  The figures before and after the promotion and the time to
# resume are printed.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $nproducers  = 2;
my $jobs_each   = 2000;
my $npublishers = 2;
my $events_each = 1200;
my $nkeys       = 40;
my $nsagas      = 500;
my $nworkers    = 3;
my $njobs       = $nproducers * $jobs_each;
my $nevents     = $npublishers * $events_each;
my $t0          = time();

# --- a primary and a synchronous standby ----------------------------------------

my $primary = QueueTest::preloaded_node(
	'promo_primary', q{
queue.databases = 'postgres'
queue.naptime = '100ms'
synchronous_commit = on
max_connections = 100
log_statement = none
},
	allows_streaming => 1);

$primary->safe_psql(
	'postgres', qq{
CREATE EXTENSION queue;
SELECT queue.create_queue('jobs', max_attempts => 100, lease_timeout => '2 seconds');
SELECT queue.create_queue('ev_plain', max_attempts => 100, lease_timeout => '2 seconds');
SELECT queue.create_queue('ev_ordered', ordered => true, max_attempts => 100,
						  lease_timeout => '2 seconds');
SELECT queue.create_queue('steps', max_attempts => 100, lease_timeout => '2 seconds');
SELECT queue.create_topic('ev');
SELECT queue.subscribe('ev', queue => 'ev_plain');
SELECT queue.subscribe('ev', queue => 'ev_ordered');
SELECT queue.define_saga('trip', jsonb_build_array(
	jsonb_build_object('name', 'step1', 'queue', 'steps', 'compensation_queue', 'steps'),
	jsonb_build_object('name', 'step2', 'queue', 'steps', 'compensation_queue', 'steps'),
	jsonb_build_object('name', 'step3', 'queue', 'steps', 'compensation_queue', 'steps')));

CREATE TABLE enqueued (job_id bigint PRIMARY KEY, uid text NOT NULL UNIQUE,
					   producer text NOT NULL);
-- one row per completed job, written by the completing transaction;
-- ordinal is the order in which they committed, per group of an ordered queue
CREATE TABLE done (ordinal bigserial PRIMARY KEY, job_id bigint NOT NULL UNIQUE,
				   queue text NOT NULL, attempt int NOT NULL, worker text NOT NULL,
				   uid text, event_id bigint, saga_id bigint, step text, kind text,
				   UNIQUE (queue, uid), UNIQUE (queue, event_id),
				   UNIQUE (saga_id, step, kind));
CREATE TABLE fail_log (saga_id bigint, step text, job_id bigint, worker text);
CREATE TABLE dup_log (job_id bigint, queue text, worker text);

-- n jobs per transaction, each payload with a unique id; goes on from what
-- committed, so a producer started again after the failover does not repeat
CREATE PROCEDURE produce(pname text, target int, deadline timestamptz)
LANGUAGE plpgsql AS \$\$
DECLARE
	made int;
	n int;
	uids text[];
	acks text[];
BEGIN
	SELECT count(*) INTO made FROM enqueued WHERE producer = pname;
	COMMIT;
	WHILE made < target LOOP
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'producer % gave up at the deadline', pname;
		END IF;
		n := least(1 + floor(random() * 5)::int, target - made);
		SELECT array_agg(pname || '-' || (made + g) ORDER BY g) INTO uids
		  FROM generate_series(1, n) g;
		WITH ins AS (
			INSERT INTO enqueued
			SELECT e.id, uids[e.ord], pname
			  FROM queue.enqueue_many('jobs',
					(SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('uid', u.uid))
									  ORDER BY u.ord)
					   FROM unnest(uids) WITH ORDINALITY AS u(uid, ord)))
				   WITH ORDINALITY AS e(id, ord)
			RETURNING uid, job_id)
		SELECT array_agg(uid || ':' || job_id) INTO acks FROM ins;
		PERFORM pg_sleep(random() * 0.02);	-- the "business work"; paces the run
		COMMIT;
		RAISE NOTICE 'enqueued %', acks;
		made := made + n;
	END LOOP;
END
\$\$;

-- keyseq, published and pub(), as in 060_outbox_crash.pl, without the
-- rollbacks
@{[ QueueTest::publisher_sql(topic => 'ev', nkeys => $nkeys, ack => 'published') ]}
-- starts sagas trip-1 .. trip-total, batch per transaction, going on from
-- what committed (the idempotency keys would make a repeat harmless anyway)
CREATE PROCEDURE start_sagas(total int, batch int)
LANGUAGE plpgsql AS \$\$
DECLARE
	lo int;
	ids bigint[];
BEGIN
	SELECT count(*) + 1 INTO lo FROM queue.saga WHERE saga_type = 'trip';
	COMMIT;
	WHILE lo <= total LOOP
		SELECT array_agg(queue.start_saga('trip', jsonb_build_object('n', g), 'trip-' || g)
						 ORDER BY g) INTO ids
		  FROM generate_series(lo, least(lo + batch - 1, total)) g;
		COMMIT;
		RAISE NOTICE 'started %', ids;
		lo := lo + batch;
		PERFORM pg_sleep(0.05 + random() * 0.05);
	END LOOP;
END
\$\$;

-- Claims from every queue in turn and completes, recording each completion
-- in "done" in the completing transaction.  Ends when all the work is
-- produced and nothing is live (one statement, one snapshot: an event is
-- either pending or its jobs exist).
CREATE PROCEDURE work(wname text, deadline timestamptz)
LANGUAGE plpgsql AS \$\$
DECLARE
	qs text[] := ARRAY['jobs', 'ev_plain', 'ev_ordered', 'steps'];
	q text;
	r int;
	ids bigint[];
	toks uuid[];
	atts int[];
	pls jsonb[];
	hds jsonb[];
	outcome text;
	idle boolean;
BEGIN
	LOOP
		idle := true;
		r := floor(random() * 4)::int;
		FOR k IN 0 .. 3 LOOP
			q := qs[1 + (r + k) % 4];
			-- transaction 1: claim
			SELECT coalesce(array_agg(c.job_id ORDER BY c.job_id), '{}'),
				   coalesce(array_agg(c.lease_token ORDER BY c.job_id), '{}'),
				   coalesce(array_agg(c.attempt ORDER BY c.job_id), '{}'),
				   coalesce(array_agg(c.payload ORDER BY c.job_id), '{}'),
				   coalesce(array_agg(c.headers ORDER BY c.job_id), '{}')
			  INTO ids, toks, atts, pls, hds
			  FROM queue.claim(q, wname, CASE WHEN q = 'steps' THEN 1 + floor(random() * 4)::int
											  ELSE 1 + floor(random() * 20)::int END) c;
			COMMIT;
			CONTINUE WHEN cardinality(ids) = 0;
			idle := false;
			PERFORM pg_sleep(random() * 0.005);	-- the work

			IF q <> 'steps' THEN
				-- transaction 2: complete the batch and record it, atomically
				BEGIN
					PERFORM queue.complete_many(ids, toks);
					INSERT INTO done (job_id, queue, attempt, worker, uid, event_id)
					SELECT u.i, q, u.a, wname, u.p->>'uid', (u.h->'event'->>'id')::bigint
					  FROM unnest(ids, atts, pls, hds) AS u(i, a, p, h) ORDER BY u.i;
					outcome := 'completed';
				EXCEPTION
					WHEN SQLSTATE 'QU001' THEN
						RAISE NOTICE 'stale lease: %', SQLERRM;
						outcome := 'stale';
					WHEN unique_violation THEN
						RAISE NOTICE 'duplicate completion in %: %', q, SQLERRM;
						outcome := 'duplicate';
				END;
				COMMIT;
				IF outcome = 'completed' THEN
					RAISE NOTICE 'committed %', ids;
				ELSIF outcome = 'duplicate' THEN
					INSERT INTO dup_log SELECT unnest(ids), q, wname;
					COMMIT;
				END IF;
				CONTINUE;
			END IF;

			-- saga steps, one transaction each
			FOR i IN 1 .. cardinality(ids) LOOP
				BEGIN
					IF hds[i]->'saga'->>'kind' = 'action' AND random() < 0.05 THEN
						PERFORM queue.fail(ids[i], toks[i], 'failed for good', permanent => true);
						INSERT INTO fail_log VALUES ((pls[i]->>'saga_id')::bigint, pls[i]->>'step',
													 ids[i], wname);
						outcome := 'failed';
					ELSE
						PERFORM queue.complete(ids[i], toks[i], jsonb_build_object('by', wname));
						INSERT INTO done (job_id, queue, attempt, worker, saga_id, step, kind)
						VALUES (ids[i], q, atts[i], wname, (pls[i]->>'saga_id')::bigint,
								pls[i]->>'step', hds[i]->'saga'->>'kind');
						outcome := 'completed';
					END IF;
				EXCEPTION
					WHEN SQLSTATE 'QU001' THEN
						RAISE NOTICE 'stale lease: %', SQLERRM;
						outcome := 'stale';
					WHEN unique_violation THEN
						RAISE NOTICE 'duplicate completion in %: %', q, SQLERRM;
						outcome := 'duplicate';
				END;
				COMMIT;
				IF outcome = 'completed' THEN
					RAISE NOTICE 'committed %', ARRAY[ids[i]];
				ELSIF outcome = 'duplicate' THEN
					INSERT INTO dup_log VALUES (ids[i], q, wname);
					COMMIT;
				END IF;
			END LOOP;
		END LOOP;

		IF idle THEN
			EXIT WHEN (SELECT count(*) FROM enqueued) >= $njobs
				  AND (SELECT count(*) FROM published) >= $nevents
				  AND (SELECT count(*) FROM queue.saga WHERE saga_type = 'trip') >= $nsagas
				  AND NOT EXISTS (SELECT 1 FROM queue.event)
				  AND NOT EXISTS (SELECT 1 FROM queue.job)
				  AND NOT EXISTS (SELECT 1 FROM queue.saga
								   WHERE status IN ('running', 'compensating'));
			IF clock_timestamp() > deadline THEN
				RAISE EXCEPTION 'worker % gave up: work still live at the deadline', wname;
			END IF;
			PERFORM pg_sleep(0.02);
		END IF;
	END LOOP;
END
\$\$;
});
ok(QueueTest::worker_idle($primary), 'the primary runs its worker');

# The backup is taken before synchronous_standby_names is set: the standby
# gets every other setting of the primary.
my $standby = QueueTest::standby_of($primary, 'promo_standby');
# the walreceiver's application_name is the standby's cluster_name, its name
$primary->append_conf('postgresql.conf',
	"synchronous_standby_names = '" . $standby->name . "'");
$primary->reload;
ok( $primary->poll_query_until(
		'postgres',
		q{SELECT sync_state FROM pg_stat_replication}, 'sync'),
	'the standby streams synchronously');
is( $standby->safe_psql(
		'postgres',
		q{SELECT pg_is_in_recovery() || '/' || current_setting('shared_preload_libraries')
		   || '/' || current_setting('queue.databases')
		   || '/' || current_setting('synchronous_standby_names')}),
	'true/queue/postgres/',
	'the standby is in recovery, preloads queue for postgres, and has no standby of its own');

# --- the sessions -------------------------------------------------------------

my %acked_job;      # "payload id:job id" => acknowledged enqueues
my %acked_event;    # event id => acknowledged publishes
my %acked_saga;     # saga id => acknowledged starts
my %acked_done;     # job id => acknowledged completions
my $stale = 0;
my @unexpected;

sub start_all
{
	my ($node, $phase) = @_;
	my $deadline = "now() + interval '120 seconds'";
	my @ps;
	push @ps, QueueTest::start_psql($node, "prod$_",
		"CALL produce('prod$_', $jobs_each, $deadline)")
	  for 1 .. $nproducers;
	push @ps, QueueTest::start_psql($node, "pub$_",
		"CALL pub('pub$_', $events_each, $deadline)")
	  for 1 .. $npublishers;
	push @ps, QueueTest::start_psql($node, 'starter', "CALL start_sagas($nsagas, 5)");
	push @ps, QueueTest::start_psql($node, "p$phase-w$_",
		"CALL work('p$phase-w$_', $deadline)")
	  for 1 .. $nworkers;
	return @ps;
}

# Waits for the sessions to end (after the failover their server is gone),
# reads their acknowledgements; returns how many exited with status 0.
sub collect
{
	my ($failover, @ps) = @_;
	return QueueTest::finish_psql(
		\@ps,
		acks => {
			enqueued  => \%acked_job,
			published => \%acked_event,
			started   => \%acked_saga,
			committed => \%acked_done
		},
		stale      => \$stale,
		errors     => ($failover ? undef : qr/ERROR|FATAL/),
		unexpected => \@unexpected);
}

# Everything acknowledged so far is on the node.
sub check_acked
{
	my ($node, $what) = @_;
	my $res = $node->safe_psql(
		'postgres', qq{
SELECT (SELECT count(*)
		  FROM (SELECT split_part(a, ':', 1) AS uid, split_part(a, ':', 2)::bigint AS id
				  FROM unnest(@{[ QueueTest::sql_array(\%acked_job, 'text') ]}) a) a
		  LEFT JOIN (SELECT j.payload->>'uid' AS uid, count(*) AS n, min(j.id) AS id
					   FROM queue.jobs j WHERE j.queue = 'jobs' GROUP BY 1) j USING (uid)
		 WHERE j.n IS DISTINCT FROM 1 OR j.id <> a.id
			OR NOT EXISTS (SELECT 1 FROM enqueued e WHERE e.uid = a.uid AND e.job_id = a.id)),
	   (SELECT count(*) FROM unnest(@{[ QueueTest::sql_array(\%acked_event, 'bigint') ]}) a(id)
		 WHERE NOT EXISTS (SELECT 1 FROM published p WHERE p.event_id = a.id)
			OR NOT EXISTS (SELECT 1 FROM queue.events e WHERE e.id = a.id)),
	   (SELECT count(*) FROM unnest(@{[ QueueTest::sql_array(\%acked_saga, 'bigint') ]}) a(id)
		 WHERE NOT EXISTS (SELECT 1 FROM queue.saga s
							WHERE s.id = a.id AND s.saga_type = 'trip')),
	   (SELECT count(*) FROM unnest(@{[ QueueTest::sql_array(\%acked_done, 'bigint') ]}) a(id)
		 WHERE NOT EXISTS (SELECT 1 FROM done d WHERE d.job_id = a.id)
			OR NOT EXISTS (SELECT 1 FROM queue.job_archive j
							WHERE j.id = a.id AND j.state = 'completed'))});
	ok(keys(%acked_job) && keys(%acked_event) && keys(%acked_saga) && keys(%acked_done),
		"$what: enqueues, publishes, saga starts and completions were acknowledged");
	is($res,
		'0|0|0|0',
		sprintf("$what: none missing of the %d jobs, %d events, %d sagas, %d completions acknowledged",
			scalar(keys %acked_job), scalar(keys %acked_event),
			scalar(keys %acked_saga), scalar(keys %acked_done)));
}

# jobs enqueued / done, events published / relayed, sagas started /
# finished, jobs leased
sub figures
{
	my ($node) = @_;
	return split /\|/, $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM enqueued),
	   (SELECT count(*) FROM done WHERE queue = 'jobs'),
	   (SELECT count(*) FROM published),
	   (SELECT count(*) FROM queue.event_archive),
	   (SELECT count(*) FROM done WHERE queue IN ('ev_plain', 'ev_ordered')),
	   (SELECT count(*) FROM queue.saga WHERE saga_type = 'trip'),
	   (SELECT count(*) FROM queue.saga WHERE status IN ('completed', 'compensated')),
	   (SELECT count(*) FROM queue.job WHERE state = 'running')});
}

# --- the load on the primary ----------------------------------------------------

my @ps = start_all($primary, 1);
ok( $primary->poll_query_until(
		'postgres', qq{
SELECT (SELECT count(*) FROM enqueued) >= $njobs * 0.4
   AND (SELECT count(*) FROM published) >= $nevents * 0.4
   AND (SELECT count(*) FROM queue.saga WHERE saga_type = 'trip') >= $nsagas * 0.4
   AND EXISTS (SELECT 1 FROM done WHERE queue = 'jobs')
   AND EXISTS (SELECT 1 FROM done WHERE queue = 'ev_ordered')
   AND EXISTS (SELECT 1 FROM done WHERE saga_id IS NOT NULL)}),
	'the load runs: jobs, events and sagas are produced and processed');

# --- the failover ---------------------------------------------------------------

my $t_stop = time();
$primary->stop('immediate');
collect(1, @ps);
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the standby is promoted');
my $t_promoted = time();
ok( $standby->poll_query_until(
		'postgres',
		q{SELECT state = 'idle' AND pid IS NOT NULL FROM queue.workers WHERE database = 'postgres'}),
	"the new primary's launcher starts its worker");
my $t_worker = time();

check_acked($standby, 'at the promotion');
my @before = figures($standby);
# the jobs the old primary's workers held leases on
$standby->safe_psql(
	'postgres', q{
CREATE TABLE leased_at_failover AS
SELECT id AS job_id, attempts AS attempt FROM queue.job WHERE state = 'running'});
my ($max_event, $ndone) = split /\|/, $standby->safe_psql('postgres',
	'SELECT coalesce(max(event_id), 0), (SELECT count(*) FROM done) FROM published');
note sprintf(
	"at the promotion (%.1f s of load): %d jobs enqueued, %d completed; %d events published, "
	  . "%d relayed (with what the new worker relayed at once), %d event jobs completed; "
	  . "%d sagas started, %d finished; %d jobs leased",
	$t_stop - $t0, @before);
# Commits the standby has but whose client never heard of: allowed, they
# were in flight when the primary died.
note sprintf(
	"committed but not acknowledged: %d jobs, %d events, %d saga starts, %d completions",
	$before[0] - keys(%acked_job), $before[2] - keys(%acked_event),
	$before[5] - keys(%acked_saga), $ndone - keys(%acked_done));
cmp_ok($before[0], '<', $njobs, 'the failover struck while producers were enqueueing');
cmp_ok($before[2], '<', $nevents, 'and publishers publishing');
cmp_ok($before[5], '<', $nsagas, 'and sagas being started');

# --- the load on the new primary --------------------------------------------------

my $t_clients = time();
@ps = start_all($standby, 2);
ok( $standby->poll_query_until(
		'postgres', q{SELECT count(*) > 0 FROM done WHERE worker LIKE 'p2-%'}),
	'workers complete jobs on the new primary');
my $t_first_done = time();
ok( $standby->poll_query_until(
		'postgres', "SELECT count(*) > 0 FROM queue.event_archive WHERE id > $max_event"),
	"the new primary's worker relays the events published there");
my $t_first_relay = time();

my $clean = collect(0, @ps);
is($clean, scalar(@ps), 'every session ran to its end on the new primary');
is(join("\n", @unexpected), '', 'no session hit an unexpected error');
my $t_drained = time();

# --- the audit ------------------------------------------------------------------

check_acked($standby, 'at the end');
my @dup = grep { $acked_done{$_} > 1 } keys %acked_done;
is(scalar(@dup), 0, 'no completion was acknowledged twice');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM dup_log'),
	'0', 'no job, payload id, event or saga step completed twice (the unique keys of done)');
is( $standby->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) FROM queue.job) || '/' || (SELECT count(*) FROM queue.event)}),
	'0/0',
	'drained: no live job, no pending event');

# jobs
is( $standby->safe_psql(
		'postgres', q{
SELECT count(*) || '/' || count(DISTINCT j.payload->>'uid') || '/' || count(e.uid) || '/'
	   || count(*) FILTER (WHERE j.state = 'completed') || '/' || count(d.job_id)
  FROM queue.jobs j
  LEFT JOIN enqueued e ON e.job_id = j.id AND e.uid = j.payload->>'uid'
  LEFT JOIN done d ON d.job_id = j.id
 WHERE j.queue = 'jobs'}),
	"$njobs/$njobs/$njobs/$njobs/$njobs",
	"jobs: $njobs, one per payload id, each recorded by its producer, completed, done once");

# events
is($standby->safe_psql('postgres',
		q{SELECT count(*) || '/' || count(*) FILTER (WHERE state = 'relayed') FROM queue.event_archive}),
	"$nevents/$nevents", "events: all $nevents relayed");
for my $q (qw(ev_plain ev_ordered))
{
	is( $standby->safe_psql(
			'postgres', qq{
SELECT count(*) || '/' || count(DISTINCT (j.headers->'event'->>'id')) || '/' || count(p.event_id)
	   || '/' || count(*) FILTER (WHERE j.state = 'completed') || '/' || count(d.job_id)
  FROM queue.jobs j
  LEFT JOIN published p ON p.event_id = (j.headers->'event'->>'id')::bigint
  LEFT JOIN done d ON d.job_id = j.id
 WHERE j.queue = '$q'}),
		"$nevents/$nevents/$nevents/$nevents/$nevents",
		"$q: one job per committed event, none twice, none unknown, each completed once");
	is(QueueTest::jobs_out_of_key_order($standby, $q),
		'0', "$q: per key, the jobs in publishing order across the failover");
}
is( $standby->safe_psql(
		'postgres', q{
SELECT count(*) FROM (
	SELECT p.seq, row_number() OVER (PARTITION BY p.key ORDER BY d.ordinal) AS pos
	  FROM done d JOIN published p ON p.event_id = d.event_id
	 WHERE d.queue = 'ev_ordered') x
 WHERE seq <> pos}),
	'0',
	'ev_ordered: per key, completed in publishing order across the failover');

# sagas
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) || '/' || count(DISTINCT idempotency_key) || '/'
				 || count(*) FILTER (WHERE status IN ('completed', 'compensated'))
			FROM queue.saga WHERE saga_type = 'trip'}),
	"$nsagas/$nsagas/$nsagas",
	"sagas: $nsagas, one per key, every one completed or compensated");
$standby->safe_psql(
	'postgres', q{
CREATE TABLE per_saga AS
SELECT s.id, s.status,
	   coalesce((SELECT array_agg(d.step ORDER BY d.ordinal) FROM done d
				  WHERE d.saga_id = s.id AND d.kind = 'action'), '{}') AS actions,
	   coalesce((SELECT array_agg(d.step ORDER BY d.ordinal) FROM done d
				  WHERE d.saga_id = s.id AND d.kind = 'compensation'), '{}') AS compensations,
	   (SELECT max(d.ordinal) FROM done d WHERE d.saga_id = s.id AND d.kind = 'action')
		 AS last_action,
	   (SELECT min(d.ordinal) FROM done d WHERE d.saga_id = s.id AND d.kind = 'compensation')
		 AS first_compensation
  FROM queue.saga s WHERE s.saga_type = 'trip';
});
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FROM per_saga
		   WHERE status = 'completed'
			 AND (actions <> '{step1,step2,step3}' OR compensations <> '{}')}),
	'0',
	'completed sagas: step1, step2, step3 once each, in order, no compensation');
is( $standby->safe_psql(
		'postgres', q{
SELECT count(*) FROM per_saga p
 WHERE p.status = 'compensated'
   AND (p.actions <> (SELECT coalesce(array_agg('step' || g ORDER BY g), '{}')
						FROM generate_series(1, cardinality(p.actions)) g)
		OR p.compensations <> (SELECT coalesce(array_agg(a ORDER BY a DESC), '{}')
								 FROM unnest(p.actions) a)
		OR p.first_compensation < p.last_action
		OR NOT EXISTS (SELECT 1 FROM fail_log f
						WHERE f.saga_id = p.id
						  AND f.step = 'step' || (cardinality(p.actions) + 1)))}),
	'0',
	'compensated sagas: a prefix of the steps, then the next one failed for good, '
	  . 'then exactly the completed ones compensated in reverse, once each');
is( $standby->safe_psql(
		'postgres', q{
SELECT count(*) FROM queue.job_archive a
 WHERE a.saga_id IS NOT NULL AND a.state = 'completed'
   AND NOT EXISTS (SELECT 1 FROM done d WHERE d.job_id = a.id AND d.attempt = a.attempts)}),
	'0',
	'every completed step job has its row in done, with the attempt that completed it');

# The jobs leased when the primary died came back when their lease ended
# and finished on a later attempt.
is( $standby->safe_psql(
		'postgres', q{
SELECT count(*) FROM leased_at_failover l
 WHERE NOT EXISTS (SELECT 1 FROM queue.job_archive a
					WHERE a.id = l.job_id AND a.attempts > l.attempt
					  AND a.errors @> jsonb_build_array(jsonb_build_object(
							'attempt', l.attempt, 'error', 'lease expired')))}),
	'0',
	'the jobs leased at the failover finished later, on a later attempt, their lost lease recorded');

# the background worker of the new primary
is( $standby->safe_psql(
		'postgres', q{
SELECT w.state || '/' || (w.pid = a.pid) || '/' || (w.events_relayed > 0)
  FROM queue.workers w JOIN pg_stat_activity a ON a.backend_type = 'queue worker'
 WHERE w.database = 'postgres' AND a.datname = 'postgres'}),
	'idle/true/true',
	'the background worker runs on the new primary, and relayed there');

# --- figures ----------------------------------------------------------------------

my @after = figures($standby);
my ($relayed_new, $expired_new) = split /\|/,
  $standby->safe_psql('postgres',
	q{SELECT events_relayed, leases_expired FROM queue.workers WHERE database = 'postgres'});
my ($jobs_old, $jobs_new, $ev_old, $ev_new, $st_old, $st_new) = split /\|/,
  $standby->safe_psql(
	'postgres', q{
SELECT count(*) FILTER (WHERE queue = 'jobs' AND worker LIKE 'p1-%'),
	   count(*) FILTER (WHERE queue = 'jobs' AND worker LIKE 'p2-%'),
	   count(*) FILTER (WHERE event_id IS NOT NULL AND worker LIKE 'p1-%'),
	   count(*) FILTER (WHERE event_id IS NOT NULL AND worker LIKE 'p2-%'),
	   count(*) FILTER (WHERE saga_id IS NOT NULL AND worker LIKE 'p1-%'),
	   count(*) FILTER (WHERE saga_id IS NOT NULL AND worker LIKE 'p2-%')
  FROM done});
my ($completed, $compensated, $permanent, $retried) = split /\|/,
  $standby->safe_psql(
	'postgres', q{
SELECT (SELECT count(*) FROM queue.saga WHERE saga_type = 'trip' AND status = 'completed'),
	   (SELECT count(*) FROM queue.saga WHERE saga_type = 'trip' AND status = 'compensated'),
	   (SELECT count(*) FROM fail_log),
	   (SELECT count(*) FROM queue.job_archive WHERE attempts > 1)});
diag sprintf(
	"jobs: %d enqueued before the promotion, %d after; completed %d before, %d after.  "
	  . "events: %d published before, %d after; relayed %d by the old primary, %d by the new; "
	  . "event jobs completed %d before, %d after.  "
	  . "sagas: %d started before, %d after; %d finished before, %d after (%d completed, "
	  . "%d compensated; %d steps failed for good); step jobs completed %d before, %d after.  "
	  . "jobs leased at the failover: %d; jobs finished on a later attempt: %d; stale leases "
	  . "caught: %d; dead-lettered by the new worker: %d.  "
	  . "load %.1f s before the stop; promoted %.1f s after the stop, its worker running "
	  . "%.1f s after the stop; clients pointed at it %.1f s after the stop; then the first "
	  . "completion after %.1f s, the first new event relayed after %.1f s; drained %.1f s "
	  . "after the stop; test %.0f s",
	$before[0], $after[0] - $before[0], $jobs_old, $jobs_new,
	$before[2], $after[2] - $before[2], $nevents - $relayed_new, $relayed_new,
	$ev_old, $ev_new,
	$before[5], $after[5] - $before[5], $before[6], $after[6] - $before[6],
	$completed, $compensated, $permanent, $st_old, $st_new,
	$before[7], $retried, $stale, $expired_new,
	$t_stop - $t0, $t_promoted - $t_stop, $t_worker - $t_stop, $t_clients - $t_stop,
	$t_first_done - $t_clients, $t_first_relay - $t_clients, $t_drained - $t_stop,
	time() - $t0);

$standby->stop('fast');
my $log = slurp_file($standby->logfile);
unlike($log, qr/terminated by signal|exited with exit code (?!1\b)|PANIC|TRAP:/,
	'nothing crashed on the promoted standby');

done_testing();
