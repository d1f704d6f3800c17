--
-- 20_enqueue_payloads: a batch of payloads with shared options.  Every
-- argument, the order of the ids, ordered queues, the checks (each bad
-- call enqueues nothing), the batch limit and the access levels.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 2000001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 2000000);
SELECT queue.create_queue('q20', max_attempts => 4) > 0 AS created;
SELECT queue.create_queue('q20_ordered', ordered => true) > 0 AS created;

--
-- Only payloads: one job per element, ids in the array's order (ascending,
-- drawn in that order), each ready at once with its queue's max_attempts
-- and no headers or policy of its own.
--
SELECT ord, id FROM queue.enqueue_payloads('q20',
    ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb[]) WITH ORDINALITY AS t(id, ord);
SELECT id, queue, state, priority, attempts, max_attempts, payload, headers,
       dedup_key, retry_policy, run_at <= clock_timestamp() AS due
  FROM queue.get_job(2000001)
UNION ALL SELECT id, queue, state, priority, attempts, max_attempts, payload, headers,
       dedup_key, retry_policy, run_at <= clock_timestamp() AS due
  FROM queue.get_job(2000002)
UNION ALL SELECT id, queue, state, priority, attempts, max_attempts, payload, headers,
       dedup_key, retry_policy, run_at <= clock_timestamp() AS due
  FROM queue.get_job(2000003)
ORDER BY id;

-- A claim of three gets all three.
CREATE TEMP TABLE claimed20 AS SELECT * FROM queue.claim('q20', 'w', batch_size => 3);
SELECT payload FROM claimed20 ORDER BY job_id;
SELECT queue.complete_many(array_agg(job_id), array_agg(lease_token)) AS completed
  FROM claimed20;

--
-- Every option given: each job gets them all.
--
SELECT now() + interval '1 hour' AS later \gset
SELECT count(*) AS enqueued FROM queue.enqueue_payloads('q20',
    ARRAY['{"n": 4}', '{"n": 5}']::jsonb[],
    headers => '{"trace_id": "t-20"}', run_at => :'later', priority => 7,
    max_attempts => 9, retry_policy => '{"backoff": "fixed", "delay": 30}');
SELECT payload, headers, priority, max_attempts, retry_policy,
       run_at = :'later'::timestamptz AS at_run_at, state
  FROM queue.job WHERE queue_id = (SELECT id FROM queue.queue WHERE name = 'q20')
 ORDER BY id;
SELECT queue.purge_queue('q20');

-- delay: due that much after the call.
SELECT count(*) AS enqueued FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[],
                                                       delay => '10 minutes');
SELECT run_at BETWEEN now() + interval '9 minutes' AND clock_timestamp() + interval '10 minutes'
       AS delayed
  FROM queue.job WHERE queue_id = (SELECT id FROM queue.queue WHERE name = 'q20');
SELECT queue.purge_queue('q20');

