/*-------------------------------------------------------------------------
 *
 * 00_internal.sql
 *	  Install script of the queue extension, first part: the design, and
 *	  the internal functions in C.  The Makefile concatenates the files in src/sql
 *	  in name order into queue--VERSION.sql.
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
 *	  src/sql/00_internal.sql
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

-- Trigger on queue.queue: every change reaches the queue lookup caches of
-- all backends at commit (src/queue.c).
CREATE FUNCTION queue._queue_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'queue_cache_invalidate_trigger'
LANGUAGE C;

-- Promotes the next job of each group that has no head (ordered queues).
CREATE FUNCTION queue._promote_groups(queue_id integer, group_keys text[])
RETURNS integer
AS 'MODULE_PATHNAME', 'queue_promote_groups_sql'
LANGUAGE C VOLATILE STRICT;

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
			   last_activity timestamptz, events_relayed bigint, leases_expired bigint,
			   jobs_pruned bigint, events_pruned bigint, errors bigint)
AS 'MODULE_PATHNAME', 'queue_worker_status'
LANGUAGE C VOLATILE;
/*-------------------------------------------------------------------------
 *
 * 10_tables.sql
 *	  Part of the install script of the queue extension: tables.
 *	  The Makefile concatenates the files in src/sql, in name order, into
 *	  queue--VERSION.sql.
 *
 * IDENTIFICATION
 *	  src/sql/10_tables.sql
 *
 *-------------------------------------------------------------------------
 */

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
	ordered			boolean NOT NULL DEFAULT false,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT queue_max_attempts_check CHECK (max_attempts >= 1),
	CONSTRAINT queue_lease_timeout_check CHECK (lease_timeout > interval '0'),
	CONSTRAINT queue_retention_check CHECK (retention >= interval '0'),
	CONSTRAINT queue_dead_retention_check CHECK (dead_retention >= interval '0')
);
ALTER SEQUENCE queue.queue_id_seq OWNED BY queue.queue.id;

COMMENT ON TABLE queue.queue IS 'queues and their settings';

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

CREATE SEQUENCE queue.job_id_seq;

/*
 * The live set.  state is 'pending' (waiting for its run_at: ready,
 * scheduled or retrying), 'running', or 'blocked' (in an ordered queue,
 * a job of a group whose earlier job is still live).  For a running job,
 * run_at holds the moment its lease expires: a job is claimable exactly
 * when it is not blocked and run_at <= now, whether it is pending and due
 * or running with an expired lease, so a single index serves the claim.
 *
 * Ordered queues (FIFO per group key): at most one job of a group is not
 * blocked, its "head".  Enqueue inserts a job blocked when its group has a
 * live job; whoever finishes a head (complete, dead, cancel, delete)
 * promotes the group's next job, the blocked one with the smallest id.
 * Both take the group's lock (src/groups.c), so the two cannot miss each
 * other.
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
	group_key		text,
	lease_timeout	interval,		-- the job's own lease (saga steps' timeout)
	deadline_at		timestamptz,	-- no attempt starts after it (saga steps)
	saga_id			bigint,			-- the saga whose step this job is
	saga_step		integer,		-- that step's index
	saga_compensation boolean,		-- true: the step's compensation
	lease_token		uuid,
	worker			text,
	claimed_at		timestamptz,
	errors			jsonb NOT NULL DEFAULT '[]',
	created_at		timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT job_saga_check CHECK ((saga_id IS NULL) = (saga_step IS NULL)),
	CONSTRAINT job_state_check CHECK (state IN ('pending', 'running', 'blocked')),
	CONSTRAINT job_lease_check CHECK ((state = 'running') = (lease_token IS NOT NULL))
) WITH (autovacuum_vacuum_scale_factor = 0.01,
		autovacuum_vacuum_threshold = 1000,
		autovacuum_vacuum_insert_scale_factor = 0.01,
		autovacuum_analyze_scale_factor = 0.02);
ALTER SEQUENCE queue.job_id_seq OWNED BY queue.job.id;

COMMENT ON TABLE queue.job IS 'live jobs: ready, scheduled, retrying, running and blocked';

-- The claim order: priority (higher first), then run_at, then id.
-- Blocked jobs are left out: they cannot be claimed.
CREATE INDEX job_claim_idx ON queue.job (queue_id, priority DESC, run_at, id)
	WHERE state <> 'blocked';
-- Running jobs by lease expiry: expired leases are found without a scan.
CREATE INDEX job_lease_idx ON queue.job (run_at) WHERE state = 'running';
-- The jobs of a group, in order (ordered queues).
CREATE INDEX job_group_idx ON queue.job (queue_id, group_key, id)
	WHERE group_key IS NOT NULL;
-- Jobs with a deadline (saga steps), for expire_leases.
CREATE INDEX job_deadline_idx ON queue.job (deadline_at) WHERE deadline_at IS NOT NULL;
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
	group_key		text,
	saga_id			bigint,
	saga_step		integer,
	saga_compensation boolean,
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
 *   blocked    waiting for the earlier jobs of its group (ordered queues)
 *   completed, dead, cancelled  finished
 */
CREATE VIEW queue.jobs AS
SELECT j.id, q.name AS queue,
	   CASE WHEN j.state = 'running' THEN 'running'
			WHEN j.state = 'blocked' THEN 'blocked'
			WHEN j.run_at <= pg_catalog.clock_timestamp() THEN 'ready'
			WHEN j.attempts > 0 THEN 'retrying'
			ELSE 'scheduled' END AS state,
	   j.priority, j.attempts, j.max_attempts,
	   CASE WHEN j.state <> 'running' THEN j.run_at END AS run_at,
	   CASE WHEN j.state = 'running' THEN j.run_at END AS lease_expires_at,
	   j.worker, j.payload, j.headers, j.dedup_key, j.group_key, j.retry_policy,
	   NULL::jsonb AS result, j.errors,
	   j.errors -> -1 ->> 'error' AS last_error,
	   j.created_at, j.claimed_at, NULL::timestamptz AS finished_at
  FROM queue.job j JOIN queue.queue q ON q.id = j.queue_id
UNION ALL
SELECT a.id, q.name, a.state, a.priority, a.attempts, a.max_attempts,
	   NULL, NULL, a.worker, a.payload, a.headers, a.dedup_key, a.group_key,
	   a.retry_policy, a.result, a.errors, a.errors -> -1 ->> 'error',
	   a.created_at, NULL, a.finished_at
  FROM queue.job_archive a JOIN queue.queue q ON q.id = a.queue_id;

