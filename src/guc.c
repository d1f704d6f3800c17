/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  The queue.* settings.
 *
 * Limits are settings so an operator can move them without a new release;
 * they are superuser-only (PGC_SUSET) because they protect the server from
 * its clients.  The "queue" prefix is reserved, so a misspelt queue.*
 * setting is reported instead of silently kept as a placeholder.
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "queue.h"

/* Most jobs one call may enqueue, claim, complete or fail. */
int			queue_max_batch_size = 10000;

/* Largest payload (and, separately, headers or result) in bytes of jsonb. */
int			queue_max_payload_bytes = 1024 * 1024;

/* Wake-up slots in shared memory (postmaster start only). */
int			queue_wake_slots = 1024;

/* Most databases with a worker (postmaster start only). */
int			queue_max_databases = 8;

/* Databases the launcher starts a worker for: a comma-separated list. */
char	   *queue_databases = NULL;

/* Pause of a database worker between maintenance passes. */
int			queue_naptime_ms = 1000;

/* Most jobs one maintenance step moves or deletes per transaction. */
int			queue_maintenance_batch_size = 1000;

/* Longest a claim may wait for a job. */
int			queue_max_wait_ms = 60000;

/* Longest a waiting claim sleeps before it looks again by itself. */
int			queue_recheck_interval_ms = 5000;

/* Most events one relay transaction takes. */
int			queue_relay_batch_size = 1000;

/* Longest the relay sleeps when no publishing commit wakes it. */
int			queue_relay_idle_ms = 1000;

/*
 * queue_define_gucs
 *		Registers the settings; called once from _PG_init.
 */
void
queue_define_gucs(void)
{
	DefineCustomIntVariable("queue.max_batch_size",
							"Most jobs one call may enqueue, claim, complete or fail.",
							NULL,
							&queue_max_batch_size,
							10000, 1, 1000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("queue.max_payload_bytes",
							"Largest job payload, headers or result, in bytes of jsonb.",
							NULL,
							&queue_max_payload_bytes,
							1024 * 1024, 16, 256 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("queue.wake_slots",
							"Wake-up slots in shared memory for waiting claims.",
							"Queues whose slots collide share wake-ups; more slots, fewer spurious wake-ups.",
							&queue_wake_slots,
							1024, 16, 1048576,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("queue.max_databases",
							"Most databases that can have a queue background worker.",
							NULL,
							&queue_max_databases,
							8, 1, 256,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("queue.databases",
							   "Databases in which the queue background worker runs (comma-separated).",
							   NULL,
							   &queue_databases,
							   "",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("queue.naptime",
							"Pause of a queue worker between maintenance passes.",
							NULL,
							&queue_naptime_ms,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("queue.maintenance_batch_size",
							"Most jobs one maintenance step moves or deletes per transaction.",
							NULL,
							&queue_maintenance_batch_size,
							1000, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("queue.max_wait",
							"Longest time a claim may wait for a job.",
							"A waiting claim holds its snapshot, and so the vacuum horizon, while it waits.",
							&queue_max_wait_ms,
							60000, 0, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("queue.recheck_interval",
							"Longest a waiting claim sleeps before it looks for jobs by itself.",
							"Commits wake waiting claims at once; this re-check covers what no commit announces, such as COMMIT PREPARED.",
							&queue_recheck_interval_ms,
							5000, 10, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("queue.relay_batch_size",
							"Most events one relay transaction takes.",
							NULL,
							&queue_relay_batch_size,
							1000, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("queue.relay_idle_interval",
							"Longest the relay sleeps when no publishing commit wakes it.",
							NULL,
							&queue_relay_idle_ms,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("queue");
#else
	EmitWarningsOnPlaceholders("queue");
#endif
}
