/*
 * direct.h
 *		Direct table access for the tracking hot path (direct.c).
 */
#ifndef PERSONALISATION_DIRECT_H
#define PERSONALISATION_DIRECT_H

#include "util.h"

#include "executor/tuptable.h"
#include "utils/rel.h"

typedef enum DirectTableId
{
	DIRECT_SESSIONS,
	DIRECT_PROFILES,
	DIRECT_PRODUCTS,
	DIRECT_PRODUCT_POPULARITY,
	DIRECT_CATEGORIES,
	DIRECT_EVENT_KEYS,
	DIRECT_AFFINITY,
	DIRECT_OUTBOX,
	DIRECT_OUTBOX_QUEUE_INDEX,	/* an index: open it with OpenDirectIndex */
	DIRECT_RANKING_EXPOSURES,
	DIRECT_TABLE_COUNT
} DirectTableId;

/* A table opened by OpenDirectTable: the row read (or locked) and a scratch slot. */
typedef struct DirectTable
{
	Relation	rel;
	struct EState *estate;
	struct ResultRelInfo *result;	/* with the indexes open; NULL when read-only */
	TupleTableSlot *row;		/* the row FetchByPrimaryKey found, all attributes deformed */
	TupleTableSlot *slot;		/* the row being written */
} DirectTable;

extern bool DirectTableExists(DirectTableId table);
extern void OpenDirectTable(DirectTable *table, DirectTableId which, bool for_write);
extern void OpenDirectTableForUniqueInsert(DirectTable *table, DirectTableId which);
extern void OpenDirectRelation(DirectTable *table, Oid relid);
extern void CloseDirectTable(DirectTable *table);
extern Snapshot DirectSnapshot(void);
extern bool FetchByPrimaryKey(DirectTable *table, Snapshot snapshot, int nkeys, const Datum *keys,
							  const RegProcedure *eqprocs);
extern AttrNumber DirectColumn(DirectTable *table, const char *name);
extern Datum DirectRowValue(DirectTable *table, const char *name, bool *isnull);
extern void DirectNewRow(DirectTable *table, Datum **values, bool **nulls);
extern void DirectInsert(DirectTable *table, const Datum *values, const bool *nulls);
extern bool DirectInsertIfUnique(DirectTable *table, const Datum *values, const bool *nulls);
/* Turns a copy of table->row's values into the row's new values; false leaves the row alone. */
typedef bool (*RowRewriter) (DirectTable *table, void *arg, Datum *values, bool *nulls);
extern bool UpdateByPrimaryKey(DirectTable *table, Snapshot snapshot, int nkeys, const Datum *keys,
							   const RegProcedure *eqprocs, RowRewriter rewrite, void *arg);
extern bool UpdateRowUnlessBusy(DirectTable *table, Snapshot snapshot, ItemPointer tid,
								const Datum *values, const bool *nulls);
extern bool RowIsBusy(DirectTable *table);
extern Relation OpenDirectIndex(DirectTableId which);
extern void DirectInit(void);

#endif							/* PERSONALISATION_DIRECT_H */
