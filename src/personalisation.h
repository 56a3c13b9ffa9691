/*
 * personalisation.h
 *		Declarations shared between the capability files: the GUC variables,
 *		each part's Init function, the saved-statement cache and the
 *		argument checks every SQL-callable function uses.
 */
#ifndef PERSONALISATION_H
#define PERSONALISATION_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lockdefs.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "compat.h"

/* GUCs (personalisation.c) */
extern int	EventRetentionMinutes;
extern int	PartitionPremakeDays;
extern int	MaxClockSkewSeconds;
extern int	MaxLeaseSeconds;
extern int	MaxOrderLines;
extern int	ComplementMinCoOrders;
extern int	ComplementWindowMinutes;
extern int	ComplementBasketCap;
extern char *BlockedIdentifiers;
extern bool PersonalisationPreloaded;
extern int	AbandonAfterMinutes;
extern int	FrequencyCap;
extern char *QuietHours;
extern char *QuietHoursTimezone;
extern double JourneyHoldoutPercent;
extern int	OutboxMaxAttempts;
extern int	RetryBackoffSeconds;
extern int	CouponValidityMinutes;
extern int	AttributionWindowMinutes;
extern int	RankingAttributionWindowMinutes;
extern int	RepeatOrderWindowMinutes;
extern int	SocialProofWindowMinutes;
extern bool WorkerEnabled;
extern int	WorkerNaptimeMs;

/* GUCs of the affinity model and ranking (personalisation.c, docs/ranking.md) */
extern bool AffinityTracking;
extern double PageViewWeight;
extern double CartAddWeight;
extern double CartRemoveWeight;
extern double PurchaseWeight;
extern int	ProfileHalfLifeSeconds;
extern int	SessionHalfLifeSeconds;
extern double AncestorDamping;
extern int	AffinityMaxEntries;
extern int	ProductCacheSize;
extern double SessionWeight;
extern double BrandWeight;
extern double PopularityWeight;
extern int	PopularityHalfLifeSeconds;
extern int	PopularityWindowSeconds;
extern double RankingHoldoutPercent;

/* personalisation.c: the extension's one relcache callback dispatches to these */
extern void RegisterRelcacheListener(RelcacheCallbackFunction listener);

/* Longest identifier (session, product, order, event id) accepted, in bytes. */
#define MAX_IDENTIFIER_BYTES 256

/*
 * Bounds on the numbers a shop passes (docs/reference.md, "Input checks"),
 * which no real shop reaches and which keep every total, report and
 * message payload a number of a few dozen digits: a quantity of an order
 * line or cart line is 1 to MAX_QUANTITY; a price (catalogue, order line,
 * journey step amounts) is 0 or more, below 10^MAX_PRICE_DIGITS, with at
 * most MAX_PRICE_SCALE decimal places; a supply, a replenishment period
 * and every journey interval is at most MAX_SUPPLY_DAYS days.  The schema's
 * CHECK constraints (sql/schema.sql, sql/journeys.sql) say the same.
 */
#define MAX_QUANTITY 1000000
#define MAX_PRICE_DIGITS 12
#define MAX_PRICE_SCALE 4
#define MAX_SUPPLY_DAYS 3650

/* Most parameters any saved statement takes. */
#define SAVED_STATEMENT_MAX_ARGS 10

/*
 * A statement prepared once per backend on first use and kept across
 * transactions; the plan cache revalidates it when the tables change.
 * cursor_options (CURSOR_OPT_*) shape its plan: CURSOR_OPT_FAST_PLAN for a
 * statement read through OpenSavedCursor and stopped early,
 * CURSOR_OPT_GENERIC_PLAN for a hot statement whose best plan does not
 * depend on its arguments, so that it is never planned again per call.
 */
typedef struct SavedStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[SAVED_STATEMENT_MAX_ARGS];
	SPIPlanPtr	plan;
	int			cursor_options;
} SavedStatement;

/* util.c */
extern int	ExecSaved(SavedStatement *statement, Datum *values, const char *nulls,
					  bool read_only, long count);
extern Portal OpenSavedCursor(SavedStatement *statement, Datum *values, const char *nulls);
extern int	ExecPinned(const char *sql, int nargs, Oid *argtypes, Datum *values, const char *nulls,
					   bool read_only, long count);
