/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background workers: a launcher, and one worker per database
 *	  named in queue.databases, doing the maintenance no client should have
 *	  to run.
 *
 * Architecture.  The launcher is a static background worker registered at
 * preload.  It connects to no database (it reads only the shared catalog
 * pg_database) and keeps one dynamic worker running per database listed
 * in queue.databases, connected by OID.  On SIGHUP it re-reads the list,
 * starting and stopping workers to match.  A worker that exits (crash,
 * pg_terminate_backend) is started again after a pause that doubles on
 * each quick exit, up to a minute, so a worker that cannot start never
 * crash-loops; an unknown database name is logged once per reload.
 *
 * Both start only when recovery has finished (BgWorkerStart_RecoveryFinished):
 * on a hot standby nothing runs and nothing is logged; on promotion the
 * launcher starts, and its first pass settles what the old primary left
 * (expired leases).
 *
 * A database worker runs a pass whenever a publishing commit sets its
 * latch, or queue.relay_idle_interval passes:
 *	1. if the extension is not installed in its database, it notes that
 *	   once in the log and waits (it notices CREATE EXTENSION on a later
 *	   pass, and DROP EXTENSION likewise);
 *	2. queue.relay(): committed events go to their subscribers;
 *	and, once every queue.naptime, maintenance:
 *	3. queue.expire_leases(): jobs whose lease ran out on their last
 *	   attempt become dead letters ("lease expired");
 *	4. queue.prune() and queue.prune_events(): finished jobs and relayed
 *	   events past their retention are deleted;
 *	5. ANALYZE of queue.job and queue.event when they have grown well past
 *	   what their statistics say (analyze_grown_tables).
 * Each step is its own transaction, and each step's batch is bounded
 * (queue.maintenance_batch_size).  A step that fails is rolled back and
 * logged (at most once a minute per worker), the pass goes on with the next
 * step, and the worker backs off; an error never takes the worker down.  Every change a
 * step makes is a compare-and-set in SQL (see expire_leases and prune),
 * so a job its worker settles concurrently is never touched.
 *
 * The workers report their state on the status board in shared memory
 * (shmem.c), shown by the view queue.workers, and their activity in
 * pg_stat_activity (backend_type "queue launcher" / "queue worker", wait
 * event Extension while idle).  SIGTERM stops them at the next interrupt
 * check; they exit with the postmaster (WL_EXIT_ON_PM_DEATH).
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "queue.h"

PGDLLEXPORT void queue_launcher_main(Datum main_arg);
PGDLLEXPORT void queue_worker_main(Datum main_arg);

/* How often the launcher looks at its workers when nothing signals it. */
#define LAUNCHER_NAPTIME_MS		1000
/* Restart pause of a worker that exited: first, and the most. */
#define RESTART_MIN_MS			1000
#define RESTART_MAX_MS			60000
/* A worker that ran this long before exiting restarts after the minimum. */
#define RESTART_RESET_MS		60000
/* Least time between two error reports of one worker. */
#define ERROR_LOG_INTERVAL_MS	60000
/* Most rounds of one maintenance step in one pass. */
#define MAX_ROUNDS_PER_STEP		10

/* The launcher's view of one database's worker. */
typedef struct LaunchedWorker
{
	Oid			dboid;
	char		dbname[NAMEDATALEN];
	bool		wanted;			/* listed in queue.databases */
	BackgroundWorkerHandle *handle; /* NULL: not running */
	TimestampTz started_at;
	TimestampTz restart_at;		/* when it may start again */
	int			restart_ms;		/* current restart pause */
} LaunchedWorker;

/*
 * queue_register_launcher
 *		Registers the launcher; called from _PG_init while preloading.
 */
void
queue_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "queue");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "queue_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "queue launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "queue launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * status_entry
 *		This database's entry on the status board, or NULL.  Caller holds
 *		the mutex.
 */
static QueueWorkerStatus *
status_entry(Oid dboid)
{
	QueueWorkerStatus *w = queue_workers();

	for (int i = 0; i < queue_shared->nworkers; i++)
		if (w[i].dboid == dboid)
			return &w[i];
	return NULL;
}

/*
 * status_claim / status_release
 *		The launcher takes an entry for a database it runs a worker for,
 *		and gives it back when the database leaves the list.
 */
