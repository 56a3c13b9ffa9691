/*
 * direct.c
 *		Direct table access for the hot paths.  A page view reads its session
 *		and its product, claims its event id, appends the event and folds it
 *		into two affinity rows; a ranking reads the session, its profile and
 *		two affinity rows; a delivery worker's claim walks the outbox's queue
 *		and leases what it finds, and its acknowledgement marks messages
 *		delivered.  Through SPI every one of those statements pays
 *		for plan revalidation and executor start-up, many times what touching
 *		the row costs; here they go straight to the table and its indexes,
 *		with the locks, snapshots, index maintenance and concurrent-update
 *		rules the executor applies.  What is rare (a new session, a missing
 *		affinity row, a cart change) stays SQL.
 *
 *		Owns: the backend's cache of the extension's table OIDs, primary-key
 *		lookups, and inserts and in-place updates that compute stored
 *		generated columns, check NOT NULL and CHECK constraints and maintain
 *		every index of the table (a shop's own indexes included).  Triggers
 *		(so also foreign keys) on these tables do not fire for these writes,
 *		and column defaults are not applied: no correctness depends on
 *		triggers over per-person tables, and the callers set every column
 *		they know (docs/architecture.md, "The raw-access layer").
 */
#include "direct.h"

#include "miscadmin.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* The names of the DirectTableId relations, in the extension's schema. */
static const char *const DirectTableNames[DIRECT_TABLE_COUNT] = {
	[DIRECT_SESSIONS] = "sessions",
	[DIRECT_PROFILES] = "profiles",
	[DIRECT_PRODUCTS] = "products",
	[DIRECT_PRODUCT_POPULARITY] = "product_popularity",
	[DIRECT_CATEGORIES] = "categories",
	[DIRECT_EVENT_KEYS] = "event_keys",
	[DIRECT_AFFINITY] = "affinity",
	[DIRECT_OUTBOX] = "outbox",
	[DIRECT_OUTBOX_QUEUE_INDEX] = "outbox_queue_idx",
	[DIRECT_RANKING_EXPOSURES] = "ranking_exposures",
};

/* Their OIDs, looked up on first use; InvalidOid until then. */
static Oid	DirectTableOids[DIRECT_TABLE_COUNT];

/*
 * ForgetTableOids drops the cached OIDs when one of those relations (or,
 * for InvalidOid, any relation) is invalidated: a dropped and re-created
 * extension has new tables.
 */
static void
ForgetTableOids(Datum arg, Oid relid)
{
	for (int i = 0; i < DIRECT_TABLE_COUNT; i++)
		if (relid == InvalidOid || DirectTableOids[i] == relid)
			DirectTableOids[i] = InvalidOid;
}

/*
 * DirectTableExists says whether one of the extension's tables exists in
 * this database: a table added by a later version is absent from a database
 * not yet updated (ALTER EXTENSION personalisation UPDATE), which the
 * library keeps serving.  Absence is not cached, so the table is found as
 * soon as the update commits.
 */
bool
DirectTableExists(DirectTableId table)
{
	if (OidIsValid(DirectTableOids[table]))
		return true;
	DirectTableOids[table] = ExtensionSchemaRelid(DirectTableNames[table]);
	return OidIsValid(DirectTableOids[table]);
}

/*
 * DirectTableOid returns the OID of one of the extension's tables.
 */
static Oid
DirectTableOid(DirectTableId table)
{
	if (!OidIsValid(DirectTableOids[table]))
	{
		Oid			relid = ExtensionSchemaRelid(DirectTableNames[table]);

		if (!OidIsValid(relid))
			elog(ERROR, "table personalisation.%s is missing", DirectTableNames[table]);
		DirectTableOids[table] = relid;
	}
	return DirectTableOids[table];
}

/*
 * OpenDirect opens a table for direct access: reading only, or also
 * writing, with its indexes open for maintenance (and, for_unique_insert,
 * ready for DirectInsertIfUnique's conflict checks).
 */
