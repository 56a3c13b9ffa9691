/*
 * payload.c
 *		What a journey message carries, so that a delivery worker can render
 *		it without querying back: the recipient, the cart, its items, social
 *		proof for them, an incentive with a unique coupon code, and
 *		recommendations.  Also owns the coupons the incentives issue.
 *
 *		The blocks a step lists in journey_steps.blocks are filled; the others
 *		are present and empty (items, social_proof and recommendations as [],
 *		incentive as null), so a renderer never meets a missing key.
 *		recommendations stays [] until complementarity provides them.
 */
#include "journey.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

/* Crockford's base 32: no I, L, O or U, so codes read back unambiguously. */
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
 * $1 profile, $2 run, $3 step, $4 now, $5 coupon code, $6 coupon expiry,
 * $7 the social-proof window.  Social proof counts other people (distinct
 * profiles, not the recipient) who bought or viewed each item in
 * [$4 - $7, $4).
 */
static SavedStatement PayloadStatement = {
	"SELECT pg_catalog.jsonb_build_object("
	"  'journey', r.journey, 'step', s.step, 'template', s.template, 'channel', s.channel,"
	"  'recipient', pg_catalog.jsonb_build_object("
	"      'profile_id', r.profile_id, 'customer_id', p.customer_id,"
	"      'email', CASE WHEN s.channel = 'email' THEN p.email END,"
	"      'session_id', r.session_id),"
	"  'cart', pg_catalog.jsonb_build_object("
	"      'abandoned_at', r.abandoned_at, 'last_activity_at', r.anchor_at, 'value', cart.value),"
	"  'items', CASE WHEN 'items' = ANY (s.blocks) THEN cart.items ELSE '[]'::jsonb END,"
	"  'social_proof', CASE WHEN 'social_proof' = ANY (s.blocks) THEN ("
	"      SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"                 'product_id', l.product_id,"
	"                 'bought', (SELECT count(DISTINCT o.profile_id)"
	"                              FROM personalisation.order_lines ol"
	"                              JOIN personalisation.orders o ON o.order_id = ol.order_id"
	"                             WHERE ol.product_id = l.product_id AND o.profile_id <> r.profile_id"
	"                               AND o.occurred_at >= $4 - $7 AND o.occurred_at < $4),"
	"                 'viewed', (SELECT count(DISTINCT e.profile_id)"
	"                              FROM personalisation.events e"
	"                             WHERE e.product_id = l.product_id AND e.kind = 'page_view'"
	"                               AND e.profile_id <> r.profile_id"
	"                               AND e.occurred_at >= $4 - $7 AND e.occurred_at < $4),"
	"                 'from', $4 - $7, 'to', $4)"
	"               ORDER BY l.added_at, l.product_id), '[]'::jsonb)"
	"        FROM personalisation.cart_lines l WHERE l.profile_id = r.profile_id)"
	"    ELSE '[]'::jsonb END,"
	"  'incentive', CASE WHEN 'incentive' = ANY (s.blocks) THEN pg_catalog.jsonb_build_object("
	"      'code', $5::text, 'kind', s.incentive_kind, 'value', s.incentive_value, 'expires_at', $6::timestamptz)"
	"    END,"
	"  'recommendations', '[]'::jsonb)"
	"  FROM personalisation.journey_runs r"
	"  JOIN personalisation.journey_steps s ON s.journey = r.journey AND s.step = $3"
	"  LEFT JOIN personalisation.profiles p ON p.profile_id = r.profile_id"
	"  CROSS JOIN LATERAL ("
	"       SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"                  'product_id', l.product_id, 'name', pr.name, 'quantity', l.quantity,"
	"                  'unit_price', pr.price, 'url', pr.url, 'image_url', pr.image_url)"
	"                ORDER BY l.added_at, l.product_id), '[]'::jsonb) AS items,"
	"              sum(l.quantity * pr.price) AS value"
	"         FROM personalisation.cart_lines l"
	"         JOIN personalisation.products pr ON pr.product_id = l.product_id"
	"        WHERE l.profile_id = r.profile_id) cart"
	" WHERE r.profile_id = $1 AND r.run_id = $2",
	7, {INT8OID, INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID, INTERVALOID}, KEYED_PLAN
};

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
 * BuildPayload returns the message of the step as jsonb, built as of now.
 * coupon_code is the incentive's code (NULL when the step has none).
 */
Datum
BuildPayload(RunStep *step, TimestampTz now, const char *coupon_code, TimestampTz coupon_expires_at)
{
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	values[0] = Int64GetDatum(step->profile_id);
	values[1] = Int64GetDatum(step->run_id);
	values[2] = Int32GetDatum(step->step);
	values[3] = TimestampTzGetDatum(now);
	values[4] = coupon_code ? CStringGetTextDatum(coupon_code) : (Datum) 0;
	nulls[4] = coupon_code ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(coupon_expires_at);
	nulls[5] = coupon_code ? ' ' : 'n';
	values[6] = IntervalFromUsecs((int64) SocialProofWindowMinutes * USECS_PER_MINUTE);

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
