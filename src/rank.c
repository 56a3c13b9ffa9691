/*
 * rank.c
 *		Ranking: rank_products, rank_categories and rank_modules reorder the
 *		candidates a page is about to show by the visitor's affinity, with a
 *		popularity prior for visitors we know nothing about yet.  Also the
 *		ranking holdout (a sticky hash of the session, or of the customer's
 *		profile once the session is identified, picks the 'control' arm,
 *		which keeps the shop's order) and refresh_popularity, which computes
 *		the prior from the event log.
 *
 *		A product's score, per scope (session, weighted by
 *		personalisation.session_weight and shrunk by its number of events n
 *		to n / (n + personalisation.session_shrinkage), and profile, weighted
 *		1, less what the live session's events added to it, so that they
 *		count once):
 *		  affinity(product) + sum over its category path of
 *		  damping^k * affinity(k-th category) + brand_weight * affinity(brand)
 *		plus popularity_weight * popularity share.  Every candidate comes
 *		back exactly once: in-stock products by score, then out-of-stock
 *		ones, then candidates the catalogue does not know; ties keep the
 *		shop's order.
 */
#include "rank.h"

#include "catalogue.h"
#include "direct.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"

/* Settings of this part (defined by RankInit) */
double		SessionWeight = 1.0;
double		BrandWeight = 0.5;
double		PopularityWeight = 1.0;
int			PopularityHalfLifeSeconds = 3 * 24 * 3600;
int			PopularityWindowSeconds = 14 * 24 * 3600;
double		RankingHoldoutPercent = 10.0;

PG_FUNCTION_INFO_V1(rank_products);
PG_FUNCTION_INFO_V1(rank_categories);
PG_FUNCTION_INFO_V1(rank_modules);
PG_FUNCTION_INFO_V1(holdout_arm_session);
PG_FUNCTION_INFO_V1(holdout_arm_of);
PG_FUNCTION_INFO_V1(refresh_popularity);

/* Most candidates one ranking call accepts. */
#define MAX_RANK_CANDIDATES 10000

/* Seed of the holdout hash: a different seed would reshuffle every visitor. */
#define HOLDOUT_SEED INT64CONST(0x686f6c646f7574)

/* Holdout buckets: a visitor's bucket is a hash modulo this, in percent * 10^4. */
#define HOLDOUT_BUCKETS 1000000

/* Where a candidate ranks before its score is looked at. */
typedef enum RankTier
{
	TIER_RANKED = 0,
	TIER_OUT_OF_STOCK = 1,
	TIER_UNKNOWN = 2
} RankTier;

/* The signals a score is the sum of, as the explanation names them. */
typedef enum RankSignal
{
	SIGNAL_SESSION_PRODUCT,
	SIGNAL_PROFILE_PRODUCT,
	SIGNAL_SESSION_CATEGORY,
	SIGNAL_PROFILE_CATEGORY,
	SIGNAL_SESSION_BRAND,
	SIGNAL_PROFILE_BRAND,
	SIGNAL_POPULARITY,
	NUM_SIGNALS
} RankSignal;

static const char *const SignalNames[NUM_SIGNALS] = {
	"session_product", "profile_product", "session_category", "profile_category",
	"session_brand", "profile_brand", "popularity"
};

/* One candidate being ranked. */
typedef struct RankItem
{
	text	   *id;				/* product, category or module */
	text	   *category_id;	/* modules: the module's category, if any */
	int			input_position; /* 0-based place in the shop's order */
	bool		duplicate;		/* a repeat of an earlier candidate: not returned */
	bool		no_category;	/* modules: a module the CMS gave no category */
	RankTier	tier;
	float8		signals[NUM_SIGNALS];
	float8		score;
	uint64		category_key;	/* the category whose path gave the category signals, 0 if none */
} RankItem;

/* What ranking knows about the visitor. */
typedef struct Visitor
{
	bool		control;		/* in the holdout's control arm */
	bool		exposed;		/* ranked before: its arm is the one recorded then */
	AffinityState session;
	AffinityState profile;
	float8		session_factor; /* decay of the stored session scores to the read time */
	float8		profile_factor;
	AffinityState session_in_profile;	/* what the session's events added to the profile */
	float8		session_in_profile_factor;	/* its decay to the read time */
	int64		session_events; /* n: the events the session's row remembers */
	float8		session_shrink; /* n / (n + session_shrinkage) */
} Visitor;

/*
 * The events a session's affinity needs before it weighs half as much as
 * it would unshrunk: with k of them, a session of n events has its
 * affinity weighted n / (n + k), so one stray view cannot outweigh the
 * popularity prior, and the weight nears 1 as the session confirms itself.
 */
static double SessionShrinkage = 6.0;

/*
 * RankInit defines the ranking settings read here.
 */
