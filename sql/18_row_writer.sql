--
-- 18_row_writer: enqueue and enqueue_many write jobs without an INSERT
-- statement (src/rowwriter.c), and must leave exactly what an INSERT
-- would: every column as the SQL path sets it, every index entry (amcheck
-- checks each index against the heap), every constraint of queue.job
-- checked, users' own included, and a table the writer must not write
-- (a trigger, a column with a default it does not know) left to the
-- INSERT statement, whose effects then show.
--
\set SHOW_CONTEXT never
SELECT setval('queue.job_id_seq', 1800000);
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
-- Every index of queue.job against the heap: each live row must have its
-- entry in each index whose predicate it meets.
CREATE FUNCTION pg_temp.check_indexes() RETURNS TABLE (index regclass, ok boolean)
LANGUAGE sql AS $$
	SELECT i.indexrelid::regclass, true
	  FROM pg_index i, LATERAL bt_index_check(i.indexrelid, heapallindexed => true)
	 WHERE i.indrelid = 'queue.job'::regclass
	 ORDER BY 1::text;
$$;

SELECT queue.create_queue('rw') IS NOT NULL AS created;
SELECT queue.create_queue('rw_ordered', ordered => true) IS NOT NULL AS created;

-- One job and a batch, every optional argument set or not.
SELECT queue.enqueue('rw', '{"n": 1}');
SELECT queue.enqueue('rw', '{"n": 2}', headers => '{"h": "x"}', delay => '1 hour',
                     priority => 5, max_attempts => 9,
                     retry_policy => '{"backoff": "linear", "delay": 2}');
SELECT * FROM queue.enqueue_many('rw', '[{"payload": {"n": 3}},
  {"payload": {"n": 4}, "priority": -2, "headers": {"a": 1}, "max_attempts": 2}]');
-- Ordered: the first of a group is pending, the rest blocked.
SELECT * FROM queue.enqueue_many('rw_ordered', '[{"payload": {"n": 5}, "group_key": "g"},
  {"payload": {"n": 6}, "group_key": "g"}, {"payload": {"n": 7}, "group_key": "h"}]');
SELECT queue.enqueue('rw_ordered', '{"n": 8}', group_key => 'g');

SELECT id, queue_id = queue._queue_id('rw') AS in_rw, state, priority,
       run_at > created_at + interval '59 minutes' AS delayed,
       attempts, max_attempts, retry_policy, last_delay, payload, headers,
       dedup_key, group_key, lease_timeout, deadline_at, saga_id, saga_step,
       saga_compensation, lease_token, worker, claimed_at, errors,
       created_at = run_at OR run_at > created_at AS created_set
  FROM queue.job WHERE id > 1800000 ORDER BY id;
SELECT * FROM pg_temp.check_indexes();

-- The writer did the work: this session has no cached INSERT statement on
-- queue.job (pg_regress gives each file a new session), and it keeps what
-- its writer of queue.job needs (one cache entry).
SELECT count(*) FILTER (WHERE ident LIKE 'INSERT INTO queue.job%') AS insert_plans,
       count(*) FILTER (WHERE name = 'queue row writer cache') AS kept_entries
  FROM pg_backend_memory_contexts;

-- The same jobs as at the top, through the INSERT statement (an AFTER
-- trigger that does nothing makes the writer decline): every column but
-- the id and the times is the same.
CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END;
$$;
CREATE TRIGGER user_noop AFTER INSERT ON queue.job
	FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
SELECT queue.enqueue('rw', '{"n": 1}') > 0 AS enqueued;
SELECT queue.enqueue('rw', '{"n": 2}', headers => '{"h": "x"}', delay => '1 hour',
                     priority => 5, max_attempts => 9,
                     retry_policy => '{"backoff": "linear", "delay": 2}') > 0 AS enqueued;
SELECT count(*) FROM queue.enqueue_many('rw', '[{"payload": {"n": 3}},
  {"payload": {"n": 4}, "priority": -2, "headers": {"a": 1}, "max_attempts": 2}]');
DROP TRIGGER user_noop ON queue.job;
SELECT j.payload, count(DISTINCT (j.queue_id, j.state, j.priority, j.attempts, j.max_attempts,
       j.retry_policy, j.last_delay, j.headers, j.dedup_key, j.group_key,
       j.lease_timeout, j.deadline_at, j.saga_id, j.saga_step,
       j.saga_compensation, j.worker, j.errors,
       j.run_at - j.created_at > interval '59 minutes')) AS distinct_rows,
       count(*) AS jobs
  FROM queue.job j WHERE j.id > 1800000 AND j.payload->>'n' IN ('1', '2', '3', '4')
 GROUP BY j.payload ORDER BY j.payload;

