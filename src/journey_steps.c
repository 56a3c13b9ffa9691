/*
 * journey_steps.c
 *		Doing the due steps of one run: the catch-up rule for late steps, the
 *		exit rules, consent and conditions (a step that may not go out is
 *		skipped with its reason), the frequency cap and quiet hours (which
 *		postpone a step, never drop it), and recording what each step did.
 *		Also owns the quiet-hours settings.
 */
#include "journey.h"

#include "outbox.h"
#include "payload.h"

#include "catalog/pg_type.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"

/* Settings of this part (defined by JourneyStepsInit) */
int			FrequencyCap = 3;
char	   *QuietHours = NULL;
char	   *QuietHoursTimezone = NULL;
int			CouponValidityMinutes = 48 * 60;

/* Quiet hours as minutes after local midnight; start > end wraps past midnight. */
typedef struct QuietWindow
{
	bool		on;
	int			start;
	int			end;
} QuietWindow;

static QuietWindow *QuietHoursWindow = NULL;
static pg_tz *QuietHoursZone = NULL;

/* How many steps ProcessRun does for one run in one call, at most. */
#define MAX_STEPS_PER_VISIT 100

/*
 * $1 profile, $2 run, $3 now.  A step is late when reached more than its
 * max_lateness after its baseline, or after the journey's send_within.
 */
static SavedStatement LoadRunStepStatement = {
	"SELECT r.journey, r.arm = 'holdout', s.step, 'incentive' = ANY (s.blocks),"
	"       'social_proof' = ANY (s.blocks),"
	"       s.due_at, greatest(r.next_due_at, s.due_at),"
	"       $3 - greatest(r.next_due_at, s.due_at) > s.max_lateness"
	"       OR coalesce($3 > r.anchor_at + j.send_within, false),"
	"       c.exit_reason,"
	"       CASE s.channel WHEN 'push' THEN c.push_refusal ELSE c.email_refusal END,"
	"       s.min_cart_value IS NOT NULL AND s.min_cart_value > coalesce("
	"           (SELECT pg_catalog.sum(l.quantity::pg_catalog.numeric OPERATOR(pg_catalog.*) p.price) FROM personalisation.cart_lines l"
	"              JOIN personalisation.products p ON p.product_id = l.product_id"
	"             WHERE l.profile_id = r.profile_id), 0),"
	"       'recommendations' = ANY (s.blocks), s.max_recommendations,"
	"       coalesce(s.min_recommendations, 0)"
	"  FROM personalisation.journey_runs r"
	"  JOIN personalisation.journeys j ON j.journey = r.journey"
	"  JOIN personalisation.journey_run_checks c ON c.profile_id = r.profile_id AND c.run_id = r.run_id"
	"  LEFT JOIN LATERAL ("
	"       SELECT js.step, js.channel, js.blocks, js.max_lateness, js.min_cart_value,"
	"              js.max_recommendations, js.min_recommendations, " STEP_DUE_AT " AS due_at"
	"         FROM personalisation.journey_steps js"
	"        WHERE js.journey = r.journey AND js.enabled AND js.step >= r.next_step"
	"        ORDER BY js.step LIMIT 1) s ON true"
	" WHERE r.profile_id = $1 AND r.run_id = $2 AND r.status = 'active'",
	3, {INT8OID, INT8OID, TIMESTAMPTZOID}, KEYED_PLAN
};

/*
 * Records what a step did and moves the run on, in one statement.  $1
 * profile, $2 run, $3 step, $4 outcome (sent, held or skipped), $5 reason,
 * $6 the step's due time, $7 now, $8 the payload (written to the outbox
 * when sent, kept in the record when held), $9 the instant the next step's
 * lateness counts from.  A run with no step left completes.  Returns the
 * message id (NULL unless sent) and whether the next step is due already.
 */
