--
-- 15_pooler: the client API works when session state is discarded between
-- transactions, as under a transaction-mode pooler (PgBouncer
-- pool_mode = transaction).  A full cycle runs with DISCARD ALL after every
-- transaction (it drops prepared statements, cached plans, temporary
-- tables, LISTENs, session settings and session advisory locks), with the
-- connection's search_path set to '' (only pg_catalog is searched).  After
-- each transaction, :check shows that the session holds no lock (no
-- session-level advisory lock is ever taken: the extension's locks are
-- transaction-level), listens on no channel, and still has search_path ''
-- (no function changed a setting).  Then a second cycle runs with a hostile
-- search_path (a schema placed before pg_catalog that shadows catalog
-- functions with functions that record each call) and a new connection for every transaction, as when a pooler
-- hands each transaction a different server connection.  Values that the
-- client must keep between transactions (job ids, lease tokens) live in
-- psql variables, on the client, as they would in an application.
--
\set SHOW_CONTEXT never
\set VERBOSITY sqlstate
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET search_path = '';
\c
\set check 'SELECT (SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() AND locktype <> ''virtualxid'' AND NOT (locktype = ''relation'' AND mode = ''AccessShareLock'')) AS locks_held, (SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() AND locktype = ''advisory'') AS advisory, (SELECT count(*) FROM pg_catalog.pg_listening_channels()) AS listening, pg_catalog.current_setting(''search_path'') AS search_path; DISCARD ALL;'
SHOW search_path;