static void
OpenDirect(DirectTable *table, Oid relid, bool for_write, bool for_unique_insert)
{
	table->estate = CreateExecutorState();
	table->rel = table_open(relid, for_write ? RowExclusiveLock : AccessShareLock);
	table->slot = ExecInitExtraTupleSlot(table->estate, RelationGetDescr(table->rel),
										 table_slot_callbacks(table->rel));
	table->row = ExecInitExtraTupleSlot(table->estate, RelationGetDescr(table->rel),
										table_slot_callbacks(table->rel));
	table->result = NULL;
	if (for_write)
	{
		if (XactReadOnly)
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("cannot write personalisation.%s in a read-only transaction",
							RelationGetRelationName(table->rel)),
					 errhint("Call the tracking and delivery functions on the primary, outside a READ ONLY transaction.")));
		/*
		 * No range table: index maintenance then treats every column as
		 * unchanged by an update, the truth for the keys updated here.
		 */
		table->result = makeNode(ResultRelInfo);
		InitResultRelInfo(table->result, table->rel, 0, NULL, 0);
		ExecOpenIndices(table->result, for_unique_insert);
	}
}

/*
 * OpenDirectTable opens one of the extension's tables for direct access.
 */
void
OpenDirectTable(DirectTable *table, DirectTableId which, bool for_write)
{
	OpenDirect(table, DirectTableOid(which), for_write, false);
}

/*
 * OpenDirectIndex opens one of the extension's indexes for scanning; the
 * caller closes it with index_close(index, NoLock).
 */
Relation
OpenDirectIndex(DirectTableId which)
{
	return index_open(DirectTableOid(which), AccessShareLock);
}

/*
 * OpenDirectTableForUniqueInsert opens one of the extension's tables for
 * DirectInsertIfUnique.
 */
void
OpenDirectTableForUniqueInsert(DirectTable *table, DirectTableId which)
{
	OpenDirect(table, DirectTableOid(which), true, true);
}

/*
 * OpenDirectRelation opens a relation its owner looked up (an event
 * partition that partitions.c names) for appending.
 */
void
OpenDirectRelation(DirectTable *table, Oid relid)
{
	OpenDirect(table, relid, true, false);
}

/*
 * CloseDirectTable releases what OpenDirectTable took but the lock, which
 * is held to the end of the transaction as for any statement.
 */
void
CloseDirectTable(DirectTable *table)
{
	if (table->result != NULL)
		ExecCloseIndices(table->result);
	ExecResetTupleTable(table->estate->es_tupleTable, false);
	FreeExecutorState(table->estate);
	table_close(table->rel, NoLock);
}

/*
 * DirectSnapshot makes what this transaction wrote so far visible and
 * returns a registered snapshot to read with: a new one per call under READ
 * COMMITTED (so a row committed while we waited for a lock is seen), the
 * transaction's under REPEATABLE READ and SERIALIZABLE, as SPI would use.
 */
Snapshot
DirectSnapshot(void)
{
	CommandCounterIncrement();
	return RegisterSnapshot(GetTransactionSnapshot());
}

/*
 * FetchByPrimaryKey reads the row whose primary key columns equal keys
 * (compared with eqprocs, under the index's collations) into table->row,
 * as `snapshot` sees it.  Returns whether there is one.
 */
