# Claim storm, then crash cycles: every job completed exactly once by pgbench
# clients that claim, complete, fail and abandon jobs at random, with and
# without crashes of the server.
#
# The clients run one pgbench script (written below), which draws a
# behaviour per transaction:
#
#   split    60%  claim 1..10 jobs (commit: the leases are held), then in a
#                 second transaction complete them with their tokens
#                 (complete_many) and write (job id, attempt) into audit;
#   one      20%  BEGIN; claim 1..10; audit; complete_many; COMMIT;
#   fail     10%  claim 1..10, then fail them in a second transaction; the
#                 queue's retry policy brings them back 0.2 s later;
#   abandon   5%  claim 1..3 under a 1 s lease and never settle them: the
#                 lease runs out and a later claim takes the job again (a
#                 claim re-takes expired leases; expire_leases only buries
#                 jobs on their last attempt, which max_attempts 100 makes
#                 unreachable here);
#   late      5%  claim 1..3 under a 20 ms lease, sleep 40 ms, then complete
#                 as in split: past its lease a token is still current
#                 unless someone re-claimed the job, in which case the
#                 completion is refused with QU001.
#
# Every claim writes (job id, attempt) into execution in the claim's own
# transaction, so execution holds exactly the claims that committed.  audit
# is written in the same transaction as the completion, so it holds exactly
# the completions that committed; its UNIQUE (job_id, attempt) turns a
# second completion of an attempt into an error that ends the pgbench
# client (pgbench 15 aborts a client on any error but a serialization
# failure or deadlock, and the test checks pgbench's exit and output).  A
# stale token (QU001) is the one error a client expects: storm_settle
# catches it in a subtransaction, so the audit row goes with the refused
# completion, settles the rest of the batch one job at a time, and logs the
# stale job in stale.
#
# Phase 1 (the storm): 100,000 jobs enqueued up front, 16 clients, pgbench
# runs one after the other until the queue has no live job.  Phase 2 (crash
# cycles, synchronous_commit = on): 20,000 jobs in a second queue (topped up
# by 10,000 whenever fewer than a third are left, so that every crash
# strikes a running storm), pgbench in the background, and the server
# crashed at a random moment of each cycle, three times each way: kill -9
# of the postmaster (the test ends pgbench, waits for the orphaned
# backends, restarts: crash recovery), stop('immediate') and start, and
# kill -9 of one pgbench client's backend (the postmaster then ends every
# backend and reinitializes by itself: restart_after_crash = on).  A crash
# may end a client only through its lost connection.  After each restart
# the jobs leased at that moment are recorded and new workers start; after
# the last cycle the queue is drained.
#
# Asserted for each phase: no job left in queue.job; every job archived as
# completed, once; audit holds exactly one row per job, for the attempt the
# archive records; execution holds exactly attempts 1..N of each job; each
# earlier attempt left one entry in the job's errors and is explained by it
# and by what the client did: failed on purpose ("storm failure"), or its
# lease expired and it was abandoned or late on purpose, in flight at a
# crash, or refused as stale; an attempt claimed and completed in one
# transaction never ran again; a refused token always belonged to a job
# claimed again since, and completions after the lease ran out (late) were
# accepted.  The re-executions that no client intended (split attempts that
# did not complete: duplicate executions) are counted and bounded by the
# split leases in flight at the crashes plus the stale refusals.
#
# STORM_JOBS, STORM_CRASH_JOBS, STORM_CLIENTS and STORM_SEED override the
# sizes and the random seed (printed, so a run can be replayed as far as
# timing allows).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use IPC::Run;
use List::Util qw(shuffle);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $storm_jobs = $ENV{STORM_JOBS}       || 100_000;
my $crash_jobs = $ENV{STORM_CRASH_JOBS} || 20_000;
my $clients    = $ENV{STORM_CLIENTS}    || 16;
my $seed       = $ENV{STORM_SEED}       || int(rand(2**31 - 1)) + 1;
my $per_kind   = 3;      # crash cycles of each kind
my $drain_limit = 180;   # seconds a drain may take before the test gives up
srand($seed);
note "seed $seed";

