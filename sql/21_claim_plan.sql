--
-- 21_claim_plan: a claim reads the claim-order index in order and stops
-- after the jobs it takes, whatever the statistics of queue.job say.
--
-- A queue that keeps up is nearly empty whenever ANALYZE looks at it, and
-- with an estimate of one row the planner would scan the whole table (or
-- every entry of the queue's index range) and sort, at every claim, so
-- that a claim costs in proportion to the backlog.  The claim plans its
-- statements without sequential scans, bitmap scans or sorts, in a GUC
-- level of its own (src/lease.c, claim_plans_begin).  Here: queue.job is
-- analyzed empty of this queue, 5,000 jobs arrive, and claims in the same
-- transaction (so no ANALYZE of another session changes the statistics)
-- must read only a few index entries and never scan the table.
--
\set SHOW_CONTEXT never
SELECT queue.create_queue('cp') IS NOT NULL AS created;

BEGIN;
ANALYZE queue.job;
SELECT count(*) AS jobs FROM queue.enqueue_payloads('cp',
  ARRAY(SELECT jsonb_build_object('n', i) FROM generate_series(1, 5000) i));
-- this transaction's scans of queue.job so far (the enqueue reads none)
SELECT seq_scan AS seq_before, coalesce(idx_tup_fetch, 0) AS fetched_before
  FROM pg_stat_xact_user_tables WHERE relid = 'queue.job'::regclass \gset
SELECT pg_stat_get_xact_tuples_returned('queue.job_claim_idx'::regclass) AS claim_idx_before \gset
-- a claim without a hint (a new queue), one with the hint the first left,
-- and complete_and_claim, which claims the same way: a job each
SELECT payload->>'n' AS n FROM queue.claim('cp', 'w', 1);
SELECT payload->>'n' AS n FROM queue.claim('cp', 'w', 1);
SELECT payload->>'n' AS n FROM queue.complete_and_claim('{}', '{}', 'cp', 'w', 1);
SELECT seq_scan - :seq_before AS sequential_scans,
       coalesce(idx_tup_fetch, 0) - :fetched_before < 100 AS few_rows_fetched
  FROM pg_stat_xact_user_tables WHERE relid = 'queue.job'::regclass;
SELECT pg_stat_get_xact_tuples_returned('queue.job_claim_idx'::regclass) - :claim_idx_before
       BETWEEN 1 AND 100 AS few_claim_index_entries_read;
ROLLBACK;

--
-- The planner settings the claim plans with are its own: the session's
-- are as they were after a claim, also after one that failed in the
-- middle (a constraint of queue.job that refuses running jobs makes the
-- claim's update fail after its statements ran).
--
SET enable_seqscan = on;
SET enable_bitmapscan = off;
SET enable_sort = on;
SELECT queue.enqueue('cp', '{"n": 1}') > 0 AS enqueued;
SELECT count(*) AS claimed FROM queue.claim('cp', 'w', 1);
SELECT current_setting('enable_seqscan') AS seqscan,
       current_setting('enable_bitmapscan') AS bitmapscan,
       current_setting('enable_sort') AS sort;
SELECT queue.enqueue('cp', '{"n": 2}') > 0 AS enqueued;
BEGIN;
ALTER TABLE queue.job ADD CONSTRAINT cp_no_running CHECK (state <> 'running') NOT VALID;
SAVEPOINT s;
\set VERBOSITY terse
SELECT count(*) FROM queue.claim('cp', 'w', 1);
\set VERBOSITY default
ROLLBACK TO SAVEPOINT s;
SELECT current_setting('enable_seqscan') AS seqscan,
       current_setting('enable_bitmapscan') AS bitmapscan,
       current_setting('enable_sort') AS sort;
ROLLBACK;
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_sort;

SELECT queue.drop_queue('cp', force => true);
