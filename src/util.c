/*
 * util.c
 *		What every SQL-callable function needs: statements prepared once per
 *		backend, argument checks that refuse bad input with one clear error
 *		before anything is written, the advisory locks that serialise
 *		work on one key, and the refusal of writes on a standby.
 */
#include "util.h"

#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/pg_proc.h"

/* Settings of this part (defined by UtilInit) */
int			EventRetentionMinutes = 180 * 24 * 60;
int			MaxClockSkewSeconds = 300;

/* The search path every statement of the extension is parsed and run under. */
#define PINNED_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * PinSearchPath sets search_path to pg_catalog, pg_temp in a GUC nest level
 * of its own and returns that level, for UnpinSearchPath; it returns 0 and
 * changes nothing when the path is pinned already (inside the SECURITY
 * DEFINER functions and the worker's units of work).  Every statement the
 * extension runs is parsed and executed under the pinned path, so a
 * caller's path (a role's or database's setting, a SET, a function
 * declared without SET search_path) can never put a function or operator of
 * another schema into one of them.
 */
int
PinSearchPath(void)
{
	int			level;

	if (strcmp(namespace_search_path, PINNED_SEARCH_PATH) == 0)
		return 0;
	level = NewGUCNestLevel();
	(void) set_config_option("search_path", PINNED_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

/*
 * UnpinSearchPath restores the search path PinSearchPath replaced, undoing
 * any setting changed since (a statement cannot carry a search path out of
 * the pinned region).  An error instead unwinds the level with its
 * (sub)transaction.
 */
void
UnpinSearchPath(int level)
{
	if (level > 0)
		AtEOXact_GUC(false, level);
}

/*
 * PrepareSaved prepares a saved statement and keeps its plan the first time
 * it is used.  Statements are schema-qualified, so a plan stays right
 * whatever the caller's search_path.
 */
static void
PrepareSaved(SavedStatement *statement)
{
	SPIPlanPtr	plan;

	if (statement->plan != NULL)
		return;

	plan = SPI_prepare_cursor(statement->sql, statement->nargs, statement->argtypes,
							  statement->cursor_options);
	if (plan == NULL)
		elog(ERROR, "could not prepare statement \"%s\": %s",
			 statement->sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep plan for statement \"%s\"", statement->sql);
	statement->plan = plan;
}

/*
 * ExecSaved runs a saved statement inside the caller's SPI connection,
 * under the pinned search path (the plan cache re-parses a statement under
 * the path it runs with, so the path is pinned for the execution too).
 */
int
ExecSaved(SavedStatement *statement, Datum *values, const char *nulls,
		  bool read_only, long count)
{
	int			level = PinSearchPath();
	int			rc;

	PrepareSaved(statement);
	rc = SPI_execute_plan(statement->plan, values, nulls, read_only, count);
	if (rc < 0)
		elog(ERROR, "statement \"%s\" failed: %s",
			 statement->sql, SPI_result_code_string(rc));
	UnpinSearchPath(level);
	return rc;
}

/*
 * OpenSavedCursor opens a read-only cursor over a saved statement inside the
 * caller's SPI connection, for readers that stop as soon as they have
 * enough rows.  The statement is planned as the cursor opens, under the
 * pinned search path; fetching plans nothing.
 */
Portal
OpenSavedCursor(SavedStatement *statement, Datum *values, const char *nulls)
{
	int			level = PinSearchPath();
	Portal		portal;

	PrepareSaved(statement);
	portal = SPI_cursor_open(NULL, statement->plan, values, nulls, true);
	UnpinSearchPath(level);
	return portal;
}

/*
 * ExecPinned runs a statement built at run time (DDL naming a partition, a
 * statement over tables found in the catalog) inside the caller's SPI
 * connection, under the pinned search path, and returns SPI's result code.
 */
int
ExecPinned(const char *sql, int nargs, Oid *argtypes, Datum *values, const char *nulls,
		   bool read_only, long count)
{
	int			level = PinSearchPath();
	int			rc;

	rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, read_only, count);
	if (rc < 0)
		elog(ERROR, "statement \"%s\" failed: %s", sql, SPI_result_code_string(rc));
	UnpinSearchPath(level);
	return rc;
}

/*
 * OpenPinnedCursor opens a cursor over a statement built at run time, for
 * the bulk readers that fetch in batches, planned under the pinned search
 * path.
 */
Portal
OpenPinnedCursor(const char *sql, int nargs, Oid *argtypes, Datum *values, bool read_only)
{
	int			level = PinSearchPath();
	Portal		portal;

	portal = SPI_cursor_open_with_args(NULL, sql, nargs, argtypes, values, NULL, read_only, 0);
	UnpinSearchPath(level);
	return portal;
}

/*
 * CheckIdentifierText refuses identifiers a shop never means to send: blank
 * ones, ones longer than MAX_IDENTIFIER_BYTES, and ones with control
 * characters (usually a template or encoding bug upstream).
 */
void
CheckIdentifierText(text *value, const char *argname)
{
	const char *data = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	bool		blank = true;

	if (len > MAX_IDENTIFIER_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s is too long", argname),
				 errdetail("The value is %d bytes long.", len),
				 errhint("Identifiers may be at most %d bytes long.", MAX_IDENTIFIER_BYTES)));

	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) data[i];

		if (c < 0x20 || c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s contains a control character", argname),
					 errdetail("Byte %d of the value is 0x%02x.", i + 1, c),
					 errhint("Identifiers are printable text without tabs or line breaks.")));
		if (c != ' ')
			blank = false;
	}

	if (blank)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname),
				 errdetail("The value given is \"%.*s\".", len, data),
				 errhint("Pass the identifier the shop uses for it.")));
}

