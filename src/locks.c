/*-------------------------------------------------------------------------
 *
 * locks.c
 *	  The extension's own heavyweight locks, all transaction-level.
 *
 * Name locks order an object's users after its drop:
 *	 enqueue takes its queue's name lock shared before it looks the queue
 *	 up, drop_queue takes it exclusive (likewise publish and drop_topic).
 *	 So a drop waits for the enqueues in flight, and an enqueue that starts
 *	 after a drop looks the queue up with a snapshot that sees it gone (in
 *	 READ COMMITTED): no job is ever inserted for a dropped queue.  This
 *	 costs one lock-table entry per call, where a foreign key would
 *	 share-lock the queue's row for every job inserted (and create a
 *	 multixact under concurrent producers).
 *
 * Key locks serialize the transactions that touch one key:
 *	 a group of an ordered queue (enqueue deciding whether its job is the
 *	 head, against the promotion of the next head: groups.c), and a key of
 *	 a topic (publishers of one key, so that the order of their event ids
 *	 is the order of their commits: outbox.c).  Keys are locked in hash
 *	 order, so two transactions locking several keys cannot deadlock; two
 *	 keys with the same hash share a lock, which costs concurrency only.
 *
 * The relay lock lets one relay at a time run in a database.
 *
 * Every lock is an advisory-lock tag in the current database; see
 * QueueLockKind for the field that sets them apart.
 *
 * IDENTIFICATION
 *	  src/locks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"

#include "queue.h"

PG_FUNCTION_INFO_V1(queue_lock_queue_name);
PG_FUNCTION_INFO_V1(queue_lock_topic_name);

/* Field 2 of the name locks; the hash of the name is field 1. */
#define NAME_LOCK_FIELD2	0x51554555

static void
lock_tag(uint32 field1, uint32 field2, QueueLockKind kind, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, field1, field2, (uint16) kind);
	(void) LockAcquire(&tag, mode, false, false);
}

/*
 * queue_lock_name
 *		Takes the name lock of a queue or topic.
 */
void
queue_lock_name(QueueLockKind kind, const char *name, LOCKMODE mode)
{
	lock_tag(hash_bytes((const unsigned char *) name, strlen(name)),
			 NAME_LOCK_FIELD2, kind, mode);
}

static int
cmp_uint32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return (x > y) - (x < y);
}

/*
 * queue_lock_keys
 *		Takes the exclusive locks of the given keys within a space (a queue
 *		id for groups, a topic id for event keys), in hash order.
 */
void
queue_lock_keys(QueueLockKind kind, uint32 space, char **keys, int n)
{
	uint32	   *hashes = palloc(sizeof(uint32) * Max(n, 1));

	for (int i = 0; i < n; i++)
		hashes[i] = hash_bytes((const unsigned char *) keys[i], strlen(keys[i]));
	qsort(hashes, n, sizeof(uint32), cmp_uint32);
	for (int i = 0; i < n; i++)
	{
		if (i > 0 && hashes[i] == hashes[i - 1])
			continue;
		lock_tag(hashes[i], space, kind, ExclusiveLock);
	}
	pfree(hashes);
}

/*
 * queue_lock_relay
 *		Takes the relay lock of the current database.
 */
void
queue_lock_relay(void)
{
	lock_tag(0, 0, QUEUE_LOCK_RELAY, ExclusiveLock);
}

/*
 * queue._lock_queue_name(name) and queue._lock_topic_name(name): the
 * drops' side of the name locks.
 */
Datum
queue_lock_queue_name(PG_FUNCTION_ARGS)
{
	queue_lock_name(QUEUE_LOCK_QUEUE_NAME, text_to_cstring(PG_GETARG_TEXT_PP(0)),
					ExclusiveLock);
	PG_RETURN_VOID();
}

Datum
queue_lock_topic_name(PG_FUNCTION_ARGS)
{
	queue_lock_name(QUEUE_LOCK_TOPIC_NAME, text_to_cstring(PG_GETARG_TEXT_PP(0)),
					ExclusiveLock);
	PG_RETURN_VOID();
}
