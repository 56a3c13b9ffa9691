/*
 * events.c
 *		Ingestion of browse and cart events: track_page_view, track_cart_add
 *		and track_cart_remove.  Owns the session directory (a session and its
 *		anonymous profile are created on first sight), the idempotency keys,
 *		the current cart, and the append-only event log.
 */
#include "events.h"

#include "catalogue.h"
#include "direct.h"
#include "journey.h"
#include "locks.h"
#include "partitions.h"
#include "worker.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(track_page_view);
PG_FUNCTION_INFO_V1(track_cart_add);
PG_FUNCTION_INFO_V1(track_cart_remove);

/*
 * A session's last_seen_at is advanced at most once a minute: reading the
 * session is far cheaper than rewriting it on every event, and browsing
 * activity needs no finer clock (cart activity has its own, exact one).
 */
#define SESSION_TOUCH_INTERVAL_SECONDS 60

static SavedStatement TouchSessionStatement = {
	"UPDATE personalisation.sessions SET last_seen_at = greatest(last_seen_at, $2)"
	" WHERE session_id = $1 RETURNING profile_id",
	2, {TEXTOID, TIMESTAMPTZOID}
};

static SavedStatement ShareSessionStatement = {
	"SELECT profile_id, last_seen_at FROM personalisation.sessions WHERE session_id = $1 FOR KEY SHARE",
	1, {TEXTOID}
};

static SavedStatement CreateSessionStatement = {
	"INSERT INTO personalisation.sessions (session_id, profile_id, started_at, last_seen_at)"
	" VALUES ($1, pg_catalog.nextval('personalisation.profile_id_seq'), $2, $2)"
	" ON CONFLICT (session_id) DO NOTHING RETURNING profile_id",
	2, {TEXTOID, TIMESTAMPTZOID}
};

static SavedStatement CreateProfileStatement = {
	"INSERT INTO personalisation.profiles (profile_id, created_at) VALUES ($1, $2)",
	2, {INT8OID, TIMESTAMPTZOID}
};

/* Adds to the line; a line that would pass MAX_QUANTITY units is left alone (no row processed). */
static SavedStatement CartAddStatement = {
	"INSERT INTO personalisation.cart_lines"
	" (profile_id, product_id, quantity, session_id, added_at, updated_at)"
	" VALUES ($1, $2, $3, $4, $5, $5)"
	" ON CONFLICT (profile_id, product_id) DO UPDATE"
	" SET quantity = personalisation.cart_lines.quantity + excluded.quantity,"
	"     session_id = excluded.session_id,"
	"     updated_at = greatest(personalisation.cart_lines.updated_at, excluded.updated_at)"
	" WHERE personalisation.cart_lines.quantity <= " CppAsString2(MAX_QUANTITY) " - excluded.quantity",
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
	" VALUES ($1, $2, (SELECT pg_catalog.count(*) FROM personalisation.cart_lines WHERE profile_id = $1), $3)"
	" ON CONFLICT (profile_id) DO UPDATE"
	" SET session_id = excluded.session_id, line_count = excluded.line_count,"
	"     last_activity_at = greatest(personalisation.carts.last_activity_at, excluded.last_activity_at)",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}
};

/*
 * LockedSessionProfile holds the session against a login moving it
 * (LockSessionForEvent) and returns its profile, or 0 when the session is
 * unknown, with its last_seen_at in *last_seen_at.  Under the session's
 * advisory lock the row is read, under a snapshot taken once the lock is
 * held, straight from the table; a transaction past its advisory locks
 * locks the row FOR KEY SHARE instead, reading its newest version.  An
 * unknown session is held by whoever inserts its row (the unique index
 * makes a concurrent insert wait), so the caller creates it through SQL.
 */
