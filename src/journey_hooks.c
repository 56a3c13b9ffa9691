/*
 * journey_hooks.c
 *		The exit rules that tracked events fire, in the event's own
 *		transaction: a purchase ends the profile's runs and cancels their
 *		queued messages, an emptied cart does the same, activity on the cart
 *		restarts a run's clock, a withdrawn consent suppresses queued
 *		messages on that channel and ends runs with nothing left to send, a
 *		refund ends the runs none of whose orders still stands, and a
 *		subscription ends the runs offering that product.  Also moves journey
 *		rows when identity resolution merges profiles, and back when a merge
 *		is undone.
 */
#include "journey.h"

#include "outbox.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"


/*
 * $1 profile, $2 exit reason (purchased, cart_emptied, refunded or
 * subscribed), $3 when.  Ends the active runs the rule applies to and
 * returns, as int8[], every run whose queued messages must go: completed
 * runs may still have one waiting.  Refunds and subscriptions apply the rule
 * as journey_run_checks states it.
 */
static SavedStatement ExitRunsStatement = {
	"WITH hit AS ("
	"    SELECT r.run_id, r.status FROM personalisation.journey_runs r"
	"      JOIN personalisation.journeys j ON j.journey = r.journey"
	"     WHERE r.profile_id = $1 AND r.status <> 'ended'"
	"       AND CASE $2 WHEN 'purchased' THEN j.exit_on_purchase AND r.episode_at <= $3"
	"                   WHEN 'cart_emptied' THEN j.exit_on_cart_emptied"
	"                   ELSE EXISTS (SELECT FROM personalisation.journey_run_checks c"
	"                                 WHERE c.profile_id = r.profile_id AND c.run_id = r.run_id"
	"                                   AND c.exit_reason = $2) END"
	"), ended AS ("
	"    UPDATE personalisation.journey_runs r"
	"       SET status = 'ended', end_reason = $2, ended_at = $3, next_due_at = NULL, wait_reason = NULL"
	"      FROM hit WHERE r.profile_id = $1 AND r.run_id = hit.run_id AND hit.status = 'active'"
	")"
	" SELECT pg_catalog.array_agg(run_id) FROM hit",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, KEYED_PLAN
};

static SavedStatement CartStateStatement = {
	"SELECT line_count, last_activity_at FROM personalisation.carts WHERE profile_id = $1",
	1, {INT8OID}, KEYED_PLAN
};

/* $1 profile, $2 the cart's last activity: the clock restarts from it. */
static SavedStatement RestartClockStatement = {
	"UPDATE personalisation.journey_runs r"
	"   SET anchor_at = $2, declared_at = NULL, next_due_at = NULL, wait_reason = NULL"
	"  FROM personalisation.journeys j"
	" WHERE r.profile_id = $1 AND r.status = 'active' AND r.anchor_at < $2"
	"   AND j.journey = r.journey AND j.trigger = 'cart_abandoned'",
	2, {INT8OID, TIMESTAMPTZOID}, KEYED_PLAN
};

/* $1 profile, $2 session, $3 channel, $4 when: queued messages the channel now refuses. */
static SavedStatement SuppressRefusedStatement = {
	"UPDATE personalisation.outbox o"
	"   SET status = 'suppressed', finished_at = $4,"
	"       reason = CASE $3 WHEN 'push' THEN c.push_refusal ELSE c.email_refusal END"
	"  FROM personalisation.journey_run_checks c"
	" WHERE o.profile_id = $1 AND o.status = 'pending' AND o.channel = $3"
	"   AND ($3 <> 'push' OR o.session_id = $2)"
	"   AND c.profile_id = o.profile_id AND c.run_id = o.run_id"
	"   AND CASE $3 WHEN 'push' THEN c.push_refusal ELSE c.email_refusal END IS NOT NULL",
	4, {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID}, KEYED_PLAN
};

/*
 * $1 profile, $2 when: active runs none of whose remaining steps uses a
 * channel still open.  A channel is closed once its consent was withdrawn;
 * one never granted stays open (the visitor may still grant it).
 */
static SavedStatement EndWithdrawnRunsStatement = {
	"UPDATE personalisation.journey_runs r"
	"   SET status = 'ended', end_reason = 'consent_withdrawn', ended_at = $2,"
	"       next_due_at = NULL, wait_reason = NULL"
	"  FROM personalisation.journey_run_checks c"
	" WHERE r.profile_id = $1 AND r.status = 'active'"
	"   AND c.profile_id = r.profile_id AND c.run_id = r.run_id"
	"   AND NOT EXISTS ("
	"       SELECT FROM personalisation.journey_steps s"
	"        WHERE s.journey = r.journey AND s.enabled AND s.step >= r.next_step"
	"          AND coalesce(CASE s.channel WHEN 'push' THEN c.push_refusal ELSE c.email_refusal END, '')"
	"              NOT LIKE '%withdrawn')",
	2, {INT8OID, TIMESTAMPTZOID}, KEYED_PLAN
};

