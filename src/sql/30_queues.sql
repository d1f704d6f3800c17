/*-------------------------------------------------------------------------
 *
 * 30_queues.sql
 *	  Part of the install script of the queue extension: queues.
 *	  The Makefile concatenates the files in src/sql, in name order, into
 *	  queue--VERSION.sql.
 *
 * IDENTIFICATION
 *	  src/sql/30_queues.sql
 *
 *-------------------------------------------------------------------------
 */

/* ---------------------------------------------------------------------
 * Queues
 * ---------------------------------------------------------------------
 */

-- Looks a queue up by name, raising the documented error when it is unknown.
CREATE FUNCTION queue._queue_id(queue_name text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qid integer;
BEGIN
	IF queue_name IS NULL THEN
		RAISE EXCEPTION 'queue name must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT q.id INTO qid FROM queue.queue q WHERE q.name = queue_name;
	IF qid IS NULL THEN
		RAISE EXCEPTION 'queue "%" does not exist', queue_name
			USING ERRCODE = '42704',
				  HINT = 'Create it with queue.create_queue().';
	END IF;
	RETURN qid;
END;
$$;

-- Raises unless a maintenance batch size is at least 1.
CREATE FUNCTION queue._check_batch_size(batch_size integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF batch_size IS NULL OR batch_size < 1 THEN
		RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023';
	END IF;
END;
$$;

-- Validates the settings shared by create_queue and alter_queue.
CREATE FUNCTION queue._check_settings(max_attempts integer, lease_timeout interval,
									  retention interval, dead_retention interval)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF max_attempts IS NOT NULL AND max_attempts < 1 THEN
		RAISE EXCEPTION 'max_attempts must be at least 1, not %', max_attempts
			USING ERRCODE = '22023';
	END IF;
	IF lease_timeout IS NOT NULL AND lease_timeout <= interval '0' THEN
		RAISE EXCEPTION 'lease_timeout must be positive, not %', lease_timeout
			USING ERRCODE = '22023';
	END IF;
	IF retention IS NOT NULL AND retention < interval '0' THEN
		RAISE EXCEPTION 'retention must not be negative, not %', retention
			USING ERRCODE = '22023';
	END IF;
	IF dead_retention IS NOT NULL AND dead_retention < interval '0' THEN
		RAISE EXCEPTION 'dead_retention must not be negative, not %', dead_retention
			USING ERRCODE = '22023';
	END IF;
	IF greatest(lease_timeout, retention, dead_retention) > interval '100 years' THEN
		RAISE EXCEPTION 'lease_timeout, retention and dead_retention must be at most 100 years'
			USING ERRCODE = '22023';
	END IF;
END;
$$;

CREATE FUNCTION queue.create_queue(
	name text,
	max_attempts integer DEFAULT 5,
	retry_policy jsonb DEFAULT '{}',
	lease_timeout interval DEFAULT '30 seconds',
	retention interval DEFAULT '1 day',
	dead_retention interval DEFAULT '30 days',
	if_not_exists boolean DEFAULT false,
	ordered boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qid integer;
BEGIN
	PERFORM queue._check_name(name);
	IF max_attempts IS NULL OR retry_policy IS NULL OR lease_timeout IS NULL
	   OR retention IS NULL OR dead_retention IS NULL OR if_not_exists IS NULL
	   OR ordered IS NULL THEN
		RAISE EXCEPTION 'queue settings must not be null'
			USING ERRCODE = '22004',
				  HINT = 'Leave a setting out to take its default.';
	END IF;
	PERFORM queue._check_settings(max_attempts, lease_timeout, retention, dead_retention);

	INSERT INTO queue.queue AS q (name, max_attempts, retry_policy, lease_timeout,
								  retention, dead_retention, ordered)
	VALUES (create_queue.name, create_queue.max_attempts,
			queue._check_retry_policy(create_queue.retry_policy),
			create_queue.lease_timeout, create_queue.retention,
			create_queue.dead_retention, create_queue.ordered)
	ON CONFLICT ON CONSTRAINT queue_name_key DO NOTHING
	RETURNING q.id INTO qid;

	IF qid IS NULL THEN
		IF if_not_exists THEN
			RETURN queue._queue_id(name);
		END IF;
		RAISE EXCEPTION 'queue "%" already exists', name USING ERRCODE = '42710';
	END IF;
	RETURN qid;
END;
$$;

-- Changes the given settings (NULL leaves a setting as it is).  max_attempts
-- applies to jobs enqueued afterwards; retry_policy, lease_timeout and the
-- retentions apply from the next failure, claim and prune on.
CREATE FUNCTION queue.alter_queue(
	name text,
	max_attempts integer DEFAULT NULL,
	retry_policy jsonb DEFAULT NULL,
	lease_timeout interval DEFAULT NULL,
	retention interval DEFAULT NULL,
	dead_retention interval DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM queue._check_settings(max_attempts, lease_timeout, retention, dead_retention);
	UPDATE queue.queue q
	   SET max_attempts = coalesce(alter_queue.max_attempts, q.max_attempts),
		   retry_policy = coalesce(queue._check_retry_policy(alter_queue.retry_policy),
								   q.retry_policy),
		   lease_timeout = coalesce(alter_queue.lease_timeout, q.lease_timeout),
		   retention = coalesce(alter_queue.retention, q.retention),
		   dead_retention = coalesce(alter_queue.dead_retention, q.dead_retention),
		   updated_at = now()
	 WHERE q.id = queue._queue_id(alter_queue.name);
END;
$$;

CREATE FUNCTION queue.pause_queue(name text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	UPDATE queue.queue SET paused = true, updated_at = now()
	 WHERE id = queue._queue_id(pause_queue.name);
END;

CREATE FUNCTION queue.resume_queue(name text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	UPDATE queue.queue SET paused = false, updated_at = now()
	 WHERE id = queue._queue_id(resume_queue.name)
	RETURNING queue._wake(id);
END;

-- Deletes the queue's jobs that are not running (ready, scheduled,
-- retrying); running jobs are left to finish.  Returns how many went.
CREATE FUNCTION queue.purge_queue(name text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qid integer := queue._queue_id(name);
	gone queue.job[];
	gone_job queue.job;
BEGIN
	WITH d AS (
		DELETE FROM queue.job j WHERE j.queue_id = qid AND j.state IN ('pending', 'blocked')
		RETURNING j.*
	)
	SELECT coalesce(array_agg(d), '{}') INTO gone FROM d;
	FOREACH gone_job IN ARRAY gone LOOP
		PERFORM queue._saga_job_gone(gone_job, 'job purged');
	END LOOP;
	RETURN cardinality(gone);
END;
$$;

-- Drops a queue with all its jobs, live and finished.  Refuses while jobs
-- are running or a topic delivers to it, unless force is true (which also
-- removes its subscriptions).  Takes the queue's enqueue lock in
-- exclusive mode first, so no enqueue into it can be half-way through.
CREATE FUNCTION queue.drop_queue(name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qid integer;
	running bigint;
BEGIN
	PERFORM queue._lock_queue_name(name);
	qid := queue._queue_id(name);
	PERFORM 1 FROM queue.queue q WHERE q.id = qid FOR UPDATE;
	SELECT count(*) INTO running FROM queue.job j
	 WHERE j.queue_id = qid AND j.state = 'running';
	IF running > 0 AND NOT coalesce(force, false) THEN
		RAISE EXCEPTION 'queue "%" has % running job(s)', name, running
			USING ERRCODE = '55006',
				  HINT = 'Wait for them to finish, or pass force => true.';
	END IF;
	IF EXISTS (SELECT 1 FROM queue.subscription s WHERE s.queue_id = qid)
	   AND NOT coalesce(force, false) THEN
		RAISE EXCEPTION 'queue "%" is subscribed to a topic', name
			USING ERRCODE = '55006',
				  HINT = 'Unsubscribe it first, or pass force => true.';
	END IF;
	DELETE FROM queue.subscription s WHERE s.queue_id = qid;
	-- the queue goes first, so that the sagas told below that their jobs
	-- are gone cannot enqueue into it (they fail the step, or need
	-- attention for a compensation)
	DELETE FROM queue.queue q WHERE q.id = qid;
	PERFORM queue._saga_job_gone(j, 'queue dropped')
	   FROM queue.job j WHERE j.queue_id = qid AND j.saga_id IS NOT NULL;
	DELETE FROM queue.job j WHERE j.queue_id = qid;
	DELETE FROM queue.job_archive a WHERE a.queue_id = qid;
	PERFORM queue._reset_stats(qid);
END;
$$;

-- Takes the lock that orders drop_queue after in-flight enqueues (C).
CREATE FUNCTION queue._lock_queue_name(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'queue_lock_queue_name'
LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION queue.list_queues()
RETURNS TABLE (
	name text,
	max_attempts integer,
	retry_policy jsonb,
	lease_timeout interval,
	retention interval,
	dead_retention interval,
	paused boolean,
	ordered boolean,
	created_at timestamptz,
	updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT q.name, q.max_attempts, q.retry_policy, q.lease_timeout, q.retention,
		   q.dead_retention, q.paused, q.ordered, q.created_at, q.updated_at
	  FROM queue.queue q ORDER BY q.name;
END;
