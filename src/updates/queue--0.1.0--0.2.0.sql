/*-------------------------------------------------------------------------
 *
 * queue--0.1.0--0.2.0.sql
 *	  Upgrade of the queue extension from 0.1.0 to 0.2.0.
 *
 * What 0.2.0 adds, each change as it stands in the install script
 * (src/sql) and in the same words:
 *	- queue._queue_changed() and the triggers queue_changed and
 *	  queue_truncated on queue.queue, which keep the backends' queue lookup
 *	  caches true (src/queue.c).
 *	- queue.complete_and_claim, in the consumer access level: roles that
 *	  hold that level (or admin) through grant_access get it here.
 *	- queue.prune and queue.prune_events delete at most batch_size rows per
 *	  queue and state (per topic): their victims are a MATERIALIZED CTE, as
 *	  a semi join could run the locking subquery again for each row.
 *
 * The upgrade test (test/t/120_upgrade.pl) installs 0.1.0, fills it, runs
 * ALTER EXTENSION queue UPDATE and compares every object with a fresh
 * install of 0.2.0.
 *
 * IDENTIFICATION
 *	  src/updates/queue--0.1.0--0.2.0.sql
 *
 *-------------------------------------------------------------------------
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION queue UPDATE TO '0.2.0'" to load this file. \quit

-- Trigger on queue.queue: every change reaches the queue lookup caches of
-- all backends at commit (src/queue.c).
CREATE FUNCTION queue._queue_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'queue_cache_invalidate_trigger'
LANGUAGE C;

-- Backends cache the queues they look up; these keep the caches true.  A
-- row trigger, since logical replication's apply fires row triggers only,
-- and a statement trigger for TRUNCATE; both fire ALWAYS, also under
-- session_replication_role = replica (an apply worker, a restore), since a
-- change made there must reach the caches too.
CREATE TRIGGER queue_changed
	AFTER INSERT OR UPDATE OR DELETE ON queue.queue
	FOR EACH ROW EXECUTE FUNCTION queue._queue_changed();
CREATE TRIGGER queue_truncated
	AFTER TRUNCATE ON queue.queue
	FOR EACH STATEMENT EXECUTE FUNCTION queue._queue_changed();
ALTER TABLE queue.queue ENABLE ALWAYS TRIGGER queue_changed;
ALTER TABLE queue.queue ENABLE ALWAYS TRIGGER queue_truncated;

-- complete_many, then claim without a wait, in one statement: a worker's
-- loop in one round trip and one commit.
CREATE FUNCTION queue.complete_and_claim(
	job_ids bigint[],
	lease_tokens uuid[],
	queue text,
	worker text,
	batch_size integer DEFAULT 1,
	lease interval DEFAULT NULL,
	results jsonb[] DEFAULT NULL)
RETURNS TABLE (
	job_id bigint,
	lease_token uuid,
	payload jsonb,
	headers jsonb,
	attempt integer,
	max_attempts integer,
	priority integer,
	dedup_key text,
	enqueued_at timestamptz,
	lease_expires_at timestamptz)
AS 'MODULE_PATHNAME', 'queue_complete_and_claim'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1;

-- At most batch_size rows per queue and state (40_jobs.sql).
CREATE OR REPLACE FUNCTION queue.prune(batch_size integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	q record;
	st text;
	n bigint;
	total bigint := 0;
BEGIN
	PERFORM queue._check_batch_size(batch_size);
	FOR q IN SELECT * FROM queue.queue ORDER BY id LOOP
		FOREACH st IN ARRAY ARRAY['completed', 'cancelled', 'dead'] LOOP
			-- MATERIALIZED: evaluated once, so never more than batch_size
			-- (a semi join could run the subquery again for each row)
			WITH victim AS MATERIALIZED (
				SELECT b.id FROM queue.job_archive b
				 WHERE b.queue_id = q.id AND b.state = st
				   AND b.finished_at < clock_timestamp()
					   - CASE WHEN st = 'dead' THEN q.dead_retention ELSE q.retention END
				 ORDER BY b.id
				 LIMIT batch_size
				 FOR UPDATE SKIP LOCKED)
			DELETE FROM queue.job_archive a USING victim v WHERE a.id = v.id;
			GET DIAGNOSTICS n = ROW_COUNT;
			total := total + n;
		END LOOP;
	END LOOP;
	RETURN total;
END;
$$;

-- At most batch_size events per topic (60_outbox.sql).
CREATE OR REPLACE FUNCTION queue.prune_events(batch_size integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	n bigint;
	total bigint := 0;
BEGIN
	PERFORM queue._check_batch_size(batch_size);
	FOR t IN SELECT * FROM queue.topic ORDER BY id LOOP
		-- MATERIALIZED: evaluated once, so never more than batch_size
		WITH victim AS MATERIALIZED (
			SELECT b.id FROM queue.event_archive b
			 WHERE b.topic_id = t.id AND b.state = 'relayed'
			   AND b.finished_at < clock_timestamp() - t.retention
			 ORDER BY b.finished_at
			 LIMIT batch_size
			 FOR UPDATE SKIP LOCKED)
		DELETE FROM queue.event_archive a USING victim v WHERE a.id = v.id;
		GET DIAGNOSTICS n = ROW_COUNT;
		total := total + n;
	END LOOP;
	RETURN total;
END;
$$;

/*
 * The access levels, with complete_and_claim among the consumer's
 * functions (90_privileges.sql).
 */