/*
 * $1 from, $2 to: the runs of from that would give to two active runs of one
 * journey (about one product) end as merged (to's own run goes on with the
 * merged cart or orders); the statement returns them as int8[].
 */
static SavedStatement EndCollidingRunsStatement = {
	"WITH collided AS ("
	"    UPDATE personalisation.journey_runs r"
	"       SET status = 'ended', end_reason = 'merged', ended_at = r.anchor_at,"
	"           next_due_at = NULL, wait_reason = NULL"
	"     WHERE r.profile_id = $1 AND r.status = 'active'"
	"       AND EXISTS (SELECT FROM personalisation.journey_runs t"
	"                    WHERE t.profile_id = $2 AND t.status = 'active' AND t.journey = r.journey"
	"                      AND t.product_id IS NOT DISTINCT FROM r.product_id)"
	"    RETURNING r.run_id)"
	" SELECT pg_catalog.array_agg(run_id) FROM collided",
	2, {INT8OID, INT8OID}, KEYED_PLAN
};

/* $1 from, $2 to: every journey row of from moves to to; the runs remember whence. */
static SavedStatement MoveJourneyRowsStatement = {
	"WITH runs AS ("
	"    UPDATE personalisation.journey_runs SET profile_id = $2, merge_trail = merge_trail OPERATOR(pg_catalog.||) $1"
	"     WHERE profile_id = $1 RETURNING 1"
	"), steps AS ("
	"    UPDATE personalisation.journey_run_steps SET profile_id = $2 WHERE profile_id = $1"
	"), messages AS ("
	"    UPDATE personalisation.outbox SET profile_id = $2 WHERE profile_id = $1"
	"), coupons AS ("
	"    UPDATE personalisation.coupons SET profile_id = $2 WHERE profile_id = $1"
	")"
	" SELECT pg_catalog.count(*) FROM runs",
	2, {INT8OID, INT8OID}, KEYED_PLAN
};

/*
 * $1 from, $2 to: the runs the merge of from into to moved go back, with
 * their steps, messages and coupons; a run the merge ended goes on again
 * (its cancelled messages stay cancelled).
 */
static SavedStatement UnmoveJourneyRowsStatement = {
	"WITH runs AS ("
	"    UPDATE personalisation.journey_runs"
	"       SET profile_id = $1,"
	"           merge_trail = merge_trail[1:pg_catalog.cardinality(merge_trail) - 1],"
	"           status = CASE WHEN end_reason = 'merged' THEN 'active' ELSE status END,"
	"           ended_at = CASE WHEN end_reason = 'merged' THEN NULL ELSE ended_at END,"
	"           next_due_at = CASE WHEN end_reason = 'merged' THEN declared_at ELSE next_due_at END,"
	"           end_reason = CASE WHEN end_reason = 'merged' THEN NULL ELSE end_reason END"
	"     WHERE profile_id = $2 AND merge_trail[pg_catalog.cardinality(merge_trail)] = $1"
	"    RETURNING run_id"
	"), steps AS ("
	"    UPDATE personalisation.journey_run_steps SET profile_id = $1"
	"     WHERE profile_id = $2 AND run_id IN (SELECT run_id FROM runs)"
	"), messages AS ("
	"    UPDATE personalisation.outbox SET profile_id = $1"
	"     WHERE profile_id = $2 AND run_id IN (SELECT run_id FROM runs)"
	"), coupons AS ("
	"    UPDATE personalisation.coupons SET profile_id = $1"
	"     WHERE profile_id = $2 AND run_id IN (SELECT run_id FROM runs)"
	")"
	" SELECT pg_catalog.count(*) FROM runs",
	2, {INT8OID, INT8OID}, KEYED_PLAN
};

/*
 * ExitRuns applies an exit rule to the profile's runs: ends the active ones
 * and cancels every queued message of the runs the rule covers.  A message
 * claimed already stays with its worker.
 */
static void
ExitRuns(int64 profile_id, const char *reason, TimestampTz at)
{
	Datum		values[3] = {Int64GetDatum(profile_id), CStringGetTextDatum(reason),
	TimestampTzGetDatum(at)};
	bool		isnull;
	Datum		run_ids;

	ExecSaved(&ExitRunsStatement, values, NULL, false, 0);
	run_ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		OutboxWithdraw(profile_id, run_ids, "cancelled", reason, at);
}

