/*
 * purchases.c
 *		track_purchase: parsing and checking an order's items, recording the
 *		order and its lines exactly once per order id, ending the buyer's
 *		journey runs, enrolling the buyer in the post-purchase journeys, and
 *		clearing the purchased products from the cart, all in the caller's
 *		transaction.
 */
#include "purchases.h"

#include "affinity.h"
#include "complement.h"
#include "journey.h"
#include "locks.h"
#include "post_purchase.h"
#include "worker.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* Settings of this part (defined by PurchasesInit) */
int			MaxOrderLines = 500;

PG_FUNCTION_INFO_V1(track_purchase);

/*
 * Order advisory locks one transaction takes; past them, the order's row
 * serialises the calls for its id (see track_purchase), so that a batch of
 * thousands of orders does not fill the shared lock table.
 */
#define ORDER_ADVISORY_LOCKS 16

static AdvisoryAllowance OrderLocks = {ORDER_ADVISORY_LOCKS};

/* One parsed line of a purchase. */
typedef struct OrderLine
{
	text	   *product_id;
	int32		quantity;
	Numeric		unit_price;
} OrderLine;

/* An order's lines, sorted by product id in byte order. */
typedef struct OrderItems
{
	int			count;
	OrderLine  *lines;
	Datum		product_ids;	/* text[] */
	Datum		quantities;		/* int4[] */
	Datum		unit_prices;	/* numeric[] */
} OrderItems;

static SavedStatement UnknownProductStatement = {
	"SELECT p FROM pg_catalog.unnest($1) AS p"
	" WHERE NOT EXISTS (SELECT FROM personalisation.products WHERE product_id = p) LIMIT 1",
	1, {TEXTARRAYOID}
};

static SavedStatement SameOrderStatement = {
	"SELECT o.session_id = $2"
	"   AND pg_catalog.array_agg(l.product_id ORDER BY l.product_id COLLATE \"C\") OPERATOR(pg_catalog.=) $3"
	"   AND pg_catalog.array_agg(l.quantity ORDER BY l.product_id COLLATE \"C\") OPERATOR(pg_catalog.=) $4"
	"   AND pg_catalog.array_agg(l.unit_price ORDER BY l.product_id COLLATE \"C\") OPERATOR(pg_catalog.=) $5"
	"  FROM personalisation.orders o JOIN personalisation.order_lines l USING (order_id)"
	" WHERE o.order_id = $1 GROUP BY o.session_id",
	5, {TEXTOID, TEXTOID, TEXTARRAYOID, INT4ARRAYOID, NUMERICARRAYOID}
};

/* Records nothing (no row processed) when another call recorded the order id meanwhile. */
static SavedStatement InsertOrderStatement = {
	"WITH new_order AS ("
	"  INSERT INTO personalisation.orders"
	"   (order_id, profile_id, session_id, occurred_at, line_count, total)"
	"  SELECT $1, $2, $3, $4, pg_catalog.cardinality($5),"
	"         pg_catalog.sum(q::pg_catalog.numeric OPERATOR(pg_catalog.*) p)"
	"    FROM ROWS FROM (pg_catalog.unnest($6), pg_catalog.unnest($7)) AS l(q, p)"
	"  ON CONFLICT (order_id) DO NOTHING"
	"  RETURNING total)"
	" INSERT INTO personalisation.order_lines (order_id, product_id, quantity, unit_price)"
	" SELECT $1, pid, q, p FROM ROWS FROM (pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) AS l(pid, q, p)"
	"  WHERE EXISTS (SELECT FROM new_order)"
	" RETURNING (SELECT total FROM new_order)",
	7, {TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID, INT4ARRAYOID, NUMERICARRAYOID}
};

static SavedStatement ClearPurchasedStatement = {
	"DELETE FROM personalisation.cart_lines WHERE profile_id = $1 AND product_id = ANY ($2)",
	2, {INT8OID, TEXTARRAYOID}
};

/*
 * ItemsError reports a malformed items argument (sqlerrcode
 * ERRCODE_INVALID_PARAMETER_VALUE) or a number beyond its bounds
 * (ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), naming the line at fault.
 */
static void
pg_attribute_noreturn()
ItemsError(int line, int sqlerrcode, const char *problem)
{
	ereport(ERROR,
			(errcode(sqlerrcode),
			 errmsg("purchase item %d %s", line, problem),
			 errhint("Pass items as a JSON array of objects like "
					 "{\"product_id\": \"sku-1\", \"quantity\": 2, \"unit_price\": 9.99}, "
					 "one per product, with a whole quantity from 1 to %d and a price of 0 or more, "
					 "below 10^%d, with at most %d decimal places.",
					 MAX_QUANTITY, MAX_PRICE_DIGITS, MAX_PRICE_SCALE)));
}

