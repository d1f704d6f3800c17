-- pgTAP: the role recipe.  queue.grant_access/queue.revoke_access give and
-- take the four access levels (producer, consumer, monitor, admin); each
-- level can do exactly its part, a role granted nothing can do nothing, role
-- names are quoted, and a caller's search_path cannot hijack the SECURITY
-- DEFINER functions.
--
-- Roles are cluster-wide but CREATE ROLE is transactional: everything below
-- is rolled back at the end.  No ON_ERROR_STOP: an unexpected error shows in
-- the output (a difference) and the remaining tests still run.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_ROLLBACK 1
SET client_min_messages = warning;
-- pg_regress sets IntervalStyle postgres_verbose; the texts below use postgres
SET IntervalStyle = postgres;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS queue;

BEGIN;
SELECT plan(322);

-- ======================================================================
-- Roles and grants
-- ======================================================================
CREATE ROLE qt_producer;
CREATE ROLE qt_consumer;
CREATE ROLE qt_monitor;
CREATE ROLE qt_admin;
CREATE ROLE qt_nobody;

SELECT lives_ok($$SELECT queue.grant_access('qt_producer', 'producer')$$,
                'grant_access(qt_producer, producer)');
SELECT lives_ok($$SELECT queue.grant_access('qt_consumer', 'consumer')$$,
                'grant_access(qt_consumer, consumer)');
SELECT lives_ok($$SELECT queue.grant_access('qt_monitor', 'monitor')$$,
                'grant_access(qt_monitor, monitor)');
SELECT lives_ok($$SELECT queue.grant_access('qt_admin', 'admin')$$,
                'grant_access(qt_admin, admin)');
SELECT lives_ok($$SELECT queue.grant_access('qt_admin', 'admin')$$,
                'grant_access is idempotent (granting a level twice is fine)');

-- Exactly what each level holds: USAGE on the schema, EXECUTE on the
-- level's functions, SELECT on some relations, nothing on the sequences.
SELECT ok(has_schema_privilege(r, 'queue', 'USAGE'), r || ' has USAGE on schema queue')
  FROM unnest(ARRAY['qt_producer', 'qt_consumer', 'qt_monitor', 'qt_admin']) r;
SELECT ok(NOT has_schema_privilege(r, 'queue', 'CREATE'), r || ' has no CREATE on schema queue')
  FROM unnest(ARRAY['qt_producer', 'qt_consumer', 'qt_monitor', 'qt_admin']) r;
SELECT ok(NOT has_schema_privilege('qt_nobody', 'queue', 'USAGE'),
          'qt_nobody has no USAGE on schema queue');

SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_producer', p.oid, 'EXECUTE')$$,
    ARRAY['queue.enqueue(text,jsonb,jsonb,timestamp with time zone,interval,integer,text,integer,jsonb,text)',
          'queue.enqueue_many(text,jsonb)',
          'queue.enqueue_payloads(text,jsonb[],jsonb,timestamp with time zone,interval,integer,integer,jsonb,text)',
          'queue.publish(text,jsonb,text,jsonb)',
          'queue.publish_many(text,jsonb)',
          'queue.start_saga(text,jsonb,text)',
          'queue.get_job(bigint)',
          'queue.list_queues()'],
    'producer may execute exactly enqueue, enqueue_many, enqueue_payloads, publish, publish_many, start_saga, get_job, list_queues');
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_consumer', p.oid, 'EXECUTE')$$,
    ARRAY['queue.claim(text,text,integer,interval,interval)',
          'queue.complete(bigint,uuid,jsonb)',
          'queue.complete_many(bigint[],uuid[],jsonb[])',
          'queue.complete_and_claim(bigint[],uuid[],text,text,integer,interval,jsonb[])',
          'queue.fail(bigint,uuid,text,boolean,interval)',
          'queue.fail_many(bigint[],uuid[],text[],boolean,interval)',
          'queue.extend(bigint,uuid,interval)',
          'queue.release(bigint,uuid,interval)',
          'queue.backoff_delay(jsonb,integer,interval)',
          'queue.get_job(bigint)',
          'queue.list_queues()'],
    'consumer may execute exactly the lease functions, backoff_delay, get_job, list_queues');
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_monitor', p.oid, 'EXECUTE')$$,
    ARRAY['queue.list_queues()',
          'queue.list_topics()',
          'queue._saga_stale_completions(integer)',
          'queue._throughput()',
          'queue._waiting_claims(integer)',
          'queue._worker_status()'],
    'monitor may execute exactly list_queues, list_topics and the read-only internals behind the views');
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_admin', p.oid, 'EXECUTE')$$,
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace AND p.prosecdef
      UNION ALL SELECT 'queue.backoff_delay(jsonb,integer,interval)'
      UNION ALL SELECT unnest(ARRAY['queue._throughput()', 'queue._waiting_claims(integer)',
                                    'queue._worker_status()',
                                    'queue._saga_stale_completions(integer)'])$$,
    'admin may execute every SECURITY DEFINER function, backoff_delay and the read-only internals behind the views');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND (p.proname LIKE '\_%' OR p.proname IN ('grant_access', 'revoke_access'))
         AND p.proname NOT IN ('_throughput', '_waiting_claims', '_worker_status',
                               '_saga_stale_completions')
         AND (has_function_privilege('qt_admin', p.oid, 'EXECUTE')
              OR has_function_privilege('qt_producer', p.oid, 'EXECUTE')
              OR has_function_privilege('qt_consumer', p.oid, 'EXECUTE')
              OR has_function_privilege('qt_monitor', p.oid, 'EXECUTE'))$$,
    'no level may execute the internal helpers (but the four behind the views) or grant_access/revoke_access');
SELECT is_empty(
    $$SELECT r, p.oid::regprocedure FROM pg_proc p,
             unnest(ARRAY['qt_admin', 'qt_producer', 'qt_consumer', 'qt_monitor', 'qt_nobody']) r
       WHERE p.pronamespace = 'queue'::regnamespace
         AND p.proname IN ('_wake', '_count_outcome', '_reset_stats')
         AND has_function_privilege(r, p.oid, 'EXECUTE')$$,
    'nobody but the owner may execute _wake, _count_outcome, _reset_stats');
SELECT is_empty(
    $$SELECT r, p.oid::regprocedure FROM pg_proc p,
             unnest(ARRAY['qt_producer', 'qt_consumer', 'qt_nobody']) r
       WHERE p.pronamespace = 'queue'::regnamespace
         AND p.proname IN ('_throughput', '_waiting_claims', '_worker_status',
                           '_saga_stale_completions')
         AND has_function_privilege(r, p.oid, 'EXECUTE')$$,
    'producer, consumer and nobody may not execute _throughput, _waiting_claims, _worker_status, _saga_stale_completions');
-- complete_and_claim (0.2.0) belongs to the consumer level (and so to admin);
-- _queue_changed is the trigger function behind the queue lookup caches:
-- nobody's to call.
SELECT set_eq(
    $$SELECT r FROM unnest(ARRAY['qt_producer', 'qt_consumer', 'qt_monitor', 'qt_admin', 'qt_nobody', 'public']) r
       WHERE has_function_privilege(r, 'queue.complete_and_claim(bigint[],uuid[],text,text,integer,interval,jsonb[])', 'EXECUTE')$$,
    ARRAY['qt_consumer', 'qt_admin'],
    'exactly consumer and admin may execute complete_and_claim (not producer, monitor, nobody, PUBLIC)');
SELECT is_empty(
    $$SELECT r FROM unnest(ARRAY['qt_producer', 'qt_consumer', 'qt_monitor', 'qt_admin', 'qt_nobody', 'public']) r
       WHERE has_function_privilege(r, 'queue._queue_changed()', 'EXECUTE')$$,
    'no level (nor PUBLIC) may execute the trigger function _queue_changed');

SELECT set_eq(
    $$SELECT r, c.oid::regclass::text, p
        FROM unnest(ARRAY['qt_producer', 'qt_consumer', 'qt_monitor', 'qt_admin', 'qt_nobody']) r,
             pg_class c,
             unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                          'TRIGGER']) p
       WHERE c.relnamespace = 'queue'::regnamespace
         AND CASE WHEN c.relkind IN ('r', 'v') THEN has_table_privilege(r, c.oid, p) END$$,
    $$VALUES ('qt_monitor', 'queue.queue', 'SELECT'),
             ('qt_monitor', 'queue.queue_stats', 'SELECT'),
             ('qt_monitor', 'queue.workers', 'SELECT'),
             ('qt_monitor', 'queue.topic_stats', 'SELECT'),
             ('qt_monitor', 'queue.blocked_groups', 'SELECT'),
             ('qt_monitor', 'queue.saga_stats', 'SELECT'),
             ('qt_admin', 'queue.queue', 'SELECT'),
             ('qt_admin', 'queue.queue_stats', 'SELECT'),
             ('qt_admin', 'queue.workers', 'SELECT'),
             ('qt_admin', 'queue.topic_stats', 'SELECT'),
             ('qt_admin', 'queue.blocked_groups', 'SELECT'),
             ('qt_admin', 'queue.job', 'SELECT'),
             ('qt_admin', 'queue.job_archive', 'SELECT'),
             ('qt_admin', 'queue.jobs', 'SELECT'),
             ('qt_admin', 'queue.topic', 'SELECT'),
             ('qt_admin', 'queue.subscription', 'SELECT'),
             ('qt_admin', 'queue.event', 'SELECT'),
             ('qt_admin', 'queue.event_archive', 'SELECT'),
             ('qt_admin', 'queue.events', 'SELECT'),
             ('qt_admin', 'queue.saga_stats', 'SELECT'),
             ('qt_admin', 'queue.sagas', 'SELECT'),
             ('qt_admin', 'queue.saga', 'SELECT'),
             ('qt_admin', 'queue.saga_definition', 'SELECT'),
             ('qt_admin', 'queue.saga_event', 'SELECT')$$,
    'table privileges: monitor reads queue.queue and the monitoring views (queue_stats, workers, topic_stats, blocked_groups, saga_stats), admin reads all, nobody writes');
