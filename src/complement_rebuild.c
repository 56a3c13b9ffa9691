/*
 * complement_rebuild.c
 *		The bulk paths of the complementarity counts (complement.c counts
 *		each order): rebuild_complementarity aggregates the order history in
 *		memory and loads the pair counts in bulk; maintain_complementarity
 *		takes out the orders that left the window and folds the backends'
 *		stripes; pause_complementarity stops the counting.  They apply the
 *		same KeepForPairs rule as each purchase, so the counts agree exactly.
 */
#include "complement.h"
#include "complement_internal.h"

#include "access/heapam.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(rebuild_complementarity);
PG_FUNCTION_INFO_V1(maintain_complementarity);
PG_FUNCTION_INFO_V1(pause_complementarity);

/* Rows read per fetch from the order history. */
#define HISTORY_FETCH 10000

/* Pair rows written per heap multi-insert during a rebuild. */
#define BULK_BATCH 1000

/* Interned strings (product or order ids) for the in-memory aggregation. */
typedef struct NameEntry
{
	char	   *name;
	uint32		hash;
	int32		index;
	char		status;
} NameEntry;

#define SH_PREFIX names
#define SH_ELEMENT_TYPE NameEntry
#define SH_KEY_TYPE char *
#define SH_KEY name
#define SH_HASH_KEY(tb, key) hash_bytes((const unsigned char *) (key), strlen(key))
#define SH_EQUAL(tb, a, b) (strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* A pair of product ranks (a < b) packed as a << 32 | b, and its count. */
typedef struct PairEntry
{
	uint64		key;
	int64		count;
	char		status;
} PairEntry;

#define SH_PREFIX pairs
#define SH_ELEMENT_TYPE PairEntry
#define SH_KEY_TYPE uint64
#define SH_KEY key
#define SH_HASH_KEY(tb, key) hash_combine(murmurhash32((uint32) ((key) >> 32)), murmurhash32((uint32) (key)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* sort_pairs sorts pair entries by key, that is by (a, b) in byte order. */
#define ST_SORT sort_pairs
#define ST_ELEMENT_TYPE PairEntry
#define ST_COMPARE(a, b) ((a)->key < (b)->key ? -1 : (a)->key > (b)->key ? 1 : 0)
#define ST_SCOPE static
#define ST_DECLARE
#define ST_DEFINE
#include "lib/sort_template.h"

/* A set of interned strings, each with a dense index. */
typedef struct NameSet
{
	names_hash *hash;
	char	  **names;
	int32		count;
	int32		space;
} NameSet;

/*
 * The counts of a batch of orders, aggregated in memory: by rebuild over
 * the whole history, by maintenance over the orders leaving the window.
 */
typedef struct Aggregation
{
	MemoryContext context;
	NameSet		products;
	NameSet		orders;
	int32	   *line_orders;	/* per order line: order index */
	int32	   *line_products;	/* per order line: product index */
	int64		nlines;
	int64		line_space;
	int		   *by_rank;		/* product index of each byte-order rank */
	int64	   *product_orders; /* orders per product, by rank */
	pairs_hash *pairs;			/* pair counts, keyed by ranks */
} Aggregation;

static SavedStatement WriteStateStatement = {
	.sql = "INSERT INTO personalisation.complement_state AS s"
	" (singleton, counted_since, basket_cap, paused, rebuilt_at) VALUES (true, $1, $2, false, $3)"
	" ON CONFLICT (singleton) DO UPDATE SET counted_since = excluded.counted_since,"
	" basket_cap = excluded.basket_cap, paused = false, rebuilt_at = excluded.rebuilt_at",
	.nargs = 3,
	.argtypes = {TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID},
};

static SavedStatement MoveWindowStatement = {
	.sql = "UPDATE personalisation.complement_state SET counted_since = $1",
	.nargs = 1,
	.argtypes = {TIMESTAMPTZOID},
};

static SavedStatement PauseStatement = {
	.sql = "UPDATE personalisation.complement_state SET paused = true",
};

static SavedStatement FoldProductsStatement = {
	.sql = "WITH moved AS (DELETE FROM personalisation.complement_products WHERE stripe <> 0"
	"                    RETURNING product_id, orders),"
	" folded AS (INSERT INTO personalisation.complement_products AS c (product_id, stripe, orders)"
	"            SELECT product_id, 0, pg_catalog.sum(orders) FROM moved GROUP BY product_id"
	"            ORDER BY product_id"
	"            ON CONFLICT (product_id, stripe) DO UPDATE SET orders = c.orders + excluded.orders)"
	" SELECT pg_catalog.count(*) FROM moved",
};