extern Portal OpenPinnedCursor(const char *sql, int nargs, Oid *argtypes, Datum *values, bool read_only);
extern int	PinSearchPath(void);
extern void UnpinSearchPath(int level);
extern bool TextEqual(text *left, text *right);
extern char *ClipForMessage(const char *value);
extern int	TextCompare(text *left, text *right);
extern void CheckIdentifierText(text *value, const char *argname);
extern text *RequireIdentifier(FunctionCallInfo fcinfo, int argno, const char *argname);
extern text *OptionalIdentifier(FunctionCallInfo fcinfo, int argno, const char *argname);
extern TimestampTz RequireEventTime(FunctionCallInfo fcinfo, int argno);
extern TimestampTz RequireInstant(FunctionCallInfo fcinfo, int argno, const char *argname);
extern int32 RequirePositiveQuantity(FunctionCallInfo fcinfo, int argno);
extern Jsonb *JsonArgument(FunctionCallInfo fcinfo, int argno, const char *argname, const char *hint);
extern TimestampTz EventRetentionCutoff(TimestampTz now);
extern void LockAdvisoryKey(int32 space, int32 key, LOCKMODE mode);

/* How many advisory locks of one kind a transaction takes (LockAdvisoryKeyWithin). */
typedef struct AdvisoryAllowance
{
	int			limit;
	LocalTransactionId xact;	/* the transaction the count is for */
	int			taken;
} AdvisoryAllowance;

extern bool LockAdvisoryKeyWithin(int32 space, int32 key, LOCKMODE mode, AdvisoryAllowance *allowance);
extern int32 HashText(text *value);
extern void RequireWritableServer(FunctionCallInfo fcinfo);

/* One event as it is written to personalisation.events. */
typedef struct TrackedEvent
{
	const char *kind;			/* page_view, cart_add, cart_remove, purchase, subscription_start, subscription_stop */
	text	   *event_id;		/* NULL when the shop supplied none */
	text	   *session_id;
	TimestampTz occurred_at;
	int64		profile_id;
	text	   *category_id;	/* NULL when not applicable */
	text	   *product_id;		/* NULL when not applicable */
	int32		quantity;		/* 0 when not applicable */
	text	   *order_id;		/* purchases only */
	Datum		value;			/* purchases only: the order total (numeric) */
	bool		facets_read;	/* the product's catalogue row was read: */
	text	   *brand;			/* its brand (NULL when it has none) */
} TrackedEvent;

/* events.c */
extern int64 LockedSessionProfile(text *session_id, TimestampTz *last_seen_at);
extern int64 TouchSession(text *session_id, TimestampTz occurred_at);
extern bool ClaimEventKey(text *event_id, TimestampTz occurred_at);
extern void InsertEvent(TrackedEvent *event);
extern void SummariseCart(TrackedEvent *event);
extern void RefreshCart(TrackedEvent *event);

/* complement.c */
extern void CountPurchase(text *order_id, TimestampTz occurred_at, Datum product_ids);
extern void UncountOrder(text *order_id, TimestampTz occurred_at);

/* One complement of a product, as also_bought reports it. */
typedef struct Complement
{
	Datum		product_id;		/* text */
	int64		co_orders;
	int64		other_orders;
	double		confidence;
	double		lift;
	double		jaccard;
} Complement;

/*
 * One product recommended for a set of source products (a cart, an order):
 * its blended score, why (its largest contribution's reason), its strongest
 * link to a source (the complement as the source because_of lists it; for
 * the other reasons link holds only product_id and other_orders) and the
 * source it is because of: the source of its category for
 * REASON_POPULAR_IN_CATEGORY, the product itself for REASON_REPURCHASE.
 */
typedef enum RecommendationReason
{
	REASON_ALSO_BOUGHT,			/* a complement of a source */
	REASON_REPURCHASE,			/* the profile buys it again and again */
	REASON_POPULAR_IN_CATEGORY, /* popular in a source's category */
	REASON_POPULAR				/* popular in the shop */
} RecommendationReason;

typedef struct Recommendation
{
	Complement	link;
	Datum		because_of;		/* text; 0 for REASON_POPULAR */
	double		score;
	RecommendationReason reason;
} Recommendation;

/*
 * What a profile may buy again (see PROFILE_PURCHASES_SQL): product ids
 * (text datums, sorted in byte order), the number of the profile's orders
 * containing each, and the profile's orders in all.
 */
typedef struct Repurchases
{
	Datum	   *product_ids;
	int64	   *orders;
	int			count;
	int64		profile_orders;
} Repurchases;