/*
 * ClipForMessage returns value cut to at most MAX_IDENTIFIER_BYTES bytes
 * (on a character boundary, "..." marking the cut), for quoting a value the
 * caller passed in an error message: a hostile megabyte is not echoed back.
 */
char *
ClipForMessage(const char *value)
{
	int			len = strlen(value);
	int			kept = pg_mbcliplen(value, len, MAX_IDENTIFIER_BYTES);

	return kept == len ? pstrdup(value) : psprintf("%.*s...", kept, value);
}

/*
 * TextEqual reports whether two texts hold the same bytes.  Identifiers are
 * compared this way everywhere, whatever the database's collation.
 */
bool
TextEqual(text *left, text *right)
{
	int			len = VARSIZE_ANY_EXHDR(left);

	return len == VARSIZE_ANY_EXHDR(right) &&
		memcmp(VARDATA_ANY(left), VARDATA_ANY(right), len) == 0;
}

/*
 * TextCompare orders two texts by their bytes (the "C" collation's order),
 * returning <0, 0 or >0: the order identifiers are sorted in wherever rows
 * are locked one after another.
 */
int
TextCompare(text *left, text *right)
{
	int			left_len = VARSIZE_ANY_EXHDR(left);
	int			right_len = VARSIZE_ANY_EXHDR(right);
	int			cmp = memcmp(VARDATA_ANY(left), VARDATA_ANY(right), Min(left_len, right_len));

	if (cmp != 0)
		return cmp;
	return (left_len > right_len) - (left_len < right_len);
}

/*
 * RequireIdentifier returns argument argno as text, refusing NULL and every
 * value CheckIdentifierText refuses.
 */
text *
RequireIdentifier(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	text	   *value;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname),
				 errhint("Pass the identifier the shop uses for it.")));

	value = PG_GETARG_TEXT_PP(argno);
	CheckIdentifierText(value, argname);
	return value;
}

/*
 * OptionalIdentifier returns argument argno as text, or NULL when the caller
 * passed NULL; a value that is given must still be a valid identifier.
 */
text *
OptionalIdentifier(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	text	   *value;

	if (PG_ARGISNULL(argno))
		return NULL;
	value = PG_GETARG_TEXT_PP(argno);
	CheckIdentifierText(value, argname);
	return value;
}

/*
 * EventRetentionCutoff is the oldest instant an event may carry: anything
 * older would be dropped by the next maintenance run anyway.
 */