static SavedStatement FoldTotalsStatement = {
	.sql = "WITH moved AS (DELETE FROM personalisation.complement_totals WHERE stripe <> 0"
	"                    RETURNING orders),"
	" folded AS (INSERT INTO personalisation.complement_totals AS t (stripe, orders)"
	"            SELECT 0, pg_catalog.sum(orders) FROM moved HAVING pg_catalog.count(*) > 0"
	"            ON CONFLICT (stripe) DO UPDATE SET orders = t.orders + excluded.orders)"
	" SELECT pg_catalog.count(*) FROM moved",
};

static SavedStatement DeleteEmptyCountsStatement = {
	.sql = "WITH products AS (DELETE FROM personalisation.complement_products WHERE orders = 0 RETURNING 1),"
	" totals AS (DELETE FROM personalisation.complement_totals WHERE orders = 0 RETURNING 1)"
	" SELECT (SELECT pg_catalog.count(*) FROM products) + (SELECT pg_catalog.count(*) FROM totals)",
};

static SavedStatement InsertProductCountsStatement = {
	.sql = "INSERT INTO personalisation.complement_products (product_id, stripe, orders)"
	" SELECT p, 0, n FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u(p, n)",
	.nargs = 2,
	.argtypes = {TEXTARRAYOID, INT8ARRAYOID},
};

/* Order lines of the counted orders placed in [$1, $2). */
static const char *const HistorySql =
"SELECT l.order_id, l.product_id"
"  FROM personalisation.orders o JOIN personalisation.order_lines l ON l.order_id = o.order_id"
" WHERE o.refunded_at IS NULL AND o.occurred_at >= $1 AND o.occurred_at < $2";


/*
 * NameSetInit prepares an empty set of interned strings.
 */
static void
NameSetInit(NameSet *set, MemoryContext context, uint32 expected)
{
	set->hash = names_create(context, expected, NULL);
	set->count = 0;
	set->space = 1024;
	set->names = MemoryContextAlloc(context, sizeof(char *) * set->space);
}

/*
 * Intern returns the dense index of a string in the set, adding it the
 * first time.  buffer is scratch space for the NUL-terminated copy used for
 * the lookup.
 */
static int32
Intern(NameSet *set, MemoryContext context, StringInfo buffer, text *value)
{
	NameEntry  *entry;
	bool		found;

	resetStringInfo(buffer);
	appendBinaryStringInfo(buffer, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
	entry = names_insert(set->hash, buffer->data, &found);
	if (!found)
	{
		entry->name = MemoryContextStrdup(context, buffer->data);
		entry->index = set->count;
		if (set->count == set->space)
		{
			set->space *= 2;
			set->names = repalloc_huge(set->names, sizeof(char *) * set->space);
		}
		set->names[set->count++] = entry->name;
	}
	return entry->index;
}

/*
 * LoadHistory reads the lines of the counted orders placed in [from, to)
 * into the aggregation, interning product and order ids.  The cursor takes
 * a fresh snapshot, so it sees every order committed before the caller's
 * lock was granted.
 */
static void
LoadHistory(Aggregation *agg, TimestampTz from, TimestampTz to)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[2] = {TimestampTzGetDatum(from), TimestampTzGetDatum(to)};
	Portal		portal;
	StringInfoData buffer;

	portal = OpenPinnedCursor(HistorySql, 2, argtypes, values, false);
	initStringInfo(&buffer);
	for (;;)
	{
		MemoryContext caller;

		SPI_cursor_fetch(portal, true, HISTORY_FETCH);
		if (SPI_processed == 0)
			break;

		caller = MemoryContextSwitchTo(agg->context);
		if (agg->nlines + (int64) SPI_processed > agg->line_space)
		{
			agg->line_space = Max(agg->line_space * 2, agg->nlines + (int64) SPI_processed);
			agg->line_orders = repalloc_huge(agg->line_orders, sizeof(int32) * agg->line_space);
			agg->line_products = repalloc_huge(agg->line_products, sizeof(int32) * agg->line_space);
		}
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];
			bool		isnull;
			text	   *order_id = DatumGetTextPP(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull));
			text	   *product_id = DatumGetTextPP(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull));

			agg->line_orders[agg->nlines] = Intern(&agg->orders, agg->context, &buffer, order_id);
			agg->line_products[agg->nlines] = Intern(&agg->products, agg->context, &buffer, product_id);
			agg->nlines++;
		}
		MemoryContextSwitchTo(caller);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	pfree(buffer.data);
}

