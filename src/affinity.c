/*
 * affinity.c
 *		The time-decayed affinity model.  Every tracked event adds its kind's
 *		weight to the affinity of its session and of its profile for the
 *		event's product, the product's brand, its category and (damped) the
 *		category's ancestors; between events a score halves every half-life.
 *
 *		Storage: one row per profile (session_id '') and per session in
 *		personalisation.affinity, holding every score of that scope packed in
 *		a bytea (the keys, sorted, then their scores), all valid at the row's
 *		decayed_to.  An event is folded into both rows by one UPDATE (an
 *		INSERT for a row that does not exist yet), which leaves the primary
 *		key alone and so is a HOT update.
 *		The model is linear, so folding two states (an event, another
 *		profile's affinity) is exact whatever the order: an event older than
 *		decayed_to is decayed to it, a newer one decays the row to itself.
 *		Entries that decayed to nothing are dropped and, past
 *		personalisation.affinity_max_entries, the weakest are evicted.
 *
 *		Also here: identity's merge step (fold on merge, rebuild on unmerge),
 *		rebuilding affinity from the event log, expiring old session rows,
 *		and the functions behind the affinity_scores view.
 */
#include "affinity.h"

#include "catalogue.h"
#include "direct.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* Settings of this part (defined by AffinityInit) */
bool		AffinityTracking = true;
double		PageViewWeight = 1.0;
double		CartAddWeight = 3.0;
double		CartRemoveWeight = -2.0;
double		PurchaseWeight = 5.0;
int			ProfileHalfLifeSeconds = 14 * 24 * 3600;
int			SessionHalfLifeSeconds = 30 * 60;
double		AncestorDamping = 0.5;
int			AffinityMaxEntries = 32;

PG_FUNCTION_INFO_V1(affinity_fold);
PG_FUNCTION_INFO_V1(affinity_entries);
PG_FUNCTION_INFO_V1(affinity_key);
PG_FUNCTION_INFO_V1(rebuild_affinity);
PG_FUNCTION_INFO_V1(expire_session_affinity);

/* Scores below this share of the largest event weight are forgotten. */
#define AFFINITY_FORGET_SHARE 1e-4

/* A session's row expires once its newest event is this many half-lives old. */
#define SESSION_EXPIRY_HALF_LIVES 20

/* Bytes one entry takes on disk: its key (uint64) and its score (float4). */
#define STORED_ENTRY_BYTES ((int) (sizeof(uint64) + sizeof(float4)))

/* Rows written per statement by rebuild_affinity. */
#define REBUILD_BATCH_ROWS 1000

/* Rows of the event log read per fetch by rebuild_affinity. */
#define REBUILD_FETCH_ROWS 10000

static const char *const DimensionNames[] = {NULL, "category", "product", "brand"};

/*
 * An event folds into the rows that exist in place (FoldIntoRow), and the
 * rows that do not are inserted by this statement, folding into one a
 * concurrent call inserted meanwhile.  Both walk the primary key in order,
 * so the profile's row ('') is always locked before the session's, by
 * every writer.
 */
static SavedStatement InsertEventRowsStatement = {
	"INSERT INTO personalisation.affinity AS a (profile_id, session_id, decayed_to, entries)"
	" SELECT $1, s, $3, $4 FROM pg_catalog.unnest($2) AS s ORDER BY s"
	" ON CONFLICT (profile_id, session_id) DO UPDATE"
	" SET entries = personalisation.affinity_fold(a.entries, a.decayed_to,"
	"                 excluded.entries, excluded.decayed_to, a.session_id <> ''),"
	"     decayed_to = greatest(a.decayed_to, excluded.decayed_to)",
	4, {INT8OID, TEXTARRAYOID, TIMESTAMPTZOID, BYTEAOID}
};

/*
 * A merge moves the anonymous profile's rows (its profile row and its
 * sessions') to the customer, folding each into the customer's row of the
 * same scope, and records their scopes in the merge ledger.
 */
static SavedStatement MergeMoveStatement = MERGE_STATEMENT(
	"WITH moved AS ("
	"  DELETE FROM personalisation.affinity WHERE profile_id = $2"
	"  RETURNING session_id, decayed_to, entries),"
	" recorded AS ("
	"  INSERT INTO personalisation.merge_items (profile_id, merge_id, step, item_key)"
	"  SELECT $3, $1, 'affinity', session_id FROM moved)"
	" INSERT INTO personalisation.affinity AS a (profile_id, session_id, decayed_to, entries)"
	" SELECT $3, session_id, decayed_to, entries FROM moved ORDER BY session_id"
	" ON CONFLICT (profile_id, session_id) DO UPDATE"
	" SET entries = personalisation.affinity_fold(a.entries, a.decayed_to,"
	"                 excluded.entries, excluded.decayed_to, a.session_id <> ''),"
	"     decayed_to = greatest(a.decayed_to, excluded.decayed_to)");

