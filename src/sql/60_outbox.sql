/*-------------------------------------------------------------------------
 *
 * 60_outbox.sql
 *	  Part of the install script of the queue extension: the transactional
 *	  outbox.  The Makefile concatenates the files in src/sql, in name
 *	  order, into queue--VERSION.sql.
 *
 * A service publishes an event in the same transaction as its business
 * writes; if that transaction rolls back, the event never existed.  The
 * relay (queue.relay(), run by the background worker of the database)
 * moves committed events to their topic's subscribers: each subscribed
 * queue gets a job per event, written in the relay's own transaction
 * together with the removal of the event from the outbox, so delivery to
 * queues is exactly once; each subscribed NOTIFY channel gets a
 * notification (best effort).
 *
 * Order: publishers of the same (topic, key) are serialized by a lock on
 * the key taken before the event's id is drawn (src/outbox.c), so within a
 * key, id order is commit order.  The relay reads the outbox, which holds
 * only events not yet relayed, in id order: no high-water mark, so an
 * event whose transaction commits late is simply relayed later, and never
 * skipped.  Jobs made from an event carry its key as their group key; in
 * an ordered queue that keeps the key's order up to the workers.
 *
 * Subscriptions: an event goes to the subscriptions of its topic that the
 * publishing transaction could see when it published (their ids are
 * stored with the event); a subscription removed before the relay gets to
 * the event is skipped.
 *
 * IDENTIFICATION
 *	  src/sql/60_outbox.sql
 *
 *-------------------------------------------------------------------------
 */

/* ---------------------------------------------------------------------
 * Tables
 * ---------------------------------------------------------------------
 */

CREATE SEQUENCE queue.topic_id_seq AS integer;

CREATE TABLE queue.topic (
	id			integer PRIMARY KEY DEFAULT nextval('queue.topic_id_seq'),
	name		text NOT NULL UNIQUE,
	retention	interval NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT topic_retention_check CHECK (retention >= interval '0')
);
ALTER SEQUENCE queue.topic_id_seq OWNED BY queue.topic.id;

COMMENT ON TABLE queue.topic IS 'topics events are published to';

CREATE SEQUENCE queue.subscription_id_seq AS integer;

-- A subscription delivers to a queue, or to a NOTIFY channel.
CREATE TABLE queue.subscription (
	id			integer PRIMARY KEY DEFAULT nextval('queue.subscription_id_seq'),
	topic_id	integer NOT NULL,
	queue_id	integer,
	channel		text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT subscription_target_check CHECK ((queue_id IS NULL) <> (channel IS NULL)),
	CONSTRAINT subscription_queue_key UNIQUE (topic_id, queue_id),
	CONSTRAINT subscription_channel_key UNIQUE (topic_id, channel)
);
ALTER SEQUENCE queue.subscription_id_seq OWNED BY queue.subscription.id;
CREATE INDEX subscription_queue_idx ON queue.subscription (queue_id)
	WHERE queue_id IS NOT NULL;

COMMENT ON TABLE queue.subscription IS 'who receives a topic''s events: queues and NOTIFY channels';

CREATE SEQUENCE queue.event_id_seq;

-- The outbox: committed events not yet relayed (and, invisibly, events of
-- transactions still in progress).
CREATE TABLE queue.event (
	id				bigint PRIMARY KEY,
	topic_id		integer NOT NULL,
	key				text,
	payload			jsonb NOT NULL,
	headers			jsonb,
	subscriptions	integer[] NOT NULL,
	published_at	timestamptz NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01,
		autovacuum_vacuum_threshold = 1000,
		autovacuum_vacuum_insert_scale_factor = 0.01);
ALTER SEQUENCE queue.event_id_seq OWNED BY queue.event.id;

COMMENT ON TABLE queue.event IS 'the outbox: published events waiting for the relay';

-- Relayed events (kept for their topic's retention) and dead events (that
-- could not be delivered, kept until retried or deleted with the topic).
CREATE TABLE queue.event_archive (
	id				bigint PRIMARY KEY,
	topic_id		integer NOT NULL,
	key				text,
	payload			jsonb NOT NULL,
	headers			jsonb,
	subscriptions	integer[] NOT NULL,
	published_at	timestamptz NOT NULL,
	state			text NOT NULL,
	error			text,
	finished_at		timestamptz NOT NULL,
	CONSTRAINT event_archive_state_check CHECK (state IN ('relayed', 'dead'))
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05);

COMMENT ON TABLE queue.event_archive IS 'relayed events (for their retention) and dead events';

CREATE INDEX event_archive_topic_idx ON queue.event_archive (topic_id, state, finished_at);