/* The product names CompareProductIndexes sorts by. */
static char **SortingNames;

/*
 * CompareProductIndexes orders product indexes by product id in byte order.
 */
static int
CompareProductIndexes(const void *a, const void *b)
{
	return strcmp(SortingNames[*(const int *) a], SortingNames[*(const int *) b]);
}

/*
 * CompareInts orders ints ascending.
 */
static int
CompareInts(const void *a, const void *b)
{
	int			left = *(const int *) a;
	int			right = *(const int *) b;

	return (left > right) - (left < right);
}

/*
 * CountBaskets turns the loaded lines into counts: orders per product and
 * per pair among the products KeepForPairs keeps, with products numbered by
 * rank (byte order), so that a pair key's order is the pair's byte order.
 */
static void
CountBaskets(Aggregation *agg, int basket_cap)
{
	MemoryContext caller = MemoryContextSwitchTo(agg->context);
	int			nproducts = agg->products.count;
	int			norders = agg->orders.count;
	int		   *rank_of = palloc(sizeof(int) * Max(nproducts, 1));
	int		   *lengths = palloc(sizeof(int) * Max(nproducts, 1));
	int64	   *starts = palloc0(sizeof(int64) * (norders + 1));
	int		   *members = palloc_extended(sizeof(int) * Max(agg->nlines, 1), MCXT_ALLOC_HUGE);
	int			basket_space = 64;
	BasketItem *items = palloc(sizeof(BasketItem) * basket_space);

	agg->by_rank = palloc(sizeof(int) * Max(nproducts, 1));
	for (int i = 0; i < nproducts; i++)
		agg->by_rank[i] = i;
	SortingNames = agg->products.names;
	qsort(agg->by_rank, nproducts, sizeof(int), CompareProductIndexes);
	for (int r = 0; r < nproducts; r++)
	{
		rank_of[agg->by_rank[r]] = r;
		lengths[r] = strlen(agg->products.names[agg->by_rank[r]]);
	}

	/* group the lines by order: a counting sort on the order index */
	for (int64 i = 0; i < agg->nlines; i++)
		starts[agg->line_orders[i] + 1]++;
	for (int o = 0; o < norders; o++)
		starts[o + 1] += starts[o];
	{
		int64	   *next = palloc(sizeof(int64) * (norders + 1));

		memcpy(next, starts, sizeof(int64) * (norders + 1));
		for (int64 i = 0; i < agg->nlines; i++)
			members[next[agg->line_orders[i]]++] = rank_of[agg->line_products[i]];
		pfree(next);
	}

	agg->product_orders = palloc0(sizeof(int64) * Max(nproducts, 1));
	agg->pairs = pairs_create(agg->context, Max(agg->nlines, 1024), NULL);
	for (int o = 0; o < norders; o++)
	{
		int		   *basket = members + starts[o];
		int			count = (int) (starts[o + 1] - starts[o]);
		int			kept;

		qsort(basket, count, sizeof(int), CompareInts);
		if (count > basket_space)
		{
			basket_space = count;
			items = repalloc(items, sizeof(BasketItem) * basket_space);
		}
		for (int i = 0; i < count; i++)
		{
			agg->product_orders[basket[i]]++;
			items[i].id = agg->products.names[agg->by_rank[basket[i]]];
			items[i].len = lengths[basket[i]];
			items[i].rank = basket[i];
		}
		kept = KeepForPairs(items, count, agg->orders.names[o], strlen(agg->orders.names[o]),
							basket_cap);
		for (int i = 0; i < kept; i++)
			for (int j = i + 1; j < kept; j++)
			{
				bool		found;
				PairEntry  *entry = pairs_insert(agg->pairs,
												 ((uint64) items[i].rank << 32) | (uint64) items[j].rank,
												 &found);

				if (!found)
					entry->count = 0;
				entry->count++;
			}
	}
	MemoryContextSwitchTo(caller);
}

/*
 * Aggregate counts the orders placed in [from, to) in memory, with the
 * given basket cap.  The result lives in its own memory context.
 */
