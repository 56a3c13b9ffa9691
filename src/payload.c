/*
 * payload.c
 *		What a journey message carries, so that a delivery worker can render
 *		it without querying back: the recipient, the cart or the order, their
 *		items, social proof for them, an incentive with a unique coupon code,
 *		recommendations (complements from the complementarity counts, then
 *		products popular in the same categories) and a subscription offer.
 *		Also owns the coupons the incentives issue.
 *
 *		The blocks a step lists in journey_steps.blocks are filled; the others
 *		are present and empty (items, social_proof and recommendations as [],
 *		incentive and subscription_offer as null), so a renderer never meets
 *		a missing key.  cart is null for runs a purchase started, order for
 *		cart runs.
 */
#include "payload.h"

#include "complement.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"

/* Settings of this part (defined by PayloadInit) */
int			SocialProofWindowMinutes = 7 * 24 * 60;

/* Crockford's base 32: no I, L, O or U, so codes read back unambiguously. */
/* The reason a recommendation gives in the payload, by RecommendationReason. */
static const char *const ReasonNames[] = {
	[REASON_ALSO_BOUGHT] = "also_bought",
	[REASON_REPURCHASE] = "repurchase",
	[REASON_POPULAR_IN_CATEGORY] = "popular_in_category",
	[REASON_POPULAR] = "popular",
};

static const char CouponAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Random characters after the serial part of a coupon code (5 bits each). */
#define COUPON_RANDOM_CHARS 8

static SavedStatement CouponSerialStatement = {
	"SELECT pg_catalog.nextval('personalisation.coupon_seq')",
	0, {InvalidOid}, KEYED_PLAN
};

static SavedStatement IssueCouponStatement = {
	"INSERT INTO personalisation.coupons"
	" (profile_id, code, run_id, step, kind, value, issued_at, expires_at)"
	" SELECT $1, $2, $3, $4, s.incentive_kind, s.incentive_value, $5, $6"
	"   FROM personalisation.journey_steps s WHERE s.journey = $7 AND s.step = $4",
	7, {INT8OID, TEXTOID, INT8OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID}, KEYED_PLAN
};

/*
 * $1 profile, $2 run, $3 step, $4 now, $5 coupon code, $6 coupon expiry, $7
 * social proof, $8 recommendations.  The items of a run a purchase started
 * are its standing order lines, one per product: quantities summed, the
 * price last paid.
 */