static SavedStatement MergedRowsStatement = MERGE_STATEMENT(
	"SELECT item_key FROM personalisation.merge_items"
	" WHERE profile_id = $3 AND merge_id = $1 AND step = 'affinity'");

static SavedStatement LockAffinityStatement = {
	"LOCK TABLE personalisation.affinity IN SHARE ROW EXCLUSIVE MODE",
	0, {InvalidOid}
};

static SavedStatement ClearProfileAffinityStatement = {
	"DELETE FROM personalisation.affinity WHERE profile_id = $1",
	1, {INT8OID}
};

static SavedStatement ClearAllAffinityStatement = {
	"DELETE FROM personalisation.affinity",
	0, {InvalidOid}
};

static SavedStatement WriteAffinityStatement = {
	"INSERT INTO personalisation.affinity (profile_id, session_id, decayed_to, entries)"
	" SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
	"                          pg_catalog.unnest($3), pg_catalog.unnest($4))",
	4, {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, BYTEAARRAYOID}
};

static SavedStatement ExpireSessionsStatement = {
	"DELETE FROM personalisation.affinity WHERE session_id <> '' AND decayed_to < $1",
	1, {TIMESTAMPTZOID}
};

/*
 * The event log as rebuild_affinity replays it: one row per event of a kind
 * EventWeight scores (subscription events carry no affinity) and, for a
 * purchase, per order line, grouped by profile and session.
 */
#define REPLAY_QUERY \
	"SELECT e.profile_id, e.session_id, e.kind, e.occurred_at," \
	"       coalesce(e.category_id, p.category_id), coalesce(l.product_id, e.product_id), p.brand" \
	"  FROM personalisation.events e" \
	"  LEFT JOIN personalisation.order_lines l ON e.kind = 'purchase' AND l.order_id = e.order_id" \
	"  LEFT JOIN personalisation.products p ON p.product_id = coalesce(l.product_id, e.product_id)" \
	" WHERE e.kind IN ('page_view', 'cart_add', 'cart_remove', 'purchase')" \
	"   AND (e.category_id IS NOT NULL OR e.product_id IS NOT NULL OR e.kind = 'purchase')"

/*
 * AffinityDimensionName returns the name the SQL interface uses for a
 * dimension.
 */
const char *
AffinityDimensionName(AffinityDimension dimension)
{
	return DimensionNames[dimension];
}

/*
 * AffinityDecay returns the factor by which a score valid at `from` shrinks
 * by `to`: 2^(-(to - from) / half-life) for the scope's half-life.  A read
 * before `from` (an event stamped slightly ahead of the clock) reads the
 * score as it is, never amplified.
 */
float8
AffinityDecay(TimestampTz from, TimestampTz to, bool session_scope)
{
	double		half_life = session_scope ? SessionHalfLifeSeconds : ProfileHalfLifeSeconds;

	if (to <= from)
		return 1.0;
	return exp2(-(((double) to - (double) from) / USECS_PER_SEC) / half_life);
}

/*
 * AffinityCorrupt reports stored entries that are not what EncodeAffinity
 * writes.
 */
static void
pg_attribute_noreturn()
AffinityCorrupt(int len, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("affinity entries of %d bytes are corrupt", len),
			 errdetail("%s", problem),
			 errhint("Run personalisation.rebuild_affinity() to rebuild them from the event log.")));
}

/*
 * DecodeAffinity unpacks a stored entries value: n keys (uint64) followed
 * by their n scores (float4), STORED_ENTRY_BYTES each.
 */
void
DecodeAffinity(bytea *entries, TimestampTz decayed_to, AffinityState *state)
{
	int			len = VARSIZE_ANY_EXHDR(entries);
	const char *data = VARDATA_ANY(entries);

	if (len % STORED_ENTRY_BYTES != 0)
		AffinityCorrupt(len, psprintf("Entries are a whole number of %d-byte key and score pairs.",
									  STORED_ENTRY_BYTES));
	state->decayed_to = decayed_to;
	state->count = len / STORED_ENTRY_BYTES;
	state->entries = palloc(sizeof(AffinityEntry) * (state->count + 1));
	for (int i = 0; i < state->count; i++)
	{
		float4		score;

		memcpy(&state->entries[i].key, data + i * sizeof(uint64), sizeof(uint64));
		memcpy(&score, data + state->count * sizeof(uint64) + i * sizeof(float4), sizeof(float4));
		state->entries[i].score = score;
		if (AffinityKeyDimension(state->entries[i].key) == 0 ||
			(i > 0 && state->entries[i].key <= state->entries[i - 1].key))
			AffinityCorrupt(len, psprintf("Entry %d has no dimension or is out of key order.", i + 1));
	}
}

