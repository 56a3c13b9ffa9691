/*
 * worker.c
 *		The background worker's control: one worker per database that uses
 *		the extension, acting within seconds where pg_cron's minute would be
 *		too slow (its process is worker_main.c).  This part owns the shared
 *		memory slots, starting, waking and stopping workers, and their status.
 *
 *		Workers start lazily, as Citus's maintenance daemon does: the first
 *		transaction that changes a cart (or ends a session, or buys) in a
 *		database without a worker registers one, connected as the
 *		extension's owner.  When the server starts or a standby is promoted,
 *		the launcher (launcher.c) has the worker started in every database
 *		where the extension is installed.
 *		Afterwards cart-changing transactions wake it at commit by setting
 *		its latch through shared memory (NOTIFY would take a global lock at
 *		commit).  Between wake-ups it sleeps until the next cart passes the
 *		abandonment threshold or the next step falls due, but no longer than
 *		personalisation.worker_naptime.
 *
 *		A worker whose extension was dropped exits quietly and is not
 *		restarted; one that is terminated or crashes is restarted by the
 *		postmaster.  Before DROP DATABASE (lifecycle.c) its worker is asked
 *		to stop and exits with code 0, so it is neither restarted nor in the
 *		way of the drop.  On a standby nothing starts until promotion.
 */
#include "worker.h"

#include "miscadmin.h"
#include "access/genam.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "funcapi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"

PG_FUNCTION_INFO_V1(worker_status);
PG_FUNCTION_INFO_V1(start_worker);

/* How many databases can have a worker at once. */
#define MAX_WORKER_DATABASES 64

/* Seconds the postmaster waits before restarting a terminated worker. */
#define WORKER_RESTART_SECONDS 2

/* Longest a DROP DATABASE waits for the database's worker to stop. */
#define WORKER_STOP_WAIT_MS (10 * 1000)




/* One database's worker, as the backends and the worker itself see it. */
typedef struct WorkerSlot
{
	Oid			database_id;	/* InvalidOid: slot free */
	pid_t		pid;			/* 0 until the worker runs */
	Latch	   *latch;			/* the worker's latch, NULL until it runs */
	TimestampTz started_at;
	TimestampTz last_run_at;
	int64		runs;
	int64		actions;		/* what RunDue reported doing, summed */
	int64		errors;
	TimestampTz last_error_at;
	char		last_error[256];
	bool		stop_requested; /* its database is being dropped */
} WorkerSlot;

typedef struct WorkerSharedState
{
	LWLock	   *lock;
	bool		start_failure_logged;	/* until a worker starts again */
	WorkerSlot	slots[MAX_WORKER_DATABASES];
} WorkerSharedState;

bool		WorkerEnabled = true;
int			WorkerNaptimeMs = 1000;

static WorkerSharedState *WorkerShared = NULL;
static shmem_request_hook_type PreviousShmemRequestHook = NULL;
static shmem_startup_hook_type PreviousShmemStartupHook = NULL;

/* Backend side: a wake-up requested by the current transaction. */
static bool WakeAtCommit = false;
static Oid	WakeAsOwner = InvalidOid;

/*
 * WorkerShmemRequest asks for the shared state and its lock.
 */
static void
WorkerShmemRequest(void)
{
	if (PreviousShmemRequestHook)
		PreviousShmemRequestHook();
	RequestAddinShmemSpace(sizeof(WorkerSharedState));
	RequestNamedLWLockTranche("personalisation worker", 1);
}

/*
 * WorkerShmemStartup attaches to (or, first, creates) the shared state.
 */