static SavedStatement PayloadStatement = {
	"SELECT pg_catalog.jsonb_build_object("
	"  'journey', r.journey, 'step', s.step, 'template', s.template, 'channel', s.channel,"
	"  'recipient', pg_catalog.jsonb_build_object("
	"      'profile_id', r.profile_id, 'customer_id', p.customer_id,"
	"      'email', CASE WHEN s.channel = 'email' THEN p.email END,"
	"      'session_id', r.session_id),"
	"  'cart', CASE WHEN r.order_id IS NULL THEN pg_catalog.jsonb_build_object("
	"      'abandoned_at', r.abandoned_at, 'last_activity_at', r.anchor_at, 'value', cart.value) END,"
	"  'order', CASE WHEN r.order_id IS NOT NULL THEN pg_catalog.jsonb_build_object("
	"      'order_id', r.order_id, 'ordered_at', r.anchor_at, 'value', bought.value) END,"
	"  'items', CASE WHEN NOT 'items' = ANY (s.blocks) THEN '[]'::jsonb"
	"                WHEN r.order_id IS NULL THEN cart.items"
	"                ELSE coalesce(bought.items, '[]'::jsonb) END,"
	"  'social_proof', CASE WHEN 'social_proof' = ANY (s.blocks) THEN $7 ELSE '[]'::jsonb END,"
	"  'incentive', CASE WHEN 'incentive' = ANY (s.blocks) THEN pg_catalog.jsonb_build_object("
	"      'code', $5::text, 'kind', s.incentive_kind, 'value', s.incentive_value, 'expires_at', $6::timestamptz)"
	"    END,"
	"  'recommendations', coalesce($8, '[]'::jsonb),"
	"  'subscription_offer', CASE WHEN 'subscription_offer' = ANY (s.blocks) THEN ("
	"      SELECT pg_catalog.jsonb_build_object("
	"                 'product_id', pr.product_id, 'name', pr.name, 'unit_price', pr.price,"
	"                 'url', pr.url, 'image_url', pr.image_url, 'replenish_days', pr.replenish_days,"
	"                 'runs_out_at', r.runs_out_at)"
	"        FROM personalisation.products pr WHERE pr.product_id = r.product_id) END)"
	"  FROM personalisation.journey_runs r"
	"  JOIN personalisation.journey_steps s ON s.journey = r.journey AND s.step = $3"
	"  LEFT JOIN personalisation.profiles p ON p.profile_id = r.profile_id"
	"  CROSS JOIN LATERAL ("
	"       SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"                  'product_id', l.product_id, 'name', pr.name, 'quantity', l.quantity,"
	"                  'unit_price', pr.price, 'url', pr.url, 'image_url', pr.image_url)"
	"                ORDER BY l.added_at, l.product_id), '[]'::jsonb) AS items,"
	"              pg_catalog.sum(l.quantity::pg_catalog.numeric OPERATOR(pg_catalog.*) pr.price) AS value"
	"         FROM personalisation.cart_lines l"
	"         JOIN personalisation.products pr ON pr.product_id = l.product_id"
	"        WHERE l.profile_id = r.profile_id AND r.order_id IS NULL) cart"
	"  CROSS JOIN LATERAL ("
	"       SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"                  'product_id', b.product_id, 'name', pr.name, 'quantity', b.quantity,"
	"                  'unit_price', b.unit_price, 'url', pr.url, 'image_url', pr.image_url)"
	"                ORDER BY b.first_at, b.product_id) AS items,"
	"              pg_catalog.sum(b.value) AS value"
	"         FROM (SELECT u.product_id, pg_catalog.sum(u.quantity) AS quantity, pg_catalog.min(u.ordered_at) AS first_at,"
	"                      (pg_catalog.array_agg(u.unit_price ORDER BY u.ordered_at DESC, u.order_id DESC))[1]"
	"                          AS unit_price,"
	"                      pg_catalog.sum(u.quantity::pg_catalog.numeric OPERATOR(pg_catalog.*) u.unit_price) AS value"
	"                 FROM personalisation.journey_run_purchases u"
	"                WHERE u.profile_id = r.profile_id AND u.run_id = r.run_id"
	"                GROUP BY u.product_id) b"
	"         JOIN personalisation.products pr ON pr.product_id = b.product_id) bought"
	" WHERE r.profile_id = $1 AND r.run_id = $2",
	8, {INT8OID, INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID, JSONBOID, JSONBOID},
	KEYED_PLAN
};

/*
 * $1 profile, $2 run, $3 recommend_repurchase, $4 repurchase_min_orders, $5
 * when the step falls due: the products the run's recommendations
 * complement (the cart's, or the standing order lines' of a run a purchase
 * started); the products not to recommend (the sources, in the profile's
 * cart, ordered unless it may buy them again (PROFILE_PURCHASES_SQL as of
 * $5), subscribed, or recommended by an earlier message of the run, sent or
 * held); each a text[] sorted in byte order without duplicates; then the
 * products it may buy again, the number of its orders containing each, and
 * its standing orders.
 */
