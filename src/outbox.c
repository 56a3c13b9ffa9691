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
 *
 *		Claims and acknowledgements are a delivery worker's hot path: they
 *		walk the queue index and rewrite the rows directly (direct.c), and
 *		only the exit rules and consent, which journey_run_checks states for
 *		run_due too, are asked of SQL, once per batch.
 *
 *		A delivery worker is trusted with delivery, not with the clock nor
 *		with other workers' leases: a "now" more than
 *		personalisation.max_clock_skew away from the transaction's time is
 *		refused unless the calling role owns the extension, and an
 *		acknowledgement or failure names the consumer that holds the claim.
 */
#include "outbox.h"

#include "direct.h"
#include "journey.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* Settings of this part (defined by OutboxInit) */
int			MaxLeaseSeconds = 3600;
int			OutboxMaxAttempts = 5;
int			RetryBackoffSeconds = 60;

PG_FUNCTION_INFO_V1(claim_messages);
PG_FUNCTION_INFO_V1(ack_message);
PG_FUNCTION_INFO_V1(ack_messages);
PG_FUNCTION_INFO_V1(fail_message);

/* Longest consumer name accepted, in bytes. */
#define MAX_CONSUMER_BYTES 200

/* Most messages one claim_messages call hands out. */
#define MAX_CLAIM 10000

/* Longest error text fail_message keeps, in bytes, the cut marker included. */
#define MAX_ERROR_BYTES 4096

static SavedStatement WithdrawStatement = {
	"UPDATE personalisation.outbox SET status = $3, reason = $4, finished_at = $5"
	" WHERE profile_id = $1 AND run_id = ANY ($2) AND status = 'pending'",
	5, {INT8OID, INT8ARRAYOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}, KEYED_PLAN
};

/*
 * $1 profile ids, $2 run ids (one pair per message, in order): what the
 * runs' exit rules and the channels' consent say now, one row per pair in
 * the same order; NULLs for a run that is gone.
 */
static SavedStatement VerdictStatement = {
	"SELECT c.exit_reason, c.push_refusal, c.email_refusal"
	"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) WITH ORDINALITY"
	"       AS m (profile_id, run_id, n)"
	"  LEFT JOIN personalisation.journey_run_checks c"
	"         ON c.profile_id = m.profile_id AND c.run_id = m.run_id"
	" ORDER BY m.n",
	2, {INT8ARRAYOID, INT8ARRAYOID}, KEYED_PLAN
};

/* The first of the given messages that is neither claimed nor delivered now. */
static SavedStatement UnackedStatement = {
	"SELECT m FROM pg_catalog.unnest($1) AS m"
	" WHERE NOT EXISTS (SELECT FROM personalisation.outbox o"
	"                    WHERE o.message_id = m AND o.status = 'delivered') LIMIT 1",
	1, {INT8ARRAYOID}, KEYED_PLAN
};

/* $1 message, $2 error, $3 now, $4 max attempts, $5 backoff base, $6 claimant (NULL: any). */
static SavedStatement FailStatement = {
	"UPDATE personalisation.outbox"
	"   SET status = CASE WHEN attempts >= $4 THEN 'dead' ELSE 'pending' END,"
	"       available_at = CASE WHEN attempts >= $4 THEN available_at"
	"                      ELSE $3 + $5 * pg_catalog.power(2::float8, least(attempts - 1, 20)) END,"
	"       finished_at = CASE WHEN attempts >= $4 THEN $3 END,"
	"       last_error = $2, lease_until = NULL"
	" WHERE message_id = $1 AND status = 'claimed'"
	"   AND ($6::pg_catalog.text IS NULL OR claimed_by OPERATOR(pg_catalog.=) $6::pg_catalog.text)"
	" RETURNING status",
	6, {INT8OID, TEXTOID, TIMESTAMPTZOID, INT4OID, INTERVALOID, TEXTOID}, KEYED_PLAN
};