static void
WorkerShmemStartup(void)
{
	bool		found;

	if (PreviousShmemStartupHook)
		PreviousShmemStartupHook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	WorkerShared = ShmemInitStruct("personalisation worker", sizeof(WorkerSharedState), &found);
	if (!found)
	{
		memset(WorkerShared, 0, sizeof(WorkerSharedState));
		WorkerShared->lock = &(GetNamedLWLockTranche("personalisation worker"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * FindSlot returns the slot of database_id, or NULL.  The caller holds the
 * lock.
 */
static WorkerSlot *
FindSlot(Oid database_id)
{
	for (int i = 0; i < MAX_WORKER_DATABASES; i++)
		if (WorkerShared->slots[i].database_id == database_id)
			return &WorkerShared->slots[i];
	return NULL;
}

/*
 * ExtensionOwner returns the role that owns the extension in the current
 * database, or InvalidOid when it is not installed.
 */
Oid
ExtensionOwner(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			owner = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("personalisation"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return owner;
}

/*
 * LogStartFailureOnce tells the server log, and not the application whose
 * commit asked for it, that this database's worker could not be started:
 * once, until a worker starts again, however many commits retry.
 */
void
LogStartFailureOnce(Oid database_id, const char *detail, const char *hint)
{
	bool		first;

	LWLockAcquire(WorkerShared->lock, LW_EXCLUSIVE);
	first = !WorkerShared->start_failure_logged;
	WorkerShared->start_failure_logged = true;
	LWLockRelease(WorkerShared->lock);

	if (first)
		ereport(LOG_SERVER_ONLY,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the personalisation worker for database %u", database_id),
				 errdetail("%s This is logged once until a worker starts again.", detail),
				 errhint("%s Until a worker runs, carts are declared abandoned and journey steps sent only by "
						 "calls to run_due(), such as the personalisation:run-due job where schedule_jobs() "
						 "registered it with pg_cron.", hint),
				 errhidestmt(true), errhidecontext(true)));
}

/*
 * DescribeWorker fills in a background worker of the library: its entry
 * function, type, database and the role it connects as (InvalidOid: the
 * bootstrap superuser).
 */
void
DescribeWorker(BackgroundWorker *worker, const char *function, const char *type,
			   Oid database_id, Oid owner)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "personalisation");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
	if (OidIsValid(database_id))
		snprintf(worker->bgw_name, BGW_MAXLEN, "%s for database %u", type, database_id);
	else
		snprintf(worker->bgw_name, BGW_MAXLEN, "%s", type);
	worker->bgw_main_arg = ObjectIdGetDatum(database_id);
	memcpy(worker->bgw_extra, &owner, sizeof(Oid));
}

/*
 * RegisterWorker asks the postmaster for a worker for the current database,
 * connecting as owner.  It returns false, logging why once, when no
 * background worker slot is free.
 */
static bool
RegisterWorker(Oid owner)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	DescribeWorker(&worker, "PersonalisationWorkerMain", "personalisation worker", MyDatabaseId, owner);
	worker.bgw_restart_time = WORKER_RESTART_SECONDS;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		LogStartFailureOnce(MyDatabaseId,
							"Every background worker slot is taken.",
							"Raise max_worker_processes (each database using the extension takes one) and restart the server.");
		return false;
	}
	LWLockAcquire(WorkerShared->lock, LW_EXCLUSIVE);
	WorkerShared->start_failure_logged = false;
	LWLockRelease(WorkerShared->lock);
	return true;
}

/*
 * WakeOrStartWorker sets the latch of this database's worker, or registers
 * a worker when there is none.  It reports whether a worker is (now)
 * registered.
 */
bool
WakeOrStartWorker(Oid owner)
{
	WorkerSlot *slot;
	Latch	   *latch = NULL;
	bool		need_start = false;

	LWLockAcquire(WorkerShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(MyDatabaseId);
	if (slot != NULL)
		latch = slot->stop_requested ? NULL : slot->latch;
	else if ((slot = FindSlot(InvalidOid)) != NULL)
	{
		memset(slot, 0, sizeof(WorkerSlot));
		slot->database_id = MyDatabaseId;
		need_start = true;
	}
	LWLockRelease(WorkerShared->lock);

	if (latch != NULL)
		SetLatch(latch);
	if (slot == NULL)
		LogStartFailureOnce(MyDatabaseId,
							psprintf("All %d personalisation worker slots are taken by other databases.",
									 MAX_WORKER_DATABASES),
							"Drop the extension from databases that no longer use it.");
	if (!need_start)
		return slot != NULL;

	if (RegisterWorker(owner))
		return true;

	LWLockAcquire(WorkerShared->lock, LW_EXCLUSIVE);
	slot->database_id = InvalidOid;
	LWLockRelease(WorkerShared->lock);
	return false;
}

/*
 * WakeWorkerAtCommit is called by every change that may create work for the
 * worker (a cart change, a session end, a purchase): when the transaction
 * commits, the worker is woken, or started if it is not running yet.
 */
void
WakeWorkerAtCommit(void)
{
	if (WorkerShared == NULL || !WorkerEnabled || WakeAtCommit)
		return;
	WakeAsOwner = ExtensionOwner();
	WakeAtCommit = OidIsValid(WakeAsOwner);
}

/*
 * StartWorkerAtCommit asks for this database's worker to be started (or
 * woken) when the transaction commits, whatever this backend believes
 * personalisation.worker_enabled to be: a worker reads the setting itself
 * and exits at once when it is off.  Registering only at commit matters:
 * a worker started inside CREATE EXTENSION's transaction would not yet see
 * the extension and would exit for good.
 */
static bool
StartWorkerAtCommit(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the personalisation worker cannot run on a standby"),
				 errdetail("This server is in recovery; its databases get their workers when it is promoted."),
				 errhint("Call start_worker() on the primary server.")));
	if (!WakeAtCommit)
	{
		WakeAsOwner = ExtensionOwner();
		WakeAtCommit = OidIsValid(WakeAsOwner);
	}
	return WakeAtCommit;
}

