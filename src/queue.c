/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  Module entry point of the queue extension, and the helpers every
 *	  hot-path call shares: cached plans, queue lookup, the enqueue lock.
 *
 * The extension turns PostgreSQL into a job queue.  Its words:
 *
 *	job			a unit of work: a JSON payload, optional headers, a priority,
 *				a time from which it may run, and a policy for failures.
 *	attempt		one run of a job by a worker; a claim starts one.
 *	lease		the time a worker may hold a claimed job; when it runs out
 *				without the job being settled, the job may be claimed again,
 *				and the attempt that held it counts as spent.
 *	lease token	the random token a claim hands out.  Settling a job
 *				(complete, fail, extend, release) needs the current token;
 *				a stale one is refused with SQLSTATE QU001 (fencing).
 *	dead letter	a job that failed for good (attempts exhausted, or a
 *				permanent failure); kept with its error history and
 *				redrivable into its queue.
 *
 * Layout of the C code:
 *	queue.c		this file: _PG_init, plan cache, queue lookup and its cache
 *	locks.c		the extension's own heavyweight locks (names, groups, keys)
 *	guc.c		the queue.* settings
 *	names.c		validation of queue and worker names
 *	backoff.c	retry policies and the delay they give
 *	enqueue.c	enqueue, enqueue_many and enqueue_payloads
 *	rowwriter.c	writing rows without an INSERT, UPDATE or DELETE statement
 *				(enqueue's, the claim's and completion's)
 *	groups.c	ordered queues: promotion of a group's next job
 *	outbox.c	the transactional outbox: publish and the relay
 *	lease.c		claim, complete, fail, extend, release (single and batch),
 *				and the waiting claim
 *	shmem.c		shared memory: wake-up slots, worker status board
 *	wake.c		waking waiting claims at commit
 *	stats.c		throughput counters; monitoring functions
 *	worker.c	the launcher and the per-database background workers
 *
 * The hot path runs SQL through SPI plans prepared once per backend and
 * kept (SPI_keepplan).  A kept plan stores its parse tree, so it is
 * re-planned after DROP/CREATE EXTENSION and keeps working.
 *
 * The library must be preloaded (shared_preload_libraries): it places
 * wake-up slots and counters in shared memory and registers the
 * background launcher, which only the postmaster can do.
 *
 * IDENTIFICATION
 *	  src/queue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "queue.h"

PG_MODULE_MAGIC;

void		_PG_init(void);


/*
 * Module load: refuse unless preloaded (except under pg_upgrade), then
 * define the settings.
 */
void
_PG_init(void)
{
	/*
	 * pg_upgrade checks that libraries load with a plain LOAD in a server in
	 * binary-upgrade mode; there is nothing for us to do there.
	 */
	if (IsBinaryUpgrade)
		return;

	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("queue must be loaded via shared_preload_libraries"),
				 errhint("Add queue to shared_preload_libraries in postgresql.conf and restart the server.")));

	queue_define_gucs();
	queue_shmem_init();
	queue_register_launcher();
}

/*
 * queue_plan
 *		Returns the kept plan for sql, preparing it on first use.
 *
 * Must be called inside SPI_connect.  The plan outlives the call (it is
 * kept in CacheMemoryContext by SPI_keepplan), so *cache is a static of
 * the caller.  It is always the generic plan: the plan cache would
 * otherwise keep re-planning statements whose custom plans look cheaper
 * (a LIMIT or a time bound given as a parameter), and planning costs more
 * than these statements take to run.  Every statement is written so that
 * its generic plan probes indexes (see the claim).
 */