/*
 * PROFILE_PURCHASES_SQL(profile, at, on, min_orders) is a subquery of one row per
 * product the profile (an SQL expression) has ordered: product_id (byte
 * order), orders (how many of its orders contain it) and repurchasable:
 * whether it may be recommended again as of `at` when `on`
 * (personalisation.recommend_repurchase): in stock, never refunded, and
 * either replenishable (products.replenish_days) and last ordered at least
 * replenish_days before `at`, or not replenishable and in at least
 * min_orders (personalisation.repurchase_min_orders) of the profile's orders.
 */
#define PROFILE_PURCHASES_SQL(profile, at, on, min_orders) \
	"SELECT l.product_id COLLATE \"C\" AS product_id, pg_catalog.count(*) AS orders," \
	"       (" on " AND pg_catalog.bool_and(o.refunded_at IS NULL) AND coalesce(pg_catalog.bool_and(p.in_stock), false)" \
	"        AND CASE WHEN pg_catalog.max(p.replenish_days) IS NULL THEN pg_catalog.count(*) >= " min_orders \
	"                 ELSE pg_catalog.max(o.occurred_at) OPERATOR(pg_catalog.+) (pg_catalog.max(p.replenish_days)::pg_catalog.float8" \
	"                      OPERATOR(pg_catalog.*) interval '1 day') <= " at " END) AS repurchasable" \
	"  FROM personalisation.orders o JOIN personalisation.order_lines l ON l.order_id = o.order_id" \
	"  LEFT JOIN personalisation.products p ON p.product_id = l.product_id" \
	" WHERE o.profile_id = " profile " GROUP BY l.product_id COLLATE \"C\""

extern bool RecommendRepurchase;
extern int	RepurchaseMinOrders;
extern Recommendation *RecommendForSources(Datum *sources, int nsources, Datum *excluded,
										   int nexcluded, Repurchases *repurchases, int n,
										   int *count);
extern void ForgetPopularity(void);
extern void RecommendInit(void);
extern void RankInit(void);
/*
 * identity.c: one merge of an anonymous profile into a customer's profile,
 * as handed to each merge step's move and undo (see MergeSteps[] there).
 */
typedef struct Merge
{
	int64		merge_id;
	int64		from_profile_id;	/* the anonymous profile */
	int64		into_profile_id;	/* the customer's profile */
	TimestampTz merged_at;		/* when the login happened */
} Merge;

/*
 * A merge step's statement: $1 merge_id, $2 from_profile_id,
 * $3 into_profile_id, $4 merged_at.  Run it with ExecMergeStatement.
 */
#define MERGE_STATEMENT(sql) {(sql), 4, {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID}, NULL}

extern int64 ExecMergeStatement(SavedStatement *statement, const Merge *merge);
extern bool LockSessionForEvent(text *session_id);
extern void LockSessions(Datum *session_ids, int count);
extern void LockCustomer(text *customer_id);
extern void LockProfile(int64 profile_id);

/* affinity.c: AffinityRecordEvent runs inside the tracking call's SPI connection */
extern void AffinityRecordEvent(TrackedEvent *event);
extern int64 AffinityMergeMove(const Merge *merge);
extern int64 AffinityMergeUndo(const Merge *merge);
extern void LockAffinityWriters(void);

/* catalogue.c */
extern void CatalogueInit(void);

/* subscriptions.c: the subscriptions' merge step */
extern int64 SubscriptionMergeProfiles(const Merge *merge);
extern int64 SubscriptionUnmergeProfiles(const Merge *merge);

/* journey_hooks.c: the journeys' merge step */
extern int64 JourneyMergeProfiles(const Merge *merge);
extern int64 JourneyUnmergeProfiles(const Merge *merge);
/* journey.c: the sequence clock, shared by run_due() and the background worker */
extern int	RunDue(TimestampTz now, int max_runs, bool *more);
extern TimestampTz NextDueAt(TimestampTz now);

/* journey_hooks.c: exit rules fired by tracked events, and profile merges */
extern void JourneyCartChanged(int64 profile_id);
extern void JourneyPurchase(int64 profile_id, TimestampTz occurred_at);
extern void JourneyRefund(int64 profile_id, TimestampTz occurred_at);
extern void JourneySubscribed(int64 profile_id, TimestampTz occurred_at);

/* post_purchase.c: enrolment in the post-purchase journeys */
extern void JourneyOrderPlaced(int64 profile_id, text *session_id, text *order_id,
							   TimestampTz occurred_at);
extern void JourneyConsentWithdrawn(int64 profile_id, text *session_id, const char *channel,
									TimestampTz occurred_at);

