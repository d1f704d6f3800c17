# Upgrades from 0.1.0 and from 0.2.0: ALTER EXTENSION queue UPDATE on a
# database in use keeps every queue, job, lease, event, saga and grant
# working, and leaves exactly what a fresh install of the new version has.
#
# Database db_upgraded: CREATE EXTENSION queue VERSION '0.1.0' (the frozen
# install script of the release, src/releases), filled with what a live
# installation has: a plain and an ordered queue; jobs in every state
# (ready, scheduled, running under a lease, blocked behind its group's
# head, completed, dead, cancelled); roles given each access level by
# grant_access; a topic with a queue and a channel subscription, one event
# relayed and one pending; a saga type with sagas completed, compensated and
# running.  A session connects and looks a queue up before the update, and
# stays connected.  Then ALTER EXTENSION queue UPDATE must walk to the
# default version, 0.3.0, through 0.2.0, and everything must go on: the
# long-lived session looks the queue up again (and caches it, now that the
# queue_changed trigger exists) and sees a pause made after that by another
# session; the producer role may call enqueue_payloads (granted by the
# 0.2.0--0.3.0 script, since it had the producer level); the consumer role
# may call complete_and_claim (granted by the 0.1.0--0.2.0 script, since it
# had the consumer level) and claims the ready jobs with it; the
# running job completes with the token it got under 0.1.0; the group's
# head completes and its next job is promoted; the dead job is redriven and
# done; the relay relays the pending event; the running saga moves to its
# end; the finished ones are as they were.
#
# Database db_fresh: CREATE EXTENSION queue (0.3.0), the same grants.  The
# extension's objects of the two databases are then compared, fact by fact
# (every function: signature, body, library symbol, SECURITY DEFINER,
# settings, volatility, ACL; every table, view, sequence and index: columns
# with types, defaults and NOT NULL, constraints, triggers, index and view
# definitions, ACLs; types; the extension's members in pg_depend and every
# dependency of its objects; pg_init_privs, which pg_dump reads; comments;
# the extension's configuration tables).  They must be identical: the
# upgrade scripts must produce what the install script produces.  A third
# database, left at 0.1.0, shows that the comparison does tell versions
# apart.  Database db_upgraded_020: CREATE EXTENSION queue VERSION '0.2.0',
# the same grants, ALTER EXTENSION queue UPDATE (the 0.2.0--0.3.0 script
# alone); it must equal db_fresh too, the producer role may call
# enqueue_payloads, and what changed from its 0.2.0 state must be
# enqueue_payloads and nothing else.  Then db_upgraded is dumped and
# restored into a new database (where CREATE EXTENSION installs 0.3.0
# afresh): every role must keep exactly the privileges it had, and the
# jobs must all come back.
#
# Before the update, while the database still has the 0.1.0 objects but
# the server already runs the 0.3.0 library, a pause is checked too: that
# window exists in every upgrade (install the build, restart, then run ALTER
# EXTENSION UPDATE in each database).  The 0.1.0 schema has no
# queue_changed trigger, so there the library must not cache queues at all.
#
# Last, in db_reinstall, a session that has cached a queue sees DROP
# EXTENSION and CREATE EXTENSION (made by itself, and by another session):
# its cache must follow the new queue.queue, whose OID is a new one.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use QueueTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $t0 = time();

my $node = QueueTest::preloaded_node('upgrade');

is( $node->safe_psql(
		'postgres',
		"SELECT default_version FROM pg_available_extensions WHERE name = 'queue'"),
	'0.3.0',
	'the default version is 0.3.0');
