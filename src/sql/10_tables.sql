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