my $node = QueueTest::preloaded_node(
	'storm', qq{
synchronous_commit = on
restart_after_crash = on
max_connections = @{[$clients + 20]}
log_statement = none
});

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION queue;
-- max_attempts 100: no job dies of its failures and lost leases; a 3 s
-- lease is long enough for any split client not stalled, short enough that
-- the jobs leased at a crash come back soon.
SELECT queue.create_queue(q, max_attempts => 100, lease_timeout => '3 seconds',
						  retry_policy => '{"backoff": "fixed", "delay": 0.2}')
  FROM unnest(ARRAY['storm', 'crash']) q;

CREATE TABLE enqueued (job_id bigint PRIMARY KEY, queue text NOT NULL);
CREATE TABLE execution (job_id bigint, attempt int, how text NOT NULL,
						worker text NOT NULL, PRIMARY KEY (job_id, attempt));
CREATE TABLE audit (job_id bigint, attempt int, how text NOT NULL,
					UNIQUE (job_id, attempt));
CREATE TABLE stale (job_id bigint, attempt int, how text, detail text);
CREATE TABLE leased_at_crash (cycle int, kind text, job_id bigint, attempt int,
							  PRIMARY KEY (cycle, job_id));

-- Settles, in its own transaction, a batch claimed in an earlier one:
-- completes it and records the completions in audit, or fails it.  A stale
-- token refuses the whole batch (QU001 rolls back the subtransaction, audit
-- rows included); then each job is settled alone, and the stale ones are
-- logged.  Any other error (a unique violation in audit) propagates.
CREATE FUNCTION storm_settle(p_verb text, p_how text, p_ids bigint[],
							 p_toks uuid[], p_atts int[])
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	k int;
	settled int := 0;
BEGIN
	IF cardinality(p_ids) = 0 THEN
		RETURN 0;
	END IF;
	BEGIN
		IF p_verb = 'complete' THEN
			PERFORM queue.complete_many(p_ids, p_toks);
			INSERT INTO audit SELECT u.i, u.a, p_how FROM unnest(p_ids, p_atts) u(i, a);
		ELSE
			PERFORM queue.fail_many(p_ids, p_toks,
				array_fill('storm failure'::text, ARRAY[cardinality(p_ids)]));
		END IF;
		RETURN cardinality(p_ids);
	EXCEPTION WHEN SQLSTATE 'QU001' THEN
		NULL;
	END;
	FOR k IN 1 .. cardinality(p_ids) LOOP
		BEGIN
			IF p_verb = 'complete' THEN
				PERFORM queue.complete(p_ids[k], p_toks[k]);
				INSERT INTO audit VALUES (p_ids[k], p_atts[k], p_how);
			ELSE
				PERFORM queue.fail(p_ids[k], p_toks[k], 'storm failure');
			END IF;
			settled := settled + 1;
		EXCEPTION WHEN SQLSTATE 'QU001' THEN
			INSERT INTO stale VALUES (p_ids[k], p_atts[k], p_how, SQLERRM);
		END;
	END LOOP;
	RETURN settled;
END
$$;
});

# The pgbench script: one worker step, its behaviour drawn at random.
# :queue and :worker come from -D; with -M prepared the arrays taken by
# \gset travel as parameters (their text) and are cast back.  :got (jobs
# claimed) lets an idle client back off for 20 ms instead of spinning on an
# empty queue.
my $script = $node->basedir . '/storm.pgbench';
append_to_file($script, <<'EOS');
\set r random(1, 100)
\set n random(1, 10)
\set few random(1, 3)
\if :r <= 60
-- split: claim and commit; complete with the tokens in a second transaction
WITH c AS (SELECT * FROM queue.claim(:queue, :worker || :client_id, :n)),
	 x AS (INSERT INTO execution
		   SELECT job_id, attempt, 'split', :worker || :client_id FROM c)
SELECT count(*) AS got,
	   coalesce(array_agg(job_id), '{}') AS ids,
	   coalesce(array_agg(lease_token), '{}') AS toks,
	   coalesce(array_agg(attempt), '{}') AS atts
  FROM c \gset