int64
LockedSessionProfile(text *session_id, TimestampTz *last_seen_at)
{
	Datum		key = PointerGetDatum(session_id);
	RegProcedure eqproc = F_TEXTEQ;
	DirectTable sessions;
	Snapshot	snapshot;
	bool		isnull;
	int64		profile_id = 0;

	if (!LockSessionForEvent(session_id))
	{
		ExecSaved(&ShareSessionStatement, &key, NULL, false, 0);
		if (SPI_processed == 0)
			return 0;
		*last_seen_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 2, &isnull));
		return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}

	snapshot = DirectSnapshot();
	OpenDirectTable(&sessions, DIRECT_SESSIONS, false);
	if (FetchByPrimaryKey(&sessions, snapshot, 1, &key, &eqproc))
	{
		*last_seen_at = DatumGetTimestampTz(DirectRowValue(&sessions, "last_seen_at", &isnull));
		profile_id = DatumGetInt64(DirectRowValue(&sessions, "profile_id", &isnull));
	}
	CloseDirectTable(&sessions);
	UnregisterSnapshot(snapshot);
	return profile_id;
}

/*
 * TouchSession returns the profile the session belongs to, recording the
 * session's activity; a session seen for the first time gets a new
 * anonymous profile.  Two first events of one session at once end with one
 * session and one profile: the loser of the insert race re-reads.  The
 * session is held against a login moving it (LockedSessionProfile), so the
 * profile returned stays the session's until the caller's transaction
 * ends; the row is only rewritten (through SQL, which locks it too) once a
 * minute.
 */
int64
TouchSession(text *session_id, TimestampTz occurred_at)
{
	Datum		values[2] = {PointerGetDatum(session_id), TimestampTzGetDatum(occurred_at)};
	TimestampTz last_seen_at = 0;
	bool		isnull;
	int64		profile_id;

	profile_id = LockedSessionProfile(session_id, &last_seen_at);
	if (profile_id != 0 && occurred_at < last_seen_at + SESSION_TOUCH_INTERVAL_SECONDS * USECS_PER_SEC)
		return profile_id;

	for (;;)
	{
		ExecSaved(&TouchSessionStatement, values, NULL, false, 0);
		if (SPI_processed == 1)
			return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));

		ExecSaved(&CreateSessionStatement, values, NULL, false, 0);
		if (SPI_processed == 1)
		{
			Datum		profile_values[2];

			profile_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1, &isnull));
			profile_values[0] = Int64GetDatum(profile_id);
			profile_values[1] = TimestampTzGetDatum(occurred_at);
			ExecSaved(&CreateProfileStatement, profile_values, NULL, false, 0);
			return profile_id;
		}
		/* another transaction created the session meanwhile: read it */
	}
}

/*
 * SetColumn sets column `name` of a row being built (by DirectNewRow, every
 * column NULL) to value.
 */
static void
SetColumn(DirectTable *table, Datum *values, bool *nulls, const char *name, Datum value)
{
	AttrNumber	attnum = DirectColumn(table, name);

	values[attnum - 1] = value;
	nulls[attnum - 1] = false;
}

/*
 * ClaimEventKey records the shop's event id and reports whether this call is
 * the first with it, as INSERT ... ON CONFLICT DO NOTHING would: a call
 * whose id another transaction is recording waits for it, so exactly one
 * call records the event and the others change nothing.  An id committed
 * after the caller's snapshot counts as recorded at every isolation level
 * (where ON CONFLICT DO NOTHING would fail to serialize), since a retry is
 * what it is.
 */
bool
ClaimEventKey(text *event_id, TimestampTz occurred_at)
{
	DirectTable keys;
	Datum	   *values;
	bool	   *nulls;
	bool		first;

	OpenDirectTableForUniqueInsert(&keys, DIRECT_EVENT_KEYS);
	DirectNewRow(&keys, &values, &nulls);
	SetColumn(&keys, values, nulls, "event_id", PointerGetDatum(event_id));
	SetColumn(&keys, values, nulls, "occurred_at", TimestampTzGetDatum(occurred_at));
	first = DirectInsertIfUnique(&keys, values, nulls);
	CloseDirectTable(&keys);
	return first;
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
	ProductFacts facts;

	if (!LookupProduct(event->product_id, &facts))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("product \"%s\" is not in the catalogue", text_to_cstring(event->product_id)),
				 errhint("Insert the product into personalisation.products before tracking it.")));
	event->brand = facts.brand;
	event->facets_read = true;
	return facts.category_id;
}

