# Crash durability: every job completed exactly once, none lost, across an
# immediate shutdown and a kill -9 of the postmaster in the middle of a run.
#
# 10,000 jobs in a queue with a 2 s lease and max_attempts 100 (so no job
# ever dies of lost leases).  Several worker sessions each loop:
#
#   transaction 1: claim a batch of 1..10 jobs (commit: the leases are held)
#   ... "work" (a few milliseconds) ...
#   transaction 2: complete_many(ids, tokens), then record the effects:
#                  INSERT INTO done (job_id primary key) and
#                  INSERT INTO audit ((job_id, attempt) primary key); commit.
#
# The completion and its effects commit together or not at all, so "done"
# holds each job at most once by construction, and a second completion of a
# job would surface as a unique violation on done (an error the workers do
# not catch: the test fails).  complete_many comes first in transaction 2 so
# that a worker whose lease went stale (it was slower than the lease and the
# job was claimed again) gets QU001 before it touches done; it rolls back
# that transaction and goes on, which is the intended use of fencing.
#
# The crash plan: run, stop('immediate') when ~1,500 jobs are done, restart;
# run, kill -9 the postmaster when ~4,000 are done, wait for its orphaned
# backends to exit, restart (crash recovery); then drain.  A crash between a
# worker's two transactions leaves its jobs leased to nobody: they must come
# back when their lease ends and be completed by a later attempt.  (The
# claim order is priority, run_at, id, and an expired lease's run_at is its
# expiry, so these jobs queue up behind the backlog enqueued before: they
# are typically claimed again during the drain, and the jobs leased at the
# first crash are usually still leased, expired, at the second.)
#
# Why the workers are a PL/pgSQL procedure (CALL, one psql per worker, run in
# the background with IPC::Run) rather than pgbench: pgbench 15 aborts a
# client on any error other than a serialization failure or deadlock, so a
# stale lease (QU001) or the crash itself would silently end clients, and it
# has no way to pass an array column through \gset into a later query
# without splicing text.  A procedure can COMMIT between its statements
# (transaction control in CALL), so claim and completion really are separate
# transactions, and it catches QU001 per batch.  After every completion's
# COMMIT it sends a NOTICE "committed {ids}"; the backend flushes notices to
# the client at once, so that is an acknowledgement: with synchronous_commit
# = on, every acknowledged job must still be done after the crash.  (The
# test cluster runs with fsync = off, as PostgreSQL::Test::Cluster sets up;
# these crashes kill processes, not the machine, so WAL written before a
# commit returns survives in the OS cache, which is what is under test.)
#
# Workers stop by themselves when queue.job is empty (nothing waiting and
# nothing leased).  So if a job were lost - gone from queue.job without being
# done - the drain would end early and the counts below would show it,
# rather than the test hanging.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $njobs    = 10_000;
my $nworkers = 4;

my $node = QueueTest::preloaded_node(
	'crash', q{
synchronous_commit = on
log_statement = none
});

$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION queue;
SELECT queue.create_queue('crash', max_attempts => 100,
						  lease_timeout => '2 seconds');
CREATE TABLE enqueued (job_id bigint PRIMARY KEY);
CREATE TABLE done (job_id bigint PRIMARY KEY);
CREATE TABLE audit (job_id bigint, attempt int, worker text,
					PRIMARY KEY (job_id, attempt));
-- the jobs that were leased when a crash struck, as found after the restart
CREATE TABLE leased_at_crash (crash int, job_id bigint, attempt int,
							  lease_expiry timestamptz,
							  PRIMARY KEY (crash, job_id));
INSERT INTO enqueued
SELECT queue.enqueue_many('crash',
	(SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('n', g)))
	   FROM generate_series(1, $njobs) g));

CREATE PROCEDURE work(wname text, deadline timestamptz)
LANGUAGE plpgsql AS \$\$
DECLARE
	ids bigint[];
	toks uuid[];
	atts int[];
