/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  The transactional outbox: publish, publish_many and the relay.
 *
 * Publishing inserts events into queue.event in the caller's transaction.
 * Publishers of one (topic, key) take that key's lock (locks.c) before they
 * draw their event ids and hold it to commit, so the ids of one key are in
 * commit order.  Each event records the topic's subscriptions as the
 * publishing transaction sees them.  A commit that published wakes the
 * database's background worker (wake.c), which runs the relay.
 *
 * The relay (queue.relay) takes the database's relay lock, reads the
 * oldest committed events of the outbox in id order, and in its own
 * transaction: enqueues one job per event into each subscribed queue
 * (through queue_enqueue_specs, so ordered queues keep each key's order),
 * sends one NOTIFY per event to each subscribed channel, and moves the
 * events to queue.event_archive (or deletes them, for a topic with zero
 * retention).  Jobs and removal commit together: a crash before the
 * commit relays the batch again, one after it never does, so each queue
 * gets each event exactly once.
 *
 * There is no high-water mark: the outbox holds only what is not yet
 * relayed, and an event of a transaction still in progress is invisible
 * now and relayed by a later pass.  Within a key, an event is visible only
 * after every earlier event of the key is (their transactions committed
 * first), and a batch is taken in id order, so a key's events reach each
 * queue in commit order.
 *
 * Poison events: the batch is delivered inside a subtransaction; if that
 * fails, each event is retried alone in its own subtransaction, and one
 * that still fails is moved to the archive as 'dead' with the error, so
 * the rest flow on.  (queue.retry_dead_events puts dead events back, after
 * the later events of their key: a dead event gives up its key's order.)
 * A transient error (a lock timeout, a deadlock, a cancel...: is_transient)
 * kills nothing: it ends the relay's transaction, and the events wait in
 * the outbox for the next pass.
 *
 * IDENTIFICATION
 *	  src/outbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "queue.h"

PG_FUNCTION_INFO_V1(queue_publish);
PG_FUNCTION_INFO_V1(queue_publish_many);
PG_FUNCTION_INFO_V1(queue_relay);

/* Longest event key, in bytes. */
#define EVENT_KEY_MAXLEN	512

/* One event to publish. */
typedef struct EventSpec
{
	char	   *key;			/* NULL: no key, no order */
	Jsonb	   *payload;
	Jsonb	   *headers;		/* NULL if none */
	int64		id;				/* drawn by publish_events */
} EventSpec;

/* One event being relayed, copied out of SPI. */
typedef struct RelayEvent
{
	int64		id;
	char	   *key;
	Jsonb	   *payload;
	Jsonb	   *job_headers;	/* the event's headers plus "event" */
	char	   *notification;	/* NOTIFY payload */
	int32	   *subscriptions;
	int			nsubscriptions;
} RelayEvent;

/*
 * fill_event
 *		Validates one event's fields into *ev.
 */
static void
fill_event(EventSpec *ev, Jsonb *payload, char *key, Jsonb *headers)
{
	if (payload == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payload must not be null"),
				 errhint("Use an empty object {} for an event without data.")));
	queue_check_document(payload, "payload");
	if (headers != NULL)
		queue_check_document(headers, "headers");
	if (key != NULL && (strlen(key) == 0 || strlen(key) > EVENT_KEY_MAXLEN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key must have 1 to %d bytes", EVENT_KEY_MAXLEN)));
	ev->payload = payload;
	ev->key = key;
	ev->headers = headers;
}

/*
 * publish_events
 *		Inserts n validated events into the named topic's outbox.
 */
static void
publish_events(const char *topic, EventSpec *events, int n)
{
	static SPIPlanPtr lookup_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	static const Oid lookup_types[1] = {TEXTOID};
	static const Oid insert_types[7] = {INT4OID, INT4ARRAYOID, TIMESTAMPTZOID,
	INT8ARRAYOID, TEXTARRAYOID, JSONBARRAYOID, JSONBARRAYOID};
	Datum		values[7];
	Datum	   *ids,
			   *keys,
			   *payloads,
			   *headers;
	bool	   *keys_null,
			   *headers_null;
	char	  **lock_keys;
	int			nlock = 0;
	int32		topic_id;
	Datum		subscriptions;
	bool		isnull;
	Oid			seq;
	int			rc;

	if (n > queue_max_batch_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("batch of %d events is too large", n),
				 errdetail("queue.max_batch_size is %d.", queue_max_batch_size)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* Lock before the lookup, as enqueue does (locks.c). */
	queue_lock_name(QUEUE_LOCK_TOPIC_NAME, topic, ShareLock);
	values[0] = CStringGetTextDatum(topic);
	rc = SPI_execute_plan(queue_plan(&lookup_plan,
									 "SELECT t.id, coalesce(array_agg(s.id ORDER BY s.id)"
									 "                      FILTER (WHERE s.id IS NOT NULL), '{}')"
									 "  FROM queue.topic t"
									 "  LEFT JOIN queue.subscription s ON s.topic_id = t.id"
									 " WHERE t.name = $1 GROUP BY t.id",
									 1, lookup_types),
						  values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "topic lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("topic \"%s\" does not exist", topic),
				 errhint("Create it with queue.create_topic().")));
	topic_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	subscriptions = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2, &isnull),
									  false, -1);
	if (n == 0)
	{
		SPI_finish();
		return;
	}

	/* The keys' locks first, then the ids: see the file header. */
	lock_keys = palloc(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
		if (events[i].key != NULL)
			lock_keys[nlock++] = events[i].key;
	queue_lock_keys(QUEUE_LOCK_EVENT_KEY, (uint32) topic_id, lock_keys, nlock);

	seq = get_relname_relid("event_id_seq", get_namespace_oid("queue", false));
	if (!OidIsValid(seq))
		elog(ERROR, "sequence queue.event_id_seq is missing");

	ids = palloc(sizeof(Datum) * n);
	keys = palloc(sizeof(Datum) * n);
	payloads = palloc(sizeof(Datum) * n);
	headers = palloc(sizeof(Datum) * n);
	keys_null = palloc(sizeof(bool) * n);
	headers_null = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		events[i].id = nextval_internal(seq, false);
		ids[i] = Int64GetDatum(events[i].id);
		keys[i] = events[i].key ? CStringGetTextDatum(events[i].key) : (Datum) 0;
		keys_null[i] = (events[i].key == NULL);
		payloads[i] = PointerGetDatum(events[i].payload);
		headers[i] = PointerGetDatum(events[i].headers);
		headers_null[i] = (events[i].headers == NULL);
	}

	values[0] = Int32GetDatum(topic_id);
	values[1] = subscriptions;
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[3] = queue_build_array(ids, NULL, n, INT8OID);
	values[4] = queue_build_array(keys, keys_null, n, TEXTOID);
	values[5] = queue_build_array(payloads, NULL, n, JSONBOID);
	values[6] = queue_build_array(headers, headers_null, n, JSONBOID);
	rc = SPI_execute_plan(queue_plan(&insert_plan,
									 "INSERT INTO queue.event (id, topic_id, key, payload, headers,"
									 "  subscriptions, published_at)"
									 " SELECT u.id, $1, u.key, u.payload, u.headers, $2, $3"
									 "   FROM unnest($4, $5, $6, $7) AS u(id, key, payload, headers)",
									 7, insert_types),
						  values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "publish failed: %s", SPI_result_code_string(rc));

	queue_note_relay_wake();
	SPI_finish();
}