SPIPlanPtr
queue_plan(SPIPlanPtr *cache, const char *sql, int nargs, const Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, (Oid *) argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/*
 * The queue lookup cache.
 *
 * Every enqueue and claim starts by looking its queue up by name; an SPI
 * query for that costs as much as the rest of a one-job enqueue.  So each
 * backend keeps the rows it has read, and PostgreSQL's own invalidation
 * keeps them true: a trigger on queue.queue (queue_cache_invalidate_trigger)
 * queues a relcache invalidation of that table with every change, which
 * other backends receive when the changing transaction commits (and this
 * one at its next command, or at its abort, so it never trusts a row it
 * rolled back).  A commit sends its invalidations before it releases its
 * locks, so the enqueue that waited for drop_queue's name lock sees the
 * drop once it has accepted the pending invalidations, as it does before
 * every use of the cache.
 *
 * A commit sends its invalidations after its commit callbacks have run,
 * and those wake the waiting claims (wake.c): a claim woken by
 * resume_queue could find the queue still paused in its cache and sleep
 * on.  So a paused queue is never served from the cache: paused queues
 * are off the hot path, and their claims read the row afresh.  Any other
 * call that starts once the changing transaction's COMMIT has returned
 * sees the change.
 *
 * Filling the cache can itself accept invalidations (the catalog lookups
 * and the relation_open of queue_cache_store), after the row was read;
 * the generation counter tells, and such a row is used but not kept.
 * Transactions with a transaction snapshot (REPEATABLE READ, SERIALIZABLE)
 * bypass the cache, so they see the queue as their snapshot does, exactly
 * as before.
 *
 * The triggers are a row trigger for INSERT, UPDATE and DELETE (logical
 * replication's apply fires row triggers only) and a statement trigger
 * for TRUNCATE, both enabled ALWAYS; without both, nothing is cached.
 */
typedef struct QueueCacheEntry
{
	char		name[QUEUE_NAME_MAXLEN + 1];	/* hash key */
	QueueInfo	info;
} QueueCacheEntry;

static HTAB *queue_cache = NULL;
static Oid	queue_cache_relid = InvalidOid; /* queue.queue, once known */
static uint64 queue_cache_generation = 0;	/* bumped at each invalidation */

/*
 * queue_cache_callback
 *		Relcache invalidation callback: forgets every cached queue when
 *		queue.queue (or the whole relcache) is invalidated.
 */
static void
queue_cache_callback(Datum arg, Oid relid)
{
	if (relid != InvalidOid && OidIsValid(queue_cache_relid) &&
		relid != queue_cache_relid)
		return;
	queue_cache_generation++;
	if (queue_cache != NULL)
	{
		hash_destroy(queue_cache);
		queue_cache = NULL;
	}
	/* found again at the next store: DROP EXTENSION may be why we are here */
	queue_cache_relid = InvalidOid;
}

/*
 * queue_cache_accept_invalidations
 *		Brings the cache up to date before a lookup: registers its callback
 *		on first use, and takes in the invalidations that have arrived.
 */
static void
queue_cache_accept_invalidations(void)
{
	static bool registered = false;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(queue_cache_callback, (Datum) 0);
		registered = true;
	}
	AcceptInvalidationMessages();
}

/*
 * queue_cache_lookup
 *		Fills *info from the cache and returns true, or returns false.
 */
static bool
queue_cache_lookup(const char *name, QueueInfo *info)
{
	QueueCacheEntry *entry;

	queue_cache_accept_invalidations();
	if (queue_cache == NULL || strlen(name) > QUEUE_NAME_MAXLEN)
		return false;
	entry = hash_search(queue_cache, name, HASH_FIND, NULL);
	if (entry == NULL)
		return false;
	*info = entry->info;
	return true;
}

/*
 * queue_cache_lookup_id
 *		queue_cache_lookup by the queue's id: a walk over the cached queues
 *		(those this backend has used since the last change to any queue).
 */
static bool
queue_cache_lookup_id(int32 id, QueueInfo *info)
{
	HASH_SEQ_STATUS status;
	QueueCacheEntry *entry;

	queue_cache_accept_invalidations();
	if (queue_cache == NULL)
		return false;
	hash_seq_init(&status, queue_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->info.id == id)
		{
			hash_seq_term(&status);
			*info = entry->info;
			return true;
		}
	}
	return false;
}

/*
 * queue_cache_trigger_enabled
 *		Whether queue.queue has both of its triggers, queue_changed (rows)
 *		and queue_truncated, enabled ALWAYS.  Without them (a schema of
 *		0.1.0 not yet updated, a trigger disabled, or enabled for origin
 *		sessions only, so that it would miss changes made under
 *		session_replication_role = replica) a change to a queue might not
 *		reach the caches, so nothing is cached.  Adding, dropping or
 *		altering a trigger invalidates queue.queue, which empties the cache,
 *		so the answer is asked again then.
 */
static bool
queue_cache_trigger_enabled(void)
{
	Relation	rel = try_relation_open(queue_cache_relid, AccessShareLock);
	int			found = 0;

	if (rel == NULL)
		return false;
	if (rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *t = &rel->trigdesc->triggers[i];

			if (t->tgenabled == TRIGGER_FIRES_ALWAYS &&
				(strcmp(t->tgname, "queue_changed") == 0 ||
				 strcmp(t->tgname, "queue_truncated") == 0))
				found++;
		}
	}
	relation_close(rel, AccessShareLock);
	return found == 2;
}