static SavedStatement MessageStatusStatement = {
	"SELECT status, claimed_by FROM personalisation.outbox WHERE message_id = $1",
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
 * CallerOwnsExtension reports whether the role that called in (the outer
 * user: these functions run as the extension's owner) owns the extension,
 * as a superuser or a member of the owning role does.
 */
static bool
CallerOwnsExtension(void)
{
	return pg_extension_ownercheck(get_extension_oid("personalisation", false), GetOuterUserId());
}

/*
 * RequireSenderClock returns argument argno as the instant a claim,
 * acknowledgement or failure acts as of.  A delivery worker runs on the
 * server's clock: an instant more than personalisation.max_clock_skew away
 * from the transaction's time, which would let it take a message another
 * consumer still holds or move a retry by years, is refused unless the
 * caller owns the extension (tests and backfills drive time explicitly).
 */
static TimestampTz
RequireSenderClock(FunctionCallInfo fcinfo, int argno)
{
	TimestampTz now = RequireInstant(fcinfo, argno, "now");
	TimestampTz server = GetCurrentTransactionStartTimestamp();
	TimestampTz skew = (TimestampTz) MaxClockSkewSeconds * USECS_PER_SEC;

	if ((now > server + skew || now < server - skew) && !CallerOwnsExtension())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("now %s is more than personalisation.max_clock_skew away from the server's clock",
						timestamptz_to_str(now)),
				 errdetail("The transaction's time is %s and personalisation.max_clock_skew is %d s; only the extension's owner may act as of another time.",
						   timestamptz_to_str(server), MaxClockSkewSeconds),
				 errhint("Omit now to use the server's clock.")));
	return now;
}

/*
 * RequireConsumer returns argument argno as a consumer name (a copy),
 * refusing NULL and names that are no identifier or too long.
 */
static char *
RequireConsumer(FunctionCallInfo fcinfo, int argno)
{
	text	   *consumer = RequireIdentifier(fcinfo, argno, "consumer");

	if (VARSIZE_ANY_EXHDR(consumer) > MAX_CONSUMER_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("consumer is too long"),
				 errhint("Consumer names may be at most %d bytes long.", MAX_CONSUMER_BYTES)));
	return text_to_cstring(consumer);
}

/*
 * ClaimantArgument returns the consumer an acknowledgement or failure
 * names in argument argno, the claim it must match, or NULL when any claim
 * will do.  A declaration without the argument (a database still at
 * 0.1.0) checks no claimant; a NULL consumer is the owner's alone, so that
 * one delivery worker cannot settle another's lease.
 */
static char *
ClaimantArgument(FunctionCallInfo fcinfo, int argno, const char *function)
{
	if (PG_NARGS() <= argno)
		return NULL;
	if (PG_ARGISNULL(argno))
	{
		if (CallerOwnsExtension())
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s needs the consumer that claimed the message", function),
				 errdetail("Only the extension's owner may omit consumer."),
				 errhint("Pass consumer => the name this delivery worker gave claim_messages.")));
	}
	return RequireConsumer(fcinfo, argno);
}

/*
 * RequireClaimant refuses to settle message_id, claimed by claimed_by (NULL
 * when no consumer is recorded), in the name of another consumer: verb is
 * what the caller tried, acknowledge or fail.
 */
static void
RequireClaimant(int64 message_id, const char *claimed_by, const char *consumer, const char *verb)
{
	if (consumer == NULL || (claimed_by != NULL && strcmp(claimed_by, consumer) == 0))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("message " INT64_FORMAT " is claimed by %s, not by consumer \"%s\"", message_id,
					claimed_by == NULL ? "an unknown consumer" : psprintf("consumer \"%s\"", claimed_by),
					consumer),
			 errdetail("The lease of consumer \"%s\" lapsed and the message was claimed again, or it never held it.",
					   consumer),
			 errhint("A consumer can only %s the messages claim_messages handed to it under a lease it still holds.",
					 verb)));
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
 * RequireClaimed explains why fail_message could not fail a message, or
 * ack_message acknowledge it: unknown, in another state than claimed, or
 * claimed by another consumer than the one named (consumer, NULL when any
 * will do), or claimed again meanwhile.  It returns only for an
 * acknowledgement of a message already delivered: a retried ack.
 */
