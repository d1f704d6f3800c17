/*-------------------------------------------------------------------------
 *
 * lease.c
 *	  Claiming jobs and settling them: claim, complete, fail, extend and
 *	  release, single and batch.
 *
 * A claim locks up to batch_size claimable jobs, in claim order, with
 * SELECT ... LIMIT ... FOR UPDATE SKIP LOCKED (concurrent claimers skip
 * each other's locked rows instead of waiting), then writes into each
 * locked row, with the row writer's updater (rowwriter.c): state running,
 * one more attempt, a fresh random lease token, the worker's name, and
 * run_at set to the lease's expiry.  Where the updater declines queue.job
 * (a trigger on it), one UPDATE statement does both (CLAIM_SQL).
 *
 * Settling is a compare-and-set on (job id, lease token): the statement
 * (for complete, the row writer's deleter) touches the row only if it
 * still carries the caller's token.  A claim
 * replaces the token, so once another worker has re-claimed a job whose
 * lease expired, the old holder's complete, fail, extend or release finds
 * nothing and raises SQLSTATE QU001 (queue_report_stale_lease), which
 * aborts the caller's transaction with its business writes.  Until someone
 * re-claims it the old token stays current, even past its lease.
 *
 * Batch forms are all-or-nothing: if any (id, token) pair is stale the
 * whole call raises and nothing it did remains.  The single forms are
 * batches of one, so there is one code path.
 *
 * Times are clock_timestamp() (GetCurrentTimestamp), not the transaction
 * start, so a lease is measured from the moment it is taken.
 *
 * IDENTIFICATION
 *	  src/lease.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "queue.h"

PG_FUNCTION_INFO_V1(queue_claim);
PG_FUNCTION_INFO_V1(queue_complete);
PG_FUNCTION_INFO_V1(queue_complete_many);
PG_FUNCTION_INFO_V1(queue_complete_and_claim);
PG_FUNCTION_INFO_V1(queue_fail);
PG_FUNCTION_INFO_V1(queue_fail_many);
PG_FUNCTION_INFO_V1(queue_extend);
PG_FUNCTION_INFO_V1(queue_release);

/* Shortest sleep of a waiting claim that found due jobs all locked. */
#define MIN_CLAIM_SLEEP_MS	10

/* (job id, lease token) pairs of one settling call, and per-pair data. */
typedef struct LeaseBatch
{
	int			n;
	Datum	   *ids;			/* int8 */
	Datum	   *tokens;			/* uuid */
	Datum	   *extra;			/* results (jsonb) or errors (text) */
	bool	   *extra_null;
} LeaseBatch;

/*
 * spi_connect / spi_finish: the SPI bracket every entry point uses.
 */
static void
spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * check_interval
 *		Raises unless a caller-given lease (or delay) is acceptable.
 */
static void
check_interval(const Interval *iv, const char *what, bool positive)
{
	double		s = queue_interval_seconds(iv);

	if (positive ? s <= 0 : s < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(positive ? "%s must be positive" : "%s must not be negative",
						what)));
	if (s > QUEUE_MAX_INTERVAL_SECONDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at most 100 years", what)));
}

/*
 * timestamp_plus
 *		ts + iv, with the interval arithmetic of timestamptz + interval.
 */
static TimestampTz
timestamp_plus(TimestampTz ts, const Interval *iv)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(ts),
												   IntervalPGetDatum(iv)));
}

static int
cmp_datum_int64(const void *a, const void *b)
{
	int64		x = DatumGetInt64(*(const Datum *) a);
	int64		y = DatumGetInt64(*(const Datum *) b);

	return (x > y) - (x < y);
}

/*
 * batch_from_arrays
 *		Reads a batch call's id and token arrays (arguments 0 and 1) and its
 *		optional array of results or errors (argument extraarg) and checks
 *		their shape: same lengths, no nulls, no id twice, within
 *		queue.max_batch_size.
 */
static void
batch_from_arrays(FunctionCallInfo fcinfo, LeaseBatch *b, int extraarg, Oid extratype,
				  const char *extraname, bool extra_required)
{
	Datum	   *sorted;
	int			ntok;

	QUEUE_ARG_NOT_NULL(0, "job_ids");
	QUEUE_ARG_NOT_NULL(1, "lease_tokens");
	b->n = queue_unpack_array(PG_GETARG_ARRAYTYPE_P(0), INT8OID, "job_ids",
							  &b->ids, NULL);
	ntok = queue_unpack_array(PG_GETARG_ARRAYTYPE_P(1), UUIDOID, "lease_tokens",
							  &b->tokens, NULL);
	if (ntok != b->n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("job_ids and lease_tokens must have the same length"),
				 errdetail("job_ids has %d elements, lease_tokens %d.", b->n, ntok)));
	if (b->n > queue_max_batch_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("batch of %d jobs is too large", b->n),
				 errdetail("queue.max_batch_size is %d.", queue_max_batch_size)));

	if (PG_ARGISNULL(extraarg))
	{
		if (extra_required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", extraname)));
		b->extra = palloc0(sizeof(Datum) * Max(b->n, 1));
		b->extra_null = palloc(sizeof(bool) * Max(b->n, 1));
		memset(b->extra_null, true, sizeof(bool) * Max(b->n, 1));
	}
	else
	{
		int			nextra = queue_unpack_array(PG_GETARG_ARRAYTYPE_P(extraarg),
												extratype, extraname, &b->extra,
												extra_required ? NULL : &b->extra_null);

		if (extra_required)
			b->extra_null = palloc0(sizeof(bool) * Max(b->n, 1));
		if (nextra != b->n)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("%s must have as many elements as job_ids", extraname),
					 errdetail("job_ids has %d elements, %s %d.", b->n, extraname, nextra)));
	}

	sorted = palloc(sizeof(Datum) * Max(b->n, 1));
	memcpy(sorted, b->ids, sizeof(Datum) * b->n);
	qsort(sorted, b->n, sizeof(Datum), cmp_datum_int64);
	for (int i = 1; i < b->n; i++)
		if (DatumGetInt64(sorted[i]) == DatumGetInt64(sorted[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("job %lld appears more than once in the batch",
							(long long) DatumGetInt64(sorted[i]))));
}

/*
 * batch_single
 *		A batch of the one (job id, lease token) pair in arguments 0 and 1.
 */
static void
batch_single(FunctionCallInfo fcinfo, LeaseBatch *b)
{
	QUEUE_ARG_NOT_NULL(0, "job_id");
	QUEUE_ARG_NOT_NULL(1, "lease_token");
	b->n = 1;
	b->ids = palloc(sizeof(Datum));
	b->tokens = palloc(sizeof(Datum));
	b->extra = palloc0(sizeof(Datum));
	b->extra_null = palloc(sizeof(bool));
	b->ids[0] = PG_GETARG_DATUM(0);
	b->tokens[0] = PG_GETARG_DATUM(1);
	b->extra_null[0] = true;
}

/*
 * queue_report_stale_lease
 *		Raises QU001 for a (job, token) that did not match, saying why.
 *
 * Must be called inside SPI_connect.
 */