TimestampTz
EventRetentionCutoff(TimestampTz now)
{
	return now - (TimestampTz) EventRetentionMinutes * USECS_PER_MINUTE;
}

/*
 * RequireEventTime returns argument argno as an event time, refusing NULL,
 * infinity, instants beyond personalisation.max_clock_skew in the future and
 * instants older than personalisation.event_retention.
 */
TimestampTz
RequireEventTime(FunctionCallInfo fcinfo, int argno)
{
	TimestampTz occurred_at;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("occurred_at must not be null"),
				 errhint("Omit occurred_at to use now(), or pass the time the event happened.")));

	occurred_at = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_NOT_FINITE(occurred_at))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("occurred_at must be a finite timestamp"),
				 errdetail("The value given is \"%s\".", timestamptz_to_str(occurred_at)),
				 errhint("Pass the time the event happened.")));

	if (occurred_at > now + (TimestampTz) MaxClockSkewSeconds * USECS_PER_SEC)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("occurred_at %s is in the future", timestamptz_to_str(occurred_at)),
				 errdetail("The server's time is %s.", timestamptz_to_str(now)),
				 errhint("Events may be stamped at most personalisation.max_clock_skew (%d s) ahead of the server's clock.",
						 MaxClockSkewSeconds)));

	if (occurred_at < EventRetentionCutoff(now))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("occurred_at %s is older than the event retention", timestamptz_to_str(occurred_at)),
				 errdetail("Events older than %s are not kept.",
						   timestamptz_to_str(EventRetentionCutoff(now))),
				 errhint("Raise personalisation.event_retention to load older history.")));

	return occurred_at;
}

/*
 * RequireInstant returns argument argno as a finite timestamp, refusing NULL
 * and infinity: the "now" a caller may pass to act as of another time.
 */
TimestampTz
RequireInstant(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	TimestampTz value;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname),
				 errhint("Omit %s to use now(), or pass the time to act as of.", argname)));
	value = PG_GETARG_TIMESTAMPTZ(argno);
	if (TIMESTAMP_NOT_FINITE(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s must be a finite timestamp", argname),
				 errdetail("The value given is \"%s\".", timestamptz_to_str(value)),
				 errhint("Omit %s to use now(), or pass the time to act as of.", argname)));
	return value;
}

/*
 * RequirePositiveQuantity returns argument argno, a bigint so that a driver
 * binding int8 reaches the function, refusing NULL, zero, negative
 * quantities and quantities above MAX_QUANTITY, the most a cart line holds,
 * with the extension's own errors.
 */
int32
RequirePositiveQuantity(FunctionCallInfo fcinfo, int argno)
{
	int64		quantity;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("quantity must not be null"),
				 errhint("Pass a quantity of 1 or more.")));

	quantity = PG_GETARG_INT64(argno);
	if (quantity <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantity " INT64_FORMAT " is not positive", quantity),
				 errhint("Pass a quantity of 1 or more.")));
	if (quantity > MAX_QUANTITY)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("quantity " INT64_FORMAT " is out of range", quantity),
				 errdetail("A quantity is a whole number from 1 to %d.", MAX_QUANTITY),
				 errhint("Pass the number of units the visitor added or removed.")));
	return (int32) quantity;
}

/*
 * HashText returns a text value's hash, the second half of a lock key.
 */
int32
HashText(text *value)
{
	return DatumGetInt32(DirectFunctionCall1Coll(hashtext, C_COLLATION_OID, PointerGetDatum(value)));
}

/*
 * RequireWritableServer refuses a call that writes when this server is a
 * standby in recovery, naming the function, before PostgreSQL's generic
 * read-only error would: the shop's writes belong on the primary.
 */
void
RequireWritableServer(FunctionCallInfo fcinfo)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s cannot run on a standby", get_func_name(fcinfo->flinfo->fn_oid)),
				 errdetail("This server is in recovery: it replays its primary's changes and accepts no writes."),
				 errhint("Send this call to the primary server.")));
}