void
RankInit(void)
{
	DefineCustomRealVariable("personalisation.session_weight",
							 "Weight of the session's affinity against the profile's (1) in a ranking score.",
							 NULL,
							 &SessionWeight,
							 1.0, 0.0, 1000.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.brand_weight",
							 "Weight of brand affinity against product and category affinity (1) in a product's score.",
							 NULL,
							 &BrandWeight,
							 0.5, 0.0, 1000.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.popularity_weight",
							 "Score given to the most popular candidate by the popularity prior; others get their share of it.",
							 NULL,
							 &PopularityWeight,
							 1.0, 0.0, 1000.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.popularity_half_life",
							"Time in which an event's contribution to popularity halves.",
							NULL,
							&PopularityHalfLifeSeconds,
							3 * 24 * 3600, 60, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.popularity_window",
							"How far back refresh_popularity() reads events.",
							NULL,
							&PopularityWindowSeconds,
							14 * 24 * 3600, 3600, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.ranking_holdout_percent",
							 "Share of visitors, in percent, held out of ranking (the control arm gets the shop's order).",
							 "Assignment is a hash of the session's profile; raising the share keeps every control visitor in control.",
							 &RankingHoldoutPercent,
							 10.0, 0.0, 100.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("personalisation.session_shrinkage",
							 "Events a session needs for its affinity to count half in a ranking score.",
							 "A session of n events has its affinity weighted n / (n + session_shrinkage); 0 turns the shrinkage off.",
							 &SessionShrinkage,
							 6.0, 0.0, 1000.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

/*
 * Ranking's statements always run generic plans: a custom plan for a
 * concrete array of ids would hash-join whole tables for the first calls of
 * every backend, before the plan cache settles on index lookups.
 */
static SavedStatement CustomerOfSessionStatement = {
	"SELECT p.profile_id FROM personalisation.sessions s"
	"  JOIN personalisation.profiles p ON p.profile_id = s.profile_id"
	" WHERE s.session_id = $1 AND p.customer_id IS NOT NULL",
	1, {TEXTOID}
};

static SavedStatement RecordedArmStatement = {
	"SELECT e.arm OPERATOR(pg_catalog.=) 'control'::pg_catalog.text"
	"  FROM personalisation.ranking_exposures e"
	" WHERE e.session_id OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}
};

static SavedStatement CategoryPopularityStatement = {
	"SELECT category_id, score FROM personalisation.category_popularity"
	" WHERE category_id = ANY ($1)",
	1, {TEXTARRAYOID}, NULL, CURSOR_OPT_GENERIC_PLAN
};

static SavedStatement LockPopularityStatement = {
	"LOCK TABLE personalisation.product_popularity, personalisation.category_popularity"
	" IN SHARE ROW EXCLUSIVE MODE",
	0, {InvalidOid}
};

static SavedStatement ClearProductPopularityStatement = {
	"DELETE FROM personalisation.product_popularity",
	0, {InvalidOid}
};

static SavedStatement ClearCategoryPopularityStatement = {
	"DELETE FROM personalisation.category_popularity",
	0, {InvalidOid}
};

/*
 * Popularity parameters: $1 now, $2 window start, $3 half-life in seconds,
 * $4 page view weight, $5 purchase weight (per order line).
 */
#define POPULARITY_DECAY(at) \
	"pg_catalog.power(2::float8, -pg_catalog.date_part('epoch', $1 - " at ") / $3)"
#define POPULARITY_WINDOW(at) " " at " > $2 AND " at " <= $1"

static SavedStatement ProductPopularityStatement = {
	"WITH weighted AS ("
	"  SELECT e.product_id, $4 * " POPULARITY_DECAY("e.occurred_at") " AS w"
	"    FROM personalisation.events e"
	"   WHERE e.kind = 'page_view' AND e.product_id IS NOT NULL AND" POPULARITY_WINDOW("e.occurred_at")
	"  UNION ALL"
	"  SELECT l.product_id, $5 * " POPULARITY_DECAY("o.occurred_at")
	"    FROM personalisation.orders o JOIN personalisation.order_lines l USING (order_id)"
	"   WHERE" POPULARITY_WINDOW("o.occurred_at") "),"
	" summed AS (SELECT product_id, pg_catalog.sum(w) AS w FROM weighted GROUP BY product_id)"
	" INSERT INTO personalisation.product_popularity (product_id, weighted_events, score, computed_at)"
	" SELECT product_id, w, w / pg_catalog.max(w) OVER (), $1 FROM summed WHERE w OPERATOR(pg_catalog.>) 0",
	5, {TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID, FLOAT8OID, FLOAT8OID}
};

/* Further parameters: $6 ancestor damping, $7 deepest path followed. */
static SavedStatement CategoryPopularityRefreshStatement = {
	"WITH RECURSIVE weighted AS ("
	"  SELECT e.category_id, $4 * " POPULARITY_DECAY("e.occurred_at") " AS w"
	"    FROM personalisation.events e"
	"   WHERE e.kind = 'page_view' AND e.category_id IS NOT NULL AND" POPULARITY_WINDOW("e.occurred_at")
	"  UNION ALL"
	"  SELECT p.category_id, $5 * " POPULARITY_DECAY("o.occurred_at")
	"    FROM personalisation.orders o JOIN personalisation.order_lines l USING (order_id)"
	"    JOIN personalisation.products p USING (product_id)"
	"   WHERE p.category_id IS NOT NULL AND" POPULARITY_WINDOW("o.occurred_at") "),"
	" summed AS (SELECT category_id, pg_catalog.sum(w) AS w FROM weighted GROUP BY category_id),"
	" path (category_id, w, depth) AS ("
	"  SELECT category_id, w, 1 FROM summed"
	"  UNION ALL"
	"  SELECT c.parent_id, path.w * $6, path.depth + 1"
	"    FROM path JOIN personalisation.categories c ON c.category_id = path.category_id"
	"   WHERE c.parent_id IS NOT NULL AND path.depth < $7),"
	" total AS (SELECT category_id, pg_catalog.sum(w) AS w FROM path GROUP BY category_id)"
	" INSERT INTO personalisation.category_popularity (category_id, weighted_events, score, computed_at)"
	" SELECT category_id, w, w / pg_catalog.max(w) OVER (), $1 FROM total WHERE w OPERATOR(pg_catalog.>) 0",
	7, {TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, INT4OID}
};

/*
 * InControl says whether a holdout hash falls in the control share.  The
 * share is a prefix of the buckets, so raising it keeps every control
 * visitor in control.
 */
static bool
InControl(uint64 hash)
{
	return (double) (hash % HOLDOUT_BUCKETS) * 100.0 / HOLDOUT_BUCKETS < RankingHoldoutPercent;
}

/*
 * ArmIsControl places a session in the holdout: by a hash of the session
 * id while the visitor is anonymous (customer_profile_id NULL), which is
 * decided before its first event and never changes; by a hash of the
 * customer's profile once the session is identified, so that every
 * session of a customer, on every device, gets the same arm.
 */
static bool
ArmIsControl(text *session_id, bool identified, int64 customer_profile_id)
{
	if (identified)
		return InControl(DatumGetUInt64(DirectFunctionCall2(hashint8extended,
															Int64GetDatum(customer_profile_id),
															Int64GetDatum(HOLDOUT_SEED))));
	return InControl(DatumGetUInt64(hash_any_extended((const unsigned char *) VARDATA_ANY(session_id),
													  VARSIZE_ANY_EXHDR(session_id),
													  HOLDOUT_SEED)));
}

/*
 * ArmName names a holdout arm.
 */
static const char *
ArmName(bool control)
{
	return control ? "control" : "personalised";
}

/*
 * ReadRecordedArm reads the arm the session was first ranked in, as
 * `snapshot` sees it, into *control.  Returns false for a session not
 * ranked yet, and in a database still at 0.1.0, which records no exposures.
 */
static bool
ReadRecordedArm(text *session_id, Snapshot snapshot, bool *control)
{
	static const RegProcedure text_eq[1] = {F_TEXTEQ};
	Datum		key = PointerGetDatum(session_id);
	DirectTable table;
	bool		found;

	if (!DirectTableExists(DIRECT_RANKING_EXPOSURES))
		return false;
	OpenDirectTable(&table, DIRECT_RANKING_EXPOSURES, false);
	found = FetchByPrimaryKey(&table, snapshot, 1, &key, text_eq);
	if (found)
	{
		bool		isnull;

		*control = strcmp(TextDatumGetCString(DirectRowValue(&table, "arm", &isnull)), "control") == 0;
	}
	CloseDirectTable(&table);
	return found;
}

/*
 * The end of the WAL the current transaction wrote, when all it wrote so
 * far is ranking exposures; InvalidXLogRecPtr otherwise.
 */
static XLogRecPtr ExposureOnlyWalEnd = InvalidXLogRecPtr;
static bool ExposureCallbackRegistered = false;

/*
 * CommitExposuresAsynchronously lets a transaction whose only writes are
 * ranking exposures commit without waiting for its WAL to reach disk (as
 * synchronous_commit = off does): otherwise a first ranking, a read until
 * now, would wait for a WAL flush, ten times what the ranking costs.  A
 * crash may lose the exposures of the last moments; those sessions are
 * recorded again at their next ranking.  A transaction that wrote anything
 * else commits as configured.
 */
static void
CommitExposuresAsynchronously(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT && !XLogRecPtrIsInvalid(ExposureOnlyWalEnd) &&
		XactLastRecEnd == ExposureOnlyWalEnd)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
		ExposureOnlyWalEnd = InvalidXLogRecPtr;
}

/*
 * RecordExposure records a session's first ranking: its arm and when, once
 * (a concurrent first ranking of the same session records nothing more).
 * The reports count the session in this arm from now on, whatever the
 * share becomes.  Nothing is recorded where nothing may be written: in a
 * read-only transaction (a standby) or inside a parallel query.
 */
static void
RecordExposure(text *session_id, bool control, TimestampTz at)
{
	DirectTable table;
	Datum	   *values;
	bool	   *nulls;
	bool		only_exposures;

	if (XactReadOnly || IsInParallelMode())
		return;
	if (!ExposureCallbackRegistered)
	{
		RegisterXactCallback(CommitExposuresAsynchronously, NULL);
		ExposureCallbackRegistered = true;
	}
	only_exposures = XLogRecPtrIsInvalid(XactLastRecEnd) || XactLastRecEnd == ExposureOnlyWalEnd;
	OpenDirectTableForUniqueInsert(&table, DIRECT_RANKING_EXPOSURES);
	DirectNewRow(&table, &values, &nulls);
	values[DirectColumn(&table, "session_id") - 1] = PointerGetDatum(session_id);
	values[DirectColumn(&table, "arm") - 1] = CStringGetTextDatum(ArmName(control));
	values[DirectColumn(&table, "exposed_at") - 1] = TimestampTzGetDatum(at);
	nulls[DirectColumn(&table, "session_id") - 1] = false;
	nulls[DirectColumn(&table, "arm") - 1] = false;
	nulls[DirectColumn(&table, "exposed_at") - 1] = false;
	(void) DirectInsertIfUnique(&table, values, nulls);
	CloseDirectTable(&table);
	ExposureOnlyWalEnd = only_exposures ? XactLastRecEnd : InvalidXLogRecPtr;
}

/*
 * LoadVisitor reads the session's profile (is it a customer's?) and the two
 * affinity rows ranking blends, as the calling statement's snapshot sees
 * them, straight from the tables' primary keys; decides the holdout arm
 * (the one recorded at the session's first ranking, if it had one); and
 * computes the decay of each row to the read time.  An unknown session
 * has no affinity: only the popularity prior ranks for it.
 */
static void
LoadVisitor(text *session_id, TimestampTz at, Visitor *visitor)
{
	static const RegProcedure text_eq[1] = {F_TEXTEQ};
	static const RegProcedure int8_eq[1] = {F_INT8EQ};
	static const RegProcedure affinity_eq[2] = {F_INT8EQ, F_TEXTEQ};
	Snapshot	snapshot = GetActiveSnapshot();
	Datum		key = PointerGetDatum(session_id);
	DirectTable table;
	bool		isnull;
	Datum		profile_id;
	bool		customer = false;
	bool		has_session = false;

	memset(visitor, 0, sizeof(Visitor));
	visitor->session_factor = visitor->profile_factor = visitor->session_in_profile_factor = 1.0;
	visitor->control = ArmIsControl(session_id, false, 0);
	visitor->exposed = ReadRecordedArm(session_id, snapshot, &visitor->control);

	OpenDirectTable(&table, DIRECT_SESSIONS, false);
	if (!FetchByPrimaryKey(&table, snapshot, 1, &key, text_eq))
	{
		CloseDirectTable(&table);
		return;
	}
	/* copied out of the row before the table (and its buffer) is let go */
	profile_id = Int64GetDatum(DatumGetInt64(DirectRowValue(&table, "profile_id", &isnull)));
	CloseDirectTable(&table);

	OpenDirectTable(&table, DIRECT_PROFILES, false);
	if (FetchByPrimaryKey(&table, snapshot, 1, &profile_id, int8_eq))
	{
		(void) DirectRowValue(&table, "customer_id", &isnull);
		customer = !isnull;
	}
	CloseDirectTable(&table);
	if (customer && !visitor->exposed)
		visitor->control = ArmIsControl(session_id, true, DatumGetInt64(profile_id));

	OpenDirectTable(&table, DIRECT_AFFINITY, false);
	for (int scope = 0; scope < 2; scope++)
	{
		bool		profile_scope = scope == 0;
		Datum		keys[2] = {profile_id, profile_scope ? CStringGetTextDatum("") : key};
		AffinityState *state = profile_scope ? &visitor->profile : &visitor->session;
		Datum		entries;
		Datum		decayed_to;

		if (!FetchByPrimaryKey(&table, snapshot, 2, keys, affinity_eq))
			continue;			/* no affinity row yet */
		entries = DirectRowValue(&table, "entries", &isnull);
		decayed_to = DirectRowValue(&table, "decayed_to", &isnull);
		DecodeAffinity(DatumGetByteaPP(entries), DatumGetTimestampTz(decayed_to), state);
		if (profile_scope)
			visitor->profile_factor = AffinityDecay(state->decayed_to, at, false);
		else
		{
			visitor->session_factor = AffinityDecay(state->decayed_to, at, true);
			has_session = true;
		}
	}
	CloseDirectTable(&table);

	/* the control arm is shown the shop's order: its affinity is never scored */
	if (has_session && !visitor->control)
	{
		float8		n;

		visitor->session_events = AffinitySessionInProfile(DatumGetInt64(profile_id), session_id,
														   visitor->session.decayed_to,
														   &visitor->session_in_profile);
		visitor->session_in_profile_factor = AffinityDecay(visitor->session_in_profile.decayed_to, at, false);
		n = (float8) visitor->session_events;
		visitor->session_shrink = SessionShrinkage == 0.0 ? 1.0 : n / (n + SessionShrinkage);
	}
}

/*
 * ScoreKey puts the session's and the profile's affinity for one key, times
 * weight, into a pair of signals (session first, then profile).  The
 * session's is shrunk by its number of events; the profile's is what is
 * left once the live session's events are taken off it (they count in the
 * session's), never crossing zero: a score the profile evicted or never
 * received (tracking off) has nothing to take off.
 */
static void
ScoreKey(Visitor *visitor, uint64 key, float8 weight, float8 *signals)
{
	float8		profile = visitor->profile_factor * AffinityScore(&visitor->profile, key);
	float8		rest = profile - visitor->session_in_profile_factor *
		AffinityScore(&visitor->session_in_profile, key);

	if (profile >= 0.0 ? rest < 0.0 : rest > 0.0)
		rest = 0.0;
	signals[0] += SessionWeight * visitor->session_shrink * weight * visitor->session_factor *
		AffinityScore(&visitor->session, key);
	signals[1] += weight * rest;
}

/*
 * ScoreCategoryPath adds the affinity for a category and, damped, for its
 * ancestors to an item's category signals.  It returns false for a
 * category the catalogue does not hold.  May replace SPI_tuptable.
 */
static bool
ScoreCategoryPath(Visitor *visitor, text *category_id, RankItem *item)
{
	uint64		path[MAX_CATEGORY_DEPTH];
	int			depth = CategoryPath(AffinityTextKey(AFFINITY_CATEGORY, category_id), path);
	float8		share = 1.0;

	for (int k = 0; k < depth; k++, share *= AncestorDamping)
		ScoreKey(visitor, path[k], share, &item->signals[SIGNAL_SESSION_CATEGORY]);
	if (depth > 0)
		item->category_key = path[0];
	return depth > 0;
}

/*
 * RequireExplain returns the explain flag, refusing NULL.
 */
static bool
RequireExplain(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("explain must not be null"),
				 errhint("Pass true to have every row say why it ranks where it does, or omit it.")));
	return PG_GETARG_BOOL(argno);
}