void
queue_report_stale_lease(int64 job_id, Datum token)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {INT8OID};
	Datum		values[1];
	char	   *token_text = DatumGetCString(DirectFunctionCall1(uuid_out, token));
	char	   *detail;
	int			rc;

	values[0] = Int64GetDatum(job_id);
	rc = SPI_execute_plan(queue_plan(&plan,
									 "SELECT j.state, j.worker, j.attempts,"
									 "       (SELECT s.definition_id FROM queue.saga s WHERE s.id = j.saga_id),"
									 "       j.lease_token"
									 "  FROM queue.job j WHERE j.id = $1"
									 " UNION ALL "
									 "SELECT a.state, a.worker, a.attempts,"
									 "       (SELECT s.definition_id FROM queue.saga s WHERE s.id = a.saga_id),"
									 "       NULL::uuid"
									 "  FROM queue.job_archive a WHERE a.id = $1",
									 1, argtypes),
						  values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "lease diagnosis failed: %s", SPI_result_code_string(rc));

	if (SPI_processed == 0)
		detail = psprintf("Job %lld does not exist (it was deleted, or pruned after it finished).",
						  (long long) job_id);
	else
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *state = SPI_getvalue(tup, desc, 1);
		char	   *worker = SPI_getvalue(tup, desc, 2);
		char	   *attempts = SPI_getvalue(tup, desc, 3);
		bool		isnull;
		Datum		definition = SPI_getbinval(tup, desc, 4, &isnull);
		Datum		current;

		/* a saga step: count the refusal (it survives the coming abort) */
		if (!isnull)
			queue_count_stale_saga(DatumGetInt32(definition));

		current = SPI_getbinval(tup, desc, 5, &isnull);
		if (!isnull && datumIsEqual(current, token, false, UUID_LEN))
			detail = psprintf("Job %lld still holds this lease, but the call left its row unchanged (a trigger on queue.job skipped it, or its queue is gone).",
							  (long long) job_id);
		else if (strcmp(state, "running") == 0)
			detail = psprintf("Job %lld is running under another lease: attempt %s, held by worker \"%s\".",
							  (long long) job_id, attempts, worker ? worker : "");
		else if (strcmp(state, "pending") == 0)
			detail = psprintf("Job %lld is not running: its lease was released or failed, and it waits to run again.",
							  (long long) job_id);
		else if (strcmp(state, "blocked") == 0)
			detail = psprintf("Job %lld is not running: it waits behind an earlier job of its group.",
							  (long long) job_id);
		else
			detail = psprintf("Job %lld has already finished: it is %s.",
							  (long long) job_id, state);
	}

	ereport(ERROR,
			(errcode(ERRCODE_QUEUE_LEASE_NOT_HELD),
			 errmsg("lease token %s is not the current lease of job %lld",
					token_text, (long long) job_id),
			 errdetail_internal("%s", detail),
			 errhint("This attempt no longer owns the job; roll back its work.")));
	pg_unreachable();
}

/*
 * check_all_matched
 *		After a compare-and-set statement that returned the ids it touched
 *		in its first column, raises QU001 for the first pair of the batch
 *		it did not touch.
 */
static void
check_all_matched(const LeaseBatch *b)
{
	uint64		matched = SPI_processed;
	Datum	   *got;
	SPITupleTable *tt = SPI_tuptable;

	if (matched == (uint64) b->n)
		return;

	got = palloc(sizeof(Datum) * (matched + 1));
	for (uint64 i = 0; i < matched; i++)
	{
		bool		isnull;

		got[i] = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);
	}
	qsort(got, matched, sizeof(Datum), cmp_datum_int64);
	for (int i = 0; i < b->n; i++)
	{
		if (!bsearch(&b->ids[i], got, matched, sizeof(Datum), cmp_datum_int64))
			queue_report_stale_lease(DatumGetInt64(b->ids[i]), b->tokens[i]);
	}
	elog(ERROR, "lease batch matched %llu of %d jobs but none is missing",
		 (unsigned long long) matched, b->n);
}

/*
 * The jobs of queue $1 a claim at $2 may take: due, not blocked, with an
 * attempt left (a running job whose lease expired is claimable again, as
 * its next attempt), and not past their deadline.  hint_condition narrows
 * the scan to what lies past the claim hint within its priority (wake.c,
 * "claim hints").
 */
#define CLAIM_WHERE(hint_condition) \
	" WHERE queue_id = $1 AND run_at <= $2 AND state <> 'blocked'" \
	hint_condition \
	"   AND (state = 'pending' OR attempts < max_attempts)" \
	"   AND (deadline_at IS NULL OR deadline_at > $2)"
#define CLAIM_HINT_CONDITION	"   AND priority = $7 AND (run_at, id) > ($8, $9)"
#define CLAIM_HINT_ORDER		"run_at, id"
#define CLAIM_FULL_ORDER		"priority DESC, run_at, id"

/*
 * What a claim writes into the job j it took, besides state 'running',
 * attempts + 1, a fresh lease token, the worker and claimed_at ($2): the
 * lease's expiry as run_at, and, for a job whose earlier lease expired
 * (still 'running'), that attempt's entry in errors.
 */
#define CLAIM_NEW_RUN_AT	"$2 + coalesce($5, j.lease_timeout, $6)"
#define CLAIM_NEW_ERRORS \
	"CASE WHEN j.state = 'running'" \
	"  THEN j.errors || jsonb_build_array(jsonb_build_object(" \
	"    'attempt', j.attempts, 'at', j.run_at," \
	"    'worker', j.worker, 'error', 'lease expired'))" \
	"  ELSE j.errors END"

/*
 * The claim's lock: up to $3 claimable jobs, in claim order, locked (FOR
 * UPDATE SKIP LOCKED: concurrent claimers skip each other's rows; LIMIT
 * counts only rows locked), each with its row version's ctid, its run_at
 * before the claim (its place in the order) and the values the claim
 * gives it.  Under READ COMMITTED a row another transaction changed is
 * checked again in its new version, and the values are of that version.
 * claim_run_updater then writes the rows itself.  ONLY: the ctids must be
 * queue.job's own (the updater declines a queue.job that has children,
 * but one may be added while a claim runs).
 */
#define CLAIM_LOCK_SQL(hint_condition, order) \
	"SELECT j.ctid, j.run_at, j.attempts + 1, gen_random_uuid()," \
	"       " CLAIM_NEW_RUN_AT ", " CLAIM_NEW_ERRORS \
	"  FROM ONLY queue.job j" \
	CLAIM_WHERE(hint_condition) \
	" ORDER BY " order \
	" LIMIT $3" \
	" FOR UPDATE SKIP LOCKED"

/*
 * The claim as one statement, for a queue.job the row writer must leave
 * to SQL (a trigger on it, say): the lock in a MATERIALIZED CTE (so it
 * runs once and never hands out more than asked), then the update of
 * exactly those rows, found by id = ANY(ARRAY(...)) so that the generic
 * plan probes the primary key instead of hashing the whole table.  The
 * rows come back in no particular order, with, last, each job's run_at
 * before the claim.
 */
#define CLAIM_SQL(hint_condition, order) \
	"WITH candidate AS MATERIALIZED (" \
	"  SELECT id, run_at FROM queue.job" \
	CLAIM_WHERE(hint_condition) \
	"   ORDER BY " order \
	"   LIMIT $3" \
	"   FOR UPDATE SKIP LOCKED" \
	")" \
	" UPDATE queue.job j" \
	"    SET state = 'running', attempts = j.attempts + 1," \
	"        lease_token = gen_random_uuid(), worker = $4," \
	"        claimed_at = $2," \
	"        run_at = " CLAIM_NEW_RUN_AT "," \
	"        errors = " CLAIM_NEW_ERRORS \
	"  WHERE j.id = ANY (ARRAY(SELECT id FROM candidate))" \
	" RETURNING j.id, j.lease_token, j.payload, j.headers, j.attempts," \
	"           j.max_attempts, j.priority, j.dedup_key, j.created_at," \
	"           j.run_at, (SELECT c.run_at FROM candidate c WHERE c.id = j.id)"

/* Columns of a claimed row that claim() returns; the next one is run_at. */
#define CLAIM_RESULT_COLUMNS	10
#define CLAIM_COL_ID			0
#define CLAIM_COL_PRIORITY		6

/* The columns of queue.job the claim's updater reads and writes. */
enum
{
	JCOL_STATE,
	JCOL_ATTEMPTS,
	JCOL_LEASE_TOKEN,
	JCOL_WORKER,
	JCOL_CLAIMED_AT,
	JCOL_RUN_AT,
	JCOL_ERRORS,
	JCOL_ID,
	JCOL_PAYLOAD,
	JCOL_HEADERS,
	JCOL_MAX_ATTEMPTS,
	JCOL_PRIORITY,
	JCOL_DEDUP_KEY,
	JCOL_CREATED_AT,
	JCOL_COUNT
};