/*
 * NumberForMessage returns value as text short enough to quote in an error
 * message: as written when it is short, in scientific notation when a
 * hostile 1e130000 would otherwise fill the message.
 */
static char *
NumberForMessage(Numeric value)
{
	char	   *written = numeric_normalize(value);

	return strlen(written) <= 32 ? written : numeric_out_sci(value, 6);
}

/*
 * PriceLimit returns 10^MAX_PRICE_DIGITS, the bound every price stays below.
 */
static Numeric
PriceLimit(void)
{
	int64		limit = 1;

	for (int i = 0; i < MAX_PRICE_DIGITS; i++)
		limit *= 10;
	return int64_to_numeric(limit);
}

/*
 * CompareNumeric returns <0, 0 or >0 as left is below, equal to or above right.
 */
static int
CompareNumeric(Numeric left, Numeric right)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(left),
											 NumericGetDatum(right)));
}

/*
 * ItemField returns the value of key in one item object, refusing an item
 * that lacks it.
 */
static JsonbValue *
ItemField(JsonbContainer *item, const char *key, int line)
{
	JsonbValue *found = getKeyJsonValueFromContainer(item, key, strlen(key), NULL);

	if (found == NULL || found->type == jbvNull)
		ItemsError(line, ERRCODE_INVALID_PARAMETER_VALUE, psprintf("has no \"%s\"", key));
	return found;
}

/*
 * CompareLines orders lines by product id in byte order, the order in which
 * an existing order's lines are compared.
 */
static int
CompareLines(const void *a, const void *b)
{
	return TextCompare(((const OrderLine *) a)->product_id, ((const OrderLine *) b)->product_id);
}

/*
 * CheckedPrice returns the unit price of line, refusing a negative price,
 * one of 10^MAX_PRICE_DIGITS or more and one with non-zero digits beyond
 * MAX_PRICE_SCALE decimal places (NaN and infinity cannot come from JSON,
 * and would fail the same bounds).  Zeros beyond those places are dropped,
 * so that "9.990000" is stored, summed and sent as 9.9900.
 */
static Numeric
CheckedPrice(Numeric price, int line)
{
	Numeric		rounded;

	if (CompareNumeric(price, int64_to_numeric(0)) < 0)
		ItemsError(line, ERRCODE_INVALID_PARAMETER_VALUE,
				   psprintf("has unit_price %s, which is negative", NumberForMessage(price)));
	if (CompareNumeric(price, PriceLimit()) >= 0)
		ItemsError(line, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
				   psprintf("has unit_price %s, which is not below 10^%d",
							NumberForMessage(price), MAX_PRICE_DIGITS));
	if (DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(price))) <= MAX_PRICE_SCALE)
		return price;
	rounded = DatumGetNumeric(DirectFunctionCall2(numeric_round, NumericGetDatum(price),
												  Int32GetDatum(MAX_PRICE_SCALE)));
	if (CompareNumeric(price, rounded) != 0)
		ItemsError(line, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
				   psprintf("has unit_price %s, which has more than %d decimal places",
							NumberForMessage(price), MAX_PRICE_SCALE));
	return rounded;
}

/*
 * ParseLine checks one item object and returns it as an OrderLine.
 */
static OrderLine
ParseLine(JsonbValue *element, int line)
{
	OrderLine	parsed;
	JsonbValue *field;
	Numeric		zero = int64_to_numeric(0);

	if (element->type != jbvBinary || !JsonContainerIsObject(element->val.binary.data))
		ItemsError(line, ERRCODE_INVALID_PARAMETER_VALUE, "is not a JSON object");

	field = ItemField(element->val.binary.data, "product_id", line);
	if (field->type != jbvString)
		ItemsError(line, ERRCODE_INVALID_PARAMETER_VALUE, "has a product_id that is not a string");
	parsed.product_id = cstring_to_text_with_len(field->val.string.val, field->val.string.len);
	CheckIdentifierText(parsed.product_id, "purchase item product_id");

	field = ItemField(element->val.binary.data, "quantity", line);
	if (field->type != jbvNumeric)
		ItemsError(line, ERRCODE_INVALID_PARAMETER_VALUE, "has a quantity that is not a number");
	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(field->val.numeric),
										  DirectFunctionCall2(numeric_trunc,
															  NumericGetDatum(field->val.numeric),
															  Int32GetDatum(0)))) ||
		CompareNumeric(field->val.numeric, zero) <= 0)
		ItemsError(line, ERRCODE_INVALID_PARAMETER_VALUE,
				   psprintf("has quantity %s, which is not a positive whole number",
							NumberForMessage(field->val.numeric)));
	if (CompareNumeric(field->val.numeric, int64_to_numeric(MAX_QUANTITY)) > 0)
		ItemsError(line, ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
				   psprintf("has quantity %s, which is more than %d",
							NumberForMessage(field->val.numeric), MAX_QUANTITY));
	parsed.quantity = DatumGetInt32(DirectFunctionCall1(numeric_int4,
														NumericGetDatum(field->val.numeric)));

	field = ItemField(element->val.binary.data, "unit_price", line);
	if (field->type != jbvNumeric)
		ItemsError(line, ERRCODE_INVALID_PARAMETER_VALUE, "has a unit_price that is not a number");
	parsed.unit_price = CheckedPrice(field->val.numeric, line);

	return parsed;
}