/*
 * EncodeAffinity packs a state's entries into a bytea, keys first, then
 * the scores rounded to float4 (about seven significant digits).
 */
static bytea *
EncodeAffinity(AffinityState *state)
{
	int			len = state->count * STORED_ENTRY_BYTES;
	bytea	   *result = palloc(VARHDRSZ + len);
	char	   *data = VARDATA(result);

	SET_VARSIZE(result, VARHDRSZ + len);
	for (int i = 0; i < state->count; i++)
	{
		float4		score = (float4) state->entries[i].score;

		memcpy(data + i * sizeof(uint64), &state->entries[i].key, sizeof(uint64));
		memcpy(data + state->count * sizeof(uint64) + i * sizeof(float4), &score, sizeof(float4));
	}
	return result;
}

/*
 * AffinityScore returns the stored score for key (at the state's
 * decayed_to), 0 when the state holds none.
 */
float8
AffinityScore(AffinityState *state, uint64 key)
{
	int			low = 0;
	int			high = state->count - 1;

	while (low <= high)
	{
		int			middle = low + (high - low) / 2;
		uint64		found = state->entries[middle].key;

		if (found == key)
			return state->entries[middle].score;
		if (found < key)
			low = middle + 1;
		else
			high = middle - 1;
	}
	return 0.0;
}

/*
 * CompareKeys orders entries by key, the order they are stored in.
 */
static int
CompareKeys(const void *a, const void *b)
{
	uint64		left = ((const AffinityEntry *) a)->key;
	uint64		right = ((const AffinityEntry *) b)->key;

	return (left > right) - (left < right);
}

/*
 * Weaker reports whether entry a is weaker than entry b: a smaller
 * magnitude (a strong dislike counts as much as a strong liking), ties
 * going to the larger key.
 */
static bool
Weaker(const AffinityEntry *a, const AffinityEntry *b)
{
	float8		a_strength = fabs(a->score);
	float8		b_strength = fabs(b->score);

	if (a_strength != b_strength)
		return a_strength < b_strength;
	return a->key > b->key;
}

/*
 * ForgetBelow is the magnitude under which a score is dropped: a ten
 * thousandth of the largest event weight.
 */
static float8
ForgetBelow(void)
{
	float8		largest = Max(Max(fabs(PageViewWeight), fabs(CartAddWeight)),
							  Max(fabs(CartRemoveWeight), fabs(PurchaseWeight)));

	return largest * AFFINITY_FORGET_SHARE;
}

/*
 * TrimAffinity drops the scores that decayed to nothing and, beyond
 * personalisation.affinity_max_entries, evicts the weakest.
 */
static void
TrimAffinity(AffinityState *state)
{
	float8		floor = ForgetBelow();
	int			kept = 0;

	for (int i = 0; i < state->count; i++)
		if (state->entries[i].score != 0.0 && fabs(state->entries[i].score) >= floor)
			state->entries[kept++] = state->entries[i];
	state->count = kept;

	/* an event brings a few new keys: evicting them one by one keeps the key order */
	while (state->count > AffinityMaxEntries)
	{
		int			weakest = 0;

		for (int i = 1; i < state->count; i++)
			if (Weaker(&state->entries[i], &state->entries[weakest]))
				weakest = i;
		state->count--;
		memmove(&state->entries[weakest], &state->entries[weakest + 1],
				sizeof(AffinityEntry) * (state->count - weakest));
	}
}

/*
 * FoldAffinity returns the sum of two states, valid at the later of their
 * two decayed_to instants, each decayed to it first.
 */
static AffinityState
FoldAffinity(AffinityState *a, AffinityState *b, bool session_scope)
{
	AffinityState result;
	float8		a_factor;
	float8		b_factor;
	int			i = 0,
				j = 0;

	result.decayed_to = Max(a->decayed_to, b->decayed_to);
	a_factor = AffinityDecay(a->decayed_to, result.decayed_to, session_scope);
	b_factor = AffinityDecay(b->decayed_to, result.decayed_to, session_scope);
	result.entries = palloc(sizeof(AffinityEntry) * (a->count + b->count + 1));
	result.count = 0;

	while (i < a->count || j < b->count)
	{
		AffinityEntry *next = &result.entries[result.count++];

		if (j >= b->count || (i < a->count && a->entries[i].key < b->entries[j].key))
		{
			next->key = a->entries[i].key;
			next->score = a->entries[i++].score * a_factor;
		}
		else if (i >= a->count || b->entries[j].key < a->entries[i].key)
		{
			next->key = b->entries[j].key;
			next->score = b->entries[j++].score * b_factor;
		}
		else
		{
			next->key = a->entries[i].key;
			next->score = a->entries[i++].score * a_factor + b->entries[j++].score * b_factor;
		}
	}

	TrimAffinity(&result);
	return result;
}

