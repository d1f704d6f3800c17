-- queue: 100 jobs per call with enqueue_payloads (an array of payloads with
-- shared options), one commit per 100 jobs.  The array is built as the
-- baseline builds its rows: one jsonb_build_object per job.
\set n random(1, 1000000000)
SELECT count(*) FROM queue.enqueue_payloads('bench',
    ARRAY(SELECT jsonb_build_object('task', 'resize-image', 'n', :n::bigint + i) FROM generate_series(1, 100) i));
