/*
 * journey.c
 *		The sequence clock: declaring abandoned carts (run_due after
 *		personalisation.abandon_after of idleness, or track_session_end at
 *		once) and advancing every due run.  RunDue is the one entry point,
 *		called by run_due() from pg_cron and by the background worker, so
 *		the two can never disagree or duplicate.
 *
 *		Concurrency: a cart episode is declared through a unique index on
 *		(profile, origin profile, journey, episode), so it is declared once
 *		whoever declares it; a due run is worked on only by the caller that
 *		locked it (FOR UPDATE SKIP LOCKED); its message is written through a
 *		unique (profile, run, step).  Two callers at once split the work.
 */
#include "journey.h"

#include "complement.h"
#include "events.h"
#include "payload.h"
#include "worker.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"

/* Settings of this part (defined by JourneyInit) */
int			AbandonAfterMinutes = 30;
double		JourneyHoldoutPercent = 10.0;
int			AttributionWindowMinutes = 7 * 24 * 60;

PG_FUNCTION_INFO_V1(run_due);
PG_FUNCTION_INFO_V1(track_session_end);
PG_FUNCTION_INFO_V1(attribution_window);

/* How many due runs RunDue locks at a time. */
#define DUE_BATCH 500

/* The columns a declaration writes, and the sticky arm: a hash of journey and profile. */
#define DECLARE_INSERT \
	"INSERT INTO personalisation.journey_runs" \
	" (profile_id, journey, arm, session_id, origin_profile_id, episode_at, abandoned_at," \
	"  anchor_at, declared_at, next_step, next_due_at)" \
	" SELECT c.profile_id, j.journey, " RUN_ARM("j.journey", "c.profile_id", "$3") "," \
	"        c.session_id, c.profile_id, c.last_activity_at, "

/*
 * A cart is eligible when its last activity is not already answered by a
 * run (an active run, or one that saw or outlived that activity) and no
 * purchase came at or after it.
 */
#define DECLARE_ELIGIBLE \
	"   AND j.trigger = 'cart_abandoned' AND j.enabled AND c.line_count > 0" \
	"   AND NOT EXISTS (SELECT FROM personalisation.journey_runs r" \
	"                    WHERE r.profile_id = c.profile_id AND r.journey = j.journey" \
	"                      AND (r.status = 'active' OR r.anchor_at >= c.last_activity_at" \
	"                           OR r.ended_at >= c.last_activity_at))" \
	"   AND NOT EXISTS (SELECT FROM personalisation.orders o" \
	"                    WHERE o.profile_id = c.profile_id AND o.occurred_at >= c.last_activity_at)"

/*
 * $1 now, $2 abandon_after, $3 holdout basis points, $4 limit (NULL: all).
 * A cart idle longer than the journey's horizon (the latest any of its steps
 * could still go out: its due time plus its max_lateness) is not declared:
 * every step would be skipped as late.  The carts declared are key-share
 * locked, which cart activity does not conflict with but an erasure
 * (forget_customer) deleting the cart does: no run is declared for a person
 * being forgotten.
 */
static SavedStatement DeclareIdleCartsStatement = {
	DECLARE_INSERT
	"        c.last_activity_at + $2, c.last_activity_at, c.last_activity_at + $2, 1,"
	"        c.last_activity_at + $2"
	"   FROM personalisation.journeys j"
	"   JOIN personalisation.carts c"
	"     ON c.line_count > 0 AND c.last_activity_at <= $1 - $2"
	"    AND c.last_activity_at > $1 - (SELECT pg_catalog.max(greatest($2, s.delay) + s.max_lateness)"
	"                                     FROM personalisation.journey_steps s"
	"                                    WHERE s.journey = j.journey AND s.enabled)"
	"  WHERE true" DECLARE_ELIGIBLE
	"  ORDER BY c.last_activity_at LIMIT $4"
	"    FOR KEY SHARE OF c"
	" ON CONFLICT DO NOTHING",
	4, {TIMESTAMPTZOID, INTERVALOID, INT4OID, INT8OID}, KEYED_PLAN
};