SELECT is_empty(
    $$SELECT r, c.oid::regclass
        FROM unnest(ARRAY['qt_producer', 'qt_consumer', 'qt_monitor', 'qt_admin']) r, pg_class c
       WHERE c.relnamespace = 'queue'::regnamespace
         AND CASE WHEN c.relkind = 'S'
                  THEN has_sequence_privilege(r, c.oid, 'USAGE, SELECT, UPDATE') END$$,
    'no level has any privilege on the sequences');

-- ======================================================================
-- Fixtures, as the owner
-- ======================================================================
SELECT queue.create_queue('qt_q') AS qt_q_id \gset
SELECT queue.enqueue('qt_q', '{"n": 1}') AS job1 \gset
-- consumer's queue: distinct priorities make the claim order certain
SELECT queue.create_queue('qt_c') AS qt_c_id \gset
SELECT queue.enqueue('qt_c', '{"c": 1}', priority => 100) AS c1 \gset
SELECT queue.enqueue('qt_c', '{"c": 2}', priority => 90) AS c2 \gset
SELECT queue.enqueue('qt_c', '{"c": 3}', priority => 80) AS c3 \gset
SELECT queue.enqueue('qt_c', '{"c": 4}', priority => 70) AS c4 \gset
-- complete_and_claim's queue, in the same certain order
SELECT queue.create_queue('qt_cc') AS qt_cc_id \gset
SELECT queue.enqueue('qt_cc', '{"cc": 1}', priority => 100) AS cc1 \gset
SELECT queue.enqueue('qt_cc', '{"cc": 2}', priority => 90) AS cc2 \gset
SELECT queue.enqueue('qt_cc', '{"cc": 3}', priority => 80) AS cc3 \gset
-- a queue whose only job is an hour away: a waiting claim finds nothing
SELECT queue.create_queue('qt_w') AS qt_w_id \gset
SELECT queue.enqueue('qt_w', '{"w": 1}', delay => '1 hour') AS w1 \gset
-- a topic delivering to queue qt_t, and an ordered queue with a blocked group
SELECT queue.create_queue('qt_t') AS qt_t_id \gset
SELECT queue.create_topic('qt_topic') AS qt_topic_id \gset
SELECT queue.subscribe('qt_topic', queue => 'qt_t') AS qt_sub_id \gset
SELECT queue.create_queue('qt_o', ordered => true) AS qt_o_id \gset
SELECT count(*) AS o_jobs FROM queue.enqueue_many('qt_o', '[{"payload": {"o": 1}, "group_key": "g"},
                                                        {"payload": {"o": 2}, "group_key": "g"}]') \gset
-- a saga type of two steps in queue qt_s (the first compensated in qt_su)
SELECT queue.create_queue('qt_s') AS qt_s_id \gset
SELECT queue.create_queue('qt_su') AS qt_su_id \gset
SELECT queue.define_saga('qt_saga', '[{"name": "one", "queue": "qt_s", "compensation_queue": "qt_su"},
                                      {"name": "two", "queue": "qt_s"}]') AS v_saga \gset

-- ======================================================================
-- qt_nobody: granted nothing, can do nothing
-- ======================================================================
SET ROLE qt_nobody;
SELECT throws_ok($$SELECT queue.enqueue('qt_q', '{}')$$, '42501', NULL,
                 'nobody cannot enqueue');
SELECT throws_ok($$SELECT queue.enqueue_many('qt_q', '[{"payload": {}}]')$$, '42501', NULL,
                 'nobody cannot enqueue_many');
SELECT throws_ok($$SELECT * FROM queue.claim('qt_q', 'w')$$, '42501', NULL,
                 'nobody cannot claim');
SELECT throws_ok(format('SELECT * FROM queue.get_job(%s)', :job1), '42501', NULL,
                 'nobody cannot get_job');
SELECT throws_ok($$SELECT * FROM queue.complete_and_claim('{}', '{}', 'qt_cc', 'w')$$, '42501', NULL,
                 'nobody cannot complete_and_claim');
SELECT throws_ok($$SELECT * FROM queue.list_queues()$$, '42501', NULL,
                 'nobody cannot list_queues');
SELECT throws_ok($$SELECT queue.create_queue('qt_nobody_q')$$, '42501', NULL,
                 'nobody cannot create_queue');
SELECT throws_ok($$SELECT payload FROM queue.job$$, '42501', NULL,
                 'nobody cannot read payloads from queue.job');
SELECT throws_ok($$SELECT payload FROM queue.jobs$$, '42501', NULL,
                 'nobody cannot read payloads from queue.jobs');
SELECT throws_ok($$SELECT payload FROM queue.job_archive$$, '42501', NULL,
                 'nobody cannot read payloads from queue.job_archive');
SELECT throws_ok($$SELECT name FROM queue.queue$$, '42501', NULL,
                 'nobody cannot read queue.queue');
SELECT throws_ok($$SELECT * FROM queue.queue_stats$$, '42501', NULL,
                 'nobody cannot read queue.queue_stats');
SELECT throws_ok($$SELECT * FROM queue.workers$$, '42501', NULL,
                 'nobody cannot read queue.workers');
SELECT throws_ok($$SELECT queue.publish('qt_topic', '{}')$$, '42501', NULL,
                 'nobody cannot publish');
SELECT throws_ok($$SELECT * FROM queue.list_topics()$$, '42501', NULL,
                 'nobody cannot list_topics');
SELECT throws_ok($$SELECT * FROM queue.topic_stats$$, '42501', NULL,
                 'nobody cannot read queue.topic_stats');
SELECT throws_ok($$SELECT * FROM queue.blocked_groups$$, '42501', NULL,
                 'nobody cannot read queue.blocked_groups');
SELECT throws_ok($$SELECT payload FROM queue.events$$, '42501', NULL,
                 'nobody cannot read payloads from queue.events');
SELECT throws_ok($$SELECT queue.start_saga('qt_saga', '{}')$$, '42501', NULL,
                 'nobody cannot start_saga');
SELECT throws_ok($$SELECT input FROM queue.sagas$$, '42501', NULL,
                 'nobody cannot read queue.sagas');
SELECT throws_ok($$SELECT * FROM queue.saga_stats$$, '42501', NULL,
                 'nobody cannot read queue.saga_stats');
RESET ROLE;

-- ======================================================================
-- qt_producer: enqueue, enqueue_many, enqueue_payloads, get_job, list_queues
-- ======================================================================
SET ROLE qt_producer;
SELECT lives_ok($$SELECT queue.enqueue('qt_q', '{"n": 2}', dedup_key => 'prod-2')$$,
                'producer can enqueue');
SELECT lives_ok($$SELECT queue.enqueue_many('qt_q', '[{"payload": {"n": 3}, "dedup_key": "prod-3"},
                                                      {"payload": {"n": 4}, "dedup_key": "prod-4"}]')$$,
                'producer can enqueue_many');
SELECT is((SELECT count(*)::int FROM queue.enqueue_payloads('qt_q', ARRAY['{"n": 5}', '{"n": 6}']::jsonb[])),
          2, 'producer can enqueue_payloads');
SELECT is((SELECT payload FROM queue.get_job(:job1)), '{"n": 1}'::jsonb,
          'producer can get_job (and see the payload)');
SELECT ok(EXISTS (SELECT 1 FROM queue.list_queues() WHERE name = 'qt_q'),
          'producer can list_queues');
SELECT throws_ok($$SELECT * FROM queue.claim('qt_q', 'w')$$, '42501', NULL,
                 'producer cannot claim');
SELECT throws_ok(format('SELECT queue.complete(%s, %L)', :job1, gen_random_uuid()), '42501', NULL,
                 'producer cannot complete');
SELECT throws_ok($$SELECT * FROM queue.complete_and_claim('{}', '{}', 'qt_cc', 'w')$$, '42501', NULL,
                 'producer cannot complete_and_claim');
SELECT throws_ok(format('SELECT queue.fail(%s, %L, %L)', :job1, gen_random_uuid(), 'x'), '42501', NULL,
                 'producer cannot fail');
SELECT throws_ok(format('SELECT queue.extend(%s, %L)', :job1, gen_random_uuid()), '42501', NULL,
                 'producer cannot extend');
SELECT throws_ok(format('SELECT queue.release(%s, %L)', :job1, gen_random_uuid()), '42501', NULL,
                 'producer cannot release');
SELECT throws_ok($$SELECT queue.create_queue('qt_producer_q')$$, '42501', NULL,
                 'producer cannot create_queue');
SELECT throws_ok($$SELECT queue.drop_queue('qt_q')$$, '42501', NULL,
                 'producer cannot drop_queue');
SELECT throws_ok($$SELECT queue.purge_queue('qt_q')$$, '42501', NULL,
                 'producer cannot purge_queue');
SELECT throws_ok(format('SELECT queue.cancel_job(%s)', :job1), '42501', NULL,
                 'producer cannot cancel_job');
SELECT throws_ok($$SELECT * FROM queue.list_jobs('qt_q')$$, '42501', NULL,
                 'producer cannot list_jobs');