static const QueueColumn claim_columns[JCOL_COUNT] = {
	{"state", TEXTOID},
	{"attempts", INT4OID},
	{"lease_token", UUIDOID},
	{"worker", TEXTOID},
	{"claimed_at", TIMESTAMPTZOID},
	{"run_at", TIMESTAMPTZOID},
	{"errors", JSONBOID},
	{"id", INT8OID},
	{"payload", JSONBOID},
	{"headers", JSONBOID},
	{"max_attempts", INT4OID},
	{"priority", INT4OID},
	{"dedup_key", TEXTOID},
	{"created_at", TIMESTAMPTZOID},
};

/* by column of CLAIM_LOCK_SQL, from the third: the updater's column it sets */
static const int claim_lock_sets[4] = {
	JCOL_ATTEMPTS, JCOL_LEASE_TOKEN, JCOL_RUN_AT, JCOL_ERRORS
};

/* by result column: the updater's column it comes from */
static const int claim_result_sources[CLAIM_RESULT_COLUMNS] = {
	JCOL_ID, JCOL_LEASE_TOKEN, JCOL_PAYLOAD, JCOL_HEADERS, JCOL_ATTEMPTS,
	JCOL_MAX_ATTEMPTS, JCOL_PRIORITY, JCOL_DEDUP_KEY, JCOL_CREATED_AT, JCOL_RUN_AT
};

/* A claimed row and its claim-order key, for claim_emit's sort. */
typedef struct ClaimedRow
{
	Datum		values[CLAIM_RESULT_COLUMNS + 1];
	bool		isnull[CLAIM_RESULT_COLUMNS + 1];
} ClaimedRow;

/* qsort comparator: claim order, priority descending, then run_at, id. */
static int
cmp_claim_order(const void *a, const void *b)
{
	const ClaimedRow *x = a;
	const ClaimedRow *y = b;
	int32		px = DatumGetInt32(x->values[CLAIM_COL_PRIORITY]);
	int32		py = DatumGetInt32(y->values[CLAIM_COL_PRIORITY]);
	TimestampTz rx = DatumGetTimestampTz(x->values[CLAIM_RESULT_COLUMNS]);
	TimestampTz ry = DatumGetTimestampTz(y->values[CLAIM_RESULT_COLUMNS]);
	int64		ix = DatumGetInt64(x->values[CLAIM_COL_ID]);
	int64		iy = DatumGetInt64(y->values[CLAIM_COL_ID]);

	if (px != py)
		return px > py ? -1 : 1;
	if (rx != ry)
		return rx < ry ? -1 : 1;
	return ix < iy ? -1 : (ix > iy ? 1 : 0);
}

/*
 * claim_emit
 *		Adds the n claimed rows to the result in claim order and sets *last
 *		to the claim-order key of the last one.
 */
static void
claim_emit(ClaimedRow *rows, uint64 n, ReturnSetInfo *rsinfo,
		   QueueClaimHint *last)
{
	if (n > 1)
		qsort(rows, n, sizeof(ClaimedRow), cmp_claim_order);
	for (uint64 i = 0; i < n; i++)
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 rows[i].values, rows[i].isnull);
	last->id = DatumGetInt64(rows[n - 1].values[CLAIM_COL_ID]);
	last->priority = DatumGetInt32(rows[n - 1].values[CLAIM_COL_PRIORITY]);
	last->run_at = DatumGetTimestampTz(rows[n - 1].values[CLAIM_RESULT_COLUMNS]);
}

/*
 * claim_run
 *		Runs one form of the claim statement (CLAIM_SQL), adds the claimed
 *		jobs to the result in claim order, and sets *last to the claim-order
 *		key of the last one.  Returns how many it claimed.
 */
static uint64
claim_run(SPIPlanPtr plan, Datum *values, char *nulls, ReturnSetInfo *rsinfo,
		  QueueClaimHint *last)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, 0);
	uint64		n = SPI_processed;
	ClaimedRow *rows;

	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "claim failed: %s", SPI_result_code_string(rc));
	if (n == 0)
		return 0;
	rows = palloc(sizeof(ClaimedRow) * n);
	for (uint64 i = 0; i < n; i++)
		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
						  rows[i].values, rows[i].isnull);
	claim_emit(rows, n, rsinfo, last);
	pfree(rows);
	SPI_freetuptable(SPI_tuptable);
	return n;
}

/*
 * claim_run_updater
 *		Runs one form of the claim's lock (CLAIM_LOCK_SQL) and writes the
 *		claim into each row it locked with the updater w; as claim_run.
 *
 * The rows are written as the UPDATE of CLAIM_SQL writes them (every
 * constraint checked, every index entry made), without the cost of that
 * statement: its executor start and, for each call, the parsing and
 * planning of each CHECK constraint of queue.job again.
 */
static uint64
claim_run_updater(QueueRowWriter *w, SPIPlanPtr plan, Datum *values,
				  char *nulls, ReturnSetInfo *rsinfo, QueueClaimHint *last)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, 0);
	uint64		n = SPI_processed;
	Datum		running;
	ClaimedRow *rows;

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "claim failed: %s", SPI_result_code_string(rc));
	if (n == 0)
		return 0;
	running = CStringGetTextDatum("running");
	rows = palloc(sizeof(ClaimedRow) * n);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	locked = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		ItemPointer tid;
		bool		isnull;

		tid = (ItemPointer) DatumGetPointer(SPI_getbinval(locked, desc, 1, &isnull));
		queue_row_writer_fetch(w, tid);
		queue_row_writer_set(w, JCOL_STATE, running, false);
		queue_row_writer_set(w, JCOL_WORKER, values[3], false);
		queue_row_writer_set(w, JCOL_CLAIMED_AT, values[1], false);
		for (int c = 0; c < lengthof(claim_lock_sets); c++)
		{
			Datum		value = SPI_getbinval(locked, desc, c + 3, &isnull);

			queue_row_writer_set(w, claim_lock_sets[c], value, isnull);
		}
		queue_row_writer_update(w);

		/* copied: the next fetch lets go of this row's buffer */
		for (int c = 0; c < CLAIM_RESULT_COLUMNS; c++)
			rows[i].values[c] = queue_row_writer_get_copy(w, claim_result_sources[c],
														  &rows[i].isnull[c]);
		rows[i].values[CLAIM_RESULT_COLUMNS] = SPI_getbinval(locked, desc, 2, &isnull);
		rows[i].isnull[CLAIM_RESULT_COLUMNS] = false;
	}
	claim_emit(rows, n, rsinfo, last);
	pfree(rows);
	SPI_freetuptable(SPI_tuptable);
	return n;
}

/*
 * claim_plans_begin
 *		Starts a GUC nest level in which the claim's statements are planned
 *		without sequential scans, bitmap scans or sorts; the caller ends it
 *		with AtEOXact_GUC(true, level), and an error's abort ends it too.
 *
 * A claim must read the claim-order index in order and stop after LIMIT
 * rows, whatever the queue holds.  But a queue that keeps up is nearly
 * empty whenever ANALYZE looks at it (reltuples 0 or 1, however many pages
 * its dead rows fill), and with an estimate of one row the planner finds a
 * sequential or bitmap scan followed by a sort just as cheap.  Those read
 * every entry of the queue's range, live or dead, at every claim: the cost
 * of a claim then grows with the backlog and with the dead rows a snapshot
 * held elsewhere keeps, and a queue that falls behind falls further behind
 * (the benchmark's held snapshot: from 3,000 to 51 jobs/s).  The claim's
 * plans are built, and rebuilt after invalidations, only in this level, so
 * the ordered index scan is the one they get.
 */
