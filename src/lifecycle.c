/*
 * lifecycle.c
 *		What the extension does around the server's own DDL, through one
 *		utility hook installed when the library is preloaded:
 *
 *		- before DROP DATABASE (with or without FORCE) by its owner or a
 *		  superuser, the database's worker is stopped and exits with code 0, so the drop finds no one
 *		  connected and the postmaster keeps no worker to restart into a
 *		  database that is gone (Citus's maintenance daemon does the same);
 *		- after a DROP that removed the extension (DROP EXTENSION, or DROP
 *		  SCHEMA ... CASCADE), its pg_cron jobs in this database are
 *		  unscheduled and its schema, which CREATE EXTENSION created and
 *		  DROP EXTENSION leaves, is dropped when nothing is left in it.
 *
 *		A sql_drop event trigger cannot do the second: one that belongs to
 *		the extension is dropped with it before sql_drop fires, and one that
 *		does not would outlive it.
 */
#include "lifecycle.h"

#include "jobs.h"
#include "worker.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_namespace.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"

static ProcessUtility_hook_type PreviousProcessUtility = NULL;

/*
 * SchemaIsEmpty reports whether no object lives in the schema: nothing
 * depends on it but what is dropped with it (default privileges).
 */
static bool
SchemaIsEmpty(Oid schema)
{
	Relation	rel = table_open(DependRelationId, AccessShareLock);
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		empty = true;

	ScanKeyInit(&keys[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(NamespaceRelationId));
	ScanKeyInit(&keys[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(schema));
	scan = systable_beginscan(rel, DependReferenceIndexId, true, NULL, 2, keys);
	while (empty && HeapTupleIsValid(tuple = systable_getnext(scan)))
		empty = ((Form_pg_depend) GETSTRUCT(tuple))->deptype == DEPENDENCY_AUTO;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return empty;
}

/*
 * ForgetDroppedExtension runs after the extension was dropped: it
 * unschedules the extension's pg_cron jobs in this database and drops the
 * schema personalisation when it is empty and the current user owns it.
 */
static void
ForgetDroppedExtension(void)
{
	Oid			schema = get_namespace_oid("personalisation", true);

	UnscheduleJobs();
	if (OidIsValid(schema) && SchemaIsEmpty(schema) && pg_namespace_ownercheck(schema, GetUserId()))
	{
		ObjectAddress address = {NamespaceRelationId, schema, 0};

		performDeletion(&address, DROP_RESTRICT, 0);
	}
}

/*
 * LifecycleProcessUtility stops a database's worker before DROP DATABASE,
 * and cleans up after a DROP that removed the extension; every other
 * statement passes through untouched.
 */
static void
LifecycleProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *statement = pstmt->utilityStmt;
	bool		had_extension = false;

	if (IsA(statement, DropdbStmt))
	{
		Oid			database_id = get_database_oid(((DropdbStmt *) statement)->dbname, true);

		/* only someone who may drop the database stops its worker */
		if (OidIsValid(database_id) && pg_database_ownercheck(database_id, GetUserId()))
			StopDatabaseWorker(database_id);
	}
	else if (IsA(statement, DropStmt))
		had_extension = OidIsValid(get_extension_oid("personalisation", true));

	if (PreviousProcessUtility)
		PreviousProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);

	if (had_extension && !OidIsValid(get_extension_oid("personalisation", true)))
		ForgetDroppedExtension();
}

/*
 * LifecycleInit installs the utility hook when the library is preloaded,
 * so that every backend, whichever database it is in, has it.
 */
void
LifecycleInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	PreviousProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = LifecycleProcessUtility;
}