static bool
status_claim(Oid dboid)
{
	QueueWorkerStatus *w = queue_workers();
	bool		ok = false;

	SpinLockAcquire(&queue_shared->mutex);
	if (status_entry(dboid) != NULL)
		ok = true;
	else
	{
		for (int i = 0; i < queue_shared->nworkers; i++)
		{
			if (w[i].dboid == InvalidOid)
			{
				memset(&w[i], 0, sizeof(QueueWorkerStatus));
				w[i].dboid = dboid;
				strlcpy(w[i].state, "starting", QUEUE_WORKER_STATE_LEN);
				ok = true;
				break;
			}
		}
	}
	SpinLockRelease(&queue_shared->mutex);
	return ok;
}

static void
status_release(Oid dboid)
{
	QueueWorkerStatus *e;

	SpinLockAcquire(&queue_shared->mutex);
	e = status_entry(dboid);
	if (e != NULL)
		memset(e, 0, sizeof(QueueWorkerStatus));
	SpinLockRelease(&queue_shared->mutex);
}

/*
 * status_update
 *		The worker's own report: its state, and counters to add.
 */
static void
status_update(const char *state, int64 relayed, int64 expired, int64 pruned,
			  int64 events_pruned, int64 errors)
{
	QueueWorkerStatus *e;

	SpinLockAcquire(&queue_shared->mutex);
	e = status_entry(MyDatabaseId);
	if (e != NULL)
	{
		if (state != NULL)
			strlcpy(e->state, state, QUEUE_WORKER_STATE_LEN);
		e->pid = MyProcPid;
		e->last_activity = GetCurrentTimestamp();
		e->events_relayed += relayed;
		e->leases_expired += expired;
		e->jobs_pruned += pruned;
		e->events_pruned += events_pruned;
		e->errors += errors;
	}
	SpinLockRelease(&queue_shared->mutex);
}

/* before_shmem_exit callback of a database worker. */
static void
worker_exit(int code, Datum arg)
{
	QueueWorkerStatus *e;

	SpinLockAcquire(&queue_shared->mutex);
	e = status_entry(MyDatabaseId);
	if (e != NULL && e->pid == MyProcPid)
	{
		e->pid = 0;
		strlcpy(e->state, "stopped", QUEUE_WORKER_STATE_LEN);
	}
	SpinLockRelease(&queue_shared->mutex);
}

/*
 * database_oid
 *		The OID of the named database, or InvalidOid.  The launcher has no
 *		database, so it cannot use the catalog caches or indexes that
 *		get_database_oid needs; it scans the shared catalog pg_database.
 */
static Oid
database_oid(const char *name)
{
	Relation	rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
	HeapTuple	tup;
	Oid			result = InvalidOid;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) == 0)
		{
			result = db->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * launcher_wanted
 *		Reads queue.databases into the launcher's table: marks listed
 *		databases wanted (adding new ones), the others unwanted.
 */
static void
launcher_wanted(LaunchedWorker *workers, int *nworkers, bool warn)
{
	char	   *raw = pstrdup(queue_databases ? queue_databases : "");
	List	   *names = NIL;
	ListCell   *lc;

	for (int i = 0; i < *nworkers; i++)
		workers[i].wanted = false;

	if (!SplitIdentifierString(raw, ',', &names))
	{
		if (warn)
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid list syntax in queue.databases: \"%s\"",
							queue_databases)));
		return;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		Oid			dboid = database_oid(name);
		int			i;

		if (!OidIsValid(dboid))
		{
			if (warn)
				ereport(WARNING,
						(errcode(ERRCODE_UNDEFINED_DATABASE),
						 errmsg("queue.databases names database \"%s\", which does not exist",
								name)));
			continue;
		}
		for (i = 0; i < *nworkers; i++)
			if (workers[i].dboid == dboid)
				break;
		if (i == *nworkers)
		{
			if (*nworkers >= queue_max_databases)
			{
				if (warn)
					ereport(WARNING,
							(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
							 errmsg("queue.databases names more than %d databases; \"%s\" gets no worker",
									queue_max_databases, name),
							 errhint("Raise queue.max_databases (needs a restart).")));
				continue;
			}
			memset(&workers[i], 0, sizeof(LaunchedWorker));
			workers[i].dboid = dboid;
			strlcpy(workers[i].dbname, name, NAMEDATALEN);
			workers[i].restart_ms = RESTART_MIN_MS;
			(*nworkers)++;
		}
		workers[i].wanted = true;
	}
	CommitTransactionCommand();
}

/*
 * database_still_there
 *		Whether the worker's database still exists under its name (it may
 *		have been dropped since the list was read).
 */
static bool
database_still_there(LaunchedWorker *lw)
{
	Oid			dboid;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	dboid = database_oid(lw->dbname);
	CommitTransactionCommand();
	return dboid == lw->dboid;
}

/*
 * launcher_reconcile
 *		Starts the wanted workers that are not running (when their restart
 *		pause is over) and stops the unwanted ones.
 */
