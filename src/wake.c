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
 * Claim hints.  Every claim removes its jobs from the front of the claim
 * order, and the index entries they leave there stay until vacuum can
 * remove them, which a snapshot held anywhere in the database postpones.
 * A claim that scanned from the start of the queue would wade through all
 * of them.  So each wake-up slot also keeps a hint: the claim-order key
 * (priority, run_at, id) of the last job a claim took.  A claim first
 * scans only past the hint, within its priority; when that finds fewer
 * jobs than asked, it scans the whole queue (lease.c).  A hint is only an
 * optimization of the order, never of what is found:
 *	 - a claim whose scan past the hint finds nothing always scans it all,
 *	   so no claimable job is ever missed for good;
 *	 - a transaction that makes a job claimable at a key before the hint
 *	   (a higher priority, an earlier run_at: enqueue with run_at in the
 *	   past, a promotion in an ordered queue, a redrive, a reschedule) drops
 *	   the hint when it commits, and a claim that rolls back drops it too;
 *	 - a job whose lease expires at a time before the hint is not announced
 *	   by any commit: the hint lives at most HINT_TTL_MS, so such a job waits
 *	   at most that long behind later jobs.
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

/* Longest a claim hint is trusted after it was set. */
#define HINT_TTL_MS			200

/* What a transaction did that may put jobs before a queue's claim hint. */
typedef struct HintNote
{
	int32		queue_id;
	bool		claimed;		/* it claimed: drop the hint if it aborts */
	bool		made_claimable; /* it made jobs claimable at the key below */
	int32		priority;		/* the highest priority it made claimable */
	TimestampTz run_at;			/* the earliest run_at at that priority */
} HintNote;

static HintNote hint_notes[MAX_NOTED_SLOTS];
static int	n_hint_notes = 0;
static bool hint_notes_overflow = false;

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
 * key_before
 *		Whether claim-order key (p1, r1) comes before (p2, r2): higher
 *		priority first, then earlier run_at.  (Ids only break ties between
 *		jobs already there.)
 */
static bool
key_before(int32 p1, TimestampTz r1, int32 p2, TimestampTz r2)
{
	return p1 > p2 || (p1 == p2 && r1 < r2);
}

/*
 * drop_hint
 *		Forgets the claim hint of a queue of this database, or (queue_id 0)
 *		every hint of this database.  Must not raise: used at commit.
 */
static void
drop_hint(int32 queue_id)
{
	if (queue_shared == NULL)
		return;
	for (int i = 0; i < queue_shared->nslots; i++)
	{
		QueueWakeSlot *slot = &queue_shared->slots[i];

		if (queue_id != 0 && slot != queue_wake_slot(queue_id))
			continue;
		SpinLockAcquire(&slot->hint_mutex);
		if (slot->hint_dboid == MyDatabaseId &&
			(queue_id == 0 || slot->hint_queue_id == queue_id))
			slot->hint_set_at = 0;
		SpinLockRelease(&slot->hint_mutex);
		if (queue_id != 0)
			break;
	}
}

/*
 * settle_hint_notes
 *		At commit (or abort), drops the hints that this transaction's
 *		changes make wrong.  A prepared transaction's outcome comes later,
 *		unannounced: all its queues' hints are dropped (prepared).
 */
static void
settle_hint_notes(bool commit, bool prepared)
{
	if (hint_notes_overflow)
		drop_hint(0);
	else if (prepared)
	{
		for (int i = 0; i < n_hint_notes; i++)
			drop_hint(hint_notes[i].queue_id);
	}
	else
	{
		for (int i = 0; i < n_hint_notes; i++)
		{
			HintNote   *note = &hint_notes[i];
			QueueWakeSlot *slot;
			bool		drop = false;

			if (!commit)
			{
				if (note->claimed)
					drop_hint(note->queue_id);
				continue;
			}
			if (!note->made_claimable || queue_shared == NULL)
				continue;
			slot = queue_wake_slot(note->queue_id);
			SpinLockAcquire(&slot->hint_mutex);
			if (slot->hint_dboid == MyDatabaseId && slot->hint_queue_id == note->queue_id &&
				slot->hint_set_at != 0 &&
				key_before(note->priority, note->run_at,
						   slot->hint.priority, slot->hint.run_at))
				drop = true;
			SpinLockRelease(&slot->hint_mutex);
			if (drop)
				drop_hint(note->queue_id);
		}
	}
	n_hint_notes = 0;
	hint_notes_overflow = false;
}

/*
 * hint_note_for
 *		This transaction's note for a queue, made on first use.
 */