COMMENT ON VIEW queue.jobs IS 'every job, live or finished, with its user-visible state';
/*-------------------------------------------------------------------------
 *
 * 20_hot_path.sql
 *	  Part of the install script of the queue extension: hot path.
 *	  The Makefile concatenates the files in src/sql, in name order, into
 *	  queue--VERSION.sql.
 *
 * IDENTIFICATION
 *	  src/sql/20_hot_path.sql
 *
 *-------------------------------------------------------------------------
 */

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
	retry_policy jsonb DEFAULT NULL,
	group_key text DEFAULT NULL)
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
/*-------------------------------------------------------------------------
 *
 * 50_monitoring.sql
 *	  Part of the install script of the queue extension: monitoring.
 *	  The Makefile concatenates the files in src/sql, in name order, into
 *	  queue--VERSION.sql.
 *
 * IDENTIFICATION
 *	  src/sql/50_monitoring.sql
 *
 *-------------------------------------------------------------------------
 */

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
	   coalesce(l.blocked, 0) AS blocked,
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
	SELECT count(*) FILTER (WHERE j.state = 'pending'
							  AND j.run_at <= pg_catalog.clock_timestamp()) AS ready,
		   count(*) FILTER (WHERE j.state = 'pending'
							  AND j.run_at > pg_catalog.clock_timestamp()
							  AND j.attempts = 0) AS scheduled,
		   count(*) FILTER (WHERE j.state = 'pending'
							  AND j.run_at > pg_catalog.clock_timestamp()
							  AND j.attempts > 0) AS retrying,
		   count(*) FILTER (WHERE j.state = 'blocked') AS blocked,
		   min(j.run_at) FILTER (WHERE j.state = 'pending'
								   AND j.run_at <= pg_catalog.clock_timestamp()) AS oldest_ready
	  FROM queue.job j
	 WHERE j.queue_id = q.id AND j.state IN ('pending', 'blocked')) l ON true
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
	   w.events_relayed, w.leases_expired, w.jobs_pruned, w.events_pruned, w.errors
  FROM queue._worker_status() w
  LEFT JOIN pg_catalog.pg_database d ON d.oid = w.dboid;

COMMENT ON VIEW queue.workers IS 'the queue background workers: database, pid, state, last activity, work done';
/*-------------------------------------------------------------------------
 *
 * 60_outbox.sql
 *	  Part of the install script of the queue extension: the transactional
 *	  outbox.  The Makefile concatenates the files in src/sql, in name
 *	  order, into queue--VERSION.sql.
 *
 * A service publishes an event in the same transaction as its business
 * writes; if that transaction rolls back, the event never existed.  The
 * relay (queue.relay(), run by the background worker of the database)
 * moves committed events to their topic's subscribers: each subscribed
 * queue gets a job per event, written in the relay's own transaction
 * together with the removal of the event from the outbox, so delivery to
 * queues is exactly once; each subscribed NOTIFY channel gets a
 * notification (best effort).
 *
 * Order: publishers of the same (topic, key) are serialized by a lock on
 * the key taken before the event's id is drawn (src/outbox.c), so within a
 * key, id order is commit order.  The relay reads the outbox, which holds
 * only events not yet relayed, in id order: no high-water mark, so an
 * event whose transaction commits late is simply relayed later, and never
 * skipped.  Jobs made from an event carry its key as their group key; in
 * an ordered queue that keeps the key's order up to the workers.
 *
 * Subscriptions: an event goes to the subscriptions of its topic that the
 * publishing transaction could see when it published (their ids are
 * stored with the event); a subscription removed before the relay gets to
 * the event is skipped.
 *
 * IDENTIFICATION
 *	  src/sql/60_outbox.sql
 *
 *-------------------------------------------------------------------------
 */

/* ---------------------------------------------------------------------
 * Tables
 * ---------------------------------------------------------------------
 */

CREATE SEQUENCE queue.topic_id_seq AS integer;

CREATE TABLE queue.topic (
	id			integer PRIMARY KEY DEFAULT nextval('queue.topic_id_seq'),
	name		text NOT NULL UNIQUE,
	retention	interval NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT topic_retention_check CHECK (retention >= interval '0')
);
ALTER SEQUENCE queue.topic_id_seq OWNED BY queue.topic.id;

COMMENT ON TABLE queue.topic IS 'topics events are published to';

CREATE SEQUENCE queue.subscription_id_seq AS integer;

-- A subscription delivers to a queue, or to a NOTIFY channel.
CREATE TABLE queue.subscription (
	id			integer PRIMARY KEY DEFAULT nextval('queue.subscription_id_seq'),
	topic_id	integer NOT NULL,
	queue_id	integer,
	channel		text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT subscription_target_check CHECK ((queue_id IS NULL) <> (channel IS NULL)),
	CONSTRAINT subscription_queue_key UNIQUE (topic_id, queue_id),
	CONSTRAINT subscription_channel_key UNIQUE (topic_id, channel)
);
ALTER SEQUENCE queue.subscription_id_seq OWNED BY queue.subscription.id;
CREATE INDEX subscription_queue_idx ON queue.subscription (queue_id)
	WHERE queue_id IS NOT NULL;

COMMENT ON TABLE queue.subscription IS 'who receives a topic''s events: queues and NOTIFY channels';

CREATE SEQUENCE queue.event_id_seq;

-- The outbox: committed events not yet relayed (and, invisibly, events of
-- transactions still in progress).
CREATE TABLE queue.event (
	id				bigint PRIMARY KEY,
	topic_id		integer NOT NULL,
	key				text,
	payload			jsonb NOT NULL,
	headers			jsonb,
	subscriptions	integer[] NOT NULL,
	published_at	timestamptz NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01,
		autovacuum_vacuum_threshold = 1000,
		autovacuum_vacuum_insert_scale_factor = 0.01);
ALTER SEQUENCE queue.event_id_seq OWNED BY queue.event.id;

COMMENT ON TABLE queue.event IS 'the outbox: published events waiting for the relay';

-- Relayed events (kept for their topic's retention) and dead events (that
-- could not be delivered, kept until retried or deleted with the topic).
CREATE TABLE queue.event_archive (
	id				bigint PRIMARY KEY,
	topic_id		integer NOT NULL,
	key				text,
	payload			jsonb NOT NULL,
	headers			jsonb,
	subscriptions	integer[] NOT NULL,
	published_at	timestamptz NOT NULL,
	state			text NOT NULL,
	error			text,
	finished_at		timestamptz NOT NULL,
	CONSTRAINT event_archive_state_check CHECK (state IN ('relayed', 'dead'))
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05);

COMMENT ON TABLE queue.event_archive IS 'relayed events (for their retention) and dead events';

CREATE INDEX event_archive_topic_idx ON queue.event_archive (topic_id, state, finished_at);

