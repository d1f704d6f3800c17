--
-- 17_queue_cache: every backend caches the queues it looks up by name
-- (enqueue, enqueue_many, claim, complete_and_claim, the relay), and a
-- statement trigger on queue.queue (queue_changed) invalidates the caches
-- with every change.  In this one session, which caches each queue at its
-- first use, every later call must see every change at once: a new
-- max_attempts or lease_timeout, a pause and a resume, a queue dropped and
-- created again under the same name (a new id), a queue dropped for good;
-- and a change that rolls back (a transaction or a savepoint) must be
-- forgotten with it.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 1700001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 1700000);

-- try(statement) runs a statement and shows its outcome: 'ok', or the
-- error's SQLSTATE and message.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	RETURN st || ': ' || msg;
END;
$$;
-- The queue a job went into, by the queue's name and by whether its id is
-- the queue's id now (a job inserted under a dropped queue's id would show
-- current = f, or no name at all).
CREATE FUNCTION pg_temp.job(job_id bigint)
RETURNS TABLE (id bigint, queue text, current boolean, state text, max_attempts integer)
LANGUAGE sql AS $$
	SELECT j.id, q.name, j.queue_id = queue._queue_id('q17'), j.state, j.max_attempts
	  FROM queue.job j LEFT JOIN queue.queue q ON q.id = j.queue_id
	 WHERE j.id = job_id;
$$;

SELECT queue.create_queue('q17', max_attempts => 3) AS q17_first \gset
-- The first enqueue and claim fill the cache.
SELECT queue.enqueue('q17', '{"n": 1}');
SELECT * FROM pg_temp.job(1700001);
SELECT job_id, max_attempts FROM queue.claim('q17', 'w17');

--
-- alter_queue: the next job takes the new max_attempts, the next claim
-- the new lease_timeout.
--
SELECT queue.alter_queue('q17', max_attempts => 7, lease_timeout => '1 hour');
SELECT queue.enqueue('q17', '{"n": 2}');
SELECT * FROM pg_temp.job(1700002);
SELECT job_id, max_attempts,
       lease_expires_at BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes' AS one_hour_lease
  FROM queue.claim('q17', 'w17');
-- enqueue_many too
SELECT count(*) FROM queue.enqueue_many('q17', '[{"payload": {"n": 3}}, {"payload": {"n": 4}}]');
SELECT * FROM pg_temp.job(1700003) UNION ALL SELECT * FROM pg_temp.job(1700004);

--
-- pause_queue: claim and complete_and_claim hand out nothing; enqueue
-- still works.  resume_queue: they claim again.
--
SELECT queue.pause_queue('q17');
SELECT count(*) AS claimed FROM queue.claim('q17', 'w17');
SELECT count(*) AS claimed FROM queue.complete_and_claim('{}', '{}', 'q17', 'w17', 10);
SELECT queue.enqueue('q17', '{"n": 5}');
SELECT queue.resume_queue('q17');
SELECT job_id FROM queue.claim('q17', 'w17');
SELECT job_id FROM queue.complete_and_claim('{}', '{}', 'q17', 'w17');

--
-- A change made with plain SQL on queue.queue goes through the trigger too.
--
UPDATE queue.queue SET paused = true WHERE name = 'q17';
SELECT count(*) AS claimed FROM queue.claim('q17', 'w17');
UPDATE queue.queue SET paused = false, max_attempts = 4 WHERE name = 'q17';
SELECT queue.enqueue('q17', '{"n": 6}');
SELECT * FROM pg_temp.job(1700006);

--
-- drop_queue and create_queue under the same name: a new queue (a new id,
-- its own settings).  The next enqueue goes into the new queue, and the
-- claim finds only the new queue's job.
--
SELECT queue.drop_queue('q17', force => true);
SELECT queue.create_queue('q17', max_attempts => 2) AS q17_second \gset
SELECT :q17_second <> :q17_first AS new_id;
SELECT queue.enqueue('q17', '{"n": 7}');
SELECT * FROM pg_temp.job(1700007);
SELECT job_id, max_attempts FROM queue.claim('q17', 'w17', 10);
SELECT count(*) AS jobs_of_no_queue FROM queue.job j
 WHERE NOT EXISTS (SELECT 1 FROM queue.queue q WHERE q.id = j.queue_id);

--
-- Dropped for good: the name is unknown to enqueue, claim and
-- complete_and_claim.
--
SELECT queue.drop_queue('q17', force => true);
SELECT pg_temp.try($$SELECT queue.enqueue('q17', '{}')$$);
SELECT pg_temp.try($$SELECT queue.enqueue_many('q17', '[{"payload": {}}]')$$);
SELECT pg_temp.try($$SELECT * FROM queue.claim('q17', 'w17')$$);
SELECT pg_temp.try($$SELECT * FROM queue.complete_and_claim('{}', '{}', 'q17', 'w17')$$);