static HintNote *
hint_note_for(int32 queue_id)
{
	queue_register_xact_callback();
	for (int i = 0; i < n_hint_notes; i++)
		if (hint_notes[i].queue_id == queue_id)
			return &hint_notes[i];
	if (n_hint_notes == MAX_NOTED_SLOTS)
	{
		hint_notes_overflow = true;
		return NULL;
	}
	memset(&hint_notes[n_hint_notes], 0, sizeof(HintNote));
	hint_notes[n_hint_notes].queue_id = queue_id;
	return &hint_notes[n_hint_notes++];
}

/*
 * queue_hint_note
 *		Notes that this transaction made jobs of a queue claimable at
 *		claim-order key (priority, run_at) or later; at commit, a hint past
 *		that key is dropped.  PG_INT32_MAX, DT_NOBEGIN drops it always.
 */
void
queue_hint_note(int32 queue_id, int32 priority, TimestampTz run_at)
{
	HintNote   *note = hint_note_for(queue_id);

	if (note == NULL)
		return;
	if (!note->made_claimable || key_before(priority, run_at, note->priority, note->run_at))
	{
		note->priority = priority;
		note->run_at = run_at;
	}
	note->made_claimable = true;
}

/*
 * queue_hint_note_claim
 *		Notes that this transaction claimed from a queue: if it aborts, the
 *		jobs come back before the hint, which is then dropped.
 */
void
queue_hint_note_claim(int32 queue_id)
{
	HintNote   *note = hint_note_for(queue_id);

	if (note != NULL)
		note->claimed = true;
}

/*
 * queue_hint_get
 *		This queue's claim hint, if there is a fresh one that holds for this
 *		transaction.
 *
 * Jobs this transaction made claimable are dropped from the hint only
 * when it commits, but the transaction sees them already: where they lie
 * at or before the hint, its own claims do not use it.
 */
bool
queue_hint_get(int32 queue_id, QueueClaimHint *hint)
{
	QueueWakeSlot *slot;
	bool		found = false;

	if (queue_shared == NULL || hint_notes_overflow)
		return false;
	slot = queue_wake_slot(queue_id);
	SpinLockAcquire(&slot->hint_mutex);
	if (slot->hint_dboid == MyDatabaseId && slot->hint_queue_id == queue_id &&
		slot->hint_set_at != 0 &&
		!TimestampDifferenceExceeds(slot->hint_set_at, GetCurrentTimestamp(), HINT_TTL_MS))
	{
		*hint = slot->hint;
		found = true;
	}
	SpinLockRelease(&slot->hint_mutex);
	for (int i = 0; found && i < n_hint_notes; i++)
	{
		HintNote   *note = &hint_notes[i];

		if (note->queue_id == queue_id && note->made_claimable &&
			!key_before(hint->priority, hint->run_at, note->priority, note->run_at))
			found = false;
	}
	return found;
}

/*
 * queue_hint_advance
 *		After a claim took jobs up to claim-order key *last: moves the hint
 *		there, unless a fresh hint is already further on.  A stale or absent
 *		hint is replaced (and its life starts again).
 */
void
queue_hint_advance(int32 queue_id, const QueueClaimHint *last)
{
	QueueWakeSlot *slot;
	TimestampTz now = GetCurrentTimestamp();

	if (queue_shared == NULL)
		return;
	slot = queue_wake_slot(queue_id);
	SpinLockAcquire(&slot->hint_mutex);
	if (slot->hint_dboid != MyDatabaseId || slot->hint_queue_id != queue_id ||
		slot->hint_set_at == 0 ||
		TimestampDifferenceExceeds(slot->hint_set_at, now, HINT_TTL_MS))
	{
		slot->hint_dboid = MyDatabaseId;
		slot->hint_queue_id = queue_id;
		slot->hint = *last;
		slot->hint_set_at = now;
	}
	else if (key_before(slot->hint.priority, slot->hint.run_at,
						last->priority, last->run_at) ||
			 (slot->hint.priority == last->priority &&
			  slot->hint.run_at == last->run_at && slot->hint.id < last->id))
		slot->hint = *last;
	SpinLockRelease(&slot->hint_mutex);
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
			settle_hint_notes(true, false);
			queue_stats_at_commit();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			n_noted = 0;
			noted_overflow = false;
			relay_wake_noted = false;
			settle_hint_notes(false, event == XACT_EVENT_PREPARE);
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
			/* a latch's timeout is an int of milliseconds: never wrap it */
			left = Min(left, INT_MAX);
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
	/* what SQL code makes claimable may come anywhere in the order */
	queue_note_wake(PG_GETARG_INT32(0));
	queue_hint_note(PG_GETARG_INT32(0), PG_INT32_MAX, DT_NOBEGIN);
	PG_RETURN_VOID();
}
