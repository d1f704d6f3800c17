# The background workers on a streaming standby, and at its promotion.
#
# Both servers preload the library with queue.databases = 'postgres'.  On
# the hot standby nothing of the queue runs (the launcher starts only when
# recovery has finished) and nothing is logged, however many naptimes go
# by.  The primary hands out leases and dies (immediate stop) without
# settling them; the standby is promoted, its launcher and worker start,
# and the jobs the old primary leased are claimable again as attempt 2 once
# their leases end - a job on its last attempt is dead-lettered by the new
# primary's worker.  Every job is then drained, and none is lost.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'queue'
queue.databases = 'postgres'
queue.naptime = '100ms'
});
# allows_streaming sets max_connections = 10, which leaves little spare
# shared memory: the library must ask for all it uses.
if (!ok($primary->start(fail_ok => 1),
		'the primary starts with the library preloaded (max_connections = 10)'))
{
	diag(slurp_file($primary->logfile));
	done_testing();
	exit;
}
$primary->safe_psql('postgres', 'CREATE EXTENSION queue');
ok(QueueTest::worker_idle($primary), 'the primary runs its worker');

my $standby = QueueTest::standby_of($primary, 'standby');

is($standby->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'queue', 'the standby preloads queue too');
is($standby->safe_psql('postgres', 'SHOW queue.databases'),
	'postgres', 'with the same queue.databases');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'and is in recovery');

# --- jobs on the primary, leases left unsettled --------------------------------

# The primary's worker is stopped first (queue.databases is emptied on the
# primary alone; ALTER SYSTEM is not replicated), so that the job on its last
# attempt is left for the new primary's worker to settle.
ok(QueueTest::stop_workers($primary), "the primary's worker is stopped");

my $n_jobs = 10;
$primary->safe_psql(
	'postgres', qq{
SELECT queue.create_queue('ha', lease_timeout => '1 second');
SELECT queue.create_queue('ha_once', max_attempts => 1, lease_timeout => '1 second');
SELECT queue.enqueue('ha', jsonb_build_object('n', i)) FROM generate_series(1, $n_jobs) i;
SELECT queue.enqueue('ha_once', '{"once": true}');
});
my @leased = split /\n/, $primary->safe_psql('postgres',
	q{SELECT job_id FROM queue.claim('ha', 'old-primary', 4) ORDER BY job_id});
is(scalar(@leased), 4, 'the primary leases four jobs of ten');
my $once_id = $primary->safe_psql('postgres',
	q{SELECT job_id FROM queue.claim('ha_once', 'old-primary')});
like($once_id, qr/^\d+$/, 'and the job of a queue with one attempt');

$primary->wait_for_catchup($standby);
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE state = 'running') || '/' || count(*)
		    FROM queue.jobs WHERE queue IN ('ha', 'ha_once')}),
	'5/11',
	'the standby has replayed the jobs and the leases');

# Quiet standby: let it run for many naptimes (100ms) first.
usleep(1_500_000);
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity
		   WHERE backend_type IN ('queue launcher', 'queue worker')}),
	'0',
	'no queue launcher or worker runs on the standby');
is(join("\n", QueueTest::queue_log_lines($standby)), '',
	'and the standby logged nothing about the queue');

# --- the primary dies; the standby takes over -----------------------------------

$primary->stop('immediate');
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the standby is promoted');
ok( $standby->poll_query_until(
		'postgres',
		q{SELECT count(*) FILTER (WHERE backend_type = 'queue launcher') = 1
		     AND count(*) FILTER (WHERE backend_type = 'queue worker'
		                            AND datname = 'postgres') = 1
		    FROM pg_stat_activity}),
	'its launcher and worker start');
ok(QueueTest::worker_idle($standby), 'the worker is idle on the board');

ok( $standby->poll_query_until(
		'postgres', "SELECT state || '/' || last_error FROM queue.jobs WHERE id = $once_id",
		'dead/lease expired'),
	"the new primary's worker dead-letters the job whose last lease the old primary left"
);

# Drain: claim and complete until every job is done; a job the old primary
# leased comes back as attempt 2 once its lease has ended.
my %attempt_of;
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
while (time() < $deadline)
{
	my @rows = map { [ split /\|/ ] } split /\n/,
	  $standby->safe_psql('postgres',
		q{SELECT job_id, lease_token, attempt FROM queue.claim('ha', 'new-primary', 100)});
	for my $row (@rows)
	{
		my ($id, $token, $attempt) = @$row;
		fail("job $id is claimed a second time") if exists $attempt_of{$id};
		$attempt_of{$id} = $attempt;
		$standby->safe_psql('postgres', "SELECT queue.complete($id, '$token')");
	}
	last if keys(%attempt_of) >= $n_jobs;
	usleep(100_000);
}
is(scalar(keys %attempt_of), $n_jobs, 'every job is claimed and completed');
is( join(',', sort { $a <=> $b } grep { $attempt_of{$_} == 2 } keys %attempt_of),
	join(',', @leased),
	'the jobs the old primary leased come back as attempt 2');
is(scalar(grep { $attempt_of{$_} == 1 } keys %attempt_of),
	$n_jobs - 4, 'the others as attempt 1');
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE state = 'completed') || '/' || count(*)
		    FROM queue.jobs WHERE queue = 'ha'}),
	"$n_jobs/$n_jobs",
	'nothing is lost: as many completed jobs as were enqueued, and nothing else');
is( $standby->safe_psql(
		'postgres',
		q{SELECT string_agg(DISTINCT e->>'worker' || ':' || (e->>'error'), ',')
		    FROM queue.jobs j, jsonb_array_elements(j.errors) e
		   WHERE j.queue = 'ha'}),
	'old-primary:lease expired',
	"their history records the lease the old primary lost");

$standby->stop('fast');
my $log = slurp_file($standby->logfile);
unlike($log, qr/terminated by signal|exited with exit code (?!1\b)|PANIC|TRAP:/,
	'nothing crashed on the promoted standby');

done_testing();