/*
 * CompareIds orders items by id bytes, then by input position, so that the
 * first of equal ids comes first.
 */
static int
CompareIds(const void *a, const void *b)
{
	const RankItem *left = *(RankItem *const *) a;
	const RankItem *right = *(RankItem *const *) b;
	int			left_len = VARSIZE_ANY_EXHDR(left->id);
	int			right_len = VARSIZE_ANY_EXHDR(right->id);
	int			cmp = memcmp(VARDATA_ANY(left->id), VARDATA_ANY(right->id), Min(left_len, right_len));

	if (cmp != 0)
		return cmp;
	if (left_len != right_len)
		return left_len < right_len ? -1 : 1;
	return left->input_position - right->input_position;
}

/*
 * CandidateIndex gives ranking a way to find a candidate by id: the items
 * sorted by id, with every repeat of an id marked duplicate.
 */
typedef struct CandidateIndex
{
	int			count;
	RankItem  **sorted;
} CandidateIndex;

/*
 * IndexCandidates sorts the items by id and marks repeats as duplicates.
 */
static CandidateIndex
IndexCandidates(RankItem *items, int count)
{
	CandidateIndex index = {count, palloc(sizeof(RankItem *) * (count + 1))};

	for (int i = 0; i < count; i++)
		index.sorted[i] = &items[i];
	qsort(index.sorted, count, sizeof(RankItem *), CompareIds);
	for (int i = 1; i < count; i++)
		index.sorted[i]->duplicate = TextEqual(index.sorted[i - 1]->id, index.sorted[i]->id);
	return index;
}