/* $1 now, $2 abandon_after: runs whose cart was active again and is now idle again. */
static SavedStatement RedeclareIdleRunsStatement = {
	"UPDATE personalisation.journey_runs r"
	"   SET declared_at = r.anchor_at + $2, next_due_at = r.anchor_at + $2"
	" WHERE (r.profile_id, r.run_id) IN ("
	"       SELECT i.profile_id, i.run_id FROM personalisation.journey_runs i"
	"        WHERE i.status = 'active' AND i.declared_at IS NULL AND i.anchor_at <= $1 - $2"
	"          FOR UPDATE SKIP LOCKED)",
	2, {TIMESTAMPTZOID, INTERVALOID}, KEYED_PLAN
};

/* $1 profile, $2 session, $3 when the session ended. */
static SavedStatement RedeclareSessionRunStatement = {
	"UPDATE personalisation.journey_runs r SET declared_at = $3, next_due_at = $3"
	"  FROM personalisation.carts c"
	" WHERE r.profile_id = $1 AND r.status = 'active' AND r.declared_at IS NULL"
	"   AND c.profile_id = r.profile_id AND c.session_id = $2 AND c.line_count > 0"
	"   AND c.last_activity_at <= $3",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, KEYED_PLAN
};

/* $1 profile, $2 session, $3 holdout basis points, $4 when the session ended. */
static SavedStatement DeclareSessionCartStatement = {
	DECLARE_INSERT
	"        $4, c.last_activity_at, $4, 1, $4"
	"   FROM personalisation.journeys j"
	"   JOIN personalisation.carts c ON c.profile_id = $1 AND c.session_id = $2"
	"  WHERE c.last_activity_at <= $4" DECLARE_ELIGIBLE
	" ON CONFLICT DO NOTHING",
	4, {INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID}, KEYED_PLAN
};

/* $1 now, $2..$4 the last run seen (keyset), $5 batch size. */
static SavedStatement DueRunsStatement = {
	"SELECT r.profile_id, r.run_id, r.next_due_at"
	"  FROM personalisation.journey_runs r"
	"  JOIN personalisation.journeys j ON j.journey = r.journey"
	" WHERE r.status = 'active' AND r.next_due_at <= $1 AND j.enabled"
	"   AND (r.next_due_at, r.profile_id, r.run_id) > ($2, $3, $4)"
	" ORDER BY r.next_due_at, r.profile_id, r.run_id"
	" LIMIT $5"
	"   FOR UPDATE OF r SKIP LOCKED",
	5, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID, INT4OID}, KEYED_PLAN
};

/*
 * $1 now, $2 abandon_after: the first instant after now at which a cart
 * passes the threshold, a run whose cart was active again goes idle again,
 * or a run falls due.  One probe of carts_idle_idx, journey_runs_idle and
 * journey_runs_due each.
 */
static SavedStatement NextDueStatement = {
	"SELECT least("
	"  (SELECT pg_catalog.min(c.last_activity_at) FROM personalisation.carts c"
	"    WHERE c.line_count > 0 AND c.last_activity_at > $1 - $2) + $2,"
	"  (SELECT pg_catalog.min(r.anchor_at) FROM personalisation.journey_runs r"
	"    WHERE r.status = 'active' AND r.declared_at IS NULL AND r.anchor_at > $1 - $2) + $2,"
	"  (SELECT pg_catalog.min(r.next_due_at) FROM personalisation.journey_runs r"
	"    WHERE r.status = 'active' AND r.next_due_at > $1))",
	2, {TIMESTAMPTZOID, INTERVALOID}, KEYED_PLAN
};

/*
 * HoldoutBasisPoints is personalisation.journey_holdout_percent in
 * hundredths of a percent, the unit the arm hash is compared in.
 */
