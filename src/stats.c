/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Throughput counters per queue in shared memory, and the monitoring
 *	  functions behind the views queue.queue_stats and queue.workers.
 *
 * Counting completions and failures in a table would put a hot, heavily
 * updated row on the hot path (and bloat it under any long snapshot), so
 * they are kept in shared memory instead: a hash table keyed by (database
 * OID, queue id) whose entries hold 60 one-second buckets of completed and
 * failed jobs.  A backend adds up its transaction's counts locally and
 * applies them when the transaction commits (a rolled-back completion
 * never counts), from the same commit callback that wakes waiting claims.
 * The figures are exact for the last minute since the server started;
 * they start again from zero after a restart and are not kept on a
 * standby.  When the table is full (queue.wake_slots entries), further
 * queues are not counted.  A savepoint rolled back takes its counts back.
 *
 * Locking: the hash table is guarded by the lock "queue stats" (shared
 * to look an entry up, exclusive to add or remove one); an entry's
 * buckets by the entry's spinlock.
 *
 * IDENTIFICATION
 *	  src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "queue.h"

PG_FUNCTION_INFO_V1(queue_throughput);
PG_FUNCTION_INFO_V1(queue_worker_status);

#define STATS_BUCKETS	60

typedef struct StatsKey
{
	Oid			dboid;
	int32		queue_id;
} StatsKey;

typedef struct StatsEntry
{
	StatsKey	key;
	slock_t		mutex;
	int64		second[STATS_BUCKETS];	/* which second a bucket counts */
	int64		completed[STATS_BUCKETS];
	int64		failed[STATS_BUCKETS];
	int64		stale;			/* refused completions (saga definitions) */
} StatsEntry;

/*
 * A transaction's pending changes to the counters, applied at commit in
 * the order they were made: counts to add, or a reset (drop_queue, CREATE
 * EXTENSION).  Each remembers the subtransaction that made it, so that a
 * rolled-back savepoint takes its changes back (queue_stats_at_subxact).
 * The list lives in TopTransactionContext, which outlives the commit
 * callback.
 */
typedef struct PendingChange
{
	int32		queue_id;
	bool		reset;			/* a reset; queue_id RESET_ALL: every queue */
	int			nest_level;		/* subtransaction that made the change */
	int64		completed;
	int64		failed;
} PendingChange;

#define RESET_ALL	(-1)

static HTAB *stats_hash = NULL;
static LWLock *stats_lock = NULL;
static List *pending = NIL;

/*
 * queue_stats_shmem_size / queue_stats_shmem_startup
 *		Sizing and creation of the hash table; called from shmem.c.
 */
Size
queue_stats_shmem_size(void)
{
	return hash_estimate_size(queue_wake_slots, sizeof(StatsEntry));
}

void
queue_stats_shmem_startup(void)
{
	HASHCTL		info;

	stats_lock = &(GetNamedLWLockTranche("queue stats"))->lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(StatsKey);
	info.entrysize = sizeof(StatsEntry);
	stats_hash = ShmemInitHash("queue stats", queue_wake_slots, queue_wake_slots,
							   &info, HASH_ELEM | HASH_BLOBS);
}

/*
 * add_change
 *		Appends a pending change, or merges a count into the last one when
 *		it is a count of the same queue and subtransaction.
 */