static void
launcher_reconcile(LaunchedWorker *workers, int *nworkers)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < *nworkers; i++)
	{
		LaunchedWorker *lw = &workers[i];
		pid_t		pid;

		/* Notice a worker that has exited, and plan its restart. */
		if (lw->handle != NULL &&
			GetBackgroundWorkerPid(lw->handle, &pid) == BGWH_STOPPED)
		{
			pfree(lw->handle);
			lw->handle = NULL;
			if (TimestampDifferenceExceeds(lw->started_at, now, RESTART_RESET_MS))
				lw->restart_ms = RESTART_MIN_MS;
			lw->restart_at = TimestampTzPlusMilliseconds(now, lw->restart_ms);
			lw->restart_ms = Min(lw->restart_ms * 2, RESTART_MAX_MS);
		}

		if (!lw->wanted)
		{
			if (lw->handle != NULL)
				TerminateBackgroundWorker(lw->handle);
			else
			{
				status_release(lw->dboid);
				workers[i] = workers[--(*nworkers)];
				i--;
			}
			continue;
		}

		if (lw->handle == NULL && now >= lw->restart_at && !database_still_there(lw))
		{
			ereport(WARNING,
					(errmsg("database \"%s\" named in queue.databases no longer exists; its queue worker stops",
							lw->dbname),
					 errhint("Remove it from queue.databases.")));
			lw->wanted = false;
			status_release(lw->dboid);
			workers[i] = workers[--(*nworkers)];
			i--;
			continue;
		}
		if (lw->handle == NULL && now >= lw->restart_at && status_claim(lw->dboid))
		{
			BackgroundWorker worker;

			memset(&worker, 0, sizeof(worker));
			worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
			worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
			worker.bgw_restart_time = BGW_NEVER_RESTART;
			snprintf(worker.bgw_library_name, BGW_MAXLEN, "queue");
			snprintf(worker.bgw_function_name, BGW_MAXLEN, "queue_worker_main");
			snprintf(worker.bgw_name, BGW_MAXLEN, "queue worker for database %s", lw->dbname);
			snprintf(worker.bgw_type, BGW_MAXLEN, "queue worker");
			worker.bgw_main_arg = ObjectIdGetDatum(lw->dboid);
			worker.bgw_notify_pid = MyProcPid;

			if (RegisterDynamicBackgroundWorker(&worker, &lw->handle))
				lw->started_at = now;
			else
			{
				lw->handle = NULL;
				lw->restart_at = TimestampTzPlusMilliseconds(now, lw->restart_ms);
				lw->restart_ms = Min(lw->restart_ms * 2, RESTART_MAX_MS);
				ereport(LOG,
						(errmsg("could not start the queue worker for database \"%s\"",
								lw->dbname),
						 errhint("Raise max_worker_processes.")));
			}
		}
	}
}

/*
 * launcher_stop_orphans
 *		Asks the workers a previous launcher started (it exited or was
 *		terminated, and was restarted by the postmaster) to stop, so that
 *		each database keeps one worker: this launcher has no handles for
 *		them and starts its own.
 */
static void
launcher_stop_orphans(void)
{
	QueueWorkerStatus *w = queue_workers();
	pid_t	   *pids = palloc0(sizeof(pid_t) * queue_shared->nworkers);

	SpinLockAcquire(&queue_shared->mutex);
	for (int i = 0; i < queue_shared->nworkers; i++)
	{
		pids[i] = (w[i].dboid != InvalidOid) ? w[i].pid : 0;
		memset(&w[i], 0, sizeof(QueueWorkerStatus));
	}
	SpinLockRelease(&queue_shared->mutex);

	for (int i = 0; i < queue_shared->nworkers; i++)
		if (pids[i] != 0)
			(void) kill(pids[i], SIGTERM);
	pfree(pids);
}

/*
 * queue_launcher_main
 *		Entry point of the launcher.
 */
void
queue_launcher_main(Datum main_arg)
{
	LaunchedWorker *workers;
	int			nworkers = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	workers = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(LaunchedWorker) * queue_max_databases);
	launcher_stop_orphans();
	launcher_wanted(workers, &nworkers, true);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			launcher_wanted(workers, &nworkers, true);
		}
		launcher_reconcile(workers, &nworkers);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_NAPTIME_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * step_begin / step_end
 *		The bracket of one maintenance statement: its own transaction, an
 *		SPI connection and a snapshot, and the activity shown in
 *		pg_stat_activity; step_end commits and flushes the statistics.
 */
static void
step_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
step_end(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(true);
}