static int
claim_plans_begin(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_sort", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

/*
 * claim_once
 *		Claims up to batch_size jobs of the queue into the result; returns
 *		how many.
 *
 * With a fresh claim hint, it first scans only past the hint; when that
 * finds fewer jobs than asked, it scans the whole queue for the rest (the
 * jobs it just took are running now, so it cannot take them twice).  The
 * claims are written by the row writer's updater, or, where it declines
 * queue.job, by the claim statement.
 */
static uint64
claim_once(const QueueInfo *queue, int32 batch_size, const char *worker,
		   const Interval *lease, ReturnSetInfo *rsinfo)
{
	static SPIPlanPtr full_plan = NULL;
	static SPIPlanPtr hinted_plan = NULL;
	static SPIPlanPtr full_lock_plan = NULL;
	static SPIPlanPtr hinted_lock_plan = NULL;
	static const Oid argtypes[9] = {INT4OID, TIMESTAMPTZOID, INT4OID, TEXTOID,
	INTERVALOID, INTERVALOID, INT4OID, TIMESTAMPTZOID, INT8OID};
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	QueueClaimHint hint;
	QueueClaimHint last;
	QueueRowWriter *w;
	uint64		n = 0;
	int			plan_level;

	values[0] = Int32GetDatum(queue->id);
	values[1] = TimestampTzGetDatum(now);
	values[2] = Int32GetDatum(batch_size);
	values[3] = CStringGetTextDatum(worker);
	if (lease)
		values[4] = IntervalPGetDatum(lease);
	else
		nulls[4] = 'n';
	values[5] = queue_interval_datum(&queue->lease_timeout);

	w = queue_row_updater_open("job", claim_columns, JCOL_COUNT);
	plan_level = claim_plans_begin();
	if (queue_hint_get(queue->id, &hint))
	{
		values[6] = Int32GetDatum(hint.priority);
		values[7] = TimestampTzGetDatum(hint.run_at);
		values[8] = Int64GetDatum(hint.id);
		if (w != NULL)
			n = claim_run_updater(w, queue_plan(&hinted_lock_plan,
												CLAIM_LOCK_SQL(CLAIM_HINT_CONDITION,
															   CLAIM_HINT_ORDER),
												9, argtypes),
								  values, nulls, rsinfo, &last);
		else
			n = claim_run(queue_plan(&hinted_plan,
									 CLAIM_SQL(CLAIM_HINT_CONDITION, CLAIM_HINT_ORDER),
									 9, argtypes),
						  values, nulls, rsinfo, &last);
		if (n > 0)
			queue_hint_advance(queue->id, &last);
	}
	if (n < (uint64) batch_size)
	{
		QueueClaimHint full_last;
		uint64		more;

		values[2] = Int32GetDatum(batch_size - (int32) n);
		if (w != NULL)
			more = claim_run_updater(w, queue_plan(&full_lock_plan,
												   CLAIM_LOCK_SQL("", CLAIM_FULL_ORDER),
												   6, argtypes),
									 values, nulls, rsinfo, &full_last);
		else
			more = claim_run(queue_plan(&full_plan,
										CLAIM_SQL("", CLAIM_FULL_ORDER),
										6, argtypes),
							 values, nulls, rsinfo, &full_last);
		if (more > 0)
			queue_hint_advance(queue->id, &full_last);
		n += more;
	}
	AtEOXact_GUC(true, plan_level);
	if (w != NULL)
		queue_row_writer_close(w);
	if (n > 0)
		queue_hint_note_claim(queue->id);
	return n;
}

/*
 * next_due
 *		The earliest run_at among the queue's jobs that a claim could take
 *		(pending jobs, and running ones whose lease may expire into another
 *		attempt), or DT_NOEND when there is none.
 *
 * The claim index is ordered by priority first, so a plain min(run_at)
 * would read every entry of the queue; instead this skips from one
 * priority to the next (a recursive "loose index scan") and reads the
 * first entry of each: one probe per distinct priority.
 */
static TimestampTz
next_due(int32 queue_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {INT4OID};
	Datum		values[1];
	Datum		d;
	bool		isnull;
	int			rc;

	values[0] = Int32GetDatum(queue_id);
	rc = SPI_execute_plan(queue_plan(&plan,
									 "WITH RECURSIVE p(priority) AS ("
									 "  (SELECT priority FROM queue.job WHERE queue_id = $1"
									 "      AND state <> 'blocked'"
									 "    ORDER BY priority DESC LIMIT 1)"
									 "  UNION ALL"
									 "  SELECT (SELECT j.priority FROM queue.job j"
									 "           WHERE j.queue_id = $1 AND j.priority < p.priority"
									 "             AND j.state <> 'blocked'"
									 "           ORDER BY j.priority DESC LIMIT 1)"
									 "    FROM p WHERE p.priority IS NOT NULL"
									 ")"
									 " SELECT min((SELECT j.run_at FROM queue.job j"
									 "              WHERE j.queue_id = $1 AND j.priority = p.priority"
									 "                AND j.state <> 'blocked'"
									 "                AND (j.state = 'pending' OR j.attempts < j.max_attempts)"
									 "              ORDER BY j.run_at LIMIT 1))"
									 "   FROM p WHERE p.priority IS NOT NULL",
									 1, argtypes),
						  values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "next due time lookup failed: %s", SPI_result_code_string(rc));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/* The arguments of a claim, checked. */
typedef struct ClaimArgs
{
	char	   *queue_name;
	char	   *worker;
	int32		batch_size;
	Interval   *lease;			/* NULL: the queue's lease_timeout */
} ClaimArgs;

/*
 * claim_args
 *		Reads and checks the claim arguments queue, worker, batch_size and
 *		lease, found at arguments first to first + 3.
 */
static void
claim_args(FunctionCallInfo fcinfo, int first, ClaimArgs *a)
{
	QUEUE_ARG_NOT_NULL(first, "queue name");
	QUEUE_ARG_NOT_NULL(first + 1, "worker");
	QUEUE_ARG_NOT_NULL(first + 2, "batch_size");
	a->queue_name = text_to_cstring(PG_GETARG_TEXT_PP(first));
	a->worker = text_to_cstring(PG_GETARG_TEXT_PP(first + 1));
	a->batch_size = PG_GETARG_INT32(first + 2);
	queue_check_worker_name(a->worker);
	if (a->batch_size < 1 || a->batch_size > queue_max_batch_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and %d, not %d",
						queue_max_batch_size, a->batch_size),
				 errhint("queue.max_batch_size sets the upper bound.")));
	a->lease = NULL;
	if (!PG_ARGISNULL(first + 3))
	{
		a->lease = PG_GETARG_INTERVAL_P(first + 3);
		check_interval(a->lease, "lease", true);
	}
}

/*
 * claim_jobs
 *		Claims up to a->batch_size jobs into the result, waiting up to
 *		wait_ms for them (see queue.claim).
 */
static void
claim_jobs(ReturnSetInfo *rsinfo, const ClaimArgs *a, long wait_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);

	spi_connect();
	for (;;)
	{
		QueueInfo	queue;
		QueueWakeSlot *slot;
		uint64		seen;
		TimestampTz now;
		TimestampTz until;

		queue_lookup(a->queue_name, &queue);
		slot = queue_shared ? queue_wake_slot(queue.id) : NULL;
		seen = slot ? pg_atomic_read_u64(&slot->generation) : 0;

		if (!queue.paused &&
			claim_once(&queue, a->batch_size, a->worker, a->lease, rsinfo) > 0)
			break;

		now = GetCurrentTimestamp();
		if (slot == NULL || now >= deadline)
			break;
		until = Min(deadline, TimestampTzPlusMilliseconds(now, queue_recheck_interval_ms));
		if (!queue.paused)
		{
			/* once: Min() evaluates its arguments twice, and jobs come and go */
			TimestampTz due = next_due(queue.id);

			until = Min(until, due);
		}

		/*
		 * A job that is due but was not claimed is locked by another claim
		 * in flight; its commit announces nothing, so look again shortly
		 * rather than spin.
		 */
		until = Max(until, Min(deadline, TimestampTzPlusMilliseconds(now, MIN_CLAIM_SLEEP_MS)));
		queue_wait_for_wake(slot, seen, TimestampDifferenceMilliseconds(now, until) + 1);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
}

/*
 * queue.claim(queue, worker, batch_size, lease, wait)
 *
 * Returns up to batch_size jobs, in priority (higher first), run_at, id
 * order, each with its lease token.  A paused queue hands out nothing.
 *
 * With a wait, a claim that finds nothing sleeps on its queue's wake-up
 * slot (wake.c) until a commit announces work, the next job falls due, the
 * re-check interval passes, or the wait (capped by queue.max_wait) ends,
 * and then tries again with a new snapshot.  That needs READ COMMITTED: in
 * a transaction-snapshot isolation level the retry could never see new
 * jobs, so waiting there is refused.
 */