BEGIN
	LOOP
		-- transaction 1: claim
		SELECT coalesce(array_agg(c.job_id), '{}'),
			   coalesce(array_agg(c.lease_token), '{}'),
			   coalesce(array_agg(c.attempt), '{}')
		  INTO ids, toks, atts
		  FROM queue.claim('crash', wname, 1 + floor(random() * 10)::int) c;
		COMMIT;

		IF cardinality(ids) = 0 THEN
			-- Nothing claimable now.  Finished when nothing is live at all;
			-- otherwise jobs are leased (perhaps to a dead session) and come
			-- back when their lease ends.
			EXIT WHEN NOT EXISTS (SELECT 1 FROM queue.job);
			IF clock_timestamp() > deadline THEN
				RAISE EXCEPTION 'worker % gave up: jobs still live at the deadline', wname;
			END IF;
			PERFORM pg_sleep(0.05);
			CONTINUE;
		END IF;

		-- the work
		PERFORM pg_sleep(0.005 + random() * 0.01);

		-- transaction 2: complete, and record the effects, atomically
		BEGIN
			PERFORM queue.complete_many(ids, toks);
			INSERT INTO done SELECT unnest(ids);
			INSERT INTO audit SELECT u.i, u.a, wname FROM unnest(ids, atts) AS u(i, a);
		EXCEPTION WHEN SQLSTATE 'QU001' THEN
			RAISE NOTICE 'stale lease: %', SQLERRM;
			ids := '{}';
		END;
		COMMIT;
		IF cardinality(ids) > 0 THEN
			RAISE NOTICE 'committed %', ids;
		END IF;
	END LOOP;
END
\$\$;
});

is($node->safe_psql('postgres', 'SELECT count(*) FROM enqueued'),
	$njobs, "$njobs jobs enqueued");

my %acked;           # job id => how many completions were acknowledged
my $stale     = 0;   # QU001 caught by workers (slower than their lease)
my @unexpected;      # worker errors that are not the crash itself

# Starts the workers of one phase: psql running CALL work(...) each.
sub start_workers
{
	my ($phase) = @_;
	return map {
		QueueTest::start_psql($node, "p$phase-w$_",
			"CALL work('p$phase-w$_', now() + interval '150 seconds')",
			$PostgreSQL::Test::Utils::timeout_default)
	} 1 .. $nworkers;
}

# Waits for the workers to exit and reads what they acknowledged.  After a
# crash their connections are gone; in the drain they end by themselves.
# Returns how many exited with status 0.
sub collect_workers
{
	my (@ws) = @_;
	return QueueTest::finish_psql(
		\@ws,
		acks       => { committed => \%acked },
		stale      => \$stale,
		errors     => qr/ERROR:/,
		unexpected => \@unexpected);
}

# Every acknowledged completion must be in done after a crash.
sub check_acked_durable
{
	my ($what) = @_;
	QueueTest::check_acked_completions($node, $what, \%acked, 'done');
}

# After a restart: note the jobs leased when the crash struck.
sub record_leased
{
	my ($crash) = @_;
	my $res = $node->safe_psql(
		'postgres', qq{
INSERT INTO leased_at_crash
SELECT $crash, id, attempts, run_at FROM queue.job WHERE state = 'running';
SELECT (SELECT count(*) FROM done),
	   (SELECT count(*) FROM leased_at_crash WHERE crash = $crash);});
	my ($ndone, $nleased) = split /\|/, $res;
	note "crash $crash: $ndone jobs done, $nleased leased at the crash";
	cmp_ok($ndone, '<', $njobs, "crash $crash struck in the middle of the run");
	return $nleased;
}

# --- phase 1, then an immediate shutdown -----------------------------------

my @ws = start_workers(1);
ok($node->poll_query_until('postgres', 'SELECT count(*) >= 1500 FROM done'),
	'phase 1: workers are completing jobs');
QueueTest::crash_restart($node, 'immediate', sub { collect_workers(@ws) });
check_acked_durable('after stop immediate');
my $leased1 = record_leased(1);

# --- phase 2, then kill -9 of the postmaster --------------------------------

@ws = start_workers(2);
ok($node->poll_query_until('postgres', 'SELECT count(*) >= 4000 FROM done'),
	'phase 2: workers are completing jobs');