SELECT throws_ok($$SELECT queue.backoff_delay('{}', 1)$$, '42501', NULL,
                 'producer cannot call backoff_delay (a consumer function)');
SELECT throws_ok($$SELECT payload FROM queue.job$$, '42501', NULL,
                 'producer cannot read queue.job directly');
SELECT throws_ok($$SELECT payload FROM queue.jobs$$, '42501', NULL,
                 'producer cannot read queue.jobs directly');
SELECT throws_ok($$SELECT name FROM queue.queue$$, '42501', NULL,
                 'producer cannot read queue.queue directly');
SELECT throws_ok($$SELECT * FROM queue.queue_stats$$, '42501', NULL,
                 'producer cannot read queue.queue_stats');
SELECT throws_ok(format('INSERT INTO queue.job (queue_id, state, run_at, max_attempts, payload)
                         VALUES (%s, %L, now(), 1, %L)', :qt_q_id, 'pending', '{}'),
                 '42501', NULL, 'producer cannot insert into queue.job directly');
SELECT throws_ok($$SELECT nextval('queue.job_id_seq')$$, '42501', NULL,
                 'producer cannot use queue.job_id_seq');
SELECT throws_ok($$SELECT queue._queue_id('qt_q')$$, '42501', NULL,
                 'producer cannot call the internal helpers');
SELECT throws_ok($$SELECT queue.grant_access('qt_producer', 'admin')$$, '42501', NULL,
                 'producer cannot grant itself more');
SELECT lives_ok($$SELECT queue.publish('qt_topic', '{"p": 1}', key => 'prod')$$,
                'producer can publish');
SELECT lives_ok($$SELECT queue.publish_many('qt_topic', '[{"payload": {"p": 2}, "key": "prod"}]')$$,
                'producer can publish_many');
SELECT throws_ok($$SELECT queue.relay()$$, '42501', NULL, 'producer cannot relay');
SELECT throws_ok($$SELECT queue.create_topic('qt_producer_t')$$, '42501', NULL,
                 'producer cannot create_topic');
SELECT throws_ok($$SELECT queue.subscribe('qt_topic', queue => 'qt_q')$$, '42501', NULL,
                 'producer cannot subscribe');
SELECT throws_ok($$SELECT * FROM queue.get_event(1)$$, '42501', NULL,
                 'producer cannot get_event');
SELECT throws_ok($$SELECT payload FROM queue.event$$, '42501', NULL,
                 'producer cannot read queue.event directly');
SELECT throws_ok($$SELECT nextval('queue.event_id_seq')$$, '42501', NULL,
                 'producer cannot use queue.event_id_seq');
SELECT throws_ok($$SELECT queue._topic_id('qt_topic')$$, '42501', NULL,
                 'producer cannot call queue._topic_id');
\set psaga NULL
SELECT queue.start_saga('qt_saga', '{"who": "producer"}', idempotency_key => 'qt-p') AS psaga \gset
SELECT ok(:psaga > 0, 'producer can start_saga');
SELECT is(queue.start_saga('qt_saga', '{}', idempotency_key => 'qt-p'), :psaga::bigint,
          'producer can start_saga again with the same key (the same saga)');
SELECT throws_ok($$SELECT queue.define_saga('qt_p_saga', '[{"name": "a", "queue": "qt_s"}]')$$,
                 '42501', NULL, 'producer cannot define_saga');
SELECT throws_ok(format('SELECT queue.cancel_saga(%s)', :psaga), '42501', NULL,
                 'producer cannot cancel_saga');
SELECT throws_ok(format('SELECT * FROM queue.saga_timeline(%s)', :psaga), '42501', NULL,
                 'producer cannot read saga_timeline');
SELECT throws_ok($$SELECT input FROM queue.sagas$$, '42501', NULL,
                 'producer cannot read queue.sagas');
SELECT throws_ok($$SELECT input FROM queue.saga$$, '42501', NULL,
                 'producer cannot read queue.saga');
SELECT throws_ok($$SELECT * FROM queue.saga_stats$$, '42501', NULL,
                 'producer cannot read queue.saga_stats');
SELECT throws_ok(format('UPDATE queue.saga SET status = %L', 'completed'), '42501', NULL,
                 'producer cannot update queue.saga directly');
RESET ROLE;
SELECT is((SELECT row(status, current_step, input)::text FROM queue.sagas WHERE id = :psaga),
          '(running,one,"{""who"": ""producer""}")', 'the producer''s saga runs its first step');
SELECT is((SELECT count(*)::int FROM queue.event WHERE topic_id = :qt_topic_id AND key = 'prod'),
          2, 'the producer''s two events are in the outbox');
SELECT is((SELECT count(*)::int FROM queue.job
            WHERE queue_id = :qt_q_id AND dedup_key IN ('prod-2', 'prod-3', 'prod-4')),
          3, 'the producer''s three jobs are in queue qt_q');

-- ======================================================================
-- qt_consumer: claim, extend, release, complete, fail (and the _many)
-- ======================================================================
SET ROLE qt_consumer;
\set cjob NULL
SELECT job_id AS cjob, lease_token AS ctok FROM queue.claim('qt_c', 'qt-worker') \gset
SELECT is(:cjob::bigint, :c1::bigint, 'consumer can claim');
SELECT lives_ok(format('SELECT queue.extend(%s, %L, %L)', :cjob, :'ctok', '1 minute'),
                'consumer can extend');
SELECT lives_ok(format('SELECT queue.release(%s, %L)', :cjob, :'ctok'),
                'consumer can release');
\set cjob NULL
SELECT job_id AS cjob, lease_token AS ctok FROM queue.claim('qt_c', 'qt-worker') \gset
SELECT is(:cjob::bigint, :c1::bigint, 'consumer claims the released job again');
SELECT lives_ok(format('SELECT queue.complete(%s, %L, %L)', :cjob, :'ctok', '{"ok": true}'),
                'consumer can complete');
\set cjob NULL
SELECT job_id AS cjob, lease_token AS ctok FROM queue.claim('qt_c', 'qt-worker') \gset
SELECT is(:cjob::bigint, :c2::bigint, 'consumer claims the next job');
SELECT is(queue.fail(:cjob, :'ctok', 'boom'), 'retrying', 'consumer can fail');
\set cjob NULL
SELECT job_id AS cjob, lease_token AS ctok FROM queue.claim('qt_c', 'qt-worker') \gset
SELECT is(queue.complete_many(ARRAY[:cjob]::bigint[], ARRAY[:'ctok']::uuid[]), 1,
          'consumer can complete_many');
\set cjob NULL
SELECT job_id AS cjob, lease_token AS ctok FROM queue.claim('qt_c', 'qt-worker') \gset
SELECT is((SELECT count(*)::int FROM queue.fail_many(ARRAY[:cjob]::bigint[],
                                                     ARRAY[:'ctok']::uuid[], ARRAY['boom'])),
          1, 'consumer can fail_many');
SELECT lives_ok($$SELECT queue.backoff_delay('{}', 1)$$, 'consumer can call backoff_delay');
-- complete_and_claim: the first call (empty arrays) only claims; the next
-- completes that job and claims the next one
\set ccj1 NULL
SELECT job_id AS ccj1, lease_token AS cct1
  FROM queue.complete_and_claim('{}', '{}', 'qt_cc', 'qt-worker') \gset
SELECT is(:ccj1::bigint, :cc1::bigint, 'consumer can complete_and_claim (empty arrays: a claim)');
\set ccj2 NULL
SELECT job_id AS ccj2, lease_token AS cct2
  FROM queue.complete_and_claim(ARRAY[:ccj1]::bigint[], ARRAY[:'cct1']::uuid[], 'qt_cc', 'qt-worker',
                                results => ARRAY['{"cc": "done"}']::jsonb[]) \gset
SELECT is(:ccj2::bigint, :cc2::bigint,
          'consumer''s complete_and_claim completes its job and claims the next');
SELECT throws_ok(format('SELECT * FROM queue.complete_and_claim(ARRAY[%s]::bigint[], ARRAY[%L]::uuid[], %L, %L)',
                        :ccj2, gen_random_uuid(), 'qt_cc', 'qt-worker'),
                 'QU001', NULL, 'consumer''s complete_and_claim with a stale token is QU001');
SELECT is((SELECT count(*)::int FROM queue.claim('qt_w', 'qt-worker', 1, wait => '20 milliseconds')),
          0, 'consumer can claim with a wait (nothing due: the wait ends empty)');
SELECT is((SELECT payload FROM queue.get_job(:c1)), '{"c": 1}'::jsonb, 'consumer can get_job');
\set sjob NULL
SELECT job_id AS sjob, lease_token AS stok FROM queue.claim('qt_s', 'qt-worker') \gset
SELECT lives_ok(format('SELECT queue.complete(%s, %L, %L)', :sjob, :'stok', '{"one": 1}'),
                'consumer can complete a saga step''s job (the saga moves on as the owner)');
SELECT throws_ok($$SELECT queue.start_saga('qt_saga', '{}')$$, '42501', NULL,
                 'consumer cannot start_saga');
SELECT throws_ok($$SELECT queue._saga_job_settled(1, 0, false, 1, 1, 'completed', NULL, NULL)$$,
                 '42501', NULL, 'consumer cannot call queue._saga_job_settled');
SELECT ok(EXISTS (SELECT 1 FROM queue.list_queues() WHERE name = 'qt_c'),
          'consumer can list_queues');
SELECT throws_ok($$SELECT queue.enqueue('qt_c', '{}')$$, '42501', NULL,
                 'consumer cannot enqueue');
SELECT throws_ok($$SELECT queue.enqueue_many('qt_c', '[{"payload": {}}]')$$, '42501', NULL,
                 'consumer cannot enqueue_many');
SELECT throws_ok($$SELECT queue.enqueue_payloads('qt_c', ARRAY['{}']::jsonb[])$$, '42501', NULL,
                 'consumer cannot enqueue_payloads');
SELECT throws_ok($$SELECT queue.create_queue('qt_consumer_q')$$, '42501', NULL,
                 'consumer cannot create_queue');
SELECT throws_ok($$SELECT queue.drop_queue('qt_c', true)$$, '42501', NULL,
                 'consumer cannot drop_queue');
SELECT throws_ok($$SELECT queue.purge_queue('qt_c')$$, '42501', NULL,
                 'consumer cannot purge_queue');
SELECT throws_ok($$SELECT queue.redrive('qt_c')$$, '42501', NULL,
                 'consumer cannot redrive');
SELECT throws_ok($$SELECT payload FROM queue.job$$, '42501', NULL,
                 'consumer cannot read queue.job directly');
SELECT throws_ok($$UPDATE queue.job SET priority = 0$$, '42501', NULL,
                 'consumer cannot update queue.job directly');
SELECT throws_ok($$SELECT * FROM queue.queue_stats$$, '42501', NULL,
                 'consumer cannot read queue.queue_stats');
SELECT throws_ok($$SELECT * FROM queue.workers$$, '42501', NULL,
                 'consumer cannot read queue.workers');
SELECT throws_ok($$SELECT queue._wake(1)$$, '42501', NULL,
                 'consumer cannot call queue._wake');
SELECT throws_ok($$SELECT queue.publish('qt_topic', '{}')$$, '42501', NULL,
                 'consumer cannot publish');
SELECT throws_ok($$SELECT queue.relay()$$, '42501', NULL, 'consumer cannot relay');
SELECT throws_ok(format('SELECT queue._promote_groups(%s, ARRAY[%L])', :qt_o_id, 'g'), '42501', NULL,
                 'consumer cannot call queue._promote_groups');
RESET ROLE;
SELECT set_eq(format($$SELECT id, state, result FROM queue.jobs WHERE queue = 'qt_cc'$$),
              format($$VALUES (%s::bigint, 'completed', '{"cc": "done"}'::jsonb), (%s, 'running', NULL),
                              (%s, 'ready', NULL)$$, :cc1, :cc2, :cc3),
              'the consumer''s complete_and_claim calls show in queue.jobs (the stale one changed nothing)');
SELECT set_eq(format($$SELECT id, state FROM queue.jobs WHERE queue = 'qt_c'$$),
              format($$VALUES (%s::bigint, 'completed'), (%s, 'retrying'), (%s, 'completed'),
                              (%s, 'retrying')$$, :c1, :c2, :c3, :c4),
              'the consumer''s work shows in queue.jobs');
SELECT is((SELECT row(status, current_step, context)::text FROM queue.sagas WHERE id = :psaga),
          '(running,two,"{""one"": {""one"": 1}}")',
          'the consumer''s completion moved the producer''s saga to its second step');

-- ======================================================================
-- qt_monitor: list_queues and queue.queue, never payloads
-- ======================================================================
SET ROLE qt_monitor;
SELECT ok(EXISTS (SELECT 1 FROM queue.list_queues() WHERE name = 'qt_q'),
          'monitor can list_queues');
SELECT is((SELECT count(*)::int FROM queue.queue WHERE name IN ('qt_q', 'qt_c')), 2,
          'monitor can SELECT queue.queue');
SELECT throws_ok(format('SELECT * FROM queue.get_job(%s)', :job1), '42501', NULL,
                 'monitor cannot get_job');
SELECT throws_ok($$SELECT * FROM queue.list_jobs('qt_q')$$, '42501', NULL,
                 'monitor cannot list_jobs');
SELECT throws_ok($$SELECT * FROM queue.list_dead('qt_q')$$, '42501', NULL,
                 'monitor cannot list_dead');
SELECT throws_ok($$SELECT payload FROM queue.job$$, '42501', NULL,
                 'monitor cannot read payloads from queue.job');
SELECT throws_ok($$SELECT payload FROM queue.jobs$$, '42501', NULL,
                 'monitor cannot read payloads from queue.jobs');
SELECT throws_ok($$SELECT payload FROM queue.job_archive$$, '42501', NULL,
                 'monitor cannot read payloads from queue.job_archive');
SELECT throws_ok($$SELECT * FROM queue.claim('qt_q', 'w')$$, '42501', NULL,
                 'monitor cannot claim');
SELECT throws_ok($$SELECT * FROM queue.complete_and_claim('{}', '{}', 'qt_cc', 'w')$$, '42501', NULL,
                 'monitor cannot complete_and_claim');
SELECT throws_ok($$SELECT queue.enqueue('qt_q', '{}')$$, '42501', NULL,
                 'monitor cannot enqueue');
SELECT throws_ok($$SELECT queue.pause_queue('qt_q')$$, '42501', NULL,
                 'monitor cannot pause_queue');
SELECT throws_ok($$UPDATE queue.queue SET paused = true$$, '42501', NULL,
                 'monitor cannot update queue.queue');
-- (the two failed jobs wait out a one-second backoff: ready or retrying)
SELECT is((SELECT row(ready + retrying, scheduled, running, completed, dead, cancelled)::text
             FROM queue.queue_stats WHERE queue = 'qt_c'),
          '(2,0,0,2,0,0)', 'monitor can SELECT queue.queue_stats (the consumer''s work shows)');
SELECT is((SELECT row(completed_last_minute, failed_last_minute, waiting_claims)::text
             FROM queue.queue_stats WHERE queue = 'qt_c'),
          '(0,0,0)', 'monitor sees no throughput yet: the consumer''s transaction has not committed');
SELECT lives_ok($$SELECT * FROM queue.workers$$, 'monitor can SELECT queue.workers');
SELECT lives_ok($$SELECT * FROM queue._throughput()$$, 'monitor can call queue._throughput');
SELECT lives_ok(format('SELECT queue._waiting_claims(%s)', :qt_q_id),
                'monitor can call queue._waiting_claims');
SELECT lives_ok($$SELECT * FROM queue._worker_status()$$, 'monitor can call queue._worker_status');
SELECT throws_ok(format('SELECT queue._wake(%s)', :qt_q_id), '42501', NULL,
                 'monitor cannot call queue._wake');
SELECT throws_ok(format('SELECT queue._count_outcome(%s, 1, 0)', :qt_q_id), '42501', NULL,
                 'monitor cannot call queue._count_outcome');
SELECT throws_ok(format('SELECT queue._reset_stats(%s)', :qt_q_id), '42501', NULL,
                 'monitor cannot call queue._reset_stats');
SELECT throws_ok($$SELECT queue._reset_stats(NULL)$$, '42501', NULL,
                 'monitor cannot reset every counter');
SELECT is((SELECT row(retention, subscriptions)::text FROM queue.list_topics() WHERE name = 'qt_topic'),
          '("1 day",1)', 'monitor can list_topics');
SELECT is((SELECT row(subscription, pending, dead)::text FROM queue.topic_stats WHERE topic = 'qt_topic'),
          '(queue:qt_t,2,0)', 'monitor can SELECT queue.topic_stats (the producer''s events wait)');
SELECT is((SELECT row(group_key, head_state, blocked_jobs)::text FROM queue.blocked_groups
            WHERE queue = 'qt_o'),
          '(g,ready,1)', 'monitor can SELECT queue.blocked_groups');
SELECT throws_ok($$SELECT payload FROM queue.events$$, '42501', NULL,
                 'monitor cannot read payloads from queue.events');
SELECT throws_ok($$SELECT payload FROM queue.event_archive$$, '42501', NULL,
                 'monitor cannot read payloads from queue.event_archive');
SELECT throws_ok($$SELECT * FROM queue.get_event(1)$$, '42501', NULL,
                 'monitor cannot get_event');
SELECT throws_ok($$SELECT * FROM queue.list_subscriptions()$$, '42501', NULL,
                 'monitor cannot list_subscriptions');
SELECT throws_ok($$SELECT queue.relay()$$, '42501', NULL, 'monitor cannot relay');
SELECT throws_ok($$SELECT queue.publish('qt_topic', '{}')$$, '42501', NULL,
                 'monitor cannot publish');
SELECT is((SELECT row(running, compensating, completed, compensated, needs_attention,
                      stale_completions)::text
             FROM queue.saga_stats WHERE saga_type = 'qt_saga'),
          '(1,0,0,0,0,0)', 'monitor can SELECT queue.saga_stats');
SELECT lives_ok($$SELECT queue._saga_stale_completions(1)$$,
                'monitor can call queue._saga_stale_completions');
SELECT throws_ok($$SELECT input FROM queue.sagas$$, '42501', NULL,
                 'monitor cannot read queue.sagas (inputs are payloads)');
SELECT throws_ok($$SELECT * FROM queue.saga_event$$, '42501', NULL,
                 'monitor cannot read queue.saga_event');
SELECT throws_ok(format('SELECT * FROM queue.saga_timeline(%s)', :psaga), '42501', NULL,
                 'monitor cannot read saga_timeline');
SELECT throws_ok($$SELECT * FROM queue.list_sagas()$$, '42501', NULL,
                 'monitor cannot list_sagas');
SELECT throws_ok($$SELECT queue.start_saga('qt_saga', '{}')$$, '42501', NULL,
                 'monitor cannot start_saga');
RESET ROLE;

-- ======================================================================
-- qt_admin: everything
-- ======================================================================
SET ROLE qt_admin;
SELECT lives_ok($$SELECT queue.create_queue('qt_admin_q', max_attempts => 1)$$,
                'admin can create_queue');
SELECT lives_ok($$SELECT queue.alter_queue('qt_admin_q', lease_timeout => '1 minute')$$,
                'admin can alter_queue');
SELECT lives_ok($$SELECT queue.pause_queue('qt_admin_q')$$, 'admin can pause_queue');
SELECT lives_ok($$SELECT queue.resume_queue('qt_admin_q')$$, 'admin can resume_queue');
SELECT queue.enqueue('qt_admin_q', '{"a": 1}', priority => 10) AS a1 \gset
SELECT queue.enqueue('qt_admin_q', '{"a": 2}') AS a2 \gset
SELECT queue.enqueue('qt_admin_q', '{"a": 3}') AS a3 \gset
SELECT is((SELECT count(*)::int FROM queue.jobs WHERE queue = 'qt_admin_q'), 3,
          'admin can enqueue and SELECT queue.jobs');
\set ajob NULL
SELECT job_id AS ajob, lease_token AS atok FROM queue.claim('qt_admin_q', 'qt-admin') \gset
SELECT is(queue.fail(:ajob, :'atok', 'boom'), 'dead', 'admin can claim and fail');
SELECT is((SELECT id FROM queue.list_dead('qt_admin_q')), :a1::bigint, 'admin can list_dead');
SELECT lives_ok(format('SELECT queue.redrive(%s)', :a1), 'admin can redrive a job');
\set ajob NULL
SELECT job_id AS ajob, lease_token AS atok FROM queue.claim('qt_admin_q', 'qt-admin') \gset
SELECT is(queue.fail(:ajob, :'atok', 'boom', permanent => true), 'dead',
          'admin claims the redriven job and fails it for good');
SELECT is(queue.redrive('qt_admin_q'), 1::bigint, 'admin can redrive a queue');
SELECT lives_ok(format('SELECT queue.cancel_job(%s)', :a2), 'admin can cancel_job');
SELECT lives_ok(format('SELECT queue.delete_job(%s)', :a2), 'admin can delete_job');
SELECT lives_ok(format('SELECT queue.reschedule_job(%s, now() + interval %L)', :a3, '1 hour'),
                'admin can reschedule_job');
SELECT is((SELECT count(*)::int FROM queue.list_jobs('qt_admin_q')), 2, 'admin can list_jobs');
SELECT is(queue.purge_queue('qt_admin_q'), 2::bigint, 'admin can purge_queue');
SELECT lives_ok($$SELECT queue.prune()$$, 'admin can prune');
SELECT lives_ok($$SELECT queue.expire_leases()$$, 'admin can expire_leases');
SELECT lives_ok($$SELECT count(*) FROM queue.job$$, 'admin can SELECT queue.job');
SELECT lives_ok($$SELECT count(*) FROM queue.job_archive$$, 'admin can SELECT queue.job_archive');
SELECT lives_ok($$SELECT count(*) FROM queue.queue$$, 'admin can SELECT queue.queue');
SELECT is((SELECT row(ready, scheduled, retrying, running, completed, dead, cancelled)::text
             FROM queue.queue_stats WHERE queue = 'qt_admin_q'),
          '(0,0,0,0,0,0,0)', 'admin can SELECT queue.queue_stats (the purged queue is empty)');
SELECT lives_ok($$SELECT * FROM queue.workers$$, 'admin can SELECT queue.workers');
SELECT lives_ok($$SELECT * FROM queue._throughput()$$, 'admin can call queue._throughput');
SELECT is((SELECT payload FROM queue.get_job(:job1)), '{"n": 1}'::jsonb, 'admin can get_job');
SELECT lives_ok($$SELECT queue.drop_queue('qt_admin_q')$$, 'admin can drop_queue');
SELECT lives_ok($$SELECT queue.create_topic('qt_admin_t', retention => '1 hour')$$,
                'admin can create_topic');
SELECT lives_ok($$SELECT queue.subscribe('qt_admin_t', channel => 'qt_admin_ch')$$,
                'admin can subscribe');
SELECT is((SELECT count(*)::int FROM queue.list_subscriptions('qt_admin_t')), 1,
          'admin can list_subscriptions');
SELECT lives_ok($$SELECT queue.unsubscribe('qt_admin_t', channel => 'qt_admin_ch')$$,
                'admin can unsubscribe');
SELECT is(queue.relay(), 2, 'admin can relay (the producer''s two events)');
SELECT is((SELECT count(*)::int FROM queue.jobs WHERE queue = 'qt_t' AND group_key = 'prod'), 2,
          'the relay made a job per event in the subscribed queue');
SELECT is((SELECT string_agg(state, ',') FROM queue.events WHERE topic = 'qt_topic'),
          'relayed,relayed', 'admin can SELECT queue.events');
SELECT is((SELECT count(*)::int FROM queue.get_event(
             (SELECT min(id) FROM queue.event_archive WHERE topic_id = :qt_topic_id))), 1,
          'admin can get_event');
SELECT is(queue.retry_dead_events('qt_topic'), 0::bigint, 'admin can retry_dead_events');
SELECT lives_ok($$SELECT queue.prune_events()$$, 'admin can prune_events');
SELECT lives_ok($$SELECT count(*) FROM queue.topic JOIN queue.subscription ON true$$,
                'admin can SELECT queue.topic and queue.subscription');
SELECT lives_ok($$SELECT * FROM queue.topic_stats$$, 'admin can SELECT queue.topic_stats');
SELECT lives_ok($$SELECT * FROM queue.blocked_groups$$, 'admin can SELECT queue.blocked_groups');
SELECT lives_ok($$SELECT queue.drop_topic('qt_admin_t')$$, 'admin can drop_topic');
SELECT throws_ok($$DELETE FROM queue.event$$, '42501', NULL,
                 'admin cannot delete from queue.event directly');
SELECT throws_ok($$SELECT queue._lock_topic_name('qt_topic')$$, '42501', NULL,
                 'admin cannot call queue._lock_topic_name');
SELECT throws_ok($$INSERT INTO queue.queue (name, max_attempts, retry_policy, lease_timeout,
                                            retention, dead_retention)
                   VALUES ('qt_direct', 1, '{}', '1s', '1s', '1s')$$, '42501', NULL,
                 'admin cannot write the tables directly');
SELECT throws_ok($$DELETE FROM queue.job$$, '42501', NULL,
                 'admin cannot delete from the tables directly');
SELECT throws_ok($$SELECT queue._redrive('{}')$$, '42501', NULL,
                 'admin cannot call the internal helpers');
SELECT throws_ok(format('SELECT queue._wake(%s)', :qt_q_id), '42501', NULL,
                 'admin cannot call queue._wake');
SELECT throws_ok(format('SELECT queue._count_outcome(%s, 1, 0)', :qt_q_id), '42501', NULL,
                 'admin cannot call queue._count_outcome');
SELECT throws_ok($$SELECT queue._reset_stats(NULL)$$, '42501', NULL,
                 'admin cannot call queue._reset_stats');
SELECT throws_ok($$SELECT queue.grant_access('qt_nobody', 'producer')$$, '42501', NULL,
                 'admin cannot grant_access (that is for the extension owner)');
SELECT throws_ok($$SELECT queue.revoke_access('qt_producer', 'producer')$$, '42501', NULL,
                 'admin cannot revoke_access');
SELECT is(queue.define_saga('qt_saga', '[{"name": "one", "queue": "qt_s", "compensation_queue": "qt_su"},
                                         {"name": "two", "queue": "qt_s", "timeout": 60}]'), 2,
          'admin can define_saga (a second version)');
SELECT is((SELECT string_agg(name || ' v' || version, ',' ORDER BY version)
             FROM queue.list_sagas() WHERE name = 'qt_saga'),
          'qt_saga v1,qt_saga v2', 'admin can list_sagas');
SELECT is(queue.cancel_saga(:psaga), 'compensating', 'admin can cancel_saga');
SELECT is((SELECT string_agg(event, ',') FROM queue.saga_timeline(:psaga)),
          'started,enqueued,completed,enqueued,cancelled,cancelled,enqueued',
          'admin can read saga_timeline');
SELECT is((SELECT count(*)::int FROM queue.stuck_sagas('1 hour')), 0, 'admin can call stuck_sagas');
SELECT is((SELECT count(*)::int FROM queue.complete_and_claim('{}', '{}', 'qt_w', 'qt-admin')), 0,
          'admin can complete_and_claim (nothing due in qt_w)');
SELECT throws_ok(format('SELECT queue.retry_saga_compensation(%s)', :psaga), '55000', NULL,
                 'admin can call retry_saga_compensation (55000: the saga needs no attention)');
SELECT is(queue.expire_saga_deadlines(), 0::bigint, 'admin can expire_saga_deadlines');
SELECT is((SELECT row(status, compensating_step)::text FROM queue.sagas WHERE id = :psaga),
          '(compensating,one)', 'admin can SELECT queue.sagas');
SELECT lives_ok($$SELECT count(*) FROM queue.saga, queue.saga_definition, queue.saga_event$$,
                'admin can SELECT queue.saga, queue.saga_definition and queue.saga_event');
SELECT lives_ok($$SELECT * FROM queue.saga_stats$$, 'admin can SELECT queue.saga_stats');
SELECT throws_ok($$DELETE FROM queue.saga_definition$$, '42501', NULL,
                 'admin cannot delete from queue.saga_definition directly');
SELECT throws_ok(format('SELECT queue._saga_abort(%s, %L)', :psaga, 'x'), '42501', NULL,
                 'admin cannot call queue._saga_abort');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM queue.queue WHERE name = 'qt_admin_q'), 0,
          'the admin''s queue is gone');