Datum
queue_claim(PG_FUNCTION_ARGS)
{
	ClaimArgs	a;
	long		wait_ms = 0;

	claim_args(fcinfo, 0, &a);
	if (!PG_ARGISNULL(4))
	{
		double		seconds = queue_interval_seconds(PG_GETARG_INTERVAL_P(4));

		check_interval(PG_GETARG_INTERVAL_P(4), "wait", false);
		wait_ms = (long) Min(seconds * 1000.0, (double) queue_max_wait_ms);
		if (wait_ms > 0 && IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a claim can wait only in READ COMMITTED transactions"),
					 errdetail("In REPEATABLE READ or SERIALIZABLE the transaction's snapshot would never show new jobs."),
					 errhint("Claim without a wait, or use READ COMMITTED.")));
	}

	InitMaterializedSRF(fcinfo, 0);
	claim_jobs((ReturnSetInfo *) fcinfo->resultinfo, &a, wait_ms);
	return (Datum) 0;
}

/*
 * A job that left the live set, as settle_finished needs it: by FJ_*, its
 * id, queue_id, group_key (NULL unless the queue is ordered), saga_id,
 * saga_step, saga_compensation, attempts, result and error.
 */
enum
{
	FJ_ID,
	FJ_QUEUE_ID,
	FJ_GROUP_KEY,
	FJ_SAGA_ID,
	FJ_SAGA_STEP,
	FJ_SAGA_COMPENSATION,
	FJ_ATTEMPTS,
	FJ_RESULT,
	FJ_ERROR,
	FJ_COUNT
};

typedef struct FinishedJob
{
	Datum		values[FJ_COUNT];
	bool		isnull[FJ_COUNT];
} FinishedJob;

/*
 * finished_from_tuptable
 *		The finished jobs of a statement whose rows start with the FJ_*
 *		columns.
 */
static FinishedJob *
finished_from_tuptable(SPITupleTable *tt)
{
	FinishedJob *jobs = palloc(sizeof(FinishedJob) * (tt->numvals + 1));

	for (uint64 i = 0; i < tt->numvals; i++)
		for (int c = 0; c < FJ_COUNT; c++)
			jobs[i].values[c] = SPI_getbinval(tt->vals[i], tt->tupdesc, c + 1,
											  &jobs[i].isnull[c]);
	return jobs;
}

/*
 * tell_saga
 *		Hands the outcome of a saga step's job to the saga (sagas.sql:
 *		queue._saga_job_settled), in this transaction.
 */
static void
tell_saga(const FinishedJob *job, const char *outcome)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[8] = {INT8OID, INT4OID, BOOLOID, INT8OID, INT4OID,
	TEXTOID, JSONBOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	values[0] = job->values[FJ_SAGA_ID];
	values[1] = job->values[FJ_SAGA_STEP];
	values[2] = job->isnull[FJ_SAGA_COMPENSATION] ? BoolGetDatum(false) :
		job->values[FJ_SAGA_COMPENSATION];
	values[3] = job->values[FJ_ID];
	values[4] = job->values[FJ_ATTEMPTS];
	values[5] = CStringGetTextDatum(outcome);
	values[6] = job->values[FJ_RESULT];
	if (job->isnull[FJ_RESULT])
		nulls[6] = 'n';
	values[7] = job->values[FJ_ERROR];
	if (job->isnull[FJ_ERROR])
		nulls[7] = 'n';
	rc = SPI_execute_plan(queue_plan(&plan,
									 "SELECT queue._saga_job_settled($1, $2, $3, $4, $5, $6, $7, $8)",
									 8, argtypes),
						  values, nulls, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "saga transition failed: %s", SPI_result_code_string(rc));
}

/*
 * saga_step_retrying
 *		A saga step's job goes back to waiting (a retry, a release): its
 *		saga, if unwinding, cancels it instead (queue._saga_step_retrying).
 */
static void
saga_step_retrying(Datum job_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {INT8OID};
	int			rc;

	rc = SPI_execute_plan(queue_plan(&plan, "SELECT queue._saga_step_retrying($1)",
									 1, argtypes),
						  &job_id, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "saga retry check failed: %s", SPI_result_code_string(rc));
}

/*
 * settle_finished
 *		After jobs left the live set: counts them (completed and failed
 *		each, for queue.queue_stats), tells their sagas (saga steps), and
 *		promotes the next job of each of their groups (ordered queues), one
 *		call per queue.
 */
static void
settle_finished(const FinishedJob *jobs, uint64 n, int64 completed, int64 failed)
{
	int32	   *queue_ids = palloc(sizeof(int32) * (n + 1));
	char	  **keys = palloc(sizeof(char *) * (n + 1));
	bool	   *done = palloc0(sizeof(bool) * (n + 1));

	for (uint64 i = 0; i < n; i++)
	{
		queue_ids[i] = DatumGetInt32(jobs[i].values[FJ_QUEUE_ID]);
		keys[i] = jobs[i].isnull[FJ_GROUP_KEY] ? NULL :
			TextDatumGetCString(jobs[i].values[FJ_GROUP_KEY]);
		if (completed || failed)
			queue_count_outcome(queue_ids[i], completed, failed);
		if (!jobs[i].isnull[FJ_SAGA_ID])
			tell_saga(&jobs[i], completed ? "completed" : "dead");
	}

	/* promote per queue: gather the group keys of one queue at a time */
	for (uint64 i = 0; i < n; i++)
	{
		char	  **group = palloc(sizeof(char *) * (n + 1));
		int			ngroup = 0;

		if (done[i])
			continue;
		for (uint64 k = i; k < n; k++)
		{
			if (done[k] || queue_ids[k] != queue_ids[i])
				continue;
			done[k] = true;
			if (keys[k] != NULL)
				group[ngroup++] = keys[k];
		}
		queue_promote_groups(queue_ids[i], group, ngroup);
	}
}

/*
 * The columns of queue.job a completion's deleter (rowwriter.c) reads of
 * the job it deletes.
 */
enum
{
	DCOL_ID,
	DCOL_QUEUE_ID,
	DCOL_LEASE_TOKEN,
	DCOL_PRIORITY,
	DCOL_ATTEMPTS,
	DCOL_MAX_ATTEMPTS,
	DCOL_RETRY_POLICY,
	DCOL_PAYLOAD,
	DCOL_HEADERS,
	DCOL_DEDUP_KEY,
	DCOL_GROUP_KEY,
	DCOL_SAGA_ID,
	DCOL_SAGA_STEP,
	DCOL_SAGA_COMPENSATION,
	DCOL_WORKER,
	DCOL_ERRORS,
	DCOL_CREATED_AT,
	DCOL_COUNT
};

static const QueueColumn done_columns[DCOL_COUNT] = {
	{"id", INT8OID},
	{"queue_id", INT4OID},
	{"lease_token", UUIDOID},
	{"priority", INT4OID},
	{"attempts", INT4OID},
	{"max_attempts", INT4OID},
	{"retry_policy", JSONBOID},
	{"payload", JSONBOID},
	{"headers", JSONBOID},
	{"dedup_key", TEXTOID},
	{"group_key", TEXTOID},
	{"saga_id", INT8OID},
	{"saga_step", INT4OID},
	{"saga_compensation", BOOLOID},
	{"worker", TEXTOID},
	{"errors", JSONBOID},
	{"created_at", TIMESTAMPTZOID},
};

/*
 * The columns of queue.job_archive a completion writes with the row
 * writer, and the deleter's column each comes from (-1: set apart).
 */
enum
{
	ARCOL_ID,
	ARCOL_QUEUE_ID,
	ARCOL_STATE,
	ARCOL_PRIORITY,
	ARCOL_ATTEMPTS,
	ARCOL_MAX_ATTEMPTS,
	ARCOL_RETRY_POLICY,
	ARCOL_PAYLOAD,
	ARCOL_HEADERS,
	ARCOL_DEDUP_KEY,
	ARCOL_GROUP_KEY,
	ARCOL_SAGA_ID,
	ARCOL_SAGA_STEP,
	ARCOL_SAGA_COMPENSATION,
	ARCOL_WORKER,
	ARCOL_RESULT,
	ARCOL_ERRORS,
	ARCOL_CREATED_AT,
	ARCOL_FINISHED_AT,
	ARCOL_COUNT
};

