--
-- 16_complete_and_claim: a worker's loop in one statement.
-- complete_and_claim completes the jobs it is given exactly as
-- complete_many does (all or nothing, QU001 for a stale token, the same
-- checks of the arrays) and then claims up to batch_size jobs of its queue
-- as claim does without a wait.  It is one statement: an error anywhere,
-- in the completions or in the claim, leaves nothing completed and
-- nothing claimed.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 1600001, saga ids at 1601 (so messages
-- and payloads naming them are stable).
SELECT setval('queue.job_id_seq', 1600000);
SELECT setval('queue.saga_id_seq', 1600);
SELECT queue.create_queue('q16', max_attempts => 3, retry_policy => '{"backoff": "fixed", "delay": 60}') > 0 AS created;
SELECT queue.create_queue('q16_other') > 0 AS created;

-- try(statement) runs a statement and shows its outcome: 'ok', or the
-- error's SQLSTATE, message and detail, with lease tokens (random) masked.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || regexp_replace(msg, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<token>', 'g')
		|| CASE WHEN det <> '' THEN E'\n' || det ELSE '' END;
END;
$$;

-- What a worker keeps between calls: the leases it holds (and, in
-- old_tokens, every token it was ever given, to tell new ones from old).
CREATE TEMP TABLE held (job_id bigint PRIMARY KEY, token uuid NOT NULL);
CREATE TEMP TABLE old_tokens (token uuid PRIMARY KEY);
-- turn(queue, batch_size, results, lease): one turn of the worker's loop:
-- complete_and_claim with every lease held (results in job id order),
-- then hold what it claimed.  Returns the ids claimed.
CREATE FUNCTION pg_temp.turn(q text, batch integer DEFAULT 1, results jsonb[] DEFAULT NULL,
                             lease interval DEFAULT NULL)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
	ids bigint[];
	tokens uuid[];
BEGIN
	SELECT coalesce(array_agg(h.job_id ORDER BY h.job_id), '{}'),
	       coalesce(array_agg(h.token ORDER BY h.job_id), '{}')
	  INTO ids, tokens FROM held h;
	DELETE FROM held;
	INSERT INTO held
	SELECT c.job_id, c.lease_token
	  FROM queue.complete_and_claim(ids, tokens, q, 'w16', batch, lease, results) c;
	INSERT INTO old_tokens SELECT h.token FROM held h;
	RETURN QUERY SELECT h.job_id FROM held h ORDER BY h.job_id;
END;
$$;
-- The held leases as literals, for calls written out in full.
CREATE FUNCTION pg_temp.ids() RETURNS text LANGUAGE sql AS $$
	SELECT quote_literal(coalesce(array_agg(job_id ORDER BY job_id), '{}')) || '::bigint[]' FROM held;
$$;
CREATE FUNCTION pg_temp.tokens() RETURNS text LANGUAGE sql AS $$
	SELECT quote_literal(coalesce(array_agg(token ORDER BY job_id), '{}')) || '::uuid[]' FROM held;
