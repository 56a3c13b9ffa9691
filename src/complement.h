/*
 * complement.h
 *		What is bought together: counting orders, and the recommendations
 *		built on the counts (complement.c, complement_rebuild.c,
 *		complement_read.c).
 */
#ifndef PERSONALISATION_COMPLEMENT_H
#define PERSONALISATION_COMPLEMENT_H

#include "util.h"

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
extern void ComplementInit(void);
extern void RecommendInit(void);

#endif							/* PERSONALISATION_COMPLEMENT_H */
