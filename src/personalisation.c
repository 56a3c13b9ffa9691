/*
 * personalisation.c
 *		Module entry point: _PG_init, the GUCs every part shares, the one
 *		relcache callback the parts share, and the report of whether the
 *		library was preloaded.
 */
#include "personalisation.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/inval.h"

PG_MODULE_MAGIC;

int			EventRetentionMinutes = 180 * 24 * 60;
int			PartitionPremakeDays = 7;
int			MaxClockSkewSeconds = 300;
int			MaxLeaseSeconds = 3600;
int			MaxOrderLines = 500;
int			ComplementMinCoOrders = 2;
int			ComplementWindowMinutes = 0;
int			ComplementBasketCap = 50;
char	   *BlockedIdentifiers = NULL;
bool		PersonalisationPreloaded = false;
int			AbandonAfterMinutes = 30;
int			FrequencyCap = 3;
char	   *QuietHours = NULL;
char	   *QuietHoursTimezone = NULL;
double		JourneyHoldoutPercent = 10.0;
int			OutboxMaxAttempts = 5;
int			RetryBackoffSeconds = 60;
int			CouponValidityMinutes = 48 * 60;
int			AttributionWindowMinutes = 7 * 24 * 60;
int			RankingAttributionWindowMinutes = 24 * 60;
int			RepeatOrderWindowMinutes = 30 * 24 * 60;
int			SocialProofWindowMinutes = 7 * 24 * 60;
bool		AffinityTracking = true;
double		PageViewWeight = 1.0;
double		CartAddWeight = 3.0;
double		CartRemoveWeight = -2.0;
double		PurchaseWeight = 5.0;
int			ProfileHalfLifeSeconds = 14 * 24 * 3600;
int			SessionHalfLifeSeconds = 30 * 60;
double		AncestorDamping = 0.5;
int			AffinityMaxEntries = 32;
int			ProductCacheSize = 65536;
double		SessionWeight = 1.0;
double		BrandWeight = 0.5;
double		PopularityWeight = 1.0;
int			PopularityHalfLifeSeconds = 3 * 24 * 3600;
int			PopularityWindowSeconds = 14 * 24 * 3600;
double		RankingHoldoutPercent = 10.0;

/*
 * Most relcache listeners the parts register.  A backend has only ten
 * relcache callback slots (PostgreSQL 15) for the server and every loaded
 * library together, so the extension takes one and dispatches inside it.
 */
#define MAX_RELCACHE_LISTENERS 4

static RelcacheCallbackFunction RelcacheListeners[MAX_RELCACHE_LISTENERS];
static int	RelcacheListenerCount = 0;

void		_PG_init(void);
static void DefineGucs(void);

PG_FUNCTION_INFO_V1(preloaded);

/*
 * _PG_init defines the GUCs.  It remembers whether it runs from
 * shared_preload_libraries, which the parts that need shared memory or a
 * background worker require.
 */
void
_PG_init(void)
{
	PersonalisationPreloaded = process_shared_preload_libraries_in_progress;
	RecommendInit();
	RankInit();
	DefineGucs();
	PartitionsInit();
	DirectInit();
	WorkerInit();
	LauncherInit();
	LifecycleInit();
	CatalogueInit();
}

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

/*
 * DefineGucs registers every personalisation.* setting and reserves the
 * prefix so that a misspelt setting is reported instead of ignored.
 */