/*
 * EventWeight returns the weight GUC of an event kind.
 */
static float8
EventWeight(const char *kind)
{
	if (strcmp(kind, "page_view") == 0)
		return PageViewWeight;
	if (strcmp(kind, "cart_add") == 0)
		return CartAddWeight;
	if (strcmp(kind, "cart_remove") == 0)
		return CartRemoveWeight;
	if (strcmp(kind, "purchase") == 0)
		return PurchaseWeight;
	elog(ERROR, "unknown event kind \"%s\"", kind);
}

/*
 * EventAffinity returns what one event adds, valid at its own time: the
 * weight for the product and its brand, the weight for the category, and
 * the weight times damping^k for the category's k-th ancestor.  Any of the
 * three may be NULL.
 */
static AffinityState
EventAffinity(float8 weight, TimestampTz occurred_at, text *category_id, text *product_id,
			  text *brand)
{
	AffinityState state;
	uint64		path[MAX_CATEGORY_DEPTH];
	int			depth = 0;
	int			merged = 0;

	state.decayed_to = occurred_at;
	state.entries = palloc(sizeof(AffinityEntry) * (MAX_CATEGORY_DEPTH + 2));
	state.count = 0;

	if (product_id != NULL)
		state.entries[state.count++] = (AffinityEntry)
		{
			AffinityTextKey(AFFINITY_PRODUCT, product_id), weight
		};
	if (brand != NULL)
		state.entries[state.count++] = (AffinityEntry)
		{
			AffinityTextKey(AFFINITY_BRAND, brand), weight
		};
	if (category_id != NULL)
	{
		float8		share = weight;

		path[0] = AffinityTextKey(AFFINITY_CATEGORY, category_id);
		depth = Max(CategoryPath(path[0], path), 1);
		for (int k = 0; k < depth; k++, share *= AncestorDamping)
			state.entries[state.count++] = (AffinityEntry)
			{
				path[k], share
			};
	}

	qsort(state.entries, state.count, sizeof(AffinityEntry), CompareKeys);
	for (int i = 0; i < state.count; i++)
	{
		if (merged > 0 && state.entries[merged - 1].key == state.entries[i].key)
			state.entries[merged - 1].score += state.entries[i].score;
		else
			state.entries[merged++] = state.entries[i];
	}
	state.count = merged;
	TrimAffinity(&state);
	return state;
}

/*
 * FoldEventIntoValues is FoldIntoRow's RowRewriter: the stored affinity
 * (table->row) plus the event's (arg), valid at the later of the two.
 */
static bool
FoldEventIntoValues(DirectTable *affinity, void *arg, Datum *values, bool *nulls)
{
	AffinityState *event = (AffinityState *) arg;
	AttrNumber	session_id = DirectColumn(affinity, "session_id");
	AttrNumber	decayed_to = DirectColumn(affinity, "decayed_to");
	AttrNumber	entries = DirectColumn(affinity, "entries");
	AffinityState stored;
	AffinityState folded;

	DecodeAffinity(DatumGetByteaPP(values[entries - 1]),
				   DatumGetTimestampTz(values[decayed_to - 1]), &stored);
	folded = FoldAffinity(&stored, event, VARSIZE_ANY_EXHDR(DatumGetTextPP(values[session_id - 1])) > 0);
	values[decayed_to - 1] = TimestampTzGetDatum(folded.decayed_to);
	values[entries - 1] = PointerGetDatum(EncodeAffinity(&folded));
	return true;
}

/*
 * FoldIntoRow folds an event's affinity into the stored row of scope
 * (profile_id, scope) in place (a HOT update: the key never changes).
 * Returns false when there is no such row.
 */
static bool
FoldIntoRow(DirectTable *affinity, Snapshot snapshot, int64 profile_id, text *scope,
			AffinityState *event)
{
	static const RegProcedure eqprocs[2] = {F_INT8EQ, F_TEXTEQ};
	Datum		keys[2] = {Int64GetDatum(profile_id), PointerGetDatum(scope)};

	return UpdateByPrimaryKey(affinity, snapshot, 2, keys, eqprocs, FoldEventIntoValues, event);
}

/*
 * AffinityRecordEvent folds a tracked event into its session's and its
 * profile's affinity, in the caller's transaction and SPI connection.  A
 * purchase is recorded once per order line, with the line's product.
 * Concurrent events of one profile queue on its row lock; since folding is
 * commutative, none is lost whatever the order.
 */