/*
 * ParseItems turns the items argument into sorted, checked order lines,
 * refusing anything that is not a non-empty array of well-formed items.
 * Lines of one product at the same unit price, as order exports contain,
 * become one line with their quantities summed; at different prices they
 * are refused.
 */
static OrderItems
ParseItems(Jsonb *items)
{
	OrderItems	parsed;
	Datum	   *ids;
	Datum	   *quantities;
	Datum	   *prices;
	int			merged;

	if (!JB_ROOT_IS_ARRAY(items) || JB_ROOT_IS_SCALAR(items))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purchase items must be a JSON array"),
				 errhint("Pass items as a JSON array of objects with product_id, quantity and unit_price.")));

	parsed.count = JB_ROOT_COUNT(items);
	if (parsed.count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("purchase items must not be empty"),
				 errhint("An order has at least one line.")));
	if (parsed.count > MaxOrderLines)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("purchase has %d items, more than the %d allowed", parsed.count, MaxOrderLines),
				 errhint("Raise personalisation.max_order_lines if orders this large are real.")));

	parsed.lines = palloc(sizeof(OrderLine) * parsed.count);
	for (int i = 0; i < parsed.count; i++)
		parsed.lines[i] = ParseLine(getIthJsonbValueFromContainer(&items->root, i), i + 1);

	qsort(parsed.lines, parsed.count, sizeof(OrderLine), CompareLines);

	/* lines of one product at one price are one line; at two prices, refused */
	merged = 0;
	for (int i = 0; i < parsed.count; i++)
	{
		OrderLine  *last = merged > 0 ? &parsed.lines[merged - 1] : NULL;

		if (last == NULL || CompareLines(last, &parsed.lines[i]) != 0)
		{
			parsed.lines[merged++] = parsed.lines[i];
			continue;
		}
		if (CompareNumeric(last->unit_price, parsed.lines[i].unit_price) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("purchase lists product \"%s\" more than once",
							text_to_cstring(parsed.lines[i].product_id)),
					 errdetail("Its lines have unit_price %s and %s.", NumberForMessage(last->unit_price),
							   NumberForMessage(parsed.lines[i].unit_price)),
					 errhint("Pass one line per product with the total quantity; lines of a product at the same unit_price are merged.")));
		if ((int64) last->quantity + parsed.lines[i].quantity > MAX_QUANTITY)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("purchase lists product \"%s\" in lines whose quantities add up to more than %d",
							text_to_cstring(parsed.lines[i].product_id), MAX_QUANTITY),
					 errhint("An order line is 1 to %d units.", MAX_QUANTITY)));
		last->quantity += parsed.lines[i].quantity;
	}
	parsed.count = merged;

	ids = palloc(sizeof(Datum) * parsed.count);
	quantities = palloc(sizeof(Datum) * parsed.count);
	prices = palloc(sizeof(Datum) * parsed.count);
	for (int i = 0; i < parsed.count; i++)
	{
		ids[i] = PointerGetDatum(parsed.lines[i].product_id);
		quantities[i] = Int32GetDatum(parsed.lines[i].quantity);
		prices[i] = NumericGetDatum(parsed.lines[i].unit_price);
	}
	parsed.product_ids = PointerGetDatum(construct_array(ids, parsed.count, TEXTOID, -1, false, TYPALIGN_INT));
	parsed.quantities = PointerGetDatum(construct_array(quantities, parsed.count, INT4OID, 4, true, TYPALIGN_INT));
	parsed.unit_prices = PointerGetDatum(construct_array(prices, parsed.count, NUMERICOID, -1, false, TYPALIGN_INT));
	return parsed;
}

/*
 * RequireCataloguedItems refuses an order naming a product the catalogue
 * does not know.
 */
static void
RequireCataloguedItems(OrderItems *items)
{
	Datum		values[1] = {items->product_ids};
	bool		isnull;

	ExecSaved(&UnknownProductStatement, values, NULL, true, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("product \"%s\" is not in the catalogue",
						TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 1, &isnull))),
				 errhint("Insert the product into personalisation.products before tracking it.")));
}

