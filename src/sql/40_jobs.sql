/*-------------------------------------------------------------------------
 *
 * 40_jobs.sql
 *	  Part of the install script of the queue extension: jobs.
 *	  The Makefile concatenates the files in src/sql, in name order, into
 *	  queue--VERSION.sql.
 *
 * IDENTIFICATION
 *	  src/sql/40_jobs.sql
 *
 *-------------------------------------------------------------------------
 */

/* ---------------------------------------------------------------------
 * Jobs
 * ---------------------------------------------------------------------
 */

-- One job, live or finished; no row when there is no such job (never
-- enqueued, deleted, or pruned after its retention).
CREATE FUNCTION queue.get_job(job_id bigint)
RETURNS SETOF queue.jobs
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT * FROM queue.jobs j WHERE j.id = get_job.job_id;
END;

-- A queue's jobs in one state (or all), in id order, a page at a time:
-- pass the last id of a page as after_id to get the next one.
CREATE FUNCTION queue.list_jobs(
	queue text,
	state text DEFAULT NULL,
	page_size integer DEFAULT 100,
	after_id bigint DEFAULT 0)
RETURNS SETOF queue.jobs
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qid integer := queue._queue_id(queue);
BEGIN
	IF state IS NOT NULL AND state NOT IN ('ready', 'scheduled', 'retrying', 'running',
										   'blocked', 'completed', 'dead', 'cancelled') THEN
		RAISE EXCEPTION 'unknown job state "%"', state
			USING ERRCODE = '22023',
				  HINT = 'Use ready, scheduled, retrying, running, blocked, completed, dead or cancelled.';
	END IF;
	IF page_size IS NULL OR page_size < 1 OR page_size > 10000 THEN
		RAISE EXCEPTION 'page_size must be between 1 and 10000' USING ERRCODE = '22023';
	END IF;
	RETURN QUERY
		SELECT j.* FROM queue.jobs j
		 WHERE j.queue = list_jobs.queue
		   AND j.id > coalesce(after_id, 0)
		   AND (list_jobs.state IS NULL OR j.state = list_jobs.state)
		 ORDER BY j.id
		 LIMIT page_size;
END;
$$;

-- Locks a live job that is not running, or raises the documented error.
CREATE FUNCTION queue._lock_idle_job(job_id bigint, action text)
RETURNS queue.job
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	j queue.job;
BEGIN
	IF job_id IS NULL THEN
		RAISE EXCEPTION 'job_id must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT * INTO j FROM queue.job WHERE id = job_id FOR UPDATE;
	IF NOT FOUND THEN
		IF EXISTS (SELECT 1 FROM queue.job_archive a WHERE a.id = job_id) THEN
			RAISE EXCEPTION 'cannot % job %: it has finished', action, job_id
				USING ERRCODE = '55000';
		END IF;
		RAISE EXCEPTION 'job % does not exist', job_id USING ERRCODE = '42704';
	END IF;
	IF j.state = 'running' THEN
		RAISE EXCEPTION 'cannot % job %: it is running', action, job_id
			USING ERRCODE = '55000',
				  DETAIL = format('Worker %s holds its lease.', j.worker);
	END IF;
	RETURN j;
END;
$$;

-- Moves a live job to the finished jobs as cancelled (no checks).
CREATE FUNCTION queue._archive_cancelled(job_id bigint)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	WITH d AS (DELETE FROM queue.job j WHERE j.id = _archive_cancelled.job_id RETURNING j.*)
	INSERT INTO queue.job_archive (id, queue_id, state, priority, attempts, max_attempts,
								   retry_policy, payload, headers, dedup_key, group_key,
								   saga_id, saga_step, saga_compensation,
								   worker, result, errors, created_at, finished_at)
	SELECT d.id, d.queue_id, 'cancelled', d.priority, d.attempts, d.max_attempts,
		   d.retry_policy, d.payload, d.headers, d.dedup_key, d.group_key,
		   d.saga_id, d.saga_step, d.saga_compensation,
		   d.worker, NULL, d.errors, d.created_at, clock_timestamp()
	  FROM d;