static Aggregation *
Aggregate(TimestampTz from, TimestampTz to, int basket_cap)
{
	MemoryContext context = AllocSetContextCreate(CurrentMemoryContext,
												  "complementarity aggregation",
												  ALLOCSET_DEFAULT_SIZES);
	Aggregation *agg = MemoryContextAllocZero(context, sizeof(Aggregation));

	agg->context = context;
	NameSetInit(&agg->products, context, 1024);
	NameSetInit(&agg->orders, context, 1024);
	agg->line_space = HISTORY_FETCH;
	agg->line_orders = MemoryContextAlloc(context, sizeof(int32) * agg->line_space);
	agg->line_products = MemoryContextAlloc(context, sizeof(int32) * agg->line_space);

	LoadHistory(agg, from, to);
	CountBaskets(agg, basket_cap);
	return agg;
}

/*
 * SortedPairs returns the aggregation's pairs as an array sorted by key,
 * and their number in *count.
 */
static PairEntry *
SortedPairs(Aggregation *agg, int64 *count)
{
	pairs_iterator iterator;
	PairEntry  *entry;
	PairEntry  *sorted = MemoryContextAllocExtended(agg->context,
													sizeof(PairEntry) * Max(agg->pairs->members, 1),
													MCXT_ALLOC_HUGE);
	int64		n = 0;

	pairs_start_iterate(agg->pairs, &iterator);
	while ((entry = pairs_iterate(agg->pairs, &iterator)) != NULL)
		sorted[n++] = *entry;
	sort_pairs(sorted, n);
	*count = n;
	return sorted;
}

/*
 * RankTexts returns the aggregation's product ids as text datums, by rank.
 */
static Datum *
RankTexts(Aggregation *agg)
{
	int			nproducts = agg->products.count;
	Datum	   *texts = MemoryContextAlloc(agg->context, sizeof(Datum) * Max(nproducts, 1));

	for (int r = 0; r < nproducts; r++)
		texts[r] = PointerGetDatum(cstring_to_text(agg->products.names[agg->by_rank[r]]));
	return texts;
}

/*
 * ShrinkingDeltas returns the changes that take the aggregated orders back
 * out of the counts.
 */
static CountDeltas
ShrinkingDeltas(Aggregation *agg)
{
	CountDeltas deltas = {.orders = -(int64) agg->orders.count};
	Datum	   *texts = RankTexts(agg);
	int			nproducts = agg->products.count;
	Datum	   *product_deltas = palloc(sizeof(Datum) * Max(nproducts, 1));
	int64		npairs;
	PairEntry  *pairs = SortedPairs(agg, &npairs);
	Datum	   *pair_a = palloc_extended(sizeof(Datum) * Max(npairs, 1), MCXT_ALLOC_HUGE);
	Datum	   *pair_b = palloc_extended(sizeof(Datum) * Max(npairs, 1), MCXT_ALLOC_HUGE);
	Datum	   *pair_deltas = palloc_extended(sizeof(Datum) * Max(npairs, 1), MCXT_ALLOC_HUGE);

	for (int r = 0; r < nproducts; r++)
		product_deltas[r] = Int64GetDatum(-agg->product_orders[r]);
	for (int64 p = 0; p < npairs; p++)
	{
		pair_a[p] = texts[pairs[p].key >> 32];
		pair_b[p] = texts[(uint32) pairs[p].key];
		pair_deltas[p] = Int64GetDatum(-pairs[p].count);
	}
	deltas.nproducts = nproducts;
	deltas.product_ids = TextArray(texts, nproducts);
	deltas.product_deltas = Int8Array(product_deltas, nproducts);
	deltas.npairs = (int) npairs;
	if (npairs > 0)
	{
		deltas.pair_a = TextArray(pair_a, (int) npairs);
		deltas.pair_b = TextArray(pair_b, (int) npairs);
		deltas.pair_deltas = Int8Array(pair_deltas, (int) npairs);
	}
	return deltas;
}

/*
 * BulkLoadPairs writes the aggregated pairs straight into the heap of the
 * freshly truncated complement_pairs, in key order, without touching its
 * indexes: the caller rebuilds them afterwards in one sorted pass, which is
 * what makes a rebuild several times faster than inserting row by row.  The
 * aggregation guarantees what the table's checks would: a < b, counts
 * above zero, one row per pair.
 */