/*
 * WorkerXactCallback performs the wake-up a committed transaction asked
 * for; an aborted one asked for nothing.
 */
static void
WorkerXactCallback(XactEvent event, void *arg)
{
	if (!WakeAtCommit)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		WakeAtCommit = false;
		WakeOrStartWorker(WakeAsOwner);
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		WakeAtCommit = false;
}

/*
 * WorkerInit installs the shared-memory hooks when the library is
 * preloaded, and the commit callback that wakes workers.
 */
void
WorkerInit(void)
{
	DefineCustomBoolVariable("personalisation.worker_enabled",
							 "Whether each database using the extension gets a background worker.",
							 "Turned off, running workers exit and none start; run_due() and the maintenance jobs then run only when called, "
							 "for example by the pg_cron jobs schedule_jobs() registers.",
							 &WorkerEnabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.worker_naptime",
							"The longest the background worker sleeps between runs.",
							"It wakes sooner at a committed cart change, and when the next cart passes abandon_after or the next journey step falls due.",
							&WorkerNaptimeMs,
							1000, 10, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	PreviousShmemRequestHook = shmem_request_hook;
	shmem_request_hook = WorkerShmemRequest;
	PreviousShmemStartupHook = shmem_startup_hook;
	shmem_startup_hook = WorkerShmemStartup;
	RegisterXactCallback(WorkerXactCallback, NULL);
}

/*
 * WorkerRunsHere reports whether this database is served by a worker: the
 * library is preloaded, workers are enabled and the server is no standby.
 */
bool
WorkerRunsHere(void)
{
	return WorkerShared != NULL && WorkerEnabled && !RecoveryInProgress();
}

/*
 * StopDatabaseWorker asks the worker of database_id to exit for good, and
 * waits (up to WORKER_STOP_WAIT_MS) until it has: DROP DATABASE calls it
 * first, so that the drop finds no one connected and the postmaster has
 * no worker to restart into a database that is gone.  A worker waiting to
 * be restarted exits as soon as it starts.
 */
void
StopDatabaseWorker(Oid database_id)
{
	WorkerSlot *slot;
	Latch	   *latch = NULL;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WORKER_STOP_WAIT_MS);

	if (WorkerShared == NULL || !OidIsValid(database_id))
		return;

	LWLockAcquire(WorkerShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(database_id);
	if (slot != NULL)
	{
		slot->stop_requested = true;
		latch = slot->latch;
	}
	LWLockRelease(WorkerShared->lock);
	if (slot == NULL)
		return;
	if (latch != NULL)
		SetLatch(latch);

	for (;;)
	{
		bool		gone;

		LWLockAcquire(WorkerShared->lock, LW_SHARED);
		gone = FindSlot(database_id) == NULL;
		LWLockRelease(WorkerShared->lock);
		if (gone || GetCurrentTimestamp() >= deadline)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * StopRequested reports whether this database's worker has been asked to
 * stop.  With free_slot, as a worker that has not claimed its slot yet
 * leaves, it frees the slot, as no process would otherwise; a running
 * worker's slot is freed as it exits (ReleaseSlot).
 */
bool
StopRequested(Oid database_id, bool free_slot)
{
	WorkerSlot *slot;
	bool		requested;

	LWLockAcquire(WorkerShared->lock, free_slot ? LW_EXCLUSIVE : LW_SHARED);
	slot = FindSlot(database_id);
	requested = slot != NULL && slot->stop_requested;
	if (requested && free_slot)
		slot->database_id = InvalidOid;
	LWLockRelease(WorkerShared->lock);
	return requested;
}

/*
 * ReleaseSlot frees this worker's slot; it runs as the worker exits.
 */
void
ReleaseSlot(int code, Datum arg)
{
	WorkerSlot *slot;

	LWLockAcquire(WorkerShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(MyDatabaseId);
	if (slot != NULL && slot->pid == MyProcPid)
	{
		slot->pid = 0;
		slot->latch = NULL;
		/* a clean exit (extension dropped, worker disabled) frees the slot for good */
		if (code == 0)
			slot->database_id = InvalidOid;
	}
	LWLockRelease(WorkerShared->lock);
}

/*
 * ClaimSlot records this process as its database's worker, taking a slot
 * when the one its registering backend took is gone (after a crash
 * restart, shared memory starts empty).  It returns false when every slot
 * is taken.
 */
bool
ClaimSlot(Oid database_id)
{
	WorkerSlot *slot;

	LWLockAcquire(WorkerShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(database_id);
	if (slot == NULL && (slot = FindSlot(InvalidOid)) != NULL)
	{
		memset(slot, 0, sizeof(WorkerSlot));
		slot->database_id = database_id;
	}
	if (slot != NULL)
	{
		slot->pid = MyProcPid;
		slot->latch = MyLatch;
		slot->started_at = GetCurrentTimestamp();
	}
	LWLockRelease(WorkerShared->lock);
	return slot != NULL;
}

/*
 * RecordRun notes a unit of work in the slot: its time and what it did, or
 * the error it raised.
 */
void
RecordRun(int actions, const char *error)
{
	WorkerSlot *slot;

	LWLockAcquire(WorkerShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(MyDatabaseId);
	if (slot != NULL)
	{
		slot->last_run_at = GetCurrentTimestamp();
		slot->runs++;
		slot->actions += actions;
		if (error != NULL)
		{
			slot->errors++;
			slot->last_error_at = slot->last_run_at;
			strlcpy(slot->last_error, error, sizeof(slot->last_error));
		}
	}
	LWLockRelease(WorkerShared->lock);
}

/*
 * RequireWorkerSupport refuses worker functions when the library was not
 * preloaded, saying how to fix that.
 */
static void
RequireWorkerSupport(void)
{
	if (WorkerShared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the personalisation worker needs the library preloaded"),
				 errhint("Add personalisation to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * start_worker has this database's worker started, if it is not running,
 * when the calling transaction commits (it also starts by itself on the
 * first cart change), and reports whether that will be tried.
 */
Datum
start_worker(PG_FUNCTION_ARGS)
{
	RequireWorkerSupport();
	PG_RETURN_BOOL(StartWorkerAtCommit());
}

/*
 * worker_status returns one row per database with a worker: its process,
 * when it started and last ran, how much it did, and its last error.
 */
Datum
worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerSlot	slots[MAX_WORKER_DATABASES];

	RequireWorkerSupport();
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(WorkerShared->lock, LW_SHARED);
	memcpy(slots, WorkerShared->slots, sizeof(slots));
	LWLockRelease(WorkerShared->lock);

	for (int i = 0; i < MAX_WORKER_DATABASES; i++)
	{
		WorkerSlot *slot = &slots[i];
		Datum		values[9];
		bool		nulls[9] = {false};

		if (!OidIsValid(slot->database_id))
			continue;
		values[0] = ObjectIdGetDatum(slot->database_id);
		values[1] = Int32GetDatum(slot->pid);
		nulls[1] = slot->pid == 0;
		values[2] = TimestampTzGetDatum(slot->started_at);
		nulls[2] = slot->started_at == 0;
		values[3] = TimestampTzGetDatum(slot->last_run_at);
		nulls[3] = slot->last_run_at == 0;
		values[4] = Int64GetDatum(slot->runs);
		values[5] = Int64GetDatum(slot->actions);
		values[6] = Int64GetDatum(slot->errors);
		values[7] = TimestampTzGetDatum(slot->last_error_at);
		nulls[7] = slot->last_error_at == 0;
		values[8] = CStringGetTextDatum(slot->last_error);
		nulls[8] = slot->last_error[0] == '\0';
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
