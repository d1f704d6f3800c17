/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  Declarations shared by the C files of the queue extension.
 *
 * IDENTIFICATION
 *	  src/queue.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef QUEUE_H
#define QUEUE_H

#include "postgres.h"

#include "executor/spi.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/*
 * SQLSTATE raised when a lease token is not (or no longer) the current
 * lease of its job: class "QU" is this extension's own.
 */
#define ERRCODE_QUEUE_LEASE_NOT_HELD	MAKE_SQLSTATE('Q','U','0','0','1')

/*
 * Longest interval a setting or argument may give: 100 years, in seconds,
 * counted as interval comparison counts them (a month is 30 days), so that
 * the C checks and the SQL checks (<= interval '100 years') agree.
 */
#define QUEUE_MAX_INTERVAL_SECONDS	(100.0 * 12 * 30 * 86400.0)

/* Longest queue name, in bytes. */
#define QUEUE_NAME_MAXLEN		64
/* Longest worker name, in bytes. */
#define QUEUE_WORKER_MAXLEN		128

/*
 * Every move of a job d into queue.job_archive (lease.c):
 *   QUEUE_ARCHIVE_INSERT QUEUE_ARCHIVE_SELECT(state, result, errors, finished_at)
 * with the four SQL expressions given.
 */
#define QUEUE_ARCHIVE_INSERT \
	"INSERT INTO queue.job_archive (id, queue_id, state, priority, attempts," \
	" max_attempts, retry_policy, payload, headers, dedup_key, group_key," \
	" saga_id, saga_step, saga_compensation, worker, result, errors, created_at," \
	" finished_at) "
#define QUEUE_ARCHIVE_SELECT(state, result, errors, finished_at) \
	" SELECT d.id, d.queue_id, " state ", d.priority, d.attempts, d.max_attempts," \
	" d.retry_policy, d.payload, d.headers, d.dedup_key, d.group_key, d.saga_id," \
	" d.saga_step, d.saga_compensation, d.worker, " result ", " errors ", d.created_at, " \
	finished_at

/* Settings (guc.c) */
extern int	queue_max_batch_size;
extern int	queue_max_payload_bytes;
extern int	queue_wake_slots;
extern int	queue_max_databases;
extern char *queue_databases;
extern int	queue_naptime_ms;
extern int	queue_maintenance_batch_size;
extern int	queue_max_wait_ms;
extern int	queue_recheck_interval_ms;
extern int	queue_relay_batch_size;
extern int	queue_relay_idle_ms;
extern void queue_define_gucs(void);

/*
 * Shared memory (shmem.c).  See shmem.c for the layout and the locking
 * protocol.
 */
/*
 * A claim hint: where the claimable jobs of a queue begin in claim order,
 * past the entries that earlier claims consumed (wake.c, "claim hints").
 */
typedef struct QueueClaimHint
{
	int32		priority;
	TimestampTz run_at;
	int64		id;
} QueueClaimHint;

typedef struct QueueWakeSlot
{
	ConditionVariable cv;		/* waiting claims sleep here */
	pg_atomic_uint64 generation;	/* bumped by each commit that wakes */
	pg_atomic_uint32 waiters;	/* claims sleeping on cv */
	slock_t		hint_mutex;		/* guards the fields below */
	Oid			hint_dboid;		/* whose hint this is (slots are shared) */
	int32		hint_queue_id;
	TimestampTz hint_set_at;	/* 0: no hint */
	QueueClaimHint hint;
} QueueWakeSlot;

/* Longest state text of a worker. */
#define QUEUE_WORKER_STATE_LEN	48