static void
RequireClaimed(int64 message_id, const char *action, const char *consumer)
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
	if (strcmp(status, "claimed") == 0)
		RequireClaimant(message_id, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), consumer,
						strcmp(action, "acknowledged") == 0 ? "acknowledge" : "fail");
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("message " INT64_FORMAT " cannot be %s", message_id, action),
			 strcmp(status, "claimed") == 0
			 ? errdetail("The message was claimed again while it was being %s.", action)
			 : errdetail("The message is %s, not claimed.", status),
			 errhint("Only a message handed out by claim_messages, and not yet acknowledged or failed, can be %s.",
					 action)));
}

/* The outbox columns claims and acknowledgements read or set. */
typedef struct OutboxColumns
{
	AttrNumber	message_id;
	AttrNumber	profile_id;
	AttrNumber	run_id;
	AttrNumber	channel;
	AttrNumber	status;
	AttrNumber	attempts;
	AttrNumber	claimed_by;
	AttrNumber	lease_until;
	AttrNumber	finished_at;
	AttrNumber	reason;
	AttrNumber	last_error;
} OutboxColumns;

/*
 * FindOutboxColumns looks the outbox's columns up by name once per call,
 * so that a column an upgrade adds shifts nothing.
 */
static void
FindOutboxColumns(DirectTable *outbox, OutboxColumns *columns)
{
	columns->message_id = DirectColumn(outbox, "message_id");
	columns->profile_id = DirectColumn(outbox, "profile_id");
	columns->run_id = DirectColumn(outbox, "run_id");
	columns->channel = DirectColumn(outbox, "channel");
	columns->status = DirectColumn(outbox, "status");
	columns->attempts = DirectColumn(outbox, "attempts");
	columns->claimed_by = DirectColumn(outbox, "claimed_by");
	columns->lease_until = DirectColumn(outbox, "lease_until");
	columns->finished_at = DirectColumn(outbox, "finished_at");
	columns->reason = DirectColumn(outbox, "reason");
	columns->last_error = DirectColumn(outbox, "last_error");
}

/*
 * TextIs reports whether a non-null text Datum equals the given string.
 */
static bool
TextIs(Datum value, const char *expected)
{
	text	   *actual = DatumGetTextPP(value);
	size_t		length = strlen(expected);

	return VARSIZE_ANY_EXHDR(actual) == length && memcmp(VARDATA_ANY(actual), expected, length) == 0;
}

/*
 * SetText sets column `column` of a row's values to a string.
 */
static void
SetText(Datum *values, bool *nulls, AttrNumber column, const char *string)
{
	nulls[column - 1] = false;
	values[column - 1] = CStringGetTextDatum(string);
}

/*
 * SetInstant sets column `column` of a row's values to an instant.
 */
static void
SetInstant(Datum *values, bool *nulls, AttrNumber column, TimestampTz instant)
{
	nulls[column - 1] = false;
	values[column - 1] = TimestampTzGetDatum(instant);
}

/*
 * SetNull sets column `column` of a row's values to NULL.
 */
static void
SetNull(Datum *values, bool *nulls, AttrNumber column)
{
	nulls[column - 1] = true;
	values[column - 1] = (Datum) 0;
}

/* A claim under way: who claims, until when, and the outbox it walks. */
typedef struct Claim
{
	DirectTable outbox;
	OutboxColumns columns;
	Snapshot	snapshot;
	const char *consumer;
	TimestampTz now;
	TimestampTz lease_until;
} Claim;

/*
 * Claimable reports whether the queue row the claim's outbox->row holds may
 * be handed out: pending, or claimed under a lease that has lapsed (the
 * index already holds only queued messages due by now).
 */
static bool
Claimable(Claim *claim)
{
	TupleTableSlot *row = claim->outbox.row;
	bool		isnull;
	Datum		status = slot_getattr(row, claim->columns.status, &isnull);
	Datum		lease_until;

	if (TextIs(status, "pending"))
		return true;
	if (!TextIs(status, "claimed"))
		return false;
	lease_until = slot_getattr(row, claim->columns.lease_until, &isnull);
	return !isnull && DatumGetTimestampTz(lease_until) <= claim->now;
}

