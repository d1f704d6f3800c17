/*-------------------------------------------------------------------------
 *
 * queue--0.2.0--0.3.0.sql
 *	  Upgrade of the queue extension from 0.2.0 to 0.3.0.
 *
 * What 0.3.0 adds, as it stands in the install script (src/sql) and in
 * the same words:
 *	- queue.enqueue_payloads, in the producer access level: roles that hold
 *	  that level (or admin) through grant_access get it here.
 *
 * The upgrade test (test/t/120_upgrade.pl) installs 0.1.0 and 0.2.0, runs
 * ALTER EXTENSION queue UPDATE on each (0.1.0 walks through 0.2.0) and
 * compares every object with a fresh install of 0.3.0.
 *
 * IDENTIFICATION
 *	  src/updates/queue--0.2.0--0.3.0.sql
 *
 *-------------------------------------------------------------------------
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION queue UPDATE TO '0.3.0'" to load this file. \quit

-- A batch of payloads that share their options, as an array: cheaper to
-- build and to read than enqueue_many's JSON array of job objects.
CREATE FUNCTION queue.enqueue_payloads(
	queue text,
	payloads jsonb[],
	headers jsonb DEFAULT NULL,
	run_at timestamptz DEFAULT NULL,
	delay interval DEFAULT NULL,
	priority integer DEFAULT 0,
	max_attempts integer DEFAULT NULL,
	retry_policy jsonb DEFAULT NULL,
	group_key text DEFAULT NULL)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'queue_enqueue_payloads'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

/*
 * The access levels, with enqueue_payloads among the producer's functions
 * (90_privileges.sql).
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
		'queue.enqueue_payloads(text,jsonb[],jsonb,timestamptz,interval,integer,integer,jsonb,text)',
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
REVOKE ALL ON FUNCTION queue.enqueue_payloads(text, jsonb[], jsonb, timestamptz, interval, integer, integer, jsonb, text) FROM PUBLIC;

-- The roles that may enqueue under 0.2.0 (EXECUTE on enqueue_many, given
-- by grant_access or by hand; read from the grants themselves, which
-- pg_dump keeps, not from queue.access_grant, which it does not) get the
-- new function too.  On PostgreSQL 17 and later a GRANT made here would
-- also record a role dependency of the function's initial privileges,
-- which the correction below would leave behind (and DROP ROLE would then
-- fail), so there the roles are named in a NOTICE instead, to be granted
-- again with queue.grant_access.
DO $$
DECLARE
	fn CONSTANT pg_catalog.regprocedure :=
		'queue.enqueue_payloads(text, jsonb[], jsonb, timestamptz, interval, integer, integer, jsonb, text)';
	r pg_catalog.regrole;
	names text := '';
BEGIN
	FOR r IN
		SELECT DISTINCT a.grantee::pg_catalog.regrole
		  FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
		 WHERE p.oid = 'queue.enqueue_many(text, jsonb)'::pg_catalog.regprocedure
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
		RAISE NOTICE 'queue.enqueue_payloads was not granted to:%', names
			USING HINT = 'Run queue.grant_access(role, ''producer'') for each of them.';
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
 WHERE p.oid = 'queue.enqueue_payloads(text, jsonb[], jsonb, timestamptz, interval, integer, integer, jsonb, text)'::pg_catalog.regprocedure
   AND i.objoid = p.oid
   AND i.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass
   AND i.objsubid = 0;
