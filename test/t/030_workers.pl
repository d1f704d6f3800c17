# The background launcher and its per-database workers.
#
#  1. They show up: in pg_stat_activity (backend_type "queue launcher" and
#     "queue worker", wait event Extension while idle) and in queue.workers.
#  2. A database without the extension is noted once in the log (no flood
#     at naptime 100ms), and CREATE EXTENSION is noticed; DROP EXTENSION and
#     CREATE EXTENSION again are lived through by the same worker.
#  3. A terminated worker is started again (a new pid).
#  4. SIGHUP: a database taken out of queue.databases loses its worker, one
#     put back gets one; an unknown database name is warned about once per
#     reload, and one that does not exist yet at start is picked up by a
#     reload once it does.
#  5. The maintenance itself, by the worker and not by the test: a job whose
#     holder hangs goes to the dead letters ("lease expired") when its last
#     attempt's lease runs out, or becomes claimable again (attempt 2) when
#     it has attempts left; finished jobs past their retention are pruned.
#  6. A fast shutdown stops everything, and nothing crashed on the way.
#
# Durations are never asserted: every wait is a poll with the framework's
# timeout.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = QueueTest::preloaded_node(
	'workers', q{
queue.databases = 'postgres, appdb'
queue.naptime = '100ms'
});

# How often a pattern occurs in the log (from an offset).
sub log_count
{
	my ($re, $offset) = @_;
	my $log = slurp_file($node->logfile, $offset // 0);
	my $n = () = $log =~ /$re/g;
	return $n;
}

sub missing_re
{
	my ($db) = @_;
	return
	  qr/LOG:  queue worker: extension "queue" is not installed in database "$db"; waiting for CREATE EXTENSION/;
}

sub found_re
{
	my ($db) = @_;
	return
	  qr/LOG:  queue worker: extension "queue" found in database "$db"; maintenance resumes/;
}

my $unknown_appdb_re =
  qr/WARNING:  queue.databases names database "appdb", which does not exist/;

# The pid of the worker of a database, from pg_stat_activity ('' if none).
sub worker_pid
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ',') FROM pg_stat_activity
		  WHERE backend_type = 'queue worker' AND datname = '$db'");
}

# Waits until the worker of a database runs with a pid other than $old.
sub wait_worker
{
	my ($db, $old) = @_;
	my $cond = defined $old ? "AND pid <> $old" : '';
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'queue worker' AND datname = '$db' $cond")
	  or return '';
	return worker_pid($db);
}

# --- 1. the processes ---------------------------------------------------------

ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'queue launcher' AND datname IS NULL"),
	'the launcher runs, connected to no database');
my $pg_pid = wait_worker('postgres');
like($pg_pid, qr/^\d+$/, 'one worker runs for database postgres');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'queue worker'"),
	'1',
	'and only that one: appdb does not exist yet');

# appdb was named but did not exist at start: one warning, not one per pass.
$node->wait_for_log($unknown_appdb_re);
$node->wait_for_log(missing_re('postgres'));
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity
		  WHERE backend_type IN ('queue launcher', 'queue worker')
		    AND state IS DISTINCT FROM 'active'
		    AND wait_event_type = 'Extension' AND wait_event = 'Extension'"),
	'launcher and worker wait on the Extension wait event when idle');

$node->safe_psql('postgres', 'CREATE DATABASE appdb');
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
my $app_pid = wait_worker('appdb');
like($app_pid, qr/^\d+$/,
	'a reload after CREATE DATABASE starts the worker for appdb');
$node->wait_for_log(missing_re('appdb'), $log_offset);
is(log_count($unknown_appdb_re, $log_offset),
	0, 'and no longer warns that appdb does not exist');

# No flood: the missing extension is noted once, however many passes go by
# (at least 20 at naptime 100ms).
usleep(2_000_000);
is(log_count(missing_re('postgres')), 1,
	'the missing extension in postgres is logged exactly once');
is(log_count(missing_re('appdb')), 1,
	'the missing extension in appdb is logged exactly once');
is(log_count($unknown_appdb_re), 1,
	'the unknown database was warned about once at start');

# --- 2. CREATE EXTENSION, noticed; the board -------------------------------

$log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE EXTENSION queue');
$node->wait_for_log(found_re('postgres'), $log_offset);
pass('the postgres worker notices CREATE EXTENSION');

ok( $node->poll_query_until(
		'postgres',
		"SELECT string_agg(database || ':' || state, ',' ORDER BY database)
		   FROM queue.workers",
		'appdb:waiting for CREATE EXTENSION,postgres:idle'),
	'queue.workers: postgres idle, appdb waiting for CREATE EXTENSION');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(database || ':' || pid, ',' ORDER BY database)
		   FROM queue.workers"),
	"appdb:$app_pid,postgres:$pg_pid",
	'with the pids pg_stat_activity shows');