/*
 * FetchVerdicts asks journey_run_checks, in one statement, what the exit
 * rules and consent say about the runs of the batch's messages, and
 * returns per message why it may not go out (a copy, or NULL when it may),
 * with *cancel set when that is an exit rule rather than a refusal.
 */
static char **
FetchVerdicts(Claim *claim, HeapTuple *rows, int count, bool *cancel)
{
	TupleDesc	desc = RelationGetDescr(claim->outbox.rel);
	Datum	   *profile_ids = palloc(sizeof(Datum) * count);
	Datum	   *run_ids = palloc(sizeof(Datum) * count);
	char	  **verdicts = palloc(sizeof(char *) * count);
	Datum		values[2];
	bool		isnull;

	for (int i = 0; i < count; i++)
	{
		profile_ids[i] = heap_getattr(rows[i], claim->columns.profile_id, desc, &isnull);
		run_ids[i] = heap_getattr(rows[i], claim->columns.run_id, desc, &isnull);
	}
	values[0] = PointerGetDatum(construct_array(profile_ids, count, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(run_ids, count, INT8OID, 8, true, TYPALIGN_DOUBLE));
	ExecSaved(&VerdictStatement, values, NULL, false, 0);
	if (SPI_processed != (uint64) count)
		elog(ERROR, "journey_run_checks answered %d messages with " UINT64_FORMAT " rows",
			 count, SPI_processed);
	for (int i = 0; i < count; i++)
	{
		HeapTuple	checks = SPI_tuptable->vals[i];
		bool		push = TextIs(heap_getattr(rows[i], claim->columns.channel, desc, &isnull), "push");
		char	   *exit_reason = SPI_getvalue(checks, SPI_tuptable->tupdesc, 1);

		cancel[i] = exit_reason != NULL;
		verdicts[i] = exit_reason != NULL ? exit_reason
			: SPI_getvalue(checks, SPI_tuptable->tupdesc, push ? 2 : 3);
	}
	SPI_freetuptable(SPI_tuptable);
	return verdicts;
}

/*
 * TakeMessage rewrites a picked message (row, as the claim's snapshot saw
 * it) as claimed by the consumer, one attempt more, leased until the
 * claim's lease ends; or, when its lease lapsed with every attempt spent,
 * as dead.  It returns the claimed row version, or NULL when the message
 * went dead or another transaction got to it first.  Taking the row at
 * once, before its exit rules and consent are asked about, makes the
 * other consumers pass over it, as a row lock would.
 */
static HeapTuple
TakeMessage(Claim *claim, HeapTuple row)
{
	TupleDesc	desc = RelationGetDescr(claim->outbox.rel);
	OutboxColumns *c = &claim->columns;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	HeapTuple	taken;
	int32		attempts;
	bool		dead;

	heap_deform_tuple(row, desc, values, nulls);
	attempts = DatumGetInt32(values[c->attempts - 1]);
	dead = TextIs(values[c->status - 1], "claimed") && attempts >= OutboxMaxAttempts;
	if (dead)
	{
		SetText(values, nulls, c->status, "dead");
		SetNull(values, nulls, c->lease_until);
		SetInstant(values, nulls, c->finished_at, claim->now);
		SetNull(values, nulls, c->reason);
		SetText(values, nulls, c->last_error,
				psprintf("lease of %s lapsed on attempt %d",
						 nulls[c->claimed_by - 1] ? "an unknown consumer" : TextDatumGetCString(values[c->claimed_by - 1]), attempts));
	}
	else
	{
		SetText(values, nulls, c->status, "claimed");
		values[c->attempts - 1] = Int32GetDatum(attempts + 1);
		SetText(values, nulls, c->claimed_by, claim->consumer);
		SetInstant(values, nulls, c->lease_until, claim->lease_until);
		SetNull(values, nulls, c->finished_at);
		SetNull(values, nulls, c->reason);
	}
	if (!UpdateRowUnlessBusy(&claim->outbox, claim->snapshot, &row->t_self, values, nulls) || dead)
		return NULL;
	taken = ExecCopySlotHeapTuple(claim->outbox.slot);
	taken->t_self = claim->outbox.slot->tts_tid;
	return taken;
}

/*
 * WithdrawMessage turns a message this claim took (original: the row
 * before; taken: the claimed version) into one that is not sent:
 * cancelled, when its run's exit rules stop it, or suppressed, when its
 * channel's consent is gone, with the reason.  Its attempts and lease are
 * as before the claim.
 */
static void
WithdrawMessage(Claim *claim, HeapTuple original, HeapTuple taken, const char *reason, bool cancel)
{
	TupleDesc	desc = RelationGetDescr(claim->outbox.rel);
	OutboxColumns *c = &claim->columns;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);

	/* the claimed version was written by an earlier command of this call */
	CommandCounterIncrement();
	heap_deform_tuple(original, desc, values, nulls);
	SetText(values, nulls, c->status, cancel ? "cancelled" : "suppressed");
	SetText(values, nulls, c->reason, reason);
	SetNull(values, nulls, c->lease_until);
	SetInstant(values, nulls, c->finished_at, claim->now);
	if (!UpdateRowUnlessBusy(&claim->outbox, claim->snapshot, &taken->t_self, values, nulls))
		elog(ERROR, "could not withdraw message claimed in this transaction");
}