#define PURCHASES PROFILE_PURCHASES_SQL("r.profile_id", "$5", "$3", "$4")
static SavedStatement RecommendationBasisStatement = {
	"SELECT ARRAY(SELECT DISTINCT b.product_id COLLATE \"C\" FROM ("
	"                 SELECT l.product_id FROM personalisation.cart_lines l"
	"                  WHERE l.profile_id = r.profile_id AND r.order_id IS NULL"
	"                 UNION ALL"
	"                 SELECT u.product_id FROM personalisation.journey_run_purchases u"
	"                  WHERE u.profile_id = r.profile_id AND u.run_id = r.run_id) b ORDER BY 1),"
	"       ARRAY(SELECT DISTINCT x.product_id COLLATE \"C\" FROM ("
	"                 SELECT l.product_id FROM personalisation.cart_lines l"
	"                  WHERE l.profile_id = r.profile_id"
	"                 UNION ALL"
	"                 SELECT u.product_id FROM personalisation.journey_run_purchases u"
	"                  WHERE u.profile_id = r.profile_id AND u.run_id = r.run_id"
	"                 UNION ALL"
	"                 SELECT h.product_id FROM (" PURCHASES ") h WHERE NOT h.repurchasable"
	"                 UNION ALL"
	"                 SELECT s.product_id FROM personalisation.subscriptions s"
	"                  WHERE s.profile_id = r.profile_id AND s.stopped_at IS NULL"
	"                 UNION ALL"
	"                 SELECT e ->> 'product_id'"
	"                   FROM personalisation.journey_run_steps rs"
	"                   LEFT JOIN personalisation.outbox o"
	"                     ON o.message_id = rs.message_id AND o.profile_id = rs.profile_id,"
	"                        pg_catalog.jsonb_array_elements(coalesce(o.payload, rs.payload) -> 'recommendations') e"
	"                  WHERE rs.profile_id = r.profile_id AND rs.run_id = r.run_id) x ORDER BY 1),"
	"       ARRAY(SELECT h.product_id FROM (" PURCHASES ") h WHERE h.repurchasable ORDER BY 1),"
	"       ARRAY(SELECT h.orders FROM (" PURCHASES ") h WHERE h.repurchasable ORDER BY h.product_id),"
	"       (SELECT pg_catalog.count(*) FROM personalisation.orders o"
	"         WHERE o.profile_id = r.profile_id AND o.refunded_at IS NULL)"
	"  FROM personalisation.journey_runs r WHERE r.profile_id = $1 AND r.run_id = $2",
	5, {INT8OID, INT8OID, BOOLOID, INT4OID, TIMESTAMPTZOID}, KEYED_PLAN
};
#undef PURCHASES

/* $1 product ids, $2 reasons, $3 because_of, in rank order: the recommendations block. */
static SavedStatement RecommendationBlockStatement = {
	"SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"           'product_id', p.product_id, 'name', p.name, 'unit_price', p.price, 'url', p.url,"
	"           'image_url', p.image_url, 'reason', u.reason, 'because_of', u.because_of)"
	"         ORDER BY u.n), '[]'::jsonb)"
	"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
	"       WITH ORDINALITY AS u(product_id, reason, because_of, n)"
	"  JOIN personalisation.products p ON p.product_id = u.product_id",
	3, {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID}, KEYED_PLAN
};

/*
 * $1 product, $2 now, $3 window: the people (distinct profiles) who ordered
 * it, and who viewed its page, in [$2 - $3, $2).
 */
static SavedStatement ProductAudienceStatement = {
	"SELECT (SELECT pg_catalog.count(DISTINCT o.profile_id)"
	"          FROM personalisation.order_lines ol"
	"          JOIN personalisation.orders o ON o.order_id = ol.order_id"
	"         WHERE ol.product_id = $1 AND o.occurred_at >= $2 - $3 AND o.occurred_at < $2),"
	"       (SELECT pg_catalog.count(DISTINCT e.profile_id)"
	"          FROM personalisation.events e"
	"         WHERE e.product_id = $1 AND e.kind = 'page_view'"
	"           AND e.occurred_at >= $2 - $3 AND e.occurred_at < $2)",
	3, {TEXTOID, TIMESTAMPTZOID, INTERVALOID}, KEYED_PLAN
};

/*
 * $1 profile, $2 now, $3 window: the cart's products in order, and whether
 * the profile itself ordered or viewed each in the window (it is not counted
 * in its own social proof).
 */
