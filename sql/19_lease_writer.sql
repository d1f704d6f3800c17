--
-- 19_lease_writer: claim and complete_and_claim lock their jobs with a
-- SELECT ... FOR UPDATE SKIP LOCKED and write the claim into each row
-- themselves (the row writer's updater, src/rowwriter.c), without an
-- UPDATE statement; complete, complete_many and complete_and_claim delete
-- the jobs they finish themselves (the row writer's deleter), without a
-- DELETE statement.  They must leave exactly what the statements would:
-- every column as the statement sets it, every index entry (amcheck
-- checks each index against the heap), every constraint of queue.job
-- checked, users' own included, unique indexes checked, only jobs that
-- carry the caller's token deleted, and a table the writer must not
-- write (a trigger) left to the statement.
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
CREATE TEMP TABLE first_lease AS
SELECT job_id, attempt, lease_expires_at FROM queue.claim('cw', 'w1', 1, lease => '1 millisecond');
SELECT job_id, attempt FROM first_lease;
SELECT pg_sleep(0.05);
SELECT job_id, attempt FROM queue.claim('cw', 'w2', 1);
SELECT * FROM pg_temp.jobs() WHERE id = 1900005;
SELECT (j.errors->0->>'at')::timestamptz = f.lease_expires_at AS expired_at_noted
  FROM queue.job j JOIN first_lease f ON f.job_id = j.id;
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

-- All of the above went through the updater: still no UPDATE plan.
SELECT count(*) FILTER (WHERE ident LIKE '%UPDATE queue.job%') AS update_plans
  FROM pg_backend_memory_contexts;


--
-- Completion: the job leaves queue.job, and its archive row holds what
-- the DELETE statement's would (compared below with completions made
-- while a trigger on queue.job makes the deleter decline).
--
DELETE FROM queue.job WHERE queue_id = queue._queue_id('cw');
CREATE FUNCTION pg_temp.two() RETURNS SETOF bigint LANGUAGE sql AS $$
	SELECT queue.enqueue('cw', (SELECT payload FROM big), headers => '{"h": 1}',
	                     priority => 3, max_attempts => 4);
	SELECT queue.enqueue('cw', '{"n": 2}', dedup_key => 'cw-k2',
	                     retry_policy => '{"backoff": "linear", "delay": 2}');
$$;
-- complete_many over what a claim of the same statement took
CREATE FUNCTION pg_temp.finish() RETURNS void LANGUAGE sql AS $$
	SELECT queue.complete_many(array_agg(job_id ORDER BY job_id), array_agg(lease_token ORDER BY job_id),
	                           array_agg(jsonb_build_object('r', attempt) ORDER BY job_id))
	  FROM queue.claim('cw', 'cw-done', 2);
$$;
SELECT count(*) FROM pg_temp.two();
SELECT pg_temp.finish();
SELECT count(*) FILTER (WHERE ident LIKE '%DELETE FROM queue.job%') AS delete_plans
  FROM pg_backend_memory_contexts;
-- Only a job that carries the caller's token is deleted: a stale token,
-- a second completion, and a batch with one stale pair raise QU001 and
-- change nothing.
SELECT count(*) FROM queue.enqueue_many('cw', '[{"payload": {"n": 10}}, {"payload": {"n": 11}}]');
CREATE TEMP TABLE held AS SELECT job_id, lease_token FROM queue.claim('cw', 'cw-w8', 2);
-- (the tokens in the errors masked)
CREATE FUNCTION pg_temp.try_masked(stmt text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(pg_temp.try(stmt), '[0-9a-f]{8}-[0-9a-f-]{27}', '<token>');
$$;
SELECT pg_temp.try_masked(format('SELECT queue.complete(%s, %L)', min(job_id), gen_random_uuid()))
  FROM held;
BEGIN;
SELECT queue.complete(job_id, lease_token) FROM held WHERE job_id = (SELECT min(job_id) FROM held);
SELECT pg_temp.try_masked(format('SELECT queue.complete(%s, %L)', job_id, lease_token))
  FROM held WHERE job_id = (SELECT min(job_id) FROM held);
ROLLBACK;
SELECT pg_temp.try_masked(format('SELECT queue.complete_many(%L, %L)',
                          array_agg(job_id ORDER BY job_id),
                          array_agg(CASE WHEN job_id = (SELECT max(job_id) FROM held)
                                         THEN gen_random_uuid() ELSE lease_token END ORDER BY job_id)))
  FROM held;
SELECT state, count(*) FROM queue.job WHERE queue_id = queue._queue_id('cw') GROUP BY state;
SELECT count(*) AS completed FROM (
	SELECT queue.complete(job_id, lease_token) FROM held) c;
SELECT count(*) AS live FROM queue.job WHERE queue_id = queue._queue_id('cw');
SELECT * FROM pg_temp.check_indexes();

-- A claim and its completion in one REPEATABLE READ transaction: the
-- completion sees the claim.
SELECT queue.enqueue('cw', '{"n": 13}') > 0 AS enqueued;
BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE TEMP TABLE rr_held AS SELECT job_id, lease_token FROM queue.claim('cw', 'cw-rr', 1);
SELECT count(*) AS completed FROM (SELECT queue.complete(job_id, lease_token) FROM rr_held) c;
COMMIT;
SELECT state, worker FROM queue.job_archive
 WHERE queue_id = queue._queue_id('cw') AND payload = '{"n": 13}';

-- A job whose queue row is gone (deleted by hand): the completion is
-- refused with QU001, as the statement refuses it, and changes nothing.
SELECT queue.create_queue('cw_gone') IS NOT NULL AS created;
SELECT queue.enqueue('cw_gone', '{"n": 17}') > 0 AS enqueued;
CREATE TEMP TABLE gone_claim AS SELECT job_id, lease_token FROM queue.claim('cw_gone', 'cw-gone', 1);
DELETE FROM queue.queue WHERE name = 'cw_gone';
SELECT pg_temp.try_masked(format('SELECT queue.complete(%s, %L)', job_id, lease_token)) FROM gone_claim;
SELECT state, worker FROM queue.job WHERE id = (SELECT job_id FROM gone_claim);
DELETE FROM queue.job WHERE id = (SELECT job_id FROM gone_claim);

-- All of the above went through the deleter: no DELETE plan.
SELECT count(*) FILTER (WHERE ident LIKE '%DELETE FROM queue.job%') AS delete_plans
  FROM pg_backend_memory_contexts;

-- A primary key that is not the id column alone: the deleter declines,
-- and the statement completes the job.
SELECT queue.enqueue('cw', '{"n": 15}') > 0 AS enqueued;
BEGIN;
ALTER TABLE queue.job DROP CONSTRAINT job_pkey, ADD PRIMARY KEY (id, queue_id);
SELECT count(*) AS completed
  FROM (SELECT queue.complete(job_id, lease_token) FROM queue.claim('cw', 'cw-pk', 1)) c;
SELECT count(*) FILTER (WHERE ident LIKE 'WITH done AS%') > 0 AS statement_plans
  FROM pg_backend_memory_contexts;
ROLLBACK;

--
-- Fallbacks.  The same claims through the UPDATE statement (an AFTER
-- UPDATE trigger makes the updater decline; the trigger then fires for
-- each claimed job): every column the claim sets is the same.
--
CREATE TEMP TABLE fired (id bigint);
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO fired VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
	RETURN NULL;
END;
$$;
DELETE FROM queue.job WHERE queue_id = queue._queue_id('cw');
-- three jobs, one with a lease of its own, and one whose lease expired
-- (its next claim notes the expired attempt)
CREATE FUNCTION pg_temp.three() RETURNS SETOF bigint LANGUAGE sql AS $$
	SELECT queue.enqueue('cw', '{"n": 1}');
	UPDATE queue.job SET lease_timeout = '1 hour'
	 WHERE id = (SELECT max(id) FROM queue.job WHERE queue_id = queue._queue_id('cw'));
	SELECT queue.enqueue('cw', '{"n": 2}', priority => 5);
	SELECT job_id FROM queue.claim('cw', 'w0', 1, lease => '1 millisecond');
	SELECT pg_sleep(0.05);
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
       count(DISTINCT (j.state, j.priority, j.attempts, j.worker,
       (SELECT jsonb_agg(e - 'at') FROM jsonb_array_elements(j.errors) e),
       j.lease_timeout, j.run_at - j.claimed_at, j.lease_token IS NULL)) AS distinct_rows,
       min(j.attempts) AS attempts, min(jsonb_array_length(j.errors)) AS errors
  FROM queue.job j WHERE queue_id = queue._queue_id('cw')
 GROUP BY j.payload ORDER BY j.payload;
SELECT * FROM pg_temp.check_indexes();

-- The same completions through the DELETE statement (an AFTER DELETE
-- trigger makes the deleter decline; it then fires for each completed job).
TRUNCATE fired;
CREATE TRIGGER user_note AFTER DELETE ON queue.job
	FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
SELECT count(*) FROM pg_temp.two();
SELECT pg_temp.finish();
SELECT count(*) AS trigger_fired FROM fired;
DROP TRIGGER user_note ON queue.job;
SELECT count(*) AS live FROM queue.job WHERE queue_id = queue._queue_id('cw');
SELECT a.payload = (SELECT payload FROM big) AS big, count(*) AS jobs,
       count(DISTINCT (a.queue_id, a.state, a.priority, a.attempts, a.max_attempts,
       a.retry_policy, a.payload, a.headers, a.dedup_key, a.group_key, a.saga_id,
       a.saga_step, a.saga_compensation, a.worker, a.result, a.errors,
       a.finished_at >= a.created_at)) AS distinct_rows
  FROM queue.job_archive a WHERE a.queue_id = queue._queue_id('cw')
 GROUP BY 1 ORDER BY 1;
SELECT state, priority, attempts, max_attempts, retry_policy, headers,
       dedup_key, worker, result, errors
  FROM queue.job_archive
 WHERE queue_id = queue._queue_id('cw') AND payload = '{"n": 2}' LIMIT 1;

-- Rules on queue.job are not supported: with one, the UPDATE statement a
-- claim falls back to cannot run (0A000).
SELECT count(*) FROM queue.enqueue_many('cw', '[{"payload": {"n": 16}}]');
CREATE TABLE public.cw_rule_log (id bigint);
CREATE RULE user_rule AS ON UPDATE TO queue.job
	DO ALSO INSERT INTO public.cw_rule_log VALUES (NEW.id);
SELECT pg_temp.try($$SELECT queue.claim('cw', 'cw-rule', 1)$$);
DROP RULE user_rule ON queue.job;
DROP TABLE public.cw_rule_log;
DELETE FROM queue.job WHERE queue_id = queue._queue_id('cw') AND state = 'pending';

-- A publication of updates and deletes with a row filter on a column that
-- is not in the replica identity: the updater and the deleter refuse, as
-- the statements do.
SET client_min_messages = error;
CREATE PUBLICATION cw_pub FOR TABLE queue.job WHERE (priority > 100);
RESET client_min_messages;
SELECT count(*) FROM queue.enqueue_many('cw', '[{"payload": {"n": 12}}]');
SELECT pg_temp.try($$SELECT queue.claim('cw', 'cw-pub', 1)$$);
DROP PUBLICATION cw_pub;
CREATE TEMP TABLE pub_claim AS SELECT * FROM queue.claim('cw', 'cw-pub', 1);
SET client_min_messages = error;
CREATE PUBLICATION cw_pub FOR TABLE queue.job WHERE (priority > 100);
RESET client_min_messages;
SELECT pg_temp.try_masked(format('SELECT queue.complete(%s, %L)', job_id, lease_token)) FROM pub_claim;
DROP PUBLICATION cw_pub;
SELECT count(*) AS completed FROM (SELECT queue.complete(job_id, lease_token) FROM pub_claim) c;

-- A queue that keeps no finished jobs archives nothing.
SELECT count(*) AS archived FROM queue.job_archive WHERE queue_id = queue._queue_id('cw');
SELECT queue.alter_queue('cw', retention => '0');
SELECT count(*) FROM pg_temp.two();
SELECT pg_temp.finish();
SELECT count(*) AS archived FROM queue.job_archive WHERE queue_id = queue._queue_id('cw');
SELECT count(*) AS live FROM queue.job WHERE queue_id = queue._queue_id('cw');


-- A BEFORE DELETE trigger that skips the row: the job stays running, and
-- the completion is refused with QU001, its detail saying why.
CREATE FUNCTION pg_temp.skip() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END;
$$;
SELECT count(*) FROM queue.enqueue_many('cw', '[{"payload": {"n": 14}}]');
CREATE TEMP TABLE skip_claim AS SELECT job_id, lease_token FROM queue.claim('cw', 'cw-skip', 1);
CREATE TRIGGER user_skip BEFORE DELETE ON queue.job
	FOR EACH ROW EXECUTE FUNCTION pg_temp.skip();
DO $$
DECLARE
	st text;
	det text;
BEGIN
	PERFORM queue.complete(job_id, lease_token) FROM skip_claim;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, det = PG_EXCEPTION_DETAIL;
	RAISE NOTICE '%: %', st, regexp_replace(det, 'Job [0-9]+', 'Job <id>');
END;
$$;
DROP TRIGGER user_skip ON queue.job;
SELECT state, worker FROM queue.job WHERE id = (SELECT job_id FROM skip_claim);
DELETE FROM queue.job WHERE queue_id = queue._queue_id('cw');

-- A table that inherits from queue.job: an UPDATE or DELETE of queue.job
-- reaches its rows, so the updater and the deleter decline, and the
-- statements claim and complete its jobs too.
CREATE TABLE queue.job_child () INHERITS (queue.job);
INSERT INTO queue.job_child (queue_id, state, run_at, max_attempts, payload)
VALUES (queue._queue_id('cw'), 'pending', now() - interval '1 minute', 5, '{"child": true}');
SELECT count(*) FROM queue.enqueue_many('cw', '[{"payload": {"parent": true}}]');
CREATE TEMP TABLE child_claims AS SELECT * FROM queue.claim('cw', 'cw-child', 5);
SELECT payload, attempt FROM child_claims ORDER BY job_id;
SELECT tableoid::regclass, state, worker FROM queue.job WHERE queue_id = queue._queue_id('cw') ORDER BY id;
SELECT queue.complete_many(array_agg(job_id), array_agg(lease_token)) FROM child_claims;
SELECT count(*) AS live FROM queue.job WHERE queue_id = queue._queue_id('cw');
DROP TABLE queue.job_child;

SELECT queue.drop_queue('cw', force => true);
DROP EXTENSION amcheck;
