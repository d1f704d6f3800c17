--
-- 19_claim_writer: claim and complete_and_claim lock their jobs with a
-- SELECT ... FOR UPDATE SKIP LOCKED and write the claim into each row
-- themselves (the row writer's updater, src/rowwriter.c), without an
-- UPDATE statement.  They must leave exactly what the UPDATE would:
-- every column as the statement sets it, every index entry (amcheck
-- checks each index against the heap), every constraint of queue.job
-- checked, users' own included, unique indexes checked, and a table the
-- updater must not write (a trigger) left to the UPDATE statement.
--
\set SHOW_CONTEXT never
SELECT setval('queue.job_id_seq', 1900000);
CREATE EXTENSION IF NOT EXISTS amcheck;

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
-- Every index of queue.job against the heap: each live row version must
-- have its entry in each index whose predicate it meets.
CREATE FUNCTION pg_temp.check_indexes() RETURNS TABLE (index regclass, ok boolean)
LANGUAGE sql AS $$
	SELECT i.indexrelid::regclass, true
	  FROM pg_index i, LATERAL bt_index_check(i.indexrelid, heapallindexed => true)
	 WHERE i.indrelid = 'queue.job'::regclass
	 ORDER BY 1::text;
$$;
-- The jobs of queue cw as a claim leaves them, without what differs from
-- run to run.
CREATE FUNCTION pg_temp.jobs() RETURNS TABLE (
	id bigint, state text, priority integer, attempts integer, worker text,
	leased boolean, lease_ok boolean, errors jsonb, payload_size integer)
LANGUAGE sql AS $$
	SELECT id, state, priority, attempts, worker, lease_token IS NOT NULL,
	       CASE WHEN state = 'running'
	            THEN run_at = claimed_at + coalesce(lease_timeout, interval '30 seconds') END,
	       (SELECT coalesce(jsonb_agg(e - 'at' ORDER BY ord), '[]')
	          FROM jsonb_array_elements(j.errors) WITH ORDINALITY AS x(e, ord)),
	       length(payload::text)
	  FROM queue.job j WHERE queue_id = queue._queue_id('cw') ORDER BY id;
$$;

SELECT queue.create_queue('cw', lease_timeout => '30 seconds') IS NOT NULL AS created;
CREATE TEMP TABLE big AS
SELECT jsonb_build_object('big', string_agg(md5(i::text), '')) AS payload
  FROM generate_series(1, 5000) i;

-- Jobs of three priorities, one with a payload stored out of line (TOAST)
-- and one with a lease of its own (a saga step's timeout).
SELECT queue.enqueue('cw', '{"n": 1}');
SELECT queue.enqueue('cw', '{"n": 2}', priority => 5, dedup_key => 'd2');
SELECT queue.enqueue('cw', (SELECT payload FROM big), priority => -1);
SELECT queue.enqueue('cw', '{"n": 4}', headers => '{"h": 4}');
UPDATE queue.job SET lease_timeout = '1 hour' WHERE id = 1900004;

-- Claimed in claim order (priority, then run_at and id), each with the
-- values the row now holds.
CREATE TEMP TABLE claimed AS
SELECT row_number() OVER () AS ord, * FROM queue.claim('cw', 'w1', 10);
SELECT c.ord, c.job_id, c.attempt, c.max_attempts, c.priority, c.dedup_key, c.headers,
       c.payload = j.payload AS payload_returned,
       c.lease_token = j.lease_token AS token_returned,
       c.lease_expires_at = j.run_at AS expiry_returned,
       c.enqueued_at = j.created_at AS enqueued_returned
  FROM claimed c JOIN queue.job j ON j.id = c.job_id ORDER BY c.ord;
SELECT * FROM pg_temp.jobs();
SELECT * FROM pg_temp.check_indexes();
SELECT (SELECT payload FROM queue.job WHERE id = 1900003) = (SELECT payload FROM big) AS big_kept;

-- The updater did the work: this session has no cached UPDATE of
-- queue.job (pg_regress gives each file a new session); it keeps the
-- plans of the claim's lock, and what its updater needs.
SELECT count(*) FILTER (WHERE ident LIKE '%UPDATE queue.job%') AS update_plans,
       count(*) FILTER (WHERE ident LIKE 'SELECT j.ctid%') > 0 AS lock_plans,
       count(*) FILTER (WHERE name = 'queue row writer cache') AS kept_entries
  FROM pg_backend_memory_contexts;

-- An expired lease: the next claim takes the job again, as attempt 2,
-- and notes the expired attempt in errors.
SELECT queue.enqueue('cw', '{"n": 5}');
SELECT job_id, attempt FROM queue.claim('cw', 'w1', 1, lease => '1 millisecond');
SELECT pg_sleep(0.05);
SELECT job_id, attempt FROM queue.claim('cw', 'w2', 1);
SELECT * FROM pg_temp.jobs() WHERE id = 1900005;
SELECT * FROM pg_temp.check_indexes();

--
-- The same claims through the UPDATE statement (an AFTER UPDATE trigger
-- that does nothing makes the updater decline; the trigger then fires for
-- each claimed job): every column the claim sets is the same.
--
CREATE TEMP TABLE fired (id bigint);
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO fired VALUES (NEW.id);
	RETURN NULL;
END;
$$;
DELETE FROM queue.job WHERE queue_id = queue._queue_id('cw');
CREATE FUNCTION pg_temp.three() RETURNS SETOF bigint LANGUAGE sql AS $$
	SELECT queue.enqueue('cw', '{"n": 1}');
	SELECT queue.enqueue('cw', '{"n": 2}', priority => 5);
	SELECT * FROM queue.enqueue_many('cw', '[{"payload": {"n": 3}, "priority": -1}]');
$$;
SELECT count(*) FROM pg_temp.three();
CREATE TRIGGER user_note AFTER UPDATE ON queue.job
	FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
SELECT c.payload, c.attempt, c.priority FROM queue.claim('cw', 'w3', 3) c;
SELECT count(*) AS trigger_fired FROM fired;
DROP TRIGGER user_note ON queue.job;
SELECT count(*) FILTER (WHERE ident LIKE 'WITH candidate AS MATERIALIZED%') > 0 AS statement_plans
  FROM pg_backend_memory_contexts;
SELECT count(*) FROM pg_temp.three();
SELECT c.payload, c.attempt, c.priority FROM queue.claim('cw', 'w3', 3) c;
SELECT count(*) AS trigger_fired FROM fired;
SELECT j.payload, count(*) AS jobs,
       count(DISTINCT (j.state, j.priority, j.attempts, j.worker, j.errors,
       j.run_at - j.claimed_at, j.lease_token IS NULL)) AS distinct_rows
  FROM queue.job j WHERE queue_id = queue._queue_id('cw')
 GROUP BY j.payload ORDER BY j.payload;
SELECT * FROM pg_temp.check_indexes();

--
-- A user's CHECK constraint holds for the claim: a claim it refuses
-- raises the constraint's error and changes nothing.
--
DELETE FROM queue.job WHERE queue_id = queue._queue_id('cw');
SELECT queue.enqueue('cw', '{"n": 6}') > 0 AS enqueued;
ALTER TABLE queue.job ADD CONSTRAINT user_worker_check
	CHECK (worker IS DISTINCT FROM 'forbidden') NOT VALID;
SELECT pg_temp.try($$SELECT queue.claim('cw', 'forbidden', 1)$$);
SELECT pg_temp.try($$SELECT queue.complete_and_claim('{}', '{}', 'cw', 'forbidden', 1)$$);
SELECT state, attempts, worker FROM queue.job WHERE queue_id = queue._queue_id('cw');
SELECT attempt FROM queue.claim('cw', 'allowed', 1);
ALTER TABLE queue.job DROP CONSTRAINT user_worker_check;
-- The extension's own constraints too: with the lease check changed to
-- refuse running jobs, a claim is refused.
SELECT queue.enqueue('cw', '{"n": 7}') > 0 AS enqueued;
BEGIN;
ALTER TABLE queue.job DROP CONSTRAINT job_lease_check,
  ADD CONSTRAINT job_lease_check CHECK (state <> 'running') NOT VALID;
SELECT pg_temp.try($$SELECT queue.claim('cw', 'w4', 1)$$);
ROLLBACK;

--
-- A unique index is checked on the claim's new row versions: one running
-- job per worker refuses a batch of two for one worker, whole.
--
DELETE FROM queue.job WHERE queue_id = queue._queue_id('cw');
SELECT count(*) FROM queue.enqueue_many('cw', '[{"payload": {"n": 8}}, {"payload": {"n": 9}}]');
CREATE UNIQUE INDEX user_one_job_per_worker ON queue.job (worker)
	WHERE state = 'running' AND worker LIKE 'cw-%';
SELECT pg_temp.try($$SELECT queue.claim('cw', 'cw-w5', 2)$$);
SELECT state, count(*) FROM queue.job WHERE queue_id = queue._queue_id('cw') GROUP BY state;
SELECT count(*) AS claimed FROM queue.claim('cw', 'cw-w5', 1);
SELECT count(*) AS claimed FROM queue.claim('cw', 'cw-w6', 1);
SELECT * FROM pg_temp.check_indexes();
DROP INDEX queue.user_one_job_per_worker;

-- A read-only transaction cannot claim.
BEGIN READ ONLY;
SELECT pg_temp.try($$SELECT queue.claim('cw', 'w7', 1)$$);
ROLLBACK;

SELECT queue.drop_queue('cw', force => true);
DROP EXTENSION amcheck;
