-- outbox relay: one event per call (and per commit) to the topic
-- bench_events, keyed by one of 1,000 customers.  The background worker
-- relays it to the topic's subscriber queue.
\set k random(1, 1000)
SELECT queue.publish('bench_events', jsonb_build_object('task', 'resize-image', 'customer', :k::int),
                     key => 'cust-' || :k::int);