static SavedStatement RecordStepStatement = {
	"WITH message AS ("
	"    INSERT INTO personalisation.outbox"
	"      (profile_id, run_id, step, journey, channel, template, session_id, payload, available_at, created_at)"
	"    SELECT r.profile_id, r.run_id, s.step, r.journey, s.channel, s.template, r.session_id, $8, $7, $7"
	"      FROM personalisation.journey_runs r"
	"      JOIN personalisation.journey_steps s ON s.journey = r.journey AND s.step = $3"
	"     WHERE r.profile_id = $1 AND r.run_id = $2 AND $4 = 'sent'"
	"    ON CONFLICT (profile_id, run_id, step) DO NOTHING"
	"    RETURNING message_id"
	"), record AS ("
	"    INSERT INTO personalisation.journey_run_steps"
	"      (profile_id, run_id, step, journey, arm, channel, outcome, reason, due_at, done_at, message_id, payload)"
	"    SELECT r.profile_id, r.run_id, s.step, r.journey, r.arm, s.channel, $4, $5, $6, $7,"
	"           (SELECT message_id FROM message), CASE WHEN $4 = 'held' THEN $8 END"
	"      FROM personalisation.journey_runs r"
	"      JOIN personalisation.journey_steps s ON s.journey = r.journey AND s.step = $3"
	"     WHERE r.profile_id = $1 AND r.run_id = $2"
	"    ON CONFLICT DO NOTHING"
	"), following AS ("
	"    SELECT (SELECT " STEP_DUE_AT
	"              FROM personalisation.journey_steps js"
	"             WHERE js.journey = r.journey AND js.enabled AND js.step > $3"
	"             ORDER BY js.step LIMIT 1) AS due_at"
	"      FROM personalisation.journey_runs r"
	"      JOIN personalisation.journeys j ON j.journey = r.journey"
	"     WHERE r.profile_id = $1 AND r.run_id = $2"
	")"
	" UPDATE personalisation.journey_runs r"
	"    SET next_step = $3 + 1,"
	"        next_due_at = CASE WHEN f.due_at IS NULL THEN NULL ELSE greatest($9, f.due_at) END,"
	"        status = CASE WHEN f.due_at IS NULL THEN 'completed' ELSE 'active' END,"
	"        ended_at = CASE WHEN f.due_at IS NULL THEN $7 END,"
	"        wait_reason = NULL"
	"   FROM following f"
	"  WHERE r.profile_id = $1 AND r.run_id = $2"
	" RETURNING (SELECT message_id FROM message), r.status = 'active' AND r.next_due_at <= $7",
	9, {INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID,
	TIMESTAMPTZOID}, KEYED_PLAN
};

static SavedStatement RescheduleStatement = {
	"UPDATE personalisation.journey_runs SET next_due_at = $3, wait_reason = coalesce($4, wait_reason)"
	" WHERE profile_id = $1 AND run_id = $2",
	4, {INT8OID, INT8OID, TIMESTAMPTZOID, TEXTOID}, KEYED_PLAN
};

static SavedStatement FinishRunStatement = {
	"UPDATE personalisation.journey_runs"
	"   SET status = CASE WHEN $3::text IS NULL THEN 'completed' ELSE 'ended' END,"
	"       end_reason = $3, ended_at = $4, next_due_at = NULL, wait_reason = NULL"
	" WHERE profile_id = $1 AND run_id = $2",
	4, {INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID}, KEYED_PLAN
};

/* The instant the rolling-day window frees up, when the profile is at the cap. */
static SavedStatement FrequencyCapStatement = {
	"SELECT s.done_at + interval '24 hours' FROM personalisation.journey_run_steps s"
	" WHERE s.profile_id = $1 AND s.outcome IN ('sent', 'held')"
	"   AND s.done_at > $2 - interval '24 hours' AND s.done_at <= $2"
	" ORDER BY s.done_at DESC OFFSET $3 LIMIT 1",
	3, {INT8OID, TIMESTAMPTZOID, INT8OID}, KEYED_PLAN
};

/*
 * ColumnText returns column col of the current SPI row as a C string, or
 * NULL when it is NULL.
 */
static char *
ColumnText(int col)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
}

/*
 * LoadRunStep fills step with the run's next enabled step and everything its
 * rules need, as of now.  It returns false when the run is no longer active.
 */
