--
-- 03_claim: which jobs a claim hands out, in what order, with what lease,
-- and the checks on its arguments.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 300001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 300000);
SELECT queue.create_queue('q03', max_attempts => 3, lease_timeout => '40 seconds') > 0 AS created;

-- Claim order: priority (higher first), then run_at (earlier first), then id.
SELECT count(*) AS enqueued FROM queue.enqueue_many('q03', '[
  {"payload": {"n": 1}},
  {"payload": {"n": 2}, "priority": 5},
  {"payload": {"n": 3}, "run_at": "2001-01-01 00:00:00+00"},
  {"payload": {"n": 4}, "priority": 5, "run_at": "2000-01-01 00:00:00+00"},
  {"payload": {"n": 5}, "priority": -1, "run_at": "1999-01-01 00:00:00+00"},
  {"payload": {"n": 6}, "run_at": "2001-01-01 00:00:00+00"},
  {"payload": {"n": 7}, "priority": 10, "delay": "1 hour"}
]');
-- A batch claim returns its jobs in that order, across priorities, never
-- more than asked.
SELECT job_id, payload, priority, attempt, max_attempts
  FROM queue.claim('q03', 'worker-a', 3);
SELECT job_id, payload, priority FROM queue.claim('q03', 'worker-a', 2);
-- Job 7 is scheduled an hour ahead: not claimable yet, even with its high
-- priority; so only job 5 is left, though five are asked.
SELECT job_id, payload, priority FROM queue.claim('q03', 'worker-b', 5);
SELECT count(*) AS claimed FROM queue.claim('q03', 'worker-b', 5);
SELECT id, state FROM queue.get_job(300007);
-- Due (here: rescheduled to now), it is claimable.
SELECT queue.reschedule_job(300007, now());
SELECT job_id, payload FROM queue.claim('q03', 'worker-b');

-- What a claim returns, and what it records: the attempt (counting from
-- 1), the worker, the lease token, and the lease expiry, which is the
-- queue's lease_timeout after the claim unless the claim gives its own.
SELECT queue.create_queue('q03_lease', max_attempts => 2, lease_timeout => '40 seconds') > 0 AS created;
SELECT queue.enqueue('q03_lease', '{"n": 1}', headers => '{"h": 1}', priority => 2,
                     dedup_key => 'key-1');
SELECT queue.enqueue('q03_lease', '{"n": 2}');
CREATE TEMP TABLE c1 AS SELECT * FROM queue.claim('q03_lease', 'worker-c');
SELECT c1.job_id, c1.lease_token IS NOT NULL AS has_token, c1.payload, c1.headers,
       c1.attempt, c1.max_attempts, c1.priority, c1.dedup_key,
       c1.enqueued_at = j.created_at AS enqueued_at_ok,
       c1.lease_token = j.lease_token AS token_stored
  FROM c1 JOIN queue.job j ON j.id = c1.job_id;
SELECT j.id, j.state, j.attempts, j.worker, j.lease_expires_at - j.claimed_at AS lease,
       j.lease_expires_at = c1.lease_expires_at AS same_expiry,
       j.claimed_at <= clock_timestamp() AS claimed_in_past, j.run_at
  FROM c1, queue.get_job(c1.job_id) j;
-- An explicit lease overrides the queue's.
CREATE TEMP TABLE c2 AS SELECT * FROM queue.claim('q03_lease', 'worker-d', lease => '5 minutes');
SELECT j.id, j.worker, j.lease_expires_at - j.claimed_at AS lease
  FROM c2, queue.get_job(c2.job_id) j;
-- Every claim hands out a different token.
SELECT (SELECT lease_token FROM c1) <> (SELECT lease_token FROM c2) AS tokens_differ;
-- A running job is not claimed again while its lease holds.
SELECT count(*) AS claimed FROM queue.claim('q03_lease', 'worker-e', 10);

-- Attempts count claims: the failed first attempt is spent, so the next
-- claim of that job is attempt 2 (of 2), by its new worker.
SELECT queue.fail(job_id, lease_token, 'first try failed', retry_delay => '0')
  FROM c1;
SELECT job_id, attempt, max_attempts FROM queue.claim('q03_lease', 'worker-e');
SELECT attempts, worker FROM queue.get_job(300008);

-- A paused queue hands out nothing; resumed, it does.
SELECT queue.enqueue('q03_lease', '{"n": 3}');
SELECT queue.pause_queue('q03_lease');
SELECT count(*) AS claimed_while_paused FROM queue.claim('q03_lease', 'worker-f');
SELECT queue.resume_queue('q03_lease');
SELECT payload FROM queue.claim('q03_lease', 'worker-f');

-- An empty queue returns no rows.
SELECT queue.create_queue('q03_empty') > 0 AS created;
SELECT count(*) AS claimed FROM queue.claim('q03_empty', 'worker-g', 100);

-- Worker names: any text of 1 to 128 bytes.
SELECT count(*) FROM queue.claim('q03_empty', repeat('w', 128));
SELECT count(*) FROM queue.claim('q03_empty', 'any text, even this: ''; DROP TABLE x; --');
SELECT queue.claim('q03_empty', repeat('w', 129));
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.claim('q03_empty', '');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.claim('q03_empty', NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE

-- batch_size: 1 to queue.max_batch_size.
SELECT queue.claim('q03_empty', 'w', 0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.claim('q03_empty', 'w', -1);
SELECT queue.claim('q03_empty', 'w', 10001);
SELECT queue.claim('q03_empty', 'w', NULL);
SELECT count(*) FROM queue.claim('q03_empty', 'w', 10000);
SET queue.max_batch_size = 5;
SELECT queue.claim('q03_empty', 'w', 6);
RESET queue.max_batch_size;

-- The lease must be positive.
SELECT queue.claim('q03_empty', 'w', 1, '0');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.claim('q03_empty', 'w', 1, '-1 second');
SELECT queue.claim('q03_empty', 'w', 1, '1 day -24 hours');

-- The queue must exist.
SELECT queue.claim('q03_nope', 'w');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.claim(NULL, 'w');
\echo sqlstate: :LAST_ERROR_SQLSTATE

-- Clean up.
SELECT queue.drop_queue(name, force => true) FROM queue.list_queues() WHERE name LIKE 'q03%';
