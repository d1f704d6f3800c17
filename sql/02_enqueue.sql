--
-- 02_enqueue: enqueue and enqueue_many, every argument, deduplication, and
-- the checks on what is enqueued.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 200001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 200000);
SELECT queue.create_queue('q02', max_attempts => 3) > 0 AS created;
SELECT queue.create_queue('q02_other') > 0 AS created;

--
-- enqueue: only a payload.  The job is ready at once, takes its queue's
-- max_attempts, and has no headers, key or policy of its own.
--
SELECT queue.enqueue('q02', '{"task": "mail", "to": "a@example.com"}');
SELECT id, queue, state, priority, attempts, max_attempts, payload, headers,
       dedup_key, retry_policy, result, errors, last_error, worker,
       run_at <= clock_timestamp() AS due, run_at = created_at AS run_at_is_enqueue_time,
       lease_expires_at, claimed_at, finished_at
  FROM queue.get_job(200001);

-- Every argument given.  The job's retry policy is kept as given (partial):
-- its keys override the queue's at the time of a failure.
SELECT now() + interval '1 hour' AS later \gset
SELECT queue.enqueue('q02', payload => '{"task": "report"}',
                     headers => '{"trace_id": "abc", "tenant": 7}',
                     run_at => :'later', priority => 5, dedup_key => 'report-7',
                     max_attempts => 10,
                     retry_policy => '{"backoff": "fixed", "delay": 30}');
SELECT id, state, priority, attempts, max_attempts, payload, headers, dedup_key,
       retry_policy, run_at = :'later' AS run_at_as_given
  FROM queue.get_job(200002);

-- delay: the job runs that long after it was enqueued.
SELECT queue.enqueue('q02', '{"task": "later"}', delay => '90 seconds');
SELECT state, run_at - created_at AS wait FROM queue.get_job(200003);
-- A zero delay, or a run_at in the past, is ready at once.
SELECT queue.enqueue('q02', '{"task": "now"}', delay => '0');
SELECT queue.enqueue('q02', '{"task": "overdue"}', run_at => now() - interval '1 day');
SELECT id, state FROM queue.list_jobs('q02') WHERE id IN (200004, 200005);
-- Negative priorities are fine.
SELECT queue.enqueue('q02', '{"task": "low"}', priority => -100);
SELECT priority FROM queue.get_job(200006);

-- A job is enqueued in the caller's transaction: rolled back, it never was.
BEGIN;
SELECT queue.enqueue('q02', '{"task": "rolled back"}');
SELECT count(*) AS visible_inside FROM queue.get_job(200007);
ROLLBACK;
SELECT count(*) AS visible_after_rollback FROM queue.get_job(200007);

--
-- Deduplication: a key is unique among a queue's live jobs (waiting,
-- scheduled, retrying or running).  Enqueueing it again returns the id of
-- the job holding it and changes nothing.
--
SELECT queue.enqueue('q02', '{"v": 1}', dedup_key => 'k1');
SELECT queue.enqueue('q02', '{"v": 2}', dedup_key => 'k1', priority => 9);
SELECT payload, priority FROM queue.get_job(200008);
SELECT count(*) AS jobs_with_k1 FROM queue.list_jobs('q02') WHERE dedup_key = 'k1';
-- Keys are per queue.
SELECT queue.enqueue('q02_other', '{"v": 3}', dedup_key => 'k1');
-- A running job still holds its key.
SELECT job_id, dedup_key FROM queue.claim('q02', 'w1', 10) WHERE dedup_key = 'k1' \gset held_
SELECT :held_job_id AS running_holder,
       queue.enqueue('q02', '{"v": 4}', dedup_key => 'k1') AS enqueue_returns;