static bool
LoadRunStep(int64 profile_id, int64 run_id, TimestampTz now, RunStep *step)
{
	Datum		values[3] = {Int64GetDatum(profile_id), Int64GetDatum(run_id), TimestampTzGetDatum(now)};
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	Datum		value;

	ExecSaved(&LoadRunStepStatement, values, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	memset(step, 0, sizeof(RunStep));
	step->profile_id = profile_id;
	step->run_id = run_id;
	step->journey = DatumGetTextPP(SPI_getbinval(row, desc, 1, &isnull));
	step->holdout = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
	step->exit_reason = ColumnText(9);

	value = SPI_getbinval(row, desc, 3, &isnull);
	if (isnull)
		return true;			/* no step left */
	step->step = DatumGetInt32(value);
	step->incentive = DatumGetBool(SPI_getbinval(row, desc, 4, &isnull));
	step->social_proof = DatumGetBool(SPI_getbinval(row, desc, 5, &isnull));
	step->due_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 6, &isnull));
	step->baseline = DatumGetTimestampTz(SPI_getbinval(row, desc, 7, &isnull));
	step->late = DatumGetBool(SPI_getbinval(row, desc, 8, &isnull));
	step->refusal = ColumnText(10);
	step->below_min_value = DatumGetBool(SPI_getbinval(row, desc, 11, &isnull));
	step->recommendations = DatumGetBool(SPI_getbinval(row, desc, 12, &isnull));
	step->max_recommendations = DatumGetInt32(SPI_getbinval(row, desc, 13, &isnull));
	step->min_recommendations = DatumGetInt32(SPI_getbinval(row, desc, 14, &isnull));
	return true;
}

/*
 * RecordStep writes what the step did (sent, held or skipped) and moves the
 * run on to the following step; a sent message goes to the outbox in the
 * same statement, and *message_id is set to its id (0 when none was
 * written).  The next step's lateness then counts from now after a message
 * went out (so a step postponed behind it is not counted late), from the
 * skipped step's own baseline otherwise (so catch-up after an outage still
 * skips what is stale).  Returns whether the next step is due already.
 */