--
-- A queue created in a transaction that rolls back: used (and cached)
-- inside it, unknown after it.
--
BEGIN;
SELECT queue.create_queue('q17', max_attempts => 9) > 0 AS created;
SELECT queue.enqueue('q17', '{"n": 8}');
SELECT * FROM pg_temp.job(1700008);
SELECT job_id FROM queue.claim('q17', 'w17');
ROLLBACK;
SELECT pg_temp.try($$SELECT queue.enqueue('q17', '{}')$$);
SELECT pg_temp.try($$SELECT * FROM queue.claim('q17', 'w17')$$);
SELECT count(*) AS jobs_of_no_queue FROM queue.job j
 WHERE NOT EXISTS (SELECT 1 FROM queue.queue q WHERE q.id = j.queue_id);

--
-- An alter_queue or a pause that rolls back: the old settings come back.
--
SELECT queue.create_queue('q17', max_attempts => 3) AS q17_third \gset
SELECT queue.enqueue('q17', '{"n": 9}') AS j9 \gset
SELECT * FROM pg_temp.job(:j9);
BEGIN;
SELECT queue.alter_queue('q17', max_attempts => 8);
SELECT queue.pause_queue('q17');
SELECT queue.enqueue('q17', '{"n": 10}') AS j10 \gset
SELECT * FROM pg_temp.job(:j10);
SELECT count(*) AS claimed FROM queue.claim('q17', 'w17');
ROLLBACK;
SELECT queue.enqueue('q17', '{"n": 11}') AS j11 \gset
SELECT * FROM pg_temp.job(:j11);
SELECT job_id = :j9 AS claims_j9 FROM queue.claim('q17', 'w17');

--
-- Savepoints.  drop_queue rolled back to a savepoint: the queue (same id,
-- same jobs) is usable again in the same transaction and after it.
--
BEGIN;
SELECT queue.enqueue('q17', '{"n": 12}') AS j12 \gset
SAVEPOINT before_drop;
SELECT queue.drop_queue('q17', force => true);
SELECT pg_temp.try($$SELECT queue.enqueue('q17', '{}')$$);
ROLLBACK TO SAVEPOINT before_drop;
SELECT queue.enqueue('q17', '{"n": 13}') AS j13 \gset
SELECT * FROM pg_temp.job(:j12) UNION ALL SELECT * FROM pg_temp.job(:j13);
SELECT job_id = :j11 AS claims_j11 FROM queue.claim('q17', 'w17');
COMMIT;
SELECT queue._queue_id('q17') = :q17_third AS same_queue;
SELECT queue.enqueue('q17', '{"n": 14}') AS j14 \gset
SELECT * FROM pg_temp.job(:j14);
-- drop and create again under a savepoint that rolls back: the old queue
-- comes back, and so do its settings.
BEGIN;
SAVEPOINT s1;
SELECT queue.drop_queue('q17', force => true);
SELECT queue.create_queue('q17', max_attempts => 6) AS q17_tmp \gset
SELECT queue.enqueue('q17', '{"n": 15}') AS j15 \gset
SELECT * FROM pg_temp.job(:j15);
ROLLBACK TO SAVEPOINT s1;
SELECT queue.enqueue('q17', '{"n": 16}') AS j16 \gset
SELECT * FROM pg_temp.job(:j16);
SELECT count(*) AS j15_gone FROM queue.job WHERE id = :j15;
COMMIT;
-- A savepoint released after an alter_queue keeps it.
BEGIN;
SAVEPOINT s2;
SELECT queue.alter_queue('q17', max_attempts => 5);
RELEASE SAVEPOINT s2;
SELECT queue.enqueue('q17', '{"n": 17}') AS j17 \gset
COMMIT;
SELECT queue.enqueue('q17', '{"n": 18}') AS j18 \gset
SELECT * FROM pg_temp.job(:j17) UNION ALL SELECT * FROM pg_temp.job(:j18);
-- Dropped and created again inside one transaction, then committed (j19
-- went with the old queue).
BEGIN;
SELECT queue.enqueue('q17', '{"n": 19}') AS j19 \gset
SELECT queue.drop_queue('q17', force => true);
SELECT queue.create_queue('q17', max_attempts => 1) AS q17_fourth \gset
SELECT queue.enqueue('q17', '{"n": 20}') AS j20 \gset
COMMIT;
SELECT queue.enqueue('q17', '{"n": 21}') AS j21 \gset
SELECT :q17_fourth <> :q17_third AS new_id;
SELECT * FROM pg_temp.job(:j19) UNION ALL SELECT * FROM pg_temp.job(:j20)
 UNION ALL SELECT * FROM pg_temp.job(:j21);