-- Once the holder completed, the key is free again: a new job.
SELECT queue.complete(200008, (SELECT lease_token FROM queue.job WHERE id = 200008));
SELECT queue.enqueue('q02', '{"v": 5}', dedup_key => 'k1');
-- Likewise once the holder died ...
SELECT queue.create_queue('q02_once', max_attempts => 1) > 0 AS created;
SELECT queue.enqueue('q02_once', '{"v": 6}', dedup_key => 'k2');
SELECT queue.fail(job_id, lease_token, 'no luck') FROM queue.claim('q02_once', 'w1');
SELECT queue.enqueue('q02_once', '{"v": 7}', dedup_key => 'k2');
-- ... or was cancelled.
SELECT queue.cancel_job(200014);
SELECT queue.enqueue('q02_once', '{"v": 8}', dedup_key => 'k2');
SELECT id, state, payload FROM queue.list_jobs('q02_once') ORDER BY id;

--
-- enqueue_many: a JSON array of jobs; one id per element, in the array's
-- order.  Each element takes the keys payload, headers, run_at, delay
-- (an interval string, or a number of seconds), priority, dedup_key,
-- max_attempts and retry_policy; JSON null means "not given".
--
SELECT queue.create_queue('q02_many', max_attempts => 4) > 0 AS created;
SELECT ord, id FROM queue.enqueue_many('q02_many', '[
  {"payload": {"n": 1}},
  {"payload": {"n": 2}, "headers": {"h": true}, "priority": 3, "dedup_key": "m2",
   "max_attempts": 9, "retry_policy": {"jitter": "full"}},
  {"payload": {"n": 3}, "delay": "2 minutes"},
  {"payload": {"n": 4}, "delay": 45.5},
  {"payload": {"n": 5}, "run_at": "2000-01-01 00:00:00+00"},
  {"payload": {"n": 6}, "headers": null, "run_at": null, "delay": null, "priority": null,
   "dedup_key": null, "max_attempts": null, "retry_policy": null}
]') WITH ORDINALITY AS t(id, ord);
SELECT id, payload, state, priority, max_attempts, headers, dedup_key, retry_policy,
       CASE WHEN run_at >= created_at THEN run_at - created_at END AS wait,
       run_at = '2000-01-01 00:00:00+00' AS at_2000
  FROM queue.list_jobs('q02_many') ORDER BY id;

-- Within a batch, a repeated key gets the id of its first job; a key held
-- by a live job gets the holder's id.
SELECT ord, id FROM queue.enqueue_many('q02_many', '[
  {"payload": {"n": 7}, "dedup_key": "a"},
  {"payload": {"n": 8}, "dedup_key": "b"},
  {"payload": {"n": 9}, "dedup_key": "a"},
  {"payload": {"n": 10}, "dedup_key": "m2"},
  {"payload": {"n": 11}}
]') WITH ORDINALITY AS t(id, ord);
SELECT id, payload, dedup_key FROM queue.list_jobs('q02_many') WHERE id > 200023 ORDER BY id;

-- An empty array enqueues nothing and returns no rows (the queue must
-- still exist).
SELECT count(*) AS ids FROM queue.enqueue_many('q02_many', '[]');
SELECT count(*) AS ids FROM queue.enqueue_many('q02_nope', '[]');
\echo sqlstate: :LAST_ERROR_SQLSTATE

-- 10,000 jobs in one call: every id distinct, in input order.
SELECT queue.create_queue('q02_bulk') > 0 AS created;
CREATE TEMP TABLE ids AS
  SELECT t.id, t.ord
    FROM queue.enqueue_many('q02_bulk',
           (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('i', i)) ORDER BY i)
              FROM generate_series(1, 10000) i)) WITH ORDINALITY AS t(id, ord);
SELECT count(*) AS ids, count(DISTINCT ids.id) AS distinct_ids,
       bool_and((j.payload ->> 'i')::bigint = ids.ord) AS input_order,
       max(ids.id) - min(ids.id) = 9999 AS consecutive
  FROM ids JOIN queue.job j ON j.id = ids.id;
SELECT queue.drop_queue('q02_bulk');

