# A waiting claim is woken by the commit that gives it work, not by polling.
#
# The waiting session sets queue.recheck_interval to 10 minutes, far above
# every wait here (30 s at most), so the only things that can end a wait
# early are a commit announcing work to the queue and the next job falling
# due.  The claim measures its own duration inside the server
# (clock_timestamp() at its start and end), and a claim that waits 30 s
# must come back within 15 s with the job: it fails unless the wake-up
# came from the commit.
#
#  1. an enqueue by another session wakes the claim (latency reported);
#  2. an enqueue in a transaction left open for 2 s wakes it only at its
#     commit;
#  3. a rolled-back enqueue does not end the wait;
#  4. a scheduled job enqueued before the claim: returned when it falls due;
#  5. a scheduled job enqueued while the claim waits: the commit tells the
#     claim when to look, and it gets the job when due;
#  6. a release and a fail with retry_delay 0 by another session wake it;
#  7. a claim waiting on queue A never returns queue B's job.
#
# Timings are only ever compared with generous bounds (< 15 s for a 30 s
# wait); the machine may be slow.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = QueueTest::preloaded_node('wakeup');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION queue;
SELECT queue.create_queue('wq');
SELECT queue.create_queue('qa');
SELECT queue.create_queue('qb');

-- A waiting claim that says what it got and how long it took, by the
-- server's clock.
CREATE FUNCTION timed_claim(q text, w text, wait interval,
							OUT jobs text, OUT attempts text, OUT ms bigint,
							OUT started timestamptz, OUT ended timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
	started := clock_timestamp();
	SELECT string_agg(c.job_id::text, ',' ORDER BY c.job_id),
		   string_agg(c.attempt::text, ',' ORDER BY c.job_id)
	  INTO jobs, attempts
	  FROM queue.claim(q, w, 10, NULL, wait) c;
	ended := clock_timestamp();
	ms := round(extract(epoch FROM ended - started) * 1000);
END;
$$;
});

# The waiting session.  Its re-check interval is far above any wait here.
my $waiter = $node->background_psql('postgres');
$waiter->query_safe("SET queue.recheck_interval = '10min'");
is($waiter->query_safe('SHOW queue.recheck_interval'),
	'10min', 'the waiting session re-checks only every 10 minutes');
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');

# A second session, for transactions that stay open.
my $producer = $node->background_psql('postgres');

my $n_claim = 0;

# Starts a timed claim in the waiting session without waiting for it.
sub start_claim
{
	my ($q, $wait) = @_;
	$n_claim++;
	$waiter->{stdin} .=
	  "SELECT * FROM timed_claim('$q', 'waiter', '$wait');\n\\echo CLAIM_DONE_$n_claim\n";
	$waiter->{run}->pump_nb;
	return;
}

# Waits until the claim is asleep on a wake-up slot.
sub wait_asleep
{
	my ($q) = @_;
	return $node->poll_query_until(
		'postgres', qq{
SELECT (SELECT waiting_claims >= 1 FROM queue.queue_stats WHERE queue = '$q')
   AND EXISTS (SELECT 1 FROM pg_stat_activity
				WHERE pid = $waiter_pid AND state = 'active'
				  AND wait_event_type = 'Extension')});
}

# Has the claim returned yet?  (Does not block.)
sub claim_returned
{
	$waiter->{run}->pump_nb;
	return $waiter->{stdout} =~ /CLAIM_DONE_$n_claim\n/;
}

# Waits for the claim's result: a hash of jobs, attempts, ms, started, ended.
sub finish_claim
{
	pump_until($waiter->{run}, $waiter->{timeout}, \$waiter->{stdout},
		qr/CLAIM_DONE_$n_claim\n/);
	my $out = $waiter->{stdout};
	$waiter->{stdout} = '';
	die "claim failed: $waiter->{stderr}" if $waiter->{stderr} ne '';
	$out =~ s/CLAIM_DONE_$n_claim\n//;
	chomp $out;
	my %r;
	@r{qw(jobs attempts ms started ended)} = split /\|/, $out, -1;
	note "claim $n_claim: $out";
	return \%r;
}

