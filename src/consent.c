/*
 * consent.c
 *		set_consent: the record of what a visitor allowed us to send them.
 *		Push consent belongs to the browser that granted it (the session);
 *		email consent belongs to the profile.  Every change is kept in
 *		consent_history; the current state is the change with the latest
 *		occurred_at, so changes reported out of order settle correctly.
 */
#include "util.h"

#include "events.h"
#include "journey.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(set_consent);

static SavedStatement RecordConsentStatement = {
	"INSERT INTO personalisation.consent_history"
	" (profile_id, session_id, channel, granted, occurred_at, event_id)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {INT8OID, TEXTOID, TEXTOID, BOOLOID, TIMESTAMPTZOID, TEXTOID}
};

static SavedStatement SetPushConsentStatement = {
	"UPDATE personalisation.sessions SET push_consent = $2, push_consent_at = $3"
	" WHERE session_id = $1 AND (push_consent_at IS NULL OR push_consent_at <= $3)",
	3, {TEXTOID, BOOLOID, TIMESTAMPTZOID}
};

static SavedStatement SetEmailConsentStatement = {
	"UPDATE personalisation.profiles SET email_consent = $2, email_consent_at = $3"
	" WHERE profile_id = $1 AND (email_consent_at IS NULL OR email_consent_at <= $3)",
	3, {INT8OID, BOOLOID, TIMESTAMPTZOID}
};

/*
 * RequireChannel returns the channel argument, refusing anything but
 * 'push' and 'email'.
 */
static char *
RequireChannel(FunctionCallInfo fcinfo, int argno)
{
	char	   *channel;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("channel must not be null"),
				 errhint("Pass 'push' or 'email'.")));
	channel = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(channel, "push") != 0 && strcmp(channel, "email") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown consent channel \"%s\"", ClipForMessage(channel)),
				 errhint("Pass 'push' or 'email'.")));
	return channel;
}

/*
 * set_consent records that the session's visitor granted or withdrew
 * consent for a channel.  A retry with the same event_id changes nothing.
 */
Datum
set_consent(PG_FUNCTION_ARGS)
{
	text	   *session_id = RequireIdentifier(fcinfo, 0, "session_id");
	char	   *channel = RequireChannel(fcinfo, 1);
	bool		granted;
	TimestampTz occurred_at;
	text	   *event_id;
	int64		profile_id;

	RequireWritableServer(fcinfo);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("granted must not be null"),
				 errhint("Pass true to grant consent and false to withdraw it.")));
	granted = PG_GETARG_BOOL(2);
	occurred_at = RequireEventTime(fcinfo, 3);
	event_id = OptionalIdentifier(fcinfo, 4, "event_id");

	SPI_connect();
	if (event_id != NULL && !ClaimEventKey(event_id, occurred_at))
	{
		SPI_finish();
		PG_RETURN_VOID();
	}

	profile_id = TouchSession(session_id, occurred_at);
	{
		Datum		history[6] = {Int64GetDatum(profile_id), PointerGetDatum(session_id),
			CStringGetTextDatum(channel), BoolGetDatum(granted),
		TimestampTzGetDatum(occurred_at), PointerGetDatum(event_id)};
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', event_id ? ' ' : 'n'};

		ExecSaved(&RecordConsentStatement, history, nulls, false, 0);
	}

	if (strcmp(channel, "push") == 0)
	{
		Datum		values[3] = {PointerGetDatum(session_id), BoolGetDatum(granted),
		TimestampTzGetDatum(occurred_at)};

		ExecSaved(&SetPushConsentStatement, values, NULL, false, 0);
	}
	else
	{
		Datum		values[3] = {Int64GetDatum(profile_id), BoolGetDatum(granted),
		TimestampTzGetDatum(occurred_at)};

		ExecSaved(&SetEmailConsentStatement, values, NULL, false, 0);
	}
	if (!granted)
		JourneyConsentWithdrawn(profile_id, session_id, channel, occurred_at);
	SPI_finish();

	PG_RETURN_VOID();
}
