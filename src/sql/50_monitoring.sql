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
