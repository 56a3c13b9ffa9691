/*
 * complement.c
 *		Complementarity: "customers who bought X also bought Y".  This file
 *		counts: it owns the order counts per product and per unordered
 *		product pair, and changes them for each purchase and refund in its
 *		own transaction.  The bulk paths over the order history (rebuild,
 *		the window's expiry, folding the stripes, pausing) are in
 *		complement_rebuild.c; the readers (also_bought, recommend_for_cart,
 *		RecommendForSources) in complement_read.c; what the three share is
 *		complement_internal.h.
 *
 *		An order counts once per product it contains, whatever the quantity.
 *		Refunded orders and orders placed before the window count nowhere.
 *		Pairs are taken among at most basket_cap products of an order: all of
 *		them in an order that small, otherwise the basket_cap products with
 *		the smallest hashtextextended(product_id, hashtext(order_id)), ties
 *		broken by product id.  Every path applies that rule through
 *		KeepForPairs, so the incremental counts and a rebuild agree exactly.
 *
 *		Lock order, which keeps concurrent purchases free of deadlocks:
 *		complement_state (ROW EXCLUSIVE for purchases and refunds, EXCLUSIVE
 *		for rebuild, maintenance and pause), then product rows in byte order,
 *		then pair rows in byte order of (a, b), then the stripe's total row.
 */
#include "complement.h"
#include "complement_internal.h"

#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "nodes/makefuncs.h"

/* Settings of this part (defined by ComplementInit) */
int			ComplementWindowMinutes = 0;
int			ComplementBasketCap = 50;

/* Striped counters: a backend writes stripe MyBackendId % COUNT_STRIPES. */
#define COUNT_STRIPES 8

static SavedStatement ReadStateStatement = {
	.sql = "SELECT counted_since, basket_cap, paused FROM personalisation.complement_state",
};

static SavedStatement ProductDeltasStatement = {
	.sql = "INSERT INTO personalisation.complement_products AS c (product_id, stripe, orders)"
	" SELECT p, $2, d FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($3)) AS u(p, d)"
	" ON CONFLICT (product_id, stripe) DO UPDATE SET orders = c.orders + excluded.orders",
	.nargs = 3,
	.argtypes = {TEXTARRAYOID, INT2OID, INT8ARRAYOID},
};

static SavedStatement PairDeltasStatement = {
	.sql = "INSERT INTO personalisation.complement_pairs AS c (product_a, product_b, co_orders)"
	" SELECT a, b, d FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
	"   AS u(a, b, d)"
	" ON CONFLICT (product_a, product_b) DO UPDATE SET co_orders = c.co_orders + excluded.co_orders",
	.nargs = 3,
	.argtypes = {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID},
};

static SavedStatement DeleteEmptyPairsStatement = {
	.sql = "DELETE FROM personalisation.complement_pairs"
	" WHERE (product_a, product_b) IN"
	"   (SELECT a COLLATE \"C\", b COLLATE \"C\""
	"      FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u(a, b))"
	"   AND co_orders = 0",
	.nargs = 2,
	.argtypes = {TEXTARRAYOID, TEXTARRAYOID},
};

SavedStatement TotalDeltaStatement = {
	.sql = "INSERT INTO personalisation.complement_totals AS t (stripe, orders) VALUES ($1, $2)"
	" ON CONFLICT (stripe) DO UPDATE SET orders = t.orders + excluded.orders",
	.nargs = 2,
	.argtypes = {INT2OID, INT8OID},
};

static SavedStatement OrderProductsStatement = {
	.sql = "SELECT pg_catalog.array_agg(product_id ORDER BY product_id COLLATE \"C\")"
	"  FROM personalisation.order_lines WHERE order_id = $1",
	.nargs = 1,
	.argtypes = {TEXTOID},
};

/*
 * MyStripe is the counter stripe this backend writes: concurrent backends
 * have distinct backend ids, so up to COUNT_STRIPES of them never share a
 * counter row.
 */
static int16
MyStripe(void)
{
	return (int16) (MyBackendId % COUNT_STRIPES);
}

/*
 * LockCounts takes the counts' lock in the given mode (see the header
 * comment) and returns the state recorded under it.  The state is read with
 * a fresh snapshot taken after the lock is granted.
 */