SELECT storm_settle('complete', 'split', :ids::bigint[], :toks::uuid[], :atts::int[]);
\elif :r <= 80
-- one: claim, audit and complete in one transaction (no QU001 possible: the
-- rows are this transaction's since the claim; one would end the client)
BEGIN;
WITH c AS (SELECT * FROM queue.claim(:queue, :worker || :client_id, :n)),
	 x AS (INSERT INTO execution
		   SELECT job_id, attempt, 'one', :worker || :client_id FROM c)
SELECT count(*) AS got,
	   coalesce(array_agg(job_id), '{}') AS ids,
	   coalesce(array_agg(lease_token), '{}') AS toks,
	   coalesce(array_agg(attempt), '{}') AS atts
  FROM c \gset
INSERT INTO audit SELECT u.i, u.a, 'one' FROM unnest(:ids::bigint[], :atts::int[]) u(i, a);
SELECT queue.complete_many(:ids::bigint[], :toks::uuid[]);
COMMIT;
\elif :r <= 90
-- fail: claim, then fail in a second transaction (retried 0.2 s later)
WITH c AS (SELECT * FROM queue.claim(:queue, :worker || :client_id, :n)),
	 x AS (INSERT INTO execution
		   SELECT job_id, attempt, 'fail', :worker || :client_id FROM c)
SELECT count(*) AS got,
	   coalesce(array_agg(job_id), '{}') AS ids,
	   coalesce(array_agg(lease_token), '{}') AS toks,
	   coalesce(array_agg(attempt), '{}') AS atts
  FROM c \gset
SELECT storm_settle('fail', 'fail', :ids::bigint[], :toks::uuid[], :atts::int[]);
\elif :r <= 95
-- abandon: a 1 s lease, never settled
WITH c AS (SELECT * FROM queue.claim(:queue, :worker || :client_id, :few,
									 lease => '1 second')),
	 x AS (INSERT INTO execution
		   SELECT job_id, attempt, 'abandon', :worker || :client_id FROM c)
SELECT count(*) AS got FROM c \gset
\else
-- late: a 20 ms lease, completed after 40 ms (QU001 if re-claimed since)
WITH c AS (SELECT * FROM queue.claim(:queue, :worker || :client_id, :few,
									 lease => '20 milliseconds')),
	 x AS (INSERT INTO execution
		   SELECT job_id, attempt, 'late', :worker || :client_id FROM c)
SELECT count(*) AS got,
	   coalesce(array_agg(job_id), '{}') AS ids,
	   coalesce(array_agg(lease_token), '{}') AS toks,
	   coalesce(array_agg(attempt), '{}') AS atts
  FROM c \gset
\if :got > 0
\sleep 40 ms
\endif
SELECT storm_settle('complete', 'late', :ids::bigint[], :toks::uuid[], :atts::int[]);
\endif
\if :got = 0
\sleep 20 ms
\endif
EOS

# Enqueues n more jobs into a queue, in batches within
# queue.max_batch_size, and records their ids; returns the first id.
sub enqueue_jobs
{
	my ($queue, $n) = @_;
	my $batch = 10_000;
	my $sql = '';
	for (my $done = 0; $done < $n; $done += $batch)
	{
		my $k = $n - $done < $batch ? $n - $done : $batch;
		$sql .= qq{
INSERT INTO enqueued
SELECT id, '$queue' FROM queue.enqueue_many('$queue',
	(SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('n', g)))
	   FROM generate_series($done + 1, $done + $k) g)) id;};
	}
	my ($first, $count) = split /\|/, $node->safe_psql(
		'postgres', qq{
CREATE TEMP TABLE prior AS SELECT coalesce(max(job_id), 0) AS id FROM enqueued;
$sql
SELECT min(job_id), count(*) FROM enqueued WHERE job_id > (SELECT id FROM prior);});
	is($count, $n, "$queue: $n jobs enqueued");
	return $first;
}

