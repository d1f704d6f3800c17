# Held-snapshot soak: a session holds a REPEATABLE READ snapshot (having
# read something, so its xmin pins the horizon) while a fixed-rate workload
# runs: a producer enqueuing at a fixed rate and four consumers claiming and
# completing.  Vacuum cannot remove the dead versions the workload leaves
# behind while the snapshot is held; the queue must keep up anyway (claim
# hints let claims skip the dead index entries at the front), and it must
# recover once the snapshot goes.
#
# Reported (diag): claim latency p50/p99 during the hold (measured inside
# the consumer loop with clock_timestamp() around each claim), n_dead_tup
# of queue.job and queue.job_archive before, during and after the hold, and
# after a VACUUM; the backlog of ready jobs at the end of the hold.
#
# Asserted, with bounds generous enough for a noisy 2-core machine: the
# backlog at the end of the hold is below half of what was offered (it does
# not grow without bound), every job is completed after the snapshot is
# released, and VACUUM then removes the dead tuples the hold kept (fewer
# than half remain, when there were many).
#
# Length: SOAK_SECONDS (default 30) is the length of the hold and of the
# workload; SOAK_RATE (default 500) the jobs per second offered.  The
# default suite runs the short version (about 60 s in all); the long one:
#
#     SOAK_SECONDS=300 make installcheck REGRESS= ISOLATION= PROVE_TESTS=test/t/090_held_snapshot.pl
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time sleep);

my $seconds = $ENV{SOAK_SECONDS} || 30;
my $rate = $ENV{SOAK_RATE} || 500;
my $n_consumers = 4;

my $node = QueueTest::preloaded_node(
	'soak', q{
queue.databases = 'postgres'
max_connections = 40
});

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION queue;
SELECT queue.create_queue('soak', lease_timeout => '5 minutes');
CREATE UNLOGGED TABLE soak_latency (worker text, ms double precision, got boolean);
CREATE UNLOGGED TABLE soak_stop (stop boolean);
INSERT INTO soak_stop VALUES (false);

-- Enqueues rate jobs a second for secs seconds, committing every 20 ms or
-- so; returns through a NOTICE how many it enqueued.
CREATE PROCEDURE soak_produce(rate int, secs int)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	done bigint := 0;
	due bigint;
BEGIN
	LOOP
		EXIT WHEN clock_timestamp() >= t0 + make_interval(secs => secs);
		due := floor(extract(epoch FROM clock_timestamp() - t0) * rate);
		IF due > done THEN
			PERFORM queue.enqueue('soak', jsonb_build_object('n', i))
			  FROM generate_series(done + 1, due) i;
			done := due;
		END IF;
		COMMIT;
		PERFORM pg_sleep(0.02);
	END LOOP;
	RAISE NOTICE 'produced %', done;
END;
$$;

-- Claims one job at a time and completes it, for about secs seconds or
-- until told to stop (and the queue is empty); records the duration of each
-- claim (flagged when it got no job).  The driver calls it over and over,
-- one statement at a time, so that the backend reports its table
-- statistics (n_dead_tup) between calls: a backend reports them only when
-- idle, never inside a long procedure.
CREATE PROCEDURE soak_consume(w text, secs double precision)
LANGUAGE plpgsql AS $$
DECLARE
	t_end timestamptz := clock_timestamp() + make_interval(secs => secs);
	t0 timestamptz;
	ms double precision[] := '{}';
	got boolean[] := '{}';
	j record;
	n bigint := 0;
BEGIN
	LOOP
		t0 := clock_timestamp();
		SELECT job_id, lease_token INTO j FROM queue.claim('soak', w);
		ms := ms || (extract(epoch FROM clock_timestamp() - t0) * 1000)::double precision;
		got := got || (j.job_id IS NOT NULL);
		COMMIT;
		IF j.job_id IS NOT NULL THEN
			PERFORM queue.complete(j.job_id, j.lease_token);
			COMMIT;
			n := n + 1;
		ELSE
			EXIT WHEN (SELECT stop FROM soak_stop);
			PERFORM pg_sleep(0.005);
		END IF;
		EXIT WHEN clock_timestamp() >= t_end;
	END LOOP;
	INSERT INTO soak_latency SELECT w, m, g FROM unnest(ms, got) AS u(m, g);
	COMMIT;
END;
$$;
});

# Starts psql in the background, running the statements given, each as a
# query of its own (psql -c ... -c ...).
sub start_psql
{
	my @sql = @_;
	my %h = (out => '', err => '');
	$h{run} = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
		  '-d', $node->connstr('postgres'), map { ('-c', $_) } @sql ],
		'<', \undef, '>', \$h{out}, '2>', \$h{err});
	return \%h;
}

sub finish_psql
{
	my ($h) = @_;
	$h->{run}->finish;
	die "psql failed: $h->{err}" if $h->{run}->result != 0;
	return $h->{err};
}