/*
 * JourneyPurchase applies the purchase exit rule: called by track_purchase
 * before the cart is refreshed, so that the same transaction that records
 * the order ends the profile's runs and cancels their queued messages.
 */
void
JourneyPurchase(int64 profile_id, TimestampTz occurred_at)
{
	ExitRuns(profile_id, "purchased", occurred_at);
}

/*
 * JourneyRefund applies the refund exit rule, called by track_refund once an
 * order is refunded: the profile's runs that a purchase started and none of
 * whose orders still stands end, and their queued messages are cancelled.  A
 * run with another standing order goes on without the refunded one.
 */
void
JourneyRefund(int64 profile_id, TimestampTz occurred_at)
{
	ExitRuns(profile_id, "refunded", occurred_at);
}

/*
 * JourneySubscribed applies the subscription exit rule, called by
 * track_subscription_start: the profile's runs offering a product it now
 * subscribes to end, and their queued messages are cancelled.
 */
void
JourneySubscribed(int64 profile_id, TimestampTz occurred_at)
{
	ExitRuns(profile_id, "subscribed", occurred_at);
}

/*
 * JourneyCartChanged reacts to a change of the profile's cart, called by
 * RefreshCart: an emptied cart ends its runs; otherwise activity later than
 * a run's anchor restarts that run's clock (delays count from the new last
 * activity, and the run waits until the cart is idle again) instead of
 * starting a second run.
 */
void
JourneyCartChanged(int64 profile_id)
{
	Datum		values[2] = {Int64GetDatum(profile_id), (Datum) 0};
	bool		isnull;
	int32		line_count;

	ExecSaved(&CartStateStatement, values, NULL, false, 1);
	if (SPI_processed == 0)
		return;
	line_count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	values[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

	if (line_count == 0)
		ExitRuns(profile_id, "cart_emptied", DatumGetTimestampTz(values[1]));
	else
		ExecSaved(&RestartClockStatement, values, NULL, false, 0);
}

/*
 * JourneyConsentWithdrawn applies a withdrawal of consent for channel
 * (called by set_consent; it reads the consent in force, so a stale
 * withdrawal that did not take effect changes nothing): queued messages on
 * that channel are suppressed, and runs with no step left on an open
 * channel end.
 */
void
JourneyConsentWithdrawn(int64 profile_id, text *session_id, const char *channel,
						TimestampTz occurred_at)
{
	Datum		suppress[4] = {Int64GetDatum(profile_id), PointerGetDatum(session_id),
	CStringGetTextDatum(channel), TimestampTzGetDatum(occurred_at)};
	Datum		end[2] = {Int64GetDatum(profile_id), TimestampTzGetDatum(occurred_at)};

	ExecSaved(&SuppressRefusedStatement, suppress, NULL, false, 0);
	ExecSaved(&EndWithdrawnRunsStatement, end, NULL, false, 0);
}

/*
 * RunsCounted returns the count of runs the last move statement reported.
 */
static int64
RunsCounted(void)
{
	bool		isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * JourneyMergeProfiles is identity resolution's merge step for journeys: it
 * moves every journey row (runs, their steps, messages and coupons) of the
 * anonymous profile to the customer's, so that an anonymous cart identified
 * later continues its sequence on the known profile, and returns how many
 * runs moved.  When both have an active run of a journey, the known
 * profile's run goes on and the other ends as merged.
 */
int64
JourneyMergeProfiles(const Merge *merge)
{
	int64		from_profile = merge->from_profile_id;
	Datum		values[2] = {Int64GetDatum(merge->from_profile_id), Int64GetDatum(merge->into_profile_id)};
	bool		isnull;
	Datum		collided;

	ExecSaved(&EndCollidingRunsStatement, values, NULL, false, 0);
	collided = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		OutboxWithdraw(from_profile, collided, "cancelled", "merged",
					   GetCurrentTransactionStartTimestamp());
	ExecSaved(&MoveJourneyRowsStatement, values, NULL, false, 0);
	return RunsCounted();
}

/*
 * JourneyUnmergeProfiles is the undo of JourneyMergeProfiles: the runs that
 * merge moved (and their rows) go back, runs created on the customer's
 * profile since stay, and it returns how many runs went back.  Merges undone
 * in reverse order restore every run to where it was.
 */
int64
JourneyUnmergeProfiles(const Merge *merge)
{
	Datum		values[2] = {Int64GetDatum(merge->from_profile_id), Int64GetDatum(merge->into_profile_id)};

	ExecSaved(&UnmoveJourneyRowsStatement, values, NULL, false, 0);
	return RunsCounted();
}