my $runs = 0;          # pgbench runs
my $txns = 0;          # transactions pgbench processed, all runs
my @unexpected;        # server errors seen by pgbench

# The pgbench command for a run on a queue.
sub pgbench_cmd
{
	my ($queue, $secs) = @_;
	$runs++;
	return [
		'pgbench', '-n', '-M', 'prepared',
		'-f', $script, '-c', $clients, '-j', 2, '-T', $secs,
		'--random-seed', $seed + $runs,
		'-D', "queue=$queue", '-D', "worker=$queue-r$runs-c",
		'-h', $node->host, '-p', $node->port,
		# named, to find its backends in pg_stat_activity
		'dbname=postgres application_name=storm'
	];
}

# How pgbench 15 reports a client it ended, and the reasons a crash gives.
my $aborted =
  qr/client \d+ (?:script \d+ )?aborted in command \d+(?: \(SQL\) of script \d+;| query \d+:) (.*)/;
my $connection_lost = join '|', map { quotemeta } (
	'perhaps the backend died while processing',
	'SQL command send failed',
	'server closed the connection unexpectedly',
	'FATAL:  terminating connection',
	'no connection to the server',
	'could not send data', 'could not receive data');
$connection_lost = qr/^(?:$connection_lost)/;

# Reads the output of a finished pgbench run: adds up its transactions.
# Every server ERROR it reports is unexpected (QU001 is caught in the
# script).  A crash ends clients: the reasons pgbench gives for that are
# the lost connection, nothing else.  Returns the clients that ended so.
sub read_pgbench
{
	my ($what, $out, $err) = @_;
	my ($n) = $out =~ /number of transactions actually processed: (\d+)/;
	$txns += $n // 0;
	my $lost = 0;
	for my $line (split /\n/, $err)
	{
		if ($line =~ /ERROR:  /)
		{
			push @unexpected, "$what: $line";
		}
		elsif ($line =~ $aborted)
		{
			if ($1 =~ $connection_lost)
			{
				$lost++;
			}
			else
			{
				push @unexpected, "$what: $line";
			}
		}
	}
	return $lost;
}

sub live_jobs
{
	my ($queue) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM queue.job j JOIN enqueued e ON e.job_id = j.id
 WHERE e.queue = '$queue'});
}

# Runs pgbench in the foreground, run after run, until the queue has no live
# job; every run must end cleanly.  A run lasts about as long as the jobs
# left should take at the rate of the previous run (pgbench -T takes whole
# seconds), so that little time goes to starting pgbench or to clients
# idling on an empty queue.  Returns the seconds it took and the runs.
sub drain
{
	my ($queue) = @_;
	my $t0    = time;
	my $clean = 1;
	my $nruns = 0;
	my $rate;    # jobs finished per second in the last run
	my $live = live_jobs($queue);
	while ($live > 0)
	{
		if (time - $t0 > $drain_limit)
		{
			$clean = 0;
			diag "$queue: $live jobs still live after $drain_limit s";
			last;
		}
		my $secs = defined $rate ? int($live / $rate) : 5;
		$secs = $secs < 1 ? 1 : $secs > 10 ? 10 : $secs;
		my ($out, $err) = ('', '');
		my $t1 = time;
		my $ok = IPC::Run::run(pgbench_cmd($queue, $secs),
			'<', \undef, '>', \$out, '2>', \$err);
		$nruns++;
		# pgbench 15 counts as failed only serialization failures and
		# deadlocks (none expected); any other error aborts the client and
		# makes the exit status non-zero
		if (!$ok || $out !~ /number of failed transactions: 0 /)
		{
			$clean = 0;
			diag "$queue: pgbench failed:\n$err";
		}
		read_pgbench("$queue drain", $out, $err);
		my $left = live_jobs($queue);
		$rate = ($live - $left) / (time - $t1) if $live > $left;
		$live = $left;
	}
	ok($clean, "$queue: every pgbench run of the drain ended cleanly ($nruns runs)");
	return (time - $t0, $nruns);
}

