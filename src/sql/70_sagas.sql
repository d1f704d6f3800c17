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