/*
 * queue_cache_store
 *		Keeps a row read from queue.queue, unless the queue is paused (see
 *		above) or an invalidation arrived since the generation the reader
 *		saw before its query.
 */
static void
queue_cache_store(const char *name, const QueueInfo *info, uint64 generation)
{
	QueueCacheEntry *entry;

	if (info->paused || strlen(name) > QUEUE_NAME_MAXLEN)
		return;
	if (!OidIsValid(queue_cache_relid))
	{
		Oid			nsp = get_namespace_oid("queue", true);

		if (!OidIsValid(nsp))
			return;
		queue_cache_relid = get_relname_relid("queue", nsp);
		if (!OidIsValid(queue_cache_relid))
			return;
	}
	if (queue_cache == NULL)
	{
		HASHCTL		ctl;

		if (!queue_cache_trigger_enabled())
			return;
		ctl.keysize = QUEUE_NAME_MAXLEN + 1;
		ctl.entrysize = sizeof(QueueCacheEntry);
		ctl.hcxt = CacheMemoryContext;
		queue_cache = hash_create("queue lookup cache", 16, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	/* last: the trigger check above may have accepted invalidations */
	if (generation != queue_cache_generation || queue_cache == NULL)
		return;
	entry = hash_search(queue_cache, name, HASH_ENTER, NULL);
	entry->info = *info;
}

/*
 * queue_cache_invalidate_trigger
 *		Trigger on queue.queue (per row, and per statement for TRUNCATE):
 *		every change to a queue reaches the lookup caches of all backends
 *		at commit.  Repeated invalidations of one table in a transaction
 *		are merged, so a row trigger costs no more than one per statement.
 */
PG_FUNCTION_INFO_V1(queue_cache_invalidate_trigger);

Datum
queue_cache_invalidate_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("queue._queue_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * The columns of queue.queue a QueueInfo holds, then the queue's name, as
 * queue_read reads them.
 */
#define QUEUE_INFO_COLUMNS \
	"id, paused, max_attempts, lease_timeout, ordered, retention > interval '0', name"

/*
 * queue_read
 *		Runs plan (a lookup of one queue.queue row by key, its columns
 *		QUEUE_INFO_COLUMNS), fills *info from the row and returns true, or
 *		returns false when there is none.  With use_cache, keeps the row
 *		(see queue_cache_store).
 */
static bool
queue_read(SPIPlanPtr plan, Datum key, QueueInfo *info, bool use_cache,
		   uint64 generation)
{
	int			rc = SPI_execute_plan(plan, &key, NULL, false, 1);
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "queue lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	info->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	info->paused = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	info->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	info->lease_timeout = *DatumGetIntervalP(SPI_getbinval(tup, desc, 4, &isnull));
	info->ordered = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
	info->keeps_finished = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
	if (use_cache)
		queue_cache_store(TextDatumGetCString(SPI_getbinval(tup, desc, 7, &isnull)),
						  info, generation);
	return true;
}

/*
 * queue_lookup_if_exists
 *		Fills *info for the named queue and returns true, or returns false
 *		when there is none.
 *
 * Must be called inside SPI_connect.  The query runs with read_only false:
 * in READ COMMITTED it takes a new snapshot: after waiting for the name
 * lock (locks.c), the lookup must see a drop_queue that committed
 * meanwhile.  Outside a transaction snapshot, rows come from the cache
 * above when they can.
 */
bool
queue_lookup_if_exists(const char *name, QueueInfo *info)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {TEXTOID};
	bool		use_cache = !IsolationUsesXactSnapshot();
	uint64		generation;

	if (use_cache && queue_cache_lookup(name, info))
		return true;
	generation = queue_cache_generation;
	return queue_read(queue_plan(&plan,
								 "SELECT " QUEUE_INFO_COLUMNS
								 "  FROM queue.queue WHERE name = $1",
								 1, argtypes),
					  CStringGetTextDatum(name), info, use_cache, generation);
}

/*
 * queue_lookup_id
 *		Fills *info for the queue of the given id and returns true, or
 *		returns false when there is none.  Must be called inside
 *		SPI_connect; as queue_lookup_if_exists, from the cache when it can.
 */
bool
queue_lookup_id(int32 id, QueueInfo *info)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[1] = {INT4OID};
	bool		use_cache = !IsolationUsesXactSnapshot();
	uint64		generation;

	if (use_cache && queue_cache_lookup_id(id, info))
		return true;
	generation = queue_cache_generation;
	return queue_read(queue_plan(&plan,
								 "SELECT " QUEUE_INFO_COLUMNS
								 "  FROM queue.queue WHERE id = $1",
								 1, argtypes),
					  Int32GetDatum(id), info, use_cache, generation);
}

/*
 * queue_lookup
 *		Fills *info for the named queue, or raises "queue does not exist".
 */
void
queue_lookup(const char *name, QueueInfo *info)
{
	if (!queue_lookup_if_exists(name, info))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("queue \"%s\" does not exist", name),
				 errhint("Create it with queue.create_queue().")));
}