CREATE OR REPLACE FUNCTION queue._access_functions(access text)
RETURNS SETOF regprocedure
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	producer text[] := ARRAY[
		'queue.enqueue(text,jsonb,jsonb,timestamptz,interval,integer,text,integer,jsonb,text)',
		'queue.enqueue_many(text,jsonb)',
		'queue.publish(text,jsonb,text,jsonb)',
		'queue.publish_many(text,jsonb)',
		'queue.start_saga(text,jsonb,text)',
		'queue.get_job(bigint)',
		'queue.list_queues()'];
	consumer text[] := ARRAY[
		'queue.claim(text,text,integer,interval,interval)',
		'queue.complete(bigint,uuid,jsonb)',
		'queue.complete_many(bigint[],uuid[],jsonb[])',
		'queue.complete_and_claim(bigint[],uuid[],text,text,integer,interval,jsonb[])',
		'queue.fail(bigint,uuid,text,boolean,interval)',
		'queue.fail_many(bigint[],uuid[],text[],boolean,interval)',
		'queue.extend(bigint,uuid,interval)',
		'queue.release(bigint,uuid,interval)',
		'queue.backoff_delay(jsonb,integer,interval)',
		'queue.get_job(bigint)',
		'queue.list_queues()'];
	monitor text[] := ARRAY[
		'queue.list_queues()',
		'queue.list_topics()',
		'queue._saga_stale_completions(integer)',
		'queue._throughput()',
		'queue._waiting_claims(integer)',
		'queue._worker_status()'];
	admin text[] := ARRAY[
		'queue.create_queue(text,integer,jsonb,interval,interval,interval,boolean,boolean)',
		'queue.alter_queue(text,integer,jsonb,interval,interval,interval)',
		'queue.pause_queue(text)',
		'queue.resume_queue(text)',
		'queue.purge_queue(text)',
		'queue.drop_queue(text,boolean)',
		'queue.list_jobs(text,text,integer,bigint)',
		'queue.list_dead(text,integer,bigint)',
		'queue.cancel_job(bigint)',
		'queue.delete_job(bigint)',
		'queue.reschedule_job(bigint,timestamptz)',
		'queue.redrive(bigint)',
		'queue.redrive(text,bigint[])',
		'queue.prune(integer)',
		'queue.expire_leases(integer)',
		'queue.create_topic(text,interval,boolean)',
		'queue.drop_topic(text,boolean)',
		'queue.subscribe(text,text,text)',
		'queue.unsubscribe(text,text,text)',
		'queue.list_subscriptions(text)',
		'queue.get_event(bigint)',
		'queue.retry_dead_events(text,bigint[])',
		'queue.prune_events(integer)',
		'queue.relay(integer)',
		'queue.define_saga(text,jsonb,interval)',
		'queue.list_sagas()',
		'queue.cancel_saga(bigint)',
		'queue.retry_saga_compensation(bigint)',
		'queue.expire_saga_deadlines(integer)',
		'queue.saga_timeline(bigint)',
		'queue.stuck_sagas(interval)'];
	names text[];