is( $node->safe_psql(
		'postgres',
		"SELECT path FROM pg_extension_update_paths('queue')
		  WHERE source = '0.1.0' AND target = '0.3.0'"),
	'0.1.0--0.2.0--0.3.0',
	'there is an update path from 0.1.0 to 0.3.0, through 0.2.0');
is( $node->safe_psql(
		'postgres',
		"SELECT path FROM pg_extension_update_paths('queue')
		  WHERE source = '0.2.0' AND target = '0.3.0'"),
	'0.2.0--0.3.0',
	'there is an update path from 0.2.0 to 0.3.0');

$node->safe_psql(
	'postgres', q{
CREATE ROLE upg_producer LOGIN;
CREATE ROLE upg_consumer LOGIN;
CREATE ROLE upg_monitor LOGIN;
CREATE ROLE upg_admin LOGIN;
CREATE DATABASE db_upgraded;
CREATE DATABASE db_fresh;
CREATE DATABASE db_old;
CREATE DATABASE db_upgraded_020;
CREATE DATABASE db_restored;
});

# The same grants in every database, in the same order.
my $grants = q{
SELECT queue.grant_access('upg_producer', 'producer');
SELECT queue.grant_access('upg_consumer', 'consumer');
SELECT queue.grant_access('upg_monitor', 'monitor');
SELECT queue.grant_access('upg_admin', 'admin');
};

# --- db_upgraded at 0.1.0, filled ------------------------------------------

$node->safe_psql('db_upgraded', "CREATE EXTENSION queue VERSION '0.1.0';" . $grants);
is( $node->safe_psql(
		'db_upgraded',
		"SELECT extversion FROM pg_extension WHERE extname = 'queue'"),
	'0.1.0',
	'db_upgraded starts at 0.1.0');
is( $node->safe_psql(
		'db_upgraded',
		"SELECT count(*) FROM pg_proc
		  WHERE proname IN ('complete_and_claim', '_queue_changed', 'enqueue_payloads')"),
	'0',
	'0.1.0 has none of complete_and_claim, _queue_changed and enqueue_payloads');

# The fixture.  Every job's payload names it, so that the checks below can
# say which job is which; "fixture" keeps the ids and lease tokens.
$node->safe_psql(
	'db_upgraded', q{
CREATE TABLE fixture (name text PRIMARY KEY, job_id bigint, token uuid, saga_id bigint);
CREATE FUNCTION keep(name text, job_id bigint, token uuid DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$ INSERT INTO fixture (name, job_id, token) VALUES (name, job_id, token) $$;
-- claims the next job of q and completes it (or fails it for good)
CREATE FUNCTION work(q text, result jsonb, ok boolean DEFAULT true) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	c record;
BEGIN
	SELECT * INTO c FROM queue.claim(q, 'fixture');
	IF ok THEN
		PERFORM queue.complete(c.job_id, c.lease_token, result);
	ELSE
		PERFORM queue.fail(c.job_id, c.lease_token, 'refused', permanent => true);
	END IF;
	RETURN c.job_id;
END;
$$;

SELECT queue.create_queue('plain', max_attempts => 3, lease_timeout => '1 hour',
                          retry_policy => '{"backoff": "fixed", "delay": 3600}');
SELECT queue.create_queue('ordered', ordered => true, lease_timeout => '1 hour');
SELECT queue.create_queue('once', max_attempts => 1);

-- plain: one running (highest priority, claimed now), two ready, one
-- scheduled, one completed, one cancelled
SELECT keep('running', queue.enqueue('plain', '{"name": "running"}', priority => 100));
SELECT keep('completed', queue.enqueue('plain', '{"name": "completed"}', priority => 90));
SELECT keep('ready1', queue.enqueue('plain', '{"name": "ready1"}', priority => 10));
SELECT keep('ready2', queue.enqueue('plain', '{"name": "ready2"}', dedup_key => 'ready2'));
SELECT keep('scheduled', queue.enqueue('plain', '{"name": "scheduled"}', delay => '1 day'));
SELECT keep('cancelled', queue.enqueue('plain', '{"name": "cancelled"}', delay => '1 day'));
UPDATE fixture f SET token = c.lease_token
  FROM queue.claim('plain', 'old-worker') c WHERE f.name = 'running' AND f.job_id = c.job_id;
SELECT work('plain', '{"done": "under 0.1.0"}');
SELECT queue.cancel_job(job_id) FROM fixture WHERE name = 'cancelled';

-- ordered: group g's head running, the next job blocked behind it
SELECT keep('head', id) FROM queue.enqueue_many('ordered',
	'[{"payload": {"name": "head"}, "group_key": "g"}]') id;
SELECT keep('blocked', id) FROM queue.enqueue_many('ordered',
	'[{"payload": {"name": "blocked"}, "group_key": "g"}]') id;
UPDATE fixture f SET token = c.lease_token
  FROM queue.claim('ordered', 'old-worker') c WHERE f.name = 'head' AND f.job_id = c.job_id;

-- once: a dead job
SELECT keep('dead', queue.enqueue('once', '{"name": "dead"}'));
SELECT work('once', NULL, false);

-- the outbox: topic orders, to queue plain and to a channel; one event
-- relayed (its job is ready in plain), one pending
SELECT queue.create_topic('orders');
SELECT queue.subscribe('orders', queue => 'plain');
SELECT queue.subscribe('orders', channel => 'orders_ch');
SELECT queue.publish('orders', '{"name": "relayed"}', key => 'o-1');
SELECT queue.relay();
INSERT INTO fixture (name, job_id) SELECT 'relayed', id FROM queue.job WHERE payload ->> 'name' = 'relayed';
SELECT queue.publish('orders', '{"name": "pending"}', key => 'o-2');

-- sagas: trip = book (compensated by unbook), pay
SELECT queue.create_queue(q) FROM unnest(ARRAY['s_book', 's_unbook', 's_pay']) q;
SELECT queue.define_saga('trip', '[
	{"name": "book", "queue": "s_book", "compensation_queue": "s_unbook"},
	{"name": "pay", "queue": "s_pay"}]');
-- completed
INSERT INTO fixture (name, saga_id) VALUES ('saga_completed', queue.start_saga('trip', '{"n": 1}'));
SELECT work('s_book', '{"booked": 1}');
SELECT work('s_pay', '{"paid": 1}');
-- compensated: pay fails for good, the booking is undone
INSERT INTO fixture (name, saga_id) VALUES ('saga_compensated', queue.start_saga('trip', '{"n": 2}'));
SELECT work('s_book', '{"booked": 2}');
SELECT work('s_pay', NULL, false);
SELECT work('s_unbook', '{"unbooked": 2}');
-- running: its first step waits in s_book
INSERT INTO fixture (name, saga_id) VALUES ('saga_running', queue.start_saga('trip', '{"n": 3}'));
});

# What the update starts from: jobs by state, events, sagas.
my $states_sql = q{SELECT string_agg(state || '=' || n, ' ' ORDER BY state)
	  FROM (SELECT state, count(*) n FROM queue.jobs GROUP BY state) s};
my $before = $node->safe_psql('db_upgraded', $states_sql);
note "db_upgraded under 0.1.0, jobs by state: $before";
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(DISTINCT state, ',' ORDER BY state) FROM queue.jobs}),
	'blocked,cancelled,completed,dead,ready,running,scheduled',
	'under 0.1.0 there are jobs in every state');
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(payload ->> 'name' || ':' || state, ',' ORDER BY payload ->> 'name')
		    FROM queue.events}),
	'pending:pending,relayed:relayed',
	'one event relayed, one pending');
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(f.name || ':' || s.status || ':' || s.current_step, ',' ORDER BY f.name)
		    FROM fixture f JOIN queue.sagas s ON s.id = f.saga_id}),
	'saga_compensated:compensated:pay,saga_completed:completed:pay,saga_running:running:book',
	'sagas completed, compensated and running');

