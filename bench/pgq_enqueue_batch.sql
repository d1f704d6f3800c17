-- peers, PgQ: 100 events per call, one commit per 100 events.
\set n random(1, 1000000000)
SELECT count(pgq.insert_event('bench', 'job', jsonb_build_object('task', 'resize-image', 'n', :n::bigint + i)::text))
  FROM generate_series(1, 100) i;