/*
 * queue.publish(topic, payload, key, headers) returns the event's id
 */
Datum
queue_publish(PG_FUNCTION_ARGS)
{
	EventSpec	ev;

	QUEUE_ARG_NOT_NULL(0, "topic name");
	fill_event(&ev,
			   PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1),
			   PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
			   PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3));
	publish_events(text_to_cstring(PG_GETARG_TEXT_PP(0)), &ev, 1);
	PG_RETURN_INT64(ev.id);
}

/* The keys of a publish_many element, and their positions in event_keys. */
#define EVENT_KEY_PAYLOAD	0
#define EVENT_KEY_KEY		1
#define EVENT_KEY_HEADERS	2
static const char *const event_keys[] = {"payload", "key", "headers"};

/*
 * queue.publish_many(topic, events jsonb) returns setof bigint
 *
 * events is a JSON array of {"payload": {...}, "key": "...", "headers":
 * {...}}; returns the events' ids in the array's order.
 */
Datum
queue_publish_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *arr;
	EventSpec  *events;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n;
	int			k = 0;
	QueueBatchContext ctx;

	QUEUE_ARG_NOT_NULL(0, "topic name");
	QUEUE_ARG_NOT_NULL(1, "events");
	arr = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(arr) || JB_ROOT_IS_SCALAR(arr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array of event objects")));
	n = JB_ROOT_COUNT(arr);
	if (n > queue_max_batch_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("batch of %d events is too large", n),
				 errdetail("queue.max_batch_size is %d.", queue_max_batch_size)));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	events = palloc0(sizeof(EventSpec) * Max(n, 1));

	queue_batch_context_push(&ctx, "event");

	it = JsonbIteratorInit(&arr->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		Jsonb	   *payload = NULL;
		Jsonb	   *headers = NULL;
		char	   *key = NULL;
		JsonbIterator *eit;
		JsonbValue	ev;
		JsonbIteratorToken etok;
		int			keyno = 0;

		if (tok != WJB_ELEM)
			continue;
		ctx.index = k;
		if (v.type != jbvBinary || !(v.val.binary.data->header & JB_FOBJECT))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each event must be a JSON object"),
					 errhint("Give {\"payload\": {...}} and optional key and headers.")));
		eit = JsonbIteratorInit(v.val.binary.data);
		while ((etok = JsonbIteratorNext(&eit, &ev, true)) != WJB_DONE)
		{
			if (etok == WJB_KEY)
			{
				char	   *name = pnstrdup(ev.val.string.val, ev.val.string.len);

				keyno = queue_batch_key("event", name, event_keys, lengthof(event_keys));
				continue;
			}
			if (etok != WJB_VALUE || ev.type == jbvNull)
				continue;		/* a JSON null means "not given" */
			if (keyno == EVENT_KEY_KEY)
			{
				if (ev.type != jbvString)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("key must be a JSON string")));
				key = pnstrdup(ev.val.string.val, ev.val.string.len);
			}
			else
			{
				if (ev.type != jbvBinary)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s must be a JSON object", event_keys[keyno])));
				if (keyno == EVENT_KEY_PAYLOAD)
					payload = JsonbValueToJsonb(&ev);
				else
				{
					Assert(keyno == EVENT_KEY_HEADERS);
					headers = JsonbValueToJsonb(&ev);
				}
			}
		}
		fill_event(&events[k], payload, key, headers);
		k++;
	}
	queue_batch_context_pop(&ctx);

	publish_events(text_to_cstring(PG_GETARG_TEXT_PP(0)), events, n);

	for (k = 0; k < n; k++)
	{
		Datum		value = Int64GetDatum(events[k].id);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}

