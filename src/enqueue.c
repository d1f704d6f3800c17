/*-------------------------------------------------------------------------
 *
 * enqueue.c
 *	  queue.enqueue, queue.enqueue_many and queue.enqueue_payloads:
 *	  putting jobs into a queue.
 *
 * All three build the same kind of job specifications and hand them to
 * enqueue_jobs.  Jobs without deduplication keys are written by the row
 * writer (rowwriter.c), which does an INSERT's work without planning and
 * starting a statement per call; where it declines (a trigger on
 * queue.job, say), and for jobs with keys, one INSERT ... SELECT FROM
 * unnest(arrays) statement inserts them all (a batch of 10,000 is one
 * statement, not a loop).  Job ids are drawn from queue.job_id_seq here,
 * before the insert, so that each input position knows its id without
 * relying on the order of RETURNING.
 *
 * Deduplication: a key is unique among a queue's live jobs (the partial
 * unique index job_dedup_idx), and the insert says ON CONFLICT DO NOTHING.
 * A job that was not inserted because its key is taken gets the id of the
 * live job holding the key, looked up by a second statement: in READ
 * COMMITTED it has a new snapshot, so it sees a holder that committed
 * while the insert waited on it.  If the holder finished in between (its
 * key is free again), the job is inserted on the next round.
 *
 * IDENTIFICATION
 *	  src/enqueue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "queue.h"

PG_FUNCTION_INFO_V1(queue_enqueue);
PG_FUNCTION_INFO_V1(queue_enqueue_many);
PG_FUNCTION_INFO_V1(queue_enqueue_payloads);

/* Longest deduplication or group key, in bytes. */
#define QUEUE_KEY_MAXLEN	512

/* Rounds of insert-then-look-up before a dedup race is given up on. */
#define DEDUP_MAX_ROUNDS		10

/*
 * queue_check_document
 *		Raises unless doc is a JSON object within the size limit.
 */
void
queue_check_document(Jsonb *doc, const char *what)
{
	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what)));
	if (VARSIZE(doc) > (Size) queue_max_payload_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", what),
				 errdetail("It takes %zu bytes; queue.max_payload_bytes is %d.",
						   (Size) VARSIZE(doc), queue_max_payload_bytes)));
}

/*
 * check_key
 *		Raises unless a deduplication or group key (if given) has 1 to
 *		QUEUE_KEY_MAXLEN bytes.
 */
static void
check_key(const char *key, const char *what)
{
	if (key != NULL && (strlen(key) == 0 || strlen(key) > QUEUE_KEY_MAXLEN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must have 1 to %d bytes", what, QUEUE_KEY_MAXLEN)));
}

/*
 * fill_options
 *		Validates a job's fields other than its payload and stores them in
 *		*spec.  NULL arguments mean "not given".  enqueue_payloads checks
 *		the options its jobs share once, before their payloads.
 */
static void
fill_options(JobSpec *spec, TimestampTz now, Jsonb *headers,
			 bool has_run_at, TimestampTz run_at, Interval *delay,
			 int32 priority, char *dedup_key, char *group_key,
			 bool has_max_attempts, int32 max_attempts, Jsonb *retry_policy)
{
	if (headers != NULL)
		queue_check_document(headers, "headers");

	if (has_run_at && delay != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("run_at and delay cannot both be given")));
	if (has_run_at && TIMESTAMP_NOT_FINITE(run_at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("run_at must be a finite time")));
	spec->run_at = has_run_at ? run_at : now;
	if (delay != NULL)
	{
		double		seconds = queue_interval_seconds(delay);

		if (seconds < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("delay must not be negative")));
		spec->run_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
															   TimestampTzGetDatum(now),
															   IntervalPGetDatum(delay)));
	}

	check_key(dedup_key, "dedup_key");
	check_key(group_key, "group_key");
	if (has_max_attempts && max_attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1, not %d", max_attempts)));
	if (retry_policy != NULL)
		queue_check_policy_keys(retry_policy);

	spec->payload = NULL;
	spec->headers = headers;
	spec->priority = priority;
	spec->dedup_key = dedup_key;
	spec->group_key = group_key;
	spec->blocked = false;
	spec->max_attempts = has_max_attempts ? max_attempts : 0;
	spec->retry_policy = retry_policy;
	spec->done = false;
}

