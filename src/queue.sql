/*-------------------------------------------------------------------------
 *
 * queue.sql
 *	  Install script of the queue extension (built into queue--VERSION.sql).
 *
 * Everything lives in schema "queue".  Queue names are data, never
 * identifiers: all jobs of all queues share the tables below and are told
 * apart by queue_id, so no user-supplied name ever reaches SQL text.
 *
 * Jobs live in two tables:
 *   queue.job          the live set: jobs that are ready, scheduled,
 *                      retrying or running.  Small and hot; claims scan it.
 *   queue.job_archive  finished jobs: completed, dead (the dead letters) and
 *                      cancelled, kept for their queue's retention.
 * A job moves from one to the other (DELETE ... RETURNING feeding an INSERT,
 * in one statement), so its id never changes.  Deduplication keys are
 * unique among live jobs only, which is exactly "while the job is waiting,
 * scheduled, retrying or running".
 *
 * The hot path (enqueue, claim, complete, fail, extend, release) is C
 * (src/enqueue.c, src/lease.c) running cached plans; administration is SQL
 * and PL/pgSQL below.  Every API function is SECURITY DEFINER with a pinned
 * search_path and is revoked from PUBLIC: a role reaches the tables only
 * through the functions it was granted (see queue.grant_access).
 *
 * IDENTIFICATION
 *	  src/queue.sql
 *
 *-------------------------------------------------------------------------
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION queue" to load this file. \quit

/* ---------------------------------------------------------------------
 * Internal checks, in C (src/names.c, src/backoff.c)
 * ---------------------------------------------------------------------
 */

-- Raises unless the name is a valid queue name; returns it.
CREATE FUNCTION queue._check_name(name text, what text DEFAULT 'queue')
RETURNS text
AS 'MODULE_PATHNAME', 'queue_check_name'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Raises unless the document is a valid (possibly partial) retry policy;
-- returns it with its keys in canonical form.
CREATE FUNCTION queue._check_retry_policy(policy jsonb, complete boolean DEFAULT true)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'queue_check_retry_policy'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Wakes the queue's waiting claims when the transaction commits.
CREATE FUNCTION queue._wake(queue_id integer)
RETURNS void
AS 'MODULE_PATHNAME', 'queue_wake_sql'
LANGUAGE C VOLATILE STRICT;

-- Counts completions and failures for queue.queue_stats, at commit.
CREATE FUNCTION queue._count_outcome(queue_id integer, completed bigint, failed bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'queue_count_outcome_sql'
LANGUAGE C VOLATILE STRICT;

-- Forgets a queue's throughput counters (NULL: all of this database's).
CREATE FUNCTION queue._reset_stats(queue_id integer)
RETURNS void
AS 'MODULE_PATHNAME', 'queue_reset_stats'
LANGUAGE C VOLATILE;

-- This database's throughput counters (shared memory).
CREATE FUNCTION queue._throughput()
RETURNS TABLE (queue_id integer, completed_last_minute bigint, failed_last_minute bigint)
AS 'MODULE_PATHNAME', 'queue_throughput'
LANGUAGE C VOLATILE;

