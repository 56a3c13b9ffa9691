/*
 * worker_main.c
 *		The background worker's process: one per database that uses the
 *		extension (worker.c starts, wakes and stops it).  Each unit of work
 *		declares abandoned carts and enqueues due journey steps through the
 *		same RunDue() as run_due(), so the two never conflict or duplicate;
 *		where pg_cron has no personalisation:* job for the database, it also
 *		runs the periodic maintenance jobs on their schedules (jobs.c).
 *		Between wake-ups it sleeps until the next cart passes the abandonment
 *		threshold or the next step falls due, but no longer than
 *		personalisation.worker_naptime.
 */
#include "worker.h"

#include "jobs.h"
#include "journey.h"

#include "miscadmin.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
/* Most journey runs one unit of work advances, to keep transactions short. */
#define WORKER_BATCH_RUNS 500
/*
 * Shortest time between the starts of two runs when commits wake the
 * worker: a burst of cart changes is handled by one run every this many
 * milliseconds rather than one run per commit.
 */
#define WORKER_MIN_WAKE_INTERVAL_MS 50
/* Longest pause after repeated errors. */
#define WORKER_MAX_BACKOFF_MS (60 * 1000)

/*
 * LockExtension holds the extension against DROP EXTENSION until the end of
 * the transaction and reports whether it is (still) installed.  A unit of
 * work takes it before touching any of the extension's tables, as DROP
 * EXTENSION locks the extension before its members, so the two never
 * deadlock: whichever takes the extension first goes first.
 */
static bool
LockExtension(void)
{
	Oid			extension = get_extension_oid("personalisation", true);

	if (!OidIsValid(extension))
		return false;
	LockDatabaseObject(ExtensionRelationId, extension, 0, AccessShareLock);
	/* a DROP EXTENSION we waited for has committed by now: look again */
	return OidIsValid(get_extension_oid("personalisation", true));
}

/*
 * StartWorkerTransaction starts a transaction of the worker, with a
 * snapshot, and pins search_path to pg_catalog, pg_temp for it, returning
 * the GUC level for UnpinSearchPath.  The worker connects as the
 * extension's owner, often a superuser, with whatever search_path the
 * configuration, the database or the role sets ("$user", public by
 * default, where any role that may create objects in public can shadow an
 * operator).  The path is pinned here, at the start of every transaction,
 * rather than once at start-up: a setting changed by anything a unit of
 * work runs is undone when its level ends, and the next unit starts
 * pinned again, so no statement can carry another path into later work.
 */
static int
StartWorkerTransaction(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	return PinSearchPath();
}

/*
 * RunUnitOfWork runs RunDue(now) over at most WORKER_BATCH_RUNS runs in a
 * transaction of its own, and sets *more when work remains; when none
 * does, it sets *next_due_at to the next instant work falls due
 * (NextDueAt), DT_NOEND when nothing is scheduled.  It returns the messages
 * written, or -1 when the extension is gone from the database, which ends
 * the worker.
 */
static int
RunUnitOfWork(bool *more, TimestampTz *next_due_at)
{
	int			actions = 0;
	bool		installed;
	TimestampTz now;
	int			pinned_level = StartWorkerTransaction();

	pgstat_report_activity(STATE_RUNNING, "personalisation: run due work");

	installed = LockExtension();
	*more = false;
	*next_due_at = DT_NOEND;
	if (installed)
	{
		now = GetCurrentTimestamp();
		actions = RunDue(now, WORKER_BATCH_RUNS, more);
		if (!*more)
			*next_due_at = NextDueAt(now);
	}

	UnpinSearchPath(pinned_level);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(true);
	return installed ? actions : -1;
}

/*
 * SleepMs returns how long the worker sleeps after a run with nothing left
 * to do: until next_due_at, when work falls due then, but at most
 * personalisation.worker_naptime.
 */
static long
SleepMs(TimestampTz next_due_at)
{
	if (next_due_at == DT_NOEND)
		return WorkerNaptimeMs;
	/* rounded up, so that the next run's now is at or past next_due_at */
	return Min(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_due_at),
			   (long) WorkerNaptimeMs);
}

/*
 * AwaitWakeInterval lets a worker woken by a commit start its next run no
 * sooner than WORKER_MIN_WAKE_INTERVAL_MS after the last one started, so
 * that the commits arriving meanwhile share that run.  A termination
 * request is acted on when the wait is over.
 */
static void
AwaitWakeInterval(TimestampTz run_started_at)
{
	long		remaining_ms = WORKER_MIN_WAKE_INTERVAL_MS -
		TimestampDifferenceMilliseconds(run_started_at, GetCurrentTimestamp());

	CHECK_FOR_INTERRUPTS();
	if (remaining_ms > 0)
		(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, remaining_ms, PG_WAIT_EXTENSION);
}

/*
 * MsToNextMinute returns the milliseconds left until the next whole minute,
 * when the periodic jobs may fall due.
 */
static long
MsToNextMinute(TimestampTz now)
{
	return (USECS_PER_MINUTE - now % USECS_PER_MINUTE) / 1000 + 1;
}

/*
 * RecordFailure logs the error being handled, notes it in the slot and
 * aborts its transaction, so that the worker goes on.  what_next says, in
 * the log's detail, when the work is tried again.
 */
