/*
 * subscriptions.c
 *		Subscriptions: track_subscription_start and track_subscription_stop
 *		record which products a profile receives on a schedule, each as an
 *		event, idempotently on event_id; a start ends the journey runs
 *		offering that product in the same transaction.  Also the
 *		subscriptions' identity merge step (SubscriptionMergeProfiles and its
 *		undo), so that subscriptions follow a profile into the customer's.
 *
 *		A profile holds at most one active subscription per product: a start
 *		while one is active, or a stop while none is, is recorded as an event
 *		and changes nothing else.
 */
#include "subscriptions.h"

#include "events.h"
#include "journey.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(track_subscription_start);
PG_FUNCTION_INFO_V1(track_subscription_stop);

static SavedStatement SubscribableStatement = {
	"SELECT category_id, subscribable FROM personalisation.products WHERE product_id = $1",
	1, {TEXTOID}
};

/* $1 profile, $2 product, $3 when, $4 session. */
static SavedStatement StartStatement = {
	"INSERT INTO personalisation.subscriptions (profile_id, product_id, started_at, session_id)"
	" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
	4, {INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID}
};

/* $1 profile, $2 product: when the active subscription started, locked against a concurrent stop. */
static SavedStatement ActiveStatement = {
	"SELECT started_at FROM personalisation.subscriptions"
	" WHERE profile_id = $1 AND product_id = $2 AND stopped_at IS NULL FOR UPDATE",
	2, {INT8OID, TEXTOID}
};

static SavedStatement StopStatement = {
	"UPDATE personalisation.subscriptions SET stopped_at = $3"
	" WHERE profile_id = $1 AND product_id = $2 AND stopped_at IS NULL",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}
};

/*
 * Merge step statements: $1 merge_id, $2 anonymous profile, $3 customer's
 * profile, $4 merged_at.  Every subscription moves; when both profiles hold
 * an active subscription to a product, the customer's goes on and the
 * anonymous one is stopped at the merge (one person, one subscription), and
 * a row the customer holds already (same product and start) is kept once.
 * The ledger keeps each anonymous row as it was, and whether the merge
 * stopped it or dropped it as a duplicate.
 */
static SavedStatement MoveSubscriptionsStatement = MERGE_STATEMENT(
	"WITH anon AS ("
	"  DELETE FROM personalisation.subscriptions WHERE profile_id = $2"
	"  RETURNING product_id, started_at, stopped_at, session_id),"
	" folded AS ("
	"  SELECT a.*, a.stopped_at IS NULL AND EXISTS ("
	"             SELECT FROM personalisation.subscriptions k"
	"              WHERE k.profile_id = $3 AND k.product_id = a.product_id AND k.stopped_at IS NULL)"
	"           AS stopped_by_merge"
	"    FROM anon a),"
	" moved AS ("
	"  INSERT INTO personalisation.subscriptions (profile_id, product_id, started_at, stopped_at, session_id)"
	"  SELECT $3, f.product_id, f.started_at,"
	"         CASE WHEN f.stopped_by_merge THEN greatest(f.started_at, $4) ELSE f.stopped_at END, f.session_id"
	"    FROM folded f ORDER BY f.product_id, f.started_at"
	"  ON CONFLICT DO NOTHING"
	"  RETURNING product_id, started_at, stopped_at)"
	" INSERT INTO personalisation.merge_items (profile_id, merge_id, step, item_key, detail)"
	" SELECT $3, $1, 'subscriptions',"
	"        f.product_id || ' ' || pg_catalog.extract('epoch', f.started_at)::text,"
	"        pg_catalog.jsonb_build_object('from', pg_catalog.to_jsonb(f) - 'stopped_by_merge',"
	"                                      'moved', pg_catalog.to_jsonb(m))"
	"   FROM folded f"
	"   LEFT JOIN moved m ON m.product_id = f.product_id AND m.started_at = f.started_at");

/*
 * The moved rows go back to the anonymous profile, with a stop made since
 * the merge kept; a stop the merge itself made is undone, unless the row
 * changed again since.  A row dropped as a duplicate comes back from the
 * ledger.
 */
static SavedStatement RestoreSubscriptionsStatement = MERGE_STATEMENT(
	"WITH items AS ("
	"  SELECT i.detail -> 'from' AS original, i.detail -> 'moved' AS moved,"
	"         i.detail #>> '{from,product_id}' AS product_id,"
	"         (i.detail #>> '{from,started_at}')::timestamptz AS started_at"
	"    FROM personalisation.merge_items i"
	"   WHERE i.profile_id = $3 AND i.merge_id = $1 AND i.step = 'subscriptions'),"
	" taken AS ("
	"  DELETE FROM personalisation.subscriptions s USING items i"
	"   WHERE pg_catalog.jsonb_typeof(i.moved) = 'object'"
	"     AND s.profile_id = $3 AND s.product_id = i.product_id AND s.started_at = i.started_at"
	"  RETURNING s.product_id, s.started_at,"
	"            CASE WHEN s.stopped_at IS NOT DISTINCT FROM (i.moved ->> 'stopped_at')::timestamptz"
	"                 THEN (i.original ->> 'stopped_at')::timestamptz ELSE s.stopped_at END AS stopped_at,"
	"            s.session_id)"
	" INSERT INTO personalisation.subscriptions (profile_id, product_id, started_at, stopped_at, session_id)"
	" SELECT $2, t.product_id, t.started_at, t.stopped_at, t.session_id FROM taken t"
	" UNION ALL"
	" SELECT $2, i.product_id, i.started_at, (i.original ->> 'stopped_at')::timestamptz,"
	"        i.original ->> 'session_id'"
	"   FROM items i WHERE pg_catalog.jsonb_typeof(i.moved) = 'null'");