-- An empty array enqueues nothing and returns no rows; the queue must
-- still exist.
SELECT count(*) AS ids FROM queue.enqueue_payloads('q20', '{}');
SELECT count(*) AS ids FROM queue.enqueue_payloads('q20_nope', '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- An ordered queue with a group key: the first job is the group's head,
-- the others wait behind it in the array's order.
--
SELECT count(*) AS enqueued FROM queue.enqueue_payloads('q20_ordered',
    ARRAY['{"step": 1}', '{"step": 2}', '{"step": 3}']::jsonb[], group_key => 'order-1');
SELECT payload, state FROM queue.job
 WHERE queue_id = (SELECT id FROM queue.queue WHERE name = 'q20_ordered') ORDER BY id;
SELECT job_id AS head, lease_token AS token, payload FROM queue.claim('q20_ordered', 'w') \gset
\echo claimed :payload
SELECT count(*) AS more FROM queue.claim('q20_ordered', 'w');
SELECT queue.complete(:head, :'token');
SELECT payload FROM queue.claim('q20_ordered', 'w');
SELECT queue.purge_queue('q20_ordered');

--
-- Bad calls: a clear error, and nothing enqueued.  Errors about an element
-- name it; errors about the shared options name none.
--
SELECT count(*) AS jobs_before FROM queue.job \gset
SELECT * FROM queue.enqueue_payloads(NULL, ARRAY['{}']::jsonb[]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT * FROM queue.enqueue_payloads('q20', NULL);
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], priority => NULL);
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}', NULL]::jsonb[]);
SELECT * FROM queue.enqueue_payloads('q20', ARRAY[['{}'], ['{}']]::jsonb[]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
\set SHOW_CONTEXT always
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}', '{}', '[1, 2]']::jsonb[]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}', '"text"']::jsonb[]);
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], headers => '[1]');
\set SHOW_CONTEXT never
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[],
                                     run_at => now(), delay => '1 minute');
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], run_at => 'infinity');
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], delay => '-1 second');
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], delay => '1000000 years');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], max_attempts => 0);
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], retry_policy => '{"factor": 0}');
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], retry_policy => '{"colour": 1}');
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[], group_key => '');
SELECT * FROM queue.enqueue_payloads('q20_nope', ARRAY['{}']::jsonb[]);
-- The order of the checks, each pair broken twice: a NULL element before
-- the batch size, the shared options before the payloads, the payloads
-- before the queue.
SET queue.max_batch_size = 1;
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}', NULL]::jsonb[]);
RESET queue.max_batch_size;
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['[1]']::jsonb[], max_attempts => 0);
SELECT * FROM queue.enqueue_payloads('q20_nope', ARRAY['[1]']::jsonb[]);
SELECT count(*) - :jobs_before AS jobs_enqueued_by_bad_calls FROM queue.job;

--
-- Limits: queue.max_batch_size jobs per call, queue.max_payload_bytes per
-- payload (the error names the element) and per headers.
--
SET queue.max_batch_size = 3;
SELECT count(*) FROM queue.enqueue_payloads('q20', ARRAY['{}', '{}', '{}', '{}']::jsonb[]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) AS ids FROM queue.enqueue_payloads('q20', ARRAY['{}', '{}', '{}']::jsonb[]);
RESET queue.max_batch_size;
SET queue.max_payload_bytes = 64;
\set SHOW_CONTEXT always
SELECT * FROM queue.enqueue_payloads('q20',
    ARRAY['{}'::jsonb, jsonb_build_object('blob', repeat('x', 100))]);
\echo sqlstate: :LAST_ERROR_SQLSTATE
\set SHOW_CONTEXT never
SELECT * FROM queue.enqueue_payloads('q20', ARRAY['{}']::jsonb[],
                                     headers => jsonb_build_object('blob', repeat('x', 100)));
RESET queue.max_payload_bytes;
SELECT count(*) - :jobs_before AS jobs_enqueued_since FROM queue.job;

--
-- Access: the producer level includes it; PUBLIC has nothing.
--
CREATE ROLE r20_producer;
CREATE ROLE r20_consumer;
SELECT queue.grant_access('r20_producer', 'producer');
SELECT queue.grant_access('r20_consumer', 'consumer');
SELECT r AS role,
       has_function_privilege(r,
           'queue.enqueue_payloads(text, jsonb[], jsonb, timestamptz, interval, integer, integer, jsonb, text)',
           'EXECUTE') AS can_call
  FROM unnest(ARRAY['r20_producer', 'r20_consumer', 'public']) r;
SET ROLE r20_producer;
SELECT count(*) AS ids FROM queue.enqueue_payloads('q20', ARRAY['{"by": "producer"}']::jsonb[]);
RESET ROLE;
SELECT queue.revoke_access('r20_producer', 'producer');
SELECT queue.revoke_access('r20_consumer', 'consumer');
DROP ROLE r20_producer;
DROP ROLE r20_consumer;

-- Clean up.
SELECT queue.drop_queue(name, force => true) FROM queue.list_queues() WHERE name LIKE 'q20%';