/*
 * queue_interval_datum
 *		A palloc'd copy of *iv as a Datum (for SPI arguments).
 */
Datum
queue_interval_datum(const Interval *iv)
{
	Interval   *copy = palloc(sizeof(Interval));

	*copy = *iv;
	return IntervalPGetDatum(copy);
}

/*
 * queue_interval_seconds
 *		An interval's length in seconds, a month counting 30 days (as
 *		EXTRACT(epoch FROM interval) does).
 */
double
queue_interval_seconds(const Interval *iv)
{
	return (iv->time + (iv->day + iv->month * (double) DAYS_PER_MONTH) *
			(double) USECS_PER_DAY) / USECS_PER_SEC;
}

/*
 * queue_seconds_interval
 *		A palloc'd interval of the given seconds, rounded to microseconds.
 */
Interval *
queue_seconds_interval(double seconds)
{
	Interval   *iv = palloc0(sizeof(Interval));
	double		usecs = seconds * USECS_PER_SEC;

	if (isnan(usecs) || usecs >= (double) PG_INT64_MAX || usecs <= (double) PG_INT64_MIN)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("interval out of range"),
				 errdetail("%g seconds cannot be represented as an interval.", seconds)));
	iv->time = (int64) llround(usecs);
	return iv;
}

/*
 * queue_build_array
 *		A one-dimensional array of n datums of elemtype (nulls may be NULL),
 *		as an SPI argument.
 */
Datum
queue_build_array(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1];
	int			lbs[1];

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	dims[0] = n;
	lbs[0] = 1;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval, typalign));
}

/*
 * queue_unpack_array
 *		The elements of a one-dimensional array argument; nulls are refused
 *		unless nulls_out is given.
 */
int
queue_unpack_array(ArrayType *arr, Oid elemtype, const char *what,
				   Datum **elems, bool **nulls_out)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, elems, &nulls, &n);
	if (nulls_out)
		*nulls_out = nulls;
	else
	{
		for (int i = 0; i < n; i++)
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s must not contain nulls", what)));
	}
	return n;
}

/*
 * batch_error_callback
 *		Error context of a batch call (enqueue_many, enqueue_payloads,
 *		publish_many): which element was being read.  arg is a
 *		QueueBatchContext.
 */
static void
batch_error_callback(void *arg)
{
	QueueBatchContext *ctx = (QueueBatchContext *) arg;

	if (ctx->index >= 0)
		errcontext("%s %d of the batch (counting from 1)", ctx->what, ctx->index + 1);
}

/*
 * queue_batch_context_push
 *		Starts naming the element of a batch that an error is about: the
 *		caller sets ctx->index while it reads element index (from 0), and
 *		pops the context when it is done reading.
 */
void
queue_batch_context_push(QueueBatchContext *ctx, const char *what)
{
	ctx->what = what;
	ctx->index = -1;
	ctx->callback.callback = batch_error_callback;
	ctx->callback.arg = ctx;
	ctx->callback.previous = error_context_stack;
	error_context_stack = &ctx->callback;
}

/*
 * queue_batch_context_pop
 *		Ends what queue_batch_context_push started.
 */
void
queue_batch_context_pop(QueueBatchContext *ctx)
{
	Assert(error_context_stack == &ctx->callback);
	error_context_stack = ctx->callback.previous;
}

/*
 * queue_batch_key
 *		The position of name among keys, the keys an element of a batch call
 *		may have.  Any other name raises "unknown <what> key", whatever its
 *		value (a misspelt key is never taken for one not given), with the
 *		keys in the hint.
 */
int
queue_batch_key(const char *what, const char *name, const char *const *keys,
				int nkeys)
{
	StringInfoData hint;

	for (int i = 0; i < nkeys; i++)
	{
		if (strcmp(name, keys[i]) == 0)
			return i;
	}

	initStringInfo(&hint);
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&hint, "%s%s", i == 0 ? "" : i == nkeys - 1 ? " and " : ", ",
						 keys[i]);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown %s key \"%s\"", what, name),
			 errhint("The keys are %s.", hint.data)));
	pg_unreachable();
}
