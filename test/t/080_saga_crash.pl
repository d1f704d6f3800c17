# Sagas across crashes: 2,000 sagas with random step failures, run by
# several worker sessions while the server is stopped immediately and then
# its postmaster killed (-9); after the restarts every saga must end
# completed or compensated, and the compensations that ran must be exactly
# those of the steps that completed, last step first, once each.
#
# Saga "order" has three steps, step1..step3, each run in its own queue
# (s1..s3) and each with a compensation queue (u1..u3); every queue has a
# 2 s lease and 50 attempts.  The background worker runs (queue.databases),
# as in production.
#
# Workers are a PL/pgSQL procedure (CALLed by a psql in the background, as
# in 010_crash_exactly_once.pl, which says why not pgbench).  Each loops
# over the six queues in a random rotation:
#
#   transaction 1: claim a batch of 1..4 jobs of one queue (commit)
#   for each job, "work" (1-5 ms), then one transaction:
#     - action, 4 %:       fail(permanent => true); log it in fail_log
#                          (the saga compensates the steps before it)
#     - any job, 8 %:      fail with attempts left (retry in 20 ms); log it
#     - otherwise:         complete, and INSERT INTO audit (saga_id, step,
#                          kind, attempt, job_id) in the same transaction.
#
# So "audit" is exactly the set of completed step and compensation jobs:
# its row and the saga transition commit together or not at all, and
# UNIQUE (saga_id, step, kind) turns a second completion of the same step
# (or compensation) into an error; the worker catches it, records it in
# dup_log and rolls that transaction back (the test fails on any).  A
# stale lease (QU001: the worker was slower than its lease and the job was
# claimed again) rolls back the transaction and the worker goes on.
# Compensations never fail for good (only with attempts left).  After each
# completion's COMMIT the worker sends NOTICE "committed <job id>", an
# acknowledgement that must survive the crashes (synchronous_commit = on).
#
# A starter procedure starts the 2,000 sagas, 50 per transaction, with
# idempotency keys ("order-<n>"), pausing a little between batches, and
# cancels every saga whose n is a multiple of 40 one batch later, while it
# runs.  After a crash it is simply run again from the start: the keys make
# the starts idempotent and a cancel of a saga that is already unwinding or
# finished changes nothing.
#
# The crash plan: run; stop('immediate') when ~20 % of the sagas have
# finished; restart; run; kill -9 the postmaster at ~50 %, wait for its
# orphaned backends to exit, restart (crash recovery); run until no saga is
# running or compensating (the workers stop by themselves then).  Jobs
# leased when a crash struck come back when their lease ends.
#
# Checks: 2,000 sagas, one per key; all completed or compensated (none
# needs attention, none left running or compensating, no live job); a
# completed saga has audit rows for step1, step2, step3 in that order and
# no compensation; a compensated saga completed a prefix step1..stepk of
# its steps, and its compensations are exactly those k steps, in reverse
# order, after all of its actions; a compensated saga that was not
# cancelled had step k+1 fail for good; the timeline agrees with the audit
# (one "completed" event per audit row) and every saga has exactly one
# terminal event; every audit row is an archived completed job, attempt
# included; every acknowledged completion survived; the jobs leased at a
# crash were finished later, on a later attempt.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $nsagas   = 2_000;
my $nworkers = 4;
my $t0       = time();

my $node = QueueTest::preloaded_node(
	'saga_crash', q{
queue.databases = 'postgres'
synchronous_commit = on
max_connections = 100
log_statement = none
});

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION queue;
SELECT queue.create_queue(q, max_attempts => 50, lease_timeout => '2 seconds')
  FROM unnest(ARRAY['s1', 's2', 's3', 'u1', 'u2', 'u3']) q;
SELECT queue.define_saga('order', jsonb_build_array(
	jsonb_build_object('name', 'step1', 'queue', 's1', 'compensation_queue', 'u1'),
	jsonb_build_object('name', 'step2', 'queue', 's2', 'compensation_queue', 'u2'),
	jsonb_build_object('name', 'step3', 'queue', 's3', 'compensation_queue', 'u3')));

-- one row per completed step or compensation, written by the completing
-- transaction; id is the order in which they ran
CREATE TABLE audit (id bigserial PRIMARY KEY, saga_id bigint NOT NULL,
					step int NOT NULL, kind text NOT NULL, attempt int NOT NULL,
					job_id bigint NOT NULL, worker text NOT NULL,
					UNIQUE (saga_id, step, kind));