# The window between installing the 0.3.0 library and updating the
# database: a pause must stop the claims of a session that had looked the
# queue up before it.  (Three enqueues: a lookup keeps its row only if no
# invalidation, such as autovacuum's, came in while it ran.)
$node->safe_psql('db_upgraded', q{SELECT queue.create_queue('window')});
my $in_window = $node->safe_psql(
	'db_upgraded', q{
SELECT queue.enqueue('window', '{"name": "window1"}');
SELECT queue.enqueue('window', '{"name": "window2"}');
SELECT queue.enqueue('window', '{"name": "window3"}');
SELECT queue.pause_queue('window');
SELECT count(*) FROM queue.claim('window', 'w', 10);
});
($in_window) = (split /\n/, $in_window)[-1];
is($in_window, '0',
	'0.1.0 objects under the 0.3.0 library: a paused queue hands out nothing to a session that had looked it up');
$node->safe_psql('db_upgraded', q{SELECT queue.drop_queue('window', force => true)});

# A session that stays connected across the update, having looked queue
# plain up (an enqueue of a job that is ready at once).
my $longlived = $node->background_psql('db_upgraded');
$longlived->query_safe(
	q{SELECT keep('ready3', queue.enqueue('plain', '{"name": "ready3"}', priority => 5))});

# --- ALTER EXTENSION UPDATE ------------------------------------------------

my $t_update = time();
$node->safe_psql('db_upgraded', 'ALTER EXTENSION queue UPDATE');
note sprintf('ALTER EXTENSION queue UPDATE took %.2f s', time() - $t_update);
is( $node->safe_psql(
		'db_upgraded',
		"SELECT extversion FROM pg_extension WHERE extname = 'queue'"),
	'0.3.0',
	'ALTER EXTENSION queue UPDATE walks to 0.3.0');
is($node->safe_psql('db_upgraded', $states_sql),
	$before =~ s/ready=(\d+)/'ready=' . ($1 + 1)/er,
	'the update changed no job (one more ready: the long-lived session\'s)');

# The long-lived session looks plain up again (it caches it now), and sees
# a pause made after that by another session.
$longlived->query_safe(
	q{SELECT keep('ready4', queue.enqueue('plain', '{"name": "ready4"}', priority => 4))});
$node->safe_psql('db_upgraded', q{SELECT queue.pause_queue('plain')});
is($longlived->query_safe(q{SELECT count(*) FROM queue.claim('plain', 'longlived', 10)}),
	'0', 'a session connected across the update sees a later pause (it claims nothing)');
$node->safe_psql('db_upgraded', q{SELECT queue.resume_queue('plain')});

# The producer role got enqueue_payloads from the 0.2.0--0.3.0 script; the
# consumer and monitor did not.
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(r, ',' ORDER BY r)
		    FROM unnest(ARRAY['upg_producer', 'upg_consumer', 'upg_monitor', 'upg_admin', 'public']) r
		   WHERE has_function_privilege(r,
		           'queue.enqueue_payloads(text,jsonb[],jsonb,timestamptz,interval,integer,integer,jsonb,text)',
		           'EXECUTE')}
	),
	'upg_admin,upg_producer',
	'enqueue_payloads is executable by the producer and admin roles only');

# The producer, as itself, enqueues two jobs into plain with it.  Rolled
# back: the checks below know every job of plain.
is( $node->safe_psql(
		'db_upgraded', q{
BEGIN;
SET ROLE upg_producer;
SELECT count(*) FROM queue.enqueue_payloads('plain',
	ARRAY['{"name": "payload1"}'::jsonb, '{"name": "payload2"}'::jsonb]);
RESET ROLE;
SELECT string_agg(payload ->> 'name' || ':' || state, ',' ORDER BY payload ->> 'name')
  FROM queue.jobs WHERE payload ->> 'name' LIKE 'payload%';
ROLLBACK;
}),
	"2\npayload1:ready,payload2:ready",
	'the producer enqueues with enqueue_payloads after the update');