/*
 * has_subscription
 *		Whether the event goes to the given subscription.
 */
static bool
has_subscription(const RelayEvent *ev, int32 sub)
{
	for (int i = 0; i < ev->nsubscriptions; i++)
		if (ev->subscriptions[i] == sub)
			return true;
	return false;
}

/*
 * deliver
 *		Delivers events (in id order) to their subscriptions and moves them
 *		to the archive.  Raises on any failure; the caller runs it in a
 *		subtransaction.
 */
static void
deliver(RelayEvent *events, int n, TimestampTz now)
{
	static SPIPlanPtr subs_plan = NULL;
	static SPIPlanPtr notify_plan = NULL;
	static SPIPlanPtr archive_plan = NULL;
	static const Oid subs_types[1] = {INT4ARRAYOID};
	static const Oid notify_types[2] = {TEXTARRAYOID, TEXTARRAYOID};
	static const Oid archive_types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	Datum	   *sub_ids = palloc(sizeof(Datum) * 1);
	int			nsub = 0;
	int			maxsub = 1;
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum		values[2];
	int			rc;
	uint64		nrows;
	int32	   *row_sub;
	char	  **row_queue;
	char	  **row_channel;

	/* the subscriptions the batch names */
	for (int i = 0; i < n; i++)
	{
		ids[i] = Int64GetDatum(events[i].id);
		for (int s = 0; s < events[i].nsubscriptions; s++)
		{
			bool		seen = false;

			for (int k = 0; k < nsub && !seen; k++)
				seen = (DatumGetInt32(sub_ids[k]) == events[i].subscriptions[s]);
			if (seen)
				continue;
			if (nsub == maxsub)
			{
				maxsub *= 2;
				sub_ids = repalloc(sub_ids, sizeof(Datum) * maxsub);
			}
			sub_ids[nsub++] = Int32GetDatum(events[i].subscriptions[s]);
		}
	}

	nrows = 0;
	row_sub = NULL;
	row_queue = NULL;
	row_channel = NULL;
	if (nsub > 0)
	{
		values[0] = queue_build_array(sub_ids, NULL, nsub, INT4OID);
		rc = SPI_execute_plan(queue_plan(&subs_plan,
										 "SELECT s.id, q.name, s.channel"
										 "  FROM queue.subscription s"
										 "  LEFT JOIN queue.queue q ON q.id = s.queue_id"
										 " WHERE s.id = ANY ($1) ORDER BY s.id",
										 1, subs_types),
							  values, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "subscription lookup failed: %s", SPI_result_code_string(rc));
		nrows = SPI_processed;
		row_sub = palloc(sizeof(int32) * (nrows + 1));
		row_queue = palloc(sizeof(char *) * (nrows + 1));
		row_channel = palloc(sizeof(char *) * (nrows + 1));
		for (uint64 r = 0; r < nrows; r++)
		{
			bool		isnull;

			row_sub[r] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r],
													 SPI_tuptable->tupdesc, 1, &isnull));
			row_queue[r] = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
			row_channel[r] = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3);
		}
	}

	for (uint64 r = 0; r < nrows; r++)
	{
		if (row_queue[r] != NULL)
		{
			QueueInfo	queue;
			JobSpec    *specs = palloc0(sizeof(JobSpec) * n);
			int			m = 0;

			/* as enqueue does; a queue dropped meanwhile is skipped */
			queue_lock_name(QUEUE_LOCK_QUEUE_NAME, row_queue[r], ShareLock);
			if (!queue_lookup_if_exists(row_queue[r], &queue))
				continue;
			for (int i = 0; i < n; i++)
			{
				if (!has_subscription(&events[i], row_sub[r]))
					continue;
				specs[m].payload = events[i].payload;
				specs[m].headers = events[i].job_headers;
				specs[m].run_at = now;
				specs[m].group_key = events[i].key;
				m++;
			}
			queue_enqueue_specs(&queue, specs, m, now);
		}
		else if (row_channel[r] != NULL)
		{
			Datum	   *channels = palloc(sizeof(Datum) * n);
			Datum	   *payloads = palloc(sizeof(Datum) * n);
			int			m = 0;

			for (int i = 0; i < n; i++)
			{
				if (!has_subscription(&events[i], row_sub[r]))
					continue;
				channels[m] = CStringGetTextDatum(row_channel[r]);
				payloads[m] = CStringGetTextDatum(events[i].notification);
				m++;
			}
			if (m == 0)
				continue;
			values[0] = queue_build_array(channels, NULL, m, TEXTOID);
			values[1] = queue_build_array(payloads, NULL, m, TEXTOID);
			rc = SPI_execute_plan(queue_plan(&notify_plan,
											 "SELECT pg_notify(u.c, u.p) FROM unnest($1, $2) AS u(c, p)",
											 2, notify_types),
								  values, NULL, false, 0);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "notify failed: %s", SPI_result_code_string(rc));
		}
	}

	values[0] = queue_build_array(ids, NULL, n, INT8OID);
	values[1] = TimestampTzGetDatum(now);
	rc = SPI_execute_plan(queue_plan(&archive_plan,
									 "WITH d AS (DELETE FROM queue.event WHERE id = ANY ($1) RETURNING *)"
									 " INSERT INTO queue.event_archive (id, topic_id, key, payload,"
									 "   headers, subscriptions, published_at, state, finished_at)"
									 " SELECT d.id, d.topic_id, d.key, d.payload, d.headers,"
									 "        d.subscriptions, d.published_at, 'relayed', $2"
									 "   FROM d JOIN queue.topic t ON t.id = d.topic_id"
									 "  WHERE t.retention > interval '0'",
									 2, archive_types),
						  values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "event archive failed: %s", SPI_result_code_string(rc));
}

