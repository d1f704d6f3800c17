--
-- 12_sagas: orchestrated sagas.  A saga type is an ordered list of steps,
-- each run by a job in its queue; a step that fails for good (or a cancel,
-- or a deadline) unwinds the saga: the compensations of the completed
-- steps run one at a time, last step first.
--
\set SHOW_CONTEXT never
-- Job ids of this suite start at 1200001, saga ids at 1201 (so messages
-- and payloads naming them are stable).
SELECT setval('queue.job_id_seq', 1200000);
SELECT setval('queue.saga_id_seq', 1200);
SELECT setval('queue.saga_definition_id_seq', 1200);

-- The queues of the steps (sg_a, sg_b, sg_c) and of their compensations.
SELECT count(queue.create_queue(q, retry_policy => '{"backoff": "fixed", "delay": 3600}'))
  FROM unnest(ARRAY['sg_a', 'sg_b', 'sg_c', 'sg_a_undo', 'sg_b_undo', 'sg_c_undo']) q;

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

-- Leases taken in this suite, by a name of our own.
CREATE TEMP TABLE lease (name text PRIMARY KEY, job_id bigint, token uuid,
                         expires_at timestamptz);
CREATE FUNCTION pg_temp.take(lname text, q text, lease interval DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
	INSERT INTO lease SELECT lname, c.job_id, c.lease_token, c.lease_expires_at
	  FROM queue.claim(q, 'w12', 1, lease) c
	    ON CONFLICT (name) DO UPDATE
	   SET job_id = excluded.job_id, token = excluded.token, expires_at = excluded.expires_at
	RETURNING job_id;
$$;
-- settle(lname, call): runs queue.<call> on a named lease, through try().
CREATE FUNCTION pg_temp.settle(lname text, call text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.try(format('SELECT queue.%s', replace(replace(call, '$id', l.job_id::text),
	                                                     '$token', quote_literal(l.token))))
	  FROM lease l WHERE l.name = lname;
$$;
-- ok(queue, result): a worker claims the next job of the queue and
-- completes it with result; returns the job's id (NULL: nothing to claim).
CREATE FUNCTION pg_temp.ok(q text, result jsonb DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	c record;
BEGIN
	SELECT * INTO c FROM queue.claim(q, 'w12');
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	PERFORM queue.complete(c.job_id, c.lease_token, result);
	RETURN c.job_id;
END;
$$;
-- ko(queue, error, permanent): a worker claims the next job of the queue
-- and fails it; returns the job's id and what fail said.
CREATE FUNCTION pg_temp.ko(q text, error text, permanent boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	c record;
BEGIN
	SELECT * INTO c FROM queue.claim(q, 'w12');
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	RETURN c.job_id || ' ' || queue.fail(c.job_id, c.lease_token, error, permanent);
END;
$$;
-- The live and finished jobs of the saga queues.
CREATE FUNCTION pg_temp.saga_jobs(saga bigint)
RETURNS TABLE (id bigint, queue text, state text, attempts integer, last_error text)
LANGUAGE sql AS $$
	SELECT j.id, j.queue, j.state, j.attempts, j.last_error FROM queue.jobs j
	 WHERE (j.payload ->> 'saga_id')::bigint = saga ORDER BY j.id;
$$;
-- A saga's timeline, without the times.
CREATE FUNCTION pg_temp.timeline(saga bigint)
RETURNS TABLE (step text, kind text, event text, job_id bigint, attempts integer, detail jsonb)
LANGUAGE sql AS $$
	SELECT t.step, t.kind, t.event, t.job_id, t.attempts, t.detail
	  FROM queue.saga_timeline(saga) t;
$$;

--
-- define_saga: a saga type, and its versions.
--
SELECT queue.define_saga('order', '[
  {"name": "reserve", "queue": "sg_a", "compensation_queue": "sg_a_undo"},
  {"name": "charge", "queue": "sg_b", "compensation_queue": "sg_b_undo",
   "max_attempts": 2, "retry_policy": {"backoff": "fixed", "delay": 0}},
  {"name": "ship", "queue": "sg_c", "compensation_queue": "sg_c_undo"}]') AS version;
-- a step without a compensation; the keys left out (or null) are not kept
SELECT queue.define_saga('trip', '[
  {"name": "flight", "queue": "sg_a", "compensation_queue": "sg_a_undo"},
  {"name": "hotel", "queue": "sg_b", "compensation_queue": null, "timeout": null},
  {"name": "car", "queue": "sg_c", "compensation_queue": "sg_c_undo"}]') AS version;
SELECT queue.define_saga('ver', '[{"name": "one", "queue": "sg_a"},
                                  {"name": "two", "queue": "sg_b"}]') AS version;
SELECT name, version, steps, deadline, created_at IS NOT NULL AS has_created_at
  FROM queue.list_sagas();

-- Bad definitions; nothing is defined.
SELECT queue.define_saga('bad', NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '{"name": "a", "queue": "sg_a"}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a"}, "b"]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "compensate": "sg_a_undo"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"queue": "sg_a"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": 1, "queue": "sg_a"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "", "queue": "sg_a"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a b", "queue": "sg_a"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "_a", "queue": "sg_a"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', format('[{"name": "%s", "queue": "sg_a"}]', repeat('a', 200))::jsonb);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a"}, {"name": "a", "queue": "sg_b"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "nowhere"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "compensation_queue": "nowhere"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "compensation_queue": 5}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "max_attempts": 0}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "max_attempts": 1.5}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "max_attempts": "3"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "retry_policy": {"backoff": "sometimes"}}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "retry_policy": {"delay": -1}}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "retry_policy": {"wait": 1}}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "timeout": 0}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "timeout": "10"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a", "deadline": -1}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a"}]', deadline => '0 seconds');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('bad', '[{"name": "a", "queue": "sg_a"}]', deadline => '-1 hour');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga('', '[{"name": "a", "queue": "sg_a"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.define_saga(NULL, '[{"name": "a", "queue": "sg_a"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) AS bad_definitions FROM queue.list_sagas() WHERE name = 'bad';

--
-- The happy path: each step's job carries the saga, the step, the input
-- and the context so far (the results of the steps before it, by step
-- name); the last step's completion completes the saga.
--
SELECT queue.start_saga('order', '{"order": 42}') AS saga \gset
SELECT :saga AS saga;
SELECT id, saga_type, version, status, input, context, current_step, compensating_step,
       job_id, failure, cancel_requested, deadline_at, finished_at
  FROM queue.sagas WHERE id = :saga;
SELECT id, queue, state, payload, headers FROM queue.jobs WHERE queue LIKE 'sg_%' ORDER BY id;
SELECT pg_temp.ok('sg_a', '{"reservation": "r-1"}');
SELECT id, queue, state, payload FROM queue.jobs WHERE queue = 'sg_b' AND state = 'ready';
SELECT status, current_step, context FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_b', '{"charge": "c-1"}');
SELECT id, queue, state, payload FROM queue.jobs WHERE queue = 'sg_c' AND state = 'ready';
SELECT pg_temp.ok('sg_c');
SELECT status, current_step, compensating_step, job_id, context, failure,
       finished_at IS NOT NULL AS finished
  FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
SELECT * FROM pg_temp.saga_jobs(:saga);
-- the jobs' tags
SELECT id, saga_id, saga_step, saga_compensation FROM queue.job_archive
 WHERE saga_id = :saga ORDER BY id;
-- nothing else is waiting
SELECT count(*) AS waiting FROM queue.job WHERE queue_id IN
  (SELECT id FROM queue.queue WHERE name LIKE 'sg_%');

--
-- A step that fails for good unwinds the saga: the compensations of the
-- steps that completed run last step first; each compensation's job has
-- the failure.  The failed step itself is not compensated.
--
-- The first step fails: nothing to compensate.
SELECT queue.start_saga('order', '{"order": 43}') AS saga \gset
SELECT pg_temp.ko('sg_a', 'out of stock', permanent => true);
SELECT status, current_step, compensating_step, job_id, failure,
       finished_at IS NOT NULL AS finished
  FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
-- The middle step fails: the first step is compensated.
SELECT queue.start_saga('order', '{"order": 44}') AS saga \gset
SELECT pg_temp.ok('sg_a', '{"reservation": "r-44"}');
SELECT pg_temp.ko('sg_b', 'card declined', permanent => true);
SELECT status, current_step, compensating_step, failure FROM queue.sagas WHERE id = :saga;
SELECT id, queue, state, payload, headers FROM queue.jobs WHERE queue = 'sg_a_undo' AND state = 'ready';
SELECT pg_temp.ok('sg_a_undo', '{"released": true}');
SELECT status, compensating_step, job_id, finished_at IS NOT NULL AS finished
  FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
-- The last step fails: the second, then the first, are compensated.
SELECT queue.start_saga('order', '{"order": 45}') AS saga \gset
SELECT pg_temp.ok('sg_a', '{"reservation": "r-45"}');
SELECT pg_temp.ok('sg_b', '{"charge": "c-45"}');
SELECT pg_temp.ko('sg_c', 'no courier', permanent => true);
SELECT status, current_step, compensating_step, failure FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_a_undo');
SELECT pg_temp.ok('sg_c_undo');
SELECT id, queue, state, payload FROM queue.jobs WHERE queue = 'sg_b_undo' AND state = 'ready';
SELECT pg_temp.ok('sg_b_undo', '{"refunded": true}');
SELECT status, compensating_step FROM queue.sagas WHERE id = :saga;
SELECT id, queue, state, payload FROM queue.jobs WHERE queue = 'sg_a_undo' AND state = 'ready';
SELECT pg_temp.ok('sg_a_undo');
SELECT status, compensating_step, job_id, finished_at IS NOT NULL AS finished
  FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
SELECT * FROM pg_temp.saga_jobs(:saga);

-- A step without a compensation is skipped while unwinding.
SELECT queue.start_saga('trip', '{"trip": 1}') AS saga \gset
SELECT pg_temp.ok('sg_a', '{"flight": "LH1"}');
SELECT pg_temp.ok('sg_b', '{"hotel": "H1"}');
SELECT pg_temp.ko('sg_c', 'no cars', permanent => true);
SELECT status, compensating_step, context, failure FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_a_undo');
SELECT status, compensating_step FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);

--
-- Retries: a step that fails with attempts left is retried (its max_attempts
-- and retry_policy are the step's); the saga keeps running.  When its
-- attempts are spent, the saga unwinds.
--
SELECT queue.start_saga('order', '{"order": 46}') AS saga \gset
SELECT pg_temp.ok('sg_a', '{"reservation": "r-46"}');
SELECT id, state, attempts, max_attempts, retry_policy FROM queue.jobs
 WHERE queue = 'sg_b' AND state = 'ready';
SELECT pg_temp.ko('sg_b', 'gateway timeout');
SELECT status, current_step, job_id FROM queue.sagas WHERE id = :saga;
SELECT id, state, attempts, last_error FROM queue.jobs WHERE queue = 'sg_b' AND state = 'ready';
SELECT pg_temp.ko('sg_b', 'gateway timeout again');
SELECT status, current_step, compensating_step, failure FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.saga_jobs(:saga);
SELECT pg_temp.ok('sg_a_undo');
SELECT status FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
-- A dead step job cannot be redriven: its saga has moved on.
SELECT queue.redrive(1200018);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.redrive('sg_b');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT state, attempts FROM queue.get_job(1200018);

--
-- A compensation that fails for good needs attention: the saga stops,
-- with the error.  retry_saga_compensation enqueues it again, and the
-- unwinding goes on from there.
--
SELECT queue.start_saga('order', '{"order": 47}') AS saga \gset
SELECT pg_temp.ok('sg_a', '{"reservation": "r-47"}');
SELECT pg_temp.ok('sg_b', '{"charge": "c-47"}');
SELECT pg_temp.ko('sg_c', 'no courier', permanent => true);
SELECT pg_temp.ko('sg_b_undo', 'refund refused', permanent => true);
SELECT status, current_step, compensating_step, job_id, failure,
       finished_at IS NOT NULL AS finished
  FROM queue.sagas WHERE id = :saga;
SELECT count(*) AS waiting FROM queue.job WHERE saga_id = :saga;
SELECT queue.retry_saga_compensation(:saga);
SELECT status, compensating_step, job_id FROM queue.sagas WHERE id = :saga;
SELECT id, queue, state, payload -> 'failure' AS failure FROM queue.jobs
 WHERE queue = 'sg_b_undo' AND state = 'ready';
SELECT pg_temp.ok('sg_b_undo');
SELECT pg_temp.ok('sg_a_undo');
SELECT status, compensating_step, job_id, finished_at IS NOT NULL AS finished
  FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
-- Only a saga that needs attention can be retried.
SELECT queue.retry_saga_compensation(:saga);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.retry_saga_compensation(999999);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.retry_saga_compensation(NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- cancel_saga
--
-- While the first step's job waits: the job is cancelled, and there is
-- nothing to compensate.  (What cancel_saga returns here is not shown:
-- see /work/bugs.md, it says 'compensating' of a saga it compensated.)
SELECT queue.start_saga('order', '{"order": 48}') AS saga \gset
SELECT queue.cancel_saga(:saga) IN ('compensating', 'compensated') AS cancelled;
SELECT status, current_step, job_id, failure, cancel_requested,
       finished_at IS NOT NULL AS finished
  FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.saga_jobs(:saga);
SELECT * FROM pg_temp.timeline(:saga);
-- While a later step's job waits: it is cancelled, the steps before it
-- are compensated.
SELECT queue.start_saga('order', '{"order": 49}') AS saga \gset
SELECT pg_temp.ok('sg_a');
SELECT queue.cancel_saga(:saga);
SELECT status, compensating_step, failure FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_a_undo');
SELECT status FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.saga_jobs(:saga);
-- While a step runs: the saga unwinds, but the running step is left to
-- settle; when it completes, it is compensated too.
SELECT queue.start_saga('order', '{"order": 50}') AS saga \gset
SELECT pg_temp.ok('sg_a', '{"reservation": "r-50"}');
SELECT pg_temp.take('charge50', 'sg_b') AS job_id;
SELECT queue.cancel_saga(:saga);
SELECT status, current_step, compensating_step, job_id, failure, cancel_requested
  FROM queue.sagas WHERE id = :saga;
SELECT state FROM queue.jobs WHERE id = (SELECT job_id FROM lease WHERE name = 'charge50');
-- cancelling again changes nothing
SELECT queue.cancel_saga(:saga);
SELECT pg_temp.settle('charge50', 'complete($id, $token, ''{"charge": "c-50"}'')');
SELECT status, compensating_step, context FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_b_undo');
SELECT pg_temp.ok('sg_a_undo');
SELECT status, finished_at IS NOT NULL AS finished FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
-- While a step runs, and it then fails with attempts left: its retry is
-- stopped (the job is cancelled) and the unwinding goes on below it.
SELECT queue.start_saga('order', '{"order": 51}') AS saga \gset
SELECT pg_temp.ok('sg_a', '{"reservation": "r-51"}');
SELECT pg_temp.take('charge51', 'sg_b') AS job_id;
SELECT queue.cancel_saga(:saga);
SELECT pg_temp.settle('charge51', 'fail($id, $token, ''gateway timeout'')');
SELECT * FROM pg_temp.saga_jobs(:saga);
SELECT status, compensating_step FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_a_undo');
SELECT status FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
-- A finished saga: cancel says what it is, and changes nothing.
SELECT id, queue.cancel_saga(id), status FROM queue.sagas
 WHERE id IN (1201, 1202) ORDER BY id;
SELECT queue.cancel_saga(999999);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.cancel_saga(NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- start_saga: idempotency key, and bad calls.
--
SELECT queue.start_saga('order', '{"order": 52}', idempotency_key => 'order-52') AS saga \gset
SELECT queue.start_saga('order', '{"order": 52}', idempotency_key => 'order-52') = :saga AS same;
SELECT queue.start_saga('order', '{"other": true}', idempotency_key => 'order-52') = :saga AS same;
SELECT count(*) AS sagas FROM queue.sagas WHERE idempotency_key = 'order-52';
SELECT count(*) AS first_jobs FROM queue.jobs WHERE queue = 'sg_a' AND state = 'ready';
-- the same key for another type is another saga
SELECT queue.start_saga('trip', '{}', idempotency_key => 'order-52') = :saga AS same;
SELECT queue.cancel_saga(id) IN ('compensating', 'compensated') AS cancelled
  FROM queue.sagas WHERE idempotency_key = 'order-52' ORDER BY id;
SELECT id, status FROM queue.sagas WHERE idempotency_key = 'order-52' ORDER BY id;
SELECT queue.start_saga('nothing', '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.start_saga('order', '[1, 2]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.start_saga('order', '"x"');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.start_saga('order', NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.start_saga('order', '{}', idempotency_key => '');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) AS waiting FROM queue.job WHERE saga_id IS NOT NULL;

--
-- Versions: define_saga with an existing name adds a version; a saga
-- keeps the version it started with, a new one gets the newest.
--
SELECT queue.start_saga('ver', '{}') AS saga \gset
SELECT version, current_step FROM queue.sagas WHERE id = :saga;
SELECT queue.define_saga('ver', '[{"name": "one", "queue": "sg_a"},
                                  {"name": "two", "queue": "sg_b"},
                                  {"name": "three", "queue": "sg_c"}]') AS version;
SELECT name, version, jsonb_array_length(steps) AS steps FROM queue.list_sagas() WHERE name = 'ver';
SELECT pg_temp.ok('sg_a');
SELECT pg_temp.ok('sg_b');
SELECT version, status, context FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
SELECT count(*) AS waiting FROM queue.job WHERE saga_id = :saga;
-- a new saga of the type runs the newest version
SELECT queue.start_saga('ver', '{}') AS saga \gset
SELECT pg_temp.ok('sg_a');
SELECT pg_temp.ok('sg_b');
SELECT pg_temp.ok('sg_c');
SELECT version, status, context FROM queue.sagas WHERE id = :saga;

--
-- A step's timeout is the lease of each of its jobs' attempts; a claim
-- that names a lease still overrides it.
--
SELECT queue.define_saga('timed', '[{"name": "slow", "queue": "sg_a", "timeout": 120}]');
SELECT queue.start_saga('timed', '{}') AS saga \gset
SELECT lease_timeout FROM queue.job WHERE saga_id = :saga;
SELECT pg_temp.take('slow', 'sg_a') AS job_id;
SELECT expires_at BETWEEN now() + interval '110 seconds' AND now() + interval '130 seconds'
       AS lease_is_the_timeout
  FROM lease WHERE name = 'slow';
SELECT pg_temp.settle('slow', 'release($id, $token)');
SELECT pg_temp.take('slow', 'sg_a', lease => '5 minutes') AS job_id;
SELECT expires_at BETWEEN now() + interval '290 seconds' AND now() + interval '310 seconds'
       AS lease_is_the_claims
  FROM lease WHERE name = 'slow';
-- extend without a lease extends by the timeout too
SELECT queue.extend(job_id, token) BETWEEN now() + interval '110 seconds'
                                        AND now() + interval '130 seconds' AS extended_by_the_timeout
  FROM lease WHERE name = 'slow';
SELECT pg_temp.settle('slow', 'complete($id, $token)');
SELECT status FROM queue.sagas WHERE id = :saga;
-- a worker that hangs past the timeout on the last attempt: expire_leases
-- makes the job dead ("lease expired"), and the step fails
SELECT queue.define_saga('timed', '[{"name": "slow", "queue": "sg_a", "timeout": 0.01,
                                     "max_attempts": 1}]');
SELECT queue.start_saga('timed', '{}') AS saga \gset
SELECT pg_temp.take('slow', 'sg_a') AS job_id;
SELECT pg_sleep(0.05);
SELECT queue.expire_leases();
SELECT * FROM pg_temp.saga_jobs(:saga);
SELECT status, failure FROM queue.sagas WHERE id = :saga;

--
-- A step's deadline runs across its attempts: a retry that would start
-- after it dies at once, no attempt starts after it, and expire_leases
-- makes a job waiting past it dead ("deadline passed").
--
SELECT queue.define_saga('due', '[
  {"name": "first", "queue": "sg_a", "compensation_queue": "sg_a_undo"},
  {"name": "second", "queue": "sg_b", "deadline": 60, "max_attempts": 5,
   "retry_policy": {"backoff": "fixed", "delay": 3600}}]');
SELECT queue.start_saga('due', '{}') AS saga \gset
SELECT pg_temp.ok('sg_a');
SELECT deadline_at BETWEEN now() + interval '50 seconds' AND now() + interval '70 seconds'
       AS deadline_set
  FROM queue.job WHERE saga_id = :saga;
-- attempts are left, but the retry would start after the deadline
SELECT pg_temp.ko('sg_b', 'busy');
SELECT status, compensating_step, failure FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_a_undo');
SELECT status FROM queue.sagas WHERE id = :saga;
-- a one-second deadline passes while the step's job waits
SELECT queue.define_saga('due', '[
  {"name": "first", "queue": "sg_a", "compensation_queue": "sg_a_undo"},
  {"name": "second", "queue": "sg_b", "deadline": 1}]');
SELECT queue.start_saga('due', '{}') AS saga \gset
SELECT pg_temp.ok('sg_a');
SELECT pg_sleep(1.1);
SELECT count(*) AS claimed FROM queue.claim('sg_b', 'w12');
SELECT queue.expire_leases();
SELECT * FROM pg_temp.saga_jobs(:saga);
SELECT status, compensating_step, failure FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_a_undo');
SELECT status FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);

--
-- A saga's deadline: expire_saga_deadlines unwinds the running sagas past
-- it.  A step running then is left to settle (and then compensated).
--
SELECT queue.define_saga('quick', '[
  {"name": "first", "queue": "sg_a", "compensation_queue": "sg_a_undo"},
  {"name": "second", "queue": "sg_b"}]', deadline => '1 second');
SELECT deadline FROM queue.list_sagas() WHERE name = 'quick';
SELECT queue.start_saga('quick', '{}') AS saga \gset
SELECT deadline_at BETWEEN now() + interval '0.5 seconds' AND now() + interval '1.5 seconds'
       AS deadline_set
  FROM queue.sagas WHERE id = :saga;
SELECT queue.expire_saga_deadlines();
SELECT pg_temp.take('quick', 'sg_a') AS job_id;
SELECT pg_sleep(1.1);
SELECT queue.expire_saga_deadlines();
SELECT status, current_step, job_id, failure, cancel_requested FROM queue.sagas WHERE id = :saga;
SELECT queue.expire_saga_deadlines();
SELECT pg_temp.settle('quick', 'complete($id, $token)');
SELECT status, compensating_step FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_a_undo');
SELECT status FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.timeline(:saga);
SELECT queue.expire_saga_deadlines(0);
\echo sqlstate: :LAST_ERROR_SQLSTATE

--
-- An operator who cancels, deletes or purges a saga's waiting job fails
-- it: a step's job unwinds the saga, a compensation's job makes it need
-- attention.  A running job cannot be cancelled or deleted.
--
SELECT queue.start_saga('order', '{"order": 53}') AS saga \gset
SELECT pg_temp.ok('sg_a');
SELECT queue.cancel_job(job_id) FROM queue.sagas WHERE id = :saga;
SELECT status, compensating_step, failure FROM queue.sagas WHERE id = :saga;
SELECT pg_temp.ok('sg_a_undo');
SELECT status FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.saga_jobs(:saga);
SELECT * FROM pg_temp.timeline(:saga);
SELECT queue.start_saga('order', '{"order": 54}') AS saga \gset
SELECT pg_temp.ok('sg_a');
SELECT pg_temp.take('charge54', 'sg_b') AS job_id;
SELECT queue.delete_job(job_id) FROM lease WHERE name = 'charge54';
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT pg_temp.settle('charge54', 'release($id, $token)');
SELECT queue.delete_job(job_id) FROM lease WHERE name = 'charge54';
SELECT status, compensating_step, failure FROM queue.sagas WHERE id = :saga;
SELECT queue.purge_queue('sg_a_undo');
SELECT status, compensating_step, job_id, failure FROM queue.sagas WHERE id = :saga;
SELECT * FROM pg_temp.saga_jobs(:saga);
SELECT * FROM pg_temp.timeline(:saga);

--
-- stuck_sagas and saga_stats
--
SELECT queue.start_saga('order', '{"order": 55}') AS saga \gset
SELECT pg_temp.ok('sg_a');
SELECT pg_temp.ko('sg_b', 'card declined', permanent => true);
SELECT pg_temp.ko('sg_a_undo', 'release refused', permanent => true);
SELECT queue.start_saga('trip', '{"trip": 2}') AS saga2 \gset
SELECT pg_sleep(0.05);
SELECT id, saga_type, status, current_step, compensating_step FROM queue.stuck_sagas('10 ms');
SELECT count(*) AS stuck FROM queue.stuck_sagas();
SELECT * FROM queue.saga_stats ORDER BY saga_type;

--
-- A stale completion of a saga step (its lease expired and another
-- attempt holds the job) is refused, and counted in saga_stats even
-- though the refusal rolls back.
--
SELECT pg_temp.take('stale', 'sg_a', lease => '10 ms') AS job_id;
SELECT pg_sleep(0.05);
SELECT pg_temp.take('fresh', 'sg_a') AS job_id;
SELECT pg_temp.settle('stale', 'complete($id, $token)');
-- (directly: the error names the random token, so only its SQLSTATE is shown)
\set VERBOSITY sqlstate
SELECT queue.complete(job_id, token) FROM lease WHERE name = 'stale';
\echo sqlstate: :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT saga_type, stale_completions FROM queue.saga_stats ORDER BY saga_type;
SELECT status, context FROM queue.sagas WHERE id = :saga2;
SELECT pg_temp.settle('fresh', 'complete($id, $token, ''{"flight": "LH2"}'')');
SELECT status, context FROM queue.sagas WHERE id = :saga2;
SELECT queue.cancel_saga(:saga2);