/*
 * OrderAlreadyRecorded reports whether the order id was recorded before.
 * A repeat with the same session and lines is a retry and changes nothing;
 * a repeat with other contents is refused, since one order id naming two
 * different orders is a bug in the shop that would corrupt every report.
 */
static bool
OrderAlreadyRecorded(text *order_id, text *session_id, OrderItems *items)
{
	Datum		values[5] = {PointerGetDatum(order_id), PointerGetDatum(session_id),
	items->product_ids, items->quantities, items->unit_prices};
	bool		isnull;

	/* not read-only: a fresh snapshot sees an original committed while we waited */
	ExecSaved(&SameOrderStatement, values, NULL, false, 0);
	if (SPI_processed == 0)
		return false;
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("order \"%s\" was already recorded with different contents",
						text_to_cstring(order_id)),
				 errdetail("A retry must repeat the session and the items of the first call."),
				 errhint("Give each order its own order_id.")));
	return true;
}

/*
 * RecordOrder resolves the purchase's session and records the order and its
 * lines, setting the event's profile and value (the order total).  The
 * order's row claims its id: a call for the same id that the order's
 * advisory lock did not hold off (past a transaction's ORDER_ADVISORY_LOCKS)
 * waits for it on the unique index.  It returns false, having recorded
 * nothing, when such a call recorded the id meanwhile: a retry, or refused
 * as another order under the same id.
 */
static bool
RecordOrder(TrackedEvent *event, OrderItems *items)
{
	Datum		values[7];
	bool		isnull;

	event->profile_id = TouchSession(event->session_id, event->occurred_at);
	values[0] = PointerGetDatum(event->order_id);
	values[1] = Int64GetDatum(event->profile_id);
	values[2] = PointerGetDatum(event->session_id);
	values[3] = TimestampTzGetDatum(event->occurred_at);
	values[4] = items->product_ids;
	values[5] = items->quantities;
	values[6] = items->unit_prices;
	ExecSaved(&InsertOrderStatement, values, NULL, false, 0);
	if (SPI_processed == 0)
	{
		OrderAlreadyRecorded(event->order_id, event->session_id, items);
		return false;
	}
	event->value = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
									 false, -1);
	return true;
}

/*
 * track_purchase records an order: its lines, its complementarity counts
 * (CountPurchase), a purchase event, the end of the buyer's journeys a
 * purchase stops and the start of its post-purchase journeys, and the
 * removal of the purchased products from the buyer's cart.  Calls for one
 * order id are serialised, so a retry racing the original still records
 * the order once.  Rows are locked in the order every call keeps (see
 * docs/identity.md#lock-order): the new order's row claims the order id
 * right after the session, then affinity, cart lines, the cart summary,
 * the pair counts and the journeys, which see the purchase exit rule
 * before the emptied cart's.
 */
Datum
track_purchase(PG_FUNCTION_ARGS)
{
	TrackedEvent event = {.kind = "purchase"};
	OrderItems	items;

	RequireWritableServer(fcinfo);
	event.session_id = RequireIdentifier(fcinfo, 0, "session_id");
	event.order_id = RequireIdentifier(fcinfo, 1, "order_id");
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("purchase items must not be null"),
				 errhint("Pass items as a JSON array of objects with product_id, quantity and unit_price.")));
	items = ParseItems(JsonArgument(fcinfo, 2, "items",
									"Pass items as a JSON array of objects with product_id, quantity and unit_price."));
	event.occurred_at = RequireEventTime(fcinfo, 3);

	SPI_connect();
	RequireCataloguedItems(&items);
	LockAdvisoryKeyWithin(ORDER_LOCK_KEY, HashText(event.order_id), ExclusiveLock, &OrderLocks);

	if (!OrderAlreadyRecorded(event.order_id, event.session_id, &items) && RecordOrder(&event, &items))
	{
		Datum		cart_values[2];

		for (int i = 0; i < items.count; i++)
		{
			TrackedEvent line = event;

			line.product_id = items.lines[i].product_id;
			AffinityRecordEvent(&line);
		}
		cart_values[0] = Int64GetDatum(event.profile_id);
		cart_values[1] = items.product_ids;
		ExecSaved(&ClearPurchasedStatement, cart_values, NULL, false, 0);
		SummariseCart(&event);
		CountPurchase(event.order_id, event.occurred_at, items.product_ids);

		JourneyPurchase(event.profile_id, event.occurred_at);
		JourneyOrderPlaced(event.profile_id, event.session_id, event.order_id, event.occurred_at);
		JourneyCartChanged(event.profile_id);
		WakeWorkerAtCommit();
		InsertEvent(&event);
	}
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * PurchasesInit defines the settings of this part.
 */
void
PurchasesInit(void)
{
	DefineCustomIntVariable("personalisation.max_order_lines",
							"The most lines one purchase may carry.",
							NULL,
							&MaxOrderLines,
							500, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}