/*
 * check_payload
 *		Raises unless a job's payload is given and is a JSON object within
 *		the size limit.
 */
static void
check_payload(Jsonb *payload)
{
	if (payload == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payload must not be null"),
				 errhint("Use an empty object {} for a job without data.")));
	queue_check_document(payload, "payload");
}

/*
 * fill_spec
 *		Validates one job's fields and stores them in *spec: the payload
 *		first (it is required), then the options.
 */
static void
fill_spec(JobSpec *spec, TimestampTz now, Jsonb *payload, Jsonb *headers,
		  bool has_run_at, TimestampTz run_at, Interval *delay,
		  int32 priority, char *dedup_key, char *group_key,
		  bool has_max_attempts, int32 max_attempts, Jsonb *retry_policy)
{
	check_payload(payload);
	fill_options(spec, now, headers, has_run_at, run_at, delay, priority,
				 dedup_key, group_key, has_max_attempts, max_attempts,
				 retry_policy);
	spec->payload = payload;
}

/* bsearch comparators for ids and for (key, id) pairs. */
static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

typedef struct KeyId
{
	char	   *key;
	int64		id;
} KeyId;

static int
cmp_keyid(const void *a, const void *b)
{
	return strcmp(((const KeyId *) a)->key, ((const KeyId *) b)->key);
}

/*
 * The columns every enqueue inserts, and the unnest that feeds a batch.
 */
#define JOB_INSERT \
	"INSERT INTO queue.job (id, queue_id, state, priority, run_at," \
	"  attempts, max_attempts, retry_policy, payload, headers, dedup_key," \
	"  group_key, errors, created_at)"
#define JOB_INSERT_UNNEST \
	JOB_INSERT \
	" SELECT u.id, $1, CASE WHEN u.blocked THEN 'blocked' ELSE 'pending' END," \
	"        u.priority, u.run_at, 0, u.max_attempts, u.retry_policy," \
	"        u.payload, u.headers, u.dedup_key, u.group_key, '[]', $10" \
	"   FROM unnest($2, $3, $4, $5, $6, $7, $8, $9, $11, $12)" \
	"        AS u(id, priority, run_at, max_attempts, retry_policy," \
	"             payload, headers, dedup_key, group_key, blocked)"

/*
 * The columns an enqueue sets, for the row writer (rowwriter.c); every
 * other column of queue.job is NULL in a new job.
 */
enum
{
	JOBCOL_ID,
	JOBCOL_QUEUE_ID,
	JOBCOL_STATE,
	JOBCOL_PRIORITY,
	JOBCOL_RUN_AT,
	JOBCOL_ATTEMPTS,
	JOBCOL_MAX_ATTEMPTS,
	JOBCOL_RETRY_POLICY,
	JOBCOL_PAYLOAD,
	JOBCOL_HEADERS,
	JOBCOL_DEDUP_KEY,
	JOBCOL_GROUP_KEY,
	JOBCOL_ERRORS,
	JOBCOL_CREATED_AT,
	JOBCOL_COUNT
};

static const QueueColumn job_columns[JOBCOL_COUNT] = {
	{"id", INT8OID},
	{"queue_id", INT4OID},
	{"state", TEXTOID},
	{"priority", INT4OID},
	{"run_at", TIMESTAMPTZOID},
	{"attempts", INT4OID},
	{"max_attempts", INT4OID},
	{"retry_policy", JSONBOID},
	{"payload", JSONBOID},
	{"headers", JSONBOID},
	{"dedup_key", TEXTOID},
	{"group_key", TEXTOID},
	{"errors", JSONBOID},
	{"created_at", TIMESTAMPTZOID},
};

/*
 * write_jobs
 *		Inserts the specs not yet done, none of which has a deduplication
 *		key, with the row writer; false if the writer declines queue.job
 *		(then nothing was written).
 */
