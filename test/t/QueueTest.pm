# Copyright: the queue extension's authors.
#
# QueueTest: what the TAP tests in test/t share.  The tests load it with
#
#     use FindBin;
#     use lib $FindBin::RealBin;
#     use QueueTest;
#
# (it is not a test: prove runs test/t/*.pl only).  What is here is what
# several tests do the same way; what a test checks stays in the test.
#
# - Servers: a cluster that preloads the library, a streaming standby, the
#   background worker started and stopped, the queue's lines in a log.
# - Crashes: kill -9 of a postmaster leaves it to be reaped, and its
#   backends live on until they notice it is gone, holding the old shared
#   memory: a new postmaster on the same data directory refuses to start
#   until all of them are gone (kill9, wait_for_orphans, crash_restart).
# - Load: psql sessions in the background, each running one CALL of a
#   PL/pgSQL procedure that sends a NOTICE after each COMMIT (the client's
#   acknowledgement), and the reading of what they said; the publisher
#   procedure of the outbox tests.
# - Audits: acknowledged ids checked against the database, and the per-key
#   order of the jobs the relay made.
package QueueTest;

use strict;
use warnings;

use Carp;
use Cwd qw(abs_path);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

# --- servers --------------------------------------------------------------

# A new cluster named $name that preloads the library (CREATE EXTENSION queue
# requires it), with $conf (more postgresql.conf lines, or undef) appended,
# started.  %init goes to init(): allows_streaming => 1 for a primary.
sub preloaded_node
{
	my ($name, $conf, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'queue'\n" . ($conf // ''));
	$node->start;
	return $node;
}

# A streaming standby of $primary (initialized with allows_streaming), named
# $name, made from a new backup and started.  It has the primary's settings
# as they were at the backup.
sub standby_of
{
	my ($primary, $name) = @_;
	$primary->backup('bkp');
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, 'bkp', has_streaming => 1);
	$standby->start;
	return $standby;
}

# Waits until the background worker of database $db (postgres by default)
# shows as idle in queue.workers: started, and through its first pass.
# Returns true once it does, false at the timeout.
sub worker_idle
{
	my ($node, $db) = @_;
	$db //= 'postgres';
	return $node->poll_query_until('postgres',
		"SELECT state FROM queue.workers WHERE database = '$db'", 'idle');
}

# Stops the node's background workers by emptying queue.databases (with
# ALTER SYSTEM: on a primary, that is not replicated to its standbys).
# Returns true once no queue worker runs, false at the timeout.
sub stop_workers
{
	my ($node) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET queue.databases = ''; SELECT pg_reload_conf();");
	return $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'queue worker'");
}

# The queue's entries in the node's server log, apart from the logged
# statements: what a server that must stay quiet about the queue (a
# standby) must not have written.
sub queue_log_lines
{
	my ($node) = @_;
	my @entries;
	# A log entry starts with the timestamp of log_line_prefix; the lines
	# after it until the next one belong to it.
	for my $line (split /\n/, slurp_file($node->logfile))
	{
		if ($line =~ /^\d{4}-\d\d-\d\d / || !@entries) { push @entries, $line; }
		else { $entries[-1] .= "\n$line"; }
	}
	return grep { !/LOG:  statement: / && /queue/i } @entries;
}

# --- crashes --------------------------------------------------------------

# The pid of the node's running postmaster, from postmaster.pid.
sub postmaster_pid
{
	my ($node) = @_;
	my ($pid) = slurp_file($node->data_dir . '/postmaster.pid') =~ /^(\d+)/;
	return $pid;
}

# Kills the node's postmaster with SIGKILL; returns its pid, for
# wait_for_orphans.
sub kill9
{
	my ($node) = @_;
	my $pid = postmaster_pid($node);
	$node->kill9;
	return $pid;
}

# Waits for the killed postmaster to be gone, and for every process whose
# working directory is the data directory (its orphaned backends).
sub wait_for_orphans
{
	my ($node, $pm) = @_;
	my $dir = abs_path($node->data_dir);
	my $tries = 10 * $PostgreSQL::Test::Utils::timeout_default;
	while ($tries-- > 0)
	{
		my @left = grep {
			my $cwd = readlink("$_/cwd");
			defined $cwd && $cwd eq $dir
		} glob('/proc/[0-9]*');
		return if !@left && !kill(0, $pm);
		usleep(100_000);
	}
	diag 'processes of the killed postmaster are still running';
	return;
}