# The consumer role got complete_and_claim from the 0.1.0--0.2.0 script;
# the producer and monitor did not.
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(r, ',' ORDER BY r)
		    FROM unnest(ARRAY['upg_producer', 'upg_consumer', 'upg_monitor', 'upg_admin', 'public']) r
		   WHERE has_function_privilege(r,
		           'queue.complete_and_claim(bigint[],uuid[],text,text,integer,interval,jsonb[])', 'EXECUTE')}
	),
	'upg_admin,upg_consumer',
	'complete_and_claim is executable by the consumer and admin roles only');

# The consumer, as itself: claims the ready jobs of plain with
# complete_and_claim (empty arrays first), completes them with the next
# call, which finds nothing more.
my $consumer = $node->background_psql('db_upgraded');
$consumer->query_safe('SET ROLE upg_consumer');
my @claimed = map { [ split /\|/ ] } split /\n/,
  $consumer->query_safe(
	q{SELECT job_id, lease_token, payload ->> 'name'
	    FROM queue.complete_and_claim('{}', '{}', 'plain', 'consumer', 10) ORDER BY job_id});
is( join(',', sort map { $_->[2] } @claimed),
	'ready1,ready2,ready3,ready4,relayed',
	'the consumer claims the ready jobs with complete_and_claim (not the scheduled, running or cancelled ones)');
my $ids    = join ',', map { $_->[0] } @claimed;
my $tokens = join ',', map { $_->[1] } @claimed;
is( $consumer->query_safe(
		qq{SELECT count(*) FROM queue.complete_and_claim('{$ids}', '{$tokens}', 'plain', 'consumer', 10,
		                                                  results => array_fill('{"ok": true}'::jsonb, ARRAY[@{[scalar @claimed]}]))}
	),
	'0',
	'the next call completes them and finds nothing more to claim');
$consumer->quit;

# The job leased under 0.1.0 completes with its old token; the ordered
# group's head too, and its next job is promoted and done.
$node->safe_psql(
	'db_upgraded', q{
SELECT queue.complete(job_id, token, '{"done": "under 0.3.0"}') FROM fixture WHERE name IN ('running', 'head');
});
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(c.payload ->> 'name', ',')
		    FROM queue.complete_and_claim('{}', '{}', 'ordered', 'after') c}),
	'blocked',
	'the group\'s next job is promoted and claimed after its head completed with its 0.1.0 token');
$node->safe_psql(
	'db_upgraded', q{
SELECT queue.complete(j.id, j.lease_token) FROM queue.job j JOIN fixture f ON f.job_id = j.id
 WHERE f.name = 'blocked';
});

# Redrive the dead job, then work it.
$node->safe_psql('db_upgraded',
	q{SELECT queue.redrive(job_id) FROM fixture WHERE name = 'dead'; SELECT work('once', '{"redriven": true}')});

# The relay relays the pending event: a job in plain, a notification on
# the channel.
is($node->safe_psql('db_upgraded', 'SELECT queue.relay()'), '1', 'the relay relays the pending event');
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(payload ->> 'name' || ':' || state, ',' ORDER BY payload ->> 'name') FROM queue.events}),
	'pending:relayed,relayed:relayed',
	'both events are relayed');
is($node->safe_psql('db_upgraded', q{SELECT work('plain', NULL) IS NOT NULL}),
	't', 'the relayed event\'s job is claimed and completed');

# The running saga moves on: its first step is completed by
# complete_and_claim, which claims the second step's job in the same call.
my ($book_id, $book_token) = split /\|/,
  $node->safe_psql('db_upgraded',
	q{SELECT job_id, lease_token FROM queue.claim('s_book', 'after')});
my ($pay_id, $pay_token) = split /\|/,
  $node->safe_psql(
	'db_upgraded',
	qq{SELECT job_id, lease_token
	     FROM queue.complete_and_claim('{$book_id}', '{$book_token}', 's_pay', 'after',
	                                   results => '{"{\\"booked\\": 3}"}')});
ok($pay_id, 'completing the running saga\'s first step hands out its second');
$node->safe_psql('db_upgraded',
	qq{SELECT queue.complete($pay_id, '$pay_token', '{"paid": 3}')});
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(f.name || ':' || s.status || ':' || s.context::text, ' ' ORDER BY f.name)
		    FROM fixture f JOIN queue.sagas s ON s.id = f.saga_id}),
	'saga_compensated:compensated:{"book": {"booked": 2}} '
	  . 'saga_completed:completed:{"pay": {"paid": 1}, "book": {"booked": 1}} '
	  . 'saga_running:completed:{"pay": {"paid": 3}, "book": {"booked": 3}}',
	'the running saga completed; the finished sagas are as they were');