typedef struct QueueWorkerStatus
{
	Oid			dboid;			/* InvalidOid: entry free */
	pid_t		pid;			/* 0: not running */
	int			procno;			/* its PGPROC, whose latch wakes the relay */
	char		state[QUEUE_WORKER_STATE_LEN];
	TimestampTz started_at;
	TimestampTz last_activity;
	int64		events_relayed; /* events taken out of the outbox, since start */
	int64		leases_expired; /* jobs moved to dead letters, since start */
	int64		jobs_pruned;	/* finished jobs deleted, since start */
	int64		events_pruned;	/* relayed events deleted, since start */
	int64		errors;			/* failed passes, since start */
} QueueWorkerStatus;

typedef struct QueueShared
{
	int			nslots;
	int			nworkers;
	slock_t		mutex;			/* guards the worker status board */
	QueueWakeSlot slots[FLEXIBLE_ARRAY_MEMBER];
	/* followed by QueueWorkerStatus[nworkers] */
} QueueShared;

extern QueueShared *queue_shared;
extern void queue_shmem_init(void);
extern QueueWorkerStatus *queue_workers(void);
extern QueueWakeSlot *queue_wake_slot(int32 queue_id);

/* wake.c */
extern void queue_register_xact_callback(void);
extern void queue_note_wake(int32 queue_id);
extern void queue_note_relay_wake(void);
extern void queue_wait_for_wake(QueueWakeSlot *slot, uint64 seen, long timeout_ms);
extern bool queue_hint_get(int32 queue_id, QueueClaimHint *hint);
extern void queue_hint_advance(int32 queue_id, const QueueClaimHint *last);
extern void queue_hint_note(int32 queue_id, int32 priority, TimestampTz run_at);
extern void queue_hint_note_claim(int32 queue_id);

/* stats.c */
extern Size queue_stats_shmem_size(void);
extern void queue_stats_shmem_startup(void);
extern void queue_count_outcome(int32 queue_id, int64 completed, int64 failed);
extern void queue_stats_at_commit(void);
extern void queue_stats_at_abort(void);
extern void queue_stats_at_subxact(bool commit);
extern void queue_count_stale_saga(int32 definition_id);

/* worker.c */
extern void queue_register_launcher(void);

/* What a hot-path call needs to know about its queue (queue.c). */
typedef struct QueueInfo
{
	int32		id;
	bool		paused;
	bool		ordered;		/* FIFO per group key (groups.c) */
	int32		max_attempts;
	Interval	lease_timeout;
	bool		keeps_finished; /* retention > 0: completed jobs are archived */
} QueueInfo;

/* One job to enqueue, validated (enqueue.c; also built by the relay). */
typedef struct JobSpec
{
	Jsonb	   *payload;
	Jsonb	   *headers;		/* NULL if none */
	TimestampTz run_at;
	int32		priority;
	char	   *dedup_key;		/* NULL if none */
	char	   *group_key;		/* NULL if none */
	int32		max_attempts;	/* 0: the queue's default */
	Jsonb	   *retry_policy;	/* NULL: the queue's */
	int64		id;				/* assigned by queue_enqueue_specs */
	bool		blocked;		/* ordered queue: behind its group's head */
	bool		done;			/* inserted, or resolved to a live job */
} JobSpec;

/* rowwriter.c: writing rows without an INSERT, UPDATE or DELETE statement */
typedef struct QueueColumn
{
	const char *name;
	Oid			type;
} QueueColumn;

/* a writer of rows of one table; its fields are rowwriter.c's own */
typedef struct QueueRowWriter QueueRowWriter;

extern QueueRowWriter *queue_row_writer_open(const char *relname,
											 const QueueColumn *columns,
											 int ncolumns);
extern QueueRowWriter *queue_row_updater_open(const char *relname,
											  const QueueColumn *columns,
											  int ncolumns);
extern QueueRowWriter *queue_row_deleter_open(const char *relname,
											  const QueueColumn *columns,
											  int ncolumns);
extern void queue_row_writer_set(QueueRowWriter *w, int i, Datum value,
								 bool isnull);