static void
BulkLoadPairs(PairEntry *pairs, int64 npairs, Datum *texts)
{
	Relation	rel = table_openrv(makeRangeVar("personalisation", "complement_pairs", -1),
								   RowExclusiveLock);
	TupleDesc	desc = RelationGetDescr(rel);
	CommandId	cid = GetCurrentCommandId(true);
	BulkInsertState bistate = GetBulkInsertState();
	MemoryContext batch_context = AllocSetContextCreate(CurrentMemoryContext,
														"complementarity bulk load",
														ALLOCSET_DEFAULT_SIZES);
	TupleTableSlot *slots[BULK_BATCH];
	int			filled = 0;

	if (desc->natts != 3)
		elog(ERROR, "personalisation.complement_pairs has %d columns, not 3", desc->natts);

	for (int i = 0; i < BULK_BATCH; i++)
		slots[i] = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);

	for (int64 p = 0; p <= npairs; p++)
	{
		if (filled == BULK_BATCH || (p == npairs && filled > 0))
		{
			MemoryContext caller = MemoryContextSwitchTo(batch_context);

			table_multi_insert(rel, slots, filled, cid, 0, bistate);
			MemoryContextSwitchTo(caller);
			MemoryContextReset(batch_context);
			filled = 0;
		}
		if (p == npairs)
			break;

		ExecClearTuple(slots[filled]);
		slots[filled]->tts_values[0] = texts[pairs[p].key >> 32];
		slots[filled]->tts_values[1] = texts[(uint32) pairs[p].key];
		slots[filled]->tts_values[2] = Int64GetDatum(pairs[p].count);
		memset(slots[filled]->tts_isnull, false, sizeof(bool) * 3);
		ExecStoreVirtualTuple(slots[filled]);
		filled++;
	}

	for (int i = 0; i < BULK_BATCH; i++)
		ExecDropSingleTupleTableSlot(slots[i]);
	FreeBulkInsertState(bistate);
	table_finish_bulk_insert(rel, 0);
	table_close(rel, NoLock);
	MemoryContextDelete(batch_context);
	CommandCounterIncrement();
}

/*
 * RequireReadCommitted refuses to recount under a transaction snapshot: the
 * order history must be read after the counts' lock is granted, or orders
 * committed in between would be lost.
 */
static void
RequireReadCommitted(const char *function)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run at transaction isolation level %s", function,
						XactIsoLevel == XACT_SERIALIZABLE ? "serializable" : "repeatable read"),
				 errhint("Run it at READ COMMITTED, the default isolation level.")));
}

/*
 * WindowStart returns where personalisation.complement_window, seen from
 * now, begins: minus infinity when there is no window.
 */
static TimestampTz
WindowStart(TimestampTz now)
{
	TimestampTz start;

	if (ComplementWindowMinutes == 0)
		return DT_NOBEGIN;
	start = now - (TimestampTz) ComplementWindowMinutes * USECS_PER_MINUTE;
	return start < MIN_TIMESTAMP ? DT_NOBEGIN : start;
}

/*
 * ReturnRecord returns the calling function's composite result, built from
 * int8 values, one per column.
 */