static bool
write_jobs(const QueueInfo *queue, JobSpec *specs, int n, TimestampTz now)
{
	QueueRowWriter *w = queue_row_writer_open("job", job_columns, JOBCOL_COUNT);
	Datum		pending;
	Datum		blocked;
	Datum		no_errors;

	if (w == NULL)
		return false;

	pending = CStringGetTextDatum("pending");
	blocked = CStringGetTextDatum("blocked");
	no_errors = DirectFunctionCall1(jsonb_in, CStringGetDatum("[]"));
	for (int k = 0; k < n; k++)
	{
		JobSpec    *s = &specs[k];

		if (s->done)
			continue;
		Assert(s->dedup_key == NULL);
		queue_row_writer_set(w, JOBCOL_ID, Int64GetDatum(s->id), false);
		queue_row_writer_set(w, JOBCOL_QUEUE_ID, Int32GetDatum(queue->id), false);
		queue_row_writer_set(w, JOBCOL_STATE, s->blocked ? blocked : pending, false);
		queue_row_writer_set(w, JOBCOL_PRIORITY, Int32GetDatum(s->priority), false);
		queue_row_writer_set(w, JOBCOL_RUN_AT, TimestampTzGetDatum(s->run_at), false);
		queue_row_writer_set(w, JOBCOL_ATTEMPTS, Int32GetDatum(0), false);
		queue_row_writer_set(w, JOBCOL_MAX_ATTEMPTS, Int32GetDatum(s->max_attempts), false);
		queue_row_writer_set(w, JOBCOL_RETRY_POLICY, PointerGetDatum(s->retry_policy),
							 s->retry_policy == NULL);
		queue_row_writer_set(w, JOBCOL_PAYLOAD, PointerGetDatum(s->payload), false);
		queue_row_writer_set(w, JOBCOL_HEADERS, PointerGetDatum(s->headers),
							 s->headers == NULL);
		queue_row_writer_set(w, JOBCOL_DEDUP_KEY, (Datum) 0, true);
		queue_row_writer_set(w, JOBCOL_GROUP_KEY,
							 s->group_key ? CStringGetTextDatum(s->group_key) : (Datum) 0,
							 s->group_key == NULL);
		queue_row_writer_set(w, JOBCOL_ERRORS, no_errors, false);
		queue_row_writer_set(w, JOBCOL_CREATED_AT, TimestampTzGetDatum(now), false);
		queue_row_writer_insert(w);
		s->done = true;
	}
	queue_row_writer_close(w);
	return true;
}

/*
 * insert_by_statement
 *		Inserts every spec not yet done with one INSERT ... SELECT FROM
 *		unnest statement; marks those inserted.
 *
 * Specs with deduplication keys go through ON CONFLICT DO NOTHING, which
 * makes every row a speculative insertion (an extra WAL record and lock
 * per row) and needs RETURNING to tell what went in; a batch without keys
 * takes a plain INSERT (when the row writer declined the table).
 */