-- failures the workers reported (committed with the fail)
CREATE TABLE fail_log (saga_id bigint, step int, kind text, attempt int,
					   job_id bigint, permanent boolean, worker text);
-- second completions refused by audit's unique constraint (must stay empty)
CREATE TABLE dup_log (saga_id bigint, step int, kind text, job_id bigint, worker text);
-- jobs leased when a crash struck, as found after the restart
CREATE TABLE leased_at_crash (crash int, job_id bigint, attempt int,
							  PRIMARY KEY (crash, job_id));

CREATE PROCEDURE start_sagas(total int, batch int)
LANGUAGE plpgsql AS \$\$
DECLARE
	lo int := 1;
BEGIN
	WHILE lo <= total LOOP
		PERFORM queue.start_saga('order', jsonb_build_object('n', g), 'order-' || g)
		   FROM generate_series(lo, least(lo + batch - 1, total)) g;
		COMMIT;
		-- cancel a few of the previous batch, while they run
		PERFORM queue.cancel_saga(s.id)
		   FROM queue.saga s
		  WHERE s.saga_type = 'order'
			AND s.idempotency_key IN (SELECT 'order-' || g
										FROM generate_series(greatest(lo - batch, 1), lo - 1) g
									   WHERE g % 40 = 0);
		COMMIT;
		lo := lo + batch;
		PERFORM pg_sleep(0.05 + random() * 0.1);
	END LOOP;
	-- the last batch's
	PERFORM queue.cancel_saga(s.id)
	   FROM queue.saga s
	  WHERE s.saga_type = 'order'
		AND s.idempotency_key IN (SELECT 'order-' || g
									FROM generate_series(greatest(total - batch + 1, 1), total) g
								   WHERE g % 40 = 0);
	COMMIT;
	RAISE NOTICE 'all started';
END
\$\$;

CREATE PROCEDURE work(wname text, total int, deadline timestamptz)
LANGUAGE plpgsql AS \$\$
DECLARE
	qs text[] := ARRAY['s1', 's2', 's3', 'u1', 'u2', 'u3'];
	q text;
	r int;
	ids bigint[];
	toks uuid[];
	atts int[];
	pls jsonb[];
	hds jsonb[];
	sid bigint;
	st int;
	kind text;
	x float8;
	outcome text;
	idle boolean;
BEGIN
	LOOP
		idle := true;
		r := floor(random() * 6)::int;
		FOR k IN 0 .. 5 LOOP
			q := qs[1 + (r + k) % 6];
			-- transaction 1: claim
			SELECT coalesce(array_agg(c.job_id), '{}'), coalesce(array_agg(c.lease_token), '{}'),
				   coalesce(array_agg(c.attempt), '{}'), coalesce(array_agg(c.payload), '{}'),
				   coalesce(array_agg(c.headers), '{}')
			  INTO ids, toks, atts, pls, hds
			  FROM queue.claim(q, wname, 1 + floor(random() * 4)::int) c;
			COMMIT;
			CONTINUE WHEN cardinality(ids) = 0;
			idle := false;

			FOR i IN 1 .. cardinality(ids) LOOP
				sid := (pls[i]->>'saga_id')::bigint;
				st := substr(pls[i]->>'step', 5)::int;
				kind := hds[i]->'saga'->>'kind';
				-- the work
				PERFORM pg_sleep(0.001 + random() * 0.004);
				x := random();
				BEGIN
					IF kind = 'action' AND x < 0.04 THEN
						PERFORM queue.fail(ids[i], toks[i], 'failed for good', permanent => true);
						INSERT INTO fail_log VALUES (sid, st, kind, atts[i], ids[i], true, wname);
						outcome := 'failed';
					ELSIF x < 0.12 THEN
						PERFORM queue.fail(ids[i], toks[i], 'transient failure',
										   retry_delay => interval '20 milliseconds');
						INSERT INTO fail_log VALUES (sid, st, kind, atts[i], ids[i], false, wname);
						outcome := 'failed';
					ELSE
						PERFORM queue.complete(ids[i], toks[i], jsonb_build_object('by', wname));
						INSERT INTO audit (saga_id, step, kind, attempt, job_id, worker)
						VALUES (sid, st, kind, atts[i], ids[i], wname);
						outcome := 'completed';
					END IF;
				EXCEPTION
					WHEN SQLSTATE 'QU001' THEN
						RAISE NOTICE 'stale lease: %', SQLERRM;
						outcome := 'stale';
					WHEN unique_violation THEN
						RAISE NOTICE 'duplicate completion: saga % step % %', sid, st, kind;
						outcome := 'duplicate';
				END;
				COMMIT;
				IF outcome = 'completed' THEN
					RAISE NOTICE 'committed %', ids[i];
				ELSIF outcome = 'duplicate' THEN
					INSERT INTO dup_log VALUES (sid, st, kind, ids[i], wname);
					COMMIT;
				END IF;
			END LOOP;
		END LOOP;

		IF idle THEN
			-- finished when every saga has started and none is unwinding or
			-- running any more
			EXIT WHEN (SELECT count(*) FROM queue.saga WHERE saga_type = 'order') >= total
				  AND NOT EXISTS (SELECT 1 FROM queue.saga
								   WHERE saga_type = 'order'
									 AND status IN ('running', 'compensating'));
			IF clock_timestamp() > deadline THEN
				RAISE EXCEPTION 'worker % gave up: sagas still running at the deadline', wname;
			END IF;
			PERFORM pg_sleep(0.05);
		END IF;
	END LOOP;