-- The jobs can be claimed, in claim order; a blocked job waits.
SELECT job_id, attempt FROM queue.claim('rw', 'w', 3);
SELECT job_id FROM queue.claim('rw_ordered', 'w', 10);

--
-- A unique index is checked: a sequence set back makes an id taken.
--
SELECT setval('queue.job_id_seq', 1800000);
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 9}')$$);
SELECT pg_temp.try($$SELECT queue.enqueue_many('rw', '[{"payload": {"n": 9}}]')$$);
SELECT count(*) FROM queue.job WHERE id > 1800000 AND payload = '{"n": 9}';
SELECT setval('queue.job_id_seq', 1800100);

--
-- A user's CHECK constraint holds for both calls, and a changed one takes
-- effect at once in this session (the parsed constraints it keeps are
-- those of the constraint texts now).
--
ALTER TABLE queue.job ADD CONSTRAINT user_priority_check CHECK (priority < 100);
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 10}', priority => 100)$$);
SELECT pg_temp.try($$SELECT queue.enqueue_many('rw', '[{"payload": {"n": 10}}, {"payload": {"n": 11}, "priority": 500}]')$$);
SELECT queue.enqueue('rw', '{"n": 12}', priority => 99);
ALTER TABLE queue.job DROP CONSTRAINT user_priority_check;
ALTER TABLE queue.job ADD CONSTRAINT user_priority_check CHECK (priority < 50) NOT VALID;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 13}', priority => 99)$$);
ALTER TABLE queue.job DROP CONSTRAINT user_priority_check;
SELECT queue.enqueue('rw', '{"n": 14}', priority => 99);
SELECT count(*) FROM queue.job WHERE id > 1800000 AND payload->>'n' IN ('10', '11', '13');
-- A constraint calling a user's function is planned at each call (as the
-- executor does), so a function replaced since is the one checked.
CREATE FUNCTION public.rw_priority_limit() RETURNS integer
	LANGUAGE sql IMMUTABLE AS $$ SELECT 100 $$;
ALTER TABLE queue.job ADD CONSTRAINT user_function_check
	CHECK (priority < public.rw_priority_limit()) NOT VALID;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 22}', priority => 150)$$);
CREATE OR REPLACE FUNCTION public.rw_priority_limit() RETURNS integer
	LANGUAGE sql IMMUTABLE AS $$ SELECT 200 $$;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 22}', priority => 150)$$);
ALTER TABLE queue.job DROP CONSTRAINT user_function_check;
DROP FUNCTION public.rw_priority_limit();
SELECT count(*) FROM queue.job WHERE id > 1800000 AND payload->>'n' = '22';
-- A constraint through a domain that has no constraints yet: planning
-- drops the domain's check, so such a constraint is planned at each call,
-- and a constraint the domain gets later is checked at once.
CREATE DOMAIN public.rw_small AS integer;
ALTER TABLE queue.job ADD CONSTRAINT user_domain_check
	CHECK ((priority::public.rw_small) IS NOT NULL) NOT VALID;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 23}', priority => 50)$$);
ALTER DOMAIN public.rw_small ADD CONSTRAINT rw_small_check CHECK (VALUE < 10);
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 24}', priority => 50)$$);
ALTER TABLE queue.job DROP CONSTRAINT user_domain_check;
DROP DOMAIN public.rw_small;
SELECT payload->>'n' AS n FROM queue.job WHERE id > 1800000 AND payload->>'n' IN ('23', '24');
-- The same through a domain that has a constraint from the start: the
-- constraint is not kept ready (ALTER DOMAIN does not invalidate the
-- table), so the domain's new constraint is checked at once.
CREATE DOMAIN public.rw_prio AS integer CHECK (VALUE < 100);
ALTER TABLE queue.job ADD CONSTRAINT user_domain_check
	CHECK ((priority::public.rw_prio) IS NOT NULL) NOT VALID;
