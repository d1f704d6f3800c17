-- wake-up latency, producer: one job per call, one commit per job; run with
-- pgbench -R (a steady rate).  The job's created_at is the enqueue call's
-- clock_timestamp(), and its commit follows at once (autocommit).
SELECT queue.enqueue('wake', '{"task": "ping"}');