bool
FetchByPrimaryKey(DirectTable *table, Snapshot snapshot, int nkeys, const Datum *keys,
				  const RegProcedure *eqprocs)
{
	Relation	index = index_open(RelationGetPrimaryKeyIndex(table->rel), AccessShareLock);
	ScanKeyData scankeys[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	bool		found;

	for (int i = 0; i < nkeys; i++)
		ScanKeyEntryInitialize(&scankeys[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
							   index->rd_indcollation[i], eqprocs[i], keys[i]);
	scan = index_beginscan(table->rel, index, snapshot, nkeys, 0);
	index_rescan(scan, scankeys, nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, table->row);
	index_endscan(scan);
	index_close(index, NoLock);
	if (found)
		slot_getallattrs(table->row);
	return found;
}

/*
 * DirectColumn returns the attribute number of the table's column `name`,
 * so that a column added by an upgrade, or one dropped, shifts nothing.
 */
AttrNumber
DirectColumn(DirectTable *table, const char *name)
{
	TupleDesc	desc = RelationGetDescr(table->rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attribute = TupleDescAttr(desc, i);

		if (!attribute->attisdropped && strcmp(NameStr(attribute->attname), name) == 0)
			return attribute->attnum;
	}
	elog(ERROR, "column \"%s\" of \"%s\" is missing", name, RelationGetRelationName(table->rel));
}

/*
 * DirectRowValue returns column `name` of the row read into table->row,
 * setting *isnull.
 */
Datum
DirectRowValue(DirectTable *table, const char *name, bool *isnull)
{
	return slot_getattr(table->row, DirectColumn(table, name), isnull);
}

/*
 * DirectNewRow returns arrays of values and nulls for a row of the table,
 * every column NULL, for the caller to fill through DirectColumn.
 */
void
DirectNewRow(DirectTable *table, Datum **values, bool **nulls)
{
	int			natts = RelationGetDescr(table->rel)->natts;

	*values = palloc0(sizeof(Datum) * natts);
	*nulls = palloc(sizeof(bool) * natts);
	memset(*nulls, true, sizeof(bool) * natts);
}

/*
 * StoreValues puts a row's values into table->slot, computes its stored
 * generated columns from them and checks them against the table's NOT NULL
 * and CHECK constraints, as INSERT and UPDATE do.  Every generated column is
 * computed afresh (as for an INSERT): without a range table there is no
 * record of which columns an update changed.
 */
static TupleTableSlot *
StoreValues(DirectTable *table, const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = table->slot;
	TupleConstr *constraints = RelationGetDescr(table->rel)->constr;
	int			natts = RelationGetDescr(table->rel)->natts;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, natts * sizeof(Datum));
	memcpy(slot->tts_isnull, nulls, natts * sizeof(bool));
	ExecStoreVirtualTuple(slot);
	if (constraints != NULL && constraints->has_generated_stored)
		ExecComputeStoredGenerated(table->result, table->estate, slot, CMD_INSERT);
	if (constraints != NULL)
		ExecConstraints(table->result, slot, table->estate);
	return slot;
}

/*
 * DirectInsert appends a row (one value per column) and its entries in
 * every index of the table; a unique index refuses a duplicate as an
 * INSERT would.
 */
void
DirectInsert(DirectTable *table, const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = StoreValues(table, values, nulls);

	table_tuple_insert(table->rel, slot, GetCurrentCommandId(true), 0, NULL);
	ExecInsertIndexTuples(table->result, slot, table->estate, false, false, NULL, NIL);
	ResetPerTupleExprContext(table->estate);
}

/*
 * DirectInsertIfUnique is DirectInsert for a row whose unique keys may
 * already be taken, with the guarantees of INSERT ... ON CONFLICT DO
 * NOTHING but optimistic, since a taken key is the rare case here: the row
 * goes in speculatively; if a unique index already holds its key, the row
 * is taken back (invisible to everyone at once, so nobody waits on it) and
 * the key is checked properly, waiting for a transaction still inserting
 * it.  A committed key means false; a key whose inserter aborted means
 * another try.  No lock outlives the call.  Whatever the isolation level, a
 * key committed after the caller's snapshot counts as taken.  The table
 * must have been opened by OpenDirectTableForUniqueInsert.
 */
bool
DirectInsertIfUnique(DirectTable *table, const Datum *values, const bool *nulls)
{
	TransactionId xid = GetCurrentTransactionId();

	for (;;)
	{
		TupleTableSlot *slot = StoreValues(table, values, nulls);
		ItemPointerData conflict_tid;
		bool		conflict = false;
		bool		free_now;
		uint32		token;

		token = SpeculativeInsertionLockAcquire(xid);
		table_tuple_insert_speculative(table->rel, slot, GetCurrentCommandId(true), 0, NULL, token);
		list_free(ExecInsertIndexTuples(table->result, slot, table->estate, false, true,
										&conflict, NIL));
		table_tuple_complete_speculative(table->rel, slot, token, !conflict);
		SpeculativeInsertionLockRelease(xid);
		if (!conflict)
		{
			ResetPerTupleExprContext(table->estate);
			return true;
		}

		free_now = ExecCheckIndexConstraints(table->result, slot, table->estate, &conflict_tid, NIL);
		ResetPerTupleExprContext(table->estate);
		if (!free_now)
			return false;
	}
}

/*
 * RowHasKey reports whether table->row's primary key columns still equal
 * keys: a row followed to its newest version may have been given another
 * key meanwhile, and then is no longer the row asked for.
 */
static bool
RowHasKey(DirectTable *table, int nkeys, const Datum *keys, const RegProcedure *eqprocs)
{
	Relation	index = index_open(RelationGetPrimaryKeyIndex(table->rel), AccessShareLock);
	bool		same = true;

	for (int i = 0; i < nkeys && same; i++)
	{
		bool		isnull;
		Datum		value = slot_getattr(table->row, index->rd_index->indkey.values[i], &isnull);

		same = !isnull && DatumGetBool(OidFunctionCall2Coll(eqprocs[i], index->rd_indcollation[i],
															value, keys[i]));
	}
	index_close(index, NoLock);
	return same;
}

/*
 * UpdateByPrimaryKey rewrites the row with primary key keys in place, as
 * UPDATE ... WHERE key = ... would: rewrite() turns a copy of the row's
 * values (table->row holds the row) into the new ones, or returns false to
 * leave the row as it is (a WHERE clause on other columns, rechecked on the
 * newest version after a concurrent update as UPDATE does).  The update is HOT
 * when no indexed column changes; otherwise every index gets the new
 * version's entry.  A row updated by a concurrent transaction meanwhile is,
 * under READ COMMITTED, locked in its newest version and rewritten again;
 * under REPEATABLE READ or SERIALIZABLE that is a serialization failure.
 * Returns false when there is no such row (or it was deleted, or given
 * another key, meanwhile) or rewrite() declined it.
 */
bool
UpdateByPrimaryKey(DirectTable *table, Snapshot snapshot, int nkeys, const Datum *keys,
				   const RegProcedure *eqprocs, RowRewriter rewrite, void *arg)
{
	int			natts = RelationGetDescr(table->rel)->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);
	CommandId	command = GetCurrentCommandId(true);

	if (!FetchByPrimaryKey(table, snapshot, nkeys, keys, eqprocs))
		return false;

	for (;;)
	{
		ItemPointerData tid = table->row->tts_tid;
		TupleTableSlot *slot;
		TM_FailureData failure;
		LockTupleMode lockmode;
		bool		update_indexes;
		TM_Result	result;

		memcpy(values, table->row->tts_values, sizeof(Datum) * natts);
		memcpy(nulls, table->row->tts_isnull, sizeof(bool) * natts);
		if (!rewrite(table, arg, values, nulls))
			return false;
		slot = StoreValues(table, values, nulls);
		result = table_tuple_update(table->rel, &tid, slot, command, snapshot, InvalidSnapshot,
									true, &failure, &lockmode, &update_indexes);
		if (result == TM_Ok)
		{
			if (update_indexes)
				ExecInsertIndexTuples(table->result, slot, table->estate, true, false, NULL, NIL);
			ResetPerTupleExprContext(table->estate);
			return true;
		}
		if (result != TM_Updated && result != TM_Deleted)
			elog(ERROR, "unexpected result %d updating a row of \"%s\"",
				 (int) result, RelationGetRelationName(table->rel));
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
		if (result == TM_Deleted)
			return false;

		/* updated meanwhile: lock the newest version (the lock fetches it into the empty slot) */
		ExecClearTuple(table->row);
		result = table_tuple_lock(table->rel, &tid, snapshot, table->row, command, lockmode,
								  LockWaitBlock, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &failure);
		if (result == TM_Deleted)
			return false;
		if (result != TM_Ok)
			elog(ERROR, "unexpected result %d locking a row of \"%s\"",
				 (int) result, RelationGetRelationName(table->rel));
		slot_getallattrs(table->row);
		if (!RowHasKey(table, nkeys, keys, eqprocs))
			return false;
	}
}

