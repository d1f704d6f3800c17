-- queue: one job per call, one commit per job.
-- pgbench -M prepared -f bench/enqueue.sql (bench/run.sh creates the queue "bench").
\set n random(1, 1000000000)
SELECT queue.enqueue('bench', jsonb_build_object('task', 'resize-image', 'n', :n::bigint));