CountState
LockCounts(LOCKMODE mode)
{
	CountState	state;
	bool		isnull;

	RangeVarGetRelid(makeRangeVar("personalisation", "complement_state", -1), mode, false);
	ExecSaved(&ReadStateStatement, NULL, NULL, false, 1);
	if (SPI_processed != 1)
		elog(ERROR, "personalisation.complement_state holds no row");
	state.counted_since = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 1, &isnull));
	state.basket_cap = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 2, &isnull));
	state.paused = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 3, &isnull));
	return state;
}

/*
 * CountsCover reports whether an order placed at occurred_at is counted
 * under the given state.
 */
static bool
CountsCover(CountState *state, TimestampTz occurred_at)
{
	return !state->paused && occurred_at >= state->counted_since;
}

/*
 * CompareDraws orders basket items by sampling hash, then by rank.
 */
static int
CompareDraws(const void *a, const void *b)
{
	const BasketItem *left = a;
	const BasketItem *right = b;

	if (left->draw != right->draw)
		return left->draw < right->draw ? -1 : 1;
	return (left->rank > right->rank) - (left->rank < right->rank);
}

/*
 * CompareRanks orders basket items by rank, that is by product id in byte
 * order.
 */
static int
CompareRanks(const void *a, const void *b)
{
	const BasketItem *left = a;
	const BasketItem *right = b;

	return (left->rank > right->rank) - (left->rank < right->rank);
}

/*
 * KeepForPairs applies the basket cap to an order's items, given sorted by
 * rank: it moves the items whose pairs count to the front, still sorted by
 * rank, and returns how many they are.  An order over the cap keeps the cap
 * items with the smallest hashtextextended(product_id, hashtext(order_id)),
 * a sample that is uniform, the same on every path, and reproducible in SQL.
 */
int
KeepForPairs(BasketItem *items, int count, const char *order_id, int order_len, int cap)
{
	int64		seed;

	if (count <= cap)
		return count;

	seed = (int64) DatumGetInt32(hash_any((const unsigned char *) order_id, order_len));
	for (int i = 0; i < count; i++)
		items[i].draw = DatumGetInt64(hash_any_extended((const unsigned char *) items[i].id,
														items[i].len, (uint64) seed));
	qsort(items, count, sizeof(BasketItem), CompareDraws);
	qsort(items, cap, sizeof(BasketItem), CompareRanks);
	return cap;
}

/*
 * ApplyDeltas writes count changes, locking product rows, then pair rows,
 * then the stripe's total, each in byte order.  Pairs that a subtraction
 * brings to zero are deleted, so the table holds exactly the pairs bought
 * together; products and totals keep zero stripes until maintenance folds
 * them.
 */
void
ApplyDeltas(CountDeltas *deltas)
{
	Datum		stripe = Int16GetDatum(MyStripe());

	if (deltas->orders == 0)
		return;

	{
		Datum		values[3] = {deltas->product_ids, stripe, deltas->product_deltas};

		ExecSaved(&ProductDeltasStatement, values, NULL, false, 0);
	}
	if (deltas->npairs > 0)
	{
		Datum		values[3] = {deltas->pair_a, deltas->pair_b, deltas->pair_deltas};

		ExecSaved(&PairDeltasStatement, values, NULL, false, 0);
		if (deltas->orders < 0)
			ExecSaved(&DeleteEmptyPairsStatement, values, NULL, false, 0);
	}
	{
		Datum		values[2] = {stripe, Int64GetDatum(deltas->orders)};

		ExecSaved(&TotalDeltaStatement, values, NULL, false, 0);
	}
}

/*
 * TextArray builds a text[] from count text datums.
 */
