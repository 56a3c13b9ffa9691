/*
 * bulk.c
 *		track_events: many events in one call, for a backfill or a consumer
 *		writing a batch.  Each element of the array is tracked exactly as the
 *		typed function of its kind tracks it (track_page_view, track_cart_add,
 *		track_cart_remove, track_purchase, set_consent): the same checks, the
 *		same idempotency on event_id and order_id, in the order given, in the
 *		caller's transaction.  A refused element fails the whole call, which
 *		then leaves nothing behind, and its error names the element.  The
 *		call saves what a statement per event costs (a round trip, a parse,
 *		a plan and a commit each).
 */
#include "util.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(track_events);

/* The typed tracking functions an element is handed to. */
extern Datum track_page_view(PG_FUNCTION_ARGS);
extern Datum track_cart_add(PG_FUNCTION_ARGS);
extern Datum track_cart_remove(PG_FUNCTION_ARGS);
extern Datum track_purchase(PG_FUNCTION_ARGS);
extern Datum set_consent(PG_FUNCTION_ARGS);

/* Most arguments a kind's function takes. */
#define EVENT_MAX_ARGS 5

/* What JSON value an argument takes. */
typedef enum EventArgType
{
	EVENT_ARG_TEXT,				/* a string */
	EVENT_ARG_INT8,				/* a whole number (bigint) */
	EVENT_ARG_BOOL,				/* true or false */
	EVENT_ARG_TIME,				/* a timestamp string; absent means now() */
	EVENT_ARG_JSONB				/* any JSON value, passed on as jsonb */
} EventArgType;

/* One argument of a kind's function: its key in an element, and its default. */
typedef struct EventArg
{
	const char *key;
	EventArgType type;
	int64		default_int;	/* EVENT_ARG_INT8: the default when absent, 0 for NULL */
} EventArg;

/* One kind of event: its name in "kind", and the function's arguments in order. */
typedef struct EventKind
{
	const char *kind;
	PGFunction function;
	int			nargs;
	EventArg	args[EVENT_MAX_ARGS];
} EventKind;

static const EventKind EventKinds[] = {
	{"page_view", track_page_view, 5,
	{{"session_id", EVENT_ARG_TEXT}, {"category_id", EVENT_ARG_TEXT}, {"product_id", EVENT_ARG_TEXT},
	{"occurred_at", EVENT_ARG_TIME}, {"event_id", EVENT_ARG_TEXT}}},
	{"cart_add", track_cart_add, 5,
	{{"session_id", EVENT_ARG_TEXT}, {"product_id", EVENT_ARG_TEXT}, {"quantity", EVENT_ARG_INT8, 1},
	{"occurred_at", EVENT_ARG_TIME}, {"event_id", EVENT_ARG_TEXT}}},
	{"cart_remove", track_cart_remove, 5,
	{{"session_id", EVENT_ARG_TEXT}, {"product_id", EVENT_ARG_TEXT}, {"quantity", EVENT_ARG_INT8},
	{"occurred_at", EVENT_ARG_TIME}, {"event_id", EVENT_ARG_TEXT}}},
	{"purchase", track_purchase, 4,
	{{"session_id", EVENT_ARG_TEXT}, {"order_id", EVENT_ARG_TEXT}, {"items", EVENT_ARG_JSONB},
	{"occurred_at", EVENT_ARG_TIME}}},
	{"consent", set_consent, 5,
	{{"session_id", EVENT_ARG_TEXT}, {"channel", EVENT_ARG_TEXT}, {"granted", EVENT_ARG_BOOL},
	{"occurred_at", EVENT_ARG_TIME}, {"event_id", EVENT_ARG_TEXT}}},
};

#define EVENTS_HINT "Pass events as a JSON array of objects such as " \
	"{\"kind\": \"page_view\", \"session_id\": \"s-1\", \"product_id\": \"sku-1\"}; " \
	"kind is page_view, cart_add, cart_remove, purchase or consent, and the other keys " \
	"are the arguments of the function of that kind."

