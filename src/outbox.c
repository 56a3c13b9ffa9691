/*
 * outbox.c
 *		The outbound queue (journey_steps.c writes each message, exactly once
 *		per (run, step)): withdrawing queued messages when an exit rule
 *		fires, and the delivery workers' side: claim_messages (leases, FOR
 *		UPDATE SKIP LOCKED, exit rules and consent re-checked at claim),
 *		ack_message and ack_messages, and fail_message (exponential backoff,
 *		dead-lettering).
 *
 *		A message is pending until claimed; a claim is a lease until
 *		lease_until, after which another claim may take the message again.
 *		attempts counts claims: a message whose lease lapses, or that fails,
 *		with personalisation.max_attempts claims spent is dead-lettered.
 */
#include "journey.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(claim_messages);
PG_FUNCTION_INFO_V1(ack_message);
PG_FUNCTION_INFO_V1(ack_messages);
PG_FUNCTION_INFO_V1(fail_message);

/* Longest consumer name accepted, in bytes. */
#define MAX_CONSUMER_BYTES 200

/* Most messages one claim_messages call hands out. */
#define MAX_CLAIM 10000

static SavedStatement WithdrawStatement = {
	"UPDATE personalisation.outbox SET status = $3, reason = $4, finished_at = $5"
	" WHERE profile_id = $1 AND run_id = ANY ($2) AND status = 'pending'",
	5, {INT8OID, INT8ARRAYOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}, KEYED_PLAN
};

/* $1 now, $2 how many: the oldest available messages, locked, skipping rows other claims hold. */
static SavedStatement PickStatement = {
	"SELECT o.message_id FROM personalisation.outbox o"
	" WHERE o.queued AND o.available_at <= $1 AND (o.status = 'pending' OR o.lease_until <= $1)"
	" ORDER BY o.available_at"
	" LIMIT $2"
	"   FOR UPDATE SKIP LOCKED",
	2, {TIMESTAMPTZOID, INT4OID}, KEYED_PLAN
};

/*
 * $1 the picked message ids, $2 consumer, $3 now, $4 lease, $5 max attempts.
 * Each picked message is claimed, or, when its run's exit rules or its
 * channel's consent now forbid it, cancelled or suppressed; a lapsed lease
 * with every attempt spent dead-letters it.  Claiming changes no indexed
 * column (queued stays true), so it is a HOT update.  The ids come as an
 * array rather than a join with the pick, so that the plan, prepared once,
 * looks the rows up by key whatever the batch size.
 */
static SavedStatement SettleStatement = {
	"WITH verdicts AS ("
	"    SELECT o.message_id, o.profile_id,"
	"           CASE WHEN o.status = 'claimed' AND o.attempts >= $5 THEN 'dead'"
	"                WHEN c.exit_reason IS NOT NULL THEN 'cancelled'"
	"                WHEN refusal IS NOT NULL THEN 'suppressed'"
	"                ELSE 'claimed' END AS status,"
	"           CASE WHEN o.status = 'claimed' AND o.attempts >= $5 THEN NULL"
	"                ELSE coalesce(c.exit_reason, refusal) END AS reason"
	"      FROM personalisation.outbox o"
	"      LEFT JOIN personalisation.journey_run_checks c"
	"             ON c.profile_id = o.profile_id AND c.run_id = o.run_id"
	"      CROSS JOIN LATERAL (SELECT CASE o.channel WHEN 'push' THEN c.push_refusal"
	"                                 ELSE c.email_refusal END AS refusal) r"
	"     WHERE o.message_id = ANY ($1)"
	")"
	" UPDATE personalisation.outbox o"
	"    SET status = v.status,"
	"        attempts = o.attempts + CASE WHEN v.status = 'claimed' THEN 1 ELSE 0 END,"
	"        claimed_by = CASE WHEN v.status = 'claimed' THEN $2 ELSE o.claimed_by END,"
	"        lease_until = CASE WHEN v.status = 'claimed' THEN $3 + $4 END,"
	"        finished_at = CASE WHEN v.status <> 'claimed' THEN $3 END,"
	"        reason = v.reason,"
	"        last_error = CASE WHEN v.status = 'dead'"
	"                          THEN 'lease of ' || o.claimed_by || ' lapsed on attempt ' || o.attempts"
	"                          ELSE o.last_error END"
	"   FROM verdicts v"
	"  WHERE o.message_id = ANY ($1) AND o.message_id = v.message_id AND o.profile_id = v.profile_id"
	" RETURNING o.*",
	5, {INT8ARRAYOID, TEXTOID, TIMESTAMPTZOID, INTERVALOID, INT4OID}, KEYED_PLAN
};

static SavedStatement AckStatement = {
	"UPDATE personalisation.outbox SET status = 'delivered', finished_at = $2, lease_until = NULL"
	" WHERE message_id = ANY ($1) AND status = 'claimed'",
	2, {INT8ARRAYOID, TIMESTAMPTZOID}, KEYED_PLAN
};