SELECT queue.enqueue('rw', '{"n": 25}', priority => 50) > 0 AS enqueued;
ALTER DOMAIN public.rw_prio ADD CONSTRAINT rw_prio_tight CHECK (VALUE < 10);
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 26}', priority => 50)$$);
ALTER TABLE queue.job DROP CONSTRAINT user_domain_check;
DROP DOMAIN public.rw_prio;
-- A constraint on the whole row, checked call after call (its state sets
-- itself up in the statement's memory, so it is prepared at each call).
ALTER TABLE queue.job ADD CONSTRAINT user_row_check
	CHECK ((row_to_json(job)->>'priority')::integer < 100) NOT VALID;
SELECT queue.enqueue('rw', '{"n": 27}', priority => 50) > 0 AS enqueued;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 28}', priority => 150)$$);
SELECT count(*) FROM queue.enqueue_many('rw', '[{"payload": {"n": 29}, "priority": 60}]');
SELECT pg_temp.try($$SELECT queue.enqueue_many('rw', '[{"payload": {"n": 28}, "priority": 160}]')$$);
ALTER TABLE queue.job DROP CONSTRAINT user_row_check;
-- A constraint whose planning fails: the error is the INSERT's, and the
-- session, having failed in the middle of building what it keeps, writes
-- whole rows afterwards, in the same transaction and the next ones.
ALTER TABLE queue.job ADD CONSTRAINT user_div_check CHECK (priority < 1 / 0) NOT VALID;
BEGIN;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 31}')$$);
ALTER TABLE queue.job DROP CONSTRAINT user_div_check;
SELECT queue.enqueue('rw', '{"n": 32}') > 0 AS enqueued;
COMMIT;
SELECT queue.enqueue('rw', '{"n": 33}') > 0 AS enqueued;
SELECT payload->>'n' AS n FROM queue.job
 WHERE id > 1800000 AND payload->>'n' IN ('25', '26', '27', '28', '29', '31', '32', '33') ORDER BY id;

--
-- The extension's own constraints are checked too: with one of them
-- changed to refuse pending jobs, the writer's rows are refused.
--
BEGIN;
ALTER TABLE queue.job DROP CONSTRAINT job_state_check,
  ADD CONSTRAINT job_state_check CHECK (state IN ('running', 'blocked')) NOT VALID;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"n": 15}')$$);
ROLLBACK;

--
-- A trigger on queue.job: the INSERT statement does the work, so the
-- trigger fires for every job.
--
CREATE FUNCTION pg_temp.stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.headers := coalesce(NEW.headers, '{}') || '{"stamped": true}';
	RETURN NEW;
END;
$$;
CREATE TRIGGER user_stamp BEFORE INSERT ON queue.job
	FOR EACH ROW EXECUTE FUNCTION pg_temp.stamp();
SELECT queue.enqueue('rw', '{"n": 16}');
SELECT count(*) FROM queue.enqueue_many('rw', '[{"payload": {"n": 17}}, {"payload": {"n": 18}}]');
DROP TRIGGER user_stamp ON queue.job;
-- ... through the INSERT statement, now planned and kept in this session
SELECT count(*) > 0 AS insert_plans FROM pg_backend_memory_contexts
 WHERE ident LIKE 'INSERT INTO queue.job%';
SELECT payload->>'n' AS n, headers FROM queue.job WHERE id > 1800000 AND payload->>'n' IN ('16', '17', '18') ORDER BY id;

--
-- A column the writer does not know, with a default: the INSERT fills it.
-- Without a default and nullable, the writer leaves it NULL as an INSERT
-- would.
--
ALTER TABLE queue.job ADD COLUMN user_note text DEFAULT 'noted';
SELECT queue.enqueue('rw', '{"n": 19}');
ALTER TABLE queue.job ALTER COLUMN user_note DROP DEFAULT;
SELECT queue.enqueue('rw', '{"n": 20}');
SELECT payload->>'n' AS n, user_note FROM queue.job WHERE id > 1800000 AND payload->>'n' IN ('19', '20') ORDER BY id;
ALTER TABLE queue.job DROP COLUMN user_note;
SELECT queue.enqueue('rw', '{"n": 21}');

SELECT * FROM pg_temp.check_indexes();

--
-- A batch larger than one heap multi-insert (100 rows) is written whole,
-- every index with it.
SELECT count(*) FROM queue.enqueue_many('rw', (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('big_batch', i))) FROM generate_series(1, 250) i));
SELECT count(*), count(DISTINCT payload), min(id) > 1800000 AS ours
  FROM queue.job WHERE payload ? 'big_batch';
SELECT * FROM pg_temp.check_indexes();

--
-- Rolled back: the jobs are gone, and the indexes agree.
--
BEGIN;
SELECT count(*) FROM queue.enqueue_many('rw', (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('rolled_back', i))) FROM generate_series(1, 500) i));
ROLLBACK;
SELECT count(*) FROM queue.job WHERE id > 1800000 AND payload ? 'rolled_back';
SELECT * FROM pg_temp.check_indexes();