/*
 * run_step
 *		Runs one maintenance statement (returning a bigint count) in its
 *		own transaction, repeating while it fills its batch; returns the
 *		total, or -1 when the extension is not installed.  Errors propagate
 *		to the caller.
 */
static int64
run_step(const char *activity, const char *sql, int32 batch_size)
{
	int64		total = 0;

	for (int round = 0; round < MAX_ROUNDS_PER_STEP; round++)
	{
		int64		n = 0;
		bool		installed;
		int			rc;

		step_begin(activity);

		rc = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'queue'",
						 true, 1);
		installed = (rc == SPI_OK_SELECT && SPI_processed == 1);
		if (installed)
		{
			Datum		arg = Int32GetDatum(batch_size);
			Oid			argtype = INT4OID;
			bool		isnull;

			rc = SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, false, 1);
			if (rc != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "%s failed: %s", activity, SPI_result_code_string(rc));
			n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
		}

		step_end();

		if (!installed)
			return -1;
		total += n;
		if (n < batch_size)
			break;
	}
	return total;
}

/*
 * analyze_grown_tables
 *		ANALYZEs queue.job and queue.event when one holds far more rows than
 *		its statistics say; returns how many it asked to analyze.
 *
 * The hot path's plans are generic and kept, and they are made from the
 * statistics at hand: made while a table is empty, they may read it whole
 * (a sequential scan and a hash join for a completion), which is cheap
 * then and ruinous once a burst has filled it.  ANALYZE gives the planner
 * the table's size and, through the relcache invalidation it sends, makes
 * every backend plan again.  Autovacuum would get there too, but only
 * after autovacuum_naptime (a minute by default); this step reacts within
 * queue.naptime.  A table counts as grown when it has over 1,000 live
 * rows and over four times the rows of its last ANALYZE (the live count
 * comes from the cumulative statistics, flushed by backends about once a
 * second).  SKIP_LOCKED: a table that a VACUUM holds is left for the next
 * pass, rather than stall the worker (relay included) or cancel an
 * autovacuum.
 */
static int64
analyze_grown_tables(const char *activity, const char *sql, int32 batch_size)
{
	int64		n = 0;
	int			rc;

	step_begin(activity);

	rc = SPI_execute(sql, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "%s failed: %s", activity, SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		SPITupleTable *grown = SPI_tuptable;
		uint64		ngrown = SPI_processed;

		for (uint64 i = 0; i < ngrown; i++)
		{
			char	   *relname = SPI_getvalue(grown->vals[i], grown->tupdesc, 1);

			rc = SPI_execute(psprintf("ANALYZE (SKIP_LOCKED) queue.%s", quote_identifier(relname)),
							 false, 0);
			if (rc != SPI_OK_UTILITY)
				elog(ERROR, "ANALYZE of queue.%s failed: %s", relname,
					 SPI_result_code_string(rc));
			n++;
		}
	}

	step_end();
	return n;
}

/*
 * The statement that finds the grown tables (see analyze_grown_tables).
 */
#define GROWN_TABLES_SQL \
	"SELECT c.relname::text FROM pg_catalog.pg_class c" \
	"  JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace" \
	" WHERE s.nspname = 'queue' AND c.relname IN ('job', 'event')" \
	"   AND c.relkind = 'r'" \
	"   AND pg_catalog.pg_stat_get_live_tuples(c.oid) > 1000" \
	"   AND pg_catalog.pg_stat_get_live_tuples(c.oid) >" \
	"       4 * GREATEST(c.reltuples, 0)" \
	" ORDER BY c.relname"

/* A maintenance step: run_step or analyze_grown_tables. */
typedef int64 (*MaintenanceStep) (const char *activity, const char *sql, int32 batch_size);

/*
 * guarded_step
 *		A step, with its errors caught: a failed step is rolled back and
 *		reported (at most once every ERROR_LOG_INTERVAL_MS), *failed is set,
 *		and 0 is returned, so that the pass goes on with the next step.
 */
static int64
guarded_step(MaintenanceStep step, const char *activity, const char *sql,
			 int32 batch_size, bool *failed, TimestampTz *last_error_log)
{
	MemoryContext context = CurrentMemoryContext;
	int64		result = 0;

	PG_TRY();
	{
		result = step(activity, sql, batch_size);
	}
	PG_CATCH();
	{
		TimestampTz now = GetCurrentTimestamp();

		MemoryContextSwitchTo(context);
		*failed = true;
		if (TimestampDifferenceExceeds(*last_error_log, now, ERROR_LOG_INTERVAL_MS))
		{
			EmitErrorReport();
			*last_error_log = now;
		}
		FlushErrorState();

		/*
		 * As a backend's error recovery does: a lock or statement timeout
		 * that fired would otherwise leave its timer armed.
		 */
		disable_all_timeouts(false);
		QueryCancelPending = false;
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		result = 0;
	}
	PG_END_TRY();
	return result;
}

