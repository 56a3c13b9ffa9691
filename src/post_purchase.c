/*
 * post_purchase.c
 *		Post-purchase journeys: an order enrols its buyer, in track_purchase's
 *		transaction, in every enabled journey a purchase triggers.  A
 *		'purchase' journey (the default cross-sell sequence) gets one run per
 *		order; an order placed while the profile's run is active joins that
 *		run instead of starting another, so the same items are never
 *		messaged twice.  A 'subscribable_purchase' journey (the default
 *		subscription offer) gets one run per subscribable product of the
 *		order, timed from when the quantity bought runs out, unless the
 *		profile already subscribes to the product or has an offer for it
 *		running.  From then on the runs follow the journey machinery: run_due,
 *		exit rules, consent, caps, quiet hours, holdout and the outbox.
 */
#include "post_purchase.h"

#include "journey.h"

#include "catalog/pg_type.h"

/*
 * $1 profile, $2 session, $3 order, $4 when it was placed, $5 holdout basis
 * points.  One run per enabled 'purchase' journey, and one per enabled
 * 'subscribable_purchase' journey and subscribable product of the order
 * with replenish_days (not one the profile subscribes to), each waiting
 * for its first step's due time.  The quantity bought runs out after
 * quantity times replenish_days days, counted as at most MAX_SUPPLY_DAYS:
 * a supply that lasts longer is offered as if it ran out then, and the
 * instant stays a timestamp.  An active run of the journey (for the
 * product) makes the insert a no-op through the unique index
 * journey_runs_one_active: the order joins that run.
 */
static SavedStatement EnrolOrderStatement = {
	"INSERT INTO personalisation.journey_runs"
	" (profile_id, journey, arm, session_id, origin_profile_id, episode_at, anchor_at, declared_at,"
	"  next_step, next_due_at, order_id, product_id, runs_out_at)"
	" SELECT $1, j.journey, " RUN_ARM("j.journey", "$1", "$5") ", $2, $1, $4, $4, $4, 1,"
	"        coalesce((SELECT " STEP_DUE_AT " FROM personalisation.journey_steps js"
	"                   WHERE js.journey = j.journey AND js.enabled ORDER BY js.step LIMIT 1), $4),"
	"        $3, r.product_id, r.runs_out_at"
	"   FROM personalisation.journeys j"
	"   LEFT JOIN (personalisation.order_lines l"
	"              JOIN personalisation.products p"
	"                ON p.product_id = l.product_id AND p.subscribable AND p.replenish_days IS NOT NULL)"
	"     ON j.trigger = 'subscribable_purchase' AND l.order_id = $3"
	"  CROSS JOIN LATERAL (SELECT $4::timestamptz AS anchor_at, $4::timestamptz AS declared_at, l.product_id,"
	"                             $4 + (least(l.quantity::pg_catalog.int8 OPERATOR(pg_catalog.*) p.replenish_days, "
	CppAsString2(MAX_SUPPLY_DAYS) ")::pg_catalog.float8"
	"                               OPERATOR(pg_catalog.*) interval '1 day') AS runs_out_at) r"
	"  WHERE j.enabled AND j.trigger IN ('purchase', 'subscribable_purchase')"
	"    AND (j.trigger = 'purchase') = (l.product_id IS NULL)"
	"    AND NOT EXISTS (SELECT FROM personalisation.subscriptions s"
	"                     WHERE s.profile_id = $1 AND s.product_id = l.product_id"
	"                       AND s.stopped_at IS NULL)"
	"  ORDER BY j.journey, l.product_id"
	" ON CONFLICT DO NOTHING",
	5, {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID}, KEYED_PLAN
};

/*
 * JourneyOrderPlaced enrols the buyer of a newly recorded order in the
 * post-purchase journeys, called by track_purchase after the order, its
 * lines and the purchase exit rule, in the same transaction.  The runs it
 * starts wait for their first step, so run_due does not visit them before.
 */
void
JourneyOrderPlaced(int64 profile_id, text *session_id, text *order_id, TimestampTz occurred_at)
{
	Datum		values[5] = {Int64GetDatum(profile_id), PointerGetDatum(session_id),
		PointerGetDatum(order_id), TimestampTzGetDatum(occurred_at),
	Int32GetDatum(HoldoutBasisPoints())};

	ExecSaved(&EnrolOrderStatement, values, NULL, false, 0);
}
