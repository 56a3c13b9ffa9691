/*
 * events.c
 *		Ingestion of browse and cart events: track_page_view, track_cart_add
 *		and track_cart_remove.  Owns the session directory (a session and its
 *		anonymous profile are created on first sight), the idempotency keys,
 *		the current cart, and the append-only event log.
 */
#include "personalisation.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(track_page_view);
PG_FUNCTION_INFO_V1(track_cart_add);
PG_FUNCTION_INFO_V1(track_cart_remove);

/*
 * A session's last_seen_at is advanced at most once a minute: reading the
 * session is far cheaper than rewriting it on every event, and browsing
 * activity needs no finer clock (cart activity has its own, exact one).
 */
#define SESSION_TOUCH_INTERVAL_SECONDS 60

static SavedStatement FindSessionStatement = {
	"SELECT profile_id, last_seen_at FROM personalisation.sessions WHERE session_id = $1",
	1, {TEXTOID}
};

static SavedStatement TouchSessionStatement = {
	"UPDATE personalisation.sessions SET last_seen_at = greatest(last_seen_at, $2)"
	" WHERE session_id = $1 RETURNING profile_id",
	2, {TEXTOID, TIMESTAMPTZOID}
};

static SavedStatement CreateSessionStatement = {
	"INSERT INTO personalisation.sessions (session_id, profile_id, started_at, last_seen_at)"
	" VALUES ($1, nextval('personalisation.profile_id_seq'), $2, $2)"
	" ON CONFLICT (session_id) DO NOTHING RETURNING profile_id",
	2, {TEXTOID, TIMESTAMPTZOID}
};

static SavedStatement CreateProfileStatement = {
	"INSERT INTO personalisation.profiles (profile_id, created_at) VALUES ($1, $2)",
	2, {INT8OID, TIMESTAMPTZOID}
};

static SavedStatement ClaimEventKeyStatement = {
	"INSERT INTO personalisation.event_keys (event_id, occurred_at) VALUES ($1, $2)"
	" ON CONFLICT (event_id) DO NOTHING",
	2, {TEXTOID, TIMESTAMPTZOID}
};

static SavedStatement ProductFacetsStatement = {
	"SELECT category_id, brand FROM personalisation.products WHERE product_id = $1",
	1, {TEXTOID}
};

static SavedStatement CategoryExistsStatement = {
	"SELECT 1 FROM personalisation.categories WHERE category_id = $1",
	1, {TEXTOID}
};

/*
 * Events are inserted straight into their day partition, which spares every
 * call the parent's tuple routing.  The insert statements of the last few
 * days seen are kept, one per day.
 */
#define EVENT_INSERT_DAYS 4
#define EVENT_INSERT_SQL \
	"INSERT INTO %s (event_id, kind, occurred_at, profile_id, session_id," \
	" category_id, product_id, quantity, order_id, value)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"

typedef struct DayInsert
{
	int64		day;
	SavedStatement statement;
} DayInsert;

static DayInsert DayInserts[EVENT_INSERT_DAYS];
static int	NextDayInsert = 0;

/* Adds to the line; a line that would pass PG_INT32_MAX units is left alone (no row processed). */
static SavedStatement CartAddStatement = {
	"INSERT INTO personalisation.cart_lines"
	" (profile_id, product_id, quantity, session_id, added_at, updated_at)"
	" VALUES ($1, $2, $3, $4, $5, $5)"
	" ON CONFLICT (profile_id, product_id) DO UPDATE"
	" SET quantity = personalisation.cart_lines.quantity + excluded.quantity,"
	"     session_id = excluded.session_id,"
	"     updated_at = greatest(personalisation.cart_lines.updated_at, excluded.updated_at)"
	" WHERE personalisation.cart_lines.quantity <= 2147483647 - excluded.quantity",
	5, {INT8OID, TEXTOID, INT4OID, TEXTOID, TIMESTAMPTZOID}
};

/* $3 NULL removes the whole line; otherwise the quantity drops, and a line at zero goes. */
static SavedStatement CartRemoveStatement = {
	"WITH reduced AS ("
	"  UPDATE personalisation.cart_lines"
	"     SET quantity = quantity - $3, updated_at = greatest(updated_at, $4)"
	"   WHERE profile_id = $1 AND product_id = $2 AND quantity > $3 RETURNING 1)"
	" DELETE FROM personalisation.cart_lines"
	"  WHERE profile_id = $1 AND product_id = $2 AND ($3 IS NULL OR quantity <= $3)"
	"    AND NOT EXISTS (SELECT FROM reduced)",
	4, {INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID}
};