# Crashes the node and starts it again (crash recovery).  $how: 'immediate'
# (stop('immediate'): the postmaster ends every backend without a
# checkpoint) or 'kill9' (SIGKILL to the postmaster; the start waits for
# its orphaned backends to be gone first).  $meanwhile, when given, runs
# while the server is down, before that wait: there the test collects the
# sessions the crash cut off.
sub crash_restart
{
	my ($node, $how, $meanwhile) = @_;
	if ($how eq 'kill9')
	{
		my $pm = kill9($node);
		$meanwhile->() if $meanwhile;
		wait_for_orphans($node, $pm);
	}
	elsif ($how eq 'immediate')
	{
		$node->stop('immediate');
		$meanwhile->() if $meanwhile;
	}
	else
	{
		croak "crash_restart: unknown crash '$how'";
	}
	$node->start;
	return;
}

# --- load -----------------------------------------------------------------

# Starts psql in the background on the node's database postgres, running
# the one command $sql (typically a CALL of a procedure that loops, COMMITs
# and sends NOTICEs); returns the session: its name $name, and its output
# collected in out and err as it runs.  The session is killed after
# $timeout seconds (3 x the default timeout unless given).
sub start_psql
{
	my ($node, $name, $sql, $timeout) = @_;
	$timeout //= 3 * $PostgreSQL::Test::Utils::timeout_default;
	my $s = { name => $name, out => '', err => '' };
	$s->{h} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', \undef, '>', \$s->{out}, '2>', \$s->{err},
		IPC::Run::timeout($timeout));
	return $s;
}

# Waits for sessions of start_psql to end: by themselves, or because a
# crash or a failover cut their connection; then reads what each said on
# stderr, line by line, into the test's variables (%r):
#
#   acks => { word => \%ids, ... }: a NOTICE "word {1,2,3}" (or "word 1")
#       is the acknowledgement of a commit: each id counts one more in %ids;
#   stale => \$n: a NOTICE "stale lease: ..." (QU001 caught by the session)
#       counts one more;
#   duplicates => \$n: a line about a "duplicate completion" (a second
#       completion refused by a unique key) counts one more, and is
#       unexpected;
#   errors => qr/.../: any other line matching it is unexpected; undef when
#       errors are to be expected (the crash's own);
#   unexpected => \@lines: gets "session: line" for each unexpected line,
#       and "session: why" for a session killed at its timeout.
#
# Returns how many sessions exited with status 0.
sub finish_psql
{
	my ($sessions, %r) = @_;
	my $acks = $r{acks} // {};
	my $clean = 0;
	for my $s (@$sessions)
	{
		my $ok = eval { $s->{h}->finish; 1 };
		if (!$ok)
		{
			push @{ $r{unexpected} }, "$s->{name}: $@";
			$s->{h}->kill_kill;
		}
		$clean++ if $ok && $s->{h}->result == 0;
		LINE: for my $line (split /\n/, $s->{err})
		{
			for my $word (keys %$acks)
			{
				if ($line =~ /NOTICE:  \Q$word\E (?:\{([^}]+)\}|(\d+))/)
				{
					$acks->{$word}{$_}++ for split /,/, $1 // $2;
					next LINE;
				}
			}
			if ($line =~ /NOTICE:  stale lease/)
			{
				${ $r{stale} }++ if $r{stale};
			}
			elsif ($line =~ /duplicate completion/)
			{
				${ $r{duplicates} }++ if $r{duplicates};
				push @{ $r{unexpected} }, "$s->{name}: $line";
			}
			elsif (defined $r{errors} && $line =~ $r{errors})
			{
				push @{ $r{unexpected} }, "$s->{name}: $line";
			}
		}
	}
	return $clean;
}

