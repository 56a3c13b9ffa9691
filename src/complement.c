/*
 * complement.c
 *		Complementarity: "customers who bought X also bought Y".  Owns the
 *		order counts per product and per unordered product pair and every
 *		path that changes them: each purchase and refund in its own
 *		transaction, the window's expiry and the folding of stripes
 *		(maintain_complementarity), pausing, and the bulk rebuild from the
 *		order history; and the readers also_bought, recommend_for_cart and
 *		RecommendForSources (the journey messages' recommendations, with the
 *		popular-in-category fallback).
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


#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "storage/backendid.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/rel.h"

/* Settings of this part (defined by ComplementInit) */
int			ComplementMinCoOrders = 2;
int			ComplementWindowMinutes = 0;
int			ComplementBasketCap = 50;

PG_FUNCTION_INFO_V1(also_bought);
PG_FUNCTION_INFO_V1(recommend_for_cart);
PG_FUNCTION_INFO_V1(rebuild_complementarity);
PG_FUNCTION_INFO_V1(maintain_complementarity);
PG_FUNCTION_INFO_V1(pause_complementarity);

/* Striped counters: a backend writes stripe MyBackendId % COUNT_STRIPES. */
#define COUNT_STRIPES 8

/* The most rows also_bought and recommend_for_cart return. */
#define MAX_RESULTS 1000

/* Rows read per fetch from the order history; most rows per partner fetch. */
#define HISTORY_FETCH 10000
#define PARTNER_FETCH_MAX 1024

/* Pair rows written per heap multi-insert during a rebuild. */
#define BULK_BATCH 1000

/* What the counts cover, as complement_state records it. */
typedef struct CountState
{
	TimestampTz counted_since;
	int			basket_cap;
	bool		paused;
} CountState;

/*
 * Changes to the counts, all of one sign, ready to apply: text[] and int8[]
 * arrays with the products in byte order and the pairs in byte order of
 * (a, b), which is the order rows are locked in.
 */
typedef struct CountDeltas
{
	int64		orders;
	int			nproducts;
	Datum		product_ids;
	Datum		product_deltas;
	int			npairs;
	Datum		pair_a;
	Datum		pair_b;
	Datum		pair_deltas;
} CountDeltas;

/* One product of a basket being sampled for pairs. */
typedef struct BasketItem
{
	const char *id;
	int			len;
	int			rank;			/* position in byte order */
	int64		draw;			/* sampling hash, for oversized baskets */
} BasketItem;

/*
 * One side's partners of a product, read through a cursor a batch at a
 * time: the current row is batch->vals[next].  The first batch holds as
 * many rows as the caller wants, and each further one twice as many as the
 * last, since every row read costs a catalogue lookup.
 */
typedef struct PartnerStream
{
	Portal		portal;
	SPITupleTable *batch;
	uint64		next;
	long		fetch;
} PartnerStream;

/*
 * The in-stock products of one category with counted orders, most ordered
 * first (ties by product id), as the popular-in-category fallback reads
 * them.
 */
typedef struct CategoryPopularity
{
	char		category_id[MAX_IDENTIFIER_BYTES + 1];	/* hash key */
	int			count;
	Datum	   *product_ids;	/* text */
	int64	   *orders;
	int64		total;			/* the orders summed */
} CategoryPopularity;

/*
 * The categories read since ForgetPopularity (called at the start of every
 * run_due), so that each is read once however many messages fall back on
 * it; the counts do not change during a run_due call.
 */
static HTAB *Popularity = NULL;
static MemoryContext PopularityContext = NULL;

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

static SavedStatement ReadStateStatement = {
	.sql = "SELECT counted_since, basket_cap, paused FROM personalisation.complement_state",
};

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