/*
 * RequireClaimSize returns argument argno as the number of messages a claim
 * hands out.  The parameter is a bigint, so that a driver binding int8
 * reaches claim_messages; a 0.1.0 database still declares it int, whose
 * datum reads the same as an int8 one.  NULL, values below 1 and values
 * above MAX_CLAIM are refused with the extension's own errors.
 */
static int32
RequireClaimSize(FunctionCallInfo fcinfo, int argno)
{
	int64		max_messages;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_messages must not be null"),
				 errhint("Pass a number of messages from 1 to %d.", MAX_CLAIM)));
	max_messages = PG_GETARG_INT64(argno);
	if (max_messages < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_messages " INT64_FORMAT " is not positive", max_messages),
				 errhint("Pass a number of messages from 1 to %d.", MAX_CLAIM)));
	if (max_messages > MAX_CLAIM)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("max_messages " INT64_FORMAT " is out of range", max_messages),
				 errdetail("A claim hands out at most %d messages.", MAX_CLAIM),
				 errhint("Pass a number of messages from 1 to %d.", MAX_CLAIM)));
	return (int32) max_messages;
}

/*
 * claim_messages hands out up to max_messages available messages to the
 * consumer, each leased until now + lease, oldest first.  Concurrent
 * consumers never receive the same message: a row another transaction is
 * claiming, or has changed since this claim's snapshot, is skipped.
 * Messages that may no longer be sent are cancelled or suppressed on the
 * way and not handed out; the claim then reaches further into the queue so
 * that the caller still gets what is available.
 */