# The SQL (a string to put in a statement) that creates what the outbox
# tests publish with: keyseq, a sequence number per key k1 .. k$nkeys;
# published, the committed events with their key's sequence number; and
# the procedure pub(pname, target, deadline).  pub publishes events of
# $topic, 1 to 5 per transaction with publish_many, each on a random key,
# until "published" holds target events of pname's (so that, started
# again after a crash, it goes on where the crash left it).  For each
# event it draws the key's next sequence number after the ids, so under
# the key lock: the order in which the key's publishers got through
# publish, committed with the event.  Then it sleeps up to 20 ms (the
# "business work", which paces the run) and commits, and sends NOTICE
# "$ack {ids}".  With $rollback (a fraction), that share of the
# transactions rolls back instead, with NOTICE "rolled back {ids}".
sub publisher_sql
{
	my (%o) = @_;
	my ($topic, $nkeys, $ack) = @o{qw(topic nkeys ack)};
	my $commit = "COMMIT;
			RAISE NOTICE '$ack %', ids;
			made := made + n;";
	my $settle = $o{rollback}
	  ? "IF random() < $o{rollback} THEN
			ROLLBACK;
			RAISE NOTICE 'rolled back %', ids;
		ELSE
			$commit
		END IF;"
	  : $commit;
	return qq{
CREATE TABLE keyseq (key text PRIMARY KEY, seq int NOT NULL);
INSERT INTO keyseq SELECT 'k' || g, 0 FROM generate_series(1, $nkeys) g;
CREATE TABLE published (event_id bigint PRIMARY KEY, key text NOT NULL,
						seq int NOT NULL, pub text NOT NULL, UNIQUE (key, seq));

CREATE PROCEDURE pub(pname text, target int, deadline timestamptz)
LANGUAGE plpgsql AS \$\$
DECLARE
	made int;
	n int;
	keys text[];
	ids bigint[];
	s int;
BEGIN
	SELECT count(*) INTO made FROM published WHERE pub = pname;
	COMMIT;
	WHILE made < target LOOP
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'publisher % gave up at the deadline', pname;
		END IF;
		n := least(1 + floor(random() * 5)::int, target - made);
		SELECT array_agg('k' || (1 + floor(random() * $nkeys))::int) INTO keys
		  FROM generate_series(1, n);
		SELECT array_agg(p.id ORDER BY p.ord) INTO ids
		  FROM queue.publish_many('$topic',
				(SELECT jsonb_agg(jsonb_build_object(
							'key', k.key,
							'payload', jsonb_build_object('pub', pname, 'key', k.key))
						  ORDER BY k.ord)
				   FROM unnest(keys) WITH ORDINALITY AS k(key, ord)))
			   WITH ORDINALITY AS p(id, ord);
		FOR i IN 1 .. n LOOP
			UPDATE keyseq SET seq = seq + 1 WHERE key = keys[i] RETURNING seq INTO s;
			INSERT INTO published VALUES (ids[i], keys[i], s, pname);
		END LOOP;
		PERFORM pg_sleep(random() * 0.02);	-- the "business work"; paces the run
		$settle
	END LOOP;
END
\$\$;
};
}

# --- audits ---------------------------------------------------------------

# An SQL array literal of type $type[] holding the keys of %$ids (or the
# elements of @$ids): the ids a test's sessions acknowledged, to unnest.
sub sql_array
{
	my ($ids, $type) = @_;
	my @v = ref $ids eq 'HASH' ? sort keys %$ids : @$ids;
	return "'{" . join(',', map { qq{"$_"} } @v) . "}'::${type}[]";
}

# Checks that everything acknowledged so far is still in the database, as
# after a crash every acknowledged commit must be: the keys of %$acked are
# ids, a(id) in $missing, an SQL condition true of an id whose commit is
# lost.  Passes "$what: $seen" if there is anything acknowledged at all,
# and "$what: all N acknowledged $noun survived" if none is missing.
sub check_acked_durable
{
	my ($node, $what, $acked, $missing, $seen, $noun) = @_;
	my $n = scalar(keys %$acked);
	my $lost = $node->safe_psql('postgres',
		'SELECT count(*) FROM unnest(' . sql_array($acked, 'bigint') . ") a(id)
		  WHERE $missing");
	ok($n > 0, "$what: $seen");
	is($lost, '0', "$what: all $n acknowledged $noun survived");
	return;
}

# check_acked_durable for acknowledged completions (the keys of %$acked
# are job ids): each job must be archived as completed, with the row its
# completing transaction wrote into $table (a column job_id).
sub check_acked_completions
{
	my ($node, $what, $acked, $table) = @_;
	check_acked_durable(
		$node, $what, $acked, qq{
NOT EXISTS (SELECT 1 FROM $table t WHERE t.job_id = a.id)
OR NOT EXISTS (SELECT 1 FROM queue.job_archive j
				WHERE j.id = a.id AND j.state = 'completed')},
		'workers acknowledged completions', 'completions');
	return;
}

# How many jobs of $queue, made by the relay from the events a test
# recorded in its table published (event_id, key, seq: the key's sequence
# number, drawn under the key lock, as publisher_sql does), are out of
# their key's publishing order: whose rank by job id (creation order) among
# the key's jobs is not the event's seq.  0 when the relay kept each key's
# order.
sub jobs_out_of_key_order
{
	my ($node, $queue) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM (
	SELECT p.seq, row_number() OVER (PARTITION BY p.key ORDER BY j.id) AS pos
	  FROM queue.jobs j JOIN published p ON p.event_id = (j.headers->'event'->>'id')::bigint
	 WHERE j.queue = '$queue') x
 WHERE seq <> pos});
}

1;