static SavedStatement TotalDeltaStatement = {
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

static SavedStatement ProductCountsStatement = {
	.sql = "SELECT (SELECT pg_catalog.sum(orders)::bigint FROM personalisation.complement_products"
	"         WHERE product_id = $1 COLLATE \"C\"),"
	"       (SELECT pg_catalog.sum(orders)::bigint FROM personalisation.complement_totals)"
	"  FROM personalisation.products WHERE product_id = $1",
	.nargs = 1,
	.argtypes = {TEXTOID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN,
};

/* Counted orders per product of $1, in the array's order. */
static SavedStatement ProductsOrdersStatement = {
	.sql = "SELECT (SELECT pg_catalog.sum(orders)::bigint FROM personalisation.complement_products"
	"         WHERE product_id = u.p COLLATE \"C\")"
	"  FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(p, i) ORDER BY u.i",
	.nargs = 1,
	.argtypes = {TEXTARRAYOID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN,
};

/*
 * A product's partners with at least $2 co-orders and in stock, in
 * descending co_orders: one statement per side of the pair table, each read
 * in the order of its co_orders index, so that a reader stops after the rows
 * it needs however many partners the product has.
 */
#define PARTNERS_STATEMENT(side, other) { \
	.sql = "SELECT c." other ", c.co_orders" \
	"  FROM personalisation.complement_pairs c" \
	" WHERE c." side " = $1 COLLATE \"C\" AND c.co_orders >= $2" \
	"   AND EXISTS (SELECT FROM personalisation.products p" \
	"                WHERE p.product_id = c." other " COLLATE \"default\" AND p.in_stock)" \
	" ORDER BY c.co_orders DESC", \
	.nargs = 2, \
	.argtypes = {TEXTOID, INT8OID}, \
	.cursor_options = CURSOR_OPT_FAST_PLAN | CURSOR_OPT_GENERIC_PLAN, \
}

static SavedStatement PartnersAboveStatement = PARTNERS_STATEMENT("product_a", "product_b");
static SavedStatement PartnersBelowStatement = PARTNERS_STATEMENT("product_b", "product_a");

/*
 * $1 session, $2 recommend_repurchase, $3 repurchase_min_orders: the cart's
 * products, the products the profile ordered and may not buy again, those
 * it may with the number of its orders containing each, and its standing
 * orders; every array in byte order.
 */
#define PURCHASES PROFILE_PURCHASES_SQL("s.profile_id", "pg_catalog.now()", "$2", "$3")
static SavedStatement CartStatement = {
	.sql = "SELECT ARRAY(SELECT product_id FROM personalisation.cart_lines"
	"              WHERE profile_id = s.profile_id ORDER BY product_id COLLATE \"C\"),"
	"       ARRAY(SELECT h.product_id FROM (" PURCHASES ") h WHERE NOT h.repurchasable ORDER BY 1),"
	"       ARRAY(SELECT h.product_id FROM (" PURCHASES ") h WHERE h.repurchasable ORDER BY 1),"
	"       ARRAY(SELECT h.orders FROM (" PURCHASES ") h WHERE h.repurchasable ORDER BY h.product_id),"
	"       (SELECT pg_catalog.count(*) FROM personalisation.orders o"
	"         WHERE o.profile_id = s.profile_id AND o.refunded_at IS NULL)"
	"  FROM personalisation.sessions s WHERE s.session_id = $1",
	.nargs = 3,
	.argtypes = {TEXTOID, BOOLOID, INT4OID},
};

/* $1 source products: the category of each, in the array's order (one key lookup each). */
static SavedStatement SourceCategoriesStatement = {
	.sql = "SELECT (SELECT p.category_id FROM personalisation.products p WHERE p.product_id = s.product_id)"
	"  FROM pg_catalog.unnest($1) WITH ORDINALITY AS s(product_id, n) ORDER BY s.n",
	.nargs = 1,
	.argtypes = {TEXTARRAYOID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN,
};

/* $1 category: its in-stock products with counted orders, most ordered first, ties by id. */
static SavedStatement CategoryPopularityStatement = {
	.sql = "SELECT p.product_id, n.orders"
	"  FROM personalisation.products p"
	"  CROSS JOIN LATERAL (SELECT pg_catalog.sum(k.orders)::bigint AS orders"
	"                        FROM personalisation.complement_products k"
	"                       WHERE k.product_id = p.product_id COLLATE \"C\") n"
	" WHERE p.category_id = $1 AND p.in_stock AND n.orders > 0"
	" ORDER BY n.orders DESC, p.product_id COLLATE \"C\"",
	.nargs = 1,
	.argtypes = {TEXTOID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN,
};

/* $1 products: the category and counted orders of each, in the array's order. */
static SavedStatement CandidateFactsStatement = {
	.sql = "SELECT (SELECT p.category_id FROM personalisation.products p WHERE p.product_id = u.p),"
	"       (SELECT pg_catalog.sum(k.orders)::bigint FROM personalisation.complement_products k"
	"         WHERE k.product_id = u.p COLLATE \"C\")"
	"  FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(p, i) ORDER BY u.i",
	.nargs = 1,
	.argtypes = {TEXTARRAYOID},
	.cursor_options = CURSOR_OPT_GENERIC_PLAN,
};

/* Order lines of the counted orders placed in [$1, $2). */
static const char *const HistorySql =
"SELECT l.order_id, l.product_id"
"  FROM personalisation.orders o JOIN personalisation.order_lines l ON l.order_id = o.order_id"
" WHERE o.refunded_at IS NULL AND o.occurred_at >= $1 AND o.occurred_at < $2";

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
static CountState
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
static int
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
static void
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
static Datum
TextArray(Datum *elements, int count)
{
	return PointerGetDatum(construct_array(elements, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Int8Array builds an int8[] from count int8 datums.
 */
static Datum
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

/*
 * RequireResultCount returns argument argno as the number of rows asked
 * for.  The parameter is a bigint, so that a driver binding int8 reaches
 * the function; a 0.1.0 database still declares it int, whose datum reads
 * the same as an int8 one.  NULL, values below 1 and values above
 * MAX_RESULTS are refused with the extension's own errors.
 */
static int
RequireResultCount(FunctionCallInfo fcinfo, int argno)
{
	int64		n;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("n must not be null"),
				 errhint("Pass how many products to return, from 1 to %d.", MAX_RESULTS)));
	n = PG_GETARG_INT64(argno);
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n " INT64_FORMAT " is not positive", n),
				 errhint("Pass how many products to return, from 1 to %d.", MAX_RESULTS)));
	if (n > MAX_RESULTS)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("n " INT64_FORMAT " is out of range", n),
				 errdetail("At most %d products are returned.", MAX_RESULTS),
				 errhint("Pass how many products to return, from 1 to %d.", MAX_RESULTS)));
	return (int) n;
}

/*
 * ProductCounts reads how many counted orders contain the product and how
 * many orders are counted in all.  It returns false when the catalogue does
 * not know the product.
 */
static bool
ProductCounts(text *product_id, int64 *product_orders, int64 *all_orders)
{
	Datum		values[1] = {PointerGetDatum(product_id)};
	bool		isnull;
	Datum		value;

	ExecSaved(&ProductCountsStatement, values, NULL, true, 1);
	if (SPI_processed == 0)
		return false;
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*product_orders = isnull ? 0 : DatumGetInt64(value);
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*all_orders = isnull ? 0 : DatumGetInt64(value);
	return true;
}

/*
 * CompareTexts orders text datums by byte order.
 */
static int
CompareTexts(Datum a, Datum b)
{
	return TextCompare(DatumGetTextPP(a), DatumGetTextPP(b));
}

/*
 * CompareComplements ranks complements: more co-orders first, then higher
 * lift (for equal co-orders, the less common product), then product id.
 */
static int
CompareComplements(const void *a, const void *b)
{
	const Complement *left = a;
	const Complement *right = b;

	if (left->co_orders != right->co_orders)
		return left->co_orders > right->co_orders ? -1 : 1;
	if (left->lift != right->lift)
		return left->lift > right->lift ? -1 : 1;
	return CompareTexts(left->product_id, right->product_id);
}

/*
 * Excluded reports whether a product id is in a sorted array of text
 * datums.
 */
static bool
Excluded(Datum product_id, Datum *excluded, int nexcluded)
{
	int			low = 0;
	int			high = nexcluded - 1;

	while (low <= high)
	{
		int			mid = (low + high) / 2;
		int			cmp = CompareTexts(product_id, excluded[mid]);

		if (cmp == 0)
			return true;
		if (cmp < 0)
			high = mid - 1;
		else
			low = mid + 1;
	}
	return false;
}

/*
 * StreamOpen starts reading one side's partners of a product, wanting
 * about `wanted` rows.
 */
static void
StreamOpen(PartnerStream *stream, SavedStatement *statement, Datum *values, int wanted)
{
	stream->portal = OpenSavedCursor(statement, values, NULL);
	stream->batch = NULL;
	stream->next = 0;
	stream->fetch = wanted;
}

/*
 * StreamHead returns the stream's current row, fetching the next batch when
 * the current one is used up, or NULL at the end.
 */
static HeapTuple
StreamHead(PartnerStream *stream)
{
	if (stream->batch != NULL && stream->next < stream->batch->numvals)
		return stream->batch->vals[stream->next];
	if (stream->portal == NULL)
		return NULL;

	if (stream->batch != NULL)
	{
		SPI_freetuptable(stream->batch);
		stream->fetch = Min(stream->fetch * 2, PARTNER_FETCH_MAX);
	}
	SPI_cursor_fetch(stream->portal, true, stream->fetch);
	stream->batch = SPI_tuptable;
	stream->next = 0;
	if (SPI_processed < (uint64) stream->fetch)
	{
		/* a short batch is the last one */
		SPI_cursor_close(stream->portal);
		stream->portal = NULL;
	}
	return SPI_processed > 0 ? stream->batch->vals[0] : NULL;
}

/*
 * StreamClose stops reading a stream.
 */
static void
StreamClose(PartnerStream *stream)
{
	if (stream->portal != NULL)
		SPI_cursor_close(stream->portal);
}

/*
 * TupleCoOrders returns the co_orders column of a partner row.
 */
static int64
TupleCoOrders(HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;

	return DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
}

/*
 * Measure reads how many counted orders contain each collected complement
 * and computes its confidence, lift and jaccard.
 */
static void
Measure(Complement *list, int count, int64 product_orders, int64 all_orders)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(count, 1));
	Datum		values[1];

	for (int i = 0; i < count; i++)
		ids[i] = list[i].product_id;
	values[0] = TextArray(ids, count);
	ExecSaved(&ProductsOrdersStatement, values, NULL, true, 0);

	for (int i = 0; i < count; i++)
	{
		Complement *complement = &list[i];
		bool		isnull;
		Datum		other_orders = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
												 1, &isnull);

		complement->other_orders = isnull ? 0 : DatumGetInt64(other_orders);
		complement->confidence = (double) complement->co_orders / (double) product_orders;
		complement->lift = complement->confidence /
			((double) complement->other_orders / (double) all_orders);
		complement->jaccard = (double) complement->co_orders /
			(double) (product_orders + complement->other_orders - complement->co_orders);
	}
}