/*
 * bury
 *		Moves an event that cannot be delivered to the archive as 'dead',
 *		with the error.
 */
static void
bury(int64 id, const char *error, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[3] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			rc;

	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(error);
	values[2] = TimestampTzGetDatum(now);
	rc = SPI_execute_plan(queue_plan(&plan,
									 "WITH d AS (DELETE FROM queue.event WHERE id = $1 RETURNING *)"
									 " INSERT INTO queue.event_archive (id, topic_id, key, payload,"
									 "   headers, subscriptions, published_at, state, error, finished_at)"
									 " SELECT d.id, d.topic_id, d.key, d.payload, d.headers,"
									 "        d.subscriptions, d.published_at, 'dead', $2, $3"
									 "   FROM d",
									 3, argtypes),
						  values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "event burial failed: %s", SPI_result_code_string(rc));
	ereport(WARNING,
			(errmsg("queue relay: event %lld could not be delivered and is now dead",
					(long long) id),
			 errdetail("%s", error)));
}

/*
 * try_deliver
 *		deliver() inside a subtransaction; returns NULL on success, or the
 *		error after rolling the subtransaction back.
 */
static ErrorData *
try_deliver(RelayEvent *events, int n, TimestampTz now)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		deliver(events, n, now);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * is_transient
 *		Whether an error says something about the moment rather than the
 *		event: a serialization failure or deadlock, a lock or statement
 *		timeout, a cancel, a read-only transaction, lack of resources, an
 *		operator's intervention.
 *		Such an error ends the relay's transaction (the events stay in the
 *		outbox for the next pass) instead of making the events dead.
 */