static void
insert_by_statement(const QueueInfo *queue, JobSpec *specs, int n,
					TimestampTz now, bool any_key)
{
	static SPIPlanPtr plan_keys = NULL;
	static SPIPlanPtr plan_plain = NULL;
	static const Oid argtypes[12] = {INT4OID, INT8ARRAYOID, INT4ARRAYOID,
		TIMESTAMPTZARRAYOID, INT4ARRAYOID, JSONBARRAYOID, JSONBARRAYOID,
	JSONBARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID, TEXTARRAYOID, BOOLARRAYOID};
	Datum	   *ids = palloc(n * sizeof(Datum));
	Datum	   *prio = palloc(n * sizeof(Datum));
	Datum	   *runat = palloc(n * sizeof(Datum));
	Datum	   *maxatt = palloc(n * sizeof(Datum));
	Datum	   *policy = palloc(n * sizeof(Datum));
	Datum	   *payload = palloc(n * sizeof(Datum));
	Datum	   *headers = palloc(n * sizeof(Datum));
	Datum	   *dedup = palloc(n * sizeof(Datum));
	bool	   *policy_null = palloc(n * sizeof(bool));
	bool	   *headers_null = palloc(n * sizeof(bool));
	bool	   *dedup_null = palloc(n * sizeof(bool));
	Datum	   *group = palloc(n * sizeof(Datum));
	bool	   *group_null = palloc(n * sizeof(bool));
	Datum	   *blocked = palloc(n * sizeof(Datum));
	int64	   *inserted;
	Datum		values[12];
	int			m = 0;
	int			rc;
	uint64		i;

	for (int k = 0; k < n; k++)
	{
		JobSpec    *s = &specs[k];

		if (s->done)
			continue;
		ids[m] = Int64GetDatum(s->id);
		prio[m] = Int32GetDatum(s->priority);
		runat[m] = TimestampTzGetDatum(s->run_at);
		maxatt[m] = Int32GetDatum(s->max_attempts);
		policy[m] = PointerGetDatum(s->retry_policy);
		policy_null[m] = (s->retry_policy == NULL);
		payload[m] = PointerGetDatum(s->payload);
		headers[m] = PointerGetDatum(s->headers);
		headers_null[m] = (s->headers == NULL);
		dedup[m] = s->dedup_key ? CStringGetTextDatum(s->dedup_key) : (Datum) 0;
		dedup_null[m] = (s->dedup_key == NULL);
		group[m] = s->group_key ? CStringGetTextDatum(s->group_key) : (Datum) 0;
		group_null[m] = (s->group_key == NULL);
		blocked[m] = BoolGetDatum(s->blocked);
		m++;
	}

	values[0] = Int32GetDatum(queue->id);
	values[1] = queue_build_array(ids, NULL, m, INT8OID);
	values[2] = queue_build_array(prio, NULL, m, INT4OID);
	values[3] = queue_build_array(runat, NULL, m, TIMESTAMPTZOID);
	values[4] = queue_build_array(maxatt, NULL, m, INT4OID);
	values[5] = queue_build_array(policy, policy_null, m, JSONBOID);
	values[6] = queue_build_array(payload, NULL, m, JSONBOID);
	values[7] = queue_build_array(headers, headers_null, m, JSONBOID);
	values[8] = queue_build_array(dedup, dedup_null, m, TEXTOID);
	values[9] = TimestampTzGetDatum(now);
	values[10] = queue_build_array(group, group_null, m, TEXTOID);
	values[11] = queue_build_array(blocked, NULL, m, BOOLOID);

	if (!any_key)
	{
		rc = SPI_execute_plan(queue_plan(&plan_plain, JOB_INSERT_UNNEST, 12, argtypes),
							  values, NULL, false, 0);
		if (rc != SPI_OK_INSERT || SPI_processed != (uint64) m)
			elog(ERROR, "enqueue insert failed: %s, %llu rows of %d",
				 SPI_result_code_string(rc), (unsigned long long) SPI_processed, m);
		for (int k = 0; k < n; k++)
			specs[k].done = true;
		return;
	}

	rc = SPI_execute_plan(queue_plan(&plan_keys,
									 JOB_INSERT_UNNEST
									 " ON CONFLICT (queue_id, dedup_key) WHERE dedup_key IS NOT NULL"
									 " DO NOTHING"
									 " RETURNING id",
									 12, argtypes),
						  values, NULL, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "enqueue insert failed: %s", SPI_result_code_string(rc));

	/* Specs' ids are ascending (drawn in order), so look them up by bsearch. */
	inserted = palloc(sizeof(int64) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		inserted[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 1, &isnull));
	}
	qsort(inserted, SPI_processed, sizeof(int64), cmp_int64);
	for (int k = 0; k < n; k++)
	{
		if (!specs[k].done &&
			bsearch(&specs[k].id, inserted, SPI_processed, sizeof(int64), cmp_int64))
			specs[k].done = true;
	}
}

/*
 * insert_pending
 *		Inserts every spec not yet done; marks those inserted.  Jobs without
 *		deduplication keys go in through the row writer where it applies;
 *		the rest through an INSERT statement.
 */
static void
insert_pending(const QueueInfo *queue, JobSpec *specs, int n, TimestampTz now)
{
	bool		any_key = false;

	for (int k = 0; k < n; k++)
		if (!specs[k].done && specs[k].dedup_key != NULL)
			any_key = true;
	if (!any_key && write_jobs(queue, specs, n, now))
		return;
	insert_by_statement(queue, specs, n, now, any_key);
}

/*
 * resolve_duplicates
 *		Gives each spec not inserted the id of the live job that holds its
 *		key; returns how many are still unresolved (their holder finished
 *		meanwhile, so they can be inserted now).
 */