void
AffinityRecordEvent(TrackedEvent *event)
{
	float8		weight;
	text	   *category_id = event->category_id;
	text	   *brand = NULL;
	AffinityState state;
	bytea	   *encoded;
	Snapshot	snapshot;
	DirectTable affinity;
	Datum		missing[2];
	int			count = 0;

	if (!AffinityTracking)
		return;
	weight = EventWeight(event->kind);
	if (weight == 0.0)
		return;

	if (event->facets_read)
		brand = event->brand;
	else if (event->product_id != NULL)
	{
		ProductFacts facts;

		if (LookupProduct(event->product_id, &facts))
		{
			if (category_id == NULL)
				category_id = facts.category_id;
			brand = facts.brand;
		}
	}

	state = EventAffinity(weight, event->occurred_at, category_id, event->product_id, brand);
	if (state.count == 0)
		return;
	/* the event's scores are stored as float4, so they are folded as float4 */
	encoded = EncodeAffinity(&state);
	DecodeAffinity(encoded, event->occurred_at, &state);

	snapshot = DirectSnapshot();
	OpenDirectTable(&affinity, DIRECT_AFFINITY, true);
	if (!FoldIntoRow(&affinity, snapshot, event->profile_id, cstring_to_text(""), &state))
		missing[count++] = CStringGetTextDatum("");
	if (!FoldIntoRow(&affinity, snapshot, event->profile_id, event->session_id, &state))
		missing[count++] = PointerGetDatum(event->session_id);
	CloseDirectTable(&affinity);
	UnregisterSnapshot(snapshot);

	if (count > 0)
	{
		Datum		values[4];

		values[0] = Int64GetDatum(event->profile_id);
		values[1] = PointerGetDatum(construct_array(missing, count, TEXTOID, -1, false, TYPALIGN_INT));
		values[2] = TimestampTzGetDatum(event->occurred_at);
		values[3] = PointerGetDatum(encoded);
		ExecSaved(&InsertEventRowsStatement, values, NULL, false, 0);
	}
}

/*
 * AffinityMergeMove is identity's merge step: the anonymous profile's
 * affinity rows move to the customer, each folded into the customer's row
 * of the same scope, which is exactly what the two profiles' events would
 * have built together.  The work is proportional to the anonymous side.
 * Returns the number of rows moved.
 */
int64
AffinityMergeMove(const Merge *merge)
{
	return ExecMergeStatement(&MergeMoveStatement, merge);
}

/*
 * RebuildBatch collects affinity rows for one multi-row insert.
 */
typedef struct RebuildBatch
{
	MemoryContext context;
	int			count;
	Datum		profile_ids[REBUILD_BATCH_ROWS];
	Datum		session_ids[REBUILD_BATCH_ROWS];
	Datum		decayed_to[REBUILD_BATCH_ROWS];
	Datum		entries[REBUILD_BATCH_ROWS];
} RebuildBatch;

/*
 * FlushBatch writes the collected rows.
 */