-- ======================================================================
-- A hostile search_path cannot hijack the SECURITY DEFINER functions.
-- The producer owns schema evil, with look-alikes of functions and
-- operators the queue functions use; each logs its call into evil.calls.
-- The queue functions run under "evil, pg_catalog, public" (so evil even
-- shadows pg_catalog); no pgTAP function runs under that path (pgTAP
-- itself does not pin search_path): results go into psql variables.
-- ======================================================================
SELECT queue.create_queue('qt_e') AS qt_e_id \gset
SELECT queue.enqueue('qt_e', '{"e": 1}', priority => 100) AS e1 \gset
SELECT queue.enqueue('qt_e', '{"e": 2}', priority => 90) AS e2 \gset
CREATE SCHEMA evil AUTHORIZATION qt_producer;

SET ROLE qt_producer;
CREATE TABLE evil.calls (fn text NOT NULL, called_by name NOT NULL DEFAULT current_user);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT SELECT, INSERT ON evil.calls TO PUBLIC;
CREATE FUNCTION evil.trap(fn text) RETURNS void LANGUAGE sql SET search_path = pg_catalog
    AS $$INSERT INTO evil.calls (fn) VALUES (fn)$$;
CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('gen_random_uuid()'); RETURN pg_catalog.gen_random_uuid(); END$$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('now()'); RETURN pg_catalog.now(); END$$;
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('clock_timestamp()'); RETURN pg_catalog.clock_timestamp(); END$$;
CREATE FUNCTION evil.format(text, VARIADIC text[]) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('format()'); RETURN pg_catalog.format($1, VARIADIC $2); END$$;
CREATE FUNCTION evil.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('text = text'); RETURN a OPERATOR(pg_catalog.=) b; END$$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq);
CREATE FUNCTION evil.int8eq(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('bigint = bigint'); RETURN a OPERATOR(pg_catalog.=) b; END$$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.int8eq);
CREATE FUNCTION evil.int4eq(a integer, b integer) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('integer = integer'); RETURN a OPERATOR(pg_catalog.=) b; END$$;
CREATE OPERATOR evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.int4eq);
CREATE FUNCTION evil.tsle(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('timestamptz <= timestamptz'); RETURN a OPERATOR(pg_catalog.<=) b; END$$;
CREATE OPERATOR evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tsle);
CREATE FUNCTION evil.jsonbcat(a jsonb, b jsonb) RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog
    AS $$BEGIN PERFORM evil.trap('jsonb || jsonb'); RETURN a OPERATOR(pg_catalog.||) b; END$$;