# The invariants of a drained queue; returns its figures.  A queue's jobs
# were enqueued by this test alone, one phase after the other, so their ids
# are one range (checked), which the queries below read by index.
sub check_queue
{
	my ($queue) = @_;
	my ($lo, $hi, $n) = split /\|/, $node->safe_psql('postgres',
		"SELECT min(job_id), max(job_id), count(*) FROM enqueued WHERE queue = '$queue'");
	my $with = qq{
WITH a AS MATERIALIZED (SELECT id, state, attempts, errors FROM queue.job_archive
						 WHERE id BETWEEN $lo AND $hi),
x AS MATERIALIZED (SELECT * FROM execution WHERE job_id BETWEEN $lo AND $hi)};
	my @r = split /\n/, $node->safe_psql(
		'postgres', qq{
SET work_mem = '64MB';
$with,
u AS MATERIALIZED (SELECT * FROM audit WHERE job_id BETWEEN $lo AND $hi)
SELECT (SELECT count(*) FROM enqueued WHERE job_id BETWEEN $lo AND $hi),
	   (SELECT count(*) FROM queue.job j WHERE id BETWEEN $lo AND $hi),
	   (SELECT count(*) FROM a WHERE state = 'completed'),
	   (SELECT count(*) FROM a WHERE state <> 'completed'),
	   (SELECT count(*) || '/' || count(DISTINCT job_id) FROM u),
	   (SELECT count(*) FROM u JOIN a ON a.id = u.job_id AND a.attempts = u.attempt),
	   (SELECT count(*) FROM a JOIN (SELECT job_id, count(*) AS n, min(attempt) AS lo,
											max(attempt) AS hi
									   FROM x GROUP BY 1) xs ON xs.job_id = a.id
		 WHERE xs.n = a.attempts AND xs.lo = 1 AND xs.hi = a.attempts),
	   (SELECT count(*) FROM a WHERE jsonb_array_length(errors) = attempts - 1),
	   (SELECT count(*) FROM a JOIN x ON x.job_id = a.id AND x.attempt = a.attempts
		 WHERE x.how IN ('split', 'one', 'late')),
	   (SELECT count(*) FROM a JOIN x ON x.job_id = a.id AND x.attempt < a.attempts
		 WHERE x.how = 'one'),
	   (SELECT count(*) FROM stale s JOIN a ON a.id = s.job_id
		 WHERE a.attempts <= s.attempt),
	   (SELECT count(*) FROM u WHERE how = 'late');

-- each earlier attempt, explained by its entry in the job's errors and by
-- what its client did
$with
SELECT count(*),
	   array_to_string((array_agg(format('%s/%s %s %s', x.job_id, x.attempt, x.how,
										 h.er->>'error') ORDER BY x.job_id))[1:20], '; ')
  FROM a JOIN x ON x.job_id = a.id AND x.attempt < a.attempts
  LEFT JOIN LATERAL (SELECT er FROM jsonb_array_elements(a.errors) er
					  WHERE (er->>'attempt')::int = x.attempt) h ON true
 WHERE NOT coalesce(CASE h.er->>'error'
		   WHEN 'storm failure' THEN x.how = 'fail'
		   WHEN 'lease expired' THEN
				x.how IN ('abandon', 'late')
			 OR EXISTS (SELECT 1 FROM leased_at_crash l
						 WHERE l.job_id = x.job_id AND l.attempt = x.attempt)
			 OR EXISTS (SELECT 1 FROM stale s
						 WHERE s.job_id = x.job_id AND s.attempt = x.attempt)
		   END, false);

$with
SELECT (SELECT count(*) FROM x),
	   (SELECT string_agg(how || ' ' || n, ', ' ORDER BY how)
		  FROM (SELECT how, count(*) n FROM x GROUP BY how) s),
	   (SELECT count(*) FROM a WHERE attempts > 1),
	   (SELECT max(attempts) FROM a),
	   (SELECT count(*) FROM a JOIN x ON x.job_id = a.id AND x.attempt < a.attempts
		 WHERE x.how = 'split'),
	   (SELECT count(*) FROM stale WHERE job_id BETWEEN $lo AND $hi),
	   (SELECT count(*) FROM leased_at_crash WHERE job_id BETWEEN $lo AND $hi),
	   (SELECT count(*) FROM leased_at_crash l JOIN x USING (job_id, attempt)
		 WHERE x.how = 'split');});
	my @c = split /\|/, $r[0];
	is($c[0], $n, "$queue: its job ids are one range");
	is($c[1], '0', "$queue: no job is left in queue.job");
	is($c[2], $n,
		"$queue: all $n jobs are archived as completed (the id is the archive's key: once)");
	is($c[3], '0', "$queue: none died or was cancelled");
	is($c[4], "$n/$n", "$queue: audit has exactly one completion per job");
	is($c[5], $n, "$queue: each at the attempt the archive records");
	is($c[6], $n,
		"$queue: the committed claims of each job are its attempts 1..attempts, no more");
	is($c[7], $n, "$queue: every earlier attempt left one entry in the job's errors");
	is($c[8], $n, "$queue: every final attempt is a completing one");
	is($c[9], '0',
		"$queue: no attempt claimed and completed in one transaction ran again");

	# fencing: a token is refused once the job was claimed again, and only then
	is($c[10], '0', "$queue: every stale token refused belonged to a re-claimed job");
	cmp_ok($c[11], '>', 0,
		"$queue: completions after the lease ran out were accepted (no re-claim yet)");

	my ($nun, $which) = split /\|/, $r[1], 2;
	is($nun, '0', "$queue: every re-execution is explained")
	  or diag "unexplained attempts (the first 20): $which";

	my %f = (jobs => $n, late_done => $c[11]);
	@f{qw(claims bytype rerun maxatt unintended stale leased leased_split)} =
	  split /\|/, $r[2];
	return \%f;
}