/*
 * CollectComplements finds the n best complements of a product that
 * contains product_orders of all_orders counted orders: partners in stock,
 * with at least personalisation.complement_min_co_orders co-orders, not in
 * the sorted excluded array, ranked by CompareComplements.  It merges the
 * two sides' partners in descending co-orders and stops after the last one
 * tied with the n-th, so the ranking is exact however many partners the
 * product has.  It returns how many it found (at most n) in *found.
 */
static Complement *
CollectComplements(text *product_id, int64 product_orders, int64 all_orders, int n,
				   Datum *excluded, int nexcluded, int *found)
{
	Datum		values[2] = {PointerGetDatum(product_id), Int64GetDatum(ComplementMinCoOrders)};
	PartnerStream above;
	PartnerStream below;
	int			space = n + 1;
	Complement *list = palloc(sizeof(Complement) * space);
	int			count = 0;
	int64		cutoff = 0;

	*found = 0;
	if (product_orders <= 0)
		return list;

	StreamOpen(&above, &PartnersAboveStatement, values, n + 1);
	StreamOpen(&below, &PartnersBelowStatement, values, n + 1);
	for (;;)
	{
		HeapTuple	head_above = StreamHead(&above);
		HeapTuple	head_below = StreamHead(&below);
		PartnerStream *stream;
		HeapTuple	tuple;
		bool		isnull;
		Datum		other;
		int64		co_orders;

		if (head_above == NULL && head_below == NULL)
			break;
		if (head_below == NULL ||
			(head_above != NULL &&
			 TupleCoOrders(head_above, above.batch->tupdesc) >= TupleCoOrders(head_below, below.batch->tupdesc)))
			stream = &above;
		else
			stream = &below;
		tuple = stream == &above ? head_above : head_below;
		stream->next++;

		co_orders = TupleCoOrders(tuple, stream->batch->tupdesc);
		if (count >= n && co_orders < cutoff)
			break;
		other = SPI_getbinval(tuple, stream->batch->tupdesc, 1, &isnull);
		if (Excluded(other, excluded, nexcluded))
			continue;

		if (count == space)
		{
			space *= 2;
			list = repalloc(list, sizeof(Complement) * space);
		}
		list[count].product_id = datumCopy(other, false, -1);
		list[count].co_orders = co_orders;
		count++;
		if (count == n)
			cutoff = co_orders;
	}
	StreamClose(&above);
	StreamClose(&below);

	if (count == 0)
		return list;
	Measure(list, count, product_orders, all_orders);
	qsort(list, count, sizeof(Complement), CompareComplements);
	*found = Min(count, n);
	return list;
}