/*
 * queue_worker_main
 *		Entry point of a database worker; main_arg is the database OID.
 */
void
queue_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	MemoryContext pass_context;
	TimestampTz last_error_log = 0;
	TimestampTz last_maintenance = 0;
	int			failures = 0;
	bool		said_missing = false;
	char	   *dbname;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("queue worker");

	StartTransactionCommand();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();

	before_shmem_exit(worker_exit, (Datum) 0);
	SpinLockAcquire(&queue_shared->mutex);
	{
		QueueWorkerStatus *e = status_entry(MyDatabaseId);

		if (e != NULL)
		{
			e->pid = MyProcPid;
			e->procno = MyProc->pgprocno;
			e->started_at = GetCurrentTimestamp();
		}
	}
	SpinLockRelease(&queue_shared->mutex);

	pass_context = AllocSetContextCreate(TopMemoryContext, "queue worker pass",
										 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		int64		relayed = 0;
		int64		expired = 0;
		int64		pruned = 0;
		int64		events_pruned = 0;
		bool		failed = false;
		TimestampTz now = GetCurrentTimestamp();
		bool		maintain = TimestampDifferenceExceeds(last_maintenance, now,
														  queue_naptime_ms);
		long		nap;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextSwitchTo(pass_context);
		relayed = guarded_step(run_step, "queue: relaying events", "SELECT queue.relay($1)::bigint",
							   Min(queue_relay_batch_size, queue_max_batch_size),
							   &failed, &last_error_log);
		if (relayed >= 0 && maintain)
		{
			last_maintenance = now;
			expired = guarded_step(run_step, "queue: expiring leases", "SELECT queue.expire_leases($1)",
								   queue_maintenance_batch_size, &failed, &last_error_log);
			(void) guarded_step(run_step, "queue: expiring saga deadlines",
								"SELECT queue.expire_saga_deadlines($1)",
								queue_maintenance_batch_size, &failed, &last_error_log);
			pruned = guarded_step(run_step, "queue: pruning finished jobs", "SELECT queue.prune($1)",
								  queue_maintenance_batch_size, &failed, &last_error_log);
			events_pruned = guarded_step(run_step, "queue: pruning relayed events",
								   "SELECT queue.prune_events($1)",
								   queue_maintenance_batch_size, &failed, &last_error_log);
			(void) guarded_step(analyze_grown_tables, "queue: analyzing grown tables",
								GROWN_TABLES_SQL, 0, &failed, &last_error_log);
		}
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(pass_context);
		expired = Max(expired, 0);
		pruned = Max(pruned, 0);
		events_pruned = Max(events_pruned, 0);

		if (failed)
		{
			failures++;
			status_update("backing off after an error", 0, 0, 0, 0, 1);
		}
		else if (relayed == -1)
		{
			failures = 0;
			if (!said_missing)
				ereport(LOG,
						(errmsg("queue worker: extension \"queue\" is not installed in database \"%s\"; waiting for CREATE EXTENSION",
								dbname)));
			said_missing = true;
			status_update("waiting for CREATE EXTENSION", 0, 0, 0, 0, 0);
		}
		else
		{
			failures = 0;
			if (said_missing)
				ereport(LOG,
						(errmsg("queue worker: extension \"queue\" found in database \"%s\"; maintenance resumes",
								dbname)));
			said_missing = false;
			status_update("idle", Max(relayed, 0), expired, pruned,
						  Max(events_pruned, 0), 0);
		}

		/*
		 * Sleep until a publishing commit sets the latch, the relay's idle
		 * interval passes, or maintenance is due.  After failures, back off:
		 * naptime doubled per failure, up to a minute.
		 */
		if (failures > 0)
		{
			nap = queue_naptime_ms;
			for (int i = 0; i < failures && nap < RESTART_MAX_MS; i++)
				nap *= 2;
			nap = Min(nap, Max(RESTART_MAX_MS, queue_naptime_ms));
		}
		else if (said_missing)
			nap = queue_naptime_ms;
		else if (relayed >= (int64) MAX_ROUNDS_PER_STEP *
				 Min(queue_relay_batch_size, queue_max_batch_size))
			nap = 0;			/* the relay stopped with events left: go on */
		else
			nap = Min(queue_relay_idle_ms, queue_naptime_ms);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