static Datum
ReturnRecord(FunctionCallInfo fcinfo, Datum *values)
{
	TupleDesc	tupdesc;
	bool	   *nulls;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	nulls = palloc0(sizeof(bool) * tupdesc->natts);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

/*
 * rebuild_complementarity recomputes every count from the order history:
 * the orders placed since the window's start (seen from now) that are not
 * refunded, with the current basket cap, aggregated in memory and written
 * in bulk.  It adopts the current window and basket cap, resumes paused
 * counting, and returns how many orders, products and pairs it counted.
 * Purchases and refunds wait for it; also_bought readers wait for its
 * commit.
 */
Datum
rebuild_complementarity(PG_FUNCTION_ARGS)
{
	TimestampTz now = RequireInstant(fcinfo, 0, "now");
	TimestampTz since = WindowStart(now);
	Aggregation *agg;
	PairEntry  *pairs;
	int64		npairs;
	Datum	   *texts;
	Datum		result[3];

	RequireReadCommitted("rebuild_complementarity");
	SPI_connect();
	RangeVarGetRelid(makeRangeVar("personalisation", "complement_state", -1), ExclusiveLock, false);
	agg = Aggregate(since, DT_NOEND, ComplementBasketCap);
	pairs = SortedPairs(agg, &npairs);

	ExecPinned("TRUNCATE personalisation.complement_pairs, personalisation.complement_products,"
			   " personalisation.complement_totals", 0, NULL, NULL, NULL, false, 0);
	CommandCounterIncrement();
	texts = RankTexts(agg);
	if (npairs > 0)
	{
		BulkLoadPairs(pairs, npairs, texts);
		ExecPinned("REINDEX TABLE personalisation.complement_pairs", 0, NULL, NULL, NULL, false, 0);
	}
	if (agg->orders.count > 0)
	{
		int			nproducts = agg->products.count;
		Datum	   *counts = palloc(sizeof(Datum) * nproducts);
		Datum		product_values[2];
		Datum		total_values[2] = {Int16GetDatum(0), Int64GetDatum(agg->orders.count)};

		for (int r = 0; r < nproducts; r++)
			counts[r] = Int64GetDatum(agg->product_orders[r]);
		product_values[0] = TextArray(texts, nproducts);
		product_values[1] = Int8Array(counts, nproducts);
		ExecSaved(&InsertProductCountsStatement, product_values, NULL, false, 0);
		ExecSaved(&TotalDeltaStatement, total_values, NULL, false, 0);
	}
	{
		Datum		state_values[3] = {TimestampTzGetDatum(since), Int32GetDatum(ComplementBasketCap),
		TimestampTzGetDatum(now)};

		ExecSaved(&WriteStateStatement, state_values, NULL, false, 0);
	}

	result[0] = Int64GetDatum(agg->orders.count);
	result[1] = Int64GetDatum(agg->products.count);
	result[2] = Int64GetDatum(npairs);
	MemoryContextDelete(agg->context);
	SPI_finish();

	return ReturnRecord(fcinfo, result);
}

/*
 * FoldStripes moves every counter stripe into stripe 0 and deletes the
 * counters left at zero, so that readers sum one row per product again.
 * It returns how many rows it folded or deleted.
 */
static int64
FoldStripes(void)
{
	int64		folded = 0;
	bool		isnull;

	ExecSaved(&FoldProductsStatement, NULL, NULL, false, 1);
	folded += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ExecSaved(&FoldTotalsStatement, NULL, NULL, false, 1);
	folded += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ExecSaved(&DeleteEmptyCountsStatement, NULL, NULL, false, 1);
	folded += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return folded;
}

/*
 * maintain_complementarity is the periodic job: it takes the orders that
 * have left personalisation.complement_window (seen from now) out of the
 * counts, so that they stay equal to a rebuild at now, and folds the
 * counter stripes.  A window that grew, or was removed, only takes effect
 * at the next rebuild: the counts never reach back to orders they dropped.
 * While counting is paused, it only folds.
 */
Datum
maintain_complementarity(PG_FUNCTION_ARGS)
{
	TimestampTz now = RequireInstant(fcinfo, 0, "now");
	TimestampTz since = WindowStart(now);
	CountState	state;
	int64		expired = 0;
	Datum		result[2];

	RequireReadCommitted("maintain_complementarity");
	SPI_connect();
	state = LockCounts(ExclusiveLock);
	if (!state.paused && since > state.counted_since)
	{
		Aggregation *agg = Aggregate(state.counted_since, since, state.basket_cap);
		CountDeltas deltas = ShrinkingDeltas(agg);
		Datum		values[1] = {TimestampTzGetDatum(since)};

		ApplyDeltas(&deltas);
		ExecSaved(&MoveWindowStatement, values, NULL, false, 0);
		expired = agg->orders.count;
		MemoryContextDelete(agg->context);
	}
	result[0] = Int64GetDatum(expired);
	result[1] = Int64GetDatum(FoldStripes());
	SPI_finish();

	return ReturnRecord(fcinfo, result);
}

/*
 * pause_complementarity stops purchases and refunds from changing the
 * counts until the next rebuild_complementarity(): for a bulk load of
 * history, which a rebuild then counts in one pass.  The counts keep
 * serving readers meanwhile.
 */
Datum
pause_complementarity(PG_FUNCTION_ARGS)
{
	SPI_connect();
	LockCounts(ExclusiveLock);
	ExecSaved(&PauseStatement, NULL, NULL, false, 0);
	SPI_finish();
	PG_RETURN_VOID();
}