static SavedStatement RefreshCartStatement = {
	"INSERT INTO personalisation.carts (profile_id, session_id, line_count, last_activity_at)"
	" VALUES ($1, $2, (SELECT count(*) FROM personalisation.cart_lines WHERE profile_id = $1), $3)"
	" ON CONFLICT (profile_id) DO UPDATE"
	" SET session_id = excluded.session_id, line_count = excluded.line_count,"
	"     last_activity_at = greatest(personalisation.carts.last_activity_at, excluded.last_activity_at)",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}
};

/*
 * TouchSession returns the profile the session belongs to, recording the
 * session's activity; a session seen for the first time gets a new
 * anonymous profile.  Two first events of one session at once end with one
 * session and one profile: the loser of the insert race re-reads.  The
 * session is held against a login moving it (LockSessionForEvent), so the
 * profile returned stays the session's until the caller's transaction ends.
 */
int64
TouchSession(text *session_id, TimestampTz occurred_at)
{
	Datum		values[2] = {PointerGetDatum(session_id), TimestampTzGetDatum(occurred_at)};
	bool		isnull;

	LockSessionForEvent(session_id);
	ExecSaved(&FindSessionStatement, values, NULL, false, 1);
	if (SPI_processed == 1)
	{
		int64		profile_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
															 SPI_tuptable->tupdesc, 1, &isnull));
		TimestampTz last_seen_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
																	 SPI_tuptable->tupdesc, 2, &isnull));

		if (occurred_at < last_seen_at + SESSION_TOUCH_INTERVAL_SECONDS * USECS_PER_SEC)
			return profile_id;
	}

	for (;;)
	{
		ExecSaved(&TouchSessionStatement, values, NULL, false, 0);
		if (SPI_processed == 1)
			return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));

		ExecSaved(&CreateSessionStatement, values, NULL, false, 0);
		if (SPI_processed == 1)
		{
			int64		profile_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc, 1, &isnull));
			Datum		profile_values[2] = {Int64GetDatum(profile_id), TimestampTzGetDatum(occurred_at)};

			ExecSaved(&CreateProfileStatement, profile_values, NULL, false, 0);
			return profile_id;
		}
		/* another transaction created the session meanwhile: read it */
	}
}

/*
 * ClaimEventKey records the shop's event id and reports whether this call is
 * the first with it.  A concurrent call with the same id waits for ours to
 * commit or abort, so exactly one of them records the event.
 */
bool
ClaimEventKey(text *event_id, TimestampTz occurred_at)
{
	Datum		values[2] = {PointerGetDatum(event_id), TimestampTzGetDatum(occurred_at)};

	ExecSaved(&ClaimEventKeyStatement, values, NULL, false, 0);
	return SPI_processed == 1;
}

/*
 * ReadProductFacets reads the category and brand the catalogue gives the
 * event's product into the event (either may be NULL), refusing a product
 * the catalogue does not know, and returns the category.  Affinity uses the
 * brand without reading the product again.
 */
static text *
ReadProductFacets(TrackedEvent *event)
{
	text	   *product_id = event->product_id;
	Datum		values[1] = {PointerGetDatum(product_id)};
	bool		isnull;
	Datum		category;
	Datum		brand;

	ExecSaved(&ProductFacetsStatement, values, NULL, true, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("product \"%s\" is not in the catalogue", text_to_cstring(product_id)),
				 errhint("Insert the product into personalisation.products before tracking it.")));

	brand = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	event->brand = isnull ? NULL : DatumGetTextPP(SPI_datumTransfer(brand, false, -1));
	event->facets_read = true;

	category = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return NULL;
	return DatumGetTextPP(SPI_datumTransfer(category, false, -1));
}

/*
 * RequireKnownCategory refuses a category the catalogue does not know.
 */
static void
RequireKnownCategory(text *category_id)
{
	Datum		values[1] = {PointerGetDatum(category_id)};

	ExecSaved(&CategoryExistsStatement, values, NULL, true, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("category \"%s\" is not in the catalogue", text_to_cstring(category_id)),
				 errhint("Insert the category into personalisation.categories before tracking it.")));
}

