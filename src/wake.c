/*-------------------------------------------------------------------------
 *
 * wake.c
 *	  Waking waiting claims at the commit of the transactions that gave
 *	  them work, without NOTIFY and without polling.
 *
 * A transaction that makes jobs claimable (enqueue, a retry, a release, a
 * redrive, a resume...) notes the queue here.  When it commits, a
 * transaction callback bumps the generation of each noted queue's
 * wake-up slot (shmem.c) and broadcasts its condition variable, once per
 * queue however many jobs were written.  At that point the commit is
 * already visible to other snapshots, so a claim woken by it finds the
 * jobs.  An abort or a PREPARE TRANSACTION forgets the notes: COMMIT
 * PREPARED runs in another backend and wakes nobody, so jobs enqueued in
 * a prepared transaction are found by the waiters' periodic re-check
 * (queue.recheck_interval) or by the next claim.
 *
 * NOTIFY would take a cluster-wide lock at commit, serializing every
 * producer; this costs an atomic increment per noted queue, plus a
 * spinlock only when someone is waiting.
 *
 * The callback never raises an error: it only touches atomics and
 * condition variables.
 *
 * The lost-wake-up argument: a waiter increments "waiters", joins the
 * condition variable's wait list, and only then compares the generation;
 * a committer bumps the generation and only then reads "waiters".  Both
 * read-modify-writes are full barriers, so either the waiter sees the new
 * generation and does not sleep, or the committer sees the waiter and
 * broadcasts.
 *
 * IDENTIFICATION
 *	  src/wake.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "queue.h"

/* Distinct slots one transaction remembers before it wakes them all. */
#define MAX_NOTED_SLOTS		32

PG_FUNCTION_INFO_V1(queue_wake_sql);

static int	noted_slots[MAX_NOTED_SLOTS];
static int	n_noted = 0;
static bool noted_overflow = false;
static bool callback_registered = false;
static bool relay_wake_noted = false;

/*
 * wake_slot
 *		Bumps a slot's generation, and broadcasts if anyone waits.
 */
static void
wake_slot(QueueWakeSlot *slot)
{
	pg_atomic_fetch_add_u64(&slot->generation, 1);
	if (pg_atomic_read_u32(&slot->waiters) > 0)
		ConditionVariableBroadcast(&slot->cv);
}

/*
 * wake_relay
 *		Sets the latch of this database's background worker, which runs the
 *		relay.
 */
static void
wake_relay(void)
{
	QueueWorkerStatus *w;
	int			procno = -1;

	if (queue_shared == NULL)
		return;
	w = queue_workers();
	SpinLockAcquire(&queue_shared->mutex);
	for (int i = 0; i < queue_shared->nworkers; i++)
		if (w[i].dboid == MyDatabaseId && w[i].pid != 0)
			procno = w[i].procno;
	SpinLockRelease(&queue_shared->mutex);
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/*
 * queue_xact_callback
 *		Wakes the noted slots at commit, and applies the transaction's
 *		throughput counts (stats.c); forgets both at abort or prepare.
 */
static void
queue_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (queue_shared != NULL)
			{
				if (noted_overflow)
				{
					for (int i = 0; i < queue_shared->nslots; i++)
						wake_slot(&queue_shared->slots[i]);
				}
				else
				{
					for (int i = 0; i < n_noted; i++)
						wake_slot(&queue_shared->slots[noted_slots[i]]);
				}
			}
			n_noted = 0;
			noted_overflow = false;
			if (relay_wake_noted)
				wake_relay();
			relay_wake_noted = false;
			queue_stats_at_commit();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			n_noted = 0;
			noted_overflow = false;
			relay_wake_noted = false;
			queue_stats_at_abort();
			break;
		default:
			break;
	}
}

/*
 * queue_subxact_callback
 *		Hands a savepoint's pending counts to stats.c's bookkeeping.
 */
static void
queue_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		queue_stats_at_subxact(true);
	else if (event == SUBXACT_EVENT_ABORT_SUB)
		queue_stats_at_subxact(false);
}

/*
 * queue_register_xact_callback
 *		Registers the transaction callbacks, once per backend, on first use.
 */
void
queue_register_xact_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(queue_xact_callback, NULL);
		RegisterSubXactCallback(queue_subxact_callback, NULL);
		callback_registered = true;
	}
}

/*
 * queue_note_wake
 *		Remembers to wake the waiters of a queue of this database when the
 *		current transaction commits.
 */
void
queue_note_wake(int32 queue_id)
{
	int			idx;

	if (queue_shared == NULL)
		return;
	queue_register_xact_callback();
	idx = queue_wake_slot(queue_id) - queue_shared->slots;
	for (int i = 0; i < n_noted; i++)
		if (noted_slots[i] == idx)
			return;
	if (n_noted < MAX_NOTED_SLOTS)
		noted_slots[n_noted++] = idx;
	else
		noted_overflow = true;
}

/*
 * queue_note_relay_wake
 *		Remembers to wake this database's relay when the transaction
 *		commits (it published).
 */
void
queue_note_relay_wake(void)
{
	queue_register_xact_callback();
	relay_wake_noted = true;
}

/*
 * queue_wait_for_wake
 *		Sleeps until the slot's generation differs from seen, or timeout_ms
 *		pass.  Interrupts (cancel, statement_timeout, termination) are
 *		served while sleeping.
 */
void
queue_wait_for_wake(QueueWakeSlot *slot, uint64 seen, long timeout_ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	pg_atomic_fetch_add_u32(&slot->waiters, 1);
	PG_TRY();
	{
		ConditionVariablePrepareToSleep(&slot->cv);
		while (pg_atomic_read_u64(&slot->generation) == seen)
		{
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

			if (left <= 0)
				break;
			if (ConditionVariableTimedSleep(&slot->cv, left, PG_WAIT_EXTENSION))
				break;			/* timed out */
		}
		ConditionVariableCancelSleep();
	}
	PG_FINALLY();
	{
		pg_atomic_fetch_sub_u32(&slot->waiters, 1);
	}
	PG_END_TRY();
}

/*
 * queue._wake(queue_id): queue_note_wake for SQL code (redrive,
 * reschedule_job, resume_queue).
 */
Datum
queue_wake_sql(PG_FUNCTION_ARGS)
{
	queue_note_wake(PG_GETARG_INT32(0));
	PG_RETURN_VOID();
}
