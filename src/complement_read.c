/*
 * complement_read.c
 *		The readers of the complementarity counts (complement.c): also_bought,
 *		and the recommendations for a set of source products (a cart,
 *		recommend_for_cart; an order, RecommendForSources for the journeys'
 *		messages): a blend of co-occurrence, the products' popularity, their
 *		share of the source's category, and repurchase, with the
 *		popular-in-category fallback.
 *
 *		Two halves along one seam: also_bought's partner streams (up to
 *		also_bought), then the blend (from RecommendInit on),
 *		built on the first half's CollectComplements.
 */
#include "complement.h"
#include "complement_internal.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datum.h"

/* Settings of this part (defined by ComplementInit) */
int			ComplementMinCoOrders = 2;

PG_FUNCTION_INFO_V1(also_bought);
PG_FUNCTION_INFO_V1(recommend_for_cart);

/* The most rows also_bought and recommend_for_cart return. */
#define MAX_RESULTS 1000

/* Most rows per partner fetch. */
#define PARTNER_FETCH_MAX 1024

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
static SavedStatement CategoryBestsellersStatement = {
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
 * RecommendInit defines the settings of the readers: the support a pair
 * needs and the recommendation blend, read here and, for the repurchase
 * rule, by the journey payloads.
 */
void
RecommendInit(void)
{
	DefineCustomIntVariable("personalisation.complement_min_co_orders",
							"The fewest orders two products must share to be recommended together.",
							"also_bought and recommend_for_cart leave out pairs bought together less often.",
							&ComplementMinCoOrders,
							2, 1, INT_MAX,
							PGC_USERSET, 0,
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
		ExecSaved(&CategoryBestsellersStatement, values, NULL, true, 0);
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