END
\$\$;
});

my %acked;           # job id => how many completions were acknowledged
my $stale      = 0;  # QU001 caught by workers
my $duplicates = 0;  # unique violations on audit caught by workers
my @unexpected;      # errors that are not the crash itself

# Starts the sessions of one phase: the starter and the workers, a psql
# each running CALL ... in the background.
sub start_sessions
{
	my ($phase) = @_;
	return (
		QueueTest::start_psql($node, "p$phase-starter", "CALL start_sagas($nsagas, 50)"),
		map {
			QueueTest::start_psql($node, "p$phase-w$_",
				"CALL work('p$phase-w$_', $nsagas, now() + interval '150 seconds')")
		} 1 .. $nworkers);
}

# Waits for the sessions to exit and reads what they acknowledged.  After a
# crash their connections are gone; in the last phase they end by
# themselves.  Returns how many exited with status 0.
sub collect_sessions
{
	my (@ss) = @_;
	return QueueTest::finish_psql(
		\@ss,
		acks       => { committed => \%acked },
		stale      => \$stale,
		duplicates => \$duplicates,
		errors     => qr/ERROR:/,
		unexpected => \@unexpected);
}

# Every acknowledged completion must be in the audit after a crash.
sub check_acked_durable
{
	my ($what) = @_;
	QueueTest::check_acked_completions($node, $what, \%acked, 'audit');
}

sub finished_sagas
{
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM queue.saga WHERE status IN ('completed', 'compensated')});
}

# After a restart: note the jobs leased when the crash struck.
sub record_leased
{
	my ($crash) = @_;
	my $res = $node->safe_psql(
		'postgres', qq{
INSERT INTO leased_at_crash
SELECT $crash, id, attempts FROM queue.job WHERE state = 'running';
SELECT (SELECT count(*) FROM queue.saga WHERE status IN ('completed', 'compensated')),
	   (SELECT count(*) FROM queue.saga WHERE status IN ('running', 'compensating')),
	   (SELECT count(*) FROM leased_at_crash WHERE crash = $crash);});
	my ($nfinished, $nactive, $nleased) = split /\|/, $res;
	note "crash $crash: $nfinished sagas finished, $nactive running or compensating, "
	  . "$nleased jobs leased at the crash";
	cmp_ok($nactive, '>', 0, "crash $crash struck in the middle of the run");
	return $nleased;
}

# --- phase 1, then an immediate shutdown -----------------------------------

my @ss = start_sessions(1);
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) >= $nsagas / 5 FROM queue.saga
		  WHERE status IN ('completed', 'compensated')"),
	'phase 1: sagas are finishing');
QueueTest::crash_restart($node, 'immediate', sub { collect_sessions(@ss) });
check_acked_durable('after stop immediate');
my $leased1 = record_leased(1);

# --- phase 2, then kill -9 of the postmaster --------------------------------

@ss = start_sessions(2);
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) >= $nsagas / 2 FROM queue.saga
		  WHERE status IN ('completed', 'compensated')"),
	'phase 2: sagas are finishing');
QueueTest::crash_restart($node, 'kill9', sub { collect_sessions(@ss) });
check_acked_durable('after kill -9 of the postmaster');
my $leased2 = record_leased(2);

# --- phase 3: to the end ------------------------------------------------------