# Seconds from timestamp a to timestamp b, by the server.
sub seconds_between
{
	my ($a, $b) = @_;
	return $node->safe_psql('postgres',
		"SELECT extract(epoch FROM '$b'::timestamptz - '$a'::timestamptz)");
}

# Completes a job the waiter claimed, so that no lease is left to expire.
sub settle
{
	my ($job) = @_;
	$node->safe_psql('postgres',
		"SELECT queue.complete(id, lease_token) FROM queue.job WHERE id = $job");
	return;
}

# --- 1. an enqueue wakes the claim -------------------------------------------

start_claim('wq', '30 seconds');
ok(wait_asleep('wq'), 'the claim (wait 30 s) is asleep on the queue');
usleep(500_000);
ok(!claim_returned(), 'and stays asleep while nothing happens');
my ($id, $enqueued_at) = split /\|/,
  $node->safe_psql('postgres',
	q{SELECT queue.enqueue('wq', '{"case": 1}'), clock_timestamp()});
my $r = finish_claim();
is($r->{jobs}, $id, 'the claim returns the job another session enqueued');
cmp_ok($r->{ms}, '<', 15000,
	"long before its 30 s wait ends ($r->{ms} ms in all)");
my $latency_ms = int(seconds_between($enqueued_at, $r->{ended}) * 1000 + 0.5);
cmp_ok($latency_ms, '>=', 0, 'and not before the enqueue');
diag("wake-up latency, end of the enqueue statement to return of the claim: $latency_ms ms");
settle($id);

# --- 2. an open transaction wakes nobody until it commits -----------------------

start_claim('wq', '30 seconds');
ok(wait_asleep('wq'), 'a new claim is asleep');
$producer->query_safe('BEGIN');
$id = $producer->query_safe(q{SELECT queue.enqueue('wq', '{"case": 2}')});
usleep(2_000_000);
ok(!claim_returned(), 'an enqueue in an open transaction does not wake it (2 s)');
ok(wait_asleep('wq'), 'the claim is still asleep');
my $commit_at = $producer->query_safe('SELECT clock_timestamp()');
$producer->query_safe('COMMIT');
$r = finish_claim();
is($r->{jobs}, $id, 'the commit wakes it, and it returns the job');
cmp_ok(seconds_between($commit_at, $r->{ended}), '>=', 0,
	'after the commit was sent');
cmp_ok($r->{ms}, '<', 15000, "long before its wait ends ($r->{ms} ms)");
settle($id);

# --- 3. a rolled-back enqueue does not end the wait --------------------------------

start_claim('wq', '3 seconds');
ok(wait_asleep('wq'), 'a claim waiting 3 s is asleep');
$producer->query_safe('BEGIN');
$producer->query_safe(q{SELECT queue.enqueue('wq', '{"case": 3}')});
$producer->query_safe('ROLLBACK');
$r = finish_claim();
is($r->{jobs}, '', 'after a rolled-back enqueue the claim returns nothing');
cmp_ok($r->{ms}, '>=', 2500, "at the end of its wait ($r->{ms} ms)");
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM queue.job j JOIN queue.queue q ON q.id = j.queue_id
					   WHERE q.name = 'wq'}),
	'0',
	'and there is indeed no job');

# --- 4. a scheduled job enqueued before the claim -------------------------------------

my $run_at;
$id = $node->safe_psql('postgres',
	q{SELECT queue.enqueue('wq', '{"case": 4}', delay => '2 seconds')});
($enqueued_at, $run_at) = split /\|/,
  $node->safe_psql('postgres', "SELECT created_at, run_at FROM queue.jobs WHERE id = $id");