/*
 * ResolveEventCategory checks the event's product and category against the
 * catalogue and sets the category to record: the given one, or the
 * product's own when none was given.  A product filed under another category
 * than the one given is refused, since affinity would be credited wrongly.
 */
static void
ResolveEventCategory(TrackedEvent *event)
{
	text	   *product_id = event->product_id;
	text	   *category_id = event->category_id;
	text	   *product_category;

	if (product_id == NULL)
	{
		if (category_id != NULL)
			RequireKnownCategory(category_id);
		return;
	}

	product_category = ReadProductFacets(event);
	if (category_id == NULL)
	{
		event->category_id = product_category;
		return;
	}

	if (product_category != NULL && !TextEqual(product_category, category_id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("product \"%s\" is not in category \"%s\"",
						text_to_cstring(product_id), text_to_cstring(category_id)),
				 errdetail("The catalogue files the product under category \"%s\".",
						   text_to_cstring(product_category)),
				 errhint("Pass the product's own category, or omit category_id.")));
	RequireKnownCategory(category_id);
}

/*
 * DayInsertStatement returns the insert statement for the partition of day
 * number `day`, building it when the day is not among those kept; the
 * oldest-built one makes way.
 */
static SavedStatement *
DayInsertStatement(int64 day)
{
	static const Oid argtypes[10] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID, TEXTOID,
	TEXTOID, TEXTOID, INT4OID, TEXTOID, NUMERICOID};
	DayInsert  *slot;

	for (int i = 0; i < EVENT_INSERT_DAYS; i++)
		if (DayInserts[i].statement.sql != NULL && DayInserts[i].day == day)
			return &DayInserts[i].statement;

	slot = &DayInserts[NextDayInsert];
	NextDayInsert = (NextDayInsert + 1) % EVENT_INSERT_DAYS;
	if (slot->statement.plan != NULL)
		SPI_freeplan(slot->statement.plan);
	if (slot->statement.sql != NULL)
		pfree((void *) slot->statement.sql);

	slot->day = day;
	slot->statement.sql = MemoryContextStrdup(TopMemoryContext,
											  psprintf(EVENT_INSERT_SQL,
													   EventPartitionName(day, CurrentMemoryContext)));
	slot->statement.nargs = lengthof(argtypes);
	memcpy(slot->statement.argtypes, argtypes, sizeof(argtypes));
	slot->statement.plan = NULL;
	return &slot->statement;
}

/*
 * InsertEvent appends the event to the log, creating its day partition
 * first if it is missing.
 */
void
InsertEvent(TrackedEvent *event)
{
	Datum		values[10];
	char		nulls[10];
	SavedStatement *insert = DayInsertStatement(EnsureEventPartition(event->occurred_at));

	memset(nulls, ' ', sizeof(nulls));
	values[0] = PointerGetDatum(event->event_id);
	nulls[0] = event->event_id ? ' ' : 'n';
	values[1] = CStringGetTextDatum(event->kind);
	values[2] = TimestampTzGetDatum(event->occurred_at);
	values[3] = Int64GetDatum(event->profile_id);
	values[4] = PointerGetDatum(event->session_id);
	values[5] = PointerGetDatum(event->category_id);
	nulls[5] = event->category_id ? ' ' : 'n';
	values[6] = PointerGetDatum(event->product_id);
	nulls[6] = event->product_id ? ' ' : 'n';
	values[7] = Int32GetDatum(event->quantity);
	nulls[7] = event->quantity > 0 ? ' ' : 'n';
	values[8] = PointerGetDatum(event->order_id);
	nulls[8] = event->order_id ? ' ' : 'n';
	values[9] = event->value;
	nulls[9] = event->order_id ? ' ' : 'n';

	ExecSaved(insert, values, nulls, false, 0);
}

/*
 * RefreshCart brings the profile's cart summary (line count, last activity)
 * up to date after a change to its lines, lets the journeys react (an
 * emptied cart ends its runs, activity restarts their clock), and has the
 * background worker look at the cart once the change commits.
 */