static bool
RecordStep(RunStep *step, const char *outcome, const char *reason, TimestampTz now,
		   Datum payload, int64 *message_id)
{
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	Datum		written;

	values[0] = Int64GetDatum(step->profile_id);
	values[1] = Int64GetDatum(step->run_id);
	values[2] = Int32GetDatum(step->step);
	values[3] = CStringGetTextDatum(outcome);
	values[4] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[4] = reason ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(step->due_at);
	values[6] = TimestampTzGetDatum(now);
	values[7] = payload;
	nulls[7] = payload ? ' ' : 'n';
	values[8] = TimestampTzGetDatum(strcmp(outcome, "skipped") == 0 ? step->baseline : now);
	ExecSaved(&RecordStepStatement, values, nulls, false, 0);

	written = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (message_id != NULL)
		*message_id = isnull ? 0 : DatumGetInt64(written);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/*
 * Reschedule makes run_due look at the run again at the given instant,
 * noting why when it is a postponement.
 */
static void
Reschedule(RunStep *step, TimestampTz at, const char *why)
{
	Datum		values[4] = {Int64GetDatum(step->profile_id), Int64GetDatum(step->run_id),
		TimestampTzGetDatum(at), why ? CStringGetTextDatum(why) : (Datum) 0};
	char		nulls[4] = {' ', ' ', ' ', why ? ' ' : 'n'};

	ExecSaved(&RescheduleStatement, values, nulls, false, 0);
}

/*
 * FinishRun closes the run: completed when reason is NULL (no step left),
 * ended with the reason otherwise, in which case its queued messages are
 * cancelled too.
 */
static void
FinishRun(RunStep *step, const char *reason, TimestampTz now)
{
	Datum		values[4] = {Int64GetDatum(step->profile_id), Int64GetDatum(step->run_id),
		reason ? CStringGetTextDatum(reason) : (Datum) 0, TimestampTzGetDatum(now)};
	char		nulls[4] = {' ', ' ', reason ? ' ' : 'n', ' '};

	ExecSaved(&FinishRunStatement, values, nulls, false, 0);
	if (reason != NULL)
	{
		Datum		run_id = Int64GetDatum(step->run_id);

		OutboxWithdraw(step->profile_id,
					   PointerGetDatum(construct_array(&run_id, 1, INT8OID, 8, true, TYPALIGN_DOUBLE)),
					   "cancelled", reason, now);
	}
}

/*
 * FrequencyCapFree returns the first instant from at on which the profile
 * has fewer than personalisation.frequency_cap messages in the rolling 24
 * hours before it.
 */
static TimestampTz
FrequencyCapFree(int64 profile_id, TimestampTz at)
{
	Datum		values[3] = {Int64GetDatum(profile_id), TimestampTzGetDatum(at),
	Int64GetDatum(FrequencyCap - 1)};
	bool		isnull;
	TimestampTz frees;

	if (FrequencyCap == 0)
		return at;
	ExecSaved(&FrequencyCapStatement, values, NULL, false, 1);
	if (SPI_processed == 0)
		return at;
	frees = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return Max(frees, at);
}

/*
 * QuietHoursEnd returns at itself when at lies outside the quiet hours, and
 * the instant they end otherwise, both read in quiet_hours_timezone (so a
 * daylight-saving change is honoured).
 */
static TimestampTz
QuietHoursEnd(TimestampTz at)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;
	int			minute;
	int			julian;
	TimestampTz result;

	if (QuietHoursWindow == NULL || !QuietHoursWindow->on)
		return at;
	if (timestamp2tm(at, &tzoff, &tm, &fsec, NULL, QuietHoursZone) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));

	minute = tm.tm_hour * 60 + tm.tm_min;
	julian = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday);
	if (QuietHoursWindow->start < QuietHoursWindow->end)
	{
		if (minute < QuietHoursWindow->start || minute >= QuietHoursWindow->end)
			return at;
	}
	else
	{
		if (minute < QuietHoursWindow->start && minute >= QuietHoursWindow->end)
			return at;
		if (minute >= QuietHoursWindow->start)
			julian++;			/* they end tomorrow morning */
	}

	j2date(julian, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tm.tm_hour = QuietHoursWindow->end / 60;
	tm.tm_min = QuietHoursWindow->end % 60;
	tm.tm_sec = 0;
	tzoff = DetermineTimeZoneOffset(&tm, QuietHoursZone);
	if (tm2timestamp(&tm, 0, &tzoff, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

/*
 * EarliestSendTime returns the first instant from now at which the profile
 * may be sent a message under the frequency cap and the quiet hours, and
 * sets *why to the rule that postponed it (NULL when it may go now).  Time
 * only lowers the count in the cap's window, so once both rules agree on an
 * instant it is final.
 */
static TimestampTz
EarliestSendTime(int64 profile_id, TimestampTz now, const char **why)
{
	TimestampTz at = now;

	*why = NULL;
	for (;;)
	{
		TimestampTz cap_free = FrequencyCapFree(profile_id, at);
		TimestampTz quiet_end = QuietHoursEnd(cap_free);

		if (cap_free > at)
			*why = "frequency_cap";
		if (quiet_end > cap_free)
			*why = "quiet_hours";
		if (quiet_end == at)
			return at;
		at = quiet_end;
	}
}

/*
 * SendStep writes the step's message: to the outbox for the treatment arm,
 * or, for the holdout arm, only into the step's record as what would have
 * been sent.  An incentive gets a fresh coupon code, issued only when the
 * message is really sent.  It adds the outbox rows written to *messages and
 * returns whether the next step is due already.
 */
static bool
SendStep(RunStep *step, TimestampTz now, int *messages)
{
	char	   *code = NULL;
	TimestampTz expires_at = 0;
	Datum		payload;
	int64		message_id;
	bool		due_again;

	if (step->incentive)
	{
		code = NewCouponCode();
		expires_at = now + (TimestampTz) CouponValidityMinutes * USECS_PER_MINUTE;
	}
	payload = BuildPayload(step, now, code, expires_at);

	due_again = RecordStep(step, step->holdout ? "held" : "sent", NULL, now, payload, &message_id);
	if (message_id != 0)
	{
		(*messages)++;
		if (code != NULL)
			IssueCoupon(step, code, now, expires_at);
	}
	return due_again;
}

/*
 * ProcessRun does every step of the run that is due by now, in order, and
 * returns the number of messages it wrote to the outbox.  The caller holds
 * the run's row lock, so no other caller works on the run meanwhile.  Each
 * pass either moves the run to its next step or stops, so it ends.
 */
int
ProcessRun(int64 profile_id, int64 run_id, TimestampTz now)
{
	int			messages = 0;
	bool		due = true;

	SPI_connect();
	for (int visit = 0; due && visit < MAX_STEPS_PER_VISIT; visit++)
	{
		RunStep		step;
		TimestampTz send_at;
		const char *why;

		if (!LoadRunStep(profile_id, run_id, now, &step))
			break;
		if (step.exit_reason != NULL)
		{
			FinishRun(&step, step.exit_reason, now);
			break;
		}
		if (step.step == 0)
		{
			FinishRun(&step, NULL, now);
			break;
		}
		if (step.baseline > now)
		{
			Reschedule(&step, step.baseline, NULL);
			break;
		}
		if (step.late)
			due = RecordStep(&step, "skipped", "late", now, (Datum) 0, NULL);
		else if (step.refusal != NULL)
			due = RecordStep(&step, "skipped", step.refusal, now, (Datum) 0, NULL);
		else if (step.below_min_value)
			due = RecordStep(&step, "skipped", "below_min_cart_value", now, (Datum) 0, NULL);
		else if (step.min_recommendations > 0 && RecommendForStep(&step) < step.min_recommendations)
			due = RecordStep(&step, "skipped", "too_few_recommendations", now, (Datum) 0, NULL);
		else if ((send_at = EarliestSendTime(profile_id, now, &why)) > now)
		{
			Reschedule(&step, send_at, why);
			break;
		}
		else
			due = SendStep(&step, now, &messages);
	}
	SPI_finish();
	return messages;
}

/*
 * CheckQuietHours accepts an empty string (no quiet hours) or HH:MM-HH:MM
 * with distinct start and end, and hands the parsed window to
 * AssignQuietHours.
 */
static bool
CheckQuietHours(char **newval, void **extra, GucSource source)
{
	QuietWindow parsed = {false, 0, 0};
	QuietWindow *kept;

	if (**newval != '\0')
	{
		int			start_hour,
					start_minute,
					end_hour,
					end_minute,
					consumed = -1;

		if (sscanf(*newval, "%2d:%2d-%2d:%2d%n", &start_hour, &start_minute,
				   &end_hour, &end_minute, &consumed) != 4 ||
			consumed != (int) strlen(*newval) ||
			start_hour < 0 || start_hour > 23 || end_hour < 0 || end_hour > 23 ||
			start_minute < 0 || start_minute > 59 || end_minute < 0 || end_minute > 59 ||
			start_hour * 60 + start_minute == end_hour * 60 + end_minute)
		{
			GUC_check_errdetail("Quiet hours are written HH:MM-HH:MM with two different times, "
								"for example 21:00-08:00, or as an empty string for none.");
			return false;
		}
		parsed.on = true;
		parsed.start = start_hour * 60 + start_minute;
		parsed.end = end_hour * 60 + end_minute;
	}

	kept = malloc(sizeof(QuietWindow));
	if (kept == NULL)
		return false;
	*kept = parsed;
	*extra = kept;
	return true;
}

/*
 * AssignQuietHours makes the checked window the one in force.
 */
static void
AssignQuietHours(const char *newval, void *extra)
{
	QuietHoursWindow = (QuietWindow *) extra;
}

/*
 * CheckQuietHoursTimezone accepts any time zone name the server knows and
 * hands the loaded zone to AssignQuietHoursTimezone.
 */
static bool
CheckQuietHoursTimezone(char **newval, void **extra, GucSource source)
{
	pg_tz	   *zone = pg_tzset(*newval);
	pg_tz	  **kept;

	if (zone == NULL)
	{
		GUC_check_errdetail("Time zone \"%s\" is not known; use a name from pg_timezone_names, such as Europe/Paris.",
							*newval);
		return false;
	}
	kept = malloc(sizeof(pg_tz *));
	if (kept == NULL)
		return false;
	*kept = zone;
	*extra = kept;
	return true;
}

/*
 * AssignQuietHoursTimezone makes the checked zone the one in force.
 */
static void
AssignQuietHoursTimezone(const char *newval, void *extra)
{
	QuietHoursZone = *(pg_tz **) extra;
}

/*
 * JourneyStepsInit defines the settings of this part.
 */
void
JourneyStepsInit(void)
{
	DefineCustomIntVariable("personalisation.frequency_cap",
							"The most journey messages one profile is sent in any rolling 24 hours.",
							"A step that would exceed it is postponed, never dropped; 0 turns the cap off.",
							&FrequencyCap,
							3, 0, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("personalisation.quiet_hours",
							   "Local hours in which no journey message is sent, as HH:MM-HH:MM.",
							   "A step due inside them is postponed to their end; empty turns them off.",
							   &QuietHours,
							   "",
							   PGC_SUSET, 0,
							   CheckQuietHours, AssignQuietHours, NULL);

	DefineCustomStringVariable("personalisation.quiet_hours_timezone",
							   "The time zone personalisation.quiet_hours is read in.",
							   NULL,
							   &QuietHoursTimezone,
							   "UTC",
							   PGC_SUSET, 0,
							   CheckQuietHoursTimezone, AssignQuietHoursTimezone, NULL);

	DefineCustomIntVariable("personalisation.coupon_validity",
							"How long an incentive's coupon is valid after its message is written.",
							NULL,
							&CouponValidityMinutes,
							48 * 60, 1, 365 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);
}