/*
 * UpdateRowUnlessBusy rewrites the row version at tid with the given values
 * unless another transaction is changing it or has changed it since: the
 * SKIP LOCKED of an update, for queues whose consumers take what nobody
 * else holds.  Returns whether it rewrote the row.
 */
bool
UpdateRowUnlessBusy(DirectTable *table, Snapshot snapshot, ItemPointer tid,
					const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = StoreValues(table, values, nulls);
	TM_FailureData failure;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	result;

	/* lock without waiting, as SKIP LOCKED does; the update then cannot block */
	result = table_tuple_lock(table->rel, tid, snapshot, table->row, GetCurrentCommandId(true),
							  LockTupleNoKeyExclusive, LockWaitSkip, 0, &failure);
	if (result != TM_Ok)
	{
		ResetPerTupleExprContext(table->estate);
		return false;
	}
	result = table_tuple_update(table->rel, tid, slot, GetCurrentCommandId(true), snapshot,
								InvalidSnapshot, true, &failure, &lockmode, &update_indexes);
	if (result == TM_Ok && update_indexes)
		ExecInsertIndexTuples(table->result, slot, table->estate, true, false, NULL, NIL);
	ResetPerTupleExprContext(table->estate);
	return result == TM_Ok;
}

/*
 * MultiXactHasOtherHolder reports whether a member of the multixact in a
 * row's xmax other than the current transaction holds the row: a running
 * locker or updater, or an updater that committed.  The current
 * transaction's own members (a lock it took, an update in a savepoint since
 * rolled back) never make the row busy to itself.
 */
