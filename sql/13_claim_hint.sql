--
-- The claim hint (src/wake.c) must never change what a claim finds, nor the
-- claim order, for jobs that commits announce: each case below makes a job
-- claimable before the hint that the previous claim left, and the next
-- claim must take it first.
--
SELECT setval('queue.job_id_seq', 1300000);
SELECT queue.create_queue('hint_q', max_attempts => 5);
SELECT count(*) FROM queue.enqueue_many('hint_q',
    (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('n', g))) FROM generate_series(1, 5) g));

-- Claims take the jobs in order, one at a time (each leaves a hint).
SELECT payload->>'n' AS n FROM queue.claim('hint_q', 'w', 1);
SELECT payload->>'n' AS n FROM queue.claim('hint_q', 'w', 1);

-- A higher priority enqueued after the hint: claimed next.
SELECT queue.enqueue('hint_q', '{"n": "urgent"}', priority => 10) IS NOT NULL AS enqueued;
SELECT payload->>'n' AS n FROM queue.claim('hint_q', 'w', 1);

-- A job due in the past, at the same priority: claimed next.
SELECT queue.enqueue('hint_q', '{"n": "old"}', run_at => now() - interval '1 hour') IS NOT NULL AS enqueued;
SELECT payload->>'n' AS n FROM queue.claim('hint_q', 'w', 1);

-- A claim that rolls back: its job is claimed next.
BEGIN;
SELECT payload->>'n' AS n FROM queue.claim('hint_q', 'w', 1);
ROLLBACK;
SELECT payload->>'n' AS n FROM queue.claim('hint_q', 'w', 1);

-- A released job goes back at now: after the jobs that were due before.
SELECT job_id AS rel_id, lease_token AS rel_token FROM queue.claim('hint_q', 'w', 1) \gset
SELECT queue.release(:rel_id, :'rel_token');
SELECT payload->>'n' AS n FROM queue.claim('hint_q', 'w', 1);

-- Rescheduled into the past: claimed next.
SELECT queue.enqueue('hint_q', '{"n": "later"}', delay => '1 hour') AS later_id \gset
SELECT queue.enqueue('hint_q', '{"n": "last"}') IS NOT NULL AS enqueued;
SELECT queue.reschedule_job(:later_id, now() - interval '2 hours');
SELECT payload->>'n' AS n FROM queue.claim('hint_q', 'w', 1);

-- A batch claim past the hint that finds too few also scans the whole
-- queue: everything left comes out, in order, once.
SELECT queue.enqueue('hint_q', '{"n": "low"}', priority => -5) IS NOT NULL AS enqueued;
SELECT payload->>'n' AS n, priority FROM queue.claim('hint_q', 'w', 10);
SELECT count(*) AS left_ready FROM queue.list_jobs('hint_q', 'ready');

-- A transaction that makes a job claimable before the hint and then
-- claims: the hint is dropped only when it commits, but its own claim sees
-- the job already, and takes it first.
SELECT count(*) FROM queue.enqueue_many('hint_q', '[{"payload": {"n": "t1"}}, {"payload": {"n": "t2"}}]');
BEGIN;
SELECT payload->>'n' AS n, priority FROM queue.claim('hint_q', 'w', 1);
SELECT queue.enqueue('hint_q', '{"n": "urgent"}', priority => 5) IS NOT NULL AS enqueued;
SELECT payload->>'n' AS n, priority FROM queue.claim('hint_q', 'w', 1);
COMMIT;
SELECT payload->>'n' AS n, priority FROM queue.claim('hint_q', 'w', 1);

SELECT queue.drop_queue('hint_q', force => true);