@ss = start_sessions(3);
my $clean = collect_sessions(@ss);
is($clean, $nworkers + 1, 'last phase: the starter and every worker ran to the end');
is(join("\n", @unexpected), '', 'no session hit an unexpected error');
my $elapsed = time() - $t0;

# --- the sagas ----------------------------------------------------------------

is( $node->safe_psql(
		'postgres',
		q{SELECT count(*), count(DISTINCT idempotency_key) FROM queue.saga
		   WHERE saga_type = 'order'}),
	"$nsagas|$nsagas",
	"$nsagas sagas, one per idempotency key");
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM queue.saga
		   WHERE status NOT IN ('completed', 'compensated')}),
	'0',
	'every saga ended completed or compensated');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(status || ': ' || n, ', ' ORDER BY status)
			FROM (SELECT status, count(*) n FROM queue.saga
				   WHERE status NOT IN ('completed', 'compensated') GROUP BY status) x}),
	'',
	'none needs attention, none is left running or compensating');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM queue.job j JOIN queue.queue q ON q.id = j.queue_id
		   WHERE q.name IN ('s1', 's2', 's3', 'u1', 'u2', 'u3')}),
	'0',
	'no job is left live');
is($node->safe_psql('postgres', 'SELECT count(*) FROM dup_log'),
	'0', 'no step or compensation completed twice (audit unique key)');

# Per saga: the steps completed and the compensations, each in audit order.
$node->safe_psql(
	'postgres', q{
CREATE TABLE per_saga AS
SELECT s.id, s.status, s.cancel_requested, s.failure,
	   coalesce((SELECT array_agg(u.step ORDER BY u.id) FROM audit u
				  WHERE u.saga_id = s.id AND u.kind = 'action'), '{}') AS actions,
	   coalesce((SELECT array_agg(u.step ORDER BY u.id) FROM audit u
				  WHERE u.saga_id = s.id AND u.kind = 'compensation'), '{}') AS compensations,
	   (SELECT max(u.id) FROM audit u WHERE u.saga_id = s.id AND u.kind = 'action') AS last_action,
	   (SELECT min(u.id) FROM audit u
		 WHERE u.saga_id = s.id AND u.kind = 'compensation') AS first_compensation
  FROM queue.saga s WHERE s.saga_type = 'order';
});

is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM per_saga
		   WHERE status = 'completed'
			 AND (actions <> '{1,2,3}' OR compensations <> '{}')}),
	'0',
	'completed sagas: step1, step2, step3 in order, no compensation');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM per_saga
		   WHERE status = 'compensated'
			 AND actions <> (SELECT coalesce(array_agg(g ORDER BY g), '{}')
							   FROM generate_series(1, cardinality(actions)) g)}),
	'0',
	'compensated sagas: the steps that completed are a prefix, in order');
my $bad = $node->safe_psql(
	'postgres',
	q{SELECT string_agg(id || ': actions ' || actions::text || ' compensations '
						|| compensations::text, '; ')
		FROM (SELECT * FROM per_saga
			   WHERE status = 'compensated'
				 AND (compensations <> (SELECT coalesce(array_agg(a ORDER BY a DESC), '{}')
										  FROM unnest(actions) a)
					  OR first_compensation < last_action)
			   ORDER BY id LIMIT 10) x});
is($bad, '',
	'compensated sagas: exactly the completed steps compensated, in reverse order, '
	  . 'after the last action, once each');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM per_saga p
		   WHERE p.status = 'compensated' AND NOT p.cancel_requested
			 AND NOT EXISTS (SELECT 1 FROM fail_log f
							  WHERE f.saga_id = p.id AND f.permanent
								AND f.step = cardinality(p.actions) + 1
								AND f.kind = 'action')}),
	'0',
	'a compensated saga not cancelled had the step after its last completed one fail for good');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM per_saga p
		   WHERE p.status = 'completed'
			 AND EXISTS (SELECT 1 FROM fail_log f
						  WHERE f.saga_id = p.id AND f.permanent)}),
	'0',
	'no completed saga had a step fail for good');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM fail_log WHERE kind = 'compensation' AND permanent}),
	'0',
	'(no compensation was failed for good)');