static const QueueColumn archive_columns[ARCOL_COUNT] = {
	{"id", INT8OID},
	{"queue_id", INT4OID},
	{"state", TEXTOID},
	{"priority", INT4OID},
	{"attempts", INT4OID},
	{"max_attempts", INT4OID},
	{"retry_policy", JSONBOID},
	{"payload", JSONBOID},
	{"headers", JSONBOID},
	{"dedup_key", TEXTOID},
	{"group_key", TEXTOID},
	{"saga_id", INT8OID},
	{"saga_step", INT4OID},
	{"saga_compensation", BOOLOID},
	{"worker", TEXTOID},
	{"result", JSONBOID},
	{"errors", JSONBOID},
	{"created_at", TIMESTAMPTZOID},
	{"finished_at", TIMESTAMPTZOID},
};

static const int archive_sources[ARCOL_COUNT] = {
	DCOL_ID, DCOL_QUEUE_ID, -1, DCOL_PRIORITY, DCOL_ATTEMPTS, DCOL_MAX_ATTEMPTS,
	DCOL_RETRY_POLICY, DCOL_PAYLOAD, DCOL_HEADERS, DCOL_DEDUP_KEY, DCOL_GROUP_KEY,
	DCOL_SAGA_ID, DCOL_SAGA_STEP, DCOL_SAGA_COMPENSATION, DCOL_WORKER, -1,
	DCOL_ERRORS, DCOL_CREATED_AT, -1
};

/*
 * complete_rows
 *		Completes the jobs of the batch with the deleter d, writing the
 *		archive rows with the writer w, or raises QU001; as the statement of
 *		complete_batch does, without starting a statement.
 *
 * Each job is deleted if it still carries the caller's token, as "DELETE
 * ... WHERE id = $1 AND lease_token = $2" would (queue_row_writer_delete:
 * in READ COMMITTED a job another transaction re-claimed meanwhile is
 * checked again in its new version, and then carries another token).  As
 * SPI does before a statement, the command counter is advanced and a
 * snapshot taken first, so that the deletes see what this transaction did
 * until now, a claim earlier in the same query included.  (A queue lookup
 * that runs SQL advances the command counter on the way; the batch holds
 * no id twice, so no job is looked for after its own delete.)
 */
static void
complete_rows(QueueRowWriter *d, QueueRowWriter *w, LeaseBatch *b,
			  TimestampTz now)
{
	FinishedJob *jobs = palloc(sizeof(FinishedJob) * b->n);
	Datum		completed = CStringGetTextDatum("completed");
	QueueInfo	queue;

	queue.id = -1;
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	for (int i = 0; i < b->n; i++)
	{
		FinishedJob *job = &jobs[i];
		bool		isnull;
		int32		queue_id;

		if (!queue_row_writer_delete(d, b->ids[i], DCOL_LEASE_TOKEN, b->tokens[i]))
			queue_report_stale_lease(DatumGetInt64(b->ids[i]), b->tokens[i]);
		queue_id = DatumGetInt32(queue_row_writer_get(d, DCOL_QUEUE_ID, &isnull));
		/*
		 * A job whose queue is gone: QU001, as the statement gives (its
		 * DELETE returns only rows joined to their queue); the error rolls
		 * the delete back.
		 */
		if (queue.id != queue_id && !queue_lookup_id(queue_id, &queue))
			queue_report_stale_lease(DatumGetInt64(b->ids[i]), b->tokens[i]);

		/* what settle_finished needs (copied: used after the deleter closes) */
		job->values[FJ_ID] = b->ids[i];
		job->isnull[FJ_ID] = false;
		job->values[FJ_QUEUE_ID] = Int32GetDatum(queue_id);
		job->isnull[FJ_QUEUE_ID] = false;
		job->values[FJ_GROUP_KEY] = queue_row_writer_get_copy(d, DCOL_GROUP_KEY,
															  &job->isnull[FJ_GROUP_KEY]);
		if (!queue.ordered)		/* only an ordered queue promotes */
			job->isnull[FJ_GROUP_KEY] = true;
		job->values[FJ_SAGA_ID] = queue_row_writer_get_copy(d, DCOL_SAGA_ID,
															&job->isnull[FJ_SAGA_ID]);
		job->values[FJ_SAGA_STEP] = queue_row_writer_get_copy(d, DCOL_SAGA_STEP,
															  &job->isnull[FJ_SAGA_STEP]);
		job->values[FJ_SAGA_COMPENSATION] =
			queue_row_writer_get_copy(d, DCOL_SAGA_COMPENSATION,
									  &job->isnull[FJ_SAGA_COMPENSATION]);
		job->values[FJ_ATTEMPTS] = queue_row_writer_get_copy(d, DCOL_ATTEMPTS,
															 &job->isnull[FJ_ATTEMPTS]);
		job->values[FJ_RESULT] = b->extra[i];
		job->isnull[FJ_RESULT] = b->extra_null[i];
		job->values[FJ_ERROR] = (Datum) 0;
		job->isnull[FJ_ERROR] = true;

		if (!queue.keeps_finished)
			continue;
		/* copied: the writer keeps them until it writes its rows */
		for (int c = 0; c < ARCOL_COUNT; c++)
		{
			Datum		value;

			if (archive_sources[c] < 0)
				continue;
			value = queue_row_writer_get_copy(d, archive_sources[c], &isnull);
			queue_row_writer_set(w, c, value, isnull);
		}
		queue_row_writer_set(w, ARCOL_STATE, completed, false);
		queue_row_writer_set(w, ARCOL_RESULT, b->extra[i], b->extra_null[i]);
		queue_row_writer_set(w, ARCOL_FINISHED_AT, TimestampTzGetDatum(now), false);
		queue_row_writer_insert(w);
	}
	PopActiveSnapshot();
	queue_row_writer_close(w);
	queue_row_writer_close(d);
	settle_finished(jobs, b->n, 1, 0);
}

/*
 * complete_batch
 *		Completes every job of the batch (extra: results), or raises QU001.
 *
 * A completed job moves to queue.job_archive with its result, unless its
 * queue's retention is zero, in which case it is simply deleted.  The row
 * writer's deleter deletes it and its writer writes the archive row
 * (complete_rows); where either declines its table (a trigger on it, say),
 * one statement does both, the archive's INSERT in a CTE.
 */
static void
complete_batch(LeaseBatch *b)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[4] = {INT8ARRAYOID, UUIDARRAYOID, JSONBARRAYOID,
	TIMESTAMPTZOID};
	Datum		values[4];
	TimestampTz now = GetCurrentTimestamp();
	QueueRowWriter *d;
	QueueRowWriter *w;
	int			rc;

	for (int i = 0; i < b->n; i++)
	{
		/* detoast first, so the size is true and the array holds plain values */
		if (!b->extra_null[i])
			b->extra[i] = PointerGetDatum(DatumGetJsonbP(b->extra[i]));
		if (!b->extra_null[i] &&
			VARSIZE(DatumGetPointer(b->extra[i])) > (Size) queue_max_payload_bytes)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("result of job %lld is too large",
							(long long) DatumGetInt64(b->ids[i])),
					 errdetail("queue.max_payload_bytes is %d.", queue_max_payload_bytes)));
	}
	if (b->n == 0)
		return;

	spi_connect();

	/* queue.job before queue.job_archive, the order of the statement form */
	d = queue_row_deleter_open("job", done_columns, DCOL_COUNT);
	w = queue_row_writer_open("job_archive", archive_columns, ARCOL_COUNT);
	if (d != NULL && w != NULL)
	{
		complete_rows(d, w, b, now);
		SPI_finish();
		return;
	}
	if (d != NULL)
		queue_row_writer_close(d);
	if (w != NULL)
		queue_row_writer_close(w);

	values[0] = queue_build_array(b->ids, NULL, b->n, INT8OID);
	values[1] = queue_build_array(b->tokens, NULL, b->n, UUIDOID);
	values[2] = queue_build_array(b->extra, b->extra_null, b->n, JSONBOID);
	values[3] = TimestampTzGetDatum(now);
	rc = SPI_execute_plan(queue_plan(&plan,
									 "WITH done AS ("
									 "  DELETE FROM queue.job j"
									 "   USING unnest($1, $2, $3) AS t(id, token, result)"
									 "   WHERE j.id = t.id AND j.lease_token = t.token"
									 "  RETURNING j.*, t.result"
									 "), archived AS ("
									 QUEUE_ARCHIVE_INSERT
									 QUEUE_ARCHIVE_SELECT("'completed'", "d.result", "d.errors", "$4")
									 "    FROM done d JOIN queue.queue q ON q.id = d.queue_id"
									 "   WHERE q.retention > interval '0'"
									 ")"
									 " SELECT d.id, d.queue_id, CASE WHEN q.ordered THEN d.group_key END,"
									 "        d.saga_id, d.saga_step, d.saga_compensation, d.attempts,"
									 "        d.result, NULL::text"
									 "   FROM done d JOIN queue.queue q ON q.id = d.queue_id",
									 4, argtypes),
						  values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "complete failed: %s", SPI_result_code_string(rc));
	check_all_matched(b);
	settle_finished(finished_from_tuptable(SPI_tuptable), SPI_processed, 1, 0);
	SPI_finish();
}