is( $node->safe_psql(
		'postgres',
		"SELECT bool_and(started_at <= last_activity AND last_activity <= clock_timestamp()
		                 AND errors = 0)
		   FROM queue.workers"),
	't',
	'having been active, without errors');

# DROP EXTENSION and CREATE EXTENSION again: the same worker follows.
$log_offset = -s $node->logfile;
$node->safe_psql('appdb', 'CREATE EXTENSION queue');
$node->wait_for_log(found_re('appdb'), $log_offset);
pass('the appdb worker notices CREATE EXTENSION');
$log_offset = -s $node->logfile;
$node->safe_psql('appdb', 'DROP EXTENSION queue');
$node->wait_for_log(missing_re('appdb'), $log_offset);
pass('and DROP EXTENSION');
ok( $node->poll_query_until(
		'postgres',
		"SELECT state FROM queue.workers WHERE database = 'appdb'",
		'waiting for CREATE EXTENSION'),
	'its state says so');
$log_offset = -s $node->logfile;
$node->safe_psql('appdb', 'CREATE EXTENSION queue');
$node->wait_for_log(found_re('appdb'), $log_offset);
pass('and CREATE EXTENSION again');
ok(QueueTest::worker_idle($node, 'appdb'), 'the appdb worker is idle again');
is(worker_pid('appdb'), $app_pid, 'the same worker process lived through it');
is( $node->safe_psql(
		'postgres', "SELECT pid FROM queue.workers WHERE database = 'appdb'"),
	$app_pid,
	'and the board shows it');

# --- 3. a terminated worker comes back ---------------------------------------

is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pg_pid)"),
	't', 'the postgres worker is terminated');
my $new_pg_pid = wait_worker('postgres', $pg_pid);
like($new_pg_pid, qr/^\d+$/, 'a new postgres worker starts, with a new pid');
ok( $node->poll_query_until(
		'postgres',
		"SELECT pid = $new_pg_pid AND state = 'idle'
		   FROM queue.workers WHERE database = 'postgres'"),
	'the board shows the new worker, idle');
is(worker_pid('appdb'), $app_pid, 'the appdb worker was not disturbed');
$pg_pid = $new_pg_pid;

# --- 4. SIGHUP: queue.databases changes ---------------------------------------

$node->safe_psql('postgres',
	"ALTER SYSTEM SET queue.databases = 'postgres'; SELECT pg_reload_conf();");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity
		  WHERE backend_type = 'queue worker' AND datname = 'appdb'"),
	'taking appdb out of queue.databases stops its worker');
ok( $node->poll_query_until(
		'postgres',
		"SELECT string_agg(database, ',') FROM queue.workers", 'postgres'),
	'and takes it off the board');
is(worker_pid('postgres'), $pg_pid, 'the postgres worker goes on');

$node->safe_psql('postgres',
	"ALTER SYSTEM SET queue.databases = 'postgres, appdb'; SELECT pg_reload_conf();"
);
my $new_app_pid = wait_worker('appdb', $app_pid);
like($new_app_pid, qr/^\d+$/, 'putting appdb back starts a worker for it');
$app_pid = $new_app_pid;
ok( $node->poll_query_until(
		'postgres',
		"SELECT string_agg(database || ':' || state, ',' ORDER BY database)
		   FROM queue.workers",
		'appdb:idle,postgres:idle'),
	'both on the board, idle');

# An unknown name: one warning per reload, however many launcher rounds.
my $nosuch_re =
  qr/WARNING:  queue.databases names database "nosuchdb", which does not exist/;
$log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET queue.databases = 'postgres, nosuchdb, appdb'; SELECT pg_reload_conf();"
);
$node->wait_for_log($nosuch_re, $log_offset);
usleep(2_500_000);
is(log_count($nosuch_re, $log_offset),
	1, 'a database that does not exist is warned about once');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->wait_for_log(qr/(?s)$nosuch_re.*$nosuch_re/, $log_offset);
usleep(1_500_000);
is(log_count($nosuch_re, $log_offset), 2, 'and once more per reload');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(datname || ':' || pid, ',' ORDER BY datname)
		   FROM pg_stat_activity WHERE backend_type = 'queue worker'"),
	"appdb:$app_pid,postgres:$pg_pid",
	'the listed databases that exist keep their workers');
$node->safe_psql('postgres',
	"ALTER SYSTEM SET queue.databases = 'postgres, appdb'; SELECT pg_reload_conf();"
);

# --- 5. maintenance by the worker ----------------------------------------------