SELECT pg_catalog.pg_extension_config_dump('queue.topic', '');
SELECT pg_catalog.pg_extension_config_dump('queue.topic_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('queue.subscription_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.event', '');
SELECT pg_catalog.pg_extension_config_dump('queue.event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('queue.event_archive', '');

/* ---------------------------------------------------------------------
 * Publishing and relaying, in C (src/outbox.c)
 * ---------------------------------------------------------------------
 */

CREATE FUNCTION queue.publish(topic text, payload jsonb, key text DEFAULT NULL,
							  headers jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'queue_publish'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION queue.publish_many(topic text, events jsonb)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'queue_publish_many'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Relays up to batch_size committed events (default queue.relay_batch_size)
-- in one transaction with the jobs it creates; returns how many events it
-- took out of the outbox (relayed or dead).
CREATE FUNCTION queue.relay(batch_size integer DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'queue_relay'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- drop_topic's side of the topic name lock.
CREATE FUNCTION queue._lock_topic_name(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'queue_lock_topic_name'
LANGUAGE C VOLATILE STRICT;

/* ---------------------------------------------------------------------
 * Topics and subscriptions
 * ---------------------------------------------------------------------
 */

-- Looks a topic up by name, raising the documented error when unknown.
CREATE FUNCTION queue._topic_id(topic_name text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer;
BEGIN
	IF topic_name IS NULL THEN
		RAISE EXCEPTION 'topic name must not be null' USING ERRCODE = '22004';
	END IF;
	SELECT t.id INTO tid FROM queue.topic t WHERE t.name = topic_name;
	IF tid IS NULL THEN
		RAISE EXCEPTION 'topic "%" does not exist', topic_name
			USING ERRCODE = '42704',
				  HINT = 'Create it with queue.create_topic().';
	END IF;
	RETURN tid;
END;
$$;

CREATE FUNCTION queue.create_topic(name text, retention interval DEFAULT '1 day',
								   if_not_exists boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer;
BEGIN
	PERFORM queue._check_name(name, 'topic');
	IF retention IS NULL OR if_not_exists IS NULL THEN
		RAISE EXCEPTION 'topic settings must not be null' USING ERRCODE = '22004';
	END IF;
	IF retention < interval '0' THEN
		RAISE EXCEPTION 'retention must not be negative, not %', retention
			USING ERRCODE = '22023';
	END IF;
	IF retention > interval '100 years' THEN
		RAISE EXCEPTION 'retention must be at most 100 years' USING ERRCODE = '22023';
	END IF;
	INSERT INTO queue.topic AS t (name, retention)
	VALUES (create_topic.name, create_topic.retention)
	ON CONFLICT ON CONSTRAINT topic_name_key DO NOTHING
	RETURNING t.id INTO tid;
	IF tid IS NULL THEN
		IF if_not_exists THEN
			RETURN queue._topic_id(name);
		END IF;
		RAISE EXCEPTION 'topic "%" already exists', name USING ERRCODE = '42710';
	END IF;
	RETURN tid;
END;
$$;

-- Drops a topic with its events (pending, relayed and dead).  Refuses while
-- it has subscriptions unless force is true (which removes them too).
CREATE FUNCTION queue.drop_topic(name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer;
	subs bigint;
BEGIN
	PERFORM queue._lock_topic_name(name);
	tid := queue._topic_id(name);
	PERFORM 1 FROM queue.topic t WHERE t.id = tid FOR UPDATE;
	SELECT count(*) INTO subs FROM queue.subscription s WHERE s.topic_id = tid;
	IF subs > 0 AND NOT coalesce(force, false) THEN
		RAISE EXCEPTION 'topic "%" has % subscription(s)', name, subs
			USING ERRCODE = '55006',
				  HINT = 'Unsubscribe first, or pass force => true.';
	END IF;
	DELETE FROM queue.subscription s WHERE s.topic_id = tid;
	DELETE FROM queue.event e WHERE e.topic_id = tid;
	DELETE FROM queue.event_archive a WHERE a.topic_id = tid;
	DELETE FROM queue.topic t WHERE t.id = tid;
END;
$$;

CREATE FUNCTION queue.list_topics()
RETURNS TABLE (name text, retention interval, subscriptions bigint, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT t.name, t.retention,
		   (SELECT count(*) FROM queue.subscription s WHERE s.topic_id = t.id),
		   t.created_at
	  FROM queue.topic t ORDER BY t.name;
END;

-- Checks a subscription's target: exactly one of a queue and a channel.
CREATE FUNCTION queue._check_target(queue_name text, channel text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF (queue_name IS NULL) = (channel IS NULL) THEN
		RAISE EXCEPTION 'give exactly one of queue and channel'
			USING ERRCODE = '22023';
	END IF;
	IF channel IS NOT NULL THEN
		PERFORM queue._check_name(channel, 'channel');
		IF octet_length(channel) > 63 THEN
			RAISE EXCEPTION 'channel name is too long'
				USING ERRCODE = '42622',
					  DETAIL = format('The name has %s bytes; NOTIFY takes at most 63.',
									  octet_length(channel));
		END IF;
	END IF;
END;
$$;

/*
 * Subscribes a queue (each event becomes a job in it) or a NOTIFY channel
 * (each event becomes a notification carrying its id, topic and key) to a
 * topic; returns the subscription's id.  The subscription receives the
 * events published by transactions that can see it: those that publish
 * after it committed (see the header).
 */
CREATE FUNCTION queue.subscribe(topic text, queue text DEFAULT NULL, channel text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer := queue._topic_id(topic);
	qid integer;
	sid integer;
BEGIN
	PERFORM queue._check_target(queue, channel);
	IF queue IS NOT NULL THEN
		qid := queue._queue_id(queue);
	END IF;
	INSERT INTO queue.subscription AS s (topic_id, queue_id, channel)
	VALUES (tid, qid, subscribe.channel)
	ON CONFLICT DO NOTHING
	RETURNING s.id INTO sid;
	IF sid IS NULL THEN
		RAISE EXCEPTION 'topic "%" already delivers to %', topic,
						coalesce('queue "' || queue || '"', 'channel "' || channel || '"')
			USING ERRCODE = '42710';
	END IF;
	RETURN sid;
END;
$$;

-- Removes a subscription.  Events already published keep their list of
-- subscriptions, but the relay skips one that no longer exists.
CREATE FUNCTION queue.unsubscribe(topic text, queue text DEFAULT NULL, channel text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer := queue._topic_id(topic);
BEGIN
	PERFORM queue._check_target(queue, channel);
	DELETE FROM queue.subscription s
	 WHERE s.topic_id = tid
	   AND (s.queue_id = (SELECT q.id FROM queue.queue q WHERE q.name = unsubscribe.queue)
			OR s.channel = unsubscribe.channel);
	IF NOT FOUND THEN
		RAISE EXCEPTION 'topic "%" does not deliver to %', topic,
						coalesce('queue "' || queue || '"', 'channel "' || channel || '"')
			USING ERRCODE = '42704';
	END IF;
END;
$$;

CREATE FUNCTION queue.list_subscriptions(topic text DEFAULT NULL)
RETURNS TABLE (id integer, topic text, queue text, channel text, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT s.id, t.name, q.name, s.channel, s.created_at
	  FROM queue.subscription s
	  JOIN queue.topic t ON t.id = s.topic_id
	  LEFT JOIN queue.queue q ON q.id = s.queue_id
	 WHERE list_subscriptions.topic IS NULL OR t.name = list_subscriptions.topic
	 ORDER BY t.name, s.id;
END;

/* ---------------------------------------------------------------------
 * Events
 * ---------------------------------------------------------------------
 */

-- Every event, pending, relayed or dead.
CREATE VIEW queue.events AS
SELECT e.id, t.name AS topic, e.key, 'pending'::text AS state, e.payload, e.headers,
	   e.subscriptions, e.published_at, NULL::timestamptz AS finished_at, NULL::text AS error
  FROM queue.event e JOIN queue.topic t ON t.id = e.topic_id
UNION ALL
SELECT a.id, t.name, a.key, a.state, a.payload, a.headers, a.subscriptions,
	   a.published_at, a.finished_at, a.error
  FROM queue.event_archive a JOIN queue.topic t ON t.id = a.topic_id;

COMMENT ON VIEW queue.events IS 'every event: pending, relayed (until its retention ends) or dead';

-- One event by id; no row when there is none (never published, rolled
-- back, or pruned after its topic's retention).
CREATE FUNCTION queue.get_event(event_id bigint)
RETURNS SETOF queue.events
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT * FROM queue.events e WHERE e.id = get_event.event_id;
END;

-- Puts a topic's dead events back into the outbox (all, or the given
-- ids); returns how many.  The later events of their keys were relayed
-- meanwhile, so a retried event arrives after them: a dead event gives up
-- its key's order.
CREATE FUNCTION queue.retry_dead_events(topic text, event_ids bigint[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tid integer := queue._topic_id(topic);
	n bigint;
BEGIN
	WITH d AS (
		DELETE FROM queue.event_archive a
		 WHERE a.topic_id = tid AND a.state = 'dead'
		   AND (event_ids IS NULL OR a.id = ANY (event_ids))
		RETURNING a.*
	)
	INSERT INTO queue.event (id, topic_id, key, payload, headers, subscriptions, published_at)
	SELECT d.id, d.topic_id, d.key, d.payload, d.headers, d.subscriptions, d.published_at
	  FROM d;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;

-- Deletes relayed events past their topic's retention, at most batch_size
-- per topic; returns how many.  The background worker calls it.
CREATE FUNCTION queue.prune_events(batch_size integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	n bigint;
	total bigint := 0;
BEGIN
	PERFORM queue._check_batch_size(batch_size);
	FOR t IN SELECT * FROM queue.topic ORDER BY id LOOP
		-- MATERIALIZED: evaluated once, so never more than batch_size
		WITH victim AS MATERIALIZED (
			SELECT b.id FROM queue.event_archive b
			 WHERE b.topic_id = t.id AND b.state = 'relayed'
			   AND b.finished_at < clock_timestamp() - t.retention
			 ORDER BY b.finished_at
			 LIMIT batch_size
			 FOR UPDATE SKIP LOCKED)
		DELETE FROM queue.event_archive a USING victim v WHERE a.id = v.id;
		GET DIAGNOSTICS n = ROW_COUNT;
		total := total + n;
	END LOOP;
	RETURN total;
END;
$$;

/* ---------------------------------------------------------------------
 * Monitoring
 * ---------------------------------------------------------------------
 */

/*
 * Per topic and subscription: events waiting for the relay, the age of the
 * oldest (the relay's lag), events relayed in the last minute (counted
 * from the archive, so a topic with retention under a minute shows fewer),
 * and dead events.  A topic without subscriptions has one row with
 * subscription NULL.
 */
CREATE VIEW queue.topic_stats AS
SELECT t.name AS topic,
	   CASE WHEN s.queue_id IS NOT NULL THEN 'queue:' || q.name
			WHEN s.channel IS NOT NULL THEN 'channel:' || s.channel END AS subscription,
	   (SELECT count(*) FROM queue.event e
		 WHERE e.topic_id = t.id
		   AND (s.id IS NULL OR s.id = ANY (e.subscriptions))) AS pending,
	   (SELECT pg_catalog.clock_timestamp() - min(e.published_at) FROM queue.event e
		 WHERE e.topic_id = t.id
		   AND (s.id IS NULL OR s.id = ANY (e.subscriptions))) AS oldest_pending_age,
	   (SELECT count(*) FROM queue.event_archive a
		 WHERE a.topic_id = t.id AND a.state = 'relayed'
		   AND a.finished_at > pg_catalog.clock_timestamp() - interval '1 minute'
		   AND (s.id IS NULL OR s.id = ANY (a.subscriptions))) AS relayed_last_minute,
	   (SELECT count(*) FROM queue.event_archive a
		 WHERE a.topic_id = t.id AND a.state = 'dead'
		   AND (s.id IS NULL OR s.id = ANY (a.subscriptions))) AS dead
  FROM queue.topic t
  LEFT JOIN queue.subscription s ON s.topic_id = t.id
  LEFT JOIN queue.queue q ON q.id = s.queue_id;

COMMENT ON VIEW queue.topic_stats IS 'per topic and subscription: pending events, relay lag, relayed in the last minute, dead events';

/*
 * The blocked groups of ordered queues: for each group with jobs waiting
 * behind its head, the head and why it holds the group.
 */
CREATE VIEW queue.blocked_groups AS
SELECT q.name AS queue, h.group_key, h.id AS head_job_id,
	   CASE WHEN h.state = 'running' THEN 'running'
			WHEN h.run_at <= pg_catalog.clock_timestamp() THEN 'ready'
			WHEN h.attempts > 0 THEN 'retrying'
			ELSE 'scheduled' END AS head_state,
	   CASE WHEN h.state = 'running' THEN 'head job is running'
			WHEN h.run_at <= pg_catalog.clock_timestamp() THEN 'head job is ready, waiting for a worker'
			WHEN h.attempts > 0 THEN 'head job is waiting to retry'
			ELSE 'head job is scheduled for later' END AS reason,
	   b.blocked_jobs, b.oldest_blocked_at
  FROM queue.job h
  JOIN queue.queue q ON q.id = h.queue_id AND q.ordered
  JOIN LATERAL (
	SELECT count(*) AS blocked_jobs, min(x.created_at) AS oldest_blocked_at
	  FROM queue.job x
	 WHERE x.queue_id = h.queue_id AND x.group_key = h.group_key AND x.state = 'blocked'
  ) b ON b.blocked_jobs > 0
 WHERE h.group_key IS NOT NULL AND h.state <> 'blocked';

COMMENT ON VIEW queue.blocked_groups IS 'groups of ordered queues whose jobs wait behind their head, and why';