--
-- Bad input: a clear error, and nothing is enqueued.
--
SELECT queue.enqueue('q02_nope', '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue(NULL, '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue('q02', NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue('q02', '[1, 2]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue('q02', '"text"');
SELECT queue.enqueue('q02', 'null');
SELECT queue.enqueue('q02', '{}', headers => '["h"]');
SELECT queue.enqueue('q02', '{}', headers => '42');
SELECT queue.enqueue('q02', '{}', run_at => now(), delay => '1 second');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue('q02', '{}', run_at => 'infinity');
SELECT queue.enqueue('q02', '{}', delay => '-1 second');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue('q02', '{}', delay => '1 day -25 hours');
SELECT queue.enqueue('q02', '{}', priority => NULL);
SELECT queue.enqueue('q02', '{}', dedup_key => '');
SELECT queue.enqueue('q02', '{}', dedup_key => repeat('k', 513));
SELECT queue.enqueue('q02', '{}', max_attempts => 0);
SELECT queue.enqueue('q02', '{}', retry_policy => '{"backoff": "random"}');
SELECT queue.enqueue('q02', '{}', retry_policy => '[]');
-- A 512-byte key is fine.
SELECT queue.enqueue('q02', '{}', dedup_key => repeat('k', 512)) > 0 AS enqueued;
SELECT count(*) AS jobs_before FROM queue.job \gset

-- enqueue_many: the error names the element it is about.
\set SHOW_CONTEXT errors
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}}, {"payload": {}, "colour": "red"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}}, {"payload": {}}, {"headers": {}}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}}, 7]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": "x"}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "headers": [1]}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "run_at": "soon"}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "run_at": 5}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "delay": -1}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "delay": "5 minutes", "run_at": "2030-01-01"}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "priority": "high"}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "priority": 3000000000}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "dedup_key": 5}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "max_attempts": 0}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "retry_policy": {"factor": 0}}]');
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "retry_policy": [{"factor": 2}]}]');
-- a misspelt key is refused even when its value is null
SELECT * FROM queue.enqueue_many('q02', '[{"payload": {}, "runAt": null}]');
\set SHOW_CONTEXT never
-- The whole array must be a JSON array.
SELECT * FROM queue.enqueue_many('q02', '{"payload": {}}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT * FROM queue.enqueue_many('q02', '"[]"');
SELECT * FROM queue.enqueue_many('q02', NULL);
SELECT * FROM queue.enqueue_many(NULL, '[]');
SELECT * FROM queue.enqueue_many('q02_nope', '[{"payload": {}}]');
SELECT count(*) - :jobs_before AS jobs_enqueued_by_bad_calls FROM queue.job;

--
-- Limits (superuser settings): queue.max_batch_size jobs per call, and
-- queue.max_payload_bytes per payload or headers (in bytes of jsonb).
--
SET queue.max_batch_size = 3;
SELECT count(*) FROM queue.enqueue_many('q02', '[{"payload": {}}, {"payload": {}}, {"payload": {}}, {"payload": {}}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) AS ids FROM queue.enqueue_many('q02', '[{"payload": {}}, {"payload": {}}, {"payload": {}}]');
RESET queue.max_batch_size;
SET queue.max_payload_bytes = 64;
SELECT queue.enqueue('q02', jsonb_build_object('blob', repeat('x', 100)));
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.enqueue('q02', '{}', headers => jsonb_build_object('blob', repeat('x', 100)));
SELECT * FROM queue.enqueue_many('q02', jsonb_build_array(jsonb_build_object('payload', jsonb_build_object('blob', repeat('x', 100)))));
SELECT queue.enqueue('q02', jsonb_build_object('blob', repeat('x', 10))) > 0 AS small_enough;
RESET queue.max_payload_bytes;
SELECT queue.enqueue('q02', jsonb_build_object('blob', repeat('x', 100))) > 0 AS fits_default;

-- Clean up.
SELECT queue.drop_queue(name, force => true) FROM queue.list_queues() WHERE name LIKE 'q02%';
