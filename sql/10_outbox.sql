--
-- 10_outbox: the transactional outbox.  Topics, subscriptions, publish and
-- publish_many, the relay (called by hand: pg_regress starts no background
-- worker, queue.databases is empty), events and their archive, dead events,
-- pruning, and the topic monitoring view.  The content of NOTIFY deliveries
-- is checked by the isolation spec outbox-notify (psql prints the sender's
-- pid with each notification).
--
\set SHOW_CONTEXT never
-- Ids of this suite start at 1000001 (jobs), 1001 (events), 101 (topics)
-- and 201 (subscriptions), so messages naming them are stable.
SELECT setval('queue.job_id_seq', 1000000);
SELECT setval('queue.event_id_seq', 1000);
SELECT setval('queue.topic_id_seq', 100);
SELECT setval('queue.subscription_id_seq', 200);

-- Nothing to relay yet.
SELECT queue.relay();

--
-- Topics: created with a retention (default a day), names checked like
-- queue names.
--
SELECT queue.create_topic('t10_orders');
SELECT queue.create_topic('t10_keep', retention => '1 hour');
SELECT queue.create_topic('t10_none', retention => '0');
SELECT name, retention, subscriptions, created_at <= now() AS created
  FROM queue.list_topics() WHERE name LIKE 't10%';