-- Set-up (an administrator's transactions, discarded like the rest).
SELECT queue.create_queue('p15_q', retry_policy => '{"delay": 0}') > 0 AS created;
:check
SELECT queue.create_queue('p15_ordered', ordered => true) > 0 AS created;
:check
BEGIN;
SELECT queue.create_queue('p15_sub') > 0 AS created;
SELECT queue.create_topic('p15_t') > 0 AS created;
SELECT queue.subscribe('p15_t', queue => 'p15_sub') > 0 AS subscribed;
SELECT queue.create_queue('p15_step1') > 0 AS created;
SELECT queue.create_queue('p15_step2') > 0 AS created;
SELECT queue.define_saga('p15_saga', '[{"name": "reserve", "queue": "p15_step1", "compensation_queue": "p15_step1"}, {"name": "charge", "queue": "p15_step2"}]') AS version;
COMMIT;
:check

-- Producer: three jobs in one transaction.
BEGIN;
SELECT queue.enqueue('p15_q', '{"n": 1}', priority => 3) > 0 AS enqueued;
SELECT queue.enqueue('p15_q', '{"n": 2}', priority => 2) > 0 AS enqueued;
SELECT queue.enqueue('p15_q', '{"n": 3}', priority => 1, dedup_key => 'p15-3') > 0 AS enqueued;
COMMIT;
:check

-- Claim without a wait; extend; complete.
SELECT job_id AS j1, lease_token AS t1, payload, attempt FROM queue.claim('p15_q', 'pooled-worker') \gset
\echo claimed payload :payload attempt :attempt
:check
SELECT queue.extend(:j1, :'t1', '5 minutes') > now() AS extended;
:check
BEGIN;
SELECT queue.complete(:j1, :'t1', '{"ok": true}');
COMMIT;
:check

-- Claim; fail (retried at once by the queue's policy).
SELECT job_id AS j2, lease_token AS t2, payload FROM queue.claim('p15_q', 'pooled-worker') \gset
\echo claimed payload :payload
:check
SELECT queue.fail(:j2, :'t2', 'transient') AS fail;
:check

-- Claim with a wait: work is there, so it returns at once; both waiting
-- jobs are ready and the higher priority goes first: the retried one.
SELECT job_id AS j3, lease_token AS t3, payload, attempt FROM queue.claim('p15_q', 'pooled-worker', wait => '10 seconds') \gset
\echo claimed payload :payload attempt :attempt
:check
-- release it (the attempt is not spent) ...
SELECT queue.release(:j3, :'t3');
:check
-- ... and claim both jobs, complete them together.
SELECT array_agg(job_id ORDER BY job_id) AS ids, array_agg(lease_token ORDER BY job_id) AS tokens, count(*) AS n
  FROM queue.claim('p15_q', 'pooled-worker', batch_size => 5) \gset
\echo claimed :n jobs
:check
SELECT queue.complete_many(:'ids', :'tokens') AS completed;
:check

-- A claim with a wait on an empty queue returns nothing when the wait ends.
SELECT count(*) AS claimed FROM queue.claim('p15_q', 'pooled-worker', wait => '200 milliseconds');
:check
-- A job due in 300 ms: a claim waiting up to 30 s gets it when it falls due.
SELECT queue.enqueue('p15_q', '{"n": 4}', delay => '300 milliseconds') > 0 AS enqueued;
:check
SELECT job_id AS j4, lease_token AS t4, payload FROM queue.claim('p15_q', 'pooled-worker', wait => '30 seconds') \gset
\echo claimed payload :payload
:check
SELECT job_id AS x, state FROM queue.fail_many(ARRAY[:j4]::bigint[], ARRAY[:'t4']::uuid[], '{gone for good}', permanent => true) \gset
\echo fail_many: :state
:check

-- Outbox: publish with a key, relay, consume.
BEGIN;
SELECT queue.publish('p15_t', '{"order": 7}', key => 'order-7') > 0 AS published;
SELECT count(*) AS published FROM queue.publish_many('p15_t', '[{"payload": {"order": 8}, "key": "order-8"}]');
COMMIT;
:check
SELECT queue.relay() AS relayed;
:check
SELECT array_agg(job_id ORDER BY job_id) AS ids, array_agg(lease_token ORDER BY job_id) AS tokens, string_agg(payload::text, ' ' ORDER BY job_id) AS payloads
  FROM queue.claim('p15_sub', 'pooled-worker', batch_size => 10) \gset
\echo delivered: :payloads
:check
SELECT queue.complete_many(:'ids', :'tokens') AS completed;
:check

-- Ordered queue: a group's second job waits for its head.
BEGIN;
SELECT count(queue.enqueue('p15_ordered', jsonb_build_object('n', i), group_key => 'g')) AS enqueued
  FROM generate_series(1, 2) i;
COMMIT;
:check
SELECT job_id AS j5, lease_token AS t5, payload FROM queue.claim('p15_ordered', 'pooled-worker', batch_size => 2) \gset
\echo claimed payload :payload
:check
SELECT queue.complete(:j5, :'t5');
:check
SELECT job_id AS j6, lease_token AS t6, payload FROM queue.claim('p15_ordered', 'pooled-worker', batch_size => 2) \gset
\echo claimed payload :payload
:check
SELECT queue.complete(:j6, :'t6');
:check

-- Saga: start it in a business transaction, run both steps.
BEGIN;
SELECT queue.start_saga('p15_saga', '{"order": 7}', idempotency_key => 'order-7') AS saga \gset
COMMIT;
:check
SELECT job_id AS j7, lease_token AS t7, payload->>'step' AS step FROM queue.claim('p15_step1', 'pooled-worker', wait => '10 seconds') \gset
\echo step: :step
:check
BEGIN;
SELECT queue.complete(:j7, :'t7', '{"reservation": "r-1"}');
COMMIT;
:check
SELECT job_id AS j8, lease_token AS t8, payload->>'step' AS step, payload->'context' AS context FROM queue.claim('p15_step2', 'pooled-worker', wait => '10 seconds') \gset
\echo step: :step context: :context
:check
SELECT queue.complete(:j8, :'t8', '{"charge": "c-1"}');
:check
SELECT status, context FROM queue.sagas WHERE id = :saga;
:check
-- The same idempotency key starts nothing new.
SELECT queue.start_saga('p15_saga', '{"order": 7}', idempotency_key => 'order-7') = :saga AS same_saga;
:check

-- Everything this cycle made is settled.
SELECT queue, state, count(*) FROM queue.jobs WHERE queue LIKE 'p15%' GROUP BY 1, 2 ORDER BY 1, 2;
:check

--
-- Second cycle: a hostile search_path, and a new connection for every
-- transaction.  The schema h15_evil shadows catalog functions the API
-- uses (now, clock_timestamp, gen_random_uuid, jsonb_typeof, lower, ...)
-- and tables named like the extension's; none of them may be reached.
--
SET search_path = public;
CREATE SCHEMA h15_evil;
CREATE TABLE h15_evil.hits (what text);
CREATE FUNCTION h15_evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN INSERT INTO h15_evil.hits VALUES ('now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION h15_evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN INSERT INTO h15_evil.hits VALUES ('clock_timestamp'); RETURN pg_catalog.clock_timestamp(); END $$;
CREATE FUNCTION h15_evil.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS $$ BEGIN INSERT INTO h15_evil.hits VALUES ('gen_random_uuid'); RETURN pg_catalog.gen_random_uuid(); END $$;
CREATE FUNCTION h15_evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO h15_evil.hits VALUES ('jsonb_typeof'); RETURN pg_catalog.jsonb_typeof($1); END $$;
CREATE FUNCTION h15_evil.lower(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO h15_evil.hits VALUES ('lower'); RETURN pg_catalog.lower($1); END $$;
CREATE FUNCTION h15_evil.octet_length(text) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN INSERT INTO h15_evil.hits VALUES ('octet_length'); RETURN pg_catalog.octet_length($1); END $$;
CREATE FUNCTION h15_evil.coalesce_hit(anyelement) RETURNS anyelement LANGUAGE sql AS $$ SELECT $1 $$;
CREATE TABLE h15_evil.job (id bigint);
CREATE TABLE h15_evil.queue (id int, name text);
CREATE TABLE h15_evil.event (id bigint);
GRANT USAGE ON SCHEMA h15_evil TO PUBLIC;
GRANT INSERT ON h15_evil.hits TO PUBLIC;
ALTER DATABASE :"db" SET search_path = h15_evil, pg_catalog, public;
\c
SHOW search_path;
SELECT queue.enqueue('p15_q', '{"n": 10}') > 0 AS enqueued;
:check
\c
SELECT job_id AS j9, lease_token AS t9 FROM queue.claim('p15_q', 'pooled-worker', wait => '10 seconds') \gset
:check
\c
SELECT queue.extend(:j9, :'t9') IS NOT NULL AS extended;
:check
\c
SELECT queue.fail(:j9, :'t9', 'again', retry_delay => '0') AS fail;
:check
\c
SELECT job_id AS j9, lease_token AS t9, attempt FROM queue.claim('p15_q', 'pooled-worker') \gset
\echo attempt :attempt
:check
\c
SELECT queue.release(:j9, :'t9');
:check
\c
SELECT job_id AS j9, lease_token AS t9 FROM queue.claim('p15_q', 'pooled-worker') \gset
:check
\c
SELECT queue.complete(:j9, :'t9');
:check
\c
SELECT count(*) AS enqueued FROM queue.enqueue_many('p15_q', '[{"payload": {"n": 11}, "delay": 0.1}]');
:check
\c
SELECT job_id AS j10, lease_token AS t10 FROM queue.claim('p15_q', 'pooled-worker', wait => '30 seconds') \gset
:check
\c
SELECT queue.complete(:j10, :'t10');
:check
\c
SELECT queue.publish('p15_t', '{"order": 9}', key => 'order-9') > 0 AS published;
:check
\c
SELECT queue.relay() AS relayed;
:check
\c
SELECT job_id AS j11, lease_token AS t11, payload FROM queue.claim('p15_sub', 'pooled-worker') \gset
\echo delivered: :payload
:check
\c
SELECT queue.complete(:j11, :'t11');
:check
\c
SELECT queue.start_saga('p15_saga', '{"order": 9}') AS saga \gset
:check
\c
SELECT job_id AS j12, lease_token AS t12 FROM queue.claim('p15_step1', 'pooled-worker') \gset
:check
\c
-- the step fails for good: nothing completed before it, so the saga ends
-- compensated at once.
SELECT queue.fail(:j12, :'t12', 'out of stock', permanent => true) AS fail;
:check
\c
SELECT status FROM queue.sagas WHERE id = :saga;
:check
\c
SELECT queue.expire_leases() >= 0 AS expired, queue.prune() >= 0 AS pruned, queue.prune_events() >= 0 AS pruned_events;
:check

-- No shadowing function was ever called, and the look-alike tables are
-- untouched.
\c
SET search_path = public;
SELECT count(*) AS hijacked_calls FROM h15_evil.hits;
SELECT (SELECT count(*) FROM h15_evil.job) + (SELECT count(*) FROM h15_evil.queue) + (SELECT count(*) FROM h15_evil.event) AS rows_in_lookalikes;
SELECT queue, state, count(*) FROM queue.jobs WHERE queue LIKE 'p15%' GROUP BY 1, 2 ORDER BY 1, 2;

-- Clean up.
ALTER DATABASE :"db" RESET search_path;
DROP SCHEMA h15_evil CASCADE;
SELECT queue.drop_queue(name, force => true) FROM queue.queue WHERE name LIKE 'p15%' ORDER BY name;
SELECT queue.drop_topic('p15_t', force => true);