static void
DefineGucs(void)
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

	DefineCustomIntVariable("personalisation.partition_premake",
							"How many days of future event partitions maintain_partitions() creates ahead.",
							NULL,
							&PartitionPremakeDays,
							7, 1, 366,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.max_clock_skew",
							"How far in the future an event's occurred_at may lie.",
							"Events stamped later than now() plus this are refused as a clock error; so is a now that a caller other than the extension's owner passes to the queue functions further than this from the transaction's time.",
							&MaxClockSkewSeconds,
							300, 0, 7 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.max_lease",
							"The longest lease a delivery worker may take in claim_messages.",
							"A caller other than the extension's owner asking for a longer lease is refused, so that no sender can hold messages out of the other consumers' reach.",
							&MaxLeaseSeconds,
							3600, 1, 7 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.max_order_lines",
							"The most lines one purchase may carry.",
							NULL,
							&MaxOrderLines,
							500, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.complement_min_co_orders",
							"The fewest orders two products must share to be recommended together.",
							"also_bought and recommend_for_cart leave out pairs bought together less often.",
							&ComplementMinCoOrders,
							2, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.complement_window",
							"How far back the complementarity counts reach; 0 counts every order.",
							"maintain_complementarity() takes out orders as they leave the window; "
							"a longer window takes effect at the next rebuild_complementarity().",
							&ComplementWindowMinutes,
							0, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.complement_basket_cap",
							"The most products of one order whose pairs are counted.",
							"Larger orders count pairs among a hash-chosen sample of this many products; "
							"a new value takes effect at the next rebuild_complementarity().",
							&ComplementBasketCap,
							50, 2, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("personalisation.blocked_identifiers",
							   "Extra placeholder values identify() refuses as session, customer or email identifiers.",
							   "A comma-separated list compared case-insensitively, surrounding blanks ignored. "
							   "Blank values, '0', 'null', 'undefined' and 'anonymous' are always refused.",
							   &BlockedIdentifiers,
							   "",
							   PGC_SUSET, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("personalisation.abandon_after",
							"How long a cart with items must be idle to be declared abandoned.",
							"run_due() declares each idle cart once per episode of cart activity.",
							&AbandonAfterMinutes,
							30, 1, 7 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

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

	DefineCustomRealVariable("personalisation.journey_holdout_percent",
							 "The share of journey runs (abandoned carts, orders), in percent, that run without sending.",
							 "The arm is a hash of the journey and the profile, so a profile stays in its arm.",
							 &JourneyHoldoutPercent,
							 10.0, 0.0, 100.0,
							 PGC_SUSET, 0,
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

	DefineCustomIntVariable("personalisation.coupon_validity",
							"How long an incentive's coupon is valid after its message is written.",
							NULL,
							&CouponValidityMinutes,
							48 * 60, 1, 365 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.attribution_window",
							"How long after abandonment an order counts as recovering the cart, and after a cross-sell message as following it.",
							NULL,
							&AttributionWindowMinutes,
							7 * 24 * 60, 1, 365 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.ranking_attribution_window",
							"How long after its first ranking an order placed in a session counts as the session's conversion.",
							"The ranking_holdout report reads it; changing it changes the report, not what was recorded.",
							&RankingAttributionWindowMinutes,
							24 * 60, 1, 365 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.repeat_order_window",
							"How long after the order that started a post-purchase run a further order counts as a repeat order.",
							"The post_purchase_order_value report reads it.",
							&RepeatOrderWindowMinutes,
							30 * 24 * 60, 1, 365 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.social_proof_window",
							"How far back social proof counts the people who bought or viewed a product.",
							NULL,
							&SocialProofWindowMinutes,
							7 * 24 * 60, 60, 180 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("personalisation.worker_enabled",
							 "Whether each database using the extension gets a background worker.",
							 "Turned off, running workers exit and none start; run_due() and the maintenance jobs then run only when called, "
							 "for example by the pg_cron jobs schedule_jobs() registers.",
							 &WorkerEnabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("personalisation.worker_naptime",
							"The longest the background worker sleeps between runs.",
							"It wakes sooner at a committed cart change, and when the next cart passes abandon_after or the next journey step falls due.",
							&WorkerNaptimeMs,
							1000, 10, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

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

	DefineCustomIntVariable("personalisation.product_cache_size",
							"Most products whose category, brand, stock and popularity a backend keeps in memory.",
							"Tracking and ranking read a product from the catalogue once, then from this cache until the catalogue changes; past this many products the cache starts afresh. 0 turns it off.",
							&ProductCacheSize,
							65536, 0, 16 * 1024 * 1024,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

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

	MarkGUCPrefixReserved("personalisation");
}

/*
 * preloaded reports whether the library was loaded through
 * shared_preload_libraries, so that operators and the install script can
 * say what is missing.
 */
Datum
preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PersonalisationPreloaded);
}