BEGIN
	CASE access
		WHEN 'producer' THEN names := producer;
		WHEN 'consumer' THEN names := consumer;
		WHEN 'monitor' THEN names := monitor;
		WHEN 'admin' THEN names := admin || producer || consumer || monitor;
		ELSE
			RAISE EXCEPTION 'unknown access level "%"', access
				USING ERRCODE = '22023',
					  HINT = 'Use producer, consumer, monitor or admin.';
	END CASE;
	RETURN QUERY SELECT DISTINCT f::regprocedure FROM unnest(names) f;
END;
$$;

-- As the install script does for every function (90_privileges.sql).
REVOKE ALL ON FUNCTION queue._queue_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION queue.complete_and_claim(bigint[], uuid[], text, text, integer, interval, jsonb[]) FROM PUBLIC;

-- The roles that may complete jobs under 0.1.0 (EXECUTE on complete_many,
-- given by grant_access or by hand; read from the grants themselves, which
-- pg_dump keeps, not from queue.access_grant, which it does not) get the
-- new function too.  On PostgreSQL 17 and later a GRANT made here would
-- also record a role dependency of the function's initial privileges,
-- which the correction below would leave behind (and DROP ROLE would then
-- fail), so there the roles are named in a NOTICE instead, to be granted
-- again with queue.grant_access.
DO $$
DECLARE
	fn CONSTANT pg_catalog.regprocedure :=
		'queue.complete_and_claim(bigint[], uuid[], text, text, integer, interval, jsonb[])';
	r pg_catalog.regrole;
	names text := '';
BEGIN
	FOR r IN
		SELECT DISTINCT a.grantee::pg_catalog.regrole
		  FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
		 WHERE p.oid = 'queue.complete_many(bigint[], uuid[], jsonb[])'::pg_catalog.regprocedure
		   AND a.privilege_type = 'EXECUTE'
		   AND a.grantee <> p.proowner
		   AND a.grantee <> 0
		 ORDER BY 1
	LOOP
		IF pg_catalog.current_setting('server_version_num')::integer < 170000 THEN
			EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', fn, r);
		ELSE
			names := names || ' ' || r::text;
		END IF;
	END LOOP;
	IF names <> '' THEN
		RAISE NOTICE 'queue.complete_and_claim was not granted to:%', names
			USING HINT = 'Run queue.grant_access(role, ''consumer'') for each of them.';
	END IF;
END;
$$;

-- The GRANTs above ran inside ALTER EXTENSION, so PostgreSQL recorded them
-- in pg_init_privs as the function's initial privileges, which pg_dump
-- leaves out of a dump: a restore would lose them.  Record what a fresh
-- install records, the owner's EXECUTE alone, so that pg_dump dumps the
-- grants to the roles like those grant_access makes.
UPDATE pg_catalog.pg_init_privs i
   SET initprivs = ARRAY[pg_catalog.makeaclitem(p.proowner, p.proowner, 'EXECUTE', false)]
  FROM pg_catalog.pg_proc p
 WHERE p.oid = 'queue.complete_and_claim(bigint[], uuid[], text, text, integer, interval, jsonb[])'::pg_catalog.regprocedure
   AND i.objoid = p.oid
   AND i.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass
   AND i.objsubid = 0;