/*
 * FindPosition returns the place in the index of the first item with the
 * given id, or -1.
 */
static int
FindPosition(CandidateIndex *index, text *id)
{
	RankItem	probe = {.id = id, .input_position = -1};
	RankItem   *probe_ref = &probe;
	int			low = 0;
	int			high = index->count;

	/* the probe sorts before every item with its id: find where it would go */
	while (low < high)
	{
		int			middle = low + (high - low) / 2;

		if (CompareIds(&index->sorted[middle], &probe_ref) < 0)
			low = middle + 1;
		else
			high = middle;
	}
	if (low < index->count && TextEqual(index->sorted[low]->id, id))
		return low;
	return -1;
}

/*
 * DistinctIds returns the distinct ids of the indexed items as a text[].
 */
static Datum
DistinctIds(CandidateIndex *index)
{
	Datum	   *ids = palloc(sizeof(Datum) * (index->count + 1));
	int			count = 0;

	for (int i = 0; i < index->count; i++)
		if (!index->sorted[i]->duplicate)
			ids[count++] = PointerGetDatum(index->sorted[i]->id);
	return PointerGetDatum(construct_array(ids, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * RequireCandidateCount refuses more candidates than one call ranks.
 */
static void
RequireCandidateCount(int count)
{
	if (count > MAX_RANK_CANDIDATES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%d candidates are more than the %d one call ranks", count, MAX_RANK_CANDIDATES),
				 errhint("Rank the candidates a page shows, at most %d.", MAX_RANK_CANDIDATES)));
}

/*
 * ReadCandidates returns the candidates text[] argument as items in the
 * shop's order, refusing a NULL array, NULL elements, too many elements
 * and ids no shop would send (empty, too long, control characters).
 */
static RankItem *
ReadCandidates(FunctionCallInfo fcinfo, int argno, int *count)
{
	ArrayType  *array;
	Datum	   *elements;
	bool	   *nulls;
	RankItem   *items;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("candidates must not be null"),
				 errhint("Pass the ids the page is about to show, in the shop's order, as a text array.")));
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("candidates must be a one-dimensional array"),
				 errdetail("The array given has %d dimensions.", ARR_NDIM(array)),
				 errhint("Pass the ids the page is about to show, in the shop's order, as a text array.")));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elements, &nulls, count);
	RequireCandidateCount(*count);

	items = palloc0(sizeof(RankItem) * (*count + 1));
	for (int i = 0; i < *count; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("candidate %d is null", i + 1),
					 errhint("Pass only the ids the page is about to show.")));
		items[i].id = DatumGetTextPP(elements[i]);
		CheckIdentifierText(items[i].id, "candidate");
		items[i].input_position = i;
	}
	return items;
}