$$;
-- cc(rest): complete_and_claim with the held leases and the arguments in
-- rest, through try(); holds nothing new (an error claims nothing anyway).
CREATE FUNCTION pg_temp.cc(rest text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.try(format('SELECT * FROM queue.complete_and_claim(%s, %s, %s)',
	                          pg_temp.ids(), pg_temp.tokens(), rest));
$$;
-- The live and finished jobs of queue q.
CREATE FUNCTION pg_temp.jobs(q text)
RETURNS TABLE (id bigint, state text, attempts integer, worker text, result jsonb)
LANGUAGE sql AS $$
	SELECT j.id, j.state, j.attempts, j.worker, j.result FROM queue.jobs j
	 WHERE j.queue = q ORDER BY j.id;
$$;

SELECT count(*) AS enqueued
  FROM queue.enqueue_many('q16', '[{"payload": {"n": 1}, "priority": 50},
                                   {"payload": {"n": 2}, "priority": 40, "headers": {"h": 2}},
                                   {"payload": {"n": 3}, "priority": 30, "dedup_key": "k3"},
                                   {"payload": {"n": 4}, "priority": 20},
                                   {"payload": {"n": 5}, "priority": 10}]');

--
-- The worker's first call: empty arrays complete nothing, and it claims
-- (batch_size defaults to 1).  Its rows are claim's rows.
--
INSERT INTO held
SELECT c.job_id, c.lease_token
  FROM queue.complete_and_claim('{}', '{}', 'q16', 'w16') c
RETURNING job_id;
INSERT INTO old_tokens SELECT token FROM held;
SELECT * FROM pg_temp.jobs('q16');
-- The columns, on a call that claims two (a lease of its own).
SELECT c.job_id, c.payload, c.headers, c.attempt, c.max_attempts, c.priority, c.dedup_key,
       c.enqueued_at IS NOT NULL AS has_enqueued_at,
       c.lease_expires_at BETWEEN now() + interval '9 minutes' AND now() + interval '11 minutes' AS lease_10min,
       c.lease_token IS NOT NULL AS has_token
  FROM (SELECT * FROM queue.complete_and_claim('{}', '{}', 'q16', 'w16-cols', 2, '10 minutes')) c
 ORDER BY c.job_id;
-- (those two are released again, for the rest of the suite)
SELECT queue.release(j.id, j2.lease_token)
  FROM queue.jobs j, LATERAL (SELECT lease_token FROM queue.job WHERE id = j.id) j2
 WHERE j.queue = 'q16' AND j.worker = 'w16-cols' AND j.state = 'running';
SELECT * FROM pg_temp.jobs('q16');

--
-- Completes, then claims: the job it held is completed (in job_archive,
-- with its result) and the next two are running, under new tokens.
--
SELECT pg_temp.turn('q16', 2, ARRAY['{"done": 1}']::jsonb[]);
SELECT * FROM pg_temp.jobs('q16');
SELECT id, state, attempts, worker, result, errors, finished_at IS NOT NULL AS finished
  FROM queue.job_archive WHERE id = 1600001;
SELECT count(*) AS new_tokens FROM held h
 WHERE (SELECT count(*) FROM old_tokens o WHERE o.token = h.token) = 1
   AND h.token = (SELECT lease_token FROM queue.job j WHERE j.id = h.job_id);

--
-- A stale token: QU001, and nothing is completed or claimed.  The batch
-- holds 1600002 with its current token and 1600003 with a token that is
-- not (1600001's old one); both stay running under the same tokens, and
-- 1600004 and 1600005 stay ready.
--
CREATE TEMP TABLE before AS SELECT id, state, lease_token FROM queue.job WHERE queue_id = queue._queue_id('q16');
SELECT pg_temp.try(format('SELECT * FROM queue.complete_and_claim(%L, %L, %L, %L, 2)',
         ARRAY[1600002, 1600003],
         ARRAY[(SELECT token FROM held WHERE job_id = 1600002),
               (SELECT o.token FROM old_tokens o WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.token = o.token) LIMIT 1)],
         'q16', 'w16'));
SELECT * FROM pg_temp.jobs('q16');
SELECT count(*) AS changed FROM queue.job j JOIN before b USING (id)
 WHERE j.state IS DISTINCT FROM b.state OR j.lease_token IS DISTINCT FROM b.lease_token;
-- A job that does not exist is QU001 too.
SELECT pg_temp.try($$SELECT * FROM queue.complete_and_claim(ARRAY[1699999], ARRAY['00000000-0000-0000-0000-000000000000']::uuid[], 'q16', 'w16')$$);
SELECT count(*) AS changed FROM queue.job j JOIN before b USING (id)
 WHERE j.state IS DISTINCT FROM b.state OR j.lease_token IS DISTINCT FROM b.lease_token;

--
-- Every argument error, with its SQLSTATE, the held leases (1600002,
-- 1600003) passed along where the arrays are not the point: none of them
-- completes anything or claims anything.
--
-- NULL arguments
SELECT pg_temp.cc('NULL, ''w16'', 1');
SELECT pg_temp.cc('''q16'', NULL, 1');
SELECT pg_temp.cc('''q16'', ''w16'', NULL');
SELECT pg_temp.try('SELECT * FROM queue.complete_and_claim(NULL, ''{}'', ''q16'', ''w16'')');
SELECT pg_temp.try('SELECT * FROM queue.complete_and_claim(''{}'', NULL, ''q16'', ''w16'')');
SELECT pg_temp.try(format('SELECT * FROM queue.complete_and_claim(NULL, %s, %L, %L)', pg_temp.tokens(), 'q16', 'w16'));
SELECT pg_temp.try(format('SELECT * FROM queue.complete_and_claim(%s, NULL, %L, %L)', pg_temp.ids(), 'q16', 'w16'));
-- batch_size out of range
SELECT pg_temp.cc('''q16'', ''w16'', 0');
SELECT pg_temp.cc('''q16'', ''w16'', -1');
SELECT pg_temp.cc('''q16'', ''w16'', 10001');
SET queue.max_batch_size = 2;
SELECT pg_temp.cc('''q16'', ''w16'', 3');
-- more jobs to complete than queue.max_batch_size
SELECT pg_temp.try($$SELECT * FROM queue.complete_and_claim(ARRAY[1, 2, 3], ARRAY[gen_random_uuid(), gen_random_uuid(), gen_random_uuid()], 'q16', 'w16')$$);
RESET queue.max_batch_size;
-- a lease that is not positive
SELECT pg_temp.cc('''q16'', ''w16'', 1, ''-1 second''');
SELECT pg_temp.cc('''q16'', ''w16'', 1, ''0 seconds''');
-- a worker name that is not one
SELECT pg_temp.cc('''q16'', '''', 1');
-- the arrays: lengths, NULL elements, an id twice, more than one dimension
SELECT pg_temp.try($$SELECT * FROM queue.complete_and_claim(ARRAY[1600002, 1600003], ARRAY[gen_random_uuid()], 'q16', 'w16')$$);
SELECT pg_temp.try($$SELECT * FROM queue.complete_and_claim(ARRAY[1600002, NULL], ARRAY[gen_random_uuid(), gen_random_uuid()], 'q16', 'w16')$$);
SELECT pg_temp.try($$SELECT * FROM queue.complete_and_claim(ARRAY[1600002], ARRAY[NULL]::uuid[], 'q16', 'w16')$$);
SELECT pg_temp.try($$SELECT * FROM queue.complete_and_claim(ARRAY[1600002, 1600002], ARRAY[gen_random_uuid(), gen_random_uuid()], 'q16', 'w16')$$);
SELECT pg_temp.try($$SELECT * FROM queue.complete_and_claim(ARRAY[[1600002]], ARRAY[[gen_random_uuid()]], 'q16', 'w16')$$);
-- results of the wrong length (the held leases are right)
SELECT pg_temp.cc('''q16'', ''w16'', 1, NULL, ARRAY[''{}'']::jsonb[]');
SELECT pg_temp.cc('''q16'', ''w16'', 1, NULL, ARRAY[''{}'', ''{}'', ''{}'']::jsonb[]');
-- a result over queue.max_payload_bytes
SET queue.max_payload_bytes = 64;
SELECT pg_temp.cc(format('%L, %L, 1, NULL, ARRAY[NULL, jsonb_build_object(%L, repeat(%L, 100))]', 'q16', 'w16', 'blob', 'x'));
RESET queue.max_payload_bytes;
-- an unknown queue: the completions had been done when the claim found no
-- such queue, and the whole statement rolls back
SELECT pg_temp.cc('''q16_none'', ''w16'', 1');
SELECT pg_temp.cc('''Not A Name!'', ''w16'', 1');
-- nothing moved
SELECT * FROM pg_temp.jobs('q16');
SELECT count(*) AS changed FROM queue.job j JOIN before b USING (id)
 WHERE j.state IS DISTINCT FROM b.state OR j.lease_token IS DISTINCT FROM b.lease_token;
-- (the direct form, for the SQLSTATE alone)
\set VERBOSITY sqlstate
SELECT * FROM queue.complete_and_claim('{}', '{}', NULL, 'w16');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT * FROM queue.complete_and_claim('{}', '{}', 'q16', 'w16', 0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT * FROM queue.complete_and_claim(ARRAY[1600002], ARRAY['00000000-0000-0000-0000-000000000000']::uuid[], 'q16', 'w16');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT * FROM queue.complete_and_claim('{}', '{}', 'q16_none', 'w16');
\echo sqlstate: :LAST_ERROR_SQLSTATE
\set VERBOSITY default

--
-- A paused queue: the completions go through, nothing is claimed.
--
SELECT queue.pause_queue('q16');
SELECT pg_temp.turn('q16', 5, ARRAY['{"done": 2}', NULL]::jsonb[]);
SELECT * FROM pg_temp.jobs('q16');
SELECT queue.resume_queue('q16');

--
-- Jobs of another queue can be completed while claiming from this one.
--
SELECT queue.enqueue('q16_other', '{"o": 1}') AS other_job \gset
INSERT INTO held SELECT job_id, lease_token FROM queue.claim('q16_other', 'w16') RETURNING job_id;
SELECT pg_temp.turn('q16', 1, ARRAY['{"other": true}']::jsonb[]);
SELECT * FROM pg_temp.jobs('q16_other');
SELECT * FROM pg_temp.jobs('q16');
-- The next turns complete what the turn before claimed: the last job,
-- then nothing left to claim, and the worker holds nothing.
SELECT pg_temp.turn('q16', 3);
SELECT pg_temp.turn('q16', 3);
SELECT count(*) AS held FROM held;
SELECT state, count(*) FROM queue.jobs WHERE queue = 'q16' GROUP BY state ORDER BY state;

--
-- An ordered queue: completing a group's head promotes the next job of the
-- group, and the claim of the same statement can take it.
--
SELECT queue.create_queue('q16_ordered', ordered => true) > 0 AS created;
SELECT count(*) AS enqueued
  FROM queue.enqueue_many('q16_ordered', '[{"payload": {"g": 1}, "group_key": "g"},
                                           {"payload": {"g": 2}, "group_key": "g"}]');
SELECT pg_temp.turn('q16_ordered');
SELECT id, state FROM queue.jobs WHERE queue = 'q16_ordered' ORDER BY id;
SELECT pg_temp.turn('q16_ordered');
SELECT id, state FROM queue.jobs WHERE queue = 'q16_ordered' ORDER BY id;
SELECT pg_temp.turn('q16_ordered');
SELECT id, state FROM queue.jobs WHERE queue = 'q16_ordered' ORDER BY id;

--
-- Saga steps completed through complete_and_claim move their saga, with
-- the result in the saga's context; the claim of the same statement sees
-- the next step's job, enqueued by the completion.
--
SELECT count(queue.create_queue(q)) FROM unnest(ARRAY['q16_sa', 'q16_sb', 'q16_sa_undo']) q;
SELECT queue.define_saga('s16', '[
  {"name": "one", "queue": "q16_sa", "compensation_queue": "q16_sa_undo"},
  {"name": "two", "queue": "q16_sb"}]') AS version;
SELECT queue.start_saga('s16', '{"order": 16}') AS saga \gset
SELECT pg_temp.turn('q16_sa');
SELECT status, current_step, context FROM queue.sagas WHERE id = :saga;
-- completes step one, and claims from step two's queue: its job is there
SELECT pg_temp.turn('q16_sb', 1, ARRAY['{"one": "ok"}']::jsonb[]);
SELECT status, current_step, context FROM queue.sagas WHERE id = :saga;
SELECT id, queue, state, result FROM queue.jobs WHERE (payload ->> 'saga_id')::bigint = :saga ORDER BY id;
SELECT pg_temp.turn('q16_sb', 1, ARRAY['{"two": "ok"}']::jsonb[]);
SELECT status, current_step, context, finished_at IS NOT NULL AS finished FROM queue.sagas WHERE id = :saga;
SELECT step, kind, event, job_id FROM queue.saga_timeline(:saga);
-- A stale step completion through complete_and_claim is refused like any
-- other, and the saga does not move.
SELECT queue.start_saga('s16', '{"order": 17}') AS saga2 \gset
SELECT pg_temp.turn('q16_sa');
SELECT pg_temp.try(format('SELECT * FROM queue.complete_and_claim(ARRAY[%s], ARRAY[%L]::uuid[], %L, %L)',
                          (SELECT job_id FROM held), '00000000-0000-0000-0000-000000000000', 'q16_sb', 'w16'));
SELECT status, current_step, context FROM queue.sagas WHERE id = :saga2;
SELECT pg_temp.turn('q16_sa', 1, ARRAY['{"one": "again"}']::jsonb[]);
SELECT status, current_step, context FROM queue.sagas WHERE id = :saga2;
SELECT queue.cancel_saga(:saga2);

-- Clean up.
SELECT queue.drop_queue(name, force => true) FROM queue.list_queues() WHERE name LIKE 'q16%' ORDER BY name;