static void
add_change(int32 queue_id, bool reset, int64 completed, int64 failed)
{
	int			level = GetCurrentTransactionNestLevel();
	PendingChange *last = pending ? (PendingChange *) llast(pending) : NULL;
	MemoryContext old;

	queue_register_xact_callback();
	if (last != NULL && !reset && !last->reset && last->queue_id == queue_id &&
		last->nest_level == level)
	{
		last->completed += completed;
		last->failed += failed;
		return;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	last = palloc(sizeof(PendingChange));
	last->queue_id = queue_id;
	last->reset = reset;
	last->nest_level = level;
	last->completed = completed;
	last->failed = failed;
	pending = lappend(pending, last);
	MemoryContextSwitchTo(old);
}

/*
 * queue_count_outcome
 *		Counts completions or failures of a queue of this database, to be
 *		applied when the transaction commits.
 */
void
queue_count_outcome(int32 queue_id, int64 completed, int64 failed)
{
	if (stats_hash != NULL)
		add_change(queue_id, false, completed, failed);
}

/*
 * apply_reset
 *		Removes the counters of one queue of this database, or of all.
 */
static void
apply_reset(int32 queue_id)
{
	HASH_SEQ_STATUS seq;
	StatsEntry *e;

	LWLockAcquire(stats_lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, stats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dboid == MyDatabaseId &&
			(queue_id == RESET_ALL || e->key.queue_id == queue_id))
			hash_search(stats_hash, &e->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(stats_lock);
}

/*
 * enter_entry
 *		This database's entry for key queue_id, made if missing, with the
 *		table's lock held (the caller releases stats_lock); NULL when the
 *		table is full.
 */
static StatsEntry *
enter_entry(int32 queue_id)
{
	StatsKey	key;
	StatsEntry *e;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.queue_id = queue_id;

	LWLockAcquire(stats_lock, LW_SHARED);
	e = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (e == NULL)
	{
		LWLockRelease(stats_lock);
		LWLockAcquire(stats_lock, LW_EXCLUSIVE);
		e = hash_search(stats_hash, &key, HASH_ENTER_NULL, &found);
		if (e != NULL && !found)
		{
			SpinLockInit(&e->mutex);
			memset(e->second, 0, sizeof(e->second));
			memset(e->completed, 0, sizeof(e->completed));
			memset(e->failed, 0, sizeof(e->failed));
			e->stale = 0;
		}
	}
	return e;
}

/*
 * apply_count
 *		Adds a count to the current second's bucket of a queue.  When the
 *		table is full, the count is lost (documented).
 */
static void
apply_count(const PendingChange *c, int64 sec)
{
	StatsEntry *e = enter_entry(c->queue_id);
	int			b = (int) (sec % STATS_BUCKETS);

	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		if (e->second[b] != sec)
		{
			e->second[b] = sec;
			e->completed[b] = 0;
			e->failed[b] = 0;
		}
		e->completed[b] += c->completed;
		e->failed[b] += c->failed;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(stats_lock);
}

/*
 * queue_count_stale_saga
 *		Counts a completion refused for a stale lease token on a step of a
 *		saga of the given definition, at once: the refusal aborts the
 *		transaction, and the count must survive that.  Kept under key
 *		(database, -definition id) in the same table as the queues'.
 */
void
queue_count_stale_saga(int32 definition_id)
{
	StatsEntry *e;

	if (stats_hash == NULL)
		return;
	e = enter_entry(-definition_id);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		e->stale++;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(stats_lock);
}

/*
 * queue._saga_stale_completions(definition_id) returns bigint: the
 * refused completions counted for a saga definition since start-up.
 */
PG_FUNCTION_INFO_V1(queue_saga_stale_completions);
Datum
queue_saga_stale_completions(PG_FUNCTION_ARGS)
{
	StatsKey	key;
	StatsEntry *e;
	int64		n = 0;

	if (stats_hash == NULL)
		PG_RETURN_INT64(0);
	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.queue_id = -PG_GETARG_INT32(0);
	LWLockAcquire(stats_lock, LW_SHARED);
	e = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		n = e->stale;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(stats_lock);
	PG_RETURN_INT64(n);
}

/*
 * queue_stats_at_commit / queue_stats_at_abort
 *		Applies or forgets the transaction's changes.  Called from the
 *		commit callback (wake.c): must not raise an error.
 */
void
queue_stats_at_commit(void)
{
	int64		sec = GetCurrentTimestamp() / USECS_PER_SEC;
	ListCell   *lc;

	if (stats_hash != NULL)
	{
		foreach(lc, pending)
		{
			PendingChange *c = (PendingChange *) lfirst(lc);

			if (c->reset)
				apply_reset(c->queue_id);
			else
				apply_count(c, sec);
		}
	}
	pending = NIL;
}

void
queue_stats_at_abort(void)
{
	pending = NIL;
}

/*
 * queue_stats_at_subxact
 *		A savepoint rolled back takes back the changes made in it (and in
 *		its children); one released hands them to its parent.
 */
void
queue_stats_at_subxact(bool commit)
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *keep = NIL;
	ListCell   *lc;
	MemoryContext old;

	if (pending == NIL)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	foreach(lc, pending)
	{
		PendingChange *c = (PendingChange *) lfirst(lc);

		if (c->nest_level >= level)
		{
			if (!commit)
				continue;
			c->nest_level = level - 1;
		}
		keep = lappend(keep, c);
	}
	pending = keep;
	MemoryContextSwitchTo(old);
}

/*
 * queue._throughput() returns table (queue_id, completed_last_minute,
 * failed_last_minute): this database's counters.
 */
Datum
queue_throughput(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	StatsEntry *e;
	int64		now_sec = GetCurrentTimestamp() / USECS_PER_SEC;

	InitMaterializedSRF(fcinfo, 0);
	if (stats_hash == NULL)
		return (Datum) 0;

	LWLockAcquire(stats_lock, LW_SHARED);
	hash_seq_init(&seq, stats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		int64		completed = 0;
		int64		failed = 0;

		if (e->key.dboid != MyDatabaseId || e->key.queue_id < 0)
			continue;
		SpinLockAcquire(&e->mutex);
		for (int b = 0; b < STATS_BUCKETS; b++)
		{
			if (e->second[b] > now_sec - STATS_BUCKETS)
			{
				completed += e->completed[b];
				failed += e->failed[b];
			}
		}
		SpinLockRelease(&e->mutex);
		values[0] = Int32GetDatum(e->key.queue_id);
		values[1] = Int64GetDatum(completed);
		values[2] = Int64GetDatum(failed);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(stats_lock);
	return (Datum) 0;
}

/*
 * queue._count_outcome(queue_id, completed, failed): counts outcomes that
 * SQL code produced (expire_leases), applied at commit.
 */
PG_FUNCTION_INFO_V1(queue_count_outcome_sql);
Datum
queue_count_outcome_sql(PG_FUNCTION_ARGS)
{
	queue_count_outcome(PG_GETARG_INT32(0), PG_GETARG_INT64(1), PG_GETARG_INT64(2));
	PG_RETURN_VOID();
}

/*
 * queue._reset_stats(queue_id): forgets a queue's counters (drop_queue),
 * or with NULL every counter of this database (CREATE EXTENSION), so that
 * a queue id used again starts from zero.  Like the counts, the reset
 * happens when the transaction commits.
 */
PG_FUNCTION_INFO_V1(queue_reset_stats);
Datum
queue_reset_stats(PG_FUNCTION_ARGS)
{
	if (stats_hash != NULL)
		add_change(PG_ARGISNULL(0) ? RESET_ALL : PG_GETARG_INT32(0), true, 0, 0);
	PG_RETURN_VOID();
}

/*
 * queue._waiting_claims(queue_id) returns integer: claims sleeping on the
 * queue's wake-up slot (queues sharing the slot are counted together).
 */
PG_FUNCTION_INFO_V1(queue_waiting_claims);
Datum
queue_waiting_claims(PG_FUNCTION_ARGS)
{
	if (queue_shared == NULL)
		PG_RETURN_INT32(0);
	PG_RETURN_INT32((int32) pg_atomic_read_u32(&queue_wake_slot(PG_GETARG_INT32(0))->waiters));
}

/*
 * queue._worker_status() returns table (database, pid, state, started_at,
 * last_activity, events_relayed, leases_expired, jobs_pruned,
 * events_pruned, errors):
 * the status board.
 */
Datum
queue_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (queue_shared == NULL)
		return (Datum) 0;

	for (int i = 0; i < queue_shared->nworkers; i++)
	{
		QueueWorkerStatus copy;
		Datum		values[10];
		bool		nulls[10] = {0};

		SpinLockAcquire(&queue_shared->mutex);
		copy = queue_workers()[i];
		SpinLockRelease(&queue_shared->mutex);
		if (copy.dboid == InvalidOid)
			continue;

		values[0] = ObjectIdGetDatum(copy.dboid);
		values[1] = Int32GetDatum(copy.pid);
		nulls[1] = (copy.pid == 0);
		values[2] = CStringGetTextDatum(copy.state);
		values[3] = TimestampTzGetDatum(copy.started_at);
		nulls[3] = (copy.started_at == 0);
		values[4] = TimestampTzGetDatum(copy.last_activity);
		nulls[4] = (copy.last_activity == 0);
		values[5] = Int64GetDatum(copy.events_relayed);
		values[6] = Int64GetDatum(copy.leases_expired);
		values[7] = Int64GetDatum(copy.jobs_pruned);
		values[8] = Int64GetDatum(copy.events_pruned);
		values[9] = Int64GetDatum(copy.errors);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
