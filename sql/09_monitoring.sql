--
-- Monitoring views and the waiting claim's arguments.
--
\set SHOW_CONTEXT never
SELECT setval('queue.job_id_seq', 900000);
SELECT queue.create_queue('mon', max_attempts => 2,
                          retry_policy => '{"backoff": "fixed", "delay": 3600}') AS mon_id \gset

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

-- ready: d; scheduled; retrying: b; running: the ready job, whose lease
-- expired; one each completed (a), dead (c) and cancelled.  Both failures
-- count (b's retry and c's death); the rolled-back completion does not.
SELECT queue, paused, ready, scheduled, retrying, running, completed, dead, cancelled,
       oldest_ready_age >= interval '0' AS has_oldest_ready_age,
       expired_leases, completed_last_minute, failed_last_minute, waiting_claims
  FROM queue.queue_stats WHERE queue = 'mon';
-- the oldest ready job is d, enqueued a moment ago (the running job with
-- the expired lease is not ready)
SELECT oldest_ready_age < interval '1 minute' AS oldest_ready_is_recent
  FROM queue.queue_stats WHERE queue = 'mon';
-- the same figures straight from the internal functions
SELECT completed_last_minute, failed_last_minute
  FROM queue._throughput() WHERE queue_id = :mon_id;
SELECT queue._waiting_claims(:mon_id);

-- an empty queue: zeros, and no oldest ready age
SELECT queue.create_queue('mon_empty') AS mon_empty_id \gset
SELECT ready, scheduled, retrying, running, completed, dead, cancelled,
       oldest_ready_age, expired_leases, completed_last_minute, failed_last_minute
  FROM queue.queue_stats WHERE queue = 'mon_empty';
-- a queue without counters has no row in _throughput
SELECT count(*) FROM queue._throughput() WHERE queue_id = :mon_empty_id;

-- paused shows
SELECT queue.pause_queue('mon_empty');
SELECT paused FROM queue.queue_stats WHERE queue = 'mon_empty';

--
-- oldest_ready_age is the age of the earliest due run_at: for a queue whose
-- ready jobs are old, it is their age, not the time they were enqueued.
-- Scheduled jobs do not count.
--
SELECT queue.create_queue('mon_old') AS mon_old_id \gset
SELECT queue.enqueue('mon_old', '{"o": 1}', run_at => now() - interval '2 hours') AS old1 \gset
SELECT queue.enqueue('mon_old', '{"o": 2}', run_at => now() - interval '1 hour') AS old2 \gset
SELECT queue.enqueue('mon_old', '{"o": 3}', delay => '1 day') AS old3 \gset
SELECT ready, scheduled, retrying, running,
       oldest_ready_age >= interval '2 hours'
         AND oldest_ready_age < interval '2 hours 1 minute' AS oldest_ready_is_2h
  FROM queue.queue_stats WHERE queue = 'mon_old';
-- reschedule_job moves the scheduled job three hours into the past: it is
-- the oldest ready job now
SELECT queue.reschedule_job(:old3, now() - interval '3 hours');
SELECT ready, scheduled,
       oldest_ready_age >= interval '3 hours'
         AND oldest_ready_age < interval '3 hours 1 minute' AS oldest_ready_is_3h
  FROM queue.queue_stats WHERE queue = 'mon_old';
-- once claimed, a job is running, not ready: the next oldest counts
SELECT payload->>'o' AS claimed FROM queue.claim('mon_old', 'w', 1);
SELECT ready, running,
       oldest_ready_age >= interval '2 hours'
         AND oldest_ready_age < interval '2 hours 1 minute' AS oldest_ready_is_2h
  FROM queue.queue_stats WHERE queue = 'mon_old';

--
-- Throughput: complete_many counts each job of the batch, fail_many each
-- failure, expire_leases each death; completions and deaths count even
-- when the queue keeps nothing (retention and dead_retention zero); a
-- rolled-back savepoint counts nothing.
--
SELECT queue.create_queue('mon_batch', max_attempts => 1, retention => '0',
                          dead_retention => '0') AS mon_batch_id \gset