Datum
claim_messages(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32		max_messages;
	Interval   *lease;
	Claim		claim;
	Relation	queue;
	IndexScanDesc scan;
	ScanKeyData due;
	MemoryContext batch_context;
	int			claimed = 0;
	bool		exhausted = false;

	RequireWritableServer(fcinfo);
	claim.consumer = RequireConsumer(fcinfo, 0);
	max_messages = RequireClaimSize(fcinfo, 1);
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
	if (lease->time > (int64) MaxLeaseSeconds * USECS_PER_SEC && !CallerOwnsExtension())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("lease %s is longer than personalisation.max_lease",
						DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(lease)))),
				 errdetail("personalisation.max_lease is %d s; only the extension's owner may claim for longer.",
						   MaxLeaseSeconds),
				 errhint("Claim for at most personalisation.max_lease, and claim again for the messages still to deliver.")));
	claim.now = RequireSenderClock(fcinfo, 3);
	claim.lease_until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
																TimestampTzGetDatum(claim.now),
																IntervalPGetDatum(lease)));

	InitMaterializedSRF(fcinfo, 0);
	batch_context = AllocSetContextCreate(CurrentMemoryContext, "claim batch", ALLOCSET_DEFAULT_SIZES);

	SPI_connect();
	OpenDirectTable(&claim.outbox, DIRECT_OUTBOX, true);
	FindOutboxColumns(&claim.outbox, &claim.columns);
	claim.snapshot = DirectSnapshot();
	queue = OpenDirectIndex(DIRECT_OUTBOX_QUEUE_INDEX);
	ScanKeyEntryInitialize(&due, 0, 1, BTLessEqualStrategyNumber, InvalidOid, InvalidOid,
						   F_TIMESTAMPTZ_LE, TimestampTzGetDatum(claim.now));
	scan = index_beginscan(claim.outbox.rel, queue, claim.snapshot, 1, 0);
	index_rescan(scan, &due, 1, NULL, 0);

	/*
	 * Batches of what is still wanted: taken as the scan finds them (the
	 * scan runs in this context, where it keeps its state), then judged in
	 * one statement and withdrawn where the judgement says so (in the
	 * batch's context).
	 */
	while (claimed < max_messages && !exhausted)
	{
		MemoryContext caller_context;
		int			wanted = max_messages - claimed;
		HeapTuple  *originals = MemoryContextAlloc(batch_context, sizeof(HeapTuple) * wanted);
		HeapTuple  *taken = MemoryContextAlloc(batch_context, sizeof(HeapTuple) * wanted);
		bool	   *cancel = MemoryContextAlloc(batch_context, sizeof(bool) * wanted);
		char	  **verdicts;
		int			picked = 0;

		while (picked < wanted)
		{
			if (!index_getnext_slot(scan, ForwardScanDirection, claim.outbox.row))
			{
				exhausted = true;
				break;
			}
			if (!Claimable(&claim) || RowIsBusy(&claim.outbox))
				continue;
			caller_context = MemoryContextSwitchTo(batch_context);
			originals[picked] = ExecCopySlotHeapTuple(claim.outbox.row);
			taken[picked] = TakeMessage(&claim, originals[picked]);
			MemoryContextSwitchTo(caller_context);
			if (taken[picked] != NULL)
				picked++;
		}
		caller_context = MemoryContextSwitchTo(batch_context);
		if (picked > 0)
		{
			verdicts = FetchVerdicts(&claim, originals, picked, cancel);
			for (int i = 0; i < picked; i++)
			{
				if (verdicts[i] != NULL)
				{
					WithdrawMessage(&claim, originals[i], taken[i], verdicts[i], cancel[i]);
					continue;
				}
				tuplestore_puttuple(rsinfo->setResult, taken[i]);
				claimed++;
			}
		}
		MemoryContextSwitchTo(caller_context);
		MemoryContextReset(batch_context);
	}

	index_endscan(scan);
	index_close(queue, NoLock);
	UnregisterSnapshot(claim.snapshot);
	CloseDirectTable(&claim.outbox);
	SPI_finish();
	MemoryContextDelete(batch_context);

	return (Datum) 0;
}

/*
 * An acknowledgement under way: when, in whose name (NULL: any claim), and
 * the outbox's columns.
 */
typedef struct Acknowledgement
{
	OutboxColumns columns;
	TimestampTz now;
	const char *consumer;
} Acknowledgement;

/*
 * MarkDelivered is AckMessages's RowRewriter: a claimed message becomes
 * delivered; any other is left alone.  A message another consumer holds is
 * refused, which undoes the whole acknowledgement.
 */
static bool
MarkDelivered(DirectTable *outbox, void *arg, Datum *values, bool *nulls)
{
	Acknowledgement *ack = (Acknowledgement *) arg;
	AttrNumber	claimed_by = ack->columns.claimed_by;

	if (!TextIs(values[ack->columns.status - 1], "claimed"))
		return false;
	if (ack->consumer != NULL)
		RequireClaimant(DatumGetInt64(values[ack->columns.message_id - 1]),
						nulls[claimed_by - 1] ? NULL : TextDatumGetCString(values[claimed_by - 1]),
						ack->consumer, "acknowledge");
	SetText(values, nulls, ack->columns.status, "delivered");
	SetInstant(values, nulls, ack->columns.finished_at, ack->now);
	SetNull(values, nulls, ack->columns.lease_until);
	return true;
}

/*
 * CompareMessageIds orders message ids for qsort.
 */