/*
 * queue.complete(job_id, lease_token, result)
 */
Datum
queue_complete(PG_FUNCTION_ARGS)
{
	LeaseBatch	b;

	batch_single(fcinfo, &b);
	if (!PG_ARGISNULL(2))
	{
		b.extra[0] = PG_GETARG_DATUM(2);
		b.extra_null[0] = false;
	}
	complete_batch(&b);
	PG_RETURN_VOID();
}

/*
 * queue.complete_many(job_ids, lease_tokens, results) returns integer
 */
Datum
queue_complete_many(PG_FUNCTION_ARGS)
{
	LeaseBatch	b;

	batch_from_arrays(fcinfo, &b, 2, JSONBOID, "results", false);
	complete_batch(&b);
	PG_RETURN_INT32(b.n);
}

/*
 * queue.complete_and_claim(job_ids, lease_tokens, queue, worker,
 *							batch_size, lease, results)
 *
 * A worker's loop in one round trip: completes the jobs it holds, as
 * complete_many does (all or nothing, QU001 for a stale token), then
 * claims its next ones, as claim does without a wait.  One statement, so
 * one transaction and one commit per turn of the loop instead of two.
 * It never waits: a wait would hold the completions uncommitted while it
 * sleeps.  A worker that gets nothing back calls claim with a wait.
 */
Datum
queue_complete_and_claim(PG_FUNCTION_ARGS)
{
	LeaseBatch	b;
	ClaimArgs	a;

	claim_args(fcinfo, 2, &a);
	batch_from_arrays(fcinfo, &b, 6, JSONBOID, "results", false);
	complete_batch(&b);
	InitMaterializedSRF(fcinfo, 0);
	claim_jobs((ReturnSetInfo *) fcinfo->resultinfo, &a, 0);
	return (Datum) 0;
}

/*
 * fail_batch
 *		Records a failure for every job of the batch (extra: error
 *		messages), or raises QU001; sets dead[i] for the jobs that died.
 *
 * Three statements: lock the rows and read what the decision needs
 * (attempts, the merged retry policy, the previous delay); then, with the
 * delays computed in C, put the retrying jobs back to pending, and move
 * the dead ones to the archive.
 */
static void
fail_batch(LeaseBatch *b, bool permanent, Interval *retry_delay, bool *dead)
{
	static SPIPlanPtr lock_plan = NULL;
	static SPIPlanPtr retry_plan = NULL;
	static SPIPlanPtr dead_plan = NULL;
	static const Oid lock_types[2] = {INT8ARRAYOID, UUIDARRAYOID};
	static const Oid retry_types[5] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID,
	FLOAT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID};
	static const Oid dead_types[3] = {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID};
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[5];
	Datum	   *retry_ids,
			   *retry_at,
			   *retry_delays,
			   *retry_errors,
			   *dead_ids,
			   *dead_errors;
	Datum	   *saga_retries;
	int			nretry = 0,
				ndead = 0,
				nsaga_retries = 0;
	int			rc;

	if (b->n == 0)
		return;
	for (int i = 0; i < b->n; i++)
		if (VARSIZE_ANY_EXHDR(DatumGetPointer(b->extra[i])) > (Size) queue_max_payload_bytes)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("error message of job %lld is too long",
							(long long) DatumGetInt64(b->ids[i])),
					 errdetail("queue.max_payload_bytes is %d.", queue_max_payload_bytes)));

	retry_ids = palloc(sizeof(Datum) * b->n);
	retry_at = palloc(sizeof(Datum) * b->n);
	retry_delays = palloc(sizeof(Datum) * b->n);
	retry_errors = palloc(sizeof(Datum) * b->n);
	dead_ids = palloc(sizeof(Datum) * b->n);
	dead_errors = palloc(sizeof(Datum) * b->n);
	saga_retries = palloc(sizeof(Datum) * b->n);

	spi_connect();
	values[0] = queue_build_array(b->ids, NULL, b->n, INT8OID);
	values[1] = queue_build_array(b->tokens, NULL, b->n, UUIDOID);
	rc = SPI_execute_plan(queue_plan(&lock_plan,
									 "SELECT j.id, j.attempts, j.max_attempts,"
									 "       q.retry_policy || coalesce(j.retry_policy, '{}'),"
									 "       j.last_delay, j.queue_id, j.deadline_at, j.saga_id"
									 "  FROM unnest($1, $2) AS t(id, token)"
									 "  JOIN queue.job j ON j.id = t.id AND j.lease_token = t.token"
									 "  JOIN queue.queue q ON q.id = j.queue_id"
									 "   FOR UPDATE OF j",
									 2, lock_types),
						  values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "fail lock failed: %s", SPI_result_code_string(rc));
	check_all_matched(b);

	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int32		attempts = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		int32		max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		Jsonb	   *policy = DatumGetJsonbP(SPI_getbinval(tup, desc, 4, &isnull));
		Datum		last = SPI_getbinval(tup, desc, 5, &isnull);
		double		previous = isnull ? -1 : DatumGetFloat8(last);
		int32		queue_id = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		Datum		deadline = SPI_getbinval(tup, desc, 7, &isnull);
		bool		has_deadline = !isnull;
		bool		no_saga;
		double		delay = 0;
		TimestampTz next_run = 0;
		int			i;

		(void) SPI_getbinval(tup, desc, 8, &no_saga);	/* saga_id */

		for (i = 0; i < b->n; i++)
			if (DatumGetInt64(b->ids[i]) == id)
				break;
		Assert(i < b->n);
		queue_count_outcome(queue_id, 0, 1);

		if (!permanent && attempts < max_attempts)
		{
			delay = retry_delay ? queue_interval_seconds(retry_delay)
				: queue_compute_delay(policy, attempts, previous);
			next_run = timestamp_plus(now, queue_seconds_interval(delay));
		}

		/* dies: for good, or out of attempts, or its next try past its deadline */
		if (permanent || attempts >= max_attempts ||
			(has_deadline && next_run > DatumGetTimestampTz(deadline)))
		{
			dead[i] = true;
			dead_ids[ndead] = b->ids[i];
			dead_errors[ndead] = b->extra[i];
			ndead++;
		}
		else
		{
			dead[i] = false;
			queue_note_wake(queue_id);
			queue_hint_note(queue_id, PG_INT32_MAX, DT_NOBEGIN);
			if (!no_saga)
				saga_retries[nsaga_retries++] = b->ids[i];
			retry_ids[nretry] = b->ids[i];
			retry_at[nretry] = TimestampTzGetDatum(next_run);
			retry_delays[nretry] = Float8GetDatum(delay);
			retry_errors[nretry] = b->extra[i];
			nretry++;
		}
	}

	if (nretry > 0)
	{
		values[0] = queue_build_array(retry_ids, NULL, nretry, INT8OID);
		values[1] = queue_build_array(retry_at, NULL, nretry, TIMESTAMPTZOID);
		values[2] = queue_build_array(retry_delays, NULL, nretry, FLOAT8OID);
		values[3] = queue_build_array(retry_errors, NULL, nretry, TEXTOID);
		values[4] = TimestampTzGetDatum(now);
		rc = SPI_execute_plan(queue_plan(&retry_plan,
										 "UPDATE queue.job j"
										 "   SET state = 'pending', lease_token = NULL,"
										 "       run_at = t.run_at, last_delay = t.delay,"
										 "       errors = j.errors || jsonb_build_array(jsonb_build_object("
										 "         'attempt', j.attempts, 'at', $5::timestamptz,"
										 "         'worker', j.worker, 'error', t.error))"
										 "  FROM unnest($1, $2, $3, $4) AS t(id, run_at, delay, error)"
										 " WHERE j.id = t.id",
										 5, retry_types),
							  values, NULL, false, 0);
		if (rc != SPI_OK_UPDATE || SPI_processed != (uint64) nretry)
			elog(ERROR, "fail retry update failed: %s", SPI_result_code_string(rc));
	}

	/* a saga that is unwinding stops its steps' retries (sagas.sql) */
	for (int k = 0; k < nsaga_retries; k++)
		saga_step_retrying(saga_retries[k]);

	if (ndead > 0)
	{
		values[0] = queue_build_array(dead_ids, NULL, ndead, INT8OID);
		values[1] = queue_build_array(dead_errors, NULL, ndead, TEXTOID);
		values[2] = TimestampTzGetDatum(now);
		rc = SPI_execute_plan(queue_plan(&dead_plan,
										 "WITH d AS ("
										 "  DELETE FROM queue.job j"
										 "   USING unnest($1, $2) AS t(id, error)"
										 "   WHERE j.id = t.id"
										 "  RETURNING j.*, t.error AS new_error"
										 "), archived AS ("
										 QUEUE_ARCHIVE_INSERT
										 QUEUE_ARCHIVE_SELECT("'dead'", "NULL",
															  "d.errors || jsonb_build_array(jsonb_build_object("
															  "'attempt', d.attempts, 'at', $3::timestamptz,"
															  "'worker', d.worker, 'error', d.new_error))",
															  "$3")
										 "   FROM d JOIN queue.queue q ON q.id = d.queue_id"
										 "  WHERE q.dead_retention > interval '0'"
										 ")"
										 " SELECT d.id, d.queue_id, CASE WHEN q.ordered THEN d.group_key END,"
										 "        d.saga_id, d.saga_step, d.saga_compensation, d.attempts,"
										 "        NULL::jsonb, d.new_error"
										 "   FROM d JOIN queue.queue q ON q.id = d.queue_id",
										 3, dead_types),
							  values, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "fail dead move failed: %s", SPI_result_code_string(rc));
		settle_finished(finished_from_tuptable(SPI_tuptable), SPI_processed, 0, 0);
	}
	SPI_finish();
}

