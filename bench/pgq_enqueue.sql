-- peers, PgQ: one event per call, one commit per event (database pgq, queue
-- "bench"; bench/run.sh --peers creates them).
\set n random(1, 1000000000)
SELECT pgq.insert_event('bench', 'job', jsonb_build_object('task', 'resize-image', 'n', :n::bigint)::text);