static int
CompareMessageIds(const void *a, const void *b)
{
	int64		x = DatumGetInt64(*(const Datum *) a);
	int64		y = DatumGetInt64(*(const Datum *) b);

	return (x > y) - (x < y);
}

/*
 * AckMessages marks the claimed messages among message_ids (an int8[]) as
 * delivered and returns how many it marked; with a consumer, each must be
 * that consumer's claim.  Ids of messages already delivered are retries
 * and change nothing; any other id (unknown, not claimed, or another
 * consumer's) is refused, and then nothing is marked.  The rows are rewritten
 * in ascending id order, each once, so that two workers acknowledging
 * overlapping batches cannot deadlock.
 */
static int
AckMessages(Datum message_ids, TimestampTz now, const char *consumer)
{
	static const RegProcedure eqprocs[1] = {F_INT8EQ};
	ArrayType  *array = DatumGetArrayTypeP(message_ids);
	DirectTable outbox;
	Acknowledgement ack;
	Snapshot	snapshot;
	Datum	   *ids;
	int			count;
	int			distinct = 0;
	int			acknowledged = 0;
	bool		isnull;

	deconstruct_array(array, INT8OID, 8, true, TYPALIGN_DOUBLE, &ids, NULL, &count);
	qsort(ids, count, sizeof(Datum), CompareMessageIds);
	for (int i = 0; i < count; i++)
		if (distinct == 0 || DatumGetInt64(ids[distinct - 1]) != DatumGetInt64(ids[i]))
			ids[distinct++] = ids[i];

	OpenDirectTable(&outbox, DIRECT_OUTBOX, true);
	FindOutboxColumns(&outbox, &ack.columns);
	ack.now = now;
	ack.consumer = consumer;
	snapshot = DirectSnapshot();
	for (int i = 0; i < distinct; i++)
		if (UpdateByPrimaryKey(&outbox, snapshot, 1, &ids[i], eqprocs, MarkDelivered, &ack))
			acknowledged++;
	UnregisterSnapshot(snapshot);
	CloseDirectTable(&outbox);

	if (acknowledged < distinct)
	{
		Datum		values[1] = {message_ids};

		SPI_connect();
		ExecSaved(&UnackedStatement, values, NULL, false, 1);
		if (SPI_processed > 0)
			RequireClaimed(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
						   "acknowledged", NULL);
		SPI_finish();
	}
	return acknowledged;
}

/*
 * ack_message records that the claimed message was delivered.  It returns
 * true, or false when the message was already acknowledged (a retried ack
 * changes nothing); acknowledging a message that is not claimed, or that
 * another consumer than the one named holds, is refused.  Its arguments
 * are (message_id, now) as 0.1.0 declares it, and (message_id, now,
 * consumer) from 0.2.0 on.
 */
Datum
ack_message(PG_FUNCTION_ARGS)
{
	Datum		message_id = Int64GetDatum(RequireMessageId(fcinfo, 0));
	TimestampTz now = RequireSenderClock(fcinfo, 1);
	char	   *consumer = ClaimantArgument(fcinfo, 2, "ack_message");

	RequireWritableServer(fcinfo);
	PG_RETURN_BOOL(AckMessages(PointerGetDatum(construct_array(&message_id, 1, INT8OID, 8, true,
															   TYPALIGN_DOUBLE)), now, consumer) == 1);
}

/*
 * ack_messages is ack_message for a batch: it records every claimed
 * message of the array as delivered, in one statement, and returns how
 * many it marked.  A NULL element, a message neither claimed nor already
 * delivered, or one another consumer than the one named holds, is refused
 * and nothing is marked.  Its arguments are (message_ids, now) as 0.1.0
 * declares it, and (message_ids, now, consumer) from 0.2.0 on.
 */
Datum
ack_messages(PG_FUNCTION_ARGS)
{
	ArrayType  *message_ids;
	TimestampTz now = RequireSenderClock(fcinfo, 1);
	char	   *consumer = ClaimantArgument(fcinfo, 2, "ack_messages");

	RequireWritableServer(fcinfo);
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

	PG_RETURN_INT32(AckMessages(PointerGetDatum(message_ids), now, consumer));
}