/* Which element is being tracked, for the error context. */
typedef struct EventPosition
{
	int			number;			/* 1-based */
	const char *kind;
} EventPosition;

/*
 * EventContext names the element being tracked in errors raised while it
 * is.
 */
static void
EventContext(void *arg)
{
	EventPosition *position = (EventPosition *) arg;

	if (position->kind != NULL)
		errcontext("event %d of track_events (%s)", position->number, position->kind);
	else
		errcontext("event %d of track_events", position->number);
}

/*
 * BadEvent reports an element that is not what its kind takes.
 */
static void
pg_attribute_noreturn()
BadEvent(int number, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("event %d %s", number, problem),
			 errhint(EVENTS_HINT)));
}

/*
 * FindKind returns the kind the element's "kind" names, refusing a missing
 * or unknown one.
 */
static const EventKind *
FindKind(JsonbContainer *element, int number)
{
	JsonbValue *kind = getKeyJsonValueFromContainer(element, "kind", strlen("kind"), NULL);

	if (kind == NULL || kind->type != jbvString)
		BadEvent(number, "has no \"kind\" string");
	for (int k = 0; k < lengthof(EventKinds); k++)
		if (strlen(EventKinds[k].kind) == kind->val.string.len &&
			memcmp(EventKinds[k].kind, kind->val.string.val, kind->val.string.len) == 0)
			return &EventKinds[k];
	BadEvent(number, psprintf("has unknown kind \"%s\"",
							  ClipForMessage(pnstrdup(kind->val.string.val, kind->val.string.len))));
}

/*
 * RequireKnownKeys refuses a key the element's kind does not take, which is
 * most likely a misspelt argument that would otherwise be dropped.
 */
static void
RequireKnownKeys(JsonbContainer *element, const EventKind *kind, int number)
{
	JsonbIterator *it = JsonbIteratorInit(element);
	JsonbValue	value;
	JsonbIteratorToken token;

	while ((token = JsonbIteratorNext(&it, &value, true)) != WJB_DONE)
	{
		bool		known;

		if (token != WJB_KEY)
			continue;
		known = value.val.string.len == strlen("kind") &&
			memcmp(value.val.string.val, "kind", value.val.string.len) == 0;
		for (int a = 0; !known && a < kind->nargs; a++)
			known = strlen(kind->args[a].key) == value.val.string.len &&
				memcmp(kind->args[a].key, value.val.string.val, value.val.string.len) == 0;
		if (!known)
			BadEvent(number, psprintf("has key \"%s\", which a %s event does not take",
									  ClipForMessage(pnstrdup(value.val.string.val, value.val.string.len)),
									  kind->kind));
	}
}

/*
 * SetArgument sets argument a of call from the element's value for it:
 * absent means the function's default, JSON null means SQL NULL.
 */
