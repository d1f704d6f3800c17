-- baseline: 100 rows per commit.
\set n random(1, 1000000000)
INSERT INTO bench_naive (payload)
SELECT jsonb_build_object('task', 'resize-image', 'n', :n::bigint + i) FROM generate_series(1, 100) i;