# --- phase 1: the storm -------------------------------------------------------

enqueue_jobs('storm', $storm_jobs);
my $txns0      = $txns;
my ($storm_secs, $storm_runs) = drain('storm');
my $storm_txns = $txns - $txns0;
my $storm      = check_queue('storm');
diag sprintf(
	"storm: %d jobs, %d clients, %d pgbench transactions in %.1f s (%d runs); "
	  . "claims (jobs claimed) %d (%s); jobs run more than once %d (max attempts %d); "
	  . "completed after their lease ran out %d; stale tokens refused %d; "
	  . "split attempts that did not complete %d",
	$storm->{jobs}, $clients, $storm_txns, $storm_secs, $storm_runs,
	$storm->{claims}, $storm->{bytype}, $storm->{rerun}, $storm->{maxatt},
	$storm->{late_done}, $storm->{stale}, $storm->{unintended});

# --- phase 2: crash cycles ----------------------------------------------------

# (so that the first crash recovery does not replay the whole storm)
$node->safe_psql('postgres', 'CHECKPOINT');
my $first = enqueue_jobs('crash', $crash_jobs);
my $done_sql = "SELECT count(*) FROM audit WHERE job_id >= $first";
my %cycles;    # kind => cycles
my @kinds = shuffle(('kill9', 'immediate', 'backend') x $per_kind);
my $t_crash = time;
$txns0 = $txns;