--
-- What the session keeps for its writer follows the table's indexes: an
-- index created after the writer's first use gets the entries of later
-- rows, both an expression index with a predicate (kept ready) and one
-- through a user's function (prepared at each call); a unique index
-- created later is enforced; a dropped one is no longer written; an index
-- created in a transaction that rolls back leaves nothing behind.
--
CREATE FUNCTION public.rw_key(j jsonb) RETURNS text
	LANGUAGE sql IMMUTABLE AS $$ SELECT j->>'k' $$;
CREATE INDEX rw_expr_idx ON queue.job ((payload->>'k')) WHERE payload ? 'k';
CREATE INDEX rw_func_idx ON queue.job (public.rw_key(payload))
	WHERE public.rw_key(payload) IS NOT NULL;
SELECT queue.enqueue('rw', '{"k": "a"}') > 0 AS enqueued;
SELECT count(*) FROM queue.enqueue_many('rw', '[{"payload": {"k": "b"}}, {"payload": {"n": 30}}]');
SELECT * FROM pg_temp.check_indexes();
CREATE UNIQUE INDEX rw_unique_idx ON queue.job ((payload->>'u')) WHERE payload ? 'u';
SELECT queue.enqueue('rw', '{"u": 1}') > 0 AS enqueued;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"u": 1}')$$);
SELECT pg_temp.try($$SELECT queue.enqueue_many('rw', '[{"payload": {"u": 2}}, {"payload": {"u": 2}}]')$$);
DROP INDEX queue.rw_unique_idx;
SELECT pg_temp.try($$SELECT queue.enqueue('rw', '{"u": 1}')$$);
DROP INDEX queue.rw_expr_idx, queue.rw_func_idx;
DROP FUNCTION public.rw_key(jsonb);
SELECT queue.enqueue('rw', '{"k": "c"}') > 0 AS enqueued;
BEGIN;
CREATE INDEX rw_rolled_back_idx ON queue.job ((payload->>'k'));
SELECT queue.enqueue('rw', '{"k": "d"}') > 0 AS enqueued;
ROLLBACK;
SELECT queue.enqueue('rw', '{"k": "e"}') > 0 AS enqueued;
-- The same with a savepoint: the index is gone after ROLLBACK TO, in the
-- same transaction, and the writer no longer writes it.
BEGIN;
SELECT queue.enqueue('rw', '{"k": "f"}') > 0 AS enqueued;
SAVEPOINT s;
CREATE INDEX rw_savepoint_idx ON queue.job ((payload->>'k'));
SELECT queue.enqueue('rw', '{"k": "g"}') > 0 AS enqueued;
ROLLBACK TO SAVEPOINT s;
SELECT queue.enqueue('rw', '{"k": "h"}') > 0 AS enqueued;
COMMIT;
-- An index of another access method than btree (GIN keeps state of its own
-- in its IndexInfo) is described again at each call: the rows of later
-- calls, each in its own transaction, are all found through it.
CREATE INDEX rw_gin_idx ON queue.job USING gin (payload jsonb_path_ops);
SELECT queue.enqueue('rw', '{"gin": 1}') > 0 AS enqueued;
SELECT queue.enqueue('rw', '{"gin": 2}') > 0 AS enqueued;
SELECT count(*) FROM queue.enqueue_many('rw', '[{"payload": {"gin": 3}}, {"payload": {"gin": 4}}]');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT payload FROM queue.job WHERE payload @> '{"gin": 2}';
SELECT payload FROM queue.job
 WHERE payload @> '{"gin": 1}' OR payload @> '{"gin": 2}' OR payload @> '{"gin": 3}'
    OR payload @> '{"gin": 4}' ORDER BY id;
RESET enable_seqscan;
DROP INDEX queue.rw_gin_idx;
SELECT payload FROM queue.job WHERE id > 1800000 AND (payload ? 'k' OR payload ? 'u') ORDER BY id;
SELECT * FROM pg_temp.check_indexes();

