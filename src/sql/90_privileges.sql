/*-------------------------------------------------------------------------
 *
 * 90_privileges.sql
 *	  Part of the install script of the queue extension: privileges.
 *	  The Makefile concatenates the files in src/sql, in name order, into
 *	  queue--VERSION.sql.
 *
 * IDENTIFICATION
 *	  src/sql/90_privileges.sql
 *
 *-------------------------------------------------------------------------
 */

/* ---------------------------------------------------------------------
 * Privileges
 * ---------------------------------------------------------------------
 */

/*
 * The one place that says which functions each access level may call.
 * producer: enqueue; consumer: claim and settle leases; monitor: read
 * queue settings (never payloads); admin: everything, including every
 * other level's functions.
 */
CREATE FUNCTION queue._access_functions(access text)
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

-- Which access levels grant_access gave to which roles, so that revoking
-- one level keeps what the role's other levels need.  Roles are kept by
-- OID (a rename keeps the bookkeeping right; rows of dropped roles are
-- removed on the next grant or revoke).  The table is not dumped: OIDs do
-- not survive a dump and restore (the GRANTs themselves do).
CREATE TABLE queue.access_grant (
	role_oid	oid NOT NULL,
	access		text NOT NULL,
	PRIMARY KEY (role_oid, access),
	CONSTRAINT access_grant_access_check
		CHECK (access IN ('producer', 'consumer', 'monitor', 'admin'))
);

-- The objects one access level consists of, as GRANT targets: its
-- functions, and for monitor and admin the tables they may read.
CREATE FUNCTION queue._access_objects(access text)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT 'FUNCTION ' || f::text FROM queue._access_functions(_access_objects.access) f
	UNION
	SELECT 'TABLE ' || t
	  FROM unnest(ARRAY['queue.queue', 'queue.queue_stats', 'queue.workers',
						'queue.topic_stats', 'queue.blocked_groups', 'queue.saga_stats']) t
	 WHERE _access_objects.access IN ('admin', 'monitor')
	UNION
	SELECT 'TABLE ' || t
	  FROM unnest(ARRAY['queue.jobs', 'queue.job', 'queue.job_archive', 'queue.events',
						'queue.event', 'queue.event_archive', 'queue.topic',
						'queue.subscription', 'queue.sagas', 'queue.saga',
						'queue.saga_definition', 'queue.saga_event']) t
	 WHERE _access_objects.access = 'admin';
END;

-- Grants a role one access level, and USAGE on the schema.  Run it as the
-- extension's owner.  (A regrole's text form is already a quoted
-- identifier, so it is spliced with %s.)
CREATE FUNCTION queue.grant_access(role_name regrole, access text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	obj text;
BEGIN
	IF role_name IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
	END IF;
	FOR obj IN SELECT * FROM queue._access_objects(access) LOOP
		EXECUTE format('GRANT %s %s TO %s',
					   CASE WHEN obj LIKE 'FUNCTION %' THEN 'EXECUTE ON' ELSE 'SELECT ON' END,
					   obj, role_name);
	END LOOP;
	EXECUTE format('GRANT USAGE ON SCHEMA queue TO %s', role_name);
	DELETE FROM queue.access_grant g
	 WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = g.role_oid);
	INSERT INTO queue.access_grant VALUES (role_name, access) ON CONFLICT DO NOTHING;
END;
$$;

-- Takes back one access level: what it granted, except what the role's
-- other levels (given by grant_access) also grant.  USAGE on the schema
-- goes with the role's last level.
CREATE FUNCTION queue.revoke_access(role_name regrole, access text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	obj text;
BEGIN
	IF role_name IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
	END IF;
	DELETE FROM queue.access_grant g
	 WHERE (g.role_oid = role_name AND g.access = revoke_access.access)
		OR NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = g.role_oid);
	FOR obj IN
		SELECT * FROM queue._access_objects(access)
		EXCEPT
		SELECT o FROM queue.access_grant g, queue._access_objects(g.access) o
		 WHERE g.role_oid = role_name
	LOOP
		EXECUTE format('REVOKE %s %s FROM %s',
					   CASE WHEN obj LIKE 'FUNCTION %' THEN 'EXECUTE ON' ELSE 'SELECT ON' END,
					   obj, role_name);
	END LOOP;
	IF NOT EXISTS (SELECT 1 FROM queue.access_grant g WHERE g.role_oid = role_name) THEN
		EXECUTE format('REVOKE USAGE ON SCHEMA queue FROM %s', role_name);
	END IF;
END;
$$;

-- Queue ids start again from 1: forget counters of an earlier installation.
SELECT queue._reset_stats(NULL);

-- Nothing is PUBLIC: a role gets exactly what grant_access gives it.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA queue FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA queue FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA queue FROM PUBLIC;