/*
 * fail_options
 *		Reads fail's permanent and retry_delay arguments (3 and 4).
 */
static void
fail_options(FunctionCallInfo fcinfo, bool *permanent, Interval **retry_delay)
{
	QUEUE_ARG_NOT_NULL(3, "permanent");
	*permanent = PG_GETARG_BOOL(3);
	*retry_delay = NULL;
	if (!PG_ARGISNULL(4))
	{
		*retry_delay = PG_GETARG_INTERVAL_P(4);
		check_interval(*retry_delay, "retry_delay", false);
	}
}

/*
 * queue.fail(job_id, lease_token, error, permanent, retry_delay) returns
 * 'retrying' or 'dead'
 */
Datum
queue_fail(PG_FUNCTION_ARGS)
{
	LeaseBatch	b;
	bool		permanent;
	Interval   *retry_delay;
	bool		dead;

	batch_single(fcinfo, &b);
	QUEUE_ARG_NOT_NULL(2, "error");
	b.extra[0] = PointerGetDatum(PG_GETARG_TEXT_PP(2));
	b.extra_null[0] = false;
	fail_options(fcinfo, &permanent, &retry_delay);
	fail_batch(&b, permanent, retry_delay, &dead);
	PG_RETURN_TEXT_P(cstring_to_text(dead ? "dead" : "retrying"));
}

/*
 * queue.fail_many(job_ids, lease_tokens, errors, permanent, retry_delay)
 * returns table (job_id, state), one row per job in the given order
 */
Datum
queue_fail_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LeaseBatch	b;
	bool		permanent;
	Interval   *retry_delay;
	bool	   *dead;

	batch_from_arrays(fcinfo, &b, 2, TEXTOID, "errors", true);
	fail_options(fcinfo, &permanent, &retry_delay);
	InitMaterializedSRF(fcinfo, 0);
	dead = palloc0(sizeof(bool) * Max(b.n, 1));
	fail_batch(&b, permanent, retry_delay, dead);

	for (int i = 0; i < b.n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = b.ids[i];
		values[1] = CStringGetTextDatum(dead[i] ? "dead" : "retrying");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * queue.extend(job_id, lease_token, lease) returns the new expiry
 *
 * The lease runs for the given time (or the queue's lease_timeout) from
 * now; a current token past its expiry may still extend.
 */
Datum
queue_extend(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[4] = {INT8OID, UUIDOID, TIMESTAMPTZOID, INTERVALOID};
	LeaseBatch	b;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	TimestampTz expiry;
	bool		isnull;
	int			rc;

	batch_single(fcinfo, &b);
	if (PG_ARGISNULL(2))
		nulls[3] = 'n';
	else
	{
		check_interval(PG_GETARG_INTERVAL_P(2), "lease", true);
		values[3] = PG_GETARG_DATUM(2);
	}
	values[0] = b.ids[0];
	values[1] = b.tokens[0];
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());

	spi_connect();
	rc = SPI_execute_plan(queue_plan(&plan,
									 "UPDATE queue.job j SET run_at = $3 + coalesce($4, j.lease_timeout, q.lease_timeout)"
									 "  FROM queue.queue q"
									 " WHERE j.id = $1 AND j.lease_token = $2 AND q.id = j.queue_id"
									 " RETURNING j.id, j.run_at",
									 4, argtypes),
						  values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "extend failed: %s", SPI_result_code_string(rc));
	check_all_matched(&b);
	expiry = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
	PG_RETURN_TIMESTAMPTZ(expiry);
}

/*
 * queue.release(job_id, lease_token, delay)
 *
 * Gives the job back without spending an attempt (a worker shutting down):
 * it is claimable again after delay (default at once).
 */
Datum
queue_release(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[3] = {INT8OID, UUIDOID, TIMESTAMPTZOID};
	LeaseBatch	b;
	Datum		values[3];
	TimestampTz now = GetCurrentTimestamp();
	int			rc;

	batch_single(fcinfo, &b);
	if (!PG_ARGISNULL(2))
	{
		check_interval(PG_GETARG_INTERVAL_P(2), "delay", false);
		now = timestamp_plus(now, PG_GETARG_INTERVAL_P(2));
	}
	values[0] = b.ids[0];
	values[1] = b.tokens[0];
	values[2] = TimestampTzGetDatum(now);

	spi_connect();
	rc = SPI_execute_plan(queue_plan(&plan,
									 "UPDATE queue.job SET state = 'pending', lease_token = NULL,"
									 "       attempts = attempts - 1, run_at = $3"
									 " WHERE id = $1 AND lease_token = $2"
									 " RETURNING id, queue_id, saga_id",
									 3, argtypes),
						  values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "release failed: %s", SPI_result_code_string(rc));
	check_all_matched(&b);
	{
		bool		isnull;
		int32		queue_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 2, &isnull));

		(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		queue_note_wake(queue_id);
		queue_hint_note(queue_id, PG_INT32_MAX, DT_NOBEGIN);

		/* a saga that is unwinding takes no released step back (sagas.sql) */
		if (!isnull)
			saga_step_retrying(b.ids[0]);
	}
	SPI_finish();
	PG_RETURN_VOID();
}