/*
 * ErrorToKeep returns the error text fail_message stores: the given text
 * (error, a text Datum, possibly toasted), or, when it is longer than
 * MAX_ERROR_BYTES, its head cut on a character boundary and followed by a
 * marker giving the full length, MAX_ERROR_BYTES in all.  Only the head of
 * a long value is detoasted.  A delivery service's error is kept for the
 * operator and repeated in every later claim and in export_customer, so
 * its length must not grow with what the service sent back.
 */
static text *
ErrorToKeep(Datum error)
{
	Size		length = toast_raw_datum_size(error) - VARHDRSZ;
	text	   *head;
	char	   *marker;
	int			kept;
	StringInfoData clipped;

	if (length <= MAX_ERROR_BYTES)
		return DatumGetTextPP(error);
	marker = psprintf(" [cut: %zu bytes in all]", length);
	head = DatumGetTextPSlice(error, 0, MAX_ERROR_BYTES);
	kept = pg_mbcliplen(VARDATA_ANY(head), VARSIZE_ANY_EXHDR(head), MAX_ERROR_BYTES - (int) strlen(marker));
	initStringInfo(&clipped);
	appendBinaryStringInfo(&clipped, VARDATA_ANY(head), kept);
	appendStringInfoString(&clipped, marker);
	return cstring_to_text_with_len(clipped.data, clipped.len);
}

/*
 * fail_message records that delivering the claimed message failed with the
 * given error (kept up to MAX_ERROR_BYTES, see ErrorToKeep).  The message
 * is retried after personalisation.retry_backoff, doubled for each earlier
 * attempt, or dead-lettered once it has been claimed
 * personalisation.max_attempts times; the error is kept either way.  It
 * returns the message's new status, pending or dead.  A message another
 * consumer than the one named holds is refused and left as it was.  Its
 * arguments are (message_id, error, now) as 0.1.0 declares it, and
 * (message_id, error, now, consumer) from 0.2.0 on.
 */
Datum
fail_message(PG_FUNCTION_ARGS)
{
	int64		message_id = RequireMessageId(fcinfo, 0);
	TimestampTz now = RequireSenderClock(fcinfo, 2);
	char	   *consumer = ClaimantArgument(fcinfo, 3, "fail_message");
	Datum		values[6];
	bool		dead;

	RequireWritableServer(fcinfo);
	if (PG_ARGISNULL(1) || toast_raw_datum_size(PG_GETARG_DATUM(1)) == VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("error must not be %s", PG_ARGISNULL(1) ? "null" : "empty"),
				 errhint("Pass what went wrong, as the delivery service reported it.")));

	values[0] = Int64GetDatum(message_id);
	values[1] = PointerGetDatum(ErrorToKeep(PG_GETARG_DATUM(1)));
	values[2] = TimestampTzGetDatum(now);
	values[3] = Int32GetDatum(OutboxMaxAttempts);
	values[4] = IntervalFromUsecs((int64) RetryBackoffSeconds * USECS_PER_SEC);
	values[5] = consumer == NULL ? (Datum) 0 : CStringGetTextDatum(consumer);

	SPI_connect();
	ExecSaved(&FailStatement, values, consumer == NULL ? "     n" : NULL, false, 0);
	if (SPI_processed == 0)
		RequireClaimed(message_id, "failed", consumer);
	dead = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "dead") == 0;
	SPI_finish();

	PG_RETURN_TEXT_P(cstring_to_text(dead ? "dead" : "pending"));
}

/*
 * OutboxInit defines the settings of this part.
 */
void
OutboxInit(void)
{
	DefineCustomIntVariable("personalisation.max_lease",
							"The longest lease a delivery worker may take in claim_messages.",
							"A caller other than the extension's owner asking for a longer lease is refused, so that no sender can hold messages out of the other consumers' reach.",
							&MaxLeaseSeconds,
							3600, 1, 7 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.max_attempts",
							"How many times an outbox message is handed to a worker before it is dead-lettered.",
							NULL,
							&OutboxMaxAttempts,
							5, 1, 100,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.retry_backoff",
							"How long a failed message waits before its first retry; each retry waits twice as long.",
							NULL,
							&RetryBackoffSeconds,
							60, 1, 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}