static void
FlushBatch(RebuildBatch *batch)
{
	Datum		values[4];

	if (batch->count == 0)
		return;
	values[0] = PointerGetDatum(construct_array(batch->profile_ids, batch->count, INT8OID,
												8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(batch->session_ids, batch->count, TEXTOID,
												-1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(batch->decayed_to, batch->count, TIMESTAMPTZOID,
												8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_array(batch->entries, batch->count, BYTEAOID,
												-1, false, TYPALIGN_INT));
	ExecSaved(&WriteAffinityStatement, values, NULL, false, 0);
	MemoryContextReset(batch->context);
	batch->count = 0;
}

/*
 * AddToBatch queues one row (nothing for an empty state), writing the
 * batch when it is full.
 */
static void
AddToBatch(RebuildBatch *batch, int64 profile_id, const char *session_id, AffinityState *state)
{
	MemoryContext old;

	if (state->count == 0)
		return;
	old = MemoryContextSwitchTo(batch->context);
	batch->profile_ids[batch->count] = Int64GetDatum(profile_id);
	batch->session_ids[batch->count] = CStringGetTextDatum(session_id);
	batch->decayed_to[batch->count] = TimestampTzGetDatum(state->decayed_to);
	batch->entries[batch->count] = PointerGetDatum(EncodeAffinity(state));
	batch->count++;
	MemoryContextSwitchTo(old);
	if (batch->count == REBUILD_BATCH_ROWS)
		FlushBatch(batch);
}

/*
 * FoldInto folds an event into a state being rebuilt, freeing the state's
 * old entries.  An empty state takes the event's time.
 */
static void
FoldInto(AffinityState *state, AffinityState *event, bool session_scope)
{
	AffinityState folded;

	if (state->count == 0)
		state->decayed_to = event->decayed_to;
	folded = FoldAffinity(state, event, session_scope);
	if (state->entries != NULL)
		pfree(state->entries);
	*state = folded;
}

/*
 * The events of one session its row still remembers, a purchase once per
 * order line: $1 the profile, $2 the session, $3 the oldest instant kept
 * (SESSION_EXPIRY_HALF_LIVES session half-lives before the row's newest
 * event).  The profile's index on (profile_id, occurred_at) finds them in
 * the few day partitions the window spans; the products' category and
 * brand come from the product cache, not from a join with the catalogue.
 */
static SavedStatement SessionEventsStatement = {
	"SELECT e.kind, e.occurred_at, e.category_id, coalesce(l.product_id, e.product_id)"
	"  FROM personalisation.events e"
	"  LEFT JOIN personalisation.order_lines l ON e.kind = 'purchase' AND l.order_id = e.order_id"
	" WHERE e.kind IN ('page_view', 'cart_add', 'cart_remove', 'purchase')"
	"   AND (e.category_id IS NOT NULL OR e.product_id IS NOT NULL OR e.kind = 'purchase')"
	"   AND e.profile_id = $1 AND e.session_id = $2 AND e.occurred_at >= $3",
	3, {INT8OID, TEXTOID, TIMESTAMPTZOID}, NULL, CURSOR_OPT_GENERIC_PLAN
};

/*
 * AffinitySessionInProfile replays the events the session's affinity row
 * still remembers (those of its last SESSION_EXPIRY_HALF_LIVES session
 * half-lives before newest_event) with the profile's half-life, into
 * *state: what the live session adds to its profile's row, which ranking
 * takes off the profile so that the session's events count once.  Returns
 * how many events they are (purchase lines each count), the session's
 * evidence for ranking's shrinkage.  Needs an SPI connection.
 */
int64
AffinitySessionInProfile(int64 profile_id, text *session_id, TimestampTz newest_event,
						 AffinityState *state)
{
	Datum		values[3];
	SPITupleTable *rows;
	uint64		count;

	values[0] = Int64GetDatum(profile_id);
	values[1] = PointerGetDatum(session_id);
	values[2] = TimestampTzGetDatum(newest_event - (TimestampTz) SESSION_EXPIRY_HALF_LIVES *
									SessionHalfLifeSeconds * USECS_PER_SEC);
	memset(state, 0, sizeof(AffinityState));
	ExecSaved(&SessionEventsStatement, values, NULL, true, 0);
	rows = SPI_tuptable;
	count = SPI_processed;
	for (uint64 i = 0; i < count; i++)
	{
		HeapTuple	row = rows->vals[i];
		TupleDesc	desc = rows->tupdesc;
		bool		isnull;
		char	   *kind = SPI_getvalue(row, desc, 1);
		TimestampTz occurred_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 2, &isnull));
		Datum		category = SPI_getbinval(row, desc, 3, &isnull);
		text	   *category_id = isnull ? NULL : DatumGetTextPP(category);
		Datum		product = SPI_getbinval(row, desc, 4, &isnull);
		text	   *product_id = isnull ? NULL : DatumGetTextPP(product);
		text	   *brand = NULL;
		ProductFacts facts;
		AffinityState event;

		/* as the replay does: a product's own category unless the event names one */
		if (product_id != NULL && LookupProduct(product_id, &facts))
		{
			brand = facts.brand;
			if (category_id == NULL)
				category_id = facts.category_id;
		}
		event = EventAffinity(EventWeight(kind), occurred_at, category_id, product_id, brand);
		FoldInto(state, &event, false);
		pfree(event.entries);
	}
	return (int64) count;
}

/*
 * LockAffinityWriters holds off every affinity writer until the end of the
 * transaction (a table lock that tracking calls' row writes wait for), so
 * that affinity can be rebuilt from the event log.  An unmerge takes it
 * before it undoes any step, at the affinity rows' place in the lock order.
 */
void
LockAffinityWriters(void)
{
	ExecSaved(&LockAffinityStatement, NULL, NULL, false, 0);
}

/*
 * RebuildAffinity replaces the affinity of one profile (all_profiles false)
 * or of every profile by a replay of the event log, and returns the number
 * of events (purchase lines) replayed.  It holds off every affinity writer
 * meanwhile, so an event tracked concurrently is counted exactly once:
 * either it committed before the lock and is replayed, or its own upsert
 * waits and applies it on top.  Needs an SPI connection.
 */
static int64
RebuildAffinity(int64 profile_id, bool all_profiles)
{
	Datum		values[1] = {Int64GetDatum(profile_id)};
	Oid			argtypes[1] = {INT8OID};
	MemoryContext profile_context;
	RebuildBatch *batch = palloc(sizeof(RebuildBatch));
	Portal		portal;
	int64		replayed = 0;
	int64		current_profile = 0;
	char	   *current_session = NULL;
	AffinityState session_state = {0};
	AffinityState profile_state = {0};

	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("affinity cannot be rebuilt in a %s transaction",
						IsolationIsSerializable() ? "serializable" : "repeatable read"),
				 errdetail("The rebuild must see every event committed before it locks the affinity table."),
				 errhint("Run it at the READ COMMITTED isolation level.")));

	LockAffinityWriters();
	if (all_profiles)
		ExecSaved(&ClearAllAffinityStatement, NULL, NULL, false, 0);
	else
		ExecSaved(&ClearProfileAffinityStatement, values, NULL, false, 0);

	profile_context = AllocSetContextCreate(CurrentMemoryContext, "rebuild_affinity profile",
											ALLOCSET_DEFAULT_SIZES);
	batch->context = AllocSetContextCreate(CurrentMemoryContext, "rebuild_affinity batch",
										   ALLOCSET_DEFAULT_SIZES);
	batch->count = 0;

	portal = OpenPinnedCursor(all_profiles
							  ? REPLAY_QUERY " ORDER BY e.profile_id, e.session_id"
							  : REPLAY_QUERY " AND e.profile_id = $1 ORDER BY e.session_id",
							  all_profiles ? 0 : 1, argtypes, values, false);
	for (;;)
	{
		SPITupleTable *rows;
		uint64		count;

		SPI_cursor_fetch(portal, true, REBUILD_FETCH_ROWS);
		rows = SPI_tuptable;
		count = SPI_processed;
		if (count == 0)
			break;

		for (uint64 i = 0; i < count; i++)
		{
			HeapTuple	row = rows->vals[i];
			TupleDesc	desc = rows->tupdesc;
			bool		isnull;
			int64		row_profile = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
			char	   *row_session = SPI_getvalue(row, desc, 2);
			char	   *kind = SPI_getvalue(row, desc, 3);
			TimestampTz occurred_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 4, &isnull));
			Datum		category = SPI_getbinval(row, desc, 5, &isnull);
			text	   *category_id = isnull ? NULL : DatumGetTextPP(category);
			Datum		product = SPI_getbinval(row, desc, 6, &isnull);
			text	   *product_id = isnull ? NULL : DatumGetTextPP(product);
			Datum		brand_value = SPI_getbinval(row, desc, 7, &isnull);
			text	   *brand = isnull ? NULL : DatumGetTextPP(brand_value);
			AffinityState event;
			MemoryContext old;

			if (current_session != NULL &&
				(row_profile != current_profile || strcmp(row_session, current_session) != 0))
			{
				AddToBatch(batch, current_profile, current_session, &session_state);
				session_state.count = 0;
				if (row_profile != current_profile)
				{
					AddToBatch(batch, current_profile, "", &profile_state);
					MemoryContextReset(profile_context);
					session_state.entries = NULL;
					profile_state.count = 0;
					profile_state.entries = NULL;
				}
			}

			old = MemoryContextSwitchTo(profile_context);
			if (current_session == NULL || row_profile != current_profile ||
				strcmp(row_session, current_session) != 0)
				current_session = pstrdup(row_session);
			current_profile = row_profile;
			event = EventAffinity(EventWeight(kind), occurred_at, category_id, product_id, brand);
			FoldInto(&session_state, &event, true);
			FoldInto(&profile_state, &event, false);
			pfree(event.entries);
			MemoryContextSwitchTo(old);
			replayed++;
		}
		SPI_freetuptable(rows);
	}
	SPI_cursor_close(portal);

	if (current_session != NULL)
	{
		AddToBatch(batch, current_profile, current_session, &session_state);
		AddToBatch(batch, current_profile, "", &profile_state);
	}
	FlushBatch(batch);
	MemoryContextDelete(profile_context);
	MemoryContextDelete(batch->context);
	return replayed;
}