# Where every job of the fixture ended.
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT string_agg(f.name || ':' || j.state, ',' ORDER BY f.name)
		    FROM fixture f JOIN queue.jobs j ON j.id = f.job_id}),
	'blocked:completed,cancelled:cancelled,completed:completed,dead:completed,head:completed,'
	  . 'ready1:completed,ready2:completed,ready3:completed,ready4:completed,relayed:completed,'
	  . 'running:completed,scheduled:scheduled',
	'every job of the fixture ended as it should');
is( $node->safe_psql(
		'db_upgraded',
		q{SELECT count(*) FROM queue.job j WHERE NOT EXISTS (SELECT 1 FROM queue.queue q WHERE q.id = j.queue_id)}),
	'0',
	'no job points at a queue that does not exist');
note 'db_upgraded after the workload, jobs by state: '
  . $node->safe_psql('db_upgraded', $states_sql);
$longlived->quit;

# --- db_fresh, db_old ------------------------------------------------------

$node->safe_psql('db_fresh', 'CREATE EXTENSION queue;' . $grants);
is( $node->safe_psql(
		'db_fresh', "SELECT extversion FROM pg_extension WHERE extname = 'queue'"),
	'0.3.0',
	'db_fresh installs 0.3.0');
$node->safe_psql('db_old', "CREATE EXTENSION queue VERSION '0.1.0';" . $grants);

# --- the catalogs, fact by fact --------------------------------------------