SELECT count(*) FROM queue.enqueue_many('mon_batch',
    '[{"payload": {"b": 1}}, {"payload": {"b": 2}}, {"payload": {"b": 3}},
      {"payload": {"b": 4}}, {"payload": {"b": 5}}, {"payload": {"b": 6}}]');
CREATE TEMP TABLE blease AS SELECT * FROM queue.claim('mon_batch', 'w', 5);
-- b6 gets a lease that runs out at once, on its last attempt
INSERT INTO blease SELECT * FROM queue.claim('mon_batch', 'w', 1, lease => '1 millisecond');
SELECT payload->>'b' AS b, attempt, max_attempts FROM blease ORDER BY job_id;
SELECT queue.complete_many(array_agg(job_id ORDER BY job_id), array_agg(lease_token ORDER BY job_id))
  FROM blease WHERE payload->>'b' IN ('1', '2', '3');
SELECT f.state FROM blease b,
       LATERAL queue.fail_many(ARRAY[b.job_id], ARRAY[b.lease_token], ARRAY['boom']) f
 WHERE b.payload->>'b' = '4';
BEGIN;
SAVEPOINT s;
SELECT queue.complete(job_id, lease_token) FROM blease WHERE payload->>'b' = '5';
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT pg_sleep(0.05);
SELECT running, expired_leases, completed, dead, completed_last_minute, failed_last_minute
  FROM queue.queue_stats WHERE queue = 'mon_batch';
-- b6 dies of its expired lease: one more failure
SELECT queue.expire_leases();
SELECT running, expired_leases, completed, dead, completed_last_minute, failed_last_minute
  FROM queue.queue_stats WHERE queue = 'mon_batch';
-- b5 is still running, its completion was rolled back
SELECT state FROM queue.jobs j JOIN blease b ON b.job_id = j.id WHERE b.payload->>'b' = '5';
-- a drop_queue that rolls back keeps the counters ...
BEGIN;
SELECT queue.drop_queue('mon_batch', force => true);
ROLLBACK;
SELECT completed_last_minute, failed_last_minute
  FROM queue.queue_stats WHERE queue = 'mon_batch';
-- ... and one that commits forgets them
SELECT queue.drop_queue('mon_batch', force => true);
SELECT count(*) FROM queue._throughput() WHERE queue_id = :mon_batch_id;

-- One transaction settling jobs of 40 queues counts every one of them
-- (wake-ups note at most 32 queues per transaction; the counters have no
-- such limit): 40 completions and 40 failures, one of each per queue.
SELECT count(queue.create_queue('mon_many_' || i, max_attempts => 1))
  FROM generate_series(1, 40) i;
SELECT count(*) AS jobs FROM generate_series(1, 40) i,
       LATERAL queue.enqueue_many('mon_many_' || i, '[{"payload": {"k": "c"}}, {"payload": {"k": "f"}}]') e;
CREATE TEMP TABLE many_leases AS
SELECT c.* FROM generate_series(1, 40) i, LATERAL queue.claim('mon_many_' || i, 'w', 2) c;
BEGIN;
SELECT queue.complete_many(array_agg(job_id ORDER BY job_id), array_agg(lease_token ORDER BY job_id))
  FROM many_leases WHERE payload->>'k' = 'c';
SELECT count(*) AS dead FROM many_leases l,
       LATERAL queue.fail_many(ARRAY[l.job_id], ARRAY[l.lease_token], ARRAY['boom']) f
 WHERE l.payload->>'k' = 'f' AND f.state = 'dead';
COMMIT;
SELECT pg_sleep(0.05);
SELECT count(*) AS queues, min(completed_last_minute) AS min_completed,
       max(completed_last_minute) AS max_completed, min(failed_last_minute) AS min_failed,
       max(failed_last_minute) AS max_failed
  FROM queue.queue_stats WHERE queue LIKE 'mon\_many\_%';
SELECT count(queue.drop_queue('mon_many_' || i, force => true)) FROM generate_series(1, 40) i;

-- No worker runs here (queue.databases is empty).
SELECT count(*) FROM queue.workers;
SELECT count(*) FROM queue._worker_status();
SHOW queue.databases;