# Everything below happens in appdb, whose extension was dropped and created
# again under the running worker.  The test never calls expire_leases() or
# prune(): only the worker does.
$node->safe_psql(
	'appdb', q{
SELECT queue.create_queue('hang1', max_attempts => 1, lease_timeout => '1 second');
SELECT queue.create_queue('hang3', max_attempts => 3, lease_timeout => '1 second');
SELECT queue.create_queue('short', retention => '1 second');
SELECT queue.create_queue('zero', retention => '0 seconds');
SELECT queue.create_queue('keep');
});
my $id1 = $node->safe_psql('appdb', q{SELECT queue.enqueue('hang1', '{"n": 1}')});
my $id3 = $node->safe_psql('appdb', q{SELECT queue.enqueue('hang3', '{"n": 3}')});

# A worker claims both jobs and hangs: its session stays open, and it never
# settles them.
my $hung = $node->background_psql('appdb', on_error_stop => 0);
my ($c1_id, $c1_token, $c1_expires) = split /\|/,
  $hung->query_safe(
	q{SELECT job_id, lease_token, lease_expires_at FROM queue.claim('hang1', 'hung')});
is($c1_id, $id1, 'the hung worker claims the hang1 job');
my ($c3_id, $c3_token) = split /\|/,
  $hung->query_safe(q{SELECT job_id, lease_token FROM queue.claim('hang3', 'hung')});
is($c3_id, $id3, 'and the hang3 job');

ok( $node->poll_query_until(
		'appdb', "SELECT state || '/' || last_error FROM queue.jobs WHERE id = $id1",
		'dead/lease expired'),
	'the worker moves the job with no attempts left to the dead letters, "lease expired"'
);
is( $node->safe_psql(
		'appdb',
		"SELECT finished_at >= '$c1_expires'::timestamptz, attempts, worker
		   FROM queue.jobs WHERE id = $id1"),
	't|1|hung',
	'only after its lease ended; one attempt, by the hung worker');
is( $node->safe_psql(
		'postgres',
		"SELECT leases_expired >= 1 FROM queue.workers WHERE database = 'appdb'"),
	't',
	'the appdb worker counts it on the board');

ok( $node->poll_query_until(
		'appdb',
		"SELECT job_id || '/' || attempt FROM queue.claim('hang3', 'rescuer')",
		"$id3/2"),
	'the job with attempts left is claimable again once its lease ends, as attempt 2'
);
is( $node->safe_psql(
		'appdb', "SELECT state || '/' || worker FROM queue.jobs WHERE id = $id3"),
	'running/rescuer',
	'and runs for the rescuer');

$hung->query(qq{SELECT queue.complete($id1, '$c1_token')});
like($hung->{stderr}, qr/is not the current lease|already finished/,
	"the hung worker's token no longer completes the dead job");
$hung->quit;

# Pruning: the completed job of a queue with retention 1 second goes; one
# with retention 0 is deleted at completion; one with the default retention
# (1 day) stays.
sub run_one
{
	my ($q) = @_;
	my $id = $node->safe_psql('appdb', qq{SELECT queue.enqueue('$q', '{}')});
	$node->safe_psql(
		'appdb', qq{
SELECT queue.complete(job_id, lease_token) FROM queue.claim('$q', 'w');});
	return $id;
}
my $short_id = run_one('short');
my $zero_id  = run_one('zero');
my $keep_id  = run_one('keep');
is($node->safe_psql('appdb', "SELECT count(*) FROM queue.jobs WHERE id = $zero_id"),
	'0', 'retention 0: a completed job is deleted at completion');
ok( $node->poll_query_until(
		'appdb', "SELECT count(*) FROM queue.jobs WHERE id = $short_id", '0'),
	'retention 1 second: the worker prunes the completed job');
is( $node->safe_psql(
		'appdb', "SELECT state FROM queue.jobs WHERE id = $keep_id"),
	'completed',
	'the default retention keeps its completed job');
is( $node->safe_psql(
		'postgres',
		"SELECT jobs_pruned >= 1 FROM queue.workers WHERE database = 'appdb'"),
	't',
	'the board counts the pruned job');
is( $node->safe_psql(
		'postgres', "SELECT count(*), sum(errors) FROM queue.workers"),
	'2|0',
	'no worker met an error');

# --- 6. shutdown ------------------------------------------------------------------

ok($node->stop('fast'), 'a fast shutdown stops the server');
my $log = slurp_file($node->logfile);
like($log, qr/database system is shut down/, 'which shuts down cleanly');
# Exit code 1 is how a background worker ends on SIGTERM; anything else
# would be a crash.
unlike($log, qr/terminated by signal|exited with exit code (?!1\b)|PANIC|TRAP:/,
	'no process crashed or exited abnormally');

done_testing();