void
RefreshCart(TrackedEvent *event)
{
	Datum		values[3] = {Int64GetDatum(event->profile_id), PointerGetDatum(event->session_id),
	TimestampTzGetDatum(event->occurred_at)};

	ExecSaved(&RefreshCartStatement, values, NULL, false, 0);
	JourneyCartChanged(event->profile_id);
	WakeWorkerAtCommit();
}

/*
 * BeginEvent claims the event's idempotency key and resolves its session.
 * It returns false, having changed nothing, when the event was recorded
 * before.
 */
static bool
BeginEvent(TrackedEvent *event)
{
	if (event->event_id != NULL && !ClaimEventKey(event->event_id, event->occurred_at))
		return false;
	event->profile_id = TouchSession(event->session_id, event->occurred_at);
	return true;
}

/*
 * track_page_view records a page view of a category, a product, or neither
 * (a home or content page).
 */
Datum
track_page_view(PG_FUNCTION_ARGS)
{
	TrackedEvent event = {.kind = "page_view"};

	event.session_id = RequireIdentifier(fcinfo, 0, "session_id");
	event.category_id = OptionalIdentifier(fcinfo, 1, "category_id");
	event.product_id = OptionalIdentifier(fcinfo, 2, "product_id");
	event.occurred_at = RequireEventTime(fcinfo, 3);
	event.event_id = OptionalIdentifier(fcinfo, 4, "event_id");

	SPI_connect();
	ResolveEventCategory(&event);
	if (BeginEvent(&event))
	{
		InsertEvent(&event);
		AffinityRecordEvent(&event);
	}
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * track_cart_add records that quantity units of a product went into the
 * session's cart.
 */
Datum
track_cart_add(PG_FUNCTION_ARGS)
{
	TrackedEvent event = {.kind = "cart_add"};

	event.session_id = RequireIdentifier(fcinfo, 0, "session_id");
	event.product_id = RequireIdentifier(fcinfo, 1, "product_id");
	event.quantity = RequirePositiveQuantity(fcinfo, 2);
	event.occurred_at = RequireEventTime(fcinfo, 3);
	event.event_id = OptionalIdentifier(fcinfo, 4, "event_id");

	SPI_connect();
	ResolveEventCategory(&event);
	if (BeginEvent(&event))
	{
		Datum		values[5] = {Int64GetDatum(event.profile_id), PointerGetDatum(event.product_id),
			Int32GetDatum(event.quantity), PointerGetDatum(event.session_id),
		TimestampTzGetDatum(event.occurred_at)};

		ExecSaved(&CartAddStatement, values, NULL, false, 0);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("adding %d units of product \"%s\" would put more than %d in the cart",
							event.quantity, text_to_cstring(event.product_id), PG_INT32_MAX),
					 errhint("Pass the quantity the visitor added; a cart line holds at most %d units.",
							 PG_INT32_MAX)));
		RefreshCart(&event);
		InsertEvent(&event);
		AffinityRecordEvent(&event);
	}
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * track_cart_remove records that units of a product left the cart: quantity
 * units, or the whole line when quantity is NULL.  Removing what is not in
 * the cart changes the cart not at all but is still recorded as interest
 * withdrawn.
 */
Datum
track_cart_remove(PG_FUNCTION_ARGS)
{
	TrackedEvent event = {.kind = "cart_remove"};

	event.session_id = RequireIdentifier(fcinfo, 0, "session_id");
	event.product_id = RequireIdentifier(fcinfo, 1, "product_id");
	if (!PG_ARGISNULL(2))
		event.quantity = RequirePositiveQuantity(fcinfo, 2);
	event.occurred_at = RequireEventTime(fcinfo, 3);
	event.event_id = OptionalIdentifier(fcinfo, 4, "event_id");

	SPI_connect();
	ResolveEventCategory(&event);
	if (BeginEvent(&event))
	{
		Datum		values[4] = {Int64GetDatum(event.profile_id), PointerGetDatum(event.product_id),
			Int32GetDatum(event.quantity), TimestampTzGetDatum(event.occurred_at)};
		char		nulls[4] = {' ', ' ', event.quantity > 0 ? ' ' : 'n', ' '};

		ExecSaved(&CartRemoveStatement, values, nulls, false, 0);
		RefreshCart(&event);
		InsertEvent(&event);
		AffinityRecordEvent(&event);
	}
	SPI_finish();

	PG_RETURN_VOID();
}