CREATE OPERATOR evil.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.jsonbcat);

-- producer, under the hostile path
SET search_path = evil, pg_catalog, public;
\set ej1 NULL
\set ejm NULL
\set ejp NULL
\set elq NULL
SELECT queue.enqueue('qt_e', '{"e": 3}', dedup_key => 'evil-3') AS ej1 \gset
SELECT count(*) AS ejm FROM queue.enqueue_many('qt_e', '[{"payload": {"e": 4}}, {"payload": {"e": 5}}]') \gset
SELECT payload::text AS ejp FROM queue.get_job(:ej1) \gset
SELECT count(*) AS elq FROM queue.list_queues() \gset
\set epub NULL
\set epubm NULL
SELECT queue.publish('qt_topic', '{"e": 1}', key => 'evil', headers => '{"h": 1}') AS epub \gset
SELECT count(*) AS epubm FROM queue.publish_many('qt_topic', '[{"payload": {"e": 2}, "key": "evil"}]') \gset
\set esaga NULL
SELECT queue.start_saga('qt_saga', '{"e": 1}', idempotency_key => 'evil') AS esaga \gset
RESET search_path;
RESET ROLE;

-- consumer, under the hostile path
SET ROLE qt_consumer;
SET search_path = evil, pg_catalog, public;
\set ecj1 NULL
\set ecj2 NULL
\set eext NULL
\set efail NULL
\set ecomp NULL
SELECT job_id AS ecj1, lease_token AS ect1 FROM queue.claim('qt_e', 'evil-worker') \gset
SELECT queue.extend(:ecj1, :'ect1') IS NOT NULL AS eext \gset
SELECT queue.fail(:ecj1, :'ect1', 'boom') AS efail \gset
SELECT job_id AS ecj2, lease_token AS ect2 FROM queue.claim('qt_e', 'evil-worker') \gset
SELECT 'done' AS ecomp FROM queue.complete(:ecj2, :'ect2') \gset
\set ewait NULL
SELECT count(*) AS ewait FROM queue.claim('qt_w', 'evil-worker', 1, wait => '20 milliseconds') \gset
\set escomp NULL
SELECT job_id AS esj, lease_token AS est FROM queue.claim('qt_s', 'evil-worker') \gset
SELECT 'done' AS escomp FROM queue.complete(:esj, :'est', '{"e": true}') \gset
\set eccj NULL
SELECT job_id AS eccj FROM queue.complete_and_claim(ARRAY[:ccj2]::bigint[], ARRAY[:'cct2']::uuid[],
                                                   'qt_cc', 'evil-worker', 1, '1 minute') \gset