static int
resolve_duplicates(const QueueInfo *queue, JobSpec *specs, int n)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {INT4OID, TEXTARRAYOID};
	Datum	   *keys = palloc(n * sizeof(Datum));
	KeyId	   *found;
	Datum		values[2];
	int			m = 0;
	int			left = 0;
	int			rc;
	uint64		i;

	for (int k = 0; k < n; k++)
	{
		if (specs[k].done)
			continue;
		/* only a key can keep a row out; anything else is a bug, not a race */
		if (specs[k].dedup_key == NULL)
			elog(ERROR, "enqueue did not insert a job without a deduplication key");
		keys[m++] = CStringGetTextDatum(specs[k].dedup_key);
	}
	if (m == 0)
		return 0;

	values[0] = Int32GetDatum(queue->id);
	values[1] = queue_build_array(keys, NULL, m, TEXTOID);
	rc = SPI_execute_plan(queue_plan(&plan,
									 "SELECT dedup_key, id FROM queue.job"
									 " WHERE queue_id = $1 AND dedup_key = ANY ($2)",
									 2, argtypes),
						  values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "enqueue dedup lookup failed: %s", SPI_result_code_string(rc));

	found = palloc(sizeof(KeyId) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		found[i].key = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		found[i].id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 2, &isnull));
	}
	qsort(found, SPI_processed, sizeof(KeyId), cmp_keyid);

	for (int k = 0; k < n; k++)
	{
		KeyId		probe;
		KeyId	   *hit;

		if (specs[k].done)
			continue;
		probe.key = specs[k].dedup_key;
		hit = bsearch(&probe, found, SPI_processed, sizeof(KeyId), cmp_keyid);
		if (hit)
		{
			specs[k].id = hit->id;
			specs[k].done = true;
		}
		else
			left++;
	}
	return left;
}

/*
 * mark_blocked
 *		In an ordered queue, decides which specs start blocked: those whose
 *		group has a live job, and every spec after the first of its group in
 *		the batch.  Takes the groups' locks first (groups.c), so that the
 *		answer holds until commit.  Returns the number of blocked specs.
 */
static int
mark_blocked(const QueueInfo *queue, JobSpec *specs, int n)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {INT4OID, TEXTARRAYOID};
	char	  **keys = palloc(sizeof(char *) * n);
	Datum	   *elems = palloc(sizeof(Datum) * n);
	char	  **live;
	int			nkeys = 0;
	int			nlive;
	int			nblocked = 0;
	Datum		values[2];
	int			rc;

	for (int k = 0; k < n; k++)
		if (specs[k].group_key != NULL)
		{
			keys[nkeys] = specs[k].group_key;
			elems[nkeys] = CStringGetTextDatum(specs[k].group_key);
			nkeys++;
		}
	if (nkeys == 0)
		return 0;
	queue_lock_keys(QUEUE_LOCK_GROUP, (uint32) queue->id, keys, nkeys);

	values[0] = Int32GetDatum(queue->id);
	values[1] = queue_build_array(elems, NULL, nkeys, TEXTOID);
	rc = SPI_execute_plan(queue_plan(&plan,
									 "SELECT DISTINCT group_key FROM queue.job"
									 " WHERE queue_id = $1 AND group_key = ANY ($2)",
									 2, argtypes),
						  values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "group lookup failed: %s", SPI_result_code_string(rc));

	/* groups with a live job, then each group's first spec joins them */
	live = palloc(sizeof(char *) * (SPI_processed + nkeys));
	nlive = (int) SPI_processed;
	for (int i = 0; i < nlive; i++)
		live[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	for (int k = 0; k < n; k++)
	{
		bool		seen = false;

		if (specs[k].group_key == NULL)
			continue;
		for (int i = 0; i < nlive && !seen; i++)
			seen = (strcmp(live[i], specs[k].group_key) == 0);
		if (seen)
		{
			specs[k].blocked = true;
			nblocked++;
		}
		else
			live[nlive++] = specs[k].group_key;
	}
	return nblocked;
}

/*
 * note_claim_keys
 *		Tells the claim hint (wake.c) the earliest claim-order key these
 *		jobs take: the highest priority, and the earliest run_at at it.
 */
static void
note_claim_keys(int32 queue_id, const JobSpec *specs, int n)
{
	bool		any = false;
	int32		priority = 0;
	TimestampTz run_at = 0;

	for (int k = 0; k < n; k++)
	{
		if (specs[k].blocked)
			continue;
		if (!any || specs[k].priority > priority ||
			(specs[k].priority == priority && specs[k].run_at < run_at))
		{
			priority = specs[k].priority;
			run_at = specs[k].run_at;
			any = true;
		}
	}
	if (any)
		queue_hint_note(queue_id, priority, run_at);
}

/*
 * queue_enqueue_specs
 *		Enqueues n validated specs into a queue; on return each spec's id is
 *		the job that stands for it (new, or the live job holding its
 *		deduplication key).  Must be called inside SPI_connect.
 */