/*
 * CompareRanked orders items by tier, then score (highest first), then the
 * shop's order, which makes ties stable.
 */
static int
CompareRanked(const void *a, const void *b)
{
	const RankItem *left = (const RankItem *) a;
	const RankItem *right = (const RankItem *) b;

	if (left->tier != right->tier)
		return left->tier < right->tier ? -1 : 1;
	if (left->score != right->score)
		return left->score > right->score ? -1 : 1;
	return left->input_position - right->input_position;
}

/*
 * SumSignals sets each item's score to the sum of its signals.
 */
static void
SumSignals(RankItem *items, int count)
{
	for (int i = 0; i < count; i++)
	{
		items[i].score = 0.0;
		for (int s = 0; s < NUM_SIGNALS; s++)
			items[i].score += items[i].signals[s];
	}
}

/*
 * PushKey adds an object key to a jsonb under construction.
 */
static void
PushKey(JsonbParseState **state, const char *key)
{
	JsonbValue	value = {.type = jbvString};

	value.val.string.val = (char *) key;
	value.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &value);
}

/* Decimal places an explanation's figures are rounded to. */
#define EXPLAIN_DIGITS 4

/*
 * RoundForReading returns figure rounded to EXPLAIN_DIGITS decimal places,
 * or NULL when it rounds to zero: an explanation is read by people, and
 * 2.78e-45 says nothing to them.
 */
static Numeric
RoundForReading(float8 figure)
{
	Datum		rounded = DirectFunctionCall2(numeric_round,
											  DirectFunctionCall1(float8_numeric, Float8GetDatum(figure)),
											  Int32GetDatum(EXPLAIN_DIGITS));

	if (DatumGetBool(DirectFunctionCall2(numeric_eq, rounded,
										 DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))))
		return NULL;
	return DatumGetNumeric(rounded);
}

/*
 * PushRounded adds key: figure rounded for reading, unless it rounds to zero.
 */
static void
PushRounded(JsonbParseState **state, const char *key, float8 figure)
{
	JsonbValue	value = {.type = jbvNumeric};

	value.val.numeric = RoundForReading(figure);
	if (value.val.numeric == NULL)
		return;
	PushKey(state, key);
	pushJsonbValue(state, WJB_VALUE, &value);
}