/*
 * RequireKnownCategory refuses a category the catalogue does not know.
 */
static void
RequireKnownCategory(text *category_id)
{
	Datum		key = PointerGetDatum(category_id);
	RegProcedure eqproc = F_TEXTEQ;
	DirectTable categories;
	Snapshot	snapshot = DirectSnapshot();

	OpenDirectTable(&categories, DIRECT_CATEGORIES, false);
	if (!FetchByPrimaryKey(&categories, snapshot, 1, &key, &eqproc))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("category \"%s\" is not in the catalogue", text_to_cstring(category_id)),
				 errhint("Insert the category into personalisation.categories before tracking it.")));
	CloseDirectTable(&categories);
	UnregisterSnapshot(snapshot);
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
 * InsertEvent appends the event to the log, straight into its day
 * partition (created first if it is missing), which spares the parent's
 * tuple routing.
 */
void
InsertEvent(TrackedEvent *event)
{
	DirectTable partition;
	Datum	   *values;
	bool	   *nulls;

	OpenDirectRelation(&partition, EventPartitionRelid(EnsureEventPartition(event->occurred_at)));
	DirectNewRow(&partition, &values, &nulls);
	if (event->event_id != NULL)
		SetColumn(&partition, values, nulls, "event_id", PointerGetDatum(event->event_id));
	SetColumn(&partition, values, nulls, "kind", CStringGetTextDatum(event->kind));
	SetColumn(&partition, values, nulls, "occurred_at", TimestampTzGetDatum(event->occurred_at));
	SetColumn(&partition, values, nulls, "profile_id", Int64GetDatum(event->profile_id));
	SetColumn(&partition, values, nulls, "session_id", PointerGetDatum(event->session_id));
	if (event->category_id != NULL)
		SetColumn(&partition, values, nulls, "category_id", PointerGetDatum(event->category_id));
	if (event->product_id != NULL)
		SetColumn(&partition, values, nulls, "product_id", PointerGetDatum(event->product_id));
	if (event->quantity > 0)
		SetColumn(&partition, values, nulls, "quantity", Int32GetDatum(event->quantity));
	if (event->order_id != NULL)
	{
		SetColumn(&partition, values, nulls, "order_id", PointerGetDatum(event->order_id));
		SetColumn(&partition, values, nulls, "value", event->value);
	}
	DirectInsert(&partition, values, nulls);
	CloseDirectTable(&partition);
}

/*
 * SummariseCart brings the profile's cart summary (line count, last
 * activity) up to date after a change to its lines.
 */
void
SummariseCart(TrackedEvent *event)
{
	Datum		values[3] = {Int64GetDatum(event->profile_id), PointerGetDatum(event->session_id),
	TimestampTzGetDatum(event->occurred_at)};

	ExecSaved(&RefreshCartStatement, values, NULL, false, 0);
}

/*
 * RefreshCart summarises the cart after a change to its lines, lets the
 * journeys react (an emptied cart ends its runs, activity restarts their
 * clock), and has the background worker look at the cart once the change
 * commits.
 */
void
RefreshCart(TrackedEvent *event)
{
	SummariseCart(event);
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

	RequireWritableServer(fcinfo);
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

	RequireWritableServer(fcinfo);
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

		AffinityRecordEvent(&event);
		ExecSaved(&CartAddStatement, values, NULL, false, 0);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("adding %d units of product \"%s\" would put more than %d in the cart",
							event.quantity, text_to_cstring(event.product_id), MAX_QUANTITY),
					 errhint("Pass the quantity the visitor added; a cart line holds at most %d units.",
							 MAX_QUANTITY)));
		RefreshCart(&event);
		InsertEvent(&event);
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

	RequireWritableServer(fcinfo);
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

		AffinityRecordEvent(&event);
		ExecSaved(&CartRemoveStatement, values, nulls, false, 0);
		RefreshCart(&event);
		InsertEvent(&event);
	}
	SPI_finish();

	PG_RETURN_VOID();
}