for my $cycle (1 .. @kinds)
{
	my $kind = $kinds[ $cycle - 1 ];

	# Enough work for the crash to strike in the middle of the storm, however
	# fast the machine is today.
	enqueue_jobs('crash', int($crash_jobs / 2))
	  if live_jobs('crash') < $crash_jobs / 3;

	my $base = $node->safe_psql('postgres', $done_sql);
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(pgbench_cmd('crash', 300),
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(120));

	# a random moment, once the storm is seen completing jobs (the workers
	# are connected and busy)
	ok( $node->poll_query_until(
			'postgres', "SELECT ($done_sql) >= $base + 100"),
		"cycle $cycle: the storm is running");
	sleep(rand(0.5));

	if ($kind eq 'kill9')
	{
		# The orphaned backends go on serving their clients until they next
		# wait for something, which pgbench keeps them from: the clients go
		# down with the server.
		QueueTest::crash_restart($node, 'kill9', sub { $h->kill_kill });
	}
	elsif ($kind eq 'immediate')
	{
		QueueTest::crash_restart($node, 'immediate');
	}
	else
	{
		my $pm = QueueTest::postmaster_pid($node);
		my $pid = $node->safe_psql(
			'postgres', q{
SELECT pid FROM pg_stat_activity WHERE application_name = 'storm'
 ORDER BY random() LIMIT 1});
		my $offset = -s $node->logfile;
		if (ok($pid && kill('KILL', $pid), "cycle $cycle: kill -9 of backend $pid"))
		{
			ok( eval {
					$node->wait_for_log(
						qr/server\ process\ \(PID\ $pid\)\ was\ terminated\ by\ signal\ 9
						   .*all\ server\ processes\ terminated;\ reinitializing
						   .*database\ system\ is\ ready\ to\ accept\ connections/sx,
						$offset);
				},
				"cycle $cycle: the postmaster reinitialized");
			is(QueueTest::postmaster_pid($node), $pm,
				"cycle $cycle: by itself (same postmaster)");
		}
		else
		{
			QueueTest::crash_restart($node, 'immediate');
		}
	}
	if ($kind ne 'kill9' && !eval { $h->finish; 1 })
	{
		diag "cycle $cycle: pgbench did not end: $@";
		$h->kill_kill;
	}
	my $lost = read_pgbench("cycle $cycle ($kind)", $out, $err);
	# (after kill -9 of the postmaster the test ends pgbench itself)
	is($lost, $clients, "cycle $cycle: the crash ended every client")
	  or diag $err
	  unless $kind eq 'kill9';
	$cycles{$kind}++;

	my ($ndone, $nleased, $nlive) = split /\|/, $node->safe_psql(
		'postgres', qq{
INSERT INTO leased_at_crash
SELECT $cycle, '$kind', j.id, j.attempts
  FROM queue.job j JOIN enqueued e ON e.job_id = j.id
 WHERE e.queue = 'crash' AND j.state = 'running';
SELECT ($done_sql), (SELECT count(*) FROM leased_at_crash WHERE cycle = $cycle),
	   (SELECT count(*) FROM queue.job j JOIN enqueued e ON e.job_id = j.id
		 WHERE e.queue = 'crash')});
	note "cycle $cycle ($kind): "
	  . ($ndone - $base)
	  . " jobs completed in the cycle, $nleased leased at the crash, $nlive live";
	cmp_ok($nlive, '>', 0, "cycle $cycle ($kind) struck in the middle of the run");
}

my ($drain_secs) = drain('crash');
my $crash_secs = time - $t_crash;
my $crash_txns = $txns - $txns0;
my $crash = check_queue('crash');
is(join("\n", @unexpected), '',
	'pgbench met no server error in any run, and lost clients only to crashes');
cmp_ok($crash->{leased}, '>', 0, 'jobs were leased when the crashes struck');
cmp_ok($crash->{unintended}, '<=', $crash->{leased_split} + $crash->{stale},
	're-executions of split attempts are bounded by the leases in flight and the stale tokens');

diag sprintf(
	"crash cycles: %d jobs, %d clients, %d cycles (%s), %.1f s (final drain %.1f s); "
	  . "pgbench transactions %d (not counting the runs killed with the postmaster); "
	  . "claims (jobs claimed) %d (%s); jobs run more than once %d (max attempts %d); "
	  . "leased at the crashes %d (split %d); stale tokens refused %d; "
	  . "split attempts that did not complete (duplicate executions) %d",
	$crash->{jobs}, $clients, scalar(@kinds),
	join(', ', map { "$_ $cycles{$_}" } sort keys %cycles),
	$crash_secs, $drain_secs, $crash_txns,
	$crash->{claims}, $crash->{bytype}, $crash->{rerun}, $crash->{maxatt},
	$crash->{leased}, $crash->{leased_split}, $crash->{stale},
	$crash->{unintended});

$node->stop;
done_testing();
