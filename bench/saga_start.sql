-- sagas, producer: starts one 3-step saga (bench3) per call; its first step
-- is enqueued in the same transaction.
\set n random(1, 1000000000)
SELECT queue.start_saga('bench3', jsonb_build_object('order_id', :n::bigint));