RESET search_path;
RESET ROLE;

-- monitor, under the hostile path
SET ROLE qt_monitor;
SET search_path = evil, pg_catalog, public;
\set emstats NULL
\set emworkers NULL
-- (the operators of this query itself are qualified: only the view is on trial)
SELECT row(ready OPERATOR(pg_catalog.+) retrying, running, completed)::text AS emstats
  FROM queue.queue_stats WHERE queue OPERATOR(pg_catalog.=) 'qt_e' \gset
SELECT count(*) AS emworkers FROM queue.workers \gset
\set emsagas NULL
SELECT row(running, stale_completions)::text AS emsagas
  FROM queue.saga_stats WHERE saga_type OPERATOR(pg_catalog.=) 'qt_saga' \gset
RESET search_path;
RESET ROLE;

-- admin, under the hostile path
SET ROLE qt_admin;
SET search_path = evil, pg_catalog, public;
\set eaq NULL
\set eaj NULL
\set eadead NULL
\set eared NULL
\set ealist NULL
\set eapurge NULL
\set eadrop NULL
SELECT queue.create_queue('qt_evil_admin', max_attempts => 1) IS NOT NULL AS eaq \gset
SELECT queue.alter_queue('qt_evil_admin', retention => '1 hour') AS v_alter \gset
SELECT queue.pause_queue('qt_evil_admin') AS v_pause \gset
SELECT queue.resume_queue('qt_evil_admin') AS v_resume \gset
SELECT queue.enqueue('qt_evil_admin', '{"ea": 1}', dedup_key => 'ea-1') AS eaj \gset
SELECT queue.enqueue('qt_evil_admin', '{"ea": 2}', delay => '1 hour') AS eaj2 \gset
SELECT job_id AS eacj, lease_token AS eact FROM queue.claim('qt_evil_admin', 'evil-admin') \gset
SELECT queue.fail(:eacj, :'eact', 'boom') AS eadead \gset
SELECT count(*) AS ealist FROM queue.list_jobs('qt_evil_admin', 'dead') \gset
SELECT count(*) AS ealistdead FROM queue.list_dead('qt_evil_admin') \gset
SELECT queue.redrive(:eacj) AS v_redrive1 \gset
SELECT job_id AS eacj, lease_token AS eact FROM queue.claim('qt_evil_admin', 'evil-admin') \gset
SELECT queue.fail(:eacj, :'eact', 'boom', permanent => true) AS v_fail2 \gset
SELECT queue.redrive('qt_evil_admin') AS eared \gset
SELECT queue.reschedule_job(:eaj2, '2100-01-01') AS v_resched \gset
SELECT queue.cancel_job(:eaj2) AS v_cancel \gset
SELECT queue.delete_job(:eaj2) AS v_delete \gset
SELECT queue.purge_queue('qt_evil_admin') AS eapurge \gset
SELECT queue.prune() AS v_prune \gset
SELECT queue.expire_leases() AS v_expire \gset
SELECT 'done' AS eadrop FROM queue.drop_queue('qt_evil_admin') \gset
\set eatopic NULL
\set earelay NULL
\set eaevents NULL
\set eatdrop NULL
SELECT queue.create_topic('qt_evil_t') IS NOT NULL AS eatopic \gset
SELECT queue.subscribe('qt_evil_t', channel => 'qt_evil_ch') AS v_sub \gset
SELECT count(*) AS v_topics FROM queue.list_topics() \gset
SELECT count(*) AS v_subs FROM queue.list_subscriptions() \gset
SELECT queue.relay() AS earelay \gset
SELECT count(*) AS eaevents FROM queue.get_event(:epub) \gset
SELECT queue.retry_dead_events('qt_topic') AS v_retry \gset
SELECT queue.prune_events() AS v_prune_events \gset
SELECT queue.unsubscribe('qt_evil_t', channel => 'qt_evil_ch') AS v_unsub \gset
SELECT 'done' AS eatdrop FROM queue.drop_topic('qt_evil_t') \gset
\set eadef NULL
\set eacancel NULL
\set eatl NULL
SELECT queue.define_saga('qt_evil_saga', '[{"name": "a", "queue": "qt_s", "timeout": 10, "deadline": 60}]') AS eadef \gset
SELECT queue.cancel_saga(:esaga) AS eacancel \gset
SELECT count(*) AS eatl FROM queue.saga_timeline(:esaga) \gset
SELECT count(*) AS v_stuck FROM queue.stuck_sagas() \gset
SELECT queue.expire_saga_deadlines() AS v_sagadl \gset
RESET search_path;
RESET ROLE;