void
queue_enqueue_specs(const QueueInfo *queue, JobSpec *specs, int n, TimestampTz now)
{
	Oid			seq;
	int			nblocked = 0;
	int			round;

	if (n == 0)
		return;

	/*
	 * In an ordered queue, the group locks come before the ids: the ids of
	 * a group's jobs are then drawn in the order their transactions commit,
	 * and promotion (smallest id first) follows that order.
	 */
	if (queue->ordered)
		nblocked = mark_blocked(queue, specs, n);

	/* the queue's default, decided once for both forms of the insert */
	for (int k = 0; k < n; k++)
		if (specs[k].max_attempts <= 0)
			specs[k].max_attempts = queue->max_attempts;

	seq = get_relname_relid("job_id_seq", get_namespace_oid("queue", false));
	if (!OidIsValid(seq))
		elog(ERROR, "sequence queue.job_id_seq is missing");
	for (int k = 0; k < n; k++)
		specs[k].id = nextval_internal(seq, false);

	queue_note_wake(queue->id);
	note_claim_keys(queue->id, specs, n);
	for (round = 0;; round++)
	{
		bool		has_keys = false;

		insert_pending(queue, specs, n, now);
		for (int k = 0; k < n && !has_keys; k++)
			has_keys = !specs[k].done;
		if (!has_keys || resolve_duplicates(queue, specs, n) == 0)
			break;
		if (round >= DEDUP_MAX_ROUNDS)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not settle deduplication keys after %d rounds",
							DEDUP_MAX_ROUNDS),
					 errdetail("Jobs holding the same keys kept finishing concurrently."),
					 errhint("Retry the transaction.")));
	}

	/*
	 * A group's first spec may have been deduplicated away (its key held by
	 * a job of another group), leaving the next one blocked with no head:
	 * promote where that happened.
	 */
	if (nblocked > 0)
	{
		char	  **keys = palloc(sizeof(char *) * n);
		int			nkeys = 0;

		for (int k = 0; k < n; k++)
			if (specs[k].group_key != NULL)
				keys[nkeys++] = specs[k].group_key;
		queue_promote_groups(queue->id, keys, nkeys);
	}
}

/*
 * check_batch_size
 *		Raises if a batch has more jobs than queue.max_batch_size allows.
 */
static void
check_batch_size(int n)
{
	if (n > queue_max_batch_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("batch of %d jobs is too large", n),
				 errdetail("queue.max_batch_size is %d.", queue_max_batch_size)));
}

/*
 * enqueue_jobs
 *		Enqueues n validated specs into the named queue (see
 *		queue_enqueue_specs).
 */
static void
enqueue_jobs(const char *queue_name, JobSpec *specs, int n, TimestampTz now)
{
	QueueInfo	queue;

	Assert(n <= queue_max_batch_size);	/* the batch functions check it */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* Lock before the lookup: see locks.c. */
	queue_lock_name(QUEUE_LOCK_QUEUE_NAME, queue_name, ShareLock);
	queue_lookup(queue_name, &queue);
	queue_enqueue_specs(&queue, specs, n, now);
	SPI_finish();
}

/*
 * queue.enqueue(queue, payload, headers, run_at, delay, priority,
 *				 dedup_key, max_attempts, retry_policy, group_key) returns bigint
 */
Datum
queue_enqueue(PG_FUNCTION_ARGS)
{
	JobSpec		spec;
	char	   *queue_name;
	TimestampTz now = GetCurrentTimestamp();

	QUEUE_ARG_NOT_NULL(0, "queue name");
	QUEUE_ARG_NOT_NULL(5, "priority");
	queue_name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	fill_spec(&spec, now,
			  PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1),
			  PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
			  !PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_TIMESTAMPTZ(3),
			  PG_ARGISNULL(4) ? NULL : PG_GETARG_INTERVAL_P(4),
			  PG_GETARG_INT32(5),
			  PG_ARGISNULL(6) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(6)),
			  PG_ARGISNULL(9) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(9)),
			  !PG_ARGISNULL(7), PG_ARGISNULL(7) ? 0 : PG_GETARG_INT32(7),
			  PG_ARGISNULL(8) ? NULL : PG_GETARG_JSONB_P(8));

	enqueue_jobs(queue_name, &spec, 1, now);
	PG_RETURN_INT64(spec.id);
}