/*
 * PushCategorySources adds "category_from": {category id: its part of the
 * session_category and profile_category signals} for each category on the
 * path of the item's category that contributes, so that an affinity a leaf
 * inherits from a parent says which parent it came from.
 */
static void
PushCategorySources(JsonbParseState **state, Visitor *visitor, RankItem *item)
{
	uint64		path[MAX_CATEGORY_DEPTH];
	int			depth = CategoryPath(item->category_key, path);
	float8		share = 1.0;
	bool		opened = false;

	for (int k = 0; k < depth; k++, share *= AncestorDamping)
	{
		float8		parts[2] = {0.0, 0.0};
		char	   *category_id;

		ScoreKey(visitor, path[k], share, parts);
		if (RoundForReading(parts[0] + parts[1]) == NULL)
			continue;
		category_id = CategoryName(path[k]);
		if (category_id == NULL)
			continue;
		if (!opened)
		{
			PushKey(state, "category_from");
			pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
			opened = true;
		}
		PushRounded(state, category_id, parts[0] + parts[1]);
	}
	if (opened)
		pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * PushShrinkage adds "session_shrinkage": {"events": n, "weight": n / (n +
 * k)}, how many events the session's signals rest on and the weight that
 * gave them (already in session_product, session_category and
 * session_brand, so it is not a part of the score).
 */
static void
PushShrinkage(JsonbParseState **state, Visitor *visitor)
{
	JsonbValue	value = {.type = jbvNumeric};

	PushKey(state, "session_shrinkage");
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	PushKey(state, "events");
	value.val.numeric = int64_to_numeric(visitor->session_events);
	pushJsonbValue(state, WJB_VALUE, &value);
	PushRounded(state, "weight", visitor->session_shrink);
	pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * Explain builds an item's explanation: its arm, every signal that is not
 * zero at EXPLAIN_DIGITS decimal places (they sum to the score, which stays
 * exact), from which categories the category signals came, and why it was
 * put last if it was.
 */
static Datum
Explain(Visitor *visitor, RankItem *item, bool control)
{
	JsonbParseState *state = NULL;
	JsonbValue	value;
	JsonbValue *result;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	PushKey(&state, "arm");
	value.type = jbvString;
	value.val.string.val = (char *) ArmName(control);
	value.val.string.len = strlen(value.val.string.val);
	pushJsonbValue(&state, WJB_VALUE, &value);

	for (int s = 0; s < NUM_SIGNALS && !control; s++)
	{
		if (item->signals[s] != 0.0)
			PushRounded(&state, SignalNames[s], item->signals[s]);
	}
	if (!control && item->category_key != 0 &&
		(item->signals[SIGNAL_SESSION_CATEGORY] != 0.0 || item->signals[SIGNAL_PROFILE_CATEGORY] != 0.0))
		PushCategorySources(&state, visitor, item);
	if (!control && visitor->session_events > 0)
		PushShrinkage(&state, visitor);
	if (!control && item->tier != TIER_RANKED)
	{
		PushKey(&state, item->tier == TIER_UNKNOWN ? "unknown" : "out_of_stock");
		value.type = jbvBool;
		value.val.boolean = true;
		pushJsonbValue(&state, WJB_VALUE, &value);
	}
	if (!control && item->no_category)
	{
		PushKey(&state, "no_category");
		value.type = jbvBool;
		value.val.boolean = true;
		pushJsonbValue(&state, WJB_VALUE, &value);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(result));
}

/*
 * EmitRanking returns the items as the function's rows: for the
 * personalised arm sorted by tier, score and the shop's order; for the
 * control arm in the shop's order with score 0.  Repeated candidates are
 * returned once, at their first place.
 */
static void
EmitRanking(FunctionCallInfo fcinfo, Visitor *visitor, RankItem *items, int count, bool explain,
			bool modules)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		control = visitor->control;
	int32		position = 0;

	SumSignals(items, count);
	if (!control)
		qsort(items, count, sizeof(RankItem), CompareRanked);

	for (int i = 0; i < count; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		int			column = 0;

		if (items[i].duplicate)
			continue;
		values[column++] = PointerGetDatum(items[i].id);
		if (modules)
		{
			nulls[column] = items[i].category_id == NULL;
			values[column++] = PointerGetDatum(items[i].category_id);
		}
		values[column++] = Float8GetDatum(items[i].score);
		values[column++] = Int32GetDatum(++position);
		nulls[column] = !explain;
		values[column] = explain ? Explain(visitor, &items[i], control) : (Datum) 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * ScoreProducts looks up each candidate's catalogue facts and popularity
 * (catalogue.c's cache, so a warm backend reads no table) and fills in its
 * tier and signals.  A candidate the catalogue does not hold stays unknown.
 */
static void
ScoreProducts(Visitor *visitor, RankItem *items, int count)
{
	for (int i = 0; i < count; i++)
	{
		RankItem   *item = &items[i];
		ProductFacts facts;

		item->tier = TIER_UNKNOWN;
		if (item->duplicate || !LookupProduct(item->id, &facts))
			continue;
		item->tier = facts.in_stock ? TIER_RANKED : TIER_OUT_OF_STOCK;
		if (facts.has_popularity)
			item->signals[SIGNAL_POPULARITY] = PopularityWeight * facts.popularity;
		ScoreKey(visitor, AffinityTextKey(AFFINITY_PRODUCT, item->id), 1.0,
				 &item->signals[SIGNAL_SESSION_PRODUCT]);
		if (facts.brand != NULL)
			ScoreKey(visitor, AffinityTextKey(AFFINITY_BRAND, facts.brand), BrandWeight,
					 &item->signals[SIGNAL_SESSION_BRAND]);
		if (facts.category_id != NULL)
			ScoreCategoryPath(visitor, facts.category_id, item);
	}
}

/*
 * ApplyCategoryPopularity gives every ranked item the popularity prior of
 * its category: the item itself for rank_categories, the module's category
 * for rank_modules.
 */
static void
ApplyCategoryPopularity(RankItem *items, int count, bool modules)
{
	RankItem   *probes = palloc0(sizeof(RankItem) * (count + 1));
	int			probe_count = 0;
	CandidateIndex index;
	Datum		values[1];
	SPITupleTable *rows;
	uint64		found;

	for (int i = 0; i < count; i++)
	{
		text	   *category_id = modules ? items[i].category_id : items[i].id;

		if (category_id == NULL || items[i].duplicate || items[i].tier != TIER_RANKED)
			continue;
		probes[probe_count].id = category_id;
		probes[probe_count++].input_position = i;
	}
	if (probe_count == 0)
		return;

	index = IndexCandidates(probes, probe_count);
	values[0] = DistinctIds(&index);
	ExecSaved(&CategoryPopularityStatement, values, NULL, true, 0);
	rows = SPI_tuptable;
	found = SPI_processed;
	for (uint64 r = 0; r < found; r++)
	{
		bool		isnull;
		text	   *category_id = DatumGetTextPP(SPI_getbinval(rows->vals[r], rows->tupdesc, 1, &isnull));
		float8		score = DatumGetFloat8(SPI_getbinval(rows->vals[r], rows->tupdesc, 2, &isnull));
		int			first = FindPosition(&index, category_id);

		/* the index keeps equal ids together: every item of this category follows */
		for (int j = first; j >= 0 && j < probe_count && TextEqual(index.sorted[j]->id, category_id); j++)
			items[index.sorted[j]->input_position].signals[SIGNAL_POPULARITY] = PopularityWeight * score;
	}
}

/*
 * ScoreCategories fills in the tier and the affinity signals of items that
 * stand for categories (rank_categories, or rank_modules with modules
 * true), then their popularity prior.  A module without a category ranks
 * on nothing; one whose category the catalogue does not hold goes last.
 */
static void
ScoreCategories(Visitor *visitor, RankItem *items, int count, bool modules)
{
	for (int i = 0; i < count; i++)
	{
		text	   *category_id = modules ? items[i].category_id : items[i].id;

		if (items[i].duplicate)
			continue;
		if (category_id == NULL)
		{
			items[i].no_category = true;
			items[i].tier = TIER_RANKED;
		}
		else
			items[i].tier = ScoreCategoryPath(visitor, category_id, &items[i]) ? TIER_RANKED : TIER_UNKNOWN;
	}
	ApplyCategoryPopularity(items, count, modules);
}

/*
 * ModuleField returns the string value of key in a module object, NULL
 * when it is absent or null, refusing any other type.
 */
static text *
ModuleField(JsonbContainer *module, const char *key, int number)
{
	JsonbValue *found = getKeyJsonValueFromContainer(module, key, strlen(key), NULL);
	text	   *value;

	if (found == NULL || found->type == jbvNull)
		return NULL;
	if (found->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("module %d has a %s that is not a string", number, key),
				 errhint("Describe each module as {\"module\": \"name\", \"category_id\": \"id\"}.")));
	value = cstring_to_text_with_len(found->val.string.val, found->val.string.len);
	CheckIdentifierText(value, key);
	return value;
}

/*
 * ReadModules returns the modules jsonb argument as items in the shop's
 * order: a JSON array of {"module": name, "category_id": id or null}.
 */
static RankItem *
ReadModules(FunctionCallInfo fcinfo, int argno, int *count)
{
	Jsonb	   *modules;
	RankItem   *items;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("modules must not be null"),
				 errhint("Pass a JSON array of {\"module\": \"name\", \"category_id\": \"id\"} in the shop's order.")));
	modules = JsonArgument(fcinfo, argno, "modules",
						   "Pass a JSON array of {\"module\": \"name\", \"category_id\": \"id\"} in the shop's order.");
	if (!JB_ROOT_IS_ARRAY(modules) || JB_ROOT_IS_SCALAR(modules))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("modules must be a JSON array"),
				 errdetail("A JSON object does not keep the order of its keys, which is the shop's order."),
				 errhint("Pass a JSON array of {\"module\": \"name\", \"category_id\": \"id\"} in the shop's order.")));

	*count = JB_ROOT_COUNT(modules);
	RequireCandidateCount(*count);
	items = palloc0(sizeof(RankItem) * (*count + 1));
	for (int i = 0; i < *count; i++)
	{
		JsonbValue *module = getIthJsonbValueFromContainer(&modules->root, i);

		if (module->type != jbvBinary || !JsonContainerIsObject(module->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("module %d is not a JSON object", i + 1),
					 errhint("Describe each module as {\"module\": \"name\", \"category_id\": \"id\"}.")));
		items[i].id = ModuleField(module->val.binary.data, "module", i + 1);
		if (items[i].id == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("module %d has no module name", i + 1),
					 errhint("Describe each module as {\"module\": \"name\", \"category_id\": \"id\"}.")));
		items[i].category_id = ModuleField(module->val.binary.data, "category_id", i + 1);
		items[i].input_position = i;
	}
	return items;
}