/*
 * AffinityMergeUndo is the undo of AffinityMergeMove, run once unmerge has
 * given the events back: a fold cannot be subtracted (the customer's scores
 * went on changing and evicting), so both profiles' affinity is rebuilt
 * from their events as they now lie.  Returns the number of rows the merge
 * moved, each of which the rebuild restored.
 */
int64
AffinityMergeUndo(const Merge *merge)
{
	RebuildAffinity(merge->from_profile_id, false);
	RebuildAffinity(merge->into_profile_id, false);
	return ExecMergeStatement(&MergedRowsStatement, merge);
}

/*
 * rebuild_affinity(profile_id) replaces the affinity of the given profile,
 * or of every profile when NULL, by a replay of the event log with the
 * current weights, half-lives and catalogue.  Use it after a backfill with
 * personalisation.affinity_tracking off, or after changing the weights.
 */
Datum
rebuild_affinity(PG_FUNCTION_ARGS)
{
	int64		replayed;

	SPI_connect();
	replayed = RebuildAffinity(PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0), PG_ARGISNULL(0));
	SPI_finish();
	PG_RETURN_INT64(replayed);
}

/*
 * expire_session_affinity(now) deletes the session rows whose newest event
 * is more than SESSION_EXPIRY_HALF_LIVES session half-lives old: their
 * scores have fallen below a millionth and no longer change a ranking.  The
 * profile rows are kept.  Returns the number of rows deleted.
 */