/*
 * RequireSubscribable refuses a product the catalogue does not know or does
 * not sell as a subscription, and returns its category (NULL when it has
 * none) for the event.
 */
static text *
RequireSubscribable(text *product_id)
{
	Datum		values[1] = {PointerGetDatum(product_id)};
	bool		isnull;
	Datum		category;

	ExecSaved(&SubscribableStatement, values, NULL, true, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("product \"%s\" is not in the catalogue", text_to_cstring(product_id)),
				 errhint("Insert the product into personalisation.products before tracking it.")));
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("product \"%s\" is not subscribable", text_to_cstring(product_id)),
				 errhint("Set personalisation.products.subscribable to true for products sold as subscriptions.")));
	category = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? NULL : DatumGetTextPP(SPI_datumTransfer(category, false, -1));
}

/*
 * BeginSubscriptionEvent checks the arguments shared by the start and the
 * stop, claims the event id and resolves the session.  It returns false,
 * having changed nothing, when the event was recorded before.
 */
static bool
BeginSubscriptionEvent(FunctionCallInfo fcinfo, TrackedEvent *event)
{
	event->session_id = RequireIdentifier(fcinfo, 0, "session_id");
	event->product_id = RequireIdentifier(fcinfo, 1, "product_id");
	event->occurred_at = RequireEventTime(fcinfo, 2);
	event->event_id = OptionalIdentifier(fcinfo, 3, "event_id");

	event->category_id = RequireSubscribable(event->product_id);
	if (event->event_id != NULL && !ClaimEventKey(event->event_id, event->occurred_at))
		return false;
	event->profile_id = TouchSession(event->session_id, event->occurred_at);
	return true;
}

/*
 * track_subscription_start records that the session's visitor subscribed to
 * a product: a subscription (unless one is active already) and an event.
 * The journey runs offering the product end and their queued messages are
 * cancelled in the same transaction.  A retry with the same event_id changes
 * nothing.
 */
Datum
track_subscription_start(PG_FUNCTION_ARGS)
{
	TrackedEvent event = {.kind = "subscription_start"};

	RequireWritableServer(fcinfo);
	SPI_connect();
	if (BeginSubscriptionEvent(fcinfo, &event))
	{
		Datum		values[4] = {Int64GetDatum(event.profile_id), PointerGetDatum(event.product_id),
			TimestampTzGetDatum(event.occurred_at), PointerGetDatum(event.session_id)};

		ExecSaved(&StartStatement, values, NULL, false, 0);
		if (SPI_processed > 0)
			JourneySubscribed(event.profile_id, event.occurred_at);
		InsertEvent(&event);
	}
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * track_subscription_stop records that the session's visitor stopped
 * subscribing to a product: the active subscription ends at occurred_at, and
 * an event is recorded.  A stop stamped before the active subscription's
 * start is refused.  A retry with the same event_id changes nothing.
 */
Datum
track_subscription_stop(PG_FUNCTION_ARGS)
{
	TrackedEvent event = {.kind = "subscription_stop"};

	RequireWritableServer(fcinfo);
	SPI_connect();
	if (BeginSubscriptionEvent(fcinfo, &event))
	{
		Datum		values[3] = {Int64GetDatum(event.profile_id), PointerGetDatum(event.product_id),
		TimestampTzGetDatum(event.occurred_at)};
		bool		isnull;

		ExecSaved(&ActiveStatement, values, NULL, false, 1);
		if (SPI_processed > 0)
		{
			TimestampTz started_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
																	   SPI_tuptable->tupdesc, 1, &isnull));

			if (event.occurred_at < started_at)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("subscription stop at %s precedes its start",
								timestamptz_to_str(event.occurred_at)),
						 errdetail("The subscription to product \"%s\" started at %s.",
								   text_to_cstring(event.product_id), timestamptz_to_str(started_at)),
						 errhint("Pass the time of the stop, which follows the start.")));
			ExecSaved(&StopStatement, values, NULL, false, 0);
		}
		InsertEvent(&event);
	}
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * SubscriptionMergeProfiles is identity resolution's merge step for
 * subscriptions: every subscription of the anonymous profile moves to the
 * customer's (see MoveSubscriptionsStatement for two active ones), and it
 * returns how many moved.
 */
int64
SubscriptionMergeProfiles(const Merge *merge)
{
	return ExecMergeStatement(&MoveSubscriptionsStatement, merge);
}

/*
 * SubscriptionUnmergeProfiles undoes SubscriptionMergeProfiles: the
 * subscriptions that merge moved go back to the anonymous profile, and it
 * returns how many went back.
 */
int64
SubscriptionUnmergeProfiles(const Merge *merge)
{
	return ExecMergeStatement(&RestoreSubscriptionsStatement, merge);
}