Datum
TextArray(Datum *elements, int count)
{
	return PointerGetDatum(construct_array(elements, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Int8Array builds an int8[] from count int8 datums.
 */
Datum
Int8Array(Datum *elements, int count)
{
	return PointerGetDatum(construct_array(elements, count, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/*
 * OrderDeltas returns the changes one order makes to the counts, with sign
 * +1 (counting it) or -1 (taking it out): one order, each of its products,
 * and each pair among the products KeepForPairs keeps.  product_ids is the
 * order's text[] of distinct product ids in byte order.
 */
static CountDeltas
OrderDeltas(text *order_id, Datum product_ids, int basket_cap, int64 sign)
{
	CountDeltas deltas = {.orders = sign};
	Datum	   *ids;
	int			count;
	int			kept;
	BasketItem *items;
	Datum	   *signs;
	Datum	   *pair_a;
	Datum	   *pair_b;

	deconstruct_array(DatumGetArrayTypeP(product_ids), TEXTOID, -1, false, TYPALIGN_INT,
					  &ids, NULL, &count);

	signs = palloc(sizeof(Datum) * count);
	for (int i = 0; i < count; i++)
		signs[i] = Int64GetDatum(sign);
	deltas.nproducts = count;
	deltas.product_ids = product_ids;
	deltas.product_deltas = Int8Array(signs, count);

	items = palloc(sizeof(BasketItem) * count);
	for (int i = 0; i < count; i++)
	{
		items[i].id = VARDATA_ANY(DatumGetPointer(ids[i]));
		items[i].len = VARSIZE_ANY_EXHDR(DatumGetPointer(ids[i]));
		items[i].rank = i;
	}
	kept = KeepForPairs(items, count, VARDATA_ANY(order_id), VARSIZE_ANY_EXHDR(order_id),
						basket_cap);

	deltas.npairs = kept * (kept - 1) / 2;
	if (deltas.npairs == 0)
		return deltas;

	pair_a = palloc(sizeof(Datum) * deltas.npairs);
	pair_b = palloc(sizeof(Datum) * deltas.npairs);
	signs = palloc(sizeof(Datum) * deltas.npairs);
	for (int i = 0, p = 0; i < kept; i++)
		for (int j = i + 1; j < kept; j++, p++)
		{
			pair_a[p] = ids[items[i].rank];
			pair_b[p] = ids[items[j].rank];
			signs[p] = Int64GetDatum(sign);
		}
	deltas.pair_a = TextArray(pair_a, deltas.npairs);
	deltas.pair_b = TextArray(pair_b, deltas.npairs);
	deltas.pair_deltas = Int8Array(signs, deltas.npairs);
	return deltas;
}

/*
 * CountPurchase adds a newly recorded order to the counts, in the
 * purchase's transaction, unless counting is paused or the order lies
 * before the window.  product_ids is the order's text[] of distinct product
 * ids in byte order.
 */
void
CountPurchase(text *order_id, TimestampTz occurred_at, Datum product_ids)
{
	CountState	state = LockCounts(RowExclusiveLock);
	CountDeltas deltas;

	if (!CountsCover(&state, occurred_at))
		return;
	deltas = OrderDeltas(order_id, product_ids, state.basket_cap, 1);
	ApplyDeltas(&deltas);
}

/*
 * UncountOrder takes a recorded order, placed at occurred_at, back out of
 * the counts when they hold it: the caller is marking it refunded.
 */
void
UncountOrder(text *order_id, TimestampTz occurred_at)
{
	CountState	state = LockCounts(RowExclusiveLock);
	Datum		values[1] = {PointerGetDatum(order_id)};
	bool		isnull;
	Datum		product_ids;
	CountDeltas deltas;

	if (!CountsCover(&state, occurred_at))
		return;

	ExecSaved(&OrderProductsStatement, values, NULL, false, 1);
	product_ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return;
	deltas = OrderDeltas(order_id, product_ids, state.basket_cap, -1);
	ApplyDeltas(&deltas);
}

/*
 * ComplementInit defines the settings of what the counts cover: the window
 * and the basket cap, which every counting path applies alike.
 */
void
ComplementInit(void)
{
	DefineCustomIntVariable("personalisation.complement_window",
							"How far back the complementarity counts reach; 0 counts every order.",
							"maintain_complementarity() takes out orders as they leave the window; "
							"a longer window takes effect at the next rebuild_complementarity().",
							&ComplementWindowMinutes,
							0, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.complement_basket_cap",
							"The most products of one order whose pairs are counted.",
							"Larger orders count pairs among a hash-chosen sample of this many products; "
							"a new value takes effect at the next rebuild_complementarity().",
							&ComplementBasketCap,
							50, 2, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}
