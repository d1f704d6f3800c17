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
