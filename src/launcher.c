/*
 * launcher.c
 *		The launcher: when the server starts, and when a standby is
 *		promoted, it starts the worker of every database that has the
 *		extension, instead of leaving them to the next cart change.  It
 *		connects to no database, lists pg_database, and starts in each
 *		database, one at a time, a short-lived probe that looks for the
 *		extension and starts the worker (worker.c) where it is installed.
 *		Both then exit; on a standby the postmaster runs neither before
 *		promotion.
 */
#include "launcher.h"

#include "worker.h"

#include "miscadmin.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* Seconds before a launcher that failed is run again. */
#define LAUNCHER_RESTART_SECONDS 10

void		PersonalisationLauncherMain(Datum main_arg);
void		PersonalisationProbeMain(Datum main_arg);

/*
 * ConnectableDatabases lists the databases a worker could serve: those
 * that accept connections and are not templates (a worker connected to a
 * template would block CREATE DATABASE from it).  The list lives in
 * context.
 */
static List *
ConnectableDatabases(MemoryContext context)
{
	List	   *databases = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database database = (Form_pg_database) GETSTRUCT(tuple);

		if (database->datallowconn && !database->datistemplate)
		{
			MemoryContext previous = MemoryContextSwitchTo(context);

			databases = lappend_oid(databases, database->oid);
			MemoryContextSwitchTo(previous);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return databases;
}

/*
 * PersonalisationLauncherMain runs once when the server starts or a
 * standby is promoted: connected to no database, it lists the databases
 * and has each probed in turn, one probe at a time, so that every database
 * with the extension gets its worker without waiting for a cart change.
 */
void
PersonalisationLauncherMain(Datum main_arg)
{
	List	   *databases;
	ListCell   *cell;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("personalisation launcher");

	if (!WorkerEnabled)
		proc_exit(0);

	databases = ConnectableDatabases(TopMemoryContext);
	foreach(cell, databases)
	{
		BackgroundWorker probe;
		BackgroundWorkerHandle *handle;
		pid_t		pid;
		Oid			database_id = lfirst_oid(cell);

		DescribeWorker(&probe, "PersonalisationProbeMain", "personalisation probe", database_id, InvalidOid);
		probe.bgw_notify_pid = MyProcPid;
		if (!RegisterDynamicBackgroundWorker(&probe, &handle))
		{
			LogStartFailureOnce(database_id,
								"Every background worker slot is taken, so the databases could not be probed at start-up.",
								"Raise max_worker_processes and restart the server.");
			break;
		}
		if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED)
			(void) WaitForBackgroundWorkerShutdown(handle);
		CHECK_FOR_INTERRUPTS();
	}
	proc_exit(0);
}

/*
 * PersonalisationProbeMain connects to one database as the bootstrap
 * superuser, looks for the extension, and when it is there starts the
 * database's worker as the extension's owner, as a cart change would.
 */
void
PersonalisationProbeMain(Datum main_arg)
{
	Oid			database_id = DatumGetObjectId(main_arg);
	Oid			owner;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(database_id, InvalidOid, 0);
	pgstat_report_appname("personalisation probe");

	StartTransactionCommand();
	owner = ExtensionOwner();
	CommitTransactionCommand();
	if (OidIsValid(owner))
		(void) WakeOrStartWorker(owner);
	proc_exit(0);
}

/*
 * LauncherInit registers the launcher when the library is preloaded.  It
 * runs once the server accepts writes: at start-up, or at promotion.
 */
void
LauncherInit(void)
{
	BackgroundWorker launcher;

	if (!process_shared_preload_libraries_in_progress)
		return;
	DescribeWorker(&launcher, "PersonalisationLauncherMain", "personalisation launcher",
				   InvalidOid, InvalidOid);
	launcher.bgw_restart_time = LAUNCHER_RESTART_SECONDS;
	RegisterBackgroundWorker(&launcher);
}
