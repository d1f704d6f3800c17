/*-------------------------------------------------------------------------
 *
 * groups.c
 *	  Ordered queues: FIFO per group key.
 *
 * In a queue created with ordered => true, the jobs that share a group key
 * run one at a time, in the order they were enqueued (job id order), like
 * message groups.  At most one job of a group is not 'blocked': the group's
 * head.  The head is claimed, retried, completed like any job; while it is
 * live (ready, scheduled, retrying or running) the rest of its group stays
 * blocked, and a blocked job is invisible to claims (job_claim_idx leaves
 * it out).  When the head finishes (completed, dead, cancelled, deleted),
 * the transaction that finished it promotes the group's next job, the
 * blocked one with the smallest id, to pending.  Other groups never wait.
 *
 * Row locks end with the claim's transaction and SKIP LOCKED says nothing
 * about a head that is running in another transaction, so the state is
 * kept in the rows and changed by compare-and-set under a per-group lock:
 * enqueue takes the lock before it decides whether its job is the head;
 * promotion takes it before it looks for a head.  With the lock held, in
 * READ COMMITTED each sees what the other committed: an enqueue racing a
 * completion either sees the old head (and inserts blocked, which the
 * completion then promotes) or sees it gone (and inserts the new head).
 * Locks are taken in hash order, so two batches cannot deadlock.
 *
 * IDENTIFICATION
 *	  src/groups.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "queue.h"

PG_FUNCTION_INFO_V1(queue_promote_groups_sql);

/*
 * queue_promote_groups
 *		For each given group of the queue that has no head, makes its first
 *		blocked job the head; returns how many were promoted.  Must be
 *		called inside SPI_connect.
 */
int
queue_promote_groups(int32 queue_id, char **keys, int n)
{
	static SPIPlanPtr plan = NULL;
	static const Oid argtypes[2] = {INT4OID, TEXTARRAYOID};
	Datum	   *elems;
	Datum		values[2];
	int			rc;

	if (n == 0)
		return 0;
	queue_lock_keys(QUEUE_LOCK_GROUP, (uint32) queue_id, keys, n);

	elems = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(keys[i]);
	values[0] = Int32GetDatum(queue_id);
	values[1] = queue_build_array(elems, NULL, n, TEXTOID);
	rc = SPI_execute_plan(queue_plan(&plan,
									 "UPDATE queue.job SET state = 'pending'"
									 " WHERE id IN ("
									 "   SELECT min(b.id) FROM queue.job b"
									 "    WHERE b.queue_id = $1 AND b.group_key = ANY ($2)"
									 "      AND b.state = 'blocked'"
									 "      AND NOT EXISTS (SELECT 1 FROM queue.job h"
									 "                       WHERE h.queue_id = b.queue_id"
									 "                         AND h.group_key = b.group_key"
									 "                         AND h.state <> 'blocked')"
									 "    GROUP BY b.group_key)",
									 2, argtypes),
						  values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "group promotion failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		/* a promoted job keeps its place in the order: anywhere */
		queue_note_wake(queue_id);
		queue_hint_note(queue_id, PG_INT32_MAX, DT_NOBEGIN);
	}
	return (int) SPI_processed;
}

/*
 * queue._promote_groups(queue_id, group_keys text[]) returns integer: the
 * SQL face of queue_promote_groups (cancel, delete, expire_leases, redrive).
 */
Datum
queue_promote_groups_sql(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			m = 0;
	char	  **keys;
	int			promoted;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	keys = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			keys[m++] = TextDatumGetCString(elems[i]);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	promoted = queue_promote_groups(PG_GETARG_INT32(0), keys, m);
	SPI_finish();
	PG_RETURN_INT32(promoted);
}