/* What a ranking call ranks. */
typedef enum RankKind
{
	RANK_PRODUCTS,
	RANK_CATEGORIES,
	RANK_MODULES
} RankKind;

/*
 * Rank is the body of the three ranking functions: it reads and checks the
 * arguments (session_id, candidates or modules, explain, at), reads the
 * visitor, records its exposure if this is its first ranking, scores the
 * candidates unless the visitor is in the control arm, and returns them
 * ranked.
 */
static Datum
Rank(FunctionCallInfo fcinfo, RankKind kind)
{
	text	   *session_id = RequireIdentifier(fcinfo, 0, "session_id");
	int			count;
	RankItem   *items = kind == RANK_MODULES ? ReadModules(fcinfo, 1, &count)
		: ReadCandidates(fcinfo, 1, &count);
	bool		explain = RequireExplain(fcinfo, 2);
	TimestampTz at = RequireInstant(fcinfo, 3, "at");
	Visitor		visitor;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	LoadVisitor(session_id, at, &visitor);
	if (!visitor.exposed && DirectTableExists(DIRECT_RANKING_EXPOSURES))
		RecordExposure(session_id, visitor.control, at);
	(void) IndexCandidates(items, count);	/* marks the repeats */
	if (!visitor.control && kind == RANK_PRODUCTS)
		ScoreProducts(&visitor, items, count);
	else if (!visitor.control)
		ScoreCategories(&visitor, items, count, kind == RANK_MODULES);
	EmitRanking(fcinfo, &visitor, items, count, explain, kind == RANK_MODULES);
	SPI_finish();
	return (Datum) 0;
}

