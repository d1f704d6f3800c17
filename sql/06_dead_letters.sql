--
-- 06_dead_letters: dead jobs, their error history, listing and redriving.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 600001 (so messages naming them are stable).
SELECT setval('queue.job_id_seq', 600000);
SELECT queue.create_queue('q06', max_attempts => 2,
                          retry_policy => '{"backoff": "fixed", "delay": 0}') > 0 AS created;

-- kill(queue): claims and fails the next job until it is dead; returns its id.
CREATE FUNCTION pg_temp.kill(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	c record;
	st text;
BEGIN
	LOOP
		SELECT * INTO c FROM queue.claim(q, 'worker-k');
		IF NOT FOUND THEN
			RAISE EXCEPTION 'nothing to claim in %', q;
		END IF;
		st := queue.fail(c.job_id, c.lease_token, format('error %s of %s', c.attempt, c.max_attempts));
		EXIT WHEN st = 'dead';
	END LOOP;
	RETURN c.job_id;
END;
$$;

-- Five jobs die after two attempts each.
SELECT count(*) FROM queue.enqueue_many('q06', '[
  {"payload": {"n": 1}, "headers": {"h": 1}, "priority": 3, "dedup_key": "d1"},
  {"payload": {"n": 2}}, {"payload": {"n": 3}}, {"payload": {"n": 4}},
  {"payload": {"n": 5}, "dedup_key": "d5"}]');
SELECT pg_temp.kill('q06') FROM generate_series(1, 5);

-- A dead job keeps everything, with its full error history: one entry per
-- failed attempt (attempt, error, worker, time).
SELECT id, queue, state, attempts, max_attempts, payload, headers, priority, dedup_key,
       last_error, run_at, finished_at IS NOT NULL AS finished
  FROM queue.get_job(600001);
SELECT e ->> 'attempt' AS attempt, e ->> 'error' AS error, e ->> 'worker' IS NOT NULL AS has_worker,
       (e ->> 'at')::timestamptz <= clock_timestamp() AS has_time,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(e) k) AS keys
  FROM queue.get_job(600001), jsonb_array_elements(errors) e;

-- list_dead: oldest first, a page at a time.
SELECT id, payload, attempts, last_error FROM queue.list_dead('q06');
SELECT id FROM queue.list_dead('q06', page_size => 2);
SELECT id FROM queue.list_dead('q06', page_size => 2, after_id => 600002);
SELECT id FROM queue.list_dead('q06', page_size => 2, after_id => 600004);
SELECT id FROM queue.list_dead('q06', page_size => 2, after_id => 600005);
SELECT queue.list_dead('q06', page_size => 0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.list_dead('q06', page_size => 10001);
SELECT queue.list_dead('q06_nope');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- Only dead jobs are listed: not live ones, nor other queues' dead.
SELECT queue.enqueue('q06', '{"n": 6}');
SELECT queue.create_queue('q06_other', max_attempts => 1) > 0 AS created;
SELECT queue.enqueue('q06_other', '{"other": 1}');
SELECT pg_temp.kill('q06_other');
SELECT count(*) AS dead_in_q06 FROM queue.list_dead('q06');

--
-- redrive one job: back in its queue, ready, attempts from zero, its
-- error history kept.
--
SELECT queue.redrive(600001);
SELECT id, state, attempts, max_attempts, payload, headers, priority, dedup_key, worker,
       jsonb_array_length(errors) AS errors_kept, last_error, finished_at
  FROM queue.get_job(600001);
-- It runs again, with its full set of attempts.
SELECT job_id, attempt, max_attempts FROM queue.claim('q06', 'worker-9');
-- Failed again to death, its history grows.
SELECT queue.release(600001, (SELECT lease_token FROM queue.job WHERE id = 600001));
SELECT pg_temp.kill('q06');
SELECT jsonb_path_query_array(errors, '$[*].attempt') AS attempts, last_error
  FROM queue.get_job(600001);

-- Redriving what is not dead: 55000; what does not exist: 42704.
SELECT queue.redrive(600006);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.complete(job_id, lease_token) FROM queue.claim('q06', 'worker-9');
SELECT state FROM queue.get_job(600006);
SELECT queue.redrive(600006);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.redrive(699999);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.redrive(NULL::bigint);
\echo sqlstate: :LAST_ERROR_SQLSTATE

-- redrive many: the given dead jobs of the queue; returns how many.  Ids
-- that are not dead jobs of that queue are ignored.
SELECT queue.redrive('q06', ARRAY[600002, 600003, 600006, 600007, 699999]);
SELECT id, state, attempts FROM queue.list_jobs('q06') ORDER BY id;
-- redrive all: every dead job of the queue.
SELECT queue.redrive('q06');
SELECT id, state, attempts, jsonb_array_length(errors) AS errors FROM queue.list_jobs('q06') ORDER BY id;
SELECT queue.redrive('q06');
SELECT state FROM queue.get_job(600007);
SELECT queue.redrive('q06_nope');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.redrive(NULL::text);

--
-- A dead job whose deduplication key a live job holds cannot come back:
-- 23505, and nothing is redriven, not even the other jobs asked for.
--
SELECT queue.create_queue('q06_dedup', max_attempts => 1) > 0 AS created;
SELECT queue.enqueue('q06_dedup', '{"n": 9}', dedup_key => 'same');
SELECT pg_temp.kill('q06_dedup');
SELECT queue.enqueue('q06_dedup', '{"n": 10}');
SELECT pg_temp.kill('q06_dedup');
-- The key is free again: a new job takes it.
SELECT queue.enqueue('q06_dedup', '{"n": 11}', dedup_key => 'same');
SELECT queue.redrive(600008);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.redrive('q06_dedup');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT id, state FROM queue.list_jobs('q06_dedup') ORDER BY id;
-- Once the holder is gone, the redrive works.
SELECT queue.cancel_job(600010);
SELECT queue.redrive('q06_dedup');
SELECT id, state, dedup_key FROM queue.list_jobs('q06_dedup') ORDER BY id;
-- Two dead jobs with the same key cannot both come back together: 23505,
-- and nothing is redriven; one at a time works.
SELECT queue.purge_queue('q06_dedup');
SELECT queue.enqueue('q06_dedup', '{"n": 12}', dedup_key => 'twice');
SELECT pg_temp.kill('q06_dedup');
SELECT queue.enqueue('q06_dedup', '{"n": 13}', dedup_key => 'twice');
SELECT pg_temp.kill('q06_dedup');
SELECT queue.redrive('q06_dedup');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT id, state FROM queue.list_jobs('q06_dedup') ORDER BY id;
SELECT queue.redrive(600012);
SELECT id, state FROM queue.list_jobs('q06_dedup') ORDER BY id;
SELECT queue.redrive(600011);
\echo sqlstate: :LAST_ERROR_SQLSTATE

-- Clean up.
SELECT queue.drop_queue(name, force => true) FROM queue.list_queues() WHERE name LIKE 'q06%';