SELECT ok(:ej1 > 0, 'hostile search_path: producer enqueue still works');
SELECT is(:ejm::int, 2, 'hostile search_path: producer enqueue_many still works');
SELECT is(:'ejp'::jsonb, '{"e": 3}'::jsonb, 'hostile search_path: producer get_job still works');
SELECT ok(:elq > 0, 'hostile search_path: producer list_queues still works');
SELECT is(:ecj1::bigint, :e1::bigint, 'hostile search_path: consumer claim still works');
SELECT is(:'eext'::text, 't', 'hostile search_path: consumer extend still works');
SELECT is(:'efail'::text, 'retrying', 'hostile search_path: consumer fail still works');
SELECT is(:ecj2::bigint, :e2::bigint, 'hostile search_path: consumer claims the next job');
SELECT is(:'ecomp'::text, 'done', 'hostile search_path: consumer complete still works');
SELECT is(:eccj::bigint, :cc3::bigint, 'hostile search_path: consumer complete_and_claim still works');
SELECT set_eq(format($$SELECT id, state FROM queue.jobs WHERE queue = 'qt_cc'$$),
              format($$VALUES (%s::bigint, 'completed'), (%s, 'completed'), (%s, 'running')$$,
                     :cc1, :cc2, :cc3),
              'hostile search_path: complete_and_claim completed the job and claimed the last one');
SELECT is(:ewait::int, 0, 'hostile search_path: consumer claim with a wait still works');
SELECT is(:'emstats'::text, '(4,0,1)', 'hostile search_path: monitor reads queue.queue_stats');
SELECT is(:emworkers::int, 0, 'hostile search_path: monitor reads queue.workers');
SELECT is(:'eaq'::text, 't', 'hostile search_path: admin create_queue still works');
SELECT is(:'eadead'::text, 'dead', 'hostile search_path: admin claim and fail still work');
SELECT is(:ealist::int, 1, 'hostile search_path: admin list_jobs still works');
SELECT is(:eared::int, 1, 'hostile search_path: admin redrive still works');
SELECT is(:eapurge::int, 1, 'hostile search_path: admin purge_queue still works');
SELECT is(:'eadrop'::text, 'done', 'hostile search_path: admin drop_queue still works');
SELECT ok(:epub > 0, 'hostile search_path: producer publish still works');
SELECT is(:epubm::int, 1, 'hostile search_path: producer publish_many still works');
SELECT is(:'eatopic'::text, 't', 'hostile search_path: admin create_topic still works');
SELECT is(:earelay::int, 2, 'hostile search_path: admin relay still works (the producer''s two events)');
SELECT is(:eaevents::int, 1, 'hostile search_path: admin get_event still works');
SELECT is(:'eatdrop'::text, 'done', 'hostile search_path: admin drop_topic still works');
SELECT ok(:esaga > 0, 'hostile search_path: producer start_saga still works');
SELECT is(:'escomp'::text, 'done', 'hostile search_path: consumer completes a saga step');
SELECT is(:'emsagas'::text, '(1,0)', 'hostile search_path: monitor reads queue.saga_stats');
SELECT is(:eadef::int, 1, 'hostile search_path: admin define_saga still works');
SELECT is(:'eacancel'::text, 'compensating', 'hostile search_path: admin cancel_saga still works');
SELECT is(:eatl::int, 7, 'hostile search_path: admin saga_timeline still works (and the saga moved)');
SELECT is_empty($$SELECT fn, called_by FROM evil.calls$$,
                'no look-alike function or operator in schema evil was called');
-- The trap is armed: with that path, unqualified calls do reach schema evil.
SET search_path = evil, pg_catalog, public;
SELECT now() IS NOT NULL AS armed1, 'a'::text = 'b'::text AS armed2,
       gen_random_uuid() IS NOT NULL AS armed3 \gset
RESET search_path;
SELECT set_eq($$SELECT DISTINCT fn FROM evil.calls$$,
              ARRAY['now()', 'text = text', 'gen_random_uuid()'],
              'the trap works: unqualified calls under that search_path do reach schema evil');

-- ======================================================================
-- Wrong arguments
-- ======================================================================
SELECT throws_ok($$SELECT queue.grant_access('qt_nobody', 'superuser')$$, '22023', NULL,
                 'grant_access: unknown access level is 22023');
SELECT throws_ok($$SELECT queue.revoke_access('qt_nobody', 'superuser')$$, '22023', NULL,
                 'revoke_access: unknown access level is 22023');
SELECT throws_ok($$SELECT queue.grant_access('qt_nobody', 'Producer')$$, '22023', NULL,
                 'grant_access: access levels are case-sensitive');
SELECT throws_ok($$SELECT queue.grant_access('qt_nobody', NULL)$$, NULL, NULL,
                 'grant_access: a NULL access level is an error');
SELECT throws_ok($$SELECT queue.grant_access(NULL, 'producer')$$, '22004', NULL,
                 'grant_access: NULL role is 22004');
SELECT throws_ok($$SELECT queue.revoke_access(NULL, 'producer')$$, '22004', NULL,
                 'revoke_access: NULL role is 22004');
SELECT throws_ok($$SELECT queue.grant_access('qt_no_such_role', 'producer')$$, '42704', NULL,
                 'grant_access: unknown role is 42704');
SELECT ok(NOT has_schema_privilege('qt_nobody', 'queue', 'USAGE'),
          'a failed grant_access leaves no USAGE behind');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_nobody', p.oid, 'EXECUTE')$$,
    'a failed grant_access leaves no EXECUTE behind');

-- ======================================================================
-- Role names that need quoting
-- ======================================================================
CREATE ROLE "qt weird""name";
SELECT lives_ok($$SELECT queue.grant_access('"qt weird""name"', 'producer')$$,
                'grant_access to a role whose name needs quotes');
SELECT ok(has_function_privilege('qt weird"name', 'queue.enqueue(text,jsonb,jsonb,timestamptz,interval,integer,text,integer,jsonb,text)', 'EXECUTE'),
          'the oddly named role may enqueue');
SELECT ok(has_schema_privilege('qt weird"name', 'queue', 'USAGE'),
          'the oddly named role has USAGE on schema queue');
SET ROLE "qt weird""name";
SELECT lives_ok($$SELECT queue.enqueue('qt_q', '{"weird": true}')$$,
                'the oddly named role can enqueue');
RESET ROLE;
SELECT lives_ok($$SELECT queue.revoke_access('"qt weird""name"', 'producer')$$,
                'revoke_access from a role whose name needs quotes');
SELECT ok(NOT has_function_privilege('qt weird"name', 'queue.enqueue(text,jsonb,jsonb,timestamptz,interval,integer,text,integer,jsonb,text)', 'EXECUTE'),
          'the oddly named role may no longer enqueue');
SELECT ok(NOT has_schema_privilege('qt weird"name', 'queue', 'USAGE'),
          'the oddly named role lost USAGE on schema queue');

CREATE ROLE "QtMixedCase";
SELECT lives_ok($$SELECT queue.grant_access('"QtMixedCase"', 'monitor')$$,
                'grant_access to a mixed-case role');
SELECT ok(has_table_privilege('QtMixedCase', 'queue.queue', 'SELECT'),
          'the mixed-case role may read queue.queue');
SELECT lives_ok($$SELECT queue.revoke_access('"QtMixedCase"', 'monitor')$$,
                'revoke_access from a mixed-case role');
SELECT ok(NOT has_table_privilege('QtMixedCase', 'queue.queue', 'SELECT'),
          'the mixed-case role may no longer read queue.queue');

-- A name that would grant to a second role if it were spliced in unquoted.
CREATE ROLE "qt_inj, qt_nobody";
SELECT lives_ok($$SELECT queue.grant_access('"qt_inj, qt_nobody"', 'admin')$$,
                'grant_access to a role whose name looks like a role list');
SELECT ok(has_function_privilege('qt_inj, qt_nobody', 'queue.drop_queue(text,boolean)', 'EXECUTE'),
          'that role got the admin functions');
SELECT ok(NOT has_function_privilege('qt_nobody', 'queue.drop_queue(text,boolean)', 'EXECUTE')
          AND NOT has_schema_privilege('qt_nobody', 'queue', 'USAGE')
          AND NOT has_table_privilege('qt_nobody', 'queue.job', 'SELECT'),
          'and qt_nobody got nothing');

-- ======================================================================
-- revoke_access takes it back
-- ======================================================================
SELECT lives_ok($$SELECT queue.revoke_access('qt_producer', 'producer')$$,
                'revoke_access(qt_producer, producer)');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_producer', p.oid, 'EXECUTE')$$,
    'the former producer may execute nothing');
SELECT ok(NOT has_schema_privilege('qt_producer', 'queue', 'USAGE'),
          'the former producer lost USAGE on schema queue (it keeps no level)');
SET ROLE qt_producer;
SELECT throws_ok($$SELECT queue.enqueue('qt_q', '{}')$$, '42501', NULL,
                 'the former producer can no longer enqueue');
RESET ROLE;

SELECT lives_ok($$SELECT queue.revoke_access('qt_monitor', 'monitor')$$,
                'revoke_access(qt_monitor, monitor)');
SELECT ok(NOT has_table_privilege('qt_monitor', 'queue.queue', 'SELECT'),
          'the former monitor may no longer read queue.queue');