static SavedStatement CartAudienceStatement = {
	"WITH bought AS ("
	"    SELECT ol.product_id FROM personalisation.orders o"
	"      JOIN personalisation.order_lines ol ON ol.order_id = o.order_id"
	"     WHERE o.profile_id = $1 AND o.occurred_at >= $2 - $3 AND o.occurred_at < $2"
	"), viewed AS ("
	"    SELECT e.product_id FROM personalisation.events e"
	"     WHERE e.profile_id = $1 AND e.kind = 'page_view'"
	"       AND e.occurred_at >= $2 - $3 AND e.occurred_at < $2"
	")"
	" SELECT l.product_id, l.product_id IN (SELECT product_id FROM bought),"
	"        l.product_id IN (SELECT product_id FROM viewed)"
	"   FROM personalisation.cart_lines l WHERE l.profile_id = $1"
	"  ORDER BY l.added_at, l.product_id",
	3, {INT8OID, TIMESTAMPTZOID, INTERVALOID}, KEYED_PLAN
};

/* $1 products, $2 bought, $3 viewed, $4 now, $5 window: the social_proof block. */
static SavedStatement SocialProofStatement = {
	"SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"           'product_id', p, 'bought', b, 'viewed', v, 'from', $4 - $5, 'to', $4) ORDER BY n), '[]')"
	"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3))"
	"       WITH ORDINALITY AS t(p, b, v, n)",
	5, {TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID, INTERVALOID}, KEYED_PLAN
};

/* How many people bought and viewed a product, as of SocialProofAsOf. */
typedef struct ProductAudience
{
	char		product_id[MAX_IDENTIFIER_BYTES + 1];	/* hash key */
	int64		bought;
	int64		viewed;
} ProductAudience;

/*
 * Product audiences counted so far for the instant SocialProofAsOf, so that
 * each product is counted once per run_due call however many carts hold it.
 */
static HTAB *ProductAudiences = NULL;
static TimestampTz SocialProofAsOf = 0;

/*
 * AppendBase32 appends value in base 32, most significant digit first, with
 * at least min_digits digits.
 */
static void
AppendBase32(StringInfo buf, uint64 value, int min_digits)
{
	char		digits[16];
	int			count = 0;

	do
	{
		digits[count++] = CouponAlphabet[value % 32];
		value /= 32;
	} while (value > 0 || count < min_digits);

	while (count > 0)
		appendStringInfoChar(buf, digits[--count]);
}

/*
 * NewCouponCode returns a code no other coupon has and nobody can guess: a
 * serial from personalisation.coupon_seq (unique) and 40 random bits
 * (unguessable), both in base 32, as in "000K-7QX2VD4B".
 */
