-- baseline: the physical limit of a naive queue table, one row per commit.
\set n random(1, 1000000000)
INSERT INTO bench_naive (payload) VALUES (jsonb_build_object('task', 'resize-image', 'n', :n::bigint));