static void
RecordFailure(MemoryContext context, const char *what_next)
{
	ErrorData  *error;

	MemoryContextSwitchTo(context);
	error = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	ereport(LOG,
			(errmsg("personalisation worker: %s", error->message),
			 errdetail("%s", what_next)));
	RecordRun(0, error->message);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * StartJobTransaction starts a worker transaction (StartWorkerTransaction:
 * search_path pinned) for a periodic job, shows the job in
 * pg_stat_activity, and returns the pinned GUC level.
 */
static int
StartJobTransaction(const char *activity)
{
	int			pinned_level = StartWorkerTransaction();

	pgstat_report_activity(STATE_RUNNING, activity);
	return pinned_level;
}

/*
 * FinishJobTransaction unpins the search path and commits what
 * StartJobTransaction started.
 */
static void
FinishJobTransaction(int pinned_level)
{
	UnpinSearchPath(pinned_level);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * RunScheduledJobs runs, each in a transaction of its own, the periodic
 * jobs with a scheduled minute in (since, until], unless pg_cron has
 * personalisation:* jobs for this database and so runs them itself.  A job
 * that fails is logged and runs again at its next minute.  It returns
 * false when the extension is gone from the database.
 */
static bool
RunScheduledJobs(TimestampTz since, TimestampTz until, MemoryContext context)
{
	List	   *due = NIL;
	bool		installed;
	ListCell   *cell;
	int			pinned_level;

	pinned_level = StartJobTransaction("personalisation: look up due periodic jobs");
	installed = LockExtension();
	if (installed)
	{
		SPI_connect();
		if (!PgCronRunsJobs())
		{
			MemoryContext previous = MemoryContextSwitchTo(context);

			due = WorkerJobsDue(since, until);
			MemoryContextSwitchTo(previous);
		}
		SPI_finish();
	}
	FinishJobTransaction(pinned_level);

	foreach(cell, due)
	{
		const char *command = lfirst(cell);

		PG_TRY();
		{
			pinned_level = StartJobTransaction(command);
			if (LockExtension())
			{
				SPI_connect();
				(void) ExecPinned(command, 0, NULL, NULL, NULL, false, 0);
				SPI_finish();
			}
			FinishJobTransaction(pinned_level);
		}
		PG_CATCH();
		{
			RecordFailure(context, "The job runs again at its next scheduled minute.");
		}
		PG_END_TRY();
	}
	return installed;
}

/*
 * PersonalisationWorkerMain is the worker's entry point: connect, then
 * loop until told to stop, running one unit of work per wake-up, when the
 * next cart passes the abandonment threshold or the next step falls due,
 * or after the naptime, whichever comes first, and the periodic jobs due
 * at each new minute first.  Told to stop (its extension dropped, workers
 * disabled, its database about to be dropped), it exits with code 0, which
 * the postmaster does not restart.  Errors are logged and retried after a
 * pause that doubles with each consecutive failure, so a persistent fault
 * never crash-loops.
 */
void
PersonalisationWorkerMain(Datum main_arg)
{
	Oid			database_id = DatumGetObjectId(main_arg);
	Oid			owner;
	MemoryContext loop_context;
	int			backoff_ms = 0;
	TimestampTz jobs_checked_at;

	memcpy(&owner, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* its database was dropped while it waited to be restarted */
	if (StopRequested(database_id, true))
		proc_exit(0);

	BackgroundWorkerInitializeConnectionByOid(database_id, owner, 0);
	pgstat_report_appname("personalisation worker");

	/*
	 * The worker yields to DDL: when its run deadlocks with, say, DROP
	 * EXTENSION, its own deadlock check fires first and it is the one
	 * aborted; it retries after a pause and then finds the extension gone.
	 */
	SetConfigOption("deadlock_timeout", "100ms", PGC_SUSET, PGC_S_OVERRIDE);

	if (!ClaimSlot(database_id))
		proc_exit(0);
	before_shmem_exit(ReleaseSlot, (Datum) 0);

	loop_context = AllocSetContextCreate(TopMemoryContext, "personalisation worker loop",
										 ALLOCSET_DEFAULT_SIZES);
	jobs_checked_at = GetCurrentTimestamp();

	for (;;)
	{
		int			actions = 0;
		bool		more = false;
		TimestampTz next_due_at = DT_NOEND;
		TimestampTz run_started_at;
		long		sleep_ms;
		int			woken_by;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!WorkerEnabled || StopRequested(database_id, false))
			proc_exit(0);

		MemoryContextSwitchTo(loop_context);
		run_started_at = GetCurrentTimestamp();
		if (run_started_at / USECS_PER_MINUTE != jobs_checked_at / USECS_PER_MINUTE)
		{
			PG_TRY();
			{
				if (!RunScheduledJobs(jobs_checked_at, run_started_at, loop_context))
					proc_exit(0);
			}
			PG_CATCH();
			{
				RecordFailure(loop_context, "The periodic jobs are looked up again at the next minute.");
			}
			PG_END_TRY();
			jobs_checked_at = run_started_at;
			run_started_at = GetCurrentTimestamp();
			MemoryContextSwitchTo(loop_context);
		}

		PG_TRY();
		{
			actions = RunUnitOfWork(&more, &next_due_at);
			backoff_ms = 0;
		}
		PG_CATCH();
		{
			RecordFailure(loop_context, "The work is retried after a pause.");
			backoff_ms = Min(Max(backoff_ms * 2, WorkerNaptimeMs), WORKER_MAX_BACKOFF_MS);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);

		if (actions < 0)
			proc_exit(0);
		if (backoff_ms == 0)
			RecordRun(actions, NULL);
		if (more && backoff_ms == 0)
			continue;

		sleep_ms = backoff_ms > 0 ? backoff_ms : SleepMs(next_due_at);
		sleep_ms = Min(sleep_ms, MsToNextMinute(GetCurrentTimestamp()));
		if (sleep_ms <= 0)
			continue;
		woken_by = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (woken_by & WL_LATCH_SET)
			AwaitWakeInterval(run_started_at);
	}
}