/*
 * rank_products(session_id, candidates, explain, at) returns every
 * candidate product once with its score and position (1 first), and with
 * explain its reason.
 */
Datum
rank_products(PG_FUNCTION_ARGS)
{
	return Rank(fcinfo, RANK_PRODUCTS);
}

/*
 * rank_categories(session_id, candidates, explain, at) returns every
 * candidate category once with its score and position.
 */
Datum
rank_categories(PG_FUNCTION_ARGS)
{
	return Rank(fcinfo, RANK_CATEGORIES);
}

/*
 * rank_modules(session_id, modules, explain, at) ranks the homepage's
 * modules, each standing for a category, and returns every module once
 * with its category, score and position.
 */
Datum
rank_modules(PG_FUNCTION_ARGS)
{
	return Rank(fcinfo, RANK_MODULES);
}

/*
 * holdout_arm_session(session_id) returns the session's ranking arm,
 * 'personalised' or 'control', as rank_* applies it now: the arm recorded
 * at its first ranking, or else the one its hash gives.
 */
Datum
holdout_arm_session(PG_FUNCTION_ARGS)
{
	text	   *session_id = RequireIdentifier(fcinfo, 0, "session_id");
	Datum		values[1] = {PointerGetDatum(session_id)};
	bool		isnull;
	bool		control;

	SPI_connect();
	ExecSaved(&RecordedArmStatement, values, NULL, true, 1);
	if (SPI_processed > 0)
		control = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	else
	{
		ExecSaved(&CustomerOfSessionStatement, values, NULL, true, 1);
		if (SPI_processed == 0)
			control = ArmIsControl(session_id, false, 0);
		else
			control = ArmIsControl(session_id, true,
								   DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
															   SPI_tuptable->tupdesc, 1, &isnull)));
	}
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(ArmName(control)));
}

/*
 * holdout_arm_of(session_id, customer_profile_id) returns the arm of a
 * session given its customer's profile, NULL while it is anonymous,
 * without reading anything (the ranking_holdout view groups sessions by
 * it).  With only a profile it returns the arm of that customer.
 */
Datum
holdout_arm_of(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(1))
		PG_RETURN_TEXT_P(cstring_to_text(ArmName(ArmIsControl(RequireIdentifier(fcinfo, 0, "session_id"),
															  false, 0))));
	PG_RETURN_TEXT_P(cstring_to_text(ArmName(ArmIsControl(NULL, true, PG_GETARG_INT64(1)))));
}

/*
 * refresh_popularity(now) recomputes the popularity prior from the page
 * views and purchases of the last personalisation.popularity_window, each
 * decayed to now with personalisation.popularity_half_life: per product,
 * and per category with its descendants' damped as in the affinity model.
 * Scores are shares of the most popular (0 to 1).  Readers see the old
 * prior until the new one commits; concurrent refreshes queue.
 */
Datum
refresh_popularity(PG_FUNCTION_ARGS)
{
	TimestampTz now = RequireInstant(fcinfo, 0, "now");
	TupleDesc	tupdesc;
	Datum		values[7];
	Datum		result[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "refresh_popularity must return a record");

	values[0] = TimestampTzGetDatum(now);
	values[1] = TimestampTzGetDatum(now - (TimestampTz) PopularityWindowSeconds * USECS_PER_SEC);
	values[2] = Float8GetDatum((float8) PopularityHalfLifeSeconds);
	values[3] = Float8GetDatum(PageViewWeight);
	values[4] = Float8GetDatum(PurchaseWeight);
	values[5] = Float8GetDatum(AncestorDamping);
	values[6] = Int32GetDatum(MAX_CATEGORY_DEPTH);

	SPI_connect();
	ExecSaved(&LockPopularityStatement, NULL, NULL, false, 0);
	ExecSaved(&ClearProductPopularityStatement, NULL, NULL, false, 0);
	ExecSaved(&ProductPopularityStatement, values, NULL, false, 0);
	result[0] = Int64GetDatum((int64) SPI_processed);
	ExecSaved(&ClearCategoryPopularityStatement, NULL, NULL, false, 0);
	ExecSaved(&CategoryPopularityRefreshStatement, values, NULL, false, 0);
	result[1] = Int64GetDatum((int64) SPI_processed);
	SPI_finish();

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), result, nulls)));
}