# n_dead_tup (and live rows) of the two job tables, as the statistics
# system last heard of them.
sub dead_tuples
{
	my $r = $node->safe_psql(
		'postgres', q{
SELECT pg_stat_clear_snapshot();
SELECT (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'queue.job'::regclass) || ' ' ||
	   (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'queue.job_archive'::regclass);
});
	my @l = split /\n/, $r;
	return split / /, $l[-1];
}

sub ready_jobs
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM queue.job WHERE state = 'ready' OR attempts = 0");
}

my @before = dead_tuples();
diag("n_dead_tup before: job $before[0], job_archive $before[1]");

# The holder: a REPEATABLE READ snapshot that has read something.
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$holder->query_safe('SELECT count(*) FROM queue.job');
my $holder_xmin = $holder->query_safe(
	'SELECT backend_xmin FROM pg_stat_activity WHERE pid = pg_backend_pid()');
ok($holder_xmin ne '', "the holder pins xmin $holder_xmin");

my $t_start = time;
# Each consumer calls soak_consume for a second at a time; the calls left
# after the stop return at once.
my @consumers =
  map { start_psql(("CALL soak_consume('c$_', 1)") x ($seconds + 600)) } 1 .. $n_consumers;
my $producer = start_psql("CALL soak_produce($rate, $seconds)");

# Samples while the snapshot is held.
my ($peak_job_dead, $peak_archive_dead, $peak_ready) = (0, 0, 0);
while (time - $t_start < $seconds - 1)
{
	sleep(5 < $seconds / 3 ? 5 : $seconds / 3);
	my @d = dead_tuples();
	my $ready = ready_jobs();
	$peak_job_dead = $d[0] if $d[0] > $peak_job_dead;
	$peak_archive_dead = $d[1] if $d[1] > $peak_archive_dead;
	$peak_ready = $ready if $ready > $peak_ready;
	diag(sprintf("t=%3ds during the hold: n_dead_tup job %d, job_archive %d; waiting jobs %d",
		time - $t_start, $d[0], $d[1], $ready));
}

my $produced_msg = finish_psql($producer);
my ($offered) = $produced_msg =~ /produced (\d+)/;
die "producer said nothing: $produced_msg" unless defined $offered;
my $backlog = ready_jobs();
my @during = dead_tuples();
$peak_job_dead = $during[0] if $during[0] > $peak_job_dead;
my $still_held = $holder->query_safe(
	'SELECT backend_xmin FROM pg_stat_activity WHERE pid = pg_backend_pid()');
is($still_held, $holder_xmin, 'the snapshot was held for the whole workload');
diag(sprintf("offered %d jobs in %.0f s (%.0f/s); backlog at the end of the hold %d",
	$offered, time - $t_start, $offered / (time - $t_start), $backlog));
cmp_ok($offered, '>', 0, 'the producer enqueued');
cmp_ok($backlog, '<', $offered / 2 + 100,
	'the backlog at the end of the hold stays far below what was offered');

# Release the snapshot, let the consumers drain, then stop them.
$holder->query_safe('COMMIT');
$holder->quit;
my $drained = $node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM queue.job");
ok($drained, 'every job is claimed and completed after the snapshot is released');
$node->safe_psql('postgres', 'UPDATE soak_stop SET stop = true');
finish_psql($_) for @consumers;

is($node->safe_psql('postgres',
		"SELECT count(*) FROM queue.job_archive a JOIN queue.queue q ON q.id = a.queue_id
		  WHERE q.name = 'soak' AND a.state = 'completed' AND a.attempts = 1"),
	$offered, 'each offered job was completed once, on its first attempt');

my $lat = $node->safe_psql(
	'postgres', q{
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) || ' ' ||
	   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) || ' ' ||
	   round(max(ms)::numeric, 2) || ' ' || count(*) || ' ' ||
	   (SELECT count(*) FROM soak_latency WHERE NOT got)
  FROM soak_latency WHERE got});
my ($p50, $p99, $max, $claims, $empty) = split / /, $lat;
diag("claim latency (claims that got a job): p50 $p50 ms, p99 $p99 ms, max $max ms over $claims claims ($empty empty claims besides)");

my @after = dead_tuples();
$node->safe_psql('postgres', 'VACUUM queue.job, queue.job_archive');
sleep(1.5);    # the statistics of the VACUUM
my @vacuumed = dead_tuples();
diag("n_dead_tup during the hold (peak): job $peak_job_dead, job_archive $peak_archive_dead");
diag("n_dead_tup after the release: job $after[0], job_archive $after[1]; after VACUUM: job $vacuumed[0], job_archive $vacuumed[1]");
if ($peak_job_dead > 1000)
{
	cmp_ok($vacuumed[0], '<', $peak_job_dead / 2,
		'VACUUM removes the dead tuples of queue.job once the snapshot is gone');
}
else
{
	pass("few dead tuples accumulated ($peak_job_dead); nothing to check");
}

$node->stop;
done_testing();