END;

-- Moves a job that is not running to the finished jobs as cancelled.
CREATE FUNCTION queue.cancel_job(job_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	locked queue.job := queue._lock_idle_job(job_id, 'cancel');
BEGIN
	PERFORM queue._archive_cancelled(job_id);
	PERFORM queue._promote_groups(locked.queue_id, ARRAY[locked.group_key]);
	PERFORM queue._saga_job_gone(locked, 'job cancelled');
END;
$$;

-- Deletes a job for good: a live job that is not running, or a finished one.
CREATE FUNCTION queue.delete_job(job_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	locked queue.job;
BEGIN
	DELETE FROM queue.job_archive a WHERE a.id = delete_job.job_id;
	IF NOT FOUND THEN
		locked := queue._lock_idle_job(job_id, 'delete');
		DELETE FROM queue.job j WHERE j.id = delete_job.job_id;
		PERFORM queue._promote_groups(locked.queue_id, ARRAY[locked.group_key]);
		PERFORM queue._saga_job_gone(locked, 'job deleted');
	END IF;
END;
$$;

-- Moves a job that is waiting (ready, scheduled or retrying) to a new time.
CREATE FUNCTION queue.reschedule_job(job_id bigint, run_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF run_at IS NULL THEN
		RAISE EXCEPTION 'run_at must not be null' USING ERRCODE = '22004';
	END IF;
	IF NOT isfinite(run_at) THEN
		RAISE EXCEPTION 'run_at must be a finite time' USING ERRCODE = '22023';
	END IF;
	PERFORM queue._wake((queue._lock_idle_job(job_id, 'reschedule')).queue_id);
	UPDATE queue.job j SET run_at = reschedule_job.run_at WHERE j.id = reschedule_job.job_id;
END;
$$;

-- The dead letters of a queue, oldest first, a page at a time.
CREATE FUNCTION queue.list_dead(queue text, page_size integer DEFAULT 100,
								after_id bigint DEFAULT 0)
RETURNS SETOF queue.jobs
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT * FROM queue.list_jobs(list_dead.queue, 'dead', list_dead.page_size,
								  list_dead.after_id);
END;

/*
 * Moves dead jobs back into their queue as new, ready jobs: attempts start
 * again from zero, the error history is kept.  A dead job whose
 * deduplication key is held by a live job cannot come back; that is an
 * error and nothing is redriven.  Returns the number of jobs redriven.
 */
CREATE FUNCTION queue._redrive(ids bigint[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n bigint;
	clash record;
BEGIN
	SELECT a.id, a.saga_id AS dedup_key INTO clash
	  FROM queue.job_archive a
	 WHERE a.id = ANY (ids) AND a.state = 'dead' AND a.saga_id IS NOT NULL
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'cannot redrive job %: it is a step of saga %', clash.id, clash.dedup_key
			USING ERRCODE = '55000',
				  HINT = 'The saga has moved on; see queue.retry_saga_compensation().';
	END IF;
	SELECT a.id, a.dedup_key INTO clash
	  FROM queue.job_archive a JOIN queue.job j
		ON j.queue_id = a.queue_id AND j.dedup_key = a.dedup_key
	 WHERE a.id = ANY (ids) AND a.state = 'dead'
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'cannot redrive job %: its deduplication key "%" is held by a live job',
						clash.id, clash.dedup_key
			USING ERRCODE = '23505';
	END IF;
	SELECT min(a.id) AS id, a.dedup_key INTO clash
	  FROM queue.job_archive a
	 WHERE a.id = ANY (ids) AND a.state = 'dead' AND a.dedup_key IS NOT NULL
	 GROUP BY a.queue_id, a.dedup_key
	HAVING count(*) > 1
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'cannot redrive job %: its deduplication key "%" is shared by another dead job being redriven',
						clash.id, clash.dedup_key
			USING ERRCODE = '23505',
				  HINT = 'Redrive one of them at a time.';
	END IF;

	WITH d AS (
		DELETE FROM queue.job_archive a
		 WHERE a.id = ANY (ids) AND a.state = 'dead'
		RETURNING a.*
	), ins AS (
		-- in an ordered queue a job with a group comes back blocked and
		-- takes its place (its id) in the group's order; see below
		INSERT INTO queue.job (id, queue_id, state, priority, run_at, attempts, max_attempts,
							   retry_policy, payload, headers, dedup_key, group_key, errors,
							   created_at)
		SELECT d.id, d.queue_id,
			   CASE WHEN q.ordered AND d.group_key IS NOT NULL THEN 'blocked' ELSE 'pending' END,
			   d.priority, clock_timestamp(), 0, d.max_attempts,
			   d.retry_policy, d.payload, d.headers, d.dedup_key, d.group_key, d.errors,
			   d.created_at
		  FROM d JOIN queue.queue q ON q.id = d.queue_id
		RETURNING queue_id, group_key
	), per_queue AS (
		SELECT ins.queue_id, count(*) AS n,
			   array_agg(DISTINCT ins.group_key) FILTER (WHERE ins.group_key IS NOT NULL) AS groups
		  FROM ins GROUP BY ins.queue_id
	)
	SELECT coalesce(sum(pq.n), 0) INTO n
	  FROM per_queue pq,
		   LATERAL queue._wake(pq.queue_id),
		   LATERAL queue._promote_groups(pq.queue_id, coalesce(pq.groups, '{}'));
	RETURN n;
END;
$$;

-- Redrives one dead job.
CREATE FUNCTION queue.redrive(job_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	st text;
BEGIN
	IF job_id IS NULL THEN
		RAISE EXCEPTION 'job_id must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT a.state INTO st FROM queue.job_archive a WHERE a.id = job_id FOR UPDATE;
	IF st IS NULL THEN
		IF EXISTS (SELECT 1 FROM queue.job j WHERE j.id = job_id) THEN
			RAISE EXCEPTION 'cannot redrive job %: it is not dead', job_id
				USING ERRCODE = '55000';
		END IF;
		RAISE EXCEPTION 'job % does not exist', job_id USING ERRCODE = '42704';
	ELSIF st <> 'dead' THEN
		RAISE EXCEPTION 'cannot redrive job %: it is not dead but %', job_id, st
			USING ERRCODE = '55000';
	END IF;
	PERFORM queue._redrive(ARRAY[job_id]);
END;
$$;

-- Redrives the given dead jobs of a queue (all of them when job_ids is
-- NULL).  Ids that are not dead jobs of that queue are ignored.
CREATE FUNCTION queue.redrive(queue text, job_ids bigint[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qid integer := queue._queue_id(queue);
	ids bigint[];
BEGIN
	-- all of the queue's dead letters leaves out saga steps (see _redrive)
	SELECT coalesce(array_agg(a.id ORDER BY a.id), '{}') INTO ids
	  FROM queue.job_archive a
	 WHERE a.queue_id = qid AND a.state = 'dead'
	   AND (job_ids IS NULL OR a.id = ANY (job_ids))
	   AND (job_ids IS NOT NULL OR a.saga_id IS NULL);
	RETURN queue._redrive(ids);
END;
$$;

/*
 * Deletes finished jobs past their queue's retention (completed and
 * cancelled: retention; dead: dead_retention), at most batch_size rows per
 * queue and state, so that it never holds many locks or a long
 * transaction.  Returns how many went.  The background worker calls it
 * every queue.naptime; without a worker, call it from cron or a client.
 */
CREATE FUNCTION queue.prune(batch_size integer DEFAULT 10000)
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

/*
 * Moves jobs whose lease expired on their last attempt to the dead letters,
 * with the error "lease expired" (such jobs are never claimed again).  At
 * most batch_size per call; returns how many.  Each move is a
 * compare-and-set: a job its holder settles first is left alone, and one
 * being settled right now is skipped (SKIP LOCKED) and left to its holder.
 */
CREATE FUNCTION queue.expire_leases(batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	now_ts timestamptz := clock_timestamp();
	n bigint;
	steps jsonb;
BEGIN
	PERFORM queue._check_batch_size(batch_size);
	WITH candidate AS (
		(SELECT j.id FROM queue.job j
		  WHERE j.state = 'running' AND j.run_at <= now_ts AND j.attempts >= j.max_attempts
		  ORDER BY j.run_at LIMIT batch_size)
		UNION
		(SELECT j.id FROM queue.job j
		  WHERE j.deadline_at <= now_ts AND (j.state <> 'running' OR j.run_at <= now_ts)
		  ORDER BY j.deadline_at LIMIT batch_size)
	), expired AS MATERIALIZED (
		SELECT j.id FROM queue.job j
		 WHERE j.id IN (SELECT c.id FROM candidate c)
		 LIMIT batch_size
		   FOR UPDATE SKIP LOCKED
	), d AS (
		DELETE FROM queue.job j USING expired e
		 WHERE j.id = e.id
		   AND ((j.state = 'running' AND j.run_at <= now_ts AND j.attempts >= j.max_attempts)
				OR (j.deadline_at <= now_ts AND (j.state <> 'running' OR j.run_at <= now_ts)))
		RETURNING j.*,
				  CASE WHEN j.deadline_at <= now_ts THEN 'deadline passed'
					   ELSE 'lease expired' END AS why
	), archived AS (
		INSERT INTO queue.job_archive (id, queue_id, state, priority, attempts, max_attempts,
									   retry_policy, payload, headers, dedup_key, group_key,
									   saga_id, saga_step, saga_compensation,
									   worker, result, errors, created_at, finished_at)
		SELECT d.id, d.queue_id, 'dead', d.priority, d.attempts, d.max_attempts,
			   d.retry_policy, d.payload, d.headers, d.dedup_key, d.group_key,
			   d.saga_id, d.saga_step, d.saga_compensation, d.worker, NULL,
			   d.errors || jsonb_build_array(jsonb_build_object(
					'attempt', d.attempts, 'at', least(d.run_at, d.deadline_at),
					'worker', d.worker, 'error', d.why)),
			   d.created_at, now_ts
		  FROM d JOIN queue.queue q ON q.id = d.queue_id
		 WHERE q.dead_retention > interval '0'
	), per_queue AS (
		SELECT d.queue_id, count(*) AS n,
			   array_agg(DISTINCT d.group_key) FILTER (WHERE d.group_key IS NOT NULL) AS groups
		  FROM d GROUP BY d.queue_id
	)
	SELECT coalesce(sum(pq.n), 0),
		   (SELECT coalesce(jsonb_agg(jsonb_build_object(
					'saga_id', d.saga_id, 'step', d.saga_step,
					'compensation', d.saga_compensation, 'job_id', d.id,
					'attempts', d.attempts, 'why', d.why)), '[]')
			  FROM d WHERE d.saga_id IS NOT NULL)
	  INTO n, steps
	  FROM per_queue pq,
		   LATERAL queue._count_outcome(pq.queue_id, 0, pq.n),
		   LATERAL queue._promote_groups(pq.queue_id, coalesce(pq.groups, '{}'));
	PERFORM queue._saga_job_settled((x->>'saga_id')::bigint, (x->>'step')::integer,
									coalesce((x->>'compensation')::boolean, false),
									(x->>'job_id')::bigint, (x->>'attempts')::integer,
									'dead', NULL, x->>'why')
	   FROM jsonb_array_elements(coalesce(steps, '[]')) x;
	RETURN n;
END;
$$;