--
-- The relay looks queues up through the same cache: after an alter_queue
-- of a subscription's queue, the next event's job takes the new setting.
--
SELECT queue.create_topic('t17') > 0 AS created;
SELECT queue.subscribe('t17', queue => 'q17') > 0 AS subscribed;
SELECT queue.publish('t17', '{"e": 1}') > 0 AS published;
SELECT queue.relay();
SELECT queue.alter_queue('q17', max_attempts => 11);
SELECT queue.publish('t17', '{"e": 2}') > 0 AS published;
SELECT queue.relay();
SELECT payload, max_attempts, queue_id = queue._queue_id('q17') AS current
  FROM queue.job WHERE payload ? 'e' ORDER BY id;

--
-- REPEATABLE READ bypasses the cache: the transaction sees the queue as
-- its snapshot does (here, its own change).
--
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT queue.alter_queue('q17', max_attempts => 12);
SELECT queue.enqueue('q17', '{"n": 22}') AS j22 \gset
SELECT * FROM pg_temp.job(:j22);
ROLLBACK;
SELECT queue.enqueue('q17', '{"n": 23}') AS j23 \gset
SELECT * FROM pg_temp.job(:j23);

--
-- With the trigger disabled nothing is cached: a change made then (which
-- fires no trigger) is seen at once all the same.  Enabled again, the
-- cache is back, and kept true.
--
ALTER TABLE queue.queue DISABLE TRIGGER queue_changed;
SELECT queue.enqueue('q17', '{"n": 24}') AS j24 \gset
SELECT queue.enqueue('q17', '{"n": 25}') AS j25 \gset
UPDATE queue.queue SET max_attempts = 13 WHERE name = 'q17';
SELECT queue.enqueue('q17', '{"n": 26}') AS j26 \gset
SELECT * FROM pg_temp.job(:j25) UNION ALL SELECT * FROM pg_temp.job(:j26);
ALTER TABLE queue.queue ENABLE ALWAYS TRIGGER queue_changed;
SELECT queue.enqueue('q17', '{"n": 27}') AS j27 \gset
SELECT queue.alter_queue('q17', max_attempts => 14);
SELECT queue.enqueue('q17', '{"n": 28}') AS j28 \gset
SELECT * FROM pg_temp.job(:j27) UNION ALL SELECT * FROM pg_temp.job(:j28);

--
-- The trigger fires ALWAYS: a change made under session_replication_role =
-- replica (as by a logical replication apply) reaches the cache too, and a
-- trigger that fires for origin sessions only turns the cache off.
--
SELECT tgenabled FROM pg_trigger WHERE tgname = 'queue_changed';
SELECT queue.enqueue('q17', '{"n": 40}') AS j40 \gset
SELECT count(*) AS claimed_before_replica_pause FROM queue.claim('q17', 'w17', 1, lease => '1 hour');
SET session_replication_role = replica;
SELECT queue.pause_queue('q17');
SELECT queue.enqueue('q17', '{"n": 41}') AS j41 \gset
SELECT count(*) AS claimed_while_paused_in_replica_mode FROM queue.claim('q17', 'w17', 10);
RESET session_replication_role;
SELECT queue.resume_queue('q17');
-- Enabled for origin sessions only, the trigger would miss the replica
-- mode's changes, so nothing is cached: the pause is still seen.
ALTER TABLE queue.queue ENABLE TRIGGER queue_changed;
SELECT queue.enqueue('q17', '{"n": 42}') AS j42 \gset
SET session_replication_role = replica;
SELECT queue.pause_queue('q17');
SELECT queue.alter_queue('q17', max_attempts => 16);
RESET session_replication_role;
SELECT queue.enqueue('q17', '{"n": 43}') AS j43 \gset
SELECT count(*) AS claimed_while_paused_origin_trigger FROM queue.claim('q17', 'w17', 10);
SELECT * FROM pg_temp.job(:j42) UNION ALL SELECT * FROM pg_temp.job(:j43);
SELECT queue.resume_queue('q17');
ALTER TABLE queue.queue ENABLE ALWAYS TRIGGER queue_changed;

--
-- A prepared transaction: its alter_queue (used, and cached, inside it) is
-- not committed until COMMIT PREPARED, and this session, which prepared it,
-- must not go on seeing it before; after COMMIT PREPARED it must.
--
BEGIN;
SELECT queue.alter_queue('q17', max_attempts => 15);
SELECT queue.enqueue('q17', '{"n": 29}') AS j29 \gset
PREPARE TRANSACTION 'q17_alter';
SELECT queue.enqueue('q17', '{"n": 30}') AS j30 \gset
SELECT * FROM pg_temp.job(:j30);
COMMIT PREPARED 'q17_alter';
SELECT queue.enqueue('q17', '{"n": 31}') AS j31 \gset
SELECT * FROM pg_temp.job(:j29) UNION ALL SELECT * FROM pg_temp.job(:j31);

-- No job was ever inserted under a queue id that is not a queue's.
SELECT count(*) AS jobs_of_no_queue FROM queue.job j
 WHERE NOT EXISTS (SELECT 1 FROM queue.queue q WHERE q.id = j.queue_id);

-- Clean up.
SELECT queue.drop_topic('t17', force => true);
SELECT queue.drop_queue('q17', force => true);