/*
 * json_text
 *		A JSON string value as a C string, or an error naming the key.
 */
static char *
json_text(JsonbValue *v, const char *key)
{
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * json_int32
 *		A JSON number that is a whole int4, or an error naming the key.
 */
static int32
json_int32(JsonbValue *v, const char *key)
{
	double		d;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON number", key)));
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v->val.numeric)));
	if (d != floor(d) || d < PG_INT32_MIN || d > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be an integer between %d and %d",
						key, PG_INT32_MIN, PG_INT32_MAX)));
	return (int32) d;
}

/*
 * json_document
 *		A JSON container value as a Jsonb of its own.
 */
static Jsonb *
json_document(JsonbValue *v, const char *key)
{
	if (v->type != jbvBinary || !(v->val.binary.data->header & JB_FOBJECT))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", key)));
	return JsonbValueToJsonb(v);
}

/* The keys of an enqueue_many element, and their positions in job_keys. */
typedef enum JobKey
{
	JOB_KEY_PAYLOAD,
	JOB_KEY_HEADERS,
	JOB_KEY_RUN_AT,
	JOB_KEY_DELAY,
	JOB_KEY_PRIORITY,
	JOB_KEY_DEDUP_KEY,
	JOB_KEY_GROUP_KEY,
	JOB_KEY_MAX_ATTEMPTS,
	JOB_KEY_RETRY_POLICY
} JobKey;

static const char *const job_keys[] = {
	"payload", "headers", "run_at", "delay", "priority", "dedup_key",
	"group_key", "max_attempts", "retry_policy"
};

/*
 * spec_from_json
 *		Reads one element of enqueue_many's array into *spec.
 */
static void
spec_from_json(JobSpec *spec, JsonbValue *elem, TimestampTz now)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			keyno = 0;
	const char *key = NULL;
	Jsonb	   *payload = NULL;
	Jsonb	   *headers = NULL;
	bool		has_run_at = false;
	TimestampTz run_at = 0;
	Interval   *delay = NULL;
	int32		priority = 0;
	char	   *dedup_key = NULL;
	char	   *group_key = NULL;
	bool		has_max_attempts = false;
	int32		max_attempts = 0;
	Jsonb	   *retry_policy = NULL;

	if (elem->type != jbvBinary ||
		!(elem->val.binary.data->header & JB_FOBJECT))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("each job must be a JSON object"),
				 errhint("Give {\"payload\": {...}} and optional headers, run_at, delay, priority, dedup_key, group_key, max_attempts, retry_policy.")));

	it = JsonbIteratorInit(elem->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *name = pnstrdup(v.val.string.val, v.val.string.len);

			keyno = queue_batch_key("job", name, job_keys, lengthof(job_keys));
			key = job_keys[keyno];
			continue;
		}
		if (tok != WJB_VALUE || v.type == jbvNull)
			continue;			/* a JSON null means "not given" */

		switch ((JobKey) keyno)
		{
			case JOB_KEY_PAYLOAD:
				payload = json_document(&v, key);
				break;
			case JOB_KEY_HEADERS:
				headers = json_document(&v, key);
				break;
			case JOB_KEY_RUN_AT:
				has_run_at = true;
				run_at = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																 CStringGetDatum(json_text(&v, key)),
																 ObjectIdGetDatum(InvalidOid),
																 Int32GetDatum(-1)));
				break;
			case JOB_KEY_DELAY:
				if (v.type == jbvNumeric)
					delay = queue_seconds_interval(DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
																					  NumericGetDatum(v.val.numeric))));
				else if (v.type != jbvString)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("delay must be a number of seconds or an interval string")));
				else
					delay = DatumGetIntervalP(DirectFunctionCall3(interval_in,
																  CStringGetDatum(json_text(&v, key)),
																  ObjectIdGetDatum(InvalidOid),
																  Int32GetDatum(-1)));
				break;
			case JOB_KEY_PRIORITY:
				priority = json_int32(&v, key);
				break;
			case JOB_KEY_DEDUP_KEY:
				dedup_key = json_text(&v, key);
				break;
			case JOB_KEY_GROUP_KEY:
				group_key = json_text(&v, key);
				break;
			case JOB_KEY_MAX_ATTEMPTS:
				has_max_attempts = true;
				max_attempts = json_int32(&v, key);
				break;
			case JOB_KEY_RETRY_POLICY:
				retry_policy = json_document(&v, key);
				break;
		}
	}

	fill_spec(spec, now, payload, headers, has_run_at, run_at, delay, priority,
			  dedup_key, group_key, has_max_attempts, max_attempts, retry_policy);
}