-- A second topic of the same name is refused (duplicate_object) ...
SELECT queue.create_topic('t10_orders');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- ... unless if_not_exists, which returns the existing id and leaves the
-- retention alone.
SELECT queue.create_topic('t10_orders', retention => '5 minutes', if_not_exists => true);
SELECT retention FROM queue.list_topics() WHERE name = 't10_orders';
SELECT queue.create_topic('t10_new', if_not_exists => true);
-- Bad names and settings.
SELECT queue.create_topic('');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_topic('has space');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_topic('_underscore');
SELECT queue.create_topic(repeat('t', 65));
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_topic(NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_topic('t10_bad', retention => '-1 second');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_topic('t10_bad', retention => NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.create_topic('t10_bad', if_not_exists => NULL);
SELECT count(*) AS bad_topics FROM queue.list_topics() WHERE name = 't10_bad';
-- Unknown topics.
SELECT queue.drop_topic('t10_nope');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.drop_topic(NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- A topic without subscriptions drops.
SELECT queue.drop_topic('t10_new');
SELECT name FROM queue.list_topics() WHERE name LIKE 't10%';

--
-- Subscriptions: a queue or a NOTIFY channel, exactly one of them.
--
SELECT queue.create_queue('q10_a') > 0 AS created;
SELECT queue.create_queue('q10_b') > 0 AS created;
SELECT queue.create_queue('q10_ordered', ordered => true) > 0 AS created;
SELECT queue.subscribe('t10_orders', queue => 'q10_a');
SELECT queue.subscribe('t10_orders', queue => 'q10_b');
SELECT queue.subscribe('t10_orders', channel => 't10_orders.created');
SELECT queue.subscribe('t10_keep', queue => 'q10_ordered');
SELECT queue.subscribe('t10_none', queue => 'q10_a');
-- neither, or both
SELECT queue.subscribe('t10_orders');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.subscribe('t10_orders', queue => 'q10_a', channel => 'c');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- unknown queue or topic
SELECT queue.subscribe('t10_orders', queue => 'q10_nope');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.subscribe('t10_nope', queue => 'q10_a');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.subscribe(NULL, queue => 'q10_a');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- twice the same queue or channel
SELECT queue.subscribe('t10_orders', queue => 'q10_a');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.subscribe('t10_orders', channel => 't10_orders.created');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- channel names are checked like queue names
SELECT queue.subscribe('t10_orders', channel => 'bad channel');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.subscribe('t10_orders', channel => '');
SELECT queue.subscribe('t10_orders', channel => repeat('c', 65));
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- list_subscriptions: all, or one topic's, by topic name then id
SELECT id, topic, queue, channel, created_at <= now() AS created
  FROM queue.list_subscriptions() WHERE topic LIKE 't10%';
SELECT id, queue, channel FROM queue.list_subscriptions('t10_keep');
SELECT count(*) FROM queue.list_subscriptions('t10_nope');
SELECT name, subscriptions FROM queue.list_topics() WHERE name LIKE 't10%';
-- unsubscribe: a subscription that is not there is an error
SELECT queue.subscribe('t10_keep', channel => 't10_tmp');
SELECT queue.unsubscribe('t10_keep', channel => 't10_tmp');
SELECT queue.unsubscribe('t10_keep', channel => 't10_tmp');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.unsubscribe('t10_keep', queue => 'q10_b');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.unsubscribe('t10_keep', queue => 'q10_nope');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.unsubscribe('t10_nope', queue => 'q10_a');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.unsubscribe('t10_keep');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT id, queue, channel FROM queue.list_subscriptions('t10_keep');
-- drop_topic refuses while the topic has subscriptions (unless force)
SELECT queue.drop_topic('t10_keep');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- drop_queue refuses while a topic delivers to the queue (unless force)
SELECT queue.drop_queue('q10_ordered');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) AS still_there FROM queue.list_queues() WHERE name = 'q10_ordered';

--
-- publish: the checks.
--
SELECT queue.publish('t10_nope', '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish(NULL, '{}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish('t10_orders', NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish('t10_orders', '[1, 2]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish('t10_orders', '"text"');
SELECT queue.publish('t10_orders', '{}', key => '');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish('t10_orders', '{}', key => repeat('k', 513));
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish('t10_orders', '{}', headers => '[]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish('t10_orders', '{}', headers => '7');
SET queue.max_payload_bytes = 64;
SELECT queue.publish('t10_orders', jsonb_build_object('blob', repeat('x', 100)));
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish('t10_orders', '{}', headers => jsonb_build_object('blob', repeat('x', 100)));
RESET queue.max_payload_bytes;
-- nothing was published
SELECT count(*) AS events FROM queue.events WHERE topic LIKE 't10%';

-- publish_many: the checks.
SELECT queue.publish_many('t10_orders', NULL);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish_many(NULL, '[]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish_many('t10_orders', '{"payload": {}}');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish_many('t10_orders', '"x"');
SELECT queue.publish_many('t10_orders', '[{"payload": {}}, 7]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish_many('t10_orders', '[{"payload": {}}, {"payload": {}, "key": 7}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish_many('t10_orders', '[{"payload": "x"}]');
SELECT queue.publish_many('t10_orders', '[{"payload": {}, "headers": "x"}]');
SELECT queue.publish_many('t10_orders', '[{"payload": {}, "delay": 5}]');
-- a misspelt key is refused even when its value is null; the error names
-- the element
\set SHOW_CONTEXT errors
SELECT queue.publish_many('t10_orders', '[{"payload": {}}, {"payload": {}, "Key": null}]');
SELECT queue.publish_many('t10_orders', '[{"payload": {}}, {"payload": {}, "key": ""}]');
\set SHOW_CONTEXT never
SELECT queue.publish_many('t10_orders', '[{"key": "k"}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish_many('t10_orders', '[{"payload": {}, "key": ""}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish_many('t10_orders', '[{"payload": {}, "headers": [1]}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.publish_many('t10_nope', '[{"payload": {}}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- at most queue.max_batch_size events per call
SET queue.max_batch_size = 2;
SELECT queue.publish_many('t10_orders', '[{"payload": {}}, {"payload": {}}, {"payload": {}}]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
RESET queue.max_batch_size;
-- an empty array publishes nothing (the topic must exist all the same)
SELECT count(*) AS ids FROM queue.publish_many('t10_orders', '[]');
SELECT queue.publish_many('t10_nope', '[]');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT count(*) AS events FROM queue.events WHERE topic LIKE 't10%';

--
-- An event is published in the caller's transaction: rolled back, it never
-- existed and is never relayed.  (Its id is used up.)
--
BEGIN;
SELECT queue.publish('t10_orders', '{"order": 0}', key => 'o-0');
SELECT id, topic, state FROM queue.events WHERE topic LIKE 't10%';
ROLLBACK;
SELECT count(*) AS events FROM queue.events WHERE topic LIKE 't10%';
SELECT count(*) AS rows FROM queue.get_event(1001);
SELECT queue.relay();

--
-- Publishing and relaying.
--
SELECT queue.publish('t10_orders', '{"order": 1}', key => 'o-1',
                     headers => '{"trace": "abc"}');
SELECT queue.publish('t10_orders', '{"order": 2}');
SELECT * FROM queue.publish_many('t10_orders', '[
  {"payload": {"order": 3}, "key": "o-1"},
  {"payload": {"order": 4}, "key": "o-2", "headers": {"trace": "def"}},
  {"payload": {"order": 5}, "key": "o-1", "headers": null}]');
SELECT queue.publish('t10_keep', '{"k": 1}', key => 'g');
SELECT queue.publish('t10_keep', '{"k": 2}', key => 'g');
SELECT queue.publish('t10_none', '{"n": 1}');
-- pending: each event lists the subscriptions its publisher saw
SELECT id, topic, key, state, payload, headers, subscriptions,
       published_at <= now() AS published, finished_at, error
  FROM queue.events WHERE topic LIKE 't10%' ORDER BY id;
SELECT id, topic, state FROM queue.get_event(1002);
SELECT count(*) AS rows FROM queue.get_event(999999);
SELECT count(*) AS rows FROM queue.get_event(NULL);
-- topic_stats: per topic and subscription, what waits for the relay
SELECT topic, subscription, pending, oldest_pending_age IS NOT NULL AS has_lag,
       relayed_last_minute, dead
  FROM queue.topic_stats WHERE topic LIKE 't10%' ORDER BY topic, subscription;

-- The relay takes batch_size events (in id order) at a time.
SELECT queue.relay(0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.relay(-1);
SELECT queue.relay(2);
SELECT id, state FROM queue.events WHERE topic LIKE 't10%' ORDER BY id;
SELECT queue.relay();
SELECT queue.relay();

-- Each subscribed queue got one job per event, in id order: payload, the
-- event's headers plus "event", the key as group key.
SELECT queue, state, payload, headers - 'event' AS own_headers,
       (headers -> 'event') - 'published_at' AS event,
       headers #>> '{event,published_at}' IS NOT NULL AS has_published_at,
       group_key, dedup_key, priority, attempts, max_attempts
  FROM queue.jobs WHERE queue IN ('q10_a', 'q10_b') ORDER BY queue, id;
-- published_at in the headers is the event's
SELECT bool_and((j.headers #>> '{event,published_at}')::timestamptz = e.published_at)
         AS same_published_at
  FROM queue.jobs j JOIN queue.events e ON e.id = (j.headers #>> '{event,id}')::bigint
 WHERE j.queue IN ('q10_a', 'q10_b', 'q10_ordered');
-- In the ordered queue, the second event of key g waits behind the first.
SELECT id, state, payload, group_key FROM queue.jobs WHERE queue = 'q10_ordered' ORDER BY id;
SELECT queue, group_key, head_job_id, head_state, reason, blocked_jobs,
       oldest_blocked_at IS NOT NULL AS has_oldest
  FROM queue.blocked_groups WHERE queue LIKE 'q10%';
-- Relayed events are archived (for their topic's retention); a topic with
-- retention 0 keeps nothing, though its subscribers got their jobs.
SELECT id, topic, key, state, subscriptions, finished_at IS NOT NULL AS finished, error
  FROM queue.events WHERE topic LIKE 't10%' ORDER BY id;
SELECT id, topic, state, payload FROM queue.get_event(1002);
SELECT count(*) AS rows FROM queue.get_event(1008);
SELECT count(*) AS jobs_from_t10_none FROM queue.jobs
 WHERE queue = 'q10_a' AND headers #>> '{event,topic}' = 't10_none';
SELECT topic, subscription, pending, oldest_pending_age, relayed_last_minute, dead
  FROM queue.topic_stats WHERE topic LIKE 't10%' ORDER BY topic, subscription;

--
-- Which subscriptions get an event: those its publisher could see.  A
-- subscription made after the event was published does not get it; one
-- removed before the relay gets to it is skipped.
--
SELECT queue.create_topic('t10_vis');
SELECT queue.create_queue('q10_early') > 0 AS created;
SELECT queue.create_queue('q10_late') > 0 AS created;
SELECT queue.create_queue('q10_gone') > 0 AS created;
SELECT queue.create_queue('q10_dropped') > 0 AS created;
SELECT queue.subscribe('t10_vis', queue => 'q10_early');
SELECT queue.subscribe('t10_vis', queue => 'q10_gone');
SELECT queue.subscribe('t10_vis', queue => 'q10_dropped');
SELECT queue.publish('t10_vis', '{"v": "before"}');
SELECT queue.subscribe('t10_vis', queue => 'q10_late');
SELECT queue.unsubscribe('t10_vis', queue => 'q10_gone');
-- a queue dropped (with force, taking its subscription) is skipped too
SELECT queue.drop_queue('q10_dropped');
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.drop_queue('q10_dropped', force => true);
SELECT queue.publish('t10_vis', '{"v": "after"}');
SELECT id, subscriptions FROM queue.events WHERE topic = 't10_vis' ORDER BY id;
SELECT queue.relay();
SELECT queue, payload FROM queue.jobs
 WHERE queue IN ('q10_early', 'q10_late', 'q10_gone') ORDER BY queue, id;
SELECT id, state, error FROM queue.events WHERE topic = 't10_vis' ORDER BY id;
-- A subscription made inside the publishing transaction counts.
BEGIN;
SELECT queue.create_queue('q10_same_xact') > 0 AS created;
SELECT queue.subscribe('t10_vis', queue => 'q10_same_xact');
SELECT queue.publish('t10_vis', '{"v": "same transaction"}');
COMMIT;
SELECT queue.relay();
SELECT queue, payload FROM queue.jobs
 WHERE queue IN ('q10_early', 'q10_late', 'q10_same_xact') AND payload->>'v' = 'same transaction'
 ORDER BY queue;

--
-- A channel subscription: the relay notifies (content: see the isolation
-- spec outbox-notify) and archives the event like any other.
--
SELECT queue.create_topic('t10_chan');
SELECT queue.subscribe('t10_chan', channel => 't10_chan_only');
SELECT queue.publish('t10_chan', '{"c": 1}', key => 'c-1');
SELECT queue.relay();
SELECT id, state, subscriptions FROM queue.events WHERE topic = 't10_chan';

--
-- Poison events.  Nothing an event can carry makes delivery fail, so a
-- trigger on queue.job refuses one payload: the batch fails, is retried
-- event by event, and the event that still fails becomes 'dead' with the
-- error while the others are relayed.
--
SELECT queue.create_topic('t10_poison');
SELECT queue.create_queue('q10_poison') > 0 AS created;
SELECT queue.subscribe('t10_poison', queue => 'q10_poison');
CREATE FUNCTION pg_temp.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.payload ? 'poison' THEN
		RAISE EXCEPTION 'poison payload refused';
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER t10_refuse_poison BEFORE INSERT ON queue.job
	FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_poison();
SELECT * FROM queue.publish_many('t10_poison', '[
  {"payload": {"p": 1}, "key": "a"},
  {"payload": {"p": 2, "poison": true}, "key": "a"},
  {"payload": {"p": 3}, "key": "b"}]');
SELECT queue.relay();
SELECT id, key, state, payload, error, finished_at IS NOT NULL AS finished
  FROM queue.events WHERE topic = 't10_poison' ORDER BY id;
SELECT payload FROM queue.jobs WHERE queue = 'q10_poison' ORDER BY id;
SELECT topic, subscription, pending, relayed_last_minute, dead
  FROM queue.topic_stats WHERE topic = 't10_poison';
-- While the trigger stays, a retried dead event dies again.
SELECT queue.retry_dead_events('t10_poison');
SELECT id, state FROM queue.events WHERE topic = 't10_poison' ORDER BY id;
SELECT queue.relay();
SELECT id, state, error FROM queue.events WHERE topic = 't10_poison' ORDER BY id;
-- Once the cause is gone, retried, it is relayed.
DROP TRIGGER t10_refuse_poison ON queue.job;
SELECT queue.retry_dead_events('t10_poison', ARRAY[999999]::bigint[]);
SELECT queue.retry_dead_events('t10_nope');
\echo sqlstate: :LAST_ERROR_SQLSTATE
-- only dead events of the topic are retried (1014 was relayed)
SELECT queue.retry_dead_events('t10_poison', ARRAY[1014, 1015]::bigint[]);
SELECT queue.relay();
SELECT id, state, error FROM queue.events WHERE topic = 't10_poison' ORDER BY id;
SELECT payload FROM queue.jobs WHERE queue = 'q10_poison' ORDER BY id;
SELECT queue.retry_dead_events('t10_poison');

--
-- prune_events: relayed events past their topic's retention go; dead and
-- pending events stay.
--
SELECT queue.prune_events(0);
\echo sqlstate: :LAST_ERROR_SQLSTATE
SELECT queue.prune_events(NULL);
SELECT queue.create_topic('t10_short', retention => '10 milliseconds');
SELECT count(*) FROM queue.publish_many('t10_short', '[{"payload": {"s": 1}}, {"payload": {"s": 2}}, {"payload": {"s": 3}}]');
SELECT queue.relay();
SELECT queue.publish('t10_short', '{"s": 4}');
SELECT pg_sleep(0.05);
SELECT queue.prune_events(batch_size => 2);
SELECT state, count(*) FROM queue.events WHERE topic = 't10_short' GROUP BY state ORDER BY state;
SELECT queue.prune_events();
SELECT state, count(*) FROM queue.events WHERE topic = 't10_short' GROUP BY state ORDER BY state;
-- a topic with a longer retention keeps its relayed events
SELECT count(*) AS kept FROM queue.events WHERE topic = 't10_orders' AND state = 'relayed';
SELECT queue.relay();

--
-- drop_topic with force: the subscriptions and every event go; the jobs
-- already made stay in their queues.
--
SELECT queue.publish('t10_orders', '{"order": 6}');
SELECT queue.drop_topic('t10_orders', force => true);
SELECT count(*) AS events FROM queue.events WHERE topic = 't10_orders';
SELECT count(*) AS subscriptions FROM queue.subscription s
 WHERE NOT EXISTS (SELECT 1 FROM queue.topic t WHERE t.id = s.topic_id);
SELECT count(*) AS events_left FROM queue.event e
 WHERE NOT EXISTS (SELECT 1 FROM queue.topic t WHERE t.id = e.topic_id);
SELECT count(*) AS jobs_kept FROM queue.jobs WHERE queue IN ('q10_a', 'q10_b');
SELECT name FROM queue.list_topics() WHERE name LIKE 't10%';
SELECT queue.relay();
