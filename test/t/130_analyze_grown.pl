# The background worker ANALYZEs queue.job when it has grown far past its
# statistics, so that plans made while it was empty are made again.
#
# The hot path's plans are generic and kept per backend.  A session that
# first completes and claims while queue.job is empty gets plans that read
# the whole table (a sequential scan and a hash join), cheap then; a burst
# of jobs makes every such call read every row, until something ANALYZEs
# the table and so invalidates the plans.  Autovacuum is off here, so only
# the worker can do it:
#
#  1. a session plans complete_and_claim against an empty, analyzed
#     queue.job;
#  2. 20,000 jobs arrive; the worker ANALYZEs queue.job (pg_class.reltuples
#     grows past 5,000; pg_stat_user_tables counts the analyze);
#  3. the same session, in one transaction, completes and claims 200 jobs:
#     its own statistics (pg_stat_xact_user_tables) show no sequential scan
#     of queue.job per call (a few, once, as it plans again), every call
#     reached its rows through an index.
#
# Without step 2 the third check fails: the plans of step 1 are kept and
# scan queue.job sequentially on every call.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('analyze');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'queue'
queue.databases = 'postgres'
queue.naptime = '100ms'
autovacuum = off
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION queue;
SELECT queue.create_queue('grown');
SELECT queue.enqueue('grown', '{"n": 0}');
ANALYZE queue.job;
});

# --- 1. plans made while queue.job is (nearly) empty -------------------------

my $session = $node->background_psql('postgres');
$session->query_safe(
	q{CREATE TEMP TABLE held AS
	    SELECT job_id, lease_token FROM queue.complete_and_claim('{}', '{}', 'grown', 'w', 1)});
$session->query_safe(
	q{CREATE TEMP TABLE held2 AS
	    SELECT job_id, lease_token FROM queue.complete_and_claim(
	      (SELECT array_agg(job_id) FROM held), (SELECT array_agg(lease_token) FROM held),
	      'grown', 'w', 1)});
is($session->query_safe('SELECT count(*) FROM held2'),
	'0', 'the session completed the only job and found no other');
cmp_ok(
	$node->safe_psql(
		'postgres', q{SELECT reltuples FROM pg_class WHERE oid = 'queue.job'::regclass}),
	'<=', 1, 'queue.job was analyzed (nearly) empty');

# --- 2. a burst, and the worker's ANALYZE -------------------------------------

my $analyzed_before = $node->safe_psql('postgres',
	q{SELECT analyze_count FROM pg_stat_user_tables WHERE relid = 'queue.job'::regclass});
$node->safe_psql('postgres', q{
SELECT count(*) FROM queue.enqueue_many('grown',
  (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('n', i)))
     FROM generate_series(1, 10000) i));
}) for 1 .. 2;
ok( $node->poll_query_until(
		'postgres',
		q{SELECT reltuples >= 5000 FROM pg_class WHERE oid = 'queue.job'::regclass}),
	'the worker analyzed queue.job after the burst')
  or diag $node->safe_psql('postgres',
	q{SELECT pg_stat_get_live_tuples(oid) || ' live, reltuples ' || reltuples
	    FROM pg_class WHERE oid = 'queue.job'::regclass});
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT analyze_count > $analyzed_before FROM pg_stat_user_tables
		    WHERE relid = 'queue.job'::regclass}),
	'the analyze is counted in pg_stat_user_tables');

# --- 3. the same session's calls now reach rows through indexes ---------------

my $scans = $session->query_safe(
	q{BEGIN;
DO $$
DECLARE
	ids bigint[] := '{}';
	tokens uuid[] := '{}';
BEGIN
	FOR i IN 1..200 LOOP
		SELECT coalesce(array_agg(job_id), '{}'), coalesce(array_agg(lease_token), '{}')
		  INTO ids, tokens
		  FROM queue.complete_and_claim(ids, tokens, 'grown', 'w', 1);
	END LOOP;
	PERFORM queue.complete_many(ids, tokens);
END;
$$;
SELECT seq_scan || ' ' || coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables
 WHERE relid = 'queue.job'::regclass;
COMMIT;});
my ($seq, $idx) = split / /, $scans;
note "in the session's transaction: $seq sequential and $idx index scans of queue.job";
# A few scans happen once, when the session plans again; the plans made
# before the burst would scan on every call (200 or more).
cmp_ok($seq, '<', 20, 'no sequential scan of queue.job per call: the plans were made again');
cmp_ok($idx, '>=', 200, 'the calls used indexes');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM queue.job_archive WHERE state = 'completed'}),
	'201',
	'the session completed 201 jobs in all');

$session->quit;
$node->stop;
done_testing();