/*
 * return_ids
 *		The result of a batch function: its specs' ids, in input order, in
 *		the materialized result set InitMaterializedSRF set up.
 */
static void
return_ids(FunctionCallInfo fcinfo, const JobSpec *specs, int n)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int k = 0; k < n; k++)
	{
		Datum		value = Int64GetDatum(specs[k].id);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
}

/*
 * queue.enqueue_many(queue, jobs jsonb) returns setof bigint
 *
 * jobs is a JSON array of job objects; returns one id per element, in the
 * array's order (an element whose dedup_key is taken gets the holder's id).
 */
Datum
queue_enqueue_many(PG_FUNCTION_ARGS)
{
	char	   *queue_name;
	Jsonb	   *jobs;
	int			n;
	JobSpec    *specs;
	TimestampTz now = GetCurrentTimestamp();
	QueueBatchContext ctx;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			k = 0;

	QUEUE_ARG_NOT_NULL(0, "queue name");
	QUEUE_ARG_NOT_NULL(1, "jobs");
	queue_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	jobs = PG_GETARG_JSONB_P(1);

	if (!JB_ROOT_IS_ARRAY(jobs) || JB_ROOT_IS_SCALAR(jobs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jobs must be a JSON array of job objects")));
	n = JB_ROOT_COUNT(jobs);
	check_batch_size(n);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	specs = palloc0(sizeof(JobSpec) * Max(n, 1));

	queue_batch_context_push(&ctx, "job");
	it = JsonbIteratorInit(&jobs->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		ctx.index = k;
		spec_from_json(&specs[k], &v, now);
		k++;
	}
	queue_batch_context_pop(&ctx);

	enqueue_jobs(queue_name, specs, n, now);
	return_ids(fcinfo, specs, n);
	return (Datum) 0;
}

/*
 * queue.enqueue_payloads(queue, payloads jsonb[], headers, run_at, delay,
 *						  priority, max_attempts, retry_policy, group_key)
 *		returns setof bigint
 *
 * One job per payload, all with the same options; returns their ids in
 * the array's order.  The options are checked once, before the payloads,
 * so an error about them carries no element's context.  Reading an array
 * of jsonb is cheaper than taking enqueue_many's objects apart, and so is
 * building one (array_agg against jsonb_agg of wrapped objects).
 */
Datum
queue_enqueue_payloads(PG_FUNCTION_ARGS)
{
	char	   *queue_name;
	Datum	   *payloads;
	int			n;
	JobSpec		options;
	JobSpec    *specs;
	TimestampTz now = GetCurrentTimestamp();
	QueueBatchContext ctx;

	QUEUE_ARG_NOT_NULL(0, "queue name");
	QUEUE_ARG_NOT_NULL(1, "payloads");
	QUEUE_ARG_NOT_NULL(5, "priority");
	queue_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	n = queue_unpack_array(PG_GETARG_ARRAYTYPE_P(1), JSONBOID, "payloads",
						   &payloads, NULL);
	check_batch_size(n);

	fill_options(&options, now,
				 PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
				 !PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_TIMESTAMPTZ(3),
				 PG_ARGISNULL(4) ? NULL : PG_GETARG_INTERVAL_P(4),
				 PG_GETARG_INT32(5),
				 NULL,
				 PG_ARGISNULL(8) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(8)),
				 !PG_ARGISNULL(6), PG_ARGISNULL(6) ? 0 : PG_GETARG_INT32(6),
				 PG_ARGISNULL(7) ? NULL : PG_GETARG_JSONB_P(7));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	specs = palloc(sizeof(JobSpec) * Max(n, 1));

	queue_batch_context_push(&ctx, "job");
	for (int k = 0; k < n; k++)
	{
		Jsonb	   *payload = DatumGetJsonbP(payloads[k]);

		ctx.index = k;
		check_payload(payload);
		specs[k] = options;
		specs[k].payload = payload;
	}
	queue_batch_context_pop(&ctx);

	enqueue_jobs(queue_name, specs, n, now);
	return_ids(fcinfo, specs, n);
	return (Datum) 0;
}