int32
HoldoutBasisPoints(void)
{
	return (int32) rint(JourneyHoldoutPercent * 100.0);
}

/*
 * DeclareAbandonedCarts starts a run for every cart idle for
 * personalisation.abandon_after by now whose episode has none yet (at most
 * limit, 0 for all), and puts back on the clock the runs whose cart became
 * active and then idle again.  It returns the number of carts declared.
 */
static uint64
DeclareAbandonedCarts(TimestampTz now, int limit)
{
	Datum		abandon_after = IntervalFromUsecs((int64) AbandonAfterMinutes * USECS_PER_MINUTE);
	Datum		values[4] = {TimestampTzGetDatum(now), abandon_after,
	Int32GetDatum(HoldoutBasisPoints()), Int64GetDatum(limit)};
	char		nulls[4] = {' ', ' ', ' ', limit > 0 ? ' ' : 'n'};
	uint64		declared;

	ExecSaved(&DeclareIdleCartsStatement, values, nulls, false, 0);
	declared = SPI_processed;
	ExecSaved(&RedeclareIdleRunsStatement, values, NULL, false, 0);
	return declared;
}

/*
 * RunDue is the sequence clock: it declares abandoned carts and does every
 * step due by now, in the caller's transaction, and returns the number of
 * messages written to the outbox.  With max_runs > 0 it declares and
 * advances at most that many runs and sets *more when work may remain, so
 * that a background worker can keep its transactions short; max_runs 0 does
 * everything.  Safe to call concurrently and repeatedly.
 */
int
RunDue(TimestampTz now, int max_runs, bool *more)
{
	int			messages = 0;
	int			visited = 0;
	TimestampTz last_due = DT_NOBEGIN;
	int64		last_profile = 0;
	int64		last_run = 0;
	uint64		declared;
	bool		visited_all = false;

	SPI_connect();
	ForgetSocialProof();
	ForgetPopularity();
	declared = DeclareAbandonedCarts(now, max_runs);

	while (max_runs == 0 || visited < max_runs)
	{
		int			batch = max_runs > 0 ? Min(DUE_BATCH, max_runs - visited) : DUE_BATCH;
		Datum		values[5] = {TimestampTzGetDatum(now), TimestampTzGetDatum(last_due),
			Int64GetDatum(last_profile), Int64GetDatum(last_run),
		Int32GetDatum(batch)};
		int			count;
		int64	   *profiles;
		int64	   *runs;
		bool		isnull;

		ExecSaved(&DueRunsStatement, values, NULL, false, 0);
		count = (int) SPI_processed;
		profiles = palloc(sizeof(int64) * (count + 1));
		runs = palloc(sizeof(int64) * (count + 1));
		for (int i = 0; i < count; i++)
		{
			HeapTuple	row = SPI_tuptable->vals[i];

			profiles[i] = DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull));
			runs[i] = DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull));
			last_due = DatumGetTimestampTz(SPI_getbinval(row, SPI_tuptable->tupdesc, 3, &isnull));
		}
		SPI_freetuptable(SPI_tuptable);

		for (int i = 0; i < count; i++)
			messages += ProcessRun(profiles[i], runs[i], now);
		if (count > 0)
		{
			last_profile = profiles[count - 1];
			last_run = runs[count - 1];
		}
		pfree(profiles);
		pfree(runs);

		visited += count;
		if (count < batch)
		{
			visited_all = true;
			break;
		}
	}
	SPI_finish();

	if (more != NULL)
		*more = !visited_all || (max_runs > 0 && declared >= (uint64) max_runs);
	return messages;
}

/*
 * NextDueAt returns the first instant after now at which RunDue(now) would
 * have work again if nothing else changed: a cart passing
 * personalisation.abandon_after, a run's cart going idle again, or a run
 * falling due; DT_NOEND when there is none.  The background worker sleeps
 * until then when that is sooner than its naptime.  Runs in the caller's
 * transaction.
 */