static void
SetArgument(FunctionCallInfo call, int a, const EventArg *arg, JsonbContainer *element, int number)
{
	JsonbValue *value = getKeyJsonValueFromContainer(element, arg->key, strlen(arg->key), NULL);

	call->args[a].isnull = false;
	if (value == NULL)
	{
		if (arg->type == EVENT_ARG_TIME)
			call->args[a].value = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		else if (arg->type == EVENT_ARG_INT8 && arg->default_int != 0)
			call->args[a].value = Int64GetDatum(arg->default_int);
		else
			call->args[a].isnull = true;
		return;
	}
	if (value->type == jbvNull)
	{
		call->args[a].isnull = true;
		return;
	}

	switch (arg->type)
	{
		case EVENT_ARG_TEXT:
			if (value->type != jbvString)
				BadEvent(number, psprintf("has a \"%s\" that is not a string", arg->key));
			call->args[a].value = PointerGetDatum(cstring_to_text_with_len(value->val.string.val,
																		   value->val.string.len));
			break;
		case EVENT_ARG_INT8:
			if (value->type != jbvNumeric ||
				!DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(value->val.numeric),
												  DirectFunctionCall2(numeric_trunc,
																	  NumericGetDatum(value->val.numeric),
																	  Int32GetDatum(0)))) ||
				DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(value->val.numeric),
												  NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))) > 0 ||
				DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(value->val.numeric),
												  NumericGetDatum(int64_to_numeric(PG_INT64_MIN)))) < 0)
				BadEvent(number, psprintf("has a \"%s\" that is not a whole number of at most " INT64_FORMAT,
										  arg->key, PG_INT64_MAX));
			call->args[a].value = DirectFunctionCall1(numeric_int8, NumericGetDatum(value->val.numeric));
			break;
		case EVENT_ARG_BOOL:
			if (value->type != jbvBool)
				BadEvent(number, psprintf("has a \"%s\" that is not true or false", arg->key));
			call->args[a].value = BoolGetDatum(value->val.boolean);
			break;
		case EVENT_ARG_TIME:
			if (value->type != jbvString)
				BadEvent(number, psprintf("has a \"%s\" that is not a timestamp string", arg->key));
			call->args[a].value = DirectFunctionCall3(timestamptz_in,
													  CStringGetDatum(pnstrdup(value->val.string.val,
																			   value->val.string.len)),
													  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
			break;
		case EVENT_ARG_JSONB:
			call->args[a].value = JsonbPGetDatum(JsonbValueToJsonb(value));
			break;
	}
}

/*
 * track_events(events jsonb) tracks every event of the array, in order, as
 * the function of its kind would: {"kind": "page_view" | "cart_add" |
 * "cart_remove" | "purchase" | "consent", ...the function's arguments by
 * name}.  An absent key takes the function's default (occurred_at now());
 * JSON null is SQL NULL.  Retried events (by event_id or order_id) change
 * nothing; a refused event fails the call and nothing of it is kept.
 */
Datum
track_events(PG_FUNCTION_ARGS)
{
	Jsonb	   *events;
	int			count;
	MemoryContext per_event;
	MemoryContext old;
	EventPosition position = {0, NULL};
	ErrorContextCallback context;

	LOCAL_FCINFO(call, EVENT_MAX_ARGS);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("events must not be null"),
				 errhint(EVENTS_HINT)));
	events = JsonArgument(fcinfo, 0, "events", EVENTS_HINT);
	if (!JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array"),
				 errhint(EVENTS_HINT)));
	count = JB_ROOT_COUNT(events);

	per_event = AllocSetContextCreate(CurrentMemoryContext, "track_events event", ALLOCSET_DEFAULT_SIZES);
	context.callback = EventContext;
	context.arg = &position;
	context.previous = error_context_stack;
	error_context_stack = &context;

	for (int i = 0; i < count; i++)
	{
		JsonbValue *element;
		const EventKind *kind;

		old = MemoryContextSwitchTo(per_event);
		position.number = i + 1;
		position.kind = NULL;
		element = getIthJsonbValueFromContainer(&events->root, i);
		if (element->type != jbvBinary || !JsonContainerIsObject(element->val.binary.data))
			BadEvent(i + 1, "is not a JSON object");
		kind = FindKind(element->val.binary.data, i + 1);
		position.kind = kind->kind;
		RequireKnownKeys(element->val.binary.data, kind, i + 1);

		InitFunctionCallInfoData(*call, NULL, kind->nargs, InvalidOid, NULL, NULL);
		for (int a = 0; a < kind->nargs; a++)
			SetArgument(call, a, &kind->args[a], element->val.binary.data, i + 1);
		kind->function(call);

		MemoryContextSwitchTo(old);
		MemoryContextReset(per_event);
	}

	error_context_stack = context.previous;
	MemoryContextDelete(per_event);
	PG_RETURN_VOID();
}