/* journey_steps.c: the quiet-hours settings */
extern bool CheckQuietHours(char **newval, void **extra, GucSource source);
extern void AssignQuietHours(const char *newval, void *extra);
extern bool CheckQuietHoursTimezone(char **newval, void **extra, GucSource source);
extern void AssignQuietHoursTimezone(const char *newval, void *extra);

/* direct.c: direct table access for the tracking hot path */
typedef enum DirectTableId
{
	DIRECT_SESSIONS,
	DIRECT_PROFILES,
	DIRECT_PRODUCTS,
	DIRECT_PRODUCT_POPULARITY,
	DIRECT_CATEGORIES,
	DIRECT_EVENT_KEYS,
	DIRECT_AFFINITY,
	DIRECT_OUTBOX,
	DIRECT_OUTBOX_QUEUE_INDEX,	/* an index: open it with OpenDirectIndex */
	DIRECT_RANKING_EXPOSURES,
	DIRECT_TABLE_COUNT
} DirectTableId;

/* A table opened by OpenDirectTable: the row read (or locked) and a scratch slot. */
typedef struct DirectTable
{
	Relation	rel;
	struct EState *estate;
	struct ResultRelInfo *result;	/* with the indexes open; NULL when read-only */
	TupleTableSlot *row;		/* the row FetchByPrimaryKey found, all attributes deformed */
	TupleTableSlot *slot;		/* the row being written */
} DirectTable;

extern bool DirectTableExists(DirectTableId table);
extern void OpenDirectTable(DirectTable *table, DirectTableId which, bool for_write);
extern void OpenDirectTableForUniqueInsert(DirectTable *table, DirectTableId which);
extern void OpenEventPartition(DirectTable *table, int64 day);
extern void CloseDirectTable(DirectTable *table);
extern Snapshot DirectSnapshot(void);
extern bool FetchByPrimaryKey(DirectTable *table, Snapshot snapshot, int nkeys, const Datum *keys,
							  const RegProcedure *eqprocs);
extern AttrNumber DirectColumn(DirectTable *table, const char *name);
extern Datum DirectRowValue(DirectTable *table, const char *name, bool *isnull);
extern void DirectNewRow(DirectTable *table, Datum **values, bool **nulls);
extern void DirectInsert(DirectTable *table, const Datum *values, const bool *nulls);
extern bool DirectInsertIfUnique(DirectTable *table, const Datum *values, const bool *nulls);
/* Turns a copy of table->row's values into the row's new values; false leaves the row alone. */
typedef bool (*RowRewriter) (DirectTable *table, void *arg, Datum *values, bool *nulls);
extern bool UpdateByPrimaryKey(DirectTable *table, Snapshot snapshot, int nkeys, const Datum *keys,
							   const RegProcedure *eqprocs, RowRewriter rewrite, void *arg);
extern bool UpdateRowUnlessBusy(DirectTable *table, Snapshot snapshot, ItemPointer tid,
								const Datum *values, const bool *nulls);
extern bool RowIsBusy(DirectTable *table);
extern Relation OpenDirectIndex(DirectTableId which);
extern void DirectInit(void);

/* partitions.c */
extern int64 EnsureEventPartition(TimestampTz occurred_at);
extern char *EventPartitionName(int64 day, MemoryContext context);
extern void PartitionsInit(void);

/* privacy.c */
extern int64 ExpireSessions(TimestampTz cutoff, int64 *forgotten);

/* worker.c */
extern void WorkerInit(void);
extern void WakeWorkerAtCommit(void);
extern bool WorkerRunsHere(void);
extern void StopDatabaseWorker(Oid database_id);
extern Oid	ExtensionOwner(void);
extern bool WakeOrStartWorker(Oid owner);
extern void LogStartFailureOnce(Oid database_id, const char *detail, const char *hint);
struct BackgroundWorker;
extern void DescribeWorker(struct BackgroundWorker *worker, const char *function, const char *type,
						   Oid database_id, Oid owner);

/* launcher.c: starts the workers at start-up and promotion */
extern void LauncherInit(void);

/* jobs.c: the periodic jobs, run by pg_cron or by the worker */
extern bool PgCronRunsJobs(void);
extern List *WorkerJobsDue(TimestampTz since, TimestampTz until);
extern void UnscheduleJobs(void);

/* lifecycle.c: DROP DATABASE and DROP EXTENSION */
extern void LifecycleInit(void);

#endif							/* PERSONALISATION_H */