SELECT pg_catalog.pg_extension_config_dump('queue.topic', '');
SELECT pg_catalog.pg_extension_config_dump('queue.topic_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('queue.subscription_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.event', '');
SELECT pg_catalog.pg_extension_config_dump('queue.event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.event_archive', '');

/* ---------------------------------------------------------------------
 * Publishing and relaying, in C (src/outbox.c)
 * ---------------------------------------------------------------------
 */

CREATE FUNCTION queue.publish(topic text, payload jsonb, key text DEFAULT NULL,
							  headers jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'queue_publish'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.publish_many(topic text, events jsonb)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'queue_publish_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Relays up to batch_size committed events (default queue.relay_batch_size)
-- in one transaction with the jobs it creates; returns how many events it
-- took out of the outbox (relayed or dead).
CREATE FUNCTION queue.relay(batch_size integer DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'queue_relay'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- drop_topic's side of the topic name lock.
CREATE FUNCTION queue._lock_topic_name(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'queue_lock_topic_name'
LANGUAGE C VOLATILE STRICT;

/* ---------------------------------------------------------------------
 * Topics and subscriptions
 * ---------------------------------------------------------------------
 */

-- Looks a topic up by name, raising the documented error when unknown.
CREATE FUNCTION queue._topic_id(topic_name text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer;
BEGIN
	IF topic_name IS NULL THEN
		RAISE EXCEPTION 'topic name must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT t.id INTO tid FROM queue.topic t WHERE t.name = topic_name;
	IF tid IS NULL THEN
		RAISE EXCEPTION 'topic "%" does not exist', topic_name
			USING ERRCODE = '42704',
				  HINT = 'Create it with queue.create_topic().';
	END IF;
	RETURN tid;
END;
$$;

CREATE FUNCTION queue.create_topic(name text, retention interval DEFAULT '1 day',
								   if_not_exists boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer;
BEGIN
	PERFORM queue._check_name(name, 'topic');
	IF retention IS NULL OR if_not_exists IS NULL THEN
		RAISE EXCEPTION 'topic settings must not be null' USING ERRCODE = '22004';
	END IF;
	IF retention < interval '0' THEN
		RAISE EXCEPTION 'retention must not be negative, not %', retention
			USING ERRCODE = '22023';
	END IF;
	IF retention > interval '100 years' THEN
		RAISE EXCEPTION 'retention must be at most 100 years' USING ERRCODE = '22023';
	END IF;
	INSERT INTO queue.topic AS t (name, retention)
	VALUES (create_topic.name, create_topic.retention)
	ON CONFLICT ON CONSTRAINT topic_name_key DO NOTHING
	RETURNING t.id INTO tid;
	IF tid IS NULL THEN
		IF if_not_exists THEN
			RETURN queue._topic_id(name);
		END IF;
		RAISE EXCEPTION 'topic "%" already exists', name USING ERRCODE = '42710';
	END IF;
	RETURN tid;
END;
$$;

-- Drops a topic with its events (pending, relayed and dead).  Refuses while
-- it has subscriptions unless force is true (which removes them too).
CREATE FUNCTION queue.drop_topic(name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer;
	subs bigint;
BEGIN
	PERFORM queue._lock_topic_name(name);
	tid := queue._topic_id(name);
	PERFORM 1 FROM queue.topic t WHERE t.id = tid FOR UPDATE;
	SELECT count(*) INTO subs FROM queue.subscription s WHERE s.topic_id = tid;
	IF subs > 0 AND NOT coalesce(force, false) THEN
		RAISE EXCEPTION 'topic "%" has % subscription(s)', name, subs
			USING ERRCODE = '55006',
				  HINT = 'Unsubscribe first, or pass force => true.';
	END IF;
	DELETE FROM queue.subscription s WHERE s.topic_id = tid;
	DELETE FROM queue.event e WHERE e.topic_id = tid;
	DELETE FROM queue.event_archive a WHERE a.topic_id = tid;
	DELETE FROM queue.topic t WHERE t.id = tid;
END;
$$;

CREATE FUNCTION queue.list_topics()
RETURNS TABLE (name text, retention interval, subscriptions bigint, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT t.name, t.retention,
		   (SELECT count(*) FROM queue.subscription s WHERE s.topic_id = t.id),
		   t.created_at
	  FROM queue.topic t ORDER BY t.name;
END;

-- Checks a subscription's target: exactly one of a queue and a channel.
CREATE FUNCTION queue._check_target(queue_name text, channel text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF (queue_name IS NULL) = (channel IS NULL) THEN
		RAISE EXCEPTION 'give exactly one of queue and channel'
			USING ERRCODE = '22023';
	END IF;
	IF channel IS NOT NULL THEN
		PERFORM queue._check_name(channel, 'channel');
		IF octet_length(channel) > 63 THEN
			RAISE EXCEPTION 'channel name is too long'
				USING ERRCODE = '42622',
					  DETAIL = format('The name has %s bytes; NOTIFY takes at most 63.',
									  octet_length(channel));
		END IF;
	END IF;
END;
$$;

/*
 * Subscribes a queue (each event becomes a job in it) or a NOTIFY channel
 * (each event becomes a notification carrying its id, topic and key) to a
 * topic; returns the subscription's id.  The subscription receives the
 * events published by transactions that can see it: those that publish
 * after it committed (see the header).
 */
CREATE FUNCTION queue.subscribe(topic text, queue text DEFAULT NULL, channel text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer := queue._topic_id(topic);
	qid integer;
	sid integer;
BEGIN
	PERFORM queue._check_target(queue, channel);
	IF queue IS NOT NULL THEN
		qid := queue._queue_id(queue);
	END IF;
	INSERT INTO queue.subscription AS s (topic_id, queue_id, channel)
	VALUES (tid, qid, subscribe.channel)
	ON CONFLICT DO NOTHING
	RETURNING s.id INTO sid;
	IF sid IS NULL THEN
		RAISE EXCEPTION 'topic "%" already delivers to %', topic,
						coalesce('queue "' || queue || '"', 'channel "' || channel || '"')
			USING ERRCODE = '42710';
	END IF;
	RETURN sid;
END;
$$;

-- Removes a subscription.  Events already published keep their list of
-- subscriptions, but the relay skips one that no longer exists.
CREATE FUNCTION queue.unsubscribe(topic text, queue text DEFAULT NULL, channel text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer := queue._topic_id(topic);
BEGIN
	PERFORM queue._check_target(queue, channel);
	DELETE FROM queue.subscription s
	 WHERE s.topic_id = tid
	   AND (s.queue_id = (SELECT q.id FROM queue.queue q WHERE q.name = unsubscribe.queue)
			OR s.channel = unsubscribe.channel);
	IF NOT FOUND THEN
		RAISE EXCEPTION 'topic "%" does not deliver to %', topic,
						coalesce('queue "' || queue || '"', 'channel "' || channel || '"')
			USING ERRCODE = '42704';
	END IF;
END;
$$;

CREATE FUNCTION queue.list_subscriptions(topic text DEFAULT NULL)
RETURNS TABLE (id integer, topic text, queue text, channel text, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT s.id, t.name, q.name, s.channel, s.created_at
	  FROM queue.subscription s
	  JOIN queue.topic t ON t.id = s.topic_id
	  LEFT JOIN queue.queue q ON q.id = s.queue_id
	 WHERE list_subscriptions.topic IS NULL OR t.name = list_subscriptions.topic
	 ORDER BY t.name, s.id;
END;

/* ---------------------------------------------------------------------
 * Events
 * ---------------------------------------------------------------------
 */

-- Every event, pending, relayed or dead.
CREATE VIEW queue.events AS
SELECT e.id, t.name AS topic, e.key, 'pending'::text AS state, e.payload, e.headers,
	   e.subscriptions, e.published_at, NULL::timestamptz AS finished_at, NULL::text AS error
  FROM queue.event e JOIN queue.topic t ON t.id = e.topic_id
UNION ALL
SELECT a.id, t.name, a.key, a.state, a.payload, a.headers, a.subscriptions,
	   a.published_at, a.finished_at, a.error
  FROM queue.event_archive a JOIN queue.topic t ON t.id = a.topic_id;

COMMENT ON VIEW queue.events IS 'every event: pending, relayed (until its retention ends) or dead';

-- One event by id; no row when there is none (never published, rolled
-- back, or pruned after its topic's retention).
CREATE FUNCTION queue.get_event(event_id bigint)
RETURNS SETOF queue.events
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT * FROM queue.events e WHERE e.id = get_event.event_id;
END;

-- Puts a topic's dead events back into the outbox (all, or the given
-- ids); returns how many.  The later events of their keys were relayed
-- meanwhile, so a retried event arrives after them: a dead event gives up
-- its key's order.
CREATE FUNCTION queue.retry_dead_events(topic text, event_ids bigint[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer := queue._topic_id(topic);
	n bigint;
BEGIN
	WITH d AS (
		DELETE FROM queue.event_archive a
		 WHERE a.topic_id = tid AND a.state = 'dead'
		   AND (event_ids IS NULL OR a.id = ANY (event_ids))
		RETURNING a.*
	)
	INSERT INTO queue.event (id, topic_id, key, payload, headers, subscriptions, published_at)
	SELECT d.id, d.topic_id, d.key, d.payload, d.headers, d.subscriptions, d.published_at
	  FROM d;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;

-- Deletes relayed events past their topic's retention, at most batch_size
-- per topic; returns how many.  The background worker calls it.
CREATE FUNCTION queue.prune_events(batch_size integer DEFAULT 10000)
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

/* ---------------------------------------------------------------------
 * Monitoring
 * ---------------------------------------------------------------------
 */

/*
 * Per topic and subscription: events waiting for the relay, the age of the
 * oldest (the relay's lag), events relayed in the last minute (counted
 * from the archive, so a topic with retention under a minute shows fewer),
 * and dead events.  A topic without subscriptions has one row with
 * subscription NULL.
 */
CREATE VIEW queue.topic_stats AS
SELECT t.name AS topic,
	   CASE WHEN s.queue_id IS NOT NULL THEN 'queue:' || q.name
			WHEN s.channel IS NOT NULL THEN 'channel:' || s.channel END AS subscription,
	   (SELECT count(*) FROM queue.event e
		 WHERE e.topic_id = t.id
		   AND (s.id IS NULL OR s.id = ANY (e.subscriptions))) AS pending,
	   (SELECT pg_catalog.clock_timestamp() - min(e.published_at) FROM queue.event e
		 WHERE e.topic_id = t.id
		   AND (s.id IS NULL OR s.id = ANY (e.subscriptions))) AS oldest_pending_age,
	   (SELECT count(*) FROM queue.event_archive a
		 WHERE a.topic_id = t.id AND a.state = 'relayed'
		   AND a.finished_at > pg_catalog.clock_timestamp() - interval '1 minute'
		   AND (s.id IS NULL OR s.id = ANY (a.subscriptions))) AS relayed_last_minute,
	   (SELECT count(*) FROM queue.event_archive a
		 WHERE a.topic_id = t.id AND a.state = 'dead'
		   AND (s.id IS NULL OR s.id = ANY (a.subscriptions))) AS dead
  FROM queue.topic t
  LEFT JOIN queue.subscription s ON s.topic_id = t.id
  LEFT JOIN queue.queue q ON q.id = s.queue_id;

COMMENT ON VIEW queue.topic_stats IS 'per topic and subscription: pending events, relay lag, relayed in the last minute, dead events';

/*
 * The blocked groups of ordered queues: for each group with jobs waiting
 * behind its head, the head and why it holds the group.
 */
CREATE VIEW queue.blocked_groups AS
SELECT q.name AS queue, h.group_key, h.id AS head_job_id,
	   CASE WHEN h.state = 'running' THEN 'running'
			WHEN h.run_at <= pg_catalog.clock_timestamp() THEN 'ready'
			WHEN h.attempts > 0 THEN 'retrying'
			ELSE 'scheduled' END AS head_state,
	   CASE WHEN h.state = 'running' THEN 'head job is running'
			WHEN h.run_at <= pg_catalog.clock_timestamp() THEN 'head job is ready, waiting for a worker'
			WHEN h.attempts > 0 THEN 'head job is waiting to retry'
			ELSE 'head job is scheduled for later' END AS reason,
	   b.blocked_jobs, b.oldest_blocked_at
  FROM queue.job h
  JOIN queue.queue q ON q.id = h.queue_id AND q.ordered
  JOIN LATERAL (
	SELECT count(*) AS blocked_jobs, min(x.created_at) AS oldest_blocked_at
	  FROM queue.job x
	 WHERE x.queue_id = h.queue_id AND x.group_key = h.group_key AND x.state = 'blocked'
  ) b ON b.blocked_jobs > 0
 WHERE h.group_key IS NOT NULL AND h.state <> 'blocked';

COMMENT ON VIEW queue.blocked_groups IS 'groups of ordered queues whose jobs wait behind their head, and why';
/*-------------------------------------------------------------------------
 *
 * 70_sagas.sql
 *	  Part of the install script of the queue extension: orchestrated
 *	  sagas.  The Makefile concatenates the files in src/sql, in name
 *	  order, into queue--VERSION.sql.
 *
 * A saga type is an ordered list of steps; each step names the queue that
 * runs it and, optionally, the queue that runs its compensation.  Every
 * step (and every compensation) is an ordinary job, tagged with its saga
 * and step (queue.job.saga_id, saga_step, saga_compensation).  The core
 * hands the outcome of such a job to queue._saga_job_settled in the very
 * transaction that settles it (src/lease.c), so a worker that writes its
 * business rows and completes its step in one transaction moves the saga
 * exactly once, or not at all.
 *
 * States of a saga:
 *
 *	running ──(last step completed)──────────────────────────▶ completed
 *	   │
 *	   │ a step fails for good (attempts, permanent, deadline),
 *	   │ or cancel_saga, or the saga's deadline passes
 *	   ▼
 *	compensating ──(every completed step compensated)────────▶ compensated
 *	   │      ▲
 *	   │      └──(retry_saga_compensation)──┐
 *	   └──(a compensation fails for good)──▶ needs_attention
 *
 * While compensating, the compensations of the steps that completed run one
 * at a time, last step first; steps without a compensation are skipped.  A
 * cancel never strands a running step: a step job still waiting is
 * cancelled at once, but a running one is left to settle, and if it
 * completes, it is compensated too (its retries are stopped if it fails).
 *
 * Every transition locks the saga's row first (FOR UPDATE), so transitions
 * of one saga are serialized; each is recorded in queue.saga_event (the
 * timeline).  Lock order: a job's row, then its saga's row; cancel_saga
 * takes the saga's row and then tries the step job's row without waiting
 * (SKIP LOCKED), so the two cannot deadlock.
 *
 * Definitions are versioned: define_saga with an existing name adds a new
 * version; running instances keep the version they started with.
 *
 * IDENTIFICATION
 *	  src/sql/70_sagas.sql
 *
 *-------------------------------------------------------------------------
 */

/* ---------------------------------------------------------------------
 * Tables
 * ---------------------------------------------------------------------
 */

CREATE SEQUENCE queue.saga_definition_id_seq AS integer;

CREATE TABLE queue.saga_definition (
	id			integer PRIMARY KEY DEFAULT nextval('queue.saga_definition_id_seq'),
	name		text NOT NULL,
	version		integer NOT NULL,
	steps		jsonb NOT NULL,
	deadline	interval,
	created_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT saga_definition_name_version_key UNIQUE (name, version)
);
ALTER SEQUENCE queue.saga_definition_id_seq OWNED BY queue.saga_definition.id;

COMMENT ON TABLE queue.saga_definition IS 'saga types, one row per version';

CREATE SEQUENCE queue.saga_id_seq;

CREATE TABLE queue.saga (
	id				bigint PRIMARY KEY DEFAULT nextval('queue.saga_id_seq'),
	definition_id	integer NOT NULL,
	saga_type		text NOT NULL,
	status			text NOT NULL,
	input			jsonb NOT NULL,
	context			jsonb NOT NULL DEFAULT '{}',
	idempotency_key	text,
	step			integer NOT NULL DEFAULT 0,		-- the step running (or last run)
	compensating_step integer,						-- the compensation running
	job_id			bigint,							-- the job of that step or compensation
	failure			jsonb,							-- why it unwinds
	cancel_requested boolean NOT NULL DEFAULT false,
	deadline_at		timestamptz,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	finished_at		timestamptz,
	CONSTRAINT saga_status_check CHECK (status IN ('running', 'compensating', 'completed',
												   'compensated', 'needs_attention'))
);
ALTER SEQUENCE queue.saga_id_seq OWNED BY queue.saga.id;
CREATE UNIQUE INDEX saga_idempotency_idx ON queue.saga (saga_type, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
CREATE INDEX saga_status_idx ON queue.saga (status, updated_at)
	WHERE status IN ('running', 'compensating', 'needs_attention');

COMMENT ON TABLE queue.saga IS 'saga instances';

-- The timeline: one row per thing that happened to a saga.
CREATE TABLE queue.saga_event (
	id			bigserial PRIMARY KEY,
	saga_id		bigint NOT NULL,
	step		integer,
	step_name	text,
	kind		text NOT NULL,		-- action, compensation, saga
	event		text NOT NULL,		-- started, enqueued, completed, failed, cancelled, ...
	job_id		bigint,
	attempts	integer,
	detail		jsonb,
	at			timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX saga_event_saga_idx ON queue.saga_event (saga_id, id);

COMMENT ON TABLE queue.saga_event IS 'the timeline of each saga';

SELECT pg_catalog.pg_extension_config_dump('queue.saga_definition', '');
SELECT pg_catalog.pg_extension_config_dump('queue.saga_definition_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.saga', '');
SELECT pg_catalog.pg_extension_config_dump('queue.saga_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.saga_event', '');
SELECT pg_catalog.pg_extension_config_dump('queue.saga_event_id_seq', '');

-- Refused completions of a definition's steps, since start-up (C).
CREATE FUNCTION queue._saga_stale_completions(definition_id integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'queue_saga_stale_completions'
LANGUAGE C VOLATILE STRICT;

/* ---------------------------------------------------------------------
 * Definitions
 * ---------------------------------------------------------------------
 */

/*
 * Validates a list of steps and returns it normalized: every step an
 * object with name, queue, compensation_queue, max_attempts, retry_policy,
 * timeout (seconds, the lease of each attempt) and deadline (seconds
 * across attempts), absent keys as null.
 */
CREATE FUNCTION queue._check_saga_steps(steps jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	step jsonb;
	i integer := 0;
	names text[] := '{}';
	result jsonb := '[]';
	k text;
	name text;
	seconds numeric;
BEGIN
	IF steps IS NULL THEN
		RAISE EXCEPTION 'steps must not be null' USING ERRCODE = '22004';
	END IF;
	IF jsonb_typeof(steps) <> 'array' OR jsonb_array_length(steps) = 0 THEN
		RAISE EXCEPTION 'steps must be a non-empty JSON array of step objects'
			USING ERRCODE = '22023';
	END IF;
	FOR step IN SELECT * FROM jsonb_array_elements(steps) LOOP
		i := i + 1;
		IF jsonb_typeof(step) <> 'object' THEN
			RAISE EXCEPTION 'step % must be a JSON object', i USING ERRCODE = '22023';
		END IF;
		FOR k IN SELECT * FROM jsonb_object_keys(step) LOOP
			IF k NOT IN ('name', 'queue', 'compensation_queue', 'max_attempts',
						 'retry_policy', 'timeout', 'deadline') THEN
				RAISE EXCEPTION 'step %: unknown key "%"', i, k
					USING ERRCODE = '22023',
						  HINT = 'The keys are name, queue, compensation_queue, max_attempts, retry_policy, timeout and deadline.';
			END IF;
		END LOOP;
		IF jsonb_typeof(step->'name') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION 'step %: name must be a string', i USING ERRCODE = '22023';
		END IF;
		name := step->>'name';
		PERFORM queue._check_name(name, 'step');
		IF name = ANY (names) THEN
			RAISE EXCEPTION 'step %: duplicate step name "%"', i, name USING ERRCODE = '42710';
		END IF;
		names := names || name;
		IF jsonb_typeof(step->'queue') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION 'step "%": queue must be a string', name USING ERRCODE = '22023';
		END IF;
		PERFORM queue._queue_id(step->>'queue');
		IF step ? 'compensation_queue' AND jsonb_typeof(step->'compensation_queue') <> 'null' THEN
			IF jsonb_typeof(step->'compensation_queue') <> 'string' THEN
				RAISE EXCEPTION 'step "%": compensation_queue must be a string', name
					USING ERRCODE = '22023';
			END IF;
			PERFORM queue._queue_id(step->>'compensation_queue');
		END IF;
		IF step ? 'max_attempts' AND jsonb_typeof(step->'max_attempts') <> 'null' THEN
			IF jsonb_typeof(step->'max_attempts') <> 'number'
			   OR (step->>'max_attempts')::numeric < 1
			   OR (step->>'max_attempts')::numeric > 1000000
			   OR (step->>'max_attempts')::numeric <> trunc((step->>'max_attempts')::numeric) THEN
				RAISE EXCEPTION 'step "%": max_attempts must be a whole number from 1 to 1000000', name
					USING ERRCODE = '22023';
			END IF;
		END IF;
		IF step ? 'retry_policy' AND jsonb_typeof(step->'retry_policy') <> 'null' THEN
			PERFORM queue._check_retry_policy(step->'retry_policy', false);
		END IF;
		FOREACH k IN ARRAY ARRAY['timeout', 'deadline'] LOOP
			IF step ? k AND jsonb_typeof(step->k) <> 'null' THEN
				IF jsonb_typeof(step->k) <> 'number' THEN
					RAISE EXCEPTION 'step "%": % must be a number of seconds', name, k
						USING ERRCODE = '22023';
				END IF;
				seconds := (step->>k)::numeric;
				IF seconds < 0.001 OR seconds > 1e9 THEN
					RAISE EXCEPTION 'step "%": % must be at least 0.001 and at most 1e9 seconds', name, k
						USING ERRCODE = '22023';
				END IF;
			END IF;
		END LOOP;
		result := result || jsonb_build_array(jsonb_build_object(
			'name', name,
			'queue', step->>'queue',
			'compensation_queue', step->'compensation_queue',
			'max_attempts', step->'max_attempts',
			'retry_policy', step->'retry_policy',
			'timeout', step->'timeout',
			'deadline', step->'deadline'));
	END LOOP;
	RETURN jsonb_strip_nulls(result) || '[]';
END;
$$;

/*
 * Defines a saga type, or a new version of it; returns the version.
 * Instances started before keep running on the version they started with.
 */
CREATE FUNCTION queue.define_saga(name text, steps jsonb, deadline interval DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v integer;
	normalized jsonb;
BEGIN
	PERFORM queue._check_name(name, 'saga');
	IF deadline IS NOT NULL AND (deadline <= interval '0' OR deadline > interval '100 years') THEN
		RAISE EXCEPTION 'deadline must be positive and at most 100 years, not %', deadline
			USING ERRCODE = '22023';
	END IF;
	normalized := queue._check_saga_steps(steps);
	-- one definer at a time, so versions never collide (definitions are
	-- rare; readers take no conflicting lock)
	LOCK TABLE queue.saga_definition IN SHARE ROW EXCLUSIVE MODE;
	SELECT coalesce(max(d.version), 0) + 1 INTO v
	  FROM queue.saga_definition d WHERE d.name = define_saga.name;
	INSERT INTO queue.saga_definition (name, version, steps, deadline)
	VALUES (define_saga.name, v, normalized, define_saga.deadline);
	RETURN v;
END;
$$;

CREATE FUNCTION queue.list_sagas()
RETURNS TABLE (name text, version integer, steps jsonb, deadline interval,
			   created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT d.name, d.version, d.steps, d.deadline, d.created_at
	  FROM queue.saga_definition d ORDER BY d.name, d.version;
END;

/* ---------------------------------------------------------------------
 * Transitions (internal)
 * ---------------------------------------------------------------------
 */

-- Records one line of a saga's timeline.
CREATE FUNCTION queue._saga_log(saga_id bigint, step integer, step_name text, kind text,
								event text, job_id bigint DEFAULT NULL,
								attempts integer DEFAULT NULL, detail jsonb DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO queue.saga_event (saga_id, step, step_name, kind, event, job_id, attempts, detail)
	VALUES (_saga_log.saga_id, _saga_log.step, _saga_log.step_name, _saga_log.kind,
			_saga_log.event, _saga_log.job_id, _saga_log.attempts, _saga_log.detail);
END;

/*
 * Enqueues the job of a step (compensation false) or of its compensation,
 * with what its worker needs in the payload; records it on the saga.
 * Returns the job's id, or NULL when the step's queue no longer exists.
 */
CREATE FUNCTION queue._saga_enqueue(s queue.saga, step integer, compensation boolean)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	def jsonb := (SELECT d.steps -> step FROM queue.saga_definition d WHERE d.id = s.definition_id);
	qname text := CASE WHEN compensation THEN def->>'compensation_queue' ELSE def->>'queue' END;
	q queue.queue;
	jid bigint := nextval('queue.job_id_seq');
	now_ts timestamptz := clock_timestamp();
	payload jsonb;
BEGIN
	SELECT * INTO q FROM queue.queue WHERE name = qname;
	IF NOT FOUND THEN
		RETURN NULL;	-- the queue was dropped: the caller decides
	END IF;
	payload := jsonb_build_object('saga_id', s.id, 'saga', s.saga_type, 'step', def->>'name',
								  'input', s.input, 'context', s.context);
	IF compensation THEN
		payload := payload || jsonb_build_object('failure', s.failure);
	END IF;
	INSERT INTO queue.job (id, queue_id, state, priority, run_at, max_attempts, retry_policy,
						   payload, headers, lease_timeout, deadline_at, saga_id, saga_step,
						   saga_compensation, created_at)
	VALUES (jid, q.id, 'pending', 0, now_ts,
			coalesce((def->>'max_attempts')::integer, q.max_attempts),
			def->'retry_policy', payload,
			jsonb_build_object('saga', jsonb_build_object(
				'id', s.id, 'type', s.saga_type, 'step', def->>'name',
				'kind', CASE WHEN compensation THEN 'compensation' ELSE 'action' END)),
			CASE WHEN def ? 'timeout' THEN make_interval(secs => (def->>'timeout')::float8) END,
			CASE WHEN def ? 'deadline'
				 THEN now_ts + make_interval(secs => (def->>'deadline')::float8) END,
			s.id, step, compensation, now_ts);
	PERFORM queue._wake(q.id);
	PERFORM queue._saga_log(s.id, step, def->>'name',
							CASE WHEN compensation THEN 'compensation' ELSE 'action' END,
							'enqueued', jid);
	UPDATE queue.saga SET job_id = jid, updated_at = now_ts WHERE id = s.id;
	RETURN jid;
END;
$$;

/*
 * Stops a saga whose compensation of step k failed for good (or cannot be
 * enqueued): an operator looks, then calls retry_saga_compensation.
 */
CREATE FUNCTION queue._saga_needs_attention(s queue.saga, k integer, error text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	name text := (SELECT d.steps -> k ->> 'name' FROM queue.saga_definition d
				   WHERE d.id = s.definition_id);
BEGIN
	UPDATE queue.saga
	   SET status = 'needs_attention', job_id = NULL, compensating_step = k,
		   updated_at = clock_timestamp(),
		   failure = coalesce(failure, '{}') || jsonb_build_object(
			   'compensation_step', name, 'compensation_error', error)
	 WHERE id = s.id;
	PERFORM queue._saga_log(s.id, k, name, 'saga', 'needs_attention',
							detail => jsonb_build_object('error', error));
END;
$$;

/*
 * Unwinds from step "upto" down: enqueues the compensation of the highest
 * completed step at or below it that has one, or, when none is left, ends
 * the saga compensated.
 */
CREATE FUNCTION queue._saga_compensate_from(saga_id bigint, upto integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	s queue.saga;
	steps jsonb;
	k integer;
BEGIN
	SELECT * INTO s FROM queue.saga WHERE id = saga_id;
	steps := (SELECT d.steps FROM queue.saga_definition d WHERE d.id = s.definition_id);
	k := upto;
	WHILE k >= 0 LOOP
		IF s.context ? (steps -> k ->> 'name') THEN
			IF steps -> k ? 'compensation_queue' THEN
				UPDATE queue.saga SET status = 'compensating', compensating_step = k,
									  updated_at = clock_timestamp()
				 WHERE id = saga_id RETURNING * INTO s;
				IF queue._saga_enqueue(s, k, true) IS NULL THEN
					PERFORM queue._saga_needs_attention(s, k,
						format('queue "%s" does not exist', steps -> k ->> 'compensation_queue'));
				END IF;
				RETURN;
			END IF;
			PERFORM queue._saga_log(saga_id, k, steps -> k ->> 'name', 'compensation', 'skipped',
									detail => jsonb_build_object('reason', 'no compensation'));
		END IF;
		k := k - 1;
	END LOOP;
	UPDATE queue.saga SET status = 'compensated', compensating_step = NULL, job_id = NULL,
						  updated_at = clock_timestamp(), finished_at = clock_timestamp()
	 WHERE id = saga_id;
	PERFORM queue._saga_log(saga_id, NULL, NULL, 'saga', 'compensated');
END;
$$;

/*
 * The outcome of a saga step's job ('completed' or 'dead'), from the core,
 * in the transaction that settled the job.  See the state diagram above.
 */
CREATE FUNCTION queue._saga_job_settled(saga_id bigint, step integer, compensation boolean,
										job_id bigint, attempts integer, outcome text,
										result jsonb, error text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	s queue.saga;
	steps jsonb;
	name text;
	now_ts timestamptz := clock_timestamp();
BEGIN
	SELECT * INTO s FROM queue.saga WHERE id = saga_id FOR UPDATE;
	IF NOT FOUND THEN
		RETURN;		-- the saga was deleted; the job is just a job
	END IF;
	steps := (SELECT d.steps FROM queue.saga_definition d WHERE d.id = s.definition_id);
	name := steps -> step ->> 'name';
	PERFORM queue._saga_log(saga_id, step, name,
							CASE WHEN compensation THEN 'compensation' ELSE 'action' END,
							CASE WHEN outcome = 'completed' THEN 'completed' ELSE 'failed' END,
							job_id, attempts,
							CASE WHEN outcome = 'completed' THEN jsonb_build_object('result', result)
								 ELSE jsonb_build_object('error', error) END);

	IF compensation THEN
		IF outcome = 'completed' THEN
			PERFORM queue._saga_compensate_from(saga_id, step - 1);
		ELSE
			PERFORM queue._saga_needs_attention(s, step, error);
		END IF;
		RETURN;
	END IF;

	IF outcome = 'completed' THEN
		UPDATE queue.saga
		   SET context = context || jsonb_build_object(name, result), updated_at = now_ts
		 WHERE id = saga_id RETURNING * INTO s;
		IF s.status = 'running' THEN
			IF step = jsonb_array_length(steps) - 1 THEN
				UPDATE queue.saga SET status = 'completed', job_id = NULL,
									  finished_at = now_ts, updated_at = now_ts
				 WHERE id = saga_id;
				PERFORM queue._saga_log(saga_id, NULL, NULL, 'saga', 'completed');
			ELSE
				UPDATE queue.saga SET step = step + 1 WHERE id = saga_id RETURNING * INTO s;
				IF queue._saga_enqueue(s, step + 1, false) IS NULL THEN
					-- the next step cannot run: it fails, and this one is undone
					UPDATE queue.saga
					   SET status = 'compensating', updated_at = now_ts,
						   failure = jsonb_build_object('reason', 'step failed',
								'step', steps -> (step + 1) ->> 'name',
								'error', format('queue "%s" does not exist',
												steps -> (step + 1) ->> 'queue'))
					 WHERE id = saga_id;
					PERFORM queue._saga_compensate_from(saga_id, step);
				END IF;
			END IF;
		ELSE
			-- cancelled (or past its deadline) while this step ran: it
			-- completed, so it is compensated too
			PERFORM queue._saga_compensate_from(saga_id, step);
		END IF;
	ELSE
		IF s.status = 'running' THEN
			UPDATE queue.saga
			   SET status = 'compensating', updated_at = now_ts,
				   failure = jsonb_build_object('reason', 'step failed', 'step', name,
												'error', error)
			 WHERE id = saga_id;
		END IF;
		PERFORM queue._saga_compensate_from(saga_id, step - 1);
	END IF;
END;
$$;

/*
 * A saga's job that an operator cancelled, deleted or purged counts as
 * failed for good (a no-op for jobs of no saga).
 */
CREATE FUNCTION queue._saga_job_gone(j queue.job, why text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF j.saga_id IS NOT NULL THEN
		PERFORM queue._saga_job_settled(j.saga_id, j.saga_step,
										coalesce(j.saga_compensation, false), j.id,
										j.attempts, 'dead', NULL, why);
	END IF;
END;
$$;

/*
 * A saga step's job failed and will be retried (from the core).  When its
 * saga is unwinding (cancelled while the step ran), the retry is stopped:
 * the job is cancelled and the unwinding goes on below this step.
 */
CREATE FUNCTION queue._saga_step_retrying(job_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	j queue.job;
	s queue.saga;
BEGIN
	SELECT * INTO j FROM queue.job WHERE id = job_id;
	IF NOT FOUND OR j.saga_compensation THEN
		RETURN;
	END IF;
	SELECT * INTO s FROM queue.saga WHERE id = j.saga_id FOR UPDATE;
	IF NOT FOUND OR s.status <> 'compensating' THEN
		RETURN;
	END IF;
	PERFORM queue._saga_cancel_job(j);
	PERFORM queue._saga_compensate_from(s.id, j.saga_step - 1);
END;
$$;

-- Moves a saga's waiting step job to the finished jobs as cancelled.
CREATE FUNCTION queue._saga_cancel_job(j queue.job)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM queue._archive_cancelled(j.id);
	PERFORM queue._saga_log(j.saga_id, j.saga_step, j.payload ->> 'step', 'action',
							'cancelled', j.id, j.attempts);
END;
$$;

/*
 * Switches a running saga to compensating for a reason (cancel, deadline).
 * Its step job, if still waiting, is cancelled and the unwinding starts
 * below it; if running (or being settled right now: its row is locked), it
 * is left to settle, and _saga_job_settled goes on from there.
 */
CREATE FUNCTION queue._saga_abort(saga_id bigint, reason text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	s queue.saga;
	j queue.job;
BEGIN
	SELECT * INTO s FROM queue.saga WHERE id = saga_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'saga % does not exist', saga_id USING ERRCODE = '42704';
	END IF;
	IF s.status <> 'running' THEN
		RETURN s.status;
	END IF;
	UPDATE queue.saga
	   SET status = 'compensating', cancel_requested = (reason = 'cancelled'),
		   updated_at = clock_timestamp(),
		   failure = jsonb_build_object('reason', reason, 'step',
				(SELECT d.steps -> s.step ->> 'name' FROM queue.saga_definition d
				  WHERE d.id = s.definition_id))
	 WHERE id = saga_id;
	PERFORM queue._saga_log(saga_id, s.step, NULL, 'saga', reason);

	SELECT * INTO j FROM queue.job x
	 WHERE x.id = s.job_id AND x.saga_id = saga_id
	   FOR UPDATE SKIP LOCKED;
	IF FOUND AND j.state <> 'running' THEN
		PERFORM queue._saga_cancel_job(j);
		PERFORM queue._saga_compensate_from(saga_id, s.step - 1);
	ELSIF FOUND THEN
		-- running: let this attempt settle, but start no other one (a
		-- failure or an expired lease now makes the step dead)
		UPDATE queue.job x SET max_attempts = x.attempts WHERE x.id = j.id;
	END IF;
	RETURN (SELECT x.status FROM queue.saga x WHERE x.id = saga_id);
END;
$$;

/* ---------------------------------------------------------------------
 * API
 * ---------------------------------------------------------------------
 */

/*
 * Starts an instance of the newest version of a saga type, enqueuing its
 * first step; returns its id.  With an idempotency key, starting again
 * with the same key returns the same saga and starts nothing.
 */
CREATE FUNCTION queue.start_saga(saga_type text, input jsonb DEFAULT '{}',
								 idempotency_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	d queue.saga_definition;
	s queue.saga;
	sid bigint;
BEGIN
	IF saga_type IS NULL OR input IS NULL THEN
		RAISE EXCEPTION 'saga_type and input must not be null' USING ERRCODE = '22004';
	END IF;
	IF jsonb_typeof(start_saga.input) <> 'object' THEN
		RAISE EXCEPTION 'input must be a JSON object' USING ERRCODE = '22023';
	END IF;
	IF pg_column_size(start_saga.input) >
	   (SELECT x.setting::integer FROM pg_settings x WHERE x.name = 'queue.max_payload_bytes') THEN
		RAISE EXCEPTION 'input is too large'
			USING ERRCODE = '54000',
				  DETAIL = format('It takes %s bytes; queue.max_payload_bytes is %s.',
								  pg_column_size(start_saga.input),
								  current_setting('queue.max_payload_bytes'));
	END IF;
	IF idempotency_key IS NOT NULL
	   AND (length(idempotency_key) = 0 OR octet_length(idempotency_key) > 512) THEN
		RAISE EXCEPTION 'idempotency_key must have 1 to 512 bytes' USING ERRCODE = '22023';
	END IF;
	SELECT * INTO d FROM queue.saga_definition x
	 WHERE x.name = saga_type ORDER BY x.version DESC LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'saga type "%" does not exist', saga_type
			USING ERRCODE = '42704',
				  HINT = 'Define it with queue.define_saga().';
	END IF;
	INSERT INTO queue.saga AS x (definition_id, saga_type, status, input, idempotency_key,
								 deadline_at)
	VALUES (d.id, d.name, 'running', start_saga.input, start_saga.idempotency_key,
			clock_timestamp() + d.deadline)
	ON CONFLICT (saga_type, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
	RETURNING * INTO s;
	IF NOT FOUND THEN
		SELECT x.id INTO sid FROM queue.saga x
		 WHERE x.saga_type = start_saga.saga_type
		   AND x.idempotency_key = start_saga.idempotency_key;
		RETURN sid;
	END IF;
	PERFORM queue._saga_log(s.id, NULL, NULL, 'saga', 'started',
							detail => jsonb_build_object('version', d.version));
	IF queue._saga_enqueue(s, 0, false) IS NULL THEN
		RAISE EXCEPTION 'queue "%" of the first step of saga type "%" does not exist',
						d.steps -> 0 ->> 'queue', saga_type
			USING ERRCODE = '42704';
	END IF;
	RETURN s.id;
END;
$$;

/*
 * Cancels a running saga: it compensates the steps that completed (a
 * step still running is waited for).  Returns the saga's status after the
 * call; a saga already unwinding or finished is left as it is.
 */
CREATE FUNCTION queue.cancel_saga(saga_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF saga_id IS NULL THEN
		RAISE EXCEPTION 'saga_id must not be null' USING ERRCODE = '22004';
	END IF;
	RETURN queue._saga_abort(saga_id, 'cancelled');
END;
$$;

/*
 * Retries the compensation that failed for good (status needs_attention):
 * enqueues it again, and the unwinding goes on from there.
 */
CREATE FUNCTION queue.retry_saga_compensation(saga_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	s queue.saga;
	jid bigint;
BEGIN
	IF saga_id IS NULL THEN
		RAISE EXCEPTION 'saga_id must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT * INTO s FROM queue.saga WHERE id = saga_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'saga % does not exist', saga_id USING ERRCODE = '42704';
	END IF;
	IF s.status <> 'needs_attention' THEN
		RAISE EXCEPTION 'saga % does not need attention: it is %', saga_id, s.status
			USING ERRCODE = '55000';
	END IF;
	UPDATE queue.saga SET status = 'compensating', updated_at = clock_timestamp()
	 WHERE id = saga_id RETURNING * INTO s;
	PERFORM queue._saga_log(saga_id, s.compensating_step, NULL, 'saga', 'compensation retried');
	jid := queue._saga_enqueue(s, s.compensating_step, true);
	IF jid IS NULL THEN
		RAISE EXCEPTION 'the compensation queue of saga % does not exist', saga_id
			USING ERRCODE = '42704',
				  HINT = 'Create the queue again first.';
	END IF;
	RETURN jid;
END;
$$;

/*
 * Compensates the running sagas whose deadline has passed, at most
 * batch_size; returns how many.  The background worker calls it.
 */
CREATE FUNCTION queue.expire_saga_deadlines(batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sid bigint;
	n bigint := 0;
BEGIN
	PERFORM queue._check_batch_size(batch_size);
	FOR sid IN
		SELECT s.id FROM queue.saga s
		 WHERE s.status = 'running' AND s.deadline_at < clock_timestamp()
		 ORDER BY s.deadline_at LIMIT batch_size
		   FOR UPDATE SKIP LOCKED
	LOOP
		PERFORM queue._saga_abort(sid, 'deadline passed');
		n := n + 1;
	END LOOP;
	RETURN n;
END;
$$;

/* ---------------------------------------------------------------------
 * Views
 * ---------------------------------------------------------------------
 */

-- Every saga, with its type's version and where it is.
CREATE VIEW queue.sagas AS
SELECT s.id, s.saga_type, d.version, s.status, s.input, s.context,
	   s.idempotency_key, d.steps -> s.step ->> 'name' AS current_step,
	   d.steps -> s.compensating_step ->> 'name' AS compensating_step,
	   s.job_id, s.failure, s.cancel_requested, s.deadline_at,
	   s.created_at, s.updated_at, s.finished_at
  FROM queue.saga s JOIN queue.saga_definition d ON d.id = s.definition_id;

COMMENT ON VIEW queue.sagas IS 'every saga: status, current step, context and failure';

-- Instances by type and status, and the completions refused for stale
-- leases (counted since start-up).
CREATE VIEW queue.saga_stats AS
SELECT d.name AS saga_type,
	   count(s.id) FILTER (WHERE s.status = 'running') AS running,
	   count(s.id) FILTER (WHERE s.status = 'compensating') AS compensating,
	   count(s.id) FILTER (WHERE s.status = 'completed') AS completed,
	   count(s.id) FILTER (WHERE s.status = 'compensated') AS compensated,
	   count(s.id) FILTER (WHERE s.status = 'needs_attention') AS needs_attention,
	   (SELECT coalesce(sum(queue._saga_stale_completions(x.id)), 0)::bigint
		  FROM queue.saga_definition x WHERE x.name = d.name) AS stale_completions
  FROM (SELECT DISTINCT name FROM queue.saga_definition) d
  LEFT JOIN queue.saga s ON s.saga_type = d.name
 GROUP BY d.name;

COMMENT ON VIEW queue.saga_stats IS 'sagas by type and status, and refused stale completions';

-- One saga's timeline, oldest first.
CREATE FUNCTION queue.saga_timeline(saga_id bigint)
RETURNS TABLE (at timestamptz, step text, kind text, event text, job_id bigint,
			   attempts integer, detail jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT e.at, e.step_name, e.kind, e.event, e.job_id, e.attempts, e.detail
	  FROM queue.saga_event e WHERE e.saga_id = saga_timeline.saga_id ORDER BY e.id;
END;

-- Sagas not finished whose last transition is older than the threshold.
CREATE FUNCTION queue.stuck_sagas(older_than interval DEFAULT '1 hour')
RETURNS SETOF queue.sagas
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT * FROM queue.sagas s
	 WHERE s.status IN ('running', 'compensating', 'needs_attention')
	   AND s.updated_at < clock_timestamp() - stuck_sagas.older_than
	 ORDER BY s.updated_at;
END;
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