--
-- A constraint whose function enqueues into queue.job itself: the inner
-- writer opens while the outer one is using the session's cache entry,
-- and prepares its own states; with an ANALYZE first (which invalidates
-- the table's relcache entry) the inner writer rebuilds the entry while
-- the outer one still uses the old one.  Every row is written whole.
--
CREATE FUNCTION public.rw_nested(p jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF p ? 'outer' THEN
		IF p ? 'analyze' THEN
			ANALYZE queue.job;
		END IF;
		PERFORM queue.enqueue('rw', jsonb_build_object('inner', p->'outer'));
	END IF;
	RETURN true;
END;
$$;
ALTER TABLE queue.job ADD CONSTRAINT user_nested_check
	CHECK (public.rw_nested(payload)) NOT VALID;
SELECT count(*) FROM queue.enqueue_many('rw',
	'[{"payload": {"outer": 1}}, {"payload": {"outer": 2, "analyze": true}}, {"payload": {"outer": 3}}]');
ALTER TABLE queue.job DROP CONSTRAINT user_nested_check;
DROP FUNCTION public.rw_nested(jsonb);
SELECT queue.enqueue('rw', '{"after_nested": true}') > 0 AS enqueued;
SELECT payload FROM queue.job WHERE id > 1800000
   AND (payload ? 'inner' OR payload ? 'outer' OR payload ? 'after_nested') ORDER BY id;
SELECT * FROM pg_temp.check_indexes();

--
-- Completion writes the archive row with the row writer too: the same row
-- the INSERT ... SELECT wrote (a trigger on queue.job_archive makes the
-- writer decline, so the statement writes the second set), a payload
-- stored out of line (TOAST) archived whole, and a queue that keeps no
-- finished jobs archives nothing.
--
SELECT queue.create_queue('rw_done') IS NOT NULL AS created;
CREATE TEMP TABLE big AS
SELECT jsonb_build_object('big', string_agg(md5(i::text), '')) AS payload
  FROM generate_series(1, 5000) i;
CREATE FUNCTION pg_temp.finish_two() RETURNS integer LANGUAGE sql AS $$
	SELECT queue.enqueue('rw_done', (SELECT payload FROM big), headers => '{"h": 1}',
	                     priority => 3, max_attempts => 4);
	SELECT queue.enqueue('rw_done', '{"n": 2}', dedup_key => 'k2',
	                     retry_policy => '{"backoff": "linear", "delay": 2}');
	SELECT queue.complete_many(array_agg(job_id ORDER BY job_id), array_agg(lease_token ORDER BY job_id),
	                           array_agg(jsonb_build_object('r', attempt) ORDER BY job_id))
	  FROM queue.claim('rw_done', 'w18', 2);
$$;
SELECT pg_temp.finish_two();
SELECT pg_column_size(payload) > 8000 AS stored_big, pg_column_size(payload) < 200000 AS compressed
  FROM queue.job_archive WHERE queue_id = queue._queue_id('rw_done') AND payload ? 'big';
-- no plan of the one-statement completion in this session yet
SELECT count(*) AS statement_plans FROM pg_backend_memory_contexts
 WHERE ident LIKE 'WITH done AS%';
CREATE TRIGGER user_noop AFTER INSERT ON queue.job_archive
	FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
SELECT pg_temp.finish_two();
DROP TRIGGER user_noop ON queue.job_archive;
SELECT count(*) AS statement_plans FROM pg_backend_memory_contexts
 WHERE ident LIKE 'WITH done AS%';
SELECT a.payload = (SELECT payload FROM big) AS big, count(*) AS jobs,
       count(DISTINCT (a.queue_id, a.state, a.priority, a.attempts, a.max_attempts,
       a.retry_policy, a.payload, a.headers, a.dedup_key, a.group_key, a.saga_id,
       a.saga_step, a.saga_compensation, a.worker, a.result, a.errors,
       a.finished_at >= a.created_at)) AS distinct_rows
  FROM queue.job_archive a WHERE a.queue_id = queue._queue_id('rw_done')
 GROUP BY 1 ORDER BY 1;
SELECT state, priority, attempts, max_attempts, retry_policy, headers, dedup_key,
       worker, result, errors
  FROM queue.job_archive WHERE queue_id = queue._queue_id('rw_done') AND payload = '{"n": 2}'
 LIMIT 1;
SELECT queue.alter_queue('rw_done', retention => '0');
SELECT pg_temp.finish_two();
SELECT count(*) AS archived, (SELECT count(*) FROM queue.job WHERE queue_id = queue._queue_id('rw_done')) AS live
  FROM queue.job_archive WHERE queue_id = queue._queue_id('rw_done');
SELECT queue.drop_queue('rw_done', force => true);

SELECT queue.drop_queue('rw', force => true);
SELECT queue.drop_queue('rw_ordered', force => true);
DROP EXTENSION amcheck;