extern Datum queue_row_writer_get(QueueRowWriter *w, int i, bool *isnull);
extern Datum queue_row_writer_get_copy(QueueRowWriter *w, int i, bool *isnull);
extern void queue_row_writer_insert(QueueRowWriter *w);
extern void queue_row_writer_fetch(QueueRowWriter *w, ItemPointer tid);
extern void queue_row_writer_update(QueueRowWriter *w);
extern bool queue_row_writer_delete(QueueRowWriter *w, Datum key, int i,
									Datum value);
extern void queue_row_writer_close(QueueRowWriter *w);

/* Error context of a batch call: which element was being read. */
typedef struct QueueBatchContext
{
	const char *what;			/* "job", "event" */
	int			index;			/* from 0; -1 while not in an element */
	ErrorContextCallback callback;	/* on error_context_stack while pushed */
} QueueBatchContext;

/* queue.c */
extern SPIPlanPtr queue_plan(SPIPlanPtr *cache, const char *sql,
							 int nargs, const Oid *argtypes);
extern void queue_lookup(const char *name, QueueInfo *info);
extern bool queue_lookup_if_exists(const char *name, QueueInfo *info);
extern bool queue_lookup_id(int32 id, QueueInfo *info);
extern Datum queue_interval_datum(const Interval *iv);
extern void queue_batch_context_push(QueueBatchContext *ctx, const char *what);
extern void queue_batch_context_pop(QueueBatchContext *ctx);
extern int	queue_batch_key(const char *what, const char *name,
							const char *const *keys, int nkeys);
extern Datum queue_build_array(Datum *elems, bool *nulls, int n, Oid elemtype);
extern int	queue_unpack_array(ArrayType *arr, Oid elemtype, const char *what,
							   Datum **elems, bool **nulls_out);
extern double queue_interval_seconds(const Interval *iv);
extern Interval *queue_seconds_interval(double seconds);

/* enqueue.c */
extern void queue_check_document(Jsonb *doc, const char *what);
extern void queue_enqueue_specs(const QueueInfo *queue, JobSpec *specs, int n,
								TimestampTz now);

/* groups.c */
extern int	queue_promote_groups(int32 queue_id, char **keys, int n);

/*
 * locks.c: the kinds of lock the extension takes.  Each is an advisory-lock
 * tag whose field 4 the SQL advisory-lock functions never use (they use 1
 * and 2), so none collides with an application's advisory locks.
 */
typedef enum QueueLockKind
{
	QUEUE_LOCK_QUEUE_NAME = 4,	/* enqueue (share) vs drop_queue (exclusive) */
	QUEUE_LOCK_TOPIC_NAME = 5,	/* publish (share) vs drop_topic (exclusive) */
	QUEUE_LOCK_GROUP = 6,		/* a group of an ordered queue */
	QUEUE_LOCK_EVENT_KEY = 7,	/* publishers of one key of a topic */
	QUEUE_LOCK_RELAY = 8		/* the relay of a database */
} QueueLockKind;

extern void queue_lock_name(QueueLockKind kind, const char *name, LOCKMODE mode);
extern void queue_lock_keys(QueueLockKind kind, uint32 space, char **keys, int n);
extern void queue_lock_relay(void);

/* names.c */
extern void queue_check_name_value(const char *name, const char *what);
extern void queue_check_worker_name(const char *worker);

/* backoff.c */
extern void queue_check_policy_keys(Jsonb *policy);
extern double queue_compute_delay(Jsonb *policy, int attempt, double previous);

/* lease.c: raises ERRCODE_QUEUE_LEASE_NOT_HELD with the reason. */
extern void queue_report_stale_lease(int64 job_id, Datum token) pg_attribute_noreturn();

/* Argument checks shared by the SQL-callable functions. */
#define QUEUE_ARG_NOT_NULL(n, what) \
	do { \
		if (PG_ARGISNULL(n)) \
			ereport(ERROR, \
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), \
					 errmsg("%s must not be null", (what)))); \
	} while (0)

#endif							/* QUEUE_H */