SELECT ok(NOT has_table_privilege('qt_monitor', 'queue.queue_stats', 'SELECT')
          AND NOT has_table_privilege('qt_monitor', 'queue.workers', 'SELECT')
          AND NOT has_function_privilege('qt_monitor', 'queue._throughput()', 'EXECUTE')
          AND NOT has_function_privilege('qt_monitor', 'queue._waiting_claims(integer)', 'EXECUTE')
          AND NOT has_function_privilege('qt_monitor', 'queue._worker_status()', 'EXECUTE')
          AND NOT has_table_privilege('qt_monitor', 'queue.saga_stats', 'SELECT')
          AND NOT has_function_privilege('qt_monitor', 'queue._saga_stale_completions(integer)', 'EXECUTE'),
          'the former monitor may no longer read the monitoring views nor call their internals');
SELECT ok(NOT has_schema_privilege('qt_monitor', 'queue', 'USAGE'),
          'the former monitor lost USAGE on schema queue');
SET ROLE qt_monitor;
SELECT throws_ok($$SELECT * FROM queue.list_queues()$$, '42501', NULL,
                 'the former monitor can no longer list_queues');
RESET ROLE;

SELECT lives_ok($$SELECT queue.revoke_access('qt_admin', 'admin')$$,
                'revoke_access(qt_admin, admin)');
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_admin', p.oid, 'EXECUTE')$$,
    'the former admin may execute nothing');
SELECT is_empty(
    $$SELECT c.oid::regclass FROM pg_class c
       WHERE c.relnamespace = 'queue'::regnamespace
         AND CASE WHEN c.relkind IN ('r', 'v') THEN has_table_privilege('qt_admin', c.oid, 'SELECT') END$$,
    'the former admin may read no table');
SELECT ok(NOT has_schema_privilege('qt_admin', 'queue', 'USAGE'),
          'the former admin lost USAGE on schema queue');
SET ROLE qt_admin;
SELECT throws_ok($$SELECT queue.create_queue('qt_after_revoke')$$, '42501', NULL,
                 'the former admin can no longer create_queue');
RESET ROLE;

-- A role with two levels keeps the other one, in full.
CREATE ROLE qt_multi;
SELECT queue.grant_access('qt_multi', 'producer') AS v_g1 \gset
SELECT queue.grant_access('qt_multi', 'consumer') AS v_g2 \gset
SELECT lives_ok($$SELECT queue.revoke_access('qt_multi', 'consumer')$$,
                'revoke_access(qt_multi, consumer) from a producer and consumer');
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_multi', p.oid, 'EXECUTE')$$,
    ARRAY['queue.enqueue(text,jsonb,jsonb,timestamp with time zone,interval,integer,text,integer,jsonb,text)',
          'queue.enqueue_many(text,jsonb)',
          'queue.enqueue_payloads(text,jsonb[],jsonb,timestamp with time zone,interval,integer,integer,jsonb,text)',
          'queue.publish(text,jsonb,text,jsonb)',
          'queue.publish_many(text,jsonb)',
          'queue.start_saga(text,jsonb,text)',
          'queue.get_job(bigint)',
          'queue.list_queues()'],
    'revoking consumer leaves the producer level whole (get_job and list_queues are shared)');
SELECT ok(has_schema_privilege('qt_multi', 'queue', 'USAGE'),
          'a role that keeps a level keeps USAGE on schema queue');
SET ROLE qt_multi;
SELECT lives_ok($$SELECT queue.enqueue('qt_q', '{"multi": true}')$$,
                'the remaining producer can still enqueue');
SELECT throws_ok($$SELECT * FROM queue.claim('qt_q', 'w')$$, '42501', NULL,
                 'the former consumer can no longer claim');
RESET ROLE;

CREATE ROLE qt_multi2;
SELECT queue.grant_access('qt_multi2', 'monitor') AS v_g3 \gset
SELECT queue.grant_access('qt_multi2', 'admin') AS v_g4 \gset
SELECT lives_ok($$SELECT queue.revoke_access('qt_multi2', 'admin')$$,
                'revoke_access(qt_multi2, admin) from a monitor and admin');
SELECT ok(has_function_privilege('qt_multi2', 'queue.list_queues()', 'EXECUTE')
          AND has_table_privilege('qt_multi2', 'queue.queue', 'SELECT')
          AND has_schema_privilege('qt_multi2', 'queue', 'USAGE'),
          'revoking admin leaves the monitor level whole');
SELECT ok(has_table_privilege('qt_multi2', 'queue.queue_stats', 'SELECT')
          AND has_table_privilege('qt_multi2', 'queue.workers', 'SELECT')
          AND has_function_privilege('qt_multi2', 'queue._throughput()', 'EXECUTE')
          AND has_function_privilege('qt_multi2', 'queue._waiting_claims(integer)', 'EXECUTE')
          AND has_function_privilege('qt_multi2', 'queue._worker_status()', 'EXECUTE')
          AND has_table_privilege('qt_multi2', 'queue.saga_stats', 'SELECT')
          AND has_function_privilege('qt_multi2', 'queue._saga_stale_completions(integer)', 'EXECUTE'),
          'revoking admin leaves the monitoring views and their internals (shared with monitor)');
SELECT ok(NOT has_function_privilege('qt_multi2', 'queue.create_queue(text,integer,jsonb,interval,interval,interval,boolean,boolean)', 'EXECUTE')
          AND NOT has_table_privilege('qt_multi2', 'queue.job', 'SELECT')
          AND NOT has_table_privilege('qt_multi2', 'queue.sagas', 'SELECT')
          AND NOT has_function_privilege('qt_multi2', 'queue.define_saga(text,jsonb,interval)', 'EXECUTE'),
          'revoking admin takes the admin part away');

CREATE ROLE qt_multi3;
SELECT queue.grant_access('qt_multi3', 'admin') AS v_g5 \gset
SELECT queue.grant_access('qt_multi3', 'producer') AS v_g6 \gset
SELECT lives_ok($$SELECT queue.revoke_access('qt_multi3', 'admin')$$,
                'revoke_access(qt_multi3, admin) from an admin and producer');
SELECT set_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'queue'::regnamespace
         AND has_function_privilege('qt_multi3', p.oid, 'EXECUTE')$$,
    ARRAY['queue.enqueue(text,jsonb,jsonb,timestamp with time zone,interval,integer,text,integer,jsonb,text)',
          'queue.enqueue_many(text,jsonb)',
          'queue.enqueue_payloads(text,jsonb[],jsonb,timestamp with time zone,interval,integer,integer,jsonb,text)',
          'queue.publish(text,jsonb,text,jsonb)',
          'queue.publish_many(text,jsonb)',
          'queue.start_saga(text,jsonb,text)',
          'queue.get_job(bigint)',
          'queue.list_queues()'],
    'revoking admin from an admin and producer leaves exactly the producer functions');
SELECT ok(NOT has_table_privilege('qt_multi3', 'queue.queue', 'SELECT')
          AND NOT has_table_privilege('qt_multi3', 'queue.jobs', 'SELECT')
          AND has_schema_privilege('qt_multi3', 'queue', 'USAGE'),
          'and no table privileges, but USAGE on schema queue');
SELECT lives_ok($$SELECT queue.revoke_access('qt_multi3', 'producer')$$,
                'revoke_access(qt_multi3, producer), its last level');
SELECT ok(NOT has_schema_privilege('qt_multi3', 'queue', 'USAGE')
          AND NOT has_function_privilege('qt_multi3', 'queue.enqueue_many(text,jsonb)', 'EXECUTE'),
          'with its last level goes USAGE on schema queue');

-- The bookkeeping follows the role, not its name: a renamed role keeps
-- its levels, and a dropped role's rows go away.
CREATE ROLE qt_rename;
SELECT queue.grant_access('qt_rename', 'producer') AS v_g7 \gset
SELECT queue.grant_access('qt_rename', 'consumer') AS v_g8 \gset
ALTER ROLE qt_rename RENAME TO qt_renamed;
SELECT lives_ok($$SELECT queue.revoke_access('qt_renamed', 'consumer')$$,
                'revoke_access(consumer) after the role was renamed');
SELECT ok(has_function_privilege('qt_renamed', 'queue.get_job(bigint)', 'EXECUTE')
          AND has_function_privilege('qt_renamed', 'queue.enqueue_many(text,jsonb)', 'EXECUTE')
          AND NOT has_function_privilege('qt_renamed', 'queue.claim(text,text,integer,interval,interval)', 'EXECUTE')
          AND has_schema_privilege('qt_renamed', 'queue', 'USAGE'),
          'the renamed role keeps its producer level whole');
CREATE ROLE qt_gone;
SELECT queue.grant_access('qt_gone', 'admin') AS v_g9 \gset
DROP OWNED BY qt_gone;
DROP ROLE qt_gone;
SELECT lives_ok($$SELECT queue.grant_access('qt_nobody', 'monitor')$$,
                'grant_access after a granted role was dropped');
SELECT is_empty(
    $$SELECT g.* FROM queue.access_grant g
       WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = g.role_oid)$$,
    'the dropped role''s bookkeeping is gone');
SELECT lives_ok($$SELECT queue.revoke_access('qt_nobody', 'monitor')$$,
                'revoke_access(qt_nobody, monitor)');
SELECT ok(NOT has_schema_privilege('qt_nobody', 'queue', 'USAGE')
          AND NOT has_table_privilege('qt_nobody', 'queue.queue', 'SELECT'),
          'qt_nobody is back to nothing');

SELECT * FROM finish();
ROLLBACK;