# One line per fact about the extension's objects, by name (no OIDs; the
# names of toast tables and foreign-key triggers, which carry OIDs, are
# normalized; ACLs are sorted, their order being that of the GRANTs).
my $snapshot_sql = <<'SQL';
WITH ext AS (SELECT oid, extnamespace AS nsp FROM pg_extension WHERE extname = 'queue'),
nsname AS (SELECT n.nspname FROM pg_namespace n, ext WHERE n.oid = ext.nsp),
rels AS (SELECT c.oid, c.oid::regclass::text AS name FROM pg_class c, ext WHERE c.relnamespace = ext.nsp)
SELECT replace(replace(line, E'\n', '\n'), E'\t', '\t') FROM (
 SELECT 'extension ' || concat_ws(' | ', e.extversion, e.extrelocatable, e.extnamespace::regnamespace,
        pg_get_userbyid(e.extowner),
        (SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text) FROM unnest(e.extconfig) c),
        array_to_string(e.extcondition, ',')) AS line
   FROM pg_extension e WHERE e.extname = 'queue'
 UNION ALL
 SELECT 'schema ' || n.nspname || ' | owner=' || pg_get_userbyid(n.nspowner)
        || ' | acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(n.nspacl) x), '-')
   FROM pg_namespace n, ext WHERE n.oid = ext.nsp
 UNION ALL
 SELECT 'function ' || p.oid::regprocedure || ' | ' || concat_ws(' | ',
        'kind=' || p.prokind::text, 'lang=' || l.lanname, 'owner=' || pg_get_userbyid(p.proowner),
        'secdef=' || p.prosecdef, 'config=' || coalesce(p.proconfig::text, '-'),
        'volatile=' || p.provolatile::text, 'strict=' || p.proisstrict, 'parallel=' || p.proparallel::text,
        'leakproof=' || p.proleakproof, 'cost=' || p.procost, 'rows=' || p.prorows,
        'args=' || pg_get_function_arguments(p.oid), 'result=' || coalesce(pg_get_function_result(p.oid), '-'),
        'acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(p.proacl) x), '-'),
        'probin=' || coalesce(p.probin, '-'))
   FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang, ext WHERE p.pronamespace = ext.nsp
 UNION ALL
 SELECT 'function-source ' || p.oid::regprocedure || ' | ' || p.prosrc
   FROM pg_proc p, ext WHERE p.pronamespace = ext.nsp
 UNION ALL
 SELECT 'function-def ' || p.oid::regprocedure || ' | ' || pg_get_functiondef(p.oid)
   FROM pg_proc p, ext WHERE p.pronamespace = ext.nsp AND p.prokind IN ('f', 'p')
 UNION ALL
 SELECT 'relation ' || r.name || ' | ' || concat_ws(' | ', 'kind=' || c.relkind::text,
        'persistence=' || c.relpersistence::text, 'owner=' || pg_get_userbyid(c.relowner),
        'acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(c.relacl) x), '-'),
        'options=' || coalesce(c.reloptions::text, '-'), 'rowsecurity=' || c.relrowsecurity,
        'replident=' || c.relreplident::text, 'natts=' || c.relnatts, 'hastriggers=' || c.relhastriggers)
   FROM rels r JOIN pg_class c ON c.oid = r.oid
 UNION ALL
 SELECT 'column ' || r.name || '.' || a.attname || ' | ' || concat_ws(' | ', 'num=' || a.attnum,
        'type=' || format_type(a.atttypid, a.atttypmod), 'notnull=' || a.attnotnull,
        'default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), 'identity=' || a.attidentity::text,
        'generated=' || a.attgenerated::text,
        'collation=' || coalesce(nullif(a.attcollation, 0)::regcollation::text, '-'),
        'storage=' || a.attstorage::text, 'stattarget=' || a.attstattarget,
        'acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x), '-'),
        -- (pg_attver=N entries, where this server build adds them, vary from
        -- one CREATE to the next)
        'options=' || coalesce((SELECT string_agg(o, ',' ORDER BY o) FROM unnest(a.attoptions) o
                                 WHERE o NOT LIKE 'pg\_attver=%'), '-'))
   FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 UNION ALL
 SELECT 'index ' || r.name || ' | ' || pg_get_indexdef(r.oid) || ' | ' || concat_ws(' | ',
        'primary=' || i.indisprimary, 'unique=' || i.indisunique, 'valid=' || i.indisvalid,
        'replident=' || i.indisreplident)
   FROM rels r JOIN pg_index i ON i.indexrelid = r.oid
 UNION ALL
 SELECT 'view ' || r.name || ' | ' || pg_get_viewdef(r.oid)
   FROM rels r JOIN pg_class c ON c.oid = r.oid WHERE c.relkind IN ('v', 'm')
 UNION ALL
 SELECT 'sequence ' || r.name || ' | ' || concat_ws(' | ', 'type=' || s.seqtypid::regtype, 'start=' || s.seqstart,
        'inc=' || s.seqincrement, 'max=' || s.seqmax, 'min=' || s.seqmin, 'cache=' || s.seqcache,
        'cycle=' || s.seqcycle,
        'ownedby=' || coalesce((SELECT d.refobjid::regclass || '.' || a.attname FROM pg_depend d
                                  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
                                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')), '-'))
   FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
 UNION ALL
 SELECT 'constraint ' || coalesce(r.name, co.contypid::regtype::text) || '.' || co.conname || ' | '
        || concat_ws(' | ', 'type=' || co.contype::text, pg_get_constraintdef(co.oid),
                     'deferrable=' || co.condeferrable, 'deferred=' || co.condeferred,
                     'validated=' || co.convalidated, 'noinherit=' || co.connoinherit)
   FROM pg_constraint co LEFT JOIN rels r ON r.oid = co.conrelid, ext
  WHERE co.connamespace = ext.nsp
 UNION ALL
 SELECT 'trigger ' || r.name || '.' || t.tgname || ' | ' || pg_get_triggerdef(t.oid)
        || ' | enabled=' || t.tgenabled::text
   FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
 UNION ALL
 SELECT 'policy ' || r.name || '.' || po.polname || ' | ' || concat_ws(' | ', po.polcmd::text, po.polpermissive,
        coalesce(pg_get_expr(po.polqual, po.polrelid), '-'),
        coalesce(pg_get_expr(po.polwithcheck, po.polrelid), '-'))
   FROM rels r JOIN pg_policy po ON po.polrelid = r.oid
 UNION ALL
 SELECT 'rule ' || r.name || '.' || ru.rulename || ' | ' || pg_get_ruledef(ru.oid)
   FROM rels r JOIN pg_rewrite ru ON ru.ev_class = r.oid AND ru.rulename <> '_RETURN'
 UNION ALL
 SELECT 'type ' || t.oid::regtype || ' | ' || concat_ws(' | ', 'typtype=' || t.typtype::text,
        'owner=' || pg_get_userbyid(t.typowner),
        'acl=' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(t.typacl) x), '-'),
        'enum=' || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                               FROM pg_enum WHERE enumtypid = t.oid), '-'),
        'base=' || t.typbasetype::regtype, 'notnull=' || t.typnotnull, 'default=' || coalesce(t.typdefault, '-'))
   FROM pg_type t, ext WHERE t.typnamespace = ext.nsp
 UNION ALL
 -- the extension's members
 SELECT 'member ' || regexp_replace(pg_describe_object(d.classid, d.objid, d.objsubid), 'pg_toast_[0-9]+', 'pg_toast_N')
   FROM pg_depend d, ext
  WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
 UNION ALL
 -- every dependency of an object in the schema (or of a part of one)
 SELECT 'depend ' || regexp_replace(pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> '
        || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' (' || d.deptype::text || ')',
        '(pg_toast_|RI_ConstraintTrigger_[ac]_)[0-9]+', '\1N', 'g')
   FROM pg_depend d, nsname
  WHERE d.classid IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_type'::regclass,
                      'pg_constraint'::regclass, 'pg_trigger'::regclass, 'pg_attrdef'::regclass,
                      'pg_rewrite'::regclass, 'pg_policy'::regclass)
    AND (pg_identify_object(d.classid, d.objid, d.objsubid)).schema = nsname.nspname
 UNION ALL
 -- the initial privileges pg_dump compares the ACLs with
 SELECT 'initprivs ' || regexp_replace(pg_describe_object(i.classoid, i.objoid, i.objsubid), 'pg_toast_[0-9]+', 'pg_toast_N')
        || ' | ' || i.privtype::text || ' | '
        || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(i.initprivs) x), '-')
   FROM pg_init_privs i, ext, nsname
  WHERE (pg_identify_object(i.classoid, i.objoid, i.objsubid)).schema = nsname.nspname
     OR (i.classoid = 'pg_namespace'::regclass AND i.objoid = ext.nsp)
 UNION ALL
 SELECT 'comment ' || pg_describe_object(de.classoid, de.objoid, de.objsubid) || ' | ' || de.description
   FROM pg_description de, ext, nsname
  WHERE (pg_identify_object(de.classoid, de.objoid, de.objsubid)).schema = nsname.nspname
     OR (de.classoid = 'pg_namespace'::regclass AND de.objoid = ext.nsp)
     OR (de.classoid = 'pg_extension'::regclass AND de.objoid = ext.oid)
) facts;
SQL