-- Claims sleeping on the queue's wake-up slot.
CREATE FUNCTION queue._waiting_claims(queue_id integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'queue_waiting_claims'
LANGUAGE C VOLATILE STRICT;

-- The background workers' status board (shared memory).
CREATE FUNCTION queue._worker_status()
RETURNS TABLE (dboid oid, pid integer, state text, started_at timestamptz,
			   last_activity timestamptz, leases_expired bigint, jobs_pruned bigint,
			   errors bigint)
AS 'MODULE_PATHNAME', 'queue_worker_status'
LANGUAGE C VOLATILE;

/* ---------------------------------------------------------------------
 * Tables
 * ---------------------------------------------------------------------
 */

CREATE SEQUENCE queue.queue_id_seq AS integer;

CREATE TABLE queue.queue (
	id				integer PRIMARY KEY DEFAULT nextval('queue.queue_id_seq'),
	name			text NOT NULL UNIQUE,
	max_attempts	integer NOT NULL,
	retry_policy	jsonb NOT NULL,
	lease_timeout	interval NOT NULL,
	retention		interval NOT NULL,
	dead_retention	interval NOT NULL,
	paused			boolean NOT NULL DEFAULT false,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT queue_max_attempts_check CHECK (max_attempts >= 1),
	CONSTRAINT queue_lease_timeout_check CHECK (lease_timeout > interval '0'),
	CONSTRAINT queue_retention_check CHECK (retention >= interval '0'),
	CONSTRAINT queue_dead_retention_check CHECK (dead_retention >= interval '0')
);
ALTER SEQUENCE queue.queue_id_seq OWNED BY queue.queue.id;

COMMENT ON TABLE queue.queue IS 'queues and their settings';

CREATE SEQUENCE queue.job_id_seq;

/*
 * The live set.  state is 'pending' (waiting for its run_at: ready,
 * scheduled or retrying) or 'running'.  For a running job, run_at holds the
 * moment its lease expires: a job is claimable exactly when run_at <= now,
 * whether it is pending and due or running with an expired lease, so a
 * single index serves the claim.
 */
CREATE TABLE queue.job (
	id				bigint PRIMARY KEY DEFAULT nextval('queue.job_id_seq'),
	queue_id		integer NOT NULL,
	state			text NOT NULL,
	priority		integer NOT NULL DEFAULT 0,
	run_at			timestamptz NOT NULL,
	attempts		integer NOT NULL DEFAULT 0,
	max_attempts	integer NOT NULL,
	retry_policy	jsonb,
	last_delay		double precision,
	payload			jsonb NOT NULL,
	headers			jsonb,
	dedup_key		text,
	lease_token		uuid,
	worker			text,
	claimed_at		timestamptz,
	errors			jsonb NOT NULL DEFAULT '[]',
	created_at		timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT job_state_check CHECK (state IN ('pending', 'running')),
	CONSTRAINT job_lease_check CHECK ((state = 'running') = (lease_token IS NOT NULL))
) WITH (autovacuum_vacuum_scale_factor = 0.01,
		autovacuum_vacuum_threshold = 1000,
		autovacuum_vacuum_insert_scale_factor = 0.01,
		autovacuum_analyze_scale_factor = 0.02);
ALTER SEQUENCE queue.job_id_seq OWNED BY queue.job.id;

COMMENT ON TABLE queue.job IS 'live jobs: ready, scheduled, retrying and running';

-- The claim order: priority (higher first), then run_at, then id.
CREATE INDEX job_claim_idx ON queue.job (queue_id, priority DESC, run_at, id);
-- Running jobs by lease expiry: expired leases are found without a scan.
CREATE INDEX job_lease_idx ON queue.job (run_at) WHERE state = 'running';
-- Deduplication among live jobs, per queue.
CREATE UNIQUE INDEX job_dedup_idx ON queue.job (queue_id, dedup_key)
	WHERE dedup_key IS NOT NULL;

CREATE TABLE queue.job_archive (
	id				bigint PRIMARY KEY,
	queue_id		integer NOT NULL,
	state			text NOT NULL,
	priority		integer NOT NULL,
	attempts		integer NOT NULL,
	max_attempts	integer NOT NULL,
	retry_policy	jsonb,
	payload			jsonb NOT NULL,
	headers			jsonb,
	dedup_key		text,
	worker			text,
	result			jsonb,
	errors			jsonb NOT NULL,
	created_at		timestamptz NOT NULL,
	finished_at		timestamptz NOT NULL,
	CONSTRAINT job_archive_state_check
		CHECK (state IN ('completed', 'dead', 'cancelled'))
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05);

COMMENT ON TABLE queue.job_archive IS 'finished jobs: completed, dead letters and cancelled';

-- Listing by state (paged by id) and pruning by state.
CREATE INDEX job_archive_queue_state_idx ON queue.job_archive (queue_id, state, id);

-- pg_dump keeps users' queues and jobs.
SELECT pg_catalog.pg_extension_config_dump('queue.queue', '');
SELECT pg_catalog.pg_extension_config_dump('queue.queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.job', '');
SELECT pg_catalog.pg_extension_config_dump('queue.job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.job_archive', '');

/*
 * Every job, live or finished, with the state a user sees:
 *   ready      pending and due now
 *   scheduled  pending, not yet due, never attempted
 *   retrying   pending, not yet due, attempted before (waiting out a backoff)
 *   running    leased to a worker (lease_expires_at says until when)
 *   completed, dead, cancelled  finished
 */
CREATE VIEW queue.jobs AS
SELECT j.id, q.name AS queue,
	   CASE WHEN j.state = 'running' THEN 'running'
			WHEN j.run_at <= pg_catalog.clock_timestamp() THEN 'ready'
			WHEN j.attempts > 0 THEN 'retrying'
			ELSE 'scheduled' END AS state,
	   j.priority, j.attempts, j.max_attempts,
	   CASE WHEN j.state = 'pending' THEN j.run_at END AS run_at,
	   CASE WHEN j.state = 'running' THEN j.run_at END AS lease_expires_at,
	   j.worker, j.payload, j.headers, j.dedup_key, j.retry_policy,
	   NULL::jsonb AS result, j.errors,
	   j.errors -> -1 ->> 'error' AS last_error,
	   j.created_at, j.claimed_at, NULL::timestamptz AS finished_at
  FROM queue.job j JOIN queue.queue q ON q.id = j.queue_id
UNION ALL
SELECT a.id, q.name, a.state, a.priority, a.attempts, a.max_attempts,
	   NULL, NULL, a.worker, a.payload, a.headers, a.dedup_key, a.retry_policy,
	   a.result, a.errors, a.errors -> -1 ->> 'error',
	   a.created_at, NULL, a.finished_at
  FROM queue.job_archive a JOIN queue.queue q ON q.id = a.queue_id;

COMMENT ON VIEW queue.jobs IS 'every job, live or finished, with its user-visible state';

/* ---------------------------------------------------------------------
 * Hot path, in C
 * ---------------------------------------------------------------------
 */

CREATE FUNCTION queue.enqueue(
	queue text,
	payload jsonb,
	headers jsonb DEFAULT NULL,
	run_at timestamptz DEFAULT NULL,
	delay interval DEFAULT NULL,
	priority integer DEFAULT 0,
	dedup_key text DEFAULT NULL,
	max_attempts integer DEFAULT NULL,
	retry_policy jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'queue_enqueue'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.enqueue_many(queue text, jobs jsonb)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'queue_enqueue_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.claim(
	queue text,
	worker text,
	batch_size integer DEFAULT 1,
	lease interval DEFAULT NULL,
	wait interval DEFAULT NULL)
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
AS 'MODULE_PATHNAME', 'queue_claim'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1;

CREATE FUNCTION queue.complete(job_id bigint, lease_token uuid, result jsonb DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'queue_complete'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.complete_many(job_ids bigint[], lease_tokens uuid[], results jsonb[] DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'queue_complete_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.fail(
	job_id bigint,
	lease_token uuid,
	error text,
	permanent boolean DEFAULT false,
	retry_delay interval DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'queue_fail'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.fail_many(
	job_ids bigint[],
	lease_tokens uuid[],
	errors text[],
	permanent boolean DEFAULT false,
	retry_delay interval DEFAULT NULL)
RETURNS TABLE (job_id bigint, state text)
AS 'MODULE_PATHNAME', 'queue_fail_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.extend(job_id bigint, lease_token uuid, lease interval DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'queue_extend'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.release(job_id bigint, lease_token uuid, delay interval DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'queue_release'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- The delay before retry number attempt+1, per the policy; exposed so a
-- policy can be tried out.  previous_delay feeds decorrelated jitter.
CREATE FUNCTION queue.backoff_delay(retry_policy jsonb, attempt integer,
									previous_delay interval DEFAULT NULL)
RETURNS interval
AS 'MODULE_PATHNAME', 'queue_backoff_delay'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;

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
END;
$$;

CREATE FUNCTION queue.create_queue(
	name text,
	max_attempts integer DEFAULT 5,
	retry_policy jsonb DEFAULT '{}',
	lease_timeout interval DEFAULT '30 seconds',
	retention interval DEFAULT '1 day',
	dead_retention interval DEFAULT '30 days',
	if_not_exists boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	qid integer;
BEGIN
	PERFORM queue._check_name(name);
	IF max_attempts IS NULL OR retry_policy IS NULL OR lease_timeout IS NULL
	   OR retention IS NULL OR dead_retention IS NULL OR if_not_exists IS NULL THEN
		RAISE EXCEPTION 'queue settings must not be null'
			USING ERRCODE = '22004',
				  HINT = 'Leave a setting out to take its default.';
	END IF;
	PERFORM queue._check_settings(max_attempts, lease_timeout, retention, dead_retention);

	INSERT INTO queue.queue AS q (name, max_attempts, retry_policy, lease_timeout,
								  retention, dead_retention)
	VALUES (create_queue.name, create_queue.max_attempts,
			queue._check_retry_policy(create_queue.retry_policy),
			create_queue.lease_timeout, create_queue.retention,
			create_queue.dead_retention)
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
	n bigint;
BEGIN
	DELETE FROM queue.job j WHERE j.queue_id = qid AND j.state = 'pending';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;

-- Drops a queue with all its jobs, live and finished.  Refuses while jobs
-- are running unless force is true.  Takes the queue's enqueue lock in
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
	DELETE FROM queue.job j WHERE j.queue_id = qid;
	DELETE FROM queue.job_archive a WHERE a.queue_id = qid;
	DELETE FROM queue.queue q WHERE q.id = qid;
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
	created_at timestamptz,
	updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT q.name, q.max_attempts, q.retry_policy, q.lease_timeout, q.retention,
		   q.dead_retention, q.paused, q.created_at, q.updated_at
	  FROM queue.queue q ORDER BY q.name;
END;

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
										   'completed', 'dead', 'cancelled') THEN
		RAISE EXCEPTION 'unknown job state "%"', state
			USING ERRCODE = '22023',
				  HINT = 'Use ready, scheduled, retrying, running, completed, dead or cancelled.';
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

-- Moves a job that is not running to the finished jobs as cancelled.
CREATE FUNCTION queue.cancel_job(job_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM queue._lock_idle_job(job_id, 'cancel');
	WITH d AS (DELETE FROM queue.job j WHERE j.id = cancel_job.job_id RETURNING j.*)
	INSERT INTO queue.job_archive (id, queue_id, state, priority, attempts, max_attempts,
								   retry_policy, payload, headers, dedup_key, worker,
								   result, errors, created_at, finished_at)
	SELECT d.id, d.queue_id, 'cancelled', d.priority, d.attempts, d.max_attempts,
		   d.retry_policy, d.payload, d.headers, d.dedup_key, d.worker,
		   NULL, d.errors, d.created_at, clock_timestamp()
	  FROM d;
END;
$$;

-- Deletes a job for good: a live job that is not running, or a finished one.
CREATE FUNCTION queue.delete_job(job_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM queue.job_archive a WHERE a.id = delete_job.job_id;
	IF NOT FOUND THEN
		PERFORM queue._lock_idle_job(job_id, 'delete');
		DELETE FROM queue.job j WHERE j.id = delete_job.job_id;
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
	queue_ids integer[];
	clash record;
BEGIN
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
		INSERT INTO queue.job (id, queue_id, state, priority, run_at, attempts, max_attempts,
							   retry_policy, payload, headers, dedup_key, errors, created_at)
		SELECT d.id, d.queue_id, 'pending', d.priority, clock_timestamp(), 0, d.max_attempts,
			   d.retry_policy, d.payload, d.headers, d.dedup_key, d.errors, d.created_at
		  FROM d
		RETURNING queue_id
	)
	SELECT count(*), coalesce(array_agg(DISTINCT ins.queue_id), '{}') INTO n, queue_ids FROM ins;
	PERFORM queue._wake(q) FROM unnest(queue_ids) q;
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
	SELECT coalesce(array_agg(a.id ORDER BY a.id), '{}') INTO ids
	  FROM queue.job_archive a
	 WHERE a.queue_id = qid AND a.state = 'dead'
	   AND (job_ids IS NULL OR a.id = ANY (job_ids));
	RETURN queue._redrive(ids);
END;
$$;

/*
 * Deletes finished jobs past their queue's retention (completed and
 * cancelled: retention; dead: dead_retention), at most batch_size rows per
 * queue and state, so that it never holds many locks or a long
 * transaction.  Returns how many went.  The background worker (a later
 * release) calls it; until then call it from cron or a worker.
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
	IF batch_size IS NULL OR batch_size < 1 THEN
		RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023';
	END IF;
	FOR q IN SELECT * FROM queue.queue ORDER BY id LOOP
		FOREACH st IN ARRAY ARRAY['completed', 'cancelled', 'dead'] LOOP
			DELETE FROM queue.job_archive a
			 WHERE a.id IN (
				SELECT b.id FROM queue.job_archive b
				 WHERE b.queue_id = q.id AND b.state = st
				   AND b.finished_at < clock_timestamp()
					   - CASE WHEN st = 'dead' THEN q.dead_retention ELSE q.retention END
				 ORDER BY b.id
				 LIMIT batch_size
				 FOR UPDATE SKIP LOCKED);
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
	n bigint;
BEGIN
	IF batch_size IS NULL OR batch_size < 1 THEN
		RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023';
	END IF;
	WITH expired AS MATERIALIZED (
		SELECT j.id FROM queue.job j
		 WHERE j.state = 'running' AND j.run_at <= clock_timestamp()
		   AND j.attempts >= j.max_attempts
		 ORDER BY j.run_at
		 LIMIT batch_size
		   FOR UPDATE SKIP LOCKED
	), d AS (
		DELETE FROM queue.job j USING expired e
		 WHERE j.id = e.id AND j.state = 'running' AND j.attempts >= j.max_attempts
		RETURNING j.*
	), archived AS (
		INSERT INTO queue.job_archive (id, queue_id, state, priority, attempts, max_attempts,
									   retry_policy, payload, headers, dedup_key, worker,
									   result, errors, created_at, finished_at)
		SELECT d.id, d.queue_id, 'dead', d.priority, d.attempts, d.max_attempts,
			   d.retry_policy, d.payload, d.headers, d.dedup_key, d.worker, NULL,
			   d.errors || jsonb_build_array(jsonb_build_object(
					'attempt', d.attempts, 'at', d.run_at, 'worker', d.worker,
					'error', 'lease expired')),
			   d.created_at, clock_timestamp()
		  FROM d JOIN queue.queue q ON q.id = d.queue_id
		 WHERE q.dead_retention > interval '0'
	), per_queue AS (
		SELECT d.queue_id, count(*) AS n FROM d GROUP BY d.queue_id
	)
	SELECT coalesce(sum(pq.n), 0) INTO n
	  FROM per_queue pq, LATERAL queue._count_outcome(pq.queue_id, 0, pq.n);
	RETURN n;
END;
$$;

/* ---------------------------------------------------------------------
 * Monitoring
 * ---------------------------------------------------------------------
 */

/*
 * One row per queue.  Counts of live jobs and finished jobs are exact
 * (counted when the view is read: the cost grows with the number of the
 * queue's jobs); completed_last_minute and failed_last_minute come from
 * counters in shared memory (exact since the server started, zero after a
 * restart); waiting_claims counts the claims asleep on the queue's wake-up
 * slot, which queues whose slots collide share.
 */
CREATE VIEW queue.queue_stats AS
SELECT q.name AS queue, q.paused,
	   coalesce(l.ready, 0) AS ready,
	   coalesce(l.scheduled, 0) AS scheduled,
	   coalesce(l.retrying, 0) AS retrying,
	   coalesce(r.running, 0) AS running,
	   (SELECT count(*) FROM queue.job_archive a
		 WHERE a.queue_id = q.id AND a.state = 'completed') AS completed,
	   (SELECT count(*) FROM queue.job_archive a
		 WHERE a.queue_id = q.id AND a.state = 'dead') AS dead,
	   (SELECT count(*) FROM queue.job_archive a
		 WHERE a.queue_id = q.id AND a.state = 'cancelled') AS cancelled,
	   pg_catalog.clock_timestamp() - l.oldest_ready AS oldest_ready_age,
	   coalesce(r.expired_leases, 0) AS expired_leases,
	   coalesce(t.completed_last_minute, 0) AS completed_last_minute,
	   coalesce(t.failed_last_minute, 0) AS failed_last_minute,
	   queue._waiting_claims(q.id) AS waiting_claims
  FROM queue.queue q
  LEFT JOIN LATERAL (
	SELECT count(*) FILTER (WHERE j.run_at <= pg_catalog.clock_timestamp()) AS ready,
		   count(*) FILTER (WHERE j.run_at > pg_catalog.clock_timestamp()
							  AND j.attempts = 0) AS scheduled,
		   count(*) FILTER (WHERE j.run_at > pg_catalog.clock_timestamp()
							  AND j.attempts > 0) AS retrying,
		   min(j.run_at) FILTER (WHERE j.run_at <= pg_catalog.clock_timestamp()) AS oldest_ready
	  FROM queue.job j
	 WHERE j.queue_id = q.id AND j.state = 'pending') l ON true
  LEFT JOIN LATERAL (
	SELECT count(*) AS running,
		   count(*) FILTER (WHERE j.run_at <= pg_catalog.clock_timestamp()) AS expired_leases
	  FROM queue.job j
	 WHERE j.queue_id = q.id AND j.state = 'running') r ON true
  LEFT JOIN queue._throughput() t ON t.queue_id = q.id;

COMMENT ON VIEW queue.queue_stats IS 'per queue: jobs by state, oldest ready age, throughput, expired leases, waiting claims';

-- The background workers of the whole server (see queue.databases).
CREATE VIEW queue.workers AS
SELECT d.datname AS database, w.pid, w.state, w.started_at, w.last_activity,
	   w.leases_expired, w.jobs_pruned, w.errors
  FROM queue._worker_status() w
  LEFT JOIN pg_catalog.pg_database d ON d.oid = w.dboid;

COMMENT ON VIEW queue.workers IS 'the queue background workers: database, pid, state, last activity, work done';

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
		'queue.enqueue(text,jsonb,jsonb,timestamptz,interval,integer,text,integer,jsonb)',
		'queue.enqueue_many(text,jsonb)',
		'queue.get_job(bigint)',
		'queue.list_queues()'];
	consumer text[] := ARRAY[
		'queue.claim(text,text,integer,interval,interval)',
		'queue.complete(bigint,uuid,jsonb)',
		'queue.complete_many(bigint[],uuid[],jsonb[])',
		'queue.fail(bigint,uuid,text,boolean,interval)',
		'queue.fail_many(bigint[],uuid[],text[],boolean,interval)',
		'queue.extend(bigint,uuid,interval)',
		'queue.release(bigint,uuid,interval)',
		'queue.backoff_delay(jsonb,integer,interval)',
		'queue.get_job(bigint)',
		'queue.list_queues()'];
	monitor text[] := ARRAY[
		'queue.list_queues()',
		'queue._throughput()',
		'queue._waiting_claims(integer)',
		'queue._worker_status()'];
	admin text[] := ARRAY[
		'queue.create_queue(text,integer,jsonb,interval,interval,interval,boolean)',
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
		'queue.expire_leases(integer)'];
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
	SELECT 'TABLE ' || t FROM unnest(ARRAY['queue.queue', 'queue.queue_stats', 'queue.workers']) t
	 WHERE _access_objects.access IN ('admin', 'monitor')
	UNION
	SELECT 'TABLE ' || t FROM unnest(ARRAY['queue.jobs', 'queue.job', 'queue.job_archive']) t
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
