# A worker dies holding leases: its jobs are rescued when the leases end.
#
# 1. Worker w1 claims three jobs (the claim commits) and its backend is
#    terminated (pg_terminate_backend).  The jobs stay leased to w1 - dying
#    does not hand them back early - and when the leases end another worker
#    claims them as attempt 2 and completes each once.  w1's stale tokens are
#    refused (QU001) before and after that completion, and each job's history
#    records the lease w1 lost.
# 2. A worker terminated while its claim is still uncommitted leaves nothing
#    behind: the claim rolls back and the jobs are claimable at once, still
#    at attempt 1.
#
# Nothing here asserts a duration: the only time-dependent check (that a job
# is not claimable while its lease runs) is made only when the probe
# provably ran before the lease's end, by the server's own clock.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = QueueTest::preloaded_node('rescue');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION queue;
SELECT queue.create_queue('rescue', max_attempts => 5, lease_timeout => '2 seconds');
SELECT queue.create_queue('rescue2', max_attempts => 5, lease_timeout => '2 seconds');
SELECT queue.enqueue_many('rescue', '[{"payload": {"n": 1}}, {"payload": {"n": 2}},
									  {"payload": {"n": 3}}]');
SELECT queue.enqueue_many('rescue2', '[{"payload": {"n": 4}}, {"payload": {"n": 5}}]');

-- Tries a claim and says when it started, by the server's clock.
CREATE FUNCTION probe_claim(q text, w text)
RETURNS TABLE (started timestamptz, claimed bigint)
LANGUAGE plpgsql AS $$
BEGIN
	started := clock_timestamp();
	SELECT count(*) INTO claimed FROM queue.claim(q, w, 10);
	RETURN NEXT;
END;
$$;
});

# Waits until the backend with this pid is gone.
sub wait_gone
{
	my ($pid) = @_;
	return $node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid)");
}

# --- 1. killed after its claim committed ------------------------------------

my $w1  = $node->background_psql('postgres');
my $pid = $w1->query_safe('SELECT pg_backend_pid()');
my $claimed = $w1->query_safe(
	q{SELECT job_id, lease_token, attempt, lease_expires_at
	    FROM queue.claim('rescue', 'w1', 10) ORDER BY job_id});
my @rows = map { [ split /\|/ ] } split /\n/, $claimed;
is(scalar(@rows), 3, 'w1 claims the three jobs');
is(join(',', map { $_->[2] } @rows), '1,1,1', 'as attempt 1');
my %w1_token = map { $_->[0] => $_->[1] } @rows;
my $ids = join ',', sort { $a <=> $b } keys %w1_token;
my ($first_expiry) = sort map { $_->[3] } @rows;

is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
	't', "w1's backend is terminated");
ok(wait_gone($pid), "w1's backend is gone");
eval { $w1->quit };

is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(state || '/' || worker || '/' || attempts, ',' ORDER BY id)
		   FROM queue.jobs WHERE queue = 'rescue'"),
	'running/w1/1,running/w1/1,running/w1/1',
	'the jobs stay leased to the dead worker');

# A claim that starts before the leases end gets nothing.
my ($early, $got) = split /\|/, $node->safe_psql(
	'postgres', qq{
BEGIN;
SELECT started < '$first_expiry'::timestamptz, claimed
  FROM probe_claim('rescue', 'early');
ROLLBACK;});
SKIP:
{
	skip 'the machine was slower than the lease; no early claim was tried', 1
	  unless $early eq 't';
	is($got, '0', 'nothing is claimable while the leases run');
}

ok( $node->poll_query_until(
		'postgres',
		q{SELECT bool_and(lease_expires_at <= clock_timestamp())
		    FROM queue.jobs WHERE queue = 'rescue' AND state = 'running'}),
	'the leases run out');

my $w2 = $node->background_psql('postgres');
$claimed = $w2->query_safe(
	q{SELECT job_id, lease_token, attempt FROM queue.claim('rescue', 'w2', 10)
	   ORDER BY job_id});
@rows = map { [ split /\|/ ] } split /\n/, $claimed;
is(join(',', map { $_->[0] } @rows), $ids, 'w2 claims the same jobs');
is(join(',', map { $_->[2] } @rows), '2,2,2', 'as attempt 2');
my %w2_token = map { $_->[0] => $_->[1] } @rows;
is(scalar(grep { $w2_token{$_} eq $w1_token{$_} } keys %w2_token),
	0, 'with new lease tokens');

# w1's tokens are fenced off now.
my ($some) = sort { $a <=> $b } keys %w1_token;
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', "\\set VERBOSITY verbose\n"
	  . "SELECT queue.complete($some, '$w1_token{$some}')");
isnt($ret, 0, "w1's token no longer completes the job");
like($stderr, qr/ERROR:  QU001: lease token \Q$w1_token{$some}\E is not the current lease/,
	'with QU001');
like($stderr, qr/DETAIL:  .*attempt 2.* worker "w2"/, 'saying who holds it');

my $id_list  = join ',', map { $_->[0] } @rows;
my $tok_list = join ',', map { $_->[1] } @rows;
is( $w2->query_safe(
		"SELECT queue.complete_many('{$id_list}', '{$tok_list}')"),
	'3',
	'w2 completes the three jobs');
$w2->quit;

is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(format('%s/%s/%s/%s', state, attempts, worker,
						 (SELECT string_agg(format('%s:%s:%s', e->>'attempt', e->>'worker',
												   e->>'error'), ';')
							FROM jsonb_array_elements(errors) e)),
				  ',' ORDER BY id)
  FROM queue.jobs WHERE queue = 'rescue'}),
	join(',', ('completed/2/w2/1:w1:lease expired') x 3),
	'each job completed once, on attempt 2, after the lease w1 lost');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM queue.job_archive WHERE id IN ($ids)"),
	'3',
	'one archived row per job');
is($node->safe_psql('postgres', "SELECT count(*) FROM queue.job WHERE id IN ($ids)"),
	'0', 'and none still live');

($ret, $stdout, $stderr) =
  $node->psql('postgres', "SELECT queue.complete($some, '$w2_token{$some}')");
isnt($ret, 0, 'completing again with the current token fails');
like($stderr, qr/DETAIL:  .*already finished.*completed/, 'the job has finished');
($ret, $stdout, $stderr) =
  $node->psql('postgres', "SELECT queue.complete($some, '$w1_token{$some}')");
isnt($ret, 0, "so does w1's old token");

# --- 2. killed before its claim committed ------------------------------------

my $w3 = $node->background_psql('postgres');
$pid = $w3->query_safe('SELECT pg_backend_pid()');
$w3->query_safe('BEGIN');
is($w3->query_safe(q{SELECT count(*) FROM queue.claim('rescue2', 'w3', 10)}),
	'2', 'w3 claims two jobs in an open transaction');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
	't', "w3's backend is terminated before it commits");
ok(wait_gone($pid), "w3's backend is gone");
eval { $w3->quit };

is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(format('%s/%s', payload->>'n', attempt), ','
							ORDER BY job_id)
		    FROM queue.claim('rescue2', 'w4', 10)}),
	'4/1,5/1',
	'its jobs are claimable at once, still at attempt 1');

$node->stop;
done_testing();