static bool
MultiXactHasOtherHolder(MultiXactId multi, uint16 infomask)
{
	MultiXactMember *members;
	int			count = GetMultiXactIdMembers(multi, &members, false, HEAP_XMAX_IS_LOCKED_ONLY(infomask));
	bool		busy = false;

	for (int i = 0; i < count && !busy; i++)
	{
		TransactionId member = members[i].xid;

		if (TransactionIdIsCurrentTransactionId(member))
			continue;
		busy = TransactionIdIsInProgress(member) ||
			(ISUPDATE_from_mxstatus(members[i].status) && TransactionIdDidCommit(member));
	}
	if (count > 0)
		pfree(members);
	return busy;
}

/*
 * RowIsBusy reports whether another transaction is changing the row
 * version in table->row (as an index scan left it), or has changed it
 * since the scan's snapshot: its updater or deleter is running or has
 * committed, or a locker is running.  It is UpdateRowUnlessBusy's answer
 * read ahead from the tuple header, so that a queue consumer passes over
 * what another consumer is taking before doing any work for it;
 * UpdateRowUnlessBusy stays the authority.
 */
bool
RowIsBusy(DirectTable *table)
{
	BufferHeapTupleTableSlot *slot = (BufferHeapTupleTableSlot *) table->row;
	HeapTupleHeader header;
	TransactionId xmax;
	uint16		infomask;

	if (!TTS_IS_BUFFERTUPLE(table->row) || !BufferIsValid(slot->buffer))
		return false;
	LockBuffer(slot->buffer, BUFFER_LOCK_SHARE);
	header = slot->base.tuple->t_data;
	xmax = HeapTupleHeaderGetRawXmax(header);
	infomask = header->t_infomask;
	LockBuffer(slot->buffer, BUFFER_LOCK_UNLOCK);

	if (infomask & HEAP_XMAX_INVALID)
		return false;
	if (infomask & HEAP_XMAX_IS_MULTI)
		return MultiXactHasOtherHolder(xmax, infomask);
	if (TransactionIdIsCurrentTransactionId(xmax))
		return false;
	if (TransactionIdIsInProgress(xmax))
		return true;
	return !HEAP_XMAX_IS_LOCKED_ONLY(infomask) && TransactionIdDidCommit(xmax);
}

/*
 * DirectInit registers the callback that keeps the OID cache honest.
 */
void
DirectInit(void)
{
	RegisterRelcacheListener(ForgetTableOids);
}