# The timeline agrees with the audit, and says how each saga ended, once.
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM per_saga p
		   WHERE (SELECT count(*) FROM queue.saga_event e
				   WHERE e.saga_id = p.id AND e.kind = 'action' AND e.event = 'completed')
				 <> cardinality(p.actions)
			  OR (SELECT count(*) FROM queue.saga_event e
				   WHERE e.saga_id = p.id AND e.kind = 'compensation'
					 AND e.event = 'completed')
				 <> cardinality(p.compensations)
			  OR (SELECT count(*) FROM queue.saga_event e
				   WHERE e.saga_id = p.id AND e.kind = 'saga'
					 AND e.event IN ('completed', 'compensated'))
				 <> 1
			  OR (SELECT e.event FROM queue.saga_event e
				   WHERE e.saga_id = p.id ORDER BY e.id DESC LIMIT 1) <> p.status}),
	'0',
	'timelines: one completed event per audit row, one terminal event, the last one');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM audit u
		   WHERE NOT EXISTS (SELECT 1 FROM queue.job_archive a
							  WHERE a.id = u.job_id AND a.state = 'completed'
								AND a.attempts = u.attempt AND a.saga_id = u.saga_id
								AND a.saga_step = u.step - 1
								AND a.saga_compensation = (u.kind = 'compensation'))}),
	'0',
	'every audit row is an archived completed job, with the attempt that completed it');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM queue.job_archive a
		   WHERE a.saga_id IS NOT NULL AND a.state = 'completed'
			 AND NOT EXISTS (SELECT 1 FROM audit u WHERE u.job_id = a.id)}),
	'0',
	'and every completed job of a saga has its audit row');

my @twice = grep { $acked{$_} > 1 } sort { $a <=> $b } keys %acked;
is(scalar(@twice), 0, 'no completion was acknowledged twice');
check_acked_durable('at the end');

# The jobs leased at each crash came back when their lease ended and
# finished on a later attempt (completed, or dead, or cancelled when their
# saga was unwinding) - except a step whose saga was cancelled while it
# ran: that attempt was its last, and it died when its lease expired.
cmp_ok($leased1 + $leased2, '>', 0, 'jobs were leased when the crashes struck');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM leased_at_crash l
		   WHERE NOT EXISTS (SELECT 1 FROM queue.job_archive a
							  WHERE a.id = l.job_id
								AND (a.attempts > l.attempt
									 OR (a.state = 'dead' AND a.attempts = l.attempt
										 AND a.errors -> -1 ->> 'error' = 'lease expired'
										 AND (SELECT s.cancel_requested FROM queue.saga s
											   WHERE s.id = a.saga_id))))}),
	'0',
	'they finished later, on a later attempt (or died, as the last of a cancelled saga)');

# --- numbers ------------------------------------------------------------------

my ($completed, $compensated, $cancelled, $nothing_to_undo) =
  split /\|/,
  $node->safe_psql(
	'postgres', q{
SELECT count(*) FILTER (WHERE status = 'completed'),
	   count(*) FILTER (WHERE status = 'compensated'),
	   count(*) FILTER (WHERE cancel_requested),
	   count(*) FILTER (WHERE status = 'compensated' AND actions = '{}')
  FROM per_saga});
my ($permanent, $transient) = split /\|/,
  $node->safe_psql('postgres',
	'SELECT count(*) FILTER (WHERE permanent), count(*) FILTER (WHERE NOT permanent) FROM fail_log');
my ($actions, $compensations) = split /\|/,
  $node->safe_psql('postgres',
	q{SELECT count(*) FILTER (WHERE kind = 'action'),
			 count(*) FILTER (WHERE kind = 'compensation') FROM audit});
my ($lease_expired, $maxatt) = split /\|/,
  $node->safe_psql(
	'postgres', q{
SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(a.errors) e
									   WHERE e->>'error' = 'lease expired')),
	   max(attempts)
  FROM queue.job_archive a WHERE a.saga_id IS NOT NULL});
my $leased_jobs = $node->safe_psql('postgres',
	'SELECT count(DISTINCT job_id) FROM leased_at_crash');
diag sprintf(
	"sagas: %d completed, %d compensated (%d of them with nothing to undo); "
	  . "%d cancelled by cancel_saga (of %d asked; the others had finished); "
	  . "completed jobs: %d actions, %d compensations; "
	  . "failures: %d for good, %d with retries; "
	  . "leased at the immediate shutdown: %d, at kill -9: %d (%d distinct jobs); "
	  . "jobs re-attempted after an expired lease: %d (max attempts %d); "
	  . "stale leases caught: %d; run took %.0f s",
	$completed, $compensated, $nothing_to_undo, $cancelled, int($nsagas / 40),
	$actions, $compensations, $permanent, $transient, $leased1, $leased2,
	$leased_jobs, $lease_expired, $maxatt, $stale, $elapsed);

$node->stop;
done_testing();