char *
NewCouponCode(void)
{
	uint8		random[5];
	uint64		random_bits = 0;
	bool		isnull;
	StringInfoData code;

	ExecSaved(&CouponSerialStatement, NULL, NULL, false, 1);
	if (!pg_strong_random(random, sizeof(random)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random coupon code")));
	for (int i = 0; i < (int) sizeof(random); i++)
		random_bits = (random_bits << 8) | random[i];

	initStringInfo(&code);
	AppendBase32(&code, (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc, 1, &isnull)), 4);
	appendStringInfoChar(&code, '-');
	AppendBase32(&code, random_bits, COUPON_RANDOM_CHARS);
	return code.data;
}

/*
 * ForgetSocialProof drops the counted product audiences; RunDue calls it at
 * the start of every call, since orders and views may have come since.
 */
void
ForgetSocialProof(void)
{
	if (ProductAudiences != NULL)
		hash_destroy(ProductAudiences);
	ProductAudiences = NULL;
}

/*
 * AudienceOf returns how many people bought and viewed the product in the
 * social-proof window before now, counting it on first use.
 */
static ProductAudience *
AudienceOf(text *product_id, TimestampTz now, Datum window)
{
	char		key[MAX_IDENTIFIER_BYTES + 1];
	ProductAudience *audience;
	bool		found;

	if (ProductAudiences == NULL || SocialProofAsOf != now)
	{
		HASHCTL		ctl;

		ForgetSocialProof();
		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(ProductAudience);
		ProductAudiences = hash_create("personalisation product audiences", 1024, &ctl,
									   HASH_ELEM | HASH_STRINGS);
		SocialProofAsOf = now;
	}

	text_to_cstring_buffer(product_id, key, sizeof(key));
	audience = hash_search(ProductAudiences, key, HASH_ENTER, &found);
	if (!found)
	{
		Datum		values[3] = {PointerGetDatum(product_id), TimestampTzGetDatum(now), window};
		bool		isnull;

		audience->bought = 0;
		audience->viewed = 0;
		ExecSaved(&ProductAudienceStatement, values, NULL, false, 1);
		audience->bought = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		audience->viewed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	return audience;
}

/*
 * SocialProof returns the social_proof block for the profile's cart: per
 * item, in cart order, how many other people (distinct profiles, the
 * recipient not counted) ordered it and viewed its page in the
 * personalisation.social_proof_window before now.
 */
static Datum
SocialProof(int64 profile_id, TimestampTz now)
{
	Datum		window = IntervalFromUsecs((int64) SocialProofWindowMinutes * USECS_PER_MINUTE);
	Datum		values[5] = {Int64GetDatum(profile_id), TimestampTzGetDatum(now), window, 0, 0};
	SPITupleTable *cart;
	int			count;
	Datum	   *products;
	Datum	   *bought;
	Datum	   *viewed;
	bool		isnull;

	ExecSaved(&CartAudienceStatement, values, NULL, false, 0);
	cart = SPI_tuptable;
	count = (int) SPI_processed;
	products = palloc(sizeof(Datum) * (count + 1));
	bought = palloc(sizeof(Datum) * (count + 1));
	viewed = palloc(sizeof(Datum) * (count + 1));
	for (int i = 0; i < count; i++)
	{
		text	   *product_id = DatumGetTextPP(SPI_getbinval(cart->vals[i], cart->tupdesc, 1, &isnull));
		bool		bought_it = DatumGetBool(SPI_getbinval(cart->vals[i], cart->tupdesc, 2, &isnull));
		bool		viewed_it = DatumGetBool(SPI_getbinval(cart->vals[i], cart->tupdesc, 3, &isnull));
		ProductAudience *audience = AudienceOf(product_id, now, window);

		products[i] = PointerGetDatum(product_id);
		bought[i] = Int64GetDatum(audience->bought - (bought_it ? 1 : 0));
		viewed[i] = Int64GetDatum(audience->viewed - (viewed_it ? 1 : 0));
	}

	values[0] = PointerGetDatum(construct_array(products, count, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(bought, count, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(viewed, count, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[3] = TimestampTzGetDatum(now);
	values[4] = window;
	ExecSaved(&SocialProofStatement, values, NULL, false, 1);
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * ColumnTexts returns the elements of the text[] in column col of the
 * current SPI row, and their number in *count.
 */
static Datum *
ColumnTexts(int col, int *count)
{
	bool		isnull;
	Datum	   *elements;

	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
													   col, &isnull)),
					  TEXTOID, -1, false, TYPALIGN_INT, &elements, NULL, count);
	return elements;
}

/*
 * TextArrayOf builds a text[] from count text datums.
 */
static Datum
TextArrayOf(Datum *elements, int count)
{
	return PointerGetDatum(construct_array(elements, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * RecommendForStep fills the step's recommendations block, once, and
 * returns how many it holds: up to max_recommendations products for the
 * run's products as recommend_for_cart ranks them, each with its reason
 * ("also_bought", "repurchase", "popular_in_category", "popular") and the
 * product it is because of (none for "popular").  Nothing in the profile's
 * cart, ordered (unless it may buy it again) or subscribed is recommended,
 * nor what an earlier message of the run recommended.
 */
int
RecommendForStep(RunStep *step)
{
	Datum		values[5] = {Int64GetDatum(step->profile_id), Int64GetDatum(step->run_id),
		BoolGetDatum(RecommendRepurchase), Int32GetDatum(RepurchaseMinOrders),
	TimestampTzGetDatum(step->due_at)};
	int			max = step->max_recommendations;
	Datum	   *sources;
	Datum	   *excluded;
	int			nsources;
	int			nexcluded;
	Repurchases repurchases;
	Datum	   *orders;
	int			norders;
	Recommendation *found;
	int			count;
	Datum	   *ids;
	Datum	   *reasons;
	Datum	   *because;
	bool	   *no_because;
	int			lower = 1;
	bool		isnull;

	if (step->recommendation_list != (Datum) 0)
		return step->recommended;

	ExecSaved(&RecommendationBasisStatement, values, NULL, false, 1);
	sources = ColumnTexts(1, &nsources);
	excluded = ColumnTexts(2, &nexcluded);
	repurchases.product_ids = ColumnTexts(3, &repurchases.count);
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)),
					  INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &orders, NULL, &norders);
	repurchases.orders = palloc(sizeof(int64) * Max(norders, 1));
	for (int i = 0; i < norders; i++)
		repurchases.orders[i] = DatumGetInt64(orders[i]);
	repurchases.profile_orders = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
															 5, &isnull));

	found = RecommendForSources(sources, nsources, excluded, nexcluded, &repurchases, max, &count);
	ids = palloc(sizeof(Datum) * max);
	reasons = palloc(sizeof(Datum) * max);
	because = palloc(sizeof(Datum) * max);
	no_because = palloc(sizeof(bool) * max);
	for (int i = 0; i < count; i++)
	{
		ids[i] = found[i].link.product_id;
		reasons[i] = CStringGetTextDatum(ReasonNames[found[i].reason]);
		because[i] = found[i].because_of;
		no_because[i] = found[i].because_of == (Datum) 0;
	}

	values[0] = TextArrayOf(ids, count);
	values[1] = TextArrayOf(reasons, count);
	values[2] = PointerGetDatum(construct_md_array(because, no_because, 1, &count, &lower, TEXTOID, -1,
												   false, TYPALIGN_INT));
	ExecSaved(&RecommendationBlockStatement, values, NULL, false, 1);
	step->recommendation_list = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	step->recommended = count;
	return count;
}

/*
 * BuildPayload returns the message of the step as jsonb, built as of now.
 * coupon_code is the incentive's code (NULL when the step has none).
 */
Datum
BuildPayload(RunStep *step, TimestampTz now, const char *coupon_code, TimestampTz coupon_expires_at)
{
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	values[0] = Int64GetDatum(step->profile_id);
	values[1] = Int64GetDatum(step->run_id);
	values[2] = Int32GetDatum(step->step);
	values[3] = TimestampTzGetDatum(now);
	values[4] = coupon_code ? CStringGetTextDatum(coupon_code) : (Datum) 0;
	nulls[4] = coupon_code ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(coupon_expires_at);
	nulls[5] = coupon_code ? ' ' : 'n';
	values[6] = step->social_proof ? SocialProof(step->profile_id, now) : (Datum) 0;
	nulls[6] = step->social_proof ? ' ' : 'n';
	if (step->recommendations)
		RecommendForStep(step);
	values[7] = step->recommendation_list;
	nulls[7] = step->recommendations ? ' ' : 'n';

	ExecSaved(&PayloadStatement, values, nulls, false, 1);
	if (SPI_processed != 1)
		elog(ERROR, "journey run " INT64_FORMAT " of profile " INT64_FORMAT " has no step %d",
			 step->run_id, step->profile_id, step->step);
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * IssueCoupon records a coupon sent in a message, with the kind and value
 * its step defines, so that the shop's checkout can honour it until it
 * expires.
 */
void
IssueCoupon(RunStep *step, const char *code, TimestampTz issued_at, TimestampTz expires_at)
{
	Datum		values[7] = {Int64GetDatum(step->profile_id), CStringGetTextDatum(code),
		Int64GetDatum(step->run_id), Int32GetDatum(step->step), TimestampTzGetDatum(issued_at),
	TimestampTzGetDatum(expires_at), PointerGetDatum(step->journey)};

	ExecSaved(&IssueCouponStatement, values, NULL, false, 0);
}

/*
 * PayloadInit defines the settings of this part.
 */
void
PayloadInit(void)
{
	DefineCustomIntVariable("personalisation.social_proof_window",
							"How far back social proof counts the people who bought or viewed a product.",
							NULL,
							&SocialProofWindowMinutes,
							7 * 24 * 60, 60, 180 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);
}