--
-- The settings of this release's background work and waiting claims.
--
SHOW queue.naptime;
SHOW queue.maintenance_batch_size;
SHOW queue.max_wait;
SHOW queue.recheck_interval;
SHOW queue.wake_slots;
SHOW queue.max_databases;
-- queue.databases, naptime and maintenance_batch_size are read at reload,
-- wake_slots and max_databases at server start: no session changes them.
SET queue.databases = 'postgres';
\echo sqlstate: :LAST_ERROR_SQLSTATE
SET queue.naptime = '5s';
\echo sqlstate: :LAST_ERROR_SQLSTATE
SET queue.maintenance_batch_size = 10;
\echo sqlstate: :LAST_ERROR_SQLSTATE
SET queue.wake_slots = 2048;
\echo sqlstate: :LAST_ERROR_SQLSTATE
SET queue.max_databases = 4;
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- bounds
SET queue.max_wait = -1;
SET queue.max_wait = '2h';
SET queue.recheck_interval = '5ms';
SET queue.recheck_interval = '2h';
-- an ordinary role may set recheck_interval, but not max_wait
CREATE ROLE regress_queue_mon_plain;
SET ROLE regress_queue_mon_plain;
SET queue.recheck_interval = '1s';
SHOW queue.recheck_interval;
SET queue.max_wait = '1h';
\echo sqlstate: :LAST_ERROR_SQLSTATE
SHOW queue.max_wait;
RESET queue.recheck_interval;
RESET ROLE;
DROP ROLE regress_queue_mon_plain;

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
-- A zero wait does not wait, nor does a NULL one.
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1, wait => '0');
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1, wait => NULL);
-- Bad waits.
\set VERBOSITY default
SELECT * FROM queue.claim('mon', 'w2', 1, wait => '-1 second');
\echo sqlstate: :LAST_ERROR_SQLSTATE
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM queue.claim('mon_empty', 'w2', 1, wait => '1 second');
\echo sqlstate: :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT * FROM queue.claim('mon_empty', 'w2', 1, wait => '1 second');
ROLLBACK;
-- Without a wait, or with a zero one, REPEATABLE READ claims as before.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1);
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1, wait => '0');
ROLLBACK;

-- A paused queue hands out nothing, even to a waiting claim ...
SELECT queue.enqueue('mon_empty', '{"n": "paused"}') AS paused_job \gset
SELECT count(*) FROM queue.claim('mon_empty', 'w2', 1, wait => '100 milliseconds');
-- ... until resume_queue.
SELECT queue.resume_queue('mon_empty');
SELECT payload->>'n' AS job FROM queue.claim('mon_empty', 'w2', 1, wait => '10 seconds');

-- A waiting claim wakes when the next job falls due, not only at the
-- re-check interval (here an hour).
SET queue.recheck_interval = '1h';
SELECT clock_timestamp() AS t0 \gset
SELECT queue.enqueue('mon_empty', '{"n": "soon"}', delay => '300 milliseconds') AS soon_job \gset
SELECT payload->>'n' AS job FROM queue.claim('mon_empty', 'w2', 1, wait => '10 seconds');
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '300 milliseconds' AS not_before_due,
       clock_timestamp() - :'t0'::timestamptz < interval '5 seconds' AS woke_when_due;
RESET queue.recheck_interval;

-- redrive and reschedule_job (which wake waiting claims) still work: c
-- comes back from the dead letters, and the claim also takes the ready
-- job, whose lease expired earlier (its run_at, the expiry, is older).
SELECT queue.redrive('mon');
SELECT payload->>'n' AS job, attempt
  FROM queue.claim('mon', 'w2', 5, wait => '10 seconds');
SELECT queue.reschedule_job(:scheduled_job, now());
SELECT payload->>'n' AS job, attempt
  FROM queue.claim('mon', 'w2', 5, wait => '10 seconds');
SELECT ready, scheduled, retrying, running, completed, dead, cancelled, expired_leases
  FROM queue.queue_stats WHERE queue = 'mon';

SELECT queue.drop_queue('mon', force => true);
SELECT queue.drop_queue('mon_empty', force => true);
SELECT queue.drop_queue('mon_old', force => true);
SELECT count(*) FROM queue._throughput() WHERE queue_id IN (:mon_id, :mon_empty_id, :mon_old_id);