/* The first of the given messages that is neither claimed nor delivered now. */
static SavedStatement UnackedStatement = {
	"SELECT m FROM pg_catalog.unnest($1) AS m"
	" WHERE NOT EXISTS (SELECT FROM personalisation.outbox o"
	"                    WHERE o.message_id = m AND o.status = 'delivered') LIMIT 1",
	1, {INT8ARRAYOID}, KEYED_PLAN
};

/* $1 message, $2 error, $3 now, $4 max attempts, $5 backoff base. */
static SavedStatement FailStatement = {
	"UPDATE personalisation.outbox"
	"   SET status = CASE WHEN attempts >= $4 THEN 'dead' ELSE 'pending' END,"
	"       available_at = CASE WHEN attempts >= $4 THEN available_at"
	"                      ELSE $3 + $5 * pg_catalog.power(2::float8, least(attempts - 1, 20)) END,"
	"       finished_at = CASE WHEN attempts >= $4 THEN $3 END,"
	"       last_error = $2, lease_until = NULL"
	" WHERE message_id = $1 AND status = 'claimed' RETURNING status",
	5, {INT8OID, TEXTOID, TIMESTAMPTZOID, INT4OID, INTERVALOID}, KEYED_PLAN
};

static SavedStatement MessageStatusStatement = {
	"SELECT status FROM personalisation.outbox WHERE message_id = $1",
	1, {INT8OID}, KEYED_PLAN
};

/*
 * OutboxWithdraw takes the still-pending messages of the given runs (an
 * int8[]) out of the queue with the given status (cancelled or suppressed)
 * and reason.  A message already claimed is left to its worker: the claim
 * was handed out before the rule fired.
 */
void
OutboxWithdraw(int64 profile_id, Datum run_ids, const char *status, const char *reason,
			   TimestampTz at)
{
	Datum		values[5] = {Int64GetDatum(profile_id), run_ids, CStringGetTextDatum(status),
	CStringGetTextDatum(reason), TimestampTzGetDatum(at)};

	ExecSaved(&WithdrawStatement, values, NULL, false, 0);
}

/*
 * RequireMessageId returns argument argno as a message id, refusing NULL.
 */
static int64
RequireMessageId(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message_id must not be null"),
				 errhint("Pass the message_id of a message claim_messages handed out.")));
	return PG_GETARG_INT64(argno);
}

/*
 * RequireClaimed explains why a message that ack_message or fail_message
 * was given is not claimed: unknown, or in another state.  It returns only
 * for an acknowledgement of a message already delivered: a retried ack.
 */
static void
RequireClaimed(int64 message_id, const char *action)
{
	Datum		values[1] = {Int64GetDatum(message_id)};
	char	   *status;

	ExecSaved(&MessageStatusStatement, values, NULL, false, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("message " INT64_FORMAT " is not in the outbox", message_id),
				 errhint("Pass the message_id of a message claim_messages handed out.")));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(status, "delivered") == 0 && strcmp(action, "acknowledged") == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("message " INT64_FORMAT " cannot be %s", message_id, action),
			 errdetail("The message is %s, not claimed.", status),
			 errhint("Only a message handed out by claim_messages, and not yet acknowledged or failed, can be %s.",
					 action)));
}

/*
 * claim_messages hands out up to max_messages available messages to the
 * consumer, each leased until now + lease, oldest first.  Concurrent
 * consumers never receive the same message: rows locked by another claim
 * are skipped.  Messages that may no longer be sent are cancelled or
 * suppressed on the way and not handed out; the claim then reaches further
 * into the queue so that the caller still gets what is available.
 */
Datum
claim_messages(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *consumer = RequireIdentifier(fcinfo, 0, "consumer");
	int32		max_messages;
	Interval   *lease;
	TimestampTz now = RequireInstant(fcinfo, 3, "now");
	int			claimed = 0;
	int			status_column;

	if (VARSIZE_ANY_EXHDR(consumer) > MAX_CONSUMER_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("consumer is too long"),
				 errhint("Consumer names may be at most %d bytes long.", MAX_CONSUMER_BYTES)));
	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1 || PG_GETARG_INT32(1) > MAX_CLAIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_messages %s is out of range",
						PG_ARGISNULL(1) ? "NULL" : psprintf("%d", PG_GETARG_INT32(1))),
				 errhint("Pass a number of messages from 1 to %d.", MAX_CLAIM)));
	max_messages = PG_GETARG_INT32(1);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("lease must not be null"),
				 errhint("Pass how long the consumer may take to deliver, such as '5 minutes'.")));
	lease = PG_GETARG_INTERVAL_P(2);
	if (lease->month != 0 || lease->day != 0 || lease->time <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lease %s is not a positive span of hours, minutes or seconds",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(lease)))),
				 errhint("Pass how long the consumer may take to deliver, such as '5 minutes'.")));

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	for (;;)
	{
		int			wanted = max_messages - claimed;
		Datum		pick[2] = {TimestampTzGetDatum(now), Int32GetDatum(wanted)};
		Datum		settle[5];
		Datum	   *ids;
		int			picked;
		bool		isnull;

		ExecSaved(&PickStatement, pick, NULL, false, 0);
		picked = (int) SPI_processed;
		if (picked == 0)
			break;
		ids = palloc(sizeof(Datum) * picked);
		for (int i = 0; i < picked; i++)
			ids[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		SPI_freetuptable(SPI_tuptable);

		settle[0] = PointerGetDatum(construct_array(ids, picked, INT8OID, 8, true, TYPALIGN_DOUBLE));
		settle[1] = PointerGetDatum(consumer);
		settle[2] = TimestampTzGetDatum(now);
		settle[3] = IntervalPGetDatum(lease);
		settle[4] = Int32GetDatum(OutboxMaxAttempts);
		ExecSaved(&SettleStatement, settle, NULL, false, 0);
		status_column = SPI_fnumber(SPI_tuptable->tupdesc, "status");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			char	   *status = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, status_column);

			if (strcmp(status, "claimed") != 0)
				continue;
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
			claimed++;
		}
		SPI_freetuptable(SPI_tuptable);
		pfree(ids);
		/* fewer rows than asked for: the available queue is exhausted */
		if (picked < wanted || claimed == max_messages)
			break;
	}
	SPI_finish();

	return (Datum) 0;
}