static bool
is_transient(const ErrorData *edata)
{
	int			class = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	return class == ERRCODE_INVALID_TRANSACTION_STATE ||	/* 25xxx: read-only */
		class == ERRCODE_TRANSACTION_ROLLBACK ||		/* 40xxx */
		class == ERRCODE_INSUFFICIENT_RESOURCES ||	/* 53xxx */
		class == ERRCODE_PROGRAM_LIMIT_EXCEEDED ||	/* 54xxx */
		class == ERRCODE_OPERATOR_INTERVENTION ||	/* 57xxx */
		class == ERRCODE_SYSTEM_ERROR ||	/* 58xxx */
		edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		edata->sqlerrcode == ERRCODE_OBJECT_IN_USE;
}

/*
 * queue.relay(batch_size) returns integer: see the file header.
 */
Datum
queue_relay(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {INT4OID};
	int32		batch_size = PG_ARGISNULL(0) ? queue_relay_batch_size : PG_GETARG_INT32(0);
	MemoryContext fn_context = CurrentMemoryContext;
	TimestampTz now = GetCurrentTimestamp();
	RelayEvent *events;
	ErrorData  *edata;
	Datum		values[1];
	uint64		n;
	int			rc;

	/* the setting is capped by the batch limit; an argument must respect it */
	if (PG_ARGISNULL(0))
		batch_size = Min(batch_size, queue_max_batch_size);
	if (batch_size < 1 || batch_size > queue_max_batch_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and %d, not %d",
						queue_max_batch_size, batch_size)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	queue_lock_relay();

	values[0] = Int32GetDatum(batch_size);
	rc = SPI_execute_plan(queue_plan(&plan,
									 "SELECT e.id, e.key, e.payload,"
									 "       coalesce(e.headers, '{}') || jsonb_build_object('event',"
									 "         jsonb_build_object('id', e.id, 'topic', t.name, 'key', e.key,"
									 "                            'published_at', e.published_at)),"
									 "       jsonb_build_object('event_id', e.id, 'topic', t.name,"
									 "                          'key', e.key)::text,"
									 "       e.subscriptions"
									 "  FROM queue.event e JOIN queue.topic t ON t.id = e.topic_id"
									 " ORDER BY e.id LIMIT $1",
									 1, argtypes),
						  values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "relay read failed: %s", SPI_result_code_string(rc));
	n = SPI_processed;
	if (n == 0)
	{
		SPI_finish();
		PG_RETURN_INT32(0);
	}

	/* copy the batch out of SPI, into memory that subtransactions keep */
	{
		MemoryContext spi_context = MemoryContextSwitchTo(fn_context);
		SPITupleTable *tt = SPI_tuptable;

		events = palloc0(sizeof(RelayEvent) * n);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			bool		isnull;
			ArrayType  *subs;
			Datum	   *elems;
			bool	   *nulls;

			events[i].id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
			events[i].key = SPI_getvalue(tup, tt->tupdesc, 2);
			events[i].payload = DatumGetJsonbPCopy(SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
			events[i].job_headers = DatumGetJsonbPCopy(SPI_getbinval(tup, tt->tupdesc, 4, &isnull));
			events[i].notification = SPI_getvalue(tup, tt->tupdesc, 5);
			subs = DatumGetArrayTypePCopy(SPI_getbinval(tup, tt->tupdesc, 6, &isnull));
			deconstruct_array(subs, INT4OID, 4, true, TYPALIGN_INT,
							  &elems, &nulls, &events[i].nsubscriptions);
			events[i].subscriptions = palloc(sizeof(int32) * Max(events[i].nsubscriptions, 1));
			for (int s = 0; s < events[i].nsubscriptions; s++)
				events[i].subscriptions[s] = DatumGetInt32(elems[s]);
		}
		MemoryContextSwitchTo(spi_context);
	}

	/*
	 * The whole batch at once; if it fails, event by event, so that only an
	 * event that fails by itself is buried.  A transient error ends the
	 * relay's transaction instead: the events wait for the next pass.
	 */
	edata = try_deliver(events, (int) n, now);
	if (edata != NULL)
	{
		if (is_transient(edata))
			ReThrowError(edata);
		for (uint64 i = 0; i < n; i++)
		{
			edata = try_deliver(&events[i], 1, now);
			if (edata == NULL)
				continue;
			if (is_transient(edata))
				ReThrowError(edata);
			bury(events[i].id, edata->message ? edata->message : "unknown error", now);
		}
	}

	SPI_finish();
	PG_RETURN_INT32((int32) n);
}