start_claim('wq', '30 seconds');
$r = finish_claim();
is($r->{jobs}, $id, 'a claim gets the job scheduled 2 s ahead');
cmp_ok(seconds_between($run_at, $r->{ended}), '>=', 0, 'not before it is due');
cmp_ok(seconds_between($enqueued_at, $r->{ended}), '>=', 1.5,
	'so at least 1.5 s after it was enqueued');
cmp_ok($r->{ms}, '<', 15000,
	"and long before the 30 s wait ends ($r->{ms} ms): the claim woke when the job fell due"
);
settle($id);

# --- 5. a scheduled job enqueued while the claim waits --------------------------------

start_claim('wq', '30 seconds');
ok(wait_asleep('wq'), 'a claim is asleep on the empty queue');
$id = $node->safe_psql('postgres',
	q{SELECT queue.enqueue('wq', '{"case": 5}', delay => '2 seconds')});
($enqueued_at, $run_at) = split /\|/,
  $node->safe_psql('postgres', "SELECT created_at, run_at FROM queue.jobs WHERE id = $id");
$r = finish_claim();
is($r->{jobs}, $id, 'it gets a job enqueued meanwhile for 2 s ahead');
cmp_ok(seconds_between($run_at, $r->{ended}), '>=', 0, 'not before it is due');
cmp_ok($r->{ms}, '<', 15000,
	"long before its wait ends ($r->{ms} ms): the commit told it when to look");
settle($id);

# --- 6. release and fail with retry_delay 0 wake a waiting claim --------------------------

$id = $node->safe_psql('postgres', q{SELECT queue.enqueue('wq', '{"case": 6}')});
my ($cid, $token) = split /\|/, $node->safe_psql('postgres',
	q{SELECT job_id, lease_token FROM queue.claim('wq', 'other')});
is($cid, $id, 'another worker holds a job');
start_claim('wq', '30 seconds');
ok(wait_asleep('wq'), 'a claim is asleep (the only job is running)');
$node->safe_psql('postgres', "SELECT queue.release($id, '$token')");
$r = finish_claim();
is($r->{jobs}, $id, 'the release wakes it, and it gets the released job');
is($r->{attempts}, '1', 'as attempt 1 again (a release gives the attempt back)');
cmp_ok($r->{ms}, '<', 15000, "long before its wait ends ($r->{ms} ms)");
settle($id);

$id = $node->safe_psql('postgres', q{SELECT queue.enqueue('wq', '{"case": 7}')});
($cid, $token) = split /\|/, $node->safe_psql('postgres',
	q{SELECT job_id, lease_token FROM queue.claim('wq', 'other')});
is($cid, $id, 'another worker holds a job');
start_claim('wq', '30 seconds');
ok(wait_asleep('wq'), 'a claim is asleep');
$node->safe_psql('postgres',
	"SELECT queue.fail($id, '$token', 'boom', retry_delay => '0')");
$r = finish_claim();
is($r->{jobs}, $id, 'a fail with retry_delay 0 wakes it, and it gets the job');
is($r->{attempts}, '2', 'as attempt 2');
cmp_ok($r->{ms}, '<', 15000, "long before its wait ends ($r->{ms} ms)");
settle($id);

# --- 7. another queue's job does not end the wait ------------------------------------------

start_claim('qa', '3 seconds');
ok(wait_asleep('qa'), 'a claim waits on queue qa');
my $bid = $node->safe_psql('postgres', q{SELECT queue.enqueue('qb', '{"case": 8}')});
$r = finish_claim();
is($r->{jobs}, '', 'a job enqueued into qb is not returned to it');
cmp_ok($r->{ms}, '>=', 2500, "it waited until its end ($r->{ms} ms)");
is($node->safe_psql('postgres', q{SELECT job_id FROM queue.claim('qb', 'b')}),
	$bid, 'the qb job is still there for a claim on qb');

$waiter->quit;
$producer->quit;
$node->stop;
done_testing();