/*
 * also_bought returns the n products most often bought with the given one,
 * with co_orders, confidence, lift and jaccard as docs/recommendations.md
 * defines them.  Out-of-stock products, the product itself and pairs with
 * fewer than personalisation.complement_min_co_orders co-orders never
 * appear.
 */
Datum
also_bought(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *product_id = RequireIdentifier(fcinfo, 0, "product_id");
	int			n = RequireResultCount(fcinfo, 1);
	int64		product_orders;
	int64		all_orders;
	Complement *list;
	int			found;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	if (!ProductCounts(product_id, &product_orders, &all_orders))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("product \"%s\" is not in the catalogue", text_to_cstring(product_id)),
				 errhint("Pass a product_id from personalisation.products.")));

	list = CollectComplements(product_id, product_orders, all_orders, n, NULL, 0, &found);
	for (int i = 0; i < found; i++)
	{
		Datum		values[5] = {list[i].product_id, Int64GetDatum(list[i].co_orders),
			Float8GetDatum(list[i].confidence), Float8GetDatum(list[i].lift),
		Float8GetDatum(list[i].jaccard)};
		bool		nulls[5] = {false, false, false, false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();

	return (Datum) 0;
}

/*
 * The blend that ranks recommendations (docs/recommendations.md#scoring),
 * personalisation.recommend_* settings: a candidate's score is
 *   sum over the sources C listing it of co(C, Y) / (n(C) + shrinkage)
 *   + popularity_weight * n(Y) / N
 *   + category_weight * n(Y) / (orders of the category's products), when Y
 *     is in a source's category
 *   + repurchase_weight * (profile's orders with Y) / (profile's orders + 1),
 *     when the profile may buy Y again.
 */
static double RecommendShrinkage = 5.0;
static double RecommendPopularityWeight = 1.0;
static double RecommendCategoryWeight = 0.5;
static double RecommendRepurchaseWeight = 1.0;
bool		RecommendRepurchase = true;
int			RepurchaseMinOrders = 2;

/*
 * ComplementInit defines the settings of the recommendation blend, read
 * here and, for the repurchase rule, by the journey payloads.
 */
void
ComplementInit(void)
{
	DefineCustomIntVariable("personalisation.complement_min_co_orders",
							"The fewest orders two products must share to be recommended together.",
							"also_bought and recommend_for_cart leave out pairs bought together less often.",
							&ComplementMinCoOrders,
							2, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

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

	DefineCustomRealVariable("personalisation.recommend_shrinkage",
							 "Orders added to a source product's count when its complements' confidence is computed.",
							 "co(C, Y) / (n(C) + shrinkage): a product bought a few times does not vouch for its partners "
							 "as strongly as a best seller.",
							 &RecommendShrinkage, 5.0, 0.0, 1e6, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("personalisation.recommend_popularity_weight",
							 "Weight of a product's share of all orders in its recommendation score.",
							 NULL,
							 &RecommendPopularityWeight, 1.0, 0.0, 1e6, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("personalisation.recommend_category_weight",
							 "Weight of a product's share of its category's orders, when a source is in that category.",
							 NULL,
							 &RecommendCategoryWeight, 0.5, 0.0, 1e6, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("personalisation.recommend_repurchase_weight",
							 "Weight of the share of the profile's orders containing a product it may buy again.",
							 NULL,
							 &RecommendRepurchaseWeight, 1.0, 0.0, 1e6, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("personalisation.recommend_repurchase",
							 "Whether products a profile buys again and again may be recommended to it again.",
							 "Off: everything the profile ever ordered is left out.",
							 &RecommendRepurchase, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("personalisation.repurchase_min_orders",
							"In how many of a profile's orders a product without replenish_days must be to be recommended again.",
							"A product with replenish_days is recommended again once that many days have passed since its last order.",
							&RepurchaseMinOrders, 2, 1, INT_MAX, PGC_USERSET, 0, NULL, NULL, NULL);
}

/*
 * A candidate being scored: its recommendation so far and the parts of its
 * score still to be combined.
 */
typedef struct Candidate
{
	Recommendation rec;
	double		strength;		/* the sum of shrunk confidences */
	int64		repeat_orders;	/* the profile's orders with it, if repurchasable */
	Datum		category_source;	/* the source of its category, if any */
} Candidate;

/*
 * CompareCandidates groups candidates by product, the one with a complement
 * link first, the strongest link (highest confidence, then source id) first
 * among those.
 */
static int
CompareCandidates(const void *a, const void *b)
{
	const Candidate *left = a;
	const Candidate *right = b;
	int			cmp = CompareTexts(left->rec.link.product_id, right->rec.link.product_id);

	if (cmp != 0)
		return cmp;
	if ((left->rec.link.co_orders > 0) != (right->rec.link.co_orders > 0))
		return left->rec.link.co_orders > 0 ? -1 : 1;
	if (left->rec.link.confidence != right->rec.link.confidence)
		return left->rec.link.confidence > right->rec.link.confidence ? -1 : 1;
	if (left->rec.because_of == (Datum) 0 || right->rec.because_of == (Datum) 0)
		return (left->rec.because_of == (Datum) 0) - (right->rec.because_of == (Datum) 0);
	return CompareTexts(left->rec.because_of, right->rec.because_of);
}

/*
 * CompareRecommendations ranks scored recommendations: higher score first,
 * then more co-orders with the strongest link, then product id.
 */
static int
CompareRecommendations(const void *a, const void *b)
{
	const Recommendation *left = a;
	const Recommendation *right = b;

	if (left->score != right->score)
		return left->score > right->score ? -1 : 1;
	if (left->link.co_orders != right->link.co_orders)
		return left->link.co_orders > right->link.co_orders ? -1 : 1;
	return CompareTexts(left->link.product_id, right->link.product_id);
}

/*
 * ArrayTexts returns the elements of a text[] datum and their number.
 */
static Datum *
ArrayTexts(Datum array, int *count)
{
	Datum	   *elements;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, NULL, count);
	return elements;
}

/*
 * SortedUnion merges two text arrays, each sorted in byte order, into one
 * sorted array without duplicates, and returns its length in *count.
 */
static Datum *
SortedUnion(Datum *left, int nleft, Datum *right, int nright, int *count)
{
	Datum	   *merged = palloc(sizeof(Datum) * Max(nleft + nright, 1));
	int			i = 0,
				j = 0,
				n = 0;

	while (i < nleft || j < nright)
	{
		int			cmp = i == nleft ? 1 : j == nright ? -1 : CompareTexts(left[i], right[j]);

		if (cmp <= 0)
			merged[n++] = left[i++];
		else
			merged[n++] = right[j++];
		if (cmp == 0)
			j++;
	}
	*count = n;
	return merged;
}

/*
 * ForgetPopularity drops the popularity lists read so far; RunDue calls it
 * at the start of every call and recommend_for_cart at the start of every
 * call, since orders may have come since.
 */
void
ForgetPopularity(void)
{
	if (PopularityContext != NULL)
		MemoryContextDelete(PopularityContext);
	PopularityContext = NULL;
	Popularity = NULL;
}

/*
 * PopularityOf returns the category's popular products, reading them on
 * first use since the last ForgetPopularity.
 */
static CategoryPopularity *
PopularityOf(text *category_id)
{
	char		key[MAX_IDENTIFIER_BYTES + 1];
	CategoryPopularity *entry;
	bool		found;

	if (Popularity == NULL)
	{
		HASHCTL		ctl;

		PopularityContext = AllocSetContextCreate(TopMemoryContext, "personalisation category popularity",
												  ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(CategoryPopularity);
		ctl.hcxt = PopularityContext;
		Popularity = hash_create("personalisation category popularity", 256, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}

	text_to_cstring_buffer(category_id, key, sizeof(key));
	entry = hash_search(Popularity, key, HASH_ENTER, &found);
	if (!found)
	{
		Datum		values[1] = {PointerGetDatum(category_id)};
		MemoryContext old;
		bool		isnull;

		entry->count = 0;
		entry->total = 0;
		ExecSaved(&CategoryPopularityStatement, values, NULL, true, 0);
		old = MemoryContextSwitchTo(PopularityContext);
		entry->product_ids = palloc(sizeof(Datum) * Max(SPI_processed, 1));
		entry->orders = palloc(sizeof(int64) * Max(SPI_processed, 1));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			entry->product_ids[i] = datumCopy(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
															1, &isnull), false, -1);
			entry->orders[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
														   2, &isnull));
			entry->total += entry->orders[i];
		}
		entry->count = (int) SPI_processed;
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
	}
	return entry;
}

/*
 * AddCandidate appends a candidate without a complement link to the array
 * (holding *count, with room for *space), growing it as needed, and returns
 * it.
 */
static Candidate *
AddCandidate(Candidate **list, int *count, int *space, Datum product_id, RecommendationReason reason)
{
	Candidate  *candidate;

	if (*count == *space)
	{
		*space *= 2;
		*list = repalloc(*list, sizeof(Candidate) * *space);
	}
	candidate = &(*list)[(*count)++];
	memset(candidate, 0, sizeof(Candidate));
	candidate->rec.link.product_id = product_id;
	candidate->rec.reason = reason;
	return candidate;
}

/*
 * AddPopular appends the first n products of a category's popularity list
 * that are not in the sorted excluded array, because_of the given source.
 */
static void
AddPopular(CategoryPopularity *popularity, Datum source, Datum *excluded, int nexcluded, int n,
		   Candidate **list, int *count, int *space)
{
	int			added = 0;

	for (int i = 0; i < popularity->count && added < n; i++)
	{
		Candidate  *candidate;

		if (Excluded(popularity->product_ids[i], excluded, nexcluded))
			continue;
		candidate = AddCandidate(list, count, space, popularity->product_ids[i],
								 REASON_POPULAR_IN_CATEGORY);
		candidate->rec.because_of = source;
		candidate->category_source = source;
		added++;
	}
}

/*
 * RecommendForSources returns, best first, up to n products to recommend
 * for the sources (text datums), leaving out the products of the sorted
 * excluded array (which holds the sources), and sets *count to how many.
 * The candidates are each source's n best complements as also_bought ranks
 * them (the exclusions applied before the cut), the products the profile
 * may buy again (repurchases, or NULL) and the n most ordered products of
 * each source's category (the fallback when complements are few); each is scored
 * with the blend above and described by its strongest complement link (the
 * highest confidence, then source id); without one, its reason is the
 * first of repurchase, popular in a source's category and popular that adds
 * to its score.  recommend_for_cart and the journey payloads'
 * recommendations.
 */
Recommendation *
RecommendForSources(Datum *sources, int nsources, Datum *excluded, int nexcluded,
					Repurchases *repurchases, int n, int *count)
{
	int			space = Max(nsources * n * 2 + n, 16);
	Candidate  *list = palloc(sizeof(Candidate) * space);
	int			nlist = 0;
	int			nmerged = 0;
	int64		all_orders = 0;
	CategoryPopularity **categories = palloc(sizeof(CategoryPopularity *) * Max(nsources, 1));
	int			ncategories = 0;
	Recommendation *result;
	Datum	   *ids;
	SPITupleTable *facts;

	*count = 0;
	if (nsources == 0)
		return palloc0(sizeof(Recommendation));

	for (int c = 0; c < nsources; c++)
	{
		int64		product_orders;
		Complement *found_list;
		int			found;

		if (!ProductCounts(DatumGetTextPP(sources[c]), &product_orders, &all_orders))
			continue;
		found_list = CollectComplements(DatumGetTextPP(sources[c]), product_orders, all_orders, n,
										excluded, nexcluded, &found);
		for (int i = 0; i < found; i++)
		{
			Candidate  *candidate = AddCandidate(&list, &nlist, &space, found_list[i].product_id,
												 REASON_ALSO_BOUGHT);

			candidate->rec.link = found_list[i];
			candidate->rec.because_of = sources[c];
			candidate->strength = (double) found_list[i].co_orders /
				((double) product_orders + RecommendShrinkage);
		}
	}
	if (all_orders == 0)
	{
		Datum		values[1] = {sources[0]};

		ExecSaved(&ProductCountsStatement, values, NULL, true, 1);
		if (SPI_processed > 0)
		{
			bool		isnull;
			Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

			all_orders = isnull ? 0 : DatumGetInt64(value);
		}
	}

	for (int i = 0; repurchases != NULL && i < repurchases->count; i++)
	{
		if (!Excluded(repurchases->product_ids[i], excluded, nexcluded))
			AddCandidate(&list, &nlist, &space, repurchases->product_ids[i],
						 REASON_REPURCHASE)->repeat_orders = repurchases->orders[i];
	}

	/* the sources' categories, each once, because of its first source */
	{
		Datum		values[1] = {TextArray(sources, nsources)};
		SPITupleTable *rows;

		ExecSaved(&SourceCategoriesStatement, values, NULL, true, 0);
		rows = SPI_tuptable;
		for (int i = 0; i < nsources; i++)
		{
			bool		isnull;
			Datum		category = SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull);
			CategoryPopularity *popularity;
			bool		seen = false;

			if (isnull)
				continue;
			popularity = PopularityOf(DatumGetTextPP(category));
			for (int c = 0; c < ncategories; c++)
				seen = seen || categories[c] == popularity;
			if (seen)
				continue;
			categories[ncategories++] = popularity;
			AddPopular(popularity, sources[i], excluded, nexcluded, n, &list, &nlist, &space);
		}
	}

	/* one candidate per product: its strongest link, the parts summed */
	qsort(list, nlist, sizeof(Candidate), CompareCandidates);
	for (int i = 0; i < nlist; i++)
	{
		if (nmerged > 0 &&
			CompareTexts(list[nmerged - 1].rec.link.product_id, list[i].rec.link.product_id) == 0)
		{
			Candidate  *into = &list[nmerged - 1];

			into->strength += list[i].strength;
			into->repeat_orders = Max(into->repeat_orders, list[i].repeat_orders);
			if (into->category_source == (Datum) 0)
				into->category_source = list[i].category_source;
		}
		else
			list[nmerged++] = list[i];
	}

	/* each candidate's category and counted orders, and its score */
	ids = palloc(sizeof(Datum) * Max(nmerged, 1));
	for (int i = 0; i < nmerged; i++)
		ids[i] = list[i].rec.link.product_id;
	{
		Datum		values[1] = {TextArray(ids, nmerged)};

		ExecSaved(&CandidateFactsStatement, values, NULL, true, 0);
		facts = SPI_tuptable;
	}
	result = palloc0(sizeof(Recommendation) * Max(nmerged, 1));
	for (int i = 0; i < nmerged; i++)
	{
		Candidate  *candidate = &list[i];
		bool		isnull;
		Datum		category = SPI_getbinval(facts->vals[i], facts->tupdesc, 1, &isnull);
		bool		no_category = isnull;
		Datum		orders_datum = SPI_getbinval(facts->vals[i], facts->tupdesc, 2, &isnull);
		int64		orders = isnull ? 0 : DatumGetInt64(orders_datum);
		double		parts[4] = {candidate->strength, 0.0, 0.0, 0.0};
		RecommendationReason reason = REASON_ALSO_BOUGHT;

		if (candidate->repeat_orders > 0 && repurchases != NULL)
			parts[REASON_REPURCHASE] = RecommendRepurchaseWeight * (double) candidate->repeat_orders /
				((double) repurchases->profile_orders + 1.0);
		if (!no_category)
		{
			char	   *category_id = TextDatumGetCString(category);

			for (int c = 0; c < ncategories; c++)
				if (categories[c]->total > 0 &&
					strcmp(categories[c]->category_id, category_id) == 0)
					parts[REASON_POPULAR_IN_CATEGORY] = RecommendCategoryWeight *
						(double) orders / (double) categories[c]->total;
		}
		if (all_orders > 0)
			parts[REASON_POPULAR] = RecommendPopularityWeight * (double) orders / (double) all_orders;

		for (int r = 1; r < 4 && reason == REASON_ALSO_BOUGHT; r++)
			if (parts[r] > 0.0)
				reason = (RecommendationReason) r;
		result[i] = candidate->rec;
		result[i].link.other_orders = orders;
		result[i].score = parts[0] + parts[1] + parts[2] + parts[3];
		/* a complement link, when there is one, explains the recommendation */
		if (candidate->rec.link.co_orders == 0)
		{
			/* REASON_POPULAR when no other part counts, even at zero orders */
			result[i].reason = reason == REASON_ALSO_BOUGHT ? REASON_POPULAR : reason;
			if (result[i].reason == REASON_REPURCHASE)
				result[i].because_of = candidate->rec.link.product_id;
			else if (result[i].reason == REASON_POPULAR_IN_CATEGORY)
				result[i].because_of = candidate->category_source;
			else
				result[i].because_of = (Datum) 0;
		}
	}
	qsort(result, nmerged, sizeof(Recommendation), CompareRecommendations);
	*count = Min(nmerged, n);
	return result;
}

/*
 * recommend_for_cart returns the n best recommendations for the session's
 * cart, as RecommendForSources ranks them with the cart's products as the
 * sources: complements, products the profile buys again and again, and the
 * popular products of the cart's categories, blended.  The
 * cart's products are left out, and what the profile ordered unless it may
 * buy it again (PROFILE_PURCHASES_SQL).  A session never seen, or with an
 * empty cart, gets nothing.
 */
Datum
recommend_for_cart(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *session_id = RequireIdentifier(fcinfo, 0, "session_id");
	int			n = RequireResultCount(fcinfo, 1);
	Datum		values[3] = {PointerGetDatum(session_id), BoolGetDatum(RecommendRepurchase),
	Int32GetDatum(RepurchaseMinOrders)};
	bool		isnull;
	Datum	   *cart;
	int			ncart;
	Datum	   *bought;
	int			nbought;
	Datum	   *excluded;
	int			nexcluded;
	Datum	   *orders;
	int			norders;
	Repurchases repurchases;
	HeapTuple	tuple;
	TupleDesc	desc;
	Recommendation *recommended;
	int			count;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	ForgetPopularity();
	ExecSaved(&CartStatement, values, NULL, true, 1);
	if (SPI_processed == 0)
	{
		SPI_finish();
		return (Datum) 0;
	}
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	cart = ArrayTexts(SPI_getbinval(tuple, desc, 1, &isnull), &ncart);
	bought = ArrayTexts(SPI_getbinval(tuple, desc, 2, &isnull), &nbought);
	repurchases.product_ids = ArrayTexts(SPI_getbinval(tuple, desc, 3, &isnull), &repurchases.count);
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tuple, desc, 4, &isnull)), INT8OID, 8,
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &orders, NULL, &norders);
	repurchases.orders = palloc(sizeof(int64) * Max(norders, 1));
	for (int i = 0; i < norders; i++)
		repurchases.orders[i] = DatumGetInt64(orders[i]);
	repurchases.profile_orders = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
	excluded = SortedUnion(cart, ncart, bought, nbought, &nexcluded);

	recommended = RecommendForSources(cart, ncart, excluded, nexcluded, &repurchases, n, &count);
	for (int i = 0; i < count; i++)
	{
		Datum		row[5] = {recommended[i].link.product_id, Float8GetDatum(recommended[i].score),
			recommended[i].because_of, Int64GetDatum(recommended[i].link.co_orders),
		Float8GetDatum(recommended[i].link.lift)};
		bool		nulls[5] = {false, false, recommended[i].because_of == (Datum) 0, false,
		recommended[i].link.co_orders == 0};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, nulls);
	}
	SPI_finish();

	return (Datum) 0;
}