sub snapshot
{
	my ($db) = @_;
	my %facts;
	for my $line (sort split /\n/, $node->safe_psql($db, $snapshot_sql))
	{
		my ($kind) = $line =~ /^(\S+)/;
		push @{ $facts{$kind} }, $line;
	}
	return \%facts;
}

# Lines of a that b lacks ("-") and lines of b that a lacks ("+").
sub difference
{
	my ($a, $b) = @_;
	my %in_a = map { $_ => 1 } @{ $a || [] };
	my %in_b = map { $_ => 1 } @{ $b || [] };
	return (
		(map { "- $_" } grep { !$in_b{$_} } @{ $a || [] }),
		(map { "+ $_" } grep { !$in_a{$_} } @{ $b || [] }));
}

# --- db_upgraded_020: 0.2.0, updated ---------------------------------------

$node->safe_psql('db_upgraded_020', "CREATE EXTENSION queue VERSION '0.2.0';" . $grants);
is( $node->safe_psql(
		'db_upgraded_020', "SELECT extversion FROM pg_extension WHERE extname = 'queue'"),
	'0.2.0',
	'db_upgraded_020 starts at 0.2.0');
$node->safe_psql('db_upgraded_020', q{SELECT queue.create_queue('batches')});
my $at_020 = snapshot('db_upgraded_020');
$node->safe_psql('db_upgraded_020', 'ALTER EXTENSION queue UPDATE');
is( $node->safe_psql(
		'db_upgraded_020', "SELECT extversion FROM pg_extension WHERE extname = 'queue'"),
	'0.3.0',
	'ALTER EXTENSION queue UPDATE takes db_upgraded_020 to 0.3.0');
is( $node->safe_psql(
		'db_upgraded_020', q{
SET ROLE upg_producer;
SELECT count(*) FROM queue.enqueue_payloads('batches', ARRAY['{}'::jsonb, '{}'::jsonb]);
}),
	'2',
	'there too, the producer enqueues with enqueue_payloads after the update');

# --- the comparisons -------------------------------------------------------

my $upgraded     = snapshot('db_upgraded');
my $upgraded_020 = snapshot('db_upgraded_020');
my $fresh        = snapshot('db_fresh');
my $old          = snapshot('db_old');

note 'facts compared: '
  . join(', ', map { "$_ " . scalar @{ $fresh->{$_} } } sort keys %$fresh);
cmp_ok(scalar @{ $fresh->{function} }, '>=', 84, 'the snapshot covers every function');
cmp_ok(scalar @{ $fresh->{member} },   '>=', 100, 'and every member of the extension');
ok(scalar @{ $fresh->{initprivs} } > 0 && scalar @{ $fresh->{depend} } > 0,
	'and the initial privileges and dependencies');

# Each kind of fact of the database $db (snapshot $facts, described as
# $what) is identical to db_fresh's.
sub same_as_fresh
{
	my ($db, $facts, $what) = @_;
	for my $kind (sort keys %{ { %$facts, %$fresh } })
	{
		my @diff = difference($facts->{$kind}, $fresh->{$kind});
		is(scalar @diff, 0,
			"$kind: $db ($what) and db_fresh (0.3.0) are identical ("
			  . scalar(@{ $fresh->{$kind} || [] }) . ' facts)')
		  or diag join("\n",
			"- only in $db, + only in db_fresh:", @diff);
	}
}

same_as_fresh('db_upgraded', $upgraded, '0.1.0 + update');
same_as_fresh('db_upgraded_020', $upgraded_020, '0.2.0 + update');

