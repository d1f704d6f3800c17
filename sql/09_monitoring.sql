--
-- Monitoring views and the waiting claim's arguments.
--
SELECT setval('queue.job_id_seq', 900000);
SELECT queue.create_queue('mon', max_attempts => 2,
                          retry_policy => '{"backoff": "fixed", "delay": 3600}');

-- One job in each state.
SELECT queue.enqueue('mon', '{"n": "ready"}') AS ready_job \gset
SELECT queue.enqueue('mon', '{"n": "scheduled"}', delay => '1 hour') AS scheduled_job \gset
SELECT queue.enqueue('mon', '{"n": "cancelled"}', delay => '1 hour') AS cancelled_job \gset
SELECT queue.cancel_job(:cancelled_job);
SELECT queue.enqueue_many('mon', '[{"payload": {"n": "a"}}, {"payload": {"n": "b"}},
                                   {"payload": {"n": "c"}}, {"payload": {"n": "d"}}]');
-- claims the ready job and a, b, c (id order), leaving d ready
CREATE TEMP TABLE lease AS SELECT * FROM queue.claim('mon', 'w', 4);
SELECT count(*) FROM lease;
-- a completes, b fails (retrying for an hour), c dies
SELECT queue.complete(job_id, lease_token) FROM lease WHERE payload->>'n' = 'a';
SELECT queue.fail(job_id, lease_token, 'boom') FROM lease WHERE payload->>'n' = 'b';
SELECT queue.fail(job_id, lease_token, 'fatal', permanent => true) FROM lease WHERE payload->>'n' = 'c';
-- a completion that rolls back is not counted
BEGIN;
SELECT queue.complete(job_id, lease_token) FROM lease WHERE payload->>'n' = 'ready';
ROLLBACK;
-- the ready job's lease expires
SELECT queue.extend(job_id, lease_token, '1 millisecond') IS NOT NULL AS extended
  FROM lease WHERE payload->>'n' = 'ready';
SELECT pg_sleep(0.05);

SELECT queue, paused, ready, scheduled, retrying, running, completed, dead, cancelled,
       oldest_ready_age >= interval '0' AS has_oldest_ready_age,
       expired_leases, completed_last_minute, failed_last_minute, waiting_claims
  FROM queue.queue_stats WHERE queue = 'mon';

-- an empty queue: zeros, and no oldest ready age
SELECT queue.create_queue('mon_empty');
SELECT ready, scheduled, retrying, running, completed, dead, cancelled,
       oldest_ready_age, expired_leases, completed_last_minute, failed_last_minute
  FROM queue.queue_stats WHERE queue = 'mon_empty';

-- paused shows
SELECT queue.pause_queue('mon_empty');
SELECT paused FROM queue.queue_stats WHERE queue = 'mon_empty';

-- No worker runs here (queue.databases is empty).
SELECT count(*) FROM queue.workers;
SHOW queue.databases;

-- The settings of this release's background work and waiting claims.
SHOW queue.naptime;
SHOW queue.maintenance_batch_size;
SHOW queue.max_wait;
SHOW queue.recheck_interval;
SHOW queue.wake_slots;
SHOW queue.max_databases;

--
-- Waiting claims.
--
-- With a job ready, a waiting claim returns it at once.
SELECT payload->>'n' AS job FROM queue.claim('mon', 'w2', 1, wait => '10 seconds');
-- Nothing to claim: waits, then returns no row.
SELECT now() AS t0 \gset
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1, wait => '200 milliseconds');
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '150 milliseconds' AS waited;
-- The wait is capped by queue.max_wait.
SET queue.max_wait = '100ms';
SELECT now() AS t0 \gset
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1, wait => '1 hour');
SELECT clock_timestamp() - :'t0'::timestamptz < interval '30 seconds' AS capped;
RESET queue.max_wait;
-- A zero wait does not wait.
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1, wait => '0');
-- Bad waits.
\set VERBOSITY default
SELECT * FROM queue.claim('mon', 'w2', 1, wait => '-1 second');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM queue.claim('mon_empty', 'w2', 1, wait => '1 second');
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT * FROM queue.claim('mon_empty', 'w2', 1, wait => '1 second');
ROLLBACK;
-- Without a wait, REPEATABLE READ claims as before.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1);
ROLLBACK;

SELECT queue.drop_queue('mon', force => true);
SELECT queue.drop_queue('mon_empty');
