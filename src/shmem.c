/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The extension's shared memory: wake-up slots for waiting claims and
 *	  the status board of the background workers.
 *
 * Layout (one segment, sized at postmaster start, never resized):
 *
 *	QueueShared
 *	  slots[queue.wake_slots]         one wake-up slot per hash bucket
 *	  workers[queue.max_databases]   one entry per database worker
 *	plus the hash table of throughput counters (stats.c).
 *
 * A wake-up slot serves every queue whose (database OID, queue id) hashes
 * to it.  It holds a generation counter, bumped by every commit that made
 * a job of such a queue claimable, and a condition variable broadcast at
 * the same moment; waiting claims sleep on it.  Two queues sharing a slot
 * only cost each other a spurious wake-up and a re-check, so no identity
 * is stored and no lock is taken: the counters are atomics, and the
 * condition variable has its own spinlock.
 *
 * Locking protocol: the worker status board is guarded by the spinlock
 * "mutex"; entries are claimed by the launcher (dboid set) and written by
 * the worker that owns them (pid, state, timestamps).  Readers (the
 * monitoring function) take the spinlock to copy a consistent entry.
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "queue.h"

QueueShared *queue_shared = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * queue_struct_size
 *		Bytes of the QueueShared struct (slots and worker board).
 */
static Size
queue_struct_size(void)
{
	Size		size = offsetof(QueueShared, slots);

	size = add_size(size, mul_size(queue_wake_slots, sizeof(QueueWakeSlot)));
	return add_size(size, mul_size(queue_max_databases, sizeof(QueueWorkerStatus)));
}

/*
 * queue_shmem_size
 *		Bytes to request: the struct, and the throughput hash table that
 *		stats.c allocates on its own.
 */
static Size
queue_shmem_size(void)
{
	return add_size(queue_struct_size(), queue_stats_shmem_size());
}

#if PG_VERSION_NUM >= 150000
static void
queue_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(queue_shmem_size());
	RequestNamedLWLockTranche("queue stats", 1);
}
#endif

/*
 * queue_shmem_startup
 *		Creates (postmaster) or attaches to the segment.
 */
static void
queue_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	queue_shared = ShmemInitStruct("queue", queue_struct_size(), &found);
	if (!found)
	{
		queue_shared->nslots = queue_wake_slots;
		queue_shared->nworkers = queue_max_databases;
		SpinLockInit(&queue_shared->mutex);
		for (int i = 0; i < queue_wake_slots; i++)
		{
			QueueWakeSlot *slot = &queue_shared->slots[i];

			ConditionVariableInit(&slot->cv);
			pg_atomic_init_u64(&slot->generation, 0);
			pg_atomic_init_u32(&slot->waiters, 0);
			SpinLockInit(&slot->hint_mutex);
			slot->hint_dboid = InvalidOid;
			slot->hint_queue_id = 0;
			slot->hint_set_at = 0;
		}
		memset(queue_workers(), 0, sizeof(QueueWorkerStatus) * queue_max_databases);
	}
	queue_stats_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * queue_shmem_init
 *		Installs the hooks; called from _PG_init while preloading.
 */
void
queue_shmem_init(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = queue_shmem_request;
#else
	RequestAddinShmemSpace(queue_shmem_size());
	RequestNamedLWLockTranche("queue stats", 1);
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = queue_shmem_startup;
}

/*
 * queue_workers
 *		The worker status board, which follows the slots.
 */
QueueWorkerStatus *
queue_workers(void)
{
	return (QueueWorkerStatus *) &queue_shared->slots[queue_shared->nslots];
}

/*
 * queue_wake_slot
 *		The wake-up slot of a queue of this database.
 */
QueueWakeSlot *
queue_wake_slot(int32 queue_id)
{
	uint32		h;

	Assert(queue_shared != NULL);
	h = hash_combine(hash_bytes_uint32(MyDatabaseId), hash_bytes_uint32((uint32) queue_id));
	return &queue_shared->slots[h % queue_shared->nslots];
}