/*
 * JsonArgument returns argument argno, which is not null, as jsonb.  Each
 * jsonb-taking function has a text overload calling the same C function, so
 * that a string argument (a literal, or a driver's untyped parameter) is
 * parsed here rather than by jsonb's input function: a JSON syntax error
 * then says which argument it is in and what the function accepts, instead
 * of PostgreSQL's bare "invalid input syntax for type json".
 */
Jsonb *
JsonArgument(FunctionCallInfo fcinfo, int argno, const char *argname, const char *hint)
{
	Oid			declared = InvalidOid;
	char	   *source;
	Datum		parsed = (Datum) 0;
	MemoryContext caller = CurrentMemoryContext;

	if (fcinfo->flinfo != NULL && OidIsValid(fcinfo->flinfo->fn_oid))
	{
		HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));

		if (HeapTupleIsValid(tuple))
		{
			Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tuple);

			if (argno < proc->pronargs)
				declared = proc->proargtypes.values[argno];
			ReleaseSysCache(tuple);
		}
	}
	if (declared != TEXTOID)
		return PG_GETARG_JSONB_P(argno);

	source = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	PG_TRY();
	{
		parsed = DirectFunctionCall1(jsonb_in, CStringGetDatum(source));
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(caller);
		error = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(error->sqlerrcode),
				 errmsg("%s is not valid JSON: \"%s\"", argname, ClipForMessage(source)),
				 errdetail("%s", error->detail ? error->detail : error->message),
				 errhint("%s", hint)));
	}
	PG_END_TRY();
	return DatumGetJsonbP(parsed);
}

/*
 * UtilInit defines the settings of this part.
 */
void
UtilInit(void)
{
	DefineCustomIntVariable("personalisation.event_retention",
							"How long events, their idempotency keys and idle sessions are kept.",
							"maintain_partitions() drops day partitions wholly older than this, expires "
							"sessions last seen before it and the anonymous profiles they leave unreachable; "
							"events older than this are refused.",
							&EventRetentionMinutes,
							180 * 24 * 60, 24 * 60, INT_MAX,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.max_clock_skew",
							"How far in the future an event's occurred_at may lie.",
							"Events stamped later than now() plus this are refused as a clock error; so is a now that a caller other than the extension's owner passes to the queue functions further than this from the transaction's time.",
							&MaxClockSkewSeconds,
							300, 0, 7 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

/*
 * IntervalFromUsecs returns an interval datum of the given length, for
 * passing a time-span setting to a statement.
 */
Datum
IntervalFromUsecs(int64 usecs)
{
	Interval   *span = palloc0(sizeof(Interval));

	span->time = usecs;
	return IntervalPGetDatum(span);
}

/*
 * ExtensionSchemaRelid returns the OID of relation `name` in the
 * extension's schema, or InvalidOid when there is none.
 */
Oid
ExtensionSchemaRelid(const char *name)
{
	return get_relname_relid(name, get_namespace_oid("personalisation", false));
}

/*
 * Most relcache listeners the parts register.  A backend has only ten
 * relcache callback slots (PostgreSQL 15) for the server and every loaded
 * library together, so the extension takes one and dispatches inside it.
 */
#define MAX_RELCACHE_LISTENERS 4

static RelcacheCallbackFunction RelcacheListeners[MAX_RELCACHE_LISTENERS];
static int	RelcacheListenerCount = 0;

/*
 * DispatchRelcacheInvalidation is the extension's one relcache callback: it
 * hands each invalidation to every part's listener.
 */
static void
DispatchRelcacheInvalidation(Datum arg, Oid relid)
{
	for (int i = 0; i < RelcacheListenerCount; i++)
		RelcacheListeners[i] (arg, relid);
}

/*
 * RegisterRelcacheListener adds a part's relcache listener, registering the
 * extension's single relcache callback with the server on the first call.
 */
void
RegisterRelcacheListener(RelcacheCallbackFunction listener)
{
	if (RelcacheListenerCount >= MAX_RELCACHE_LISTENERS)
		elog(ERROR, "too many personalisation relcache listeners");
	if (RelcacheListenerCount == 0)
		CacheRegisterRelcacheCallback(DispatchRelcacheInvalidation, (Datum) 0);
	RelcacheListeners[RelcacheListenerCount++] = listener;
}