Datum
expire_session_affinity(PG_FUNCTION_ARGS)
{
	TimestampTz now = RequireInstant(fcinfo, 0, "now");
	Datum		values[1];
	int64		expired;

	values[0] = TimestampTzGetDatum(now - (TimestampTz) SESSION_EXPIRY_HALF_LIVES *
									SessionHalfLifeSeconds * USECS_PER_SEC);
	SPI_connect();
	ExecSaved(&ExpireSessionsStatement, values, NULL, false, 0);
	expired = SPI_processed;
	SPI_finish();
	PG_RETURN_INT64(expired);
}

/*
 * affinity_fold(entries, decayed_to, other, other_decayed_to, session_scope)
 * returns the two stored affinities folded into one, valid at the later
 * instant; the upserts of the tracking path and of profile merges call it.
 */
Datum
affinity_fold(PG_FUNCTION_ARGS)
{
	AffinityState mine;
	AffinityState other;
	AffinityState folded;

	DecodeAffinity(PG_GETARG_BYTEA_PP(0), PG_GETARG_TIMESTAMPTZ(1), &mine);
	DecodeAffinity(PG_GETARG_BYTEA_PP(2), PG_GETARG_TIMESTAMPTZ(3), &other);
	folded = FoldAffinity(&mine, &other, PG_GETARG_BOOL(4));
	PG_RETURN_BYTEA_P(EncodeAffinity(&folded));
}

/*
 * affinity_entries(entries, decayed_to, session_scope, at) lists a stored
 * affinity's dimensions and scores decayed to `at` (the affinity_scores
 * view reads through it).
 */
Datum
affinity_entries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AffinityState state;
	float8		factor;

	InitMaterializedSRF(fcinfo, 0);
	DecodeAffinity(PG_GETARG_BYTEA_PP(0), PG_GETARG_TIMESTAMPTZ(1), &state);
	factor = AffinityDecay(state.decayed_to, PG_GETARG_TIMESTAMPTZ(3), PG_GETARG_BOOL(2));

	for (int i = 0; i < state.count; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(AffinityDimensionName(AffinityKeyDimension(state.entries[i].key)));
		values[1] = Int64GetDatum((int64) state.entries[i].key);
		values[2] = Float8GetDatum(state.entries[i].score * factor);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * affinity_key(dimension, key) returns the key under which a category,
 * product or brand is scored, so that stored scores can be matched to the
 * catalogue (the affinity_dimensions view).
 */
Datum
affinity_key(PG_FUNCTION_ARGS)
{
	char	   *dimension = text_to_cstring(PG_GETARG_TEXT_PP(0));

	for (int d = AFFINITY_CATEGORY; d <= AFFINITY_BRAND; d++)
		if (strcmp(dimension, DimensionNames[d]) == 0)
			PG_RETURN_INT64((int64) AffinityTextKey(d, PG_GETARG_TEXT_PP(1)));

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown affinity dimension \"%s\"", ClipForMessage(dimension)),
			 errhint("Pass 'category', 'product' or 'brand'.")));
}

/*
 * AffinityInit defines the settings of this part.
 */
void
AffinityInit(void)
{
	DefineCustomBoolVariable("personalisation.affinity_tracking",
							 "Whether every tracked event updates the session's and the profile's affinity.",
							 "Turn off only for a bulk backfill of events, then run rebuild_affinity().",
							 &AffinityTracking,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.page_view_weight",
							 "Affinity added by a page view of a product or category.",
							 NULL,
							 &PageViewWeight,
							 1.0, -1000.0, 1000.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.cart_add_weight",
							 "Affinity added by putting a product in the cart.",
							 NULL,
							 &CartAddWeight,
							 3.0, -1000.0, 1000.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.cart_remove_weight",
							 "Affinity added by taking a product out of the cart (negative: interest withdrawn).",
							 NULL,
							 &CartRemoveWeight,
							 -2.0, -1000.0, 1000.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.purchase_weight",
							 "Affinity added by buying a product, per order line.",
							 NULL,
							 &PurchaseWeight,
							 5.0, -1000.0, 1000.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.profile_half_life",
							"Time in which a profile's affinity halves.",
							NULL,
							&ProfileHalfLifeSeconds,
							14 * 24 * 3600, 60, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.session_half_life",
							"Time in which a session's affinity halves.",
							NULL,
							&SessionHalfLifeSeconds,
							30 * 60, 60, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.ancestor_damping",
							 "Share of an event's weight credited to its category's parent, squared for the grandparent, and so on.",
							 "Ranking reads a category's ancestors with the same damping.",
							 &AncestorDamping,
							 0.5, 0.0, 1.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.affinity_max_entries",
							"Most dimensions one session's or profile's affinity keeps; the weakest are evicted.",
							NULL,
							&AffinityMaxEntries,
							32, 8, 250,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}
