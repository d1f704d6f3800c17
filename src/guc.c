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

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("queue");
#else
	EmitWarningsOnPlaceholders("queue");
#endif
}
