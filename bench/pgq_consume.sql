-- peers, PgQ: one consumer turn, one transaction per batch: pgq.next_batch,
-- pgq.get_batch_events, pgq.finish_batch (bench_pgq_consume, created by
-- bench/run.sh --peers).  A batch is the events between two ticks.
SELECT bench_pgq_consume('bench', 'c1');