/*
 * AckMessages marks the claimed messages among message_ids (an int8[]) as
 * delivered and returns how many it marked.  Ids of messages already
 * delivered are retries and change nothing; any other id (unknown, or not
 * claimed) is refused, and then nothing is marked.
 */
static int
AckMessages(Datum message_ids, TimestampTz now)
{
	Datum		values[2] = {message_ids, TimestampTzGetDatum(now)};
	int			acknowledged;
	bool		isnull;

	SPI_connect();
	ExecSaved(&AckStatement, values, NULL, false, 0);
	acknowledged = (int) SPI_processed;
	if (acknowledged < ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(message_ids)),
									  ARR_DIMS(DatumGetArrayTypeP(message_ids))))
	{
		ExecSaved(&UnackedStatement, values, NULL, false, 1);
		if (SPI_processed > 0)
			RequireClaimed(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
						   "acknowledged");
	}
	SPI_finish();
	return acknowledged;
}

/*
 * ack_message records that the claimed message was delivered.  It returns
 * true, or false when the message was already acknowledged (a retried ack
 * changes nothing); acknowledging a message that is not claimed is refused.
 */
Datum
ack_message(PG_FUNCTION_ARGS)
{
	Datum		message_id = Int64GetDatum(RequireMessageId(fcinfo, 0));
	TimestampTz now = RequireInstant(fcinfo, 1, "now");

	PG_RETURN_BOOL(AckMessages(PointerGetDatum(construct_array(&message_id, 1, INT8OID, 8, true,
															   TYPALIGN_DOUBLE)), now) == 1);
}

/*
 * ack_messages is ack_message for a batch: it records every claimed
 * message of the array as delivered, in one statement, and returns how
 * many it marked.  A NULL element, or a message neither claimed nor already
 * delivered, is refused and nothing is marked.
 */
Datum
ack_messages(PG_FUNCTION_ARGS)
{
	ArrayType  *message_ids;
	TimestampTz now = RequireInstant(fcinfo, 1, "now");

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message_ids must not be null"),
				 errhint("Pass the message_ids of messages claim_messages handed out.")));
	message_ids = PG_GETARG_ARRAYTYPE_P(0);
	if (array_contains_nulls(message_ids))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message_ids must not contain nulls"),
				 errhint("Pass the message_ids of messages claim_messages handed out.")));

	PG_RETURN_INT32(AckMessages(PointerGetDatum(message_ids), now));
}

/*
 * fail_message records that delivering the claimed message failed with the
 * given error.  The message is retried after personalisation.retry_backoff,
 * doubled for each earlier attempt, or dead-lettered once it has been
 * claimed personalisation.max_attempts times; the error is kept either way.
 * It returns the message's new status, pending or dead.
 */
Datum
fail_message(PG_FUNCTION_ARGS)
{
	int64		message_id = RequireMessageId(fcinfo, 0);
	text	   *error;
	TimestampTz now = RequireInstant(fcinfo, 2, "now");
	Datum		values[5];
	bool		dead;

	if (PG_ARGISNULL(1) || VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("error must not be %s", PG_ARGISNULL(1) ? "null" : "empty"),
				 errhint("Pass what went wrong, as the delivery service reported it.")));
	error = PG_GETARG_TEXT_PP(1);

	values[0] = Int64GetDatum(message_id);
	values[1] = PointerGetDatum(error);
	values[2] = TimestampTzGetDatum(now);
	values[3] = Int32GetDatum(OutboxMaxAttempts);
	values[4] = IntervalFromUsecs((int64) RetryBackoffSeconds * USECS_PER_SEC);

	SPI_connect();
	ExecSaved(&FailStatement, values, NULL, false, 0);
	if (SPI_processed == 0)
		RequireClaimed(message_id, "failed");
	dead = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "dead") == 0;
	SPI_finish();

	PG_RETURN_TEXT_P(cstring_to_text(dead ? "dead" : "pending"));
}