TimestampTz
NextDueAt(TimestampTz now)
{
	Datum		values[2] = {TimestampTzGetDatum(now),
	IntervalFromUsecs((int64) AbandonAfterMinutes * USECS_PER_MINUTE)};
	TimestampTz next = DT_NOEND;
	bool		isnull;

	SPI_connect();
	ExecSaved(&NextDueStatement, values, NULL, false, 1);
	if (SPI_processed == 1)
	{
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			next = DatumGetTimestampTz(value);
	}
	SPI_finish();
	return next;
}

/*
 * run_due advances every journey as of now: it declares abandoned carts,
 * does every due step and returns how many messages it wrote to the outbox.
 * pg_cron calls it every minute (schedule_jobs); after an outage one call
 * catches up, skipping steps that became pointless.
 */
Datum
run_due(PG_FUNCTION_ARGS)
{
	RequireWritableServer(fcinfo);
	PG_RETURN_INT32(RunDue(RequireInstant(fcinfo, 0, "now"), 0, NULL));
}

/*
 * track_session_end records that a browser session ended (a page-leave
 * beacon): when that browser holds the profile's cart, with items and no
 * later activity, the cart is declared abandoned at once instead of after
 * personalisation.abandon_after.  It returns whether a cart was declared.
 * The steps then due are done by the next run_due or the background worker.
 */
Datum
track_session_end(PG_FUNCTION_ARGS)
{
	text	   *session_id = RequireIdentifier(fcinfo, 0, "session_id");
	TimestampTz occurred_at = RequireEventTime(fcinfo, 1);
	int64		profile_id;
	bool		declared;
	TimestampTz last_seen_at;

	RequireWritableServer(fcinfo);
	SPI_connect();
	profile_id = LockedSessionProfile(session_id, &last_seen_at);
	if (profile_id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("session \"%s\" is not known", text_to_cstring(session_id)),
				 errhint("A session is known from its first tracked event; track its page views and cart changes first.")));
	{
		Datum		values[3] = {Int64GetDatum(profile_id), PointerGetDatum(session_id),
		TimestampTzGetDatum(occurred_at)};

		ExecSaved(&RedeclareSessionRunStatement, values, NULL, false, 0);
		declared = SPI_processed > 0;
	}
	if (!declared)
	{
		Datum		values[4] = {Int64GetDatum(profile_id), PointerGetDatum(session_id),
		Int32GetDatum(HoldoutBasisPoints()), TimestampTzGetDatum(occurred_at)};

		ExecSaved(&DeclareSessionCartStatement, values, NULL, false, 0);
		declared = SPI_processed > 0;
	}
	SPI_finish();
	if (declared)
		WakeWorkerAtCommit();

	PG_RETURN_BOOL(declared);
}

/*
 * attribution_window returns personalisation.attribution_window as an
 * interval, for the analyst report (calling it also loads the library, so
 * the setting exists in sessions that have not used the extension yet).
 */
Datum
attribution_window(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(IntervalFromUsecs((int64) AttributionWindowMinutes * USECS_PER_MINUTE));
}

/*
 * JourneyInit defines the settings of this part.
 */
void
JourneyInit(void)
{
	DefineCustomIntVariable("personalisation.abandon_after",
							"How long a cart with items must be idle to be declared abandoned.",
							"run_due() declares each idle cart once per episode of cart activity.",
							&AbandonAfterMinutes,
							30, 1, 7 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.journey_holdout_percent",
							 "The share of journey runs (abandoned carts, orders), in percent, that run without sending.",
							 "The arm is a hash of the journey and the profile, so a profile stays in its arm.",
							 &JourneyHoldoutPercent,
							 10.0, 0.0, 100.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.attribution_window",
							"How long after abandonment an order counts as recovering the cart, and after a cross-sell message as following it.",
							NULL,
							&AttributionWindowMinutes,
							7 * 24 * 60, 1, 365 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);
}
