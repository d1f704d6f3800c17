-- queue: 100 jobs per call with enqueue_many, one commit per 100 jobs.
\set n random(1, 1000000000)
SELECT count(*) FROM queue.enqueue_many('bench',
    (SELECT jsonb_agg(jsonb_build_object('payload', jsonb_build_object('task', 'resize-image', 'n', :n::bigint + i)))
       FROM generate_series(1, 100) i));