# The comparison tells 0.1.0 and 0.3.0 apart.
my @old_diff = map { difference($old->{$_}, $fresh->{$_}) } sort keys %{ { %$old, %$fresh } };
note scalar(@old_diff) . ' facts differ between 0.1.0 and 0.3.0 installs';
ok( (grep { /^\+ trigger queue\.queue\.queue_changed / } @old_diff)
	  && (grep { /^\+ function queue\.complete_and_claim\(/ } @old_diff)
	  && (grep { /^\+ member function queue\._queue_changed\(\)/ } @old_diff)
	  && (grep { /^\+ function queue\.enqueue_payloads\(/ } @old_diff),
	'the comparison sees what 0.1.0 lacks (the trigger, complete_and_claim, _queue_changed, enqueue_payloads)');

# And 0.2.0 and 0.3.0: what the update changed in db_upgraded_020 is
# enqueue_payloads (the function, its grants, its place in the extension
# and in the producer level) and the version, nothing else.
my @diff_020 = map { difference($at_020->{$_}, $upgraded_020->{$_}) }
  sort keys %{ { %$at_020, %$upgraded_020 } };
note scalar(@diff_020) . ' facts differ between 0.2.0 and 0.3.0';
ok( (grep { /^\+ function queue\.enqueue_payloads\(/ } @diff_020)
	  && (grep { /^\+ member function queue\.enqueue_payloads\(/ } @diff_020),
	'the comparison sees what 0.2.0 lacks (enqueue_payloads)');
my @unexpected_020 = grep {
	!/enqueue_payloads|^[-+] function-(def|source) queue\._access_functions\(text\) |^[-+] extension 0\.[23]\.0 /
} @diff_020;
is(scalar @unexpected_020, 0, 'and nothing else changed from 0.2.0 to 0.3.0')
  or diag join("\n", '- at 0.2.0, + after the update:', @unexpected_020);

# --- dump and restore ------------------------------------------------------

# Every privilege of every role on the extension's objects.
my $privileges_sql = q{
SELECT string_agg(r || ' ' || o || ' ' || p, E'\n' ORDER BY r, o, p) FROM (
  SELECT r, p.oid::regprocedure::text AS o, 'EXECUTE' AS p
    FROM unnest(ARRAY['upg_producer', 'upg_consumer', 'upg_monitor', 'upg_admin', 'public']) r,
         pg_proc p
   WHERE p.pronamespace = 'queue'::regnamespace AND has_function_privilege(r, p.oid, 'EXECUTE')
  UNION ALL
  SELECT r, c.oid::regclass::text, pr
    FROM unnest(ARRAY['upg_producer', 'upg_consumer', 'upg_monitor', 'upg_admin', 'public']) r,
         pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) pr
   WHERE c.relnamespace = 'queue'::regnamespace AND c.relkind IN ('r', 'v')
     AND has_table_privilege(r, c.oid, pr)
  UNION ALL
  SELECT r, 'schema queue', pr
    FROM unnest(ARRAY['upg_producer', 'upg_consumer', 'upg_monitor', 'upg_admin', 'public']) r,
         unnest(ARRAY['USAGE', 'CREATE']) pr
   WHERE has_schema_privilege(r, 'queue', pr)) s};

my $dump = $node->basedir . '/db_upgraded.sql';
$node->command_ok(
	[ 'pg_dump', '--no-sync', '-f', $dump, '-d', $node->connstr('db_upgraded') ],
	'pg_dump of db_upgraded');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $dump, '-d', $node->connstr('db_restored') ],
	'restored into db_restored');
is( $node->safe_psql(
		'db_restored', "SELECT extversion FROM pg_extension WHERE extname = 'queue'"),
	'0.3.0',
	'the restore installs 0.3.0');
my $priv_upgraded = $node->safe_psql('db_upgraded', $privileges_sql);
my $priv_restored = $node->safe_psql('db_restored', $privileges_sql);
note 'privileges of the four roles in db_upgraded: ' . scalar(split /\n/, $priv_upgraded);
my @priv_diff = difference([ split /\n/, $priv_upgraded ], [ split /\n/, $priv_restored ]);
is(scalar @priv_diff, 0, 'every role keeps exactly its privileges through a dump and restore')
  or diag join("\n", '- only in db_upgraded, + only in db_restored:', @priv_diff);
is( $node->safe_psql('db_restored', $states_sql),
	$node->safe_psql('db_upgraded', $states_sql),
	'and every job comes back');

# --- DROP EXTENSION, CREATE EXTENSION ---------------------------------------

# One session caches queue r, drops and creates the extension again, creates
# r again and looks it up (cached again), then pauses it: the pause must
# reach its own cache.  Another session, connected across all of it, too.
$node->safe_psql('postgres', 'CREATE DATABASE db_reinstall');
$node->safe_psql('db_reinstall',
	q{CREATE EXTENSION queue; SELECT queue.create_queue('r'); SELECT queue.enqueue('r', '{}')});
my $bystander = $node->background_psql('db_reinstall');
$bystander->query_safe(q{SELECT queue.enqueue('r', '{}')});
my $reinstalled = $node->safe_psql(
	'db_reinstall', q{
SELECT queue.enqueue('r', '{}');
DROP EXTENSION queue;
CREATE EXTENSION queue;
SELECT queue.create_queue('r');
SELECT queue.enqueue('r', '{}');
SELECT queue.enqueue('r', '{}');
SELECT queue.pause_queue('r');
SELECT count(*) FROM queue.claim('r', 'w', 10);
});
is((split /\n/, $reinstalled)[-1],
	'0', 'after DROP and CREATE EXTENSION, a pause reaches the cache of the session that did them');
$bystander->query_safe(q{SELECT queue.resume_queue('r')});
$bystander->query_safe(q{SELECT queue.enqueue('r', '{}')});
$node->safe_psql('db_reinstall', q{SELECT queue.pause_queue('r')});
is($bystander->query_safe(q{SELECT count(*) FROM queue.claim('r', 'w', 10)}),
	'0', 'and the cache of a session connected across them');
$bystander->quit;

note sprintf('total %.1f s', time() - $t0);
done_testing();