QueueTest::crash_restart($node, 'kill9', sub { collect_workers(@ws) });
check_acked_durable('after kill -9 of the postmaster');
my $leased2 = record_leased(2);

# --- phase 3: drain -----------------------------------------------------------

@ws = start_workers(3);
my $clean = collect_workers(@ws);
is($clean, $nworkers, 'drain: every worker ran until the queue was empty');
is(join("\n", @unexpected), '', 'no worker hit an unexpected error');

# --- the audit ----------------------------------------------------------------

is($node->safe_psql('postgres', 'SELECT count(*) FROM done'),
	$njobs, "all $njobs jobs are done");
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FROM enqueued e
		  WHERE NOT EXISTS (SELECT 1 FROM done d WHERE d.job_id = e.job_id)'),
	'0',
	'no job was lost');
is($node->safe_psql('postgres', 'SELECT count(*) FROM queue.job'),
	'0', 'no job is left live');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM enqueued e JOIN queue.job_archive a
		    ON a.id = e.job_id AND a.state = 'completed'}),
	$njobs,
	'every job is archived as completed');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM queue.job_archive WHERE state <> 'completed'}),
	'0',
	'none died or was cancelled');

# One audit row per job (the primary key allows one per attempt), and it
# is the attempt the archive says completed the job.
is( $node->safe_psql(
		'postgres', 'SELECT count(*), count(DISTINCT job_id) FROM audit'),
	"$njobs|$njobs",
	'the audit has exactly one completion per job');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM audit u JOIN queue.job_archive a
						ON a.id = u.job_id AND a.attempts = u.attempt}),
	$njobs,
	'and it is the attempt the archive records');

# Acknowledgements: each job acknowledged at most once, and all of them.
my @twice = grep { $acked{$_} > 1 } sort { $a <=> $b } keys %acked;
is(scalar(@twice), 0, 'no completion was acknowledged twice')
  or diag "acknowledged twice: @twice[0 .. ($#twice < 9 ? $#twice : 9)]";
check_acked_durable('at the end');
# (Not every job need be acknowledged: a crash can strike between a
# completion's COMMIT and its NOTICE.)

# Every attempt but the last ended by its lease running out (nothing else
# fails in this test), and the error history says so.
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM queue.job_archive a
 WHERE jsonb_array_length(a.errors) <> a.attempts - 1
	OR EXISTS (SELECT 1 FROM jsonb_array_elements(a.errors) e
				WHERE e->>'error' <> 'lease expired')}),
	'0',
	'every extra attempt is explained by an expired lease');

# The jobs leased at each crash came back after their lease ended and were
# completed by a later attempt; the lease they lost is in their history.
cmp_ok($leased1 + $leased2, '>', 0, 'jobs were leased when the crashes struck');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM leased_at_crash l JOIN queue.job_archive a ON a.id = l.job_id
 WHERE a.state = 'completed' AND a.attempts > l.attempt
   AND a.finished_at > l.lease_expiry
   AND EXISTS (SELECT 1 FROM jsonb_array_elements(a.errors) e
				WHERE (e->>'attempt')::int = l.attempt
				  AND (e->>'at')::timestamptz = l.lease_expiry
				  AND e->>'error' = 'lease expired')}),
	$leased1 + $leased2,
	'they were completed by a later attempt after their lease expired');

my $leased_jobs = $node->safe_psql('postgres',
	'SELECT count(DISTINCT job_id) FROM leased_at_crash');
my $retried = $node->safe_psql('postgres',
	'SELECT count(*) FROM queue.job_archive WHERE attempts > 1');
my $maxatt = $node->safe_psql('postgres',
	'SELECT max(attempts) FROM queue.job_archive');
diag "leased at the immediate shutdown: $leased1; at kill -9: $leased2 "
  . "($leased_jobs distinct jobs); "
  . "jobs completed on a later attempt: $retried (max attempts $maxatt); "
  . "stale leases caught by workers: $stale";

$node->stop;
done_testing();
