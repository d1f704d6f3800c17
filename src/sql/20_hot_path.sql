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
