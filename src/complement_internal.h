/*
 * complement_internal.h
 *		What the three files of complementarity share (complement.c counts
 *		each order, complement_rebuild.c the bulk paths, complement_read.c
 *		the readers): the counts' state, count deltas, the pair rule.
 */
#ifndef PERSONALISATION_COMPLEMENT_INTERNAL_H
#define PERSONALISATION_COMPLEMENT_INTERNAL_H

#include "complement.h"

#include "storage/lockdefs.h"

/* Settings of the counting (defined by ComplementInit) */
extern int	ComplementWindowMinutes;
extern int	ComplementBasketCap;

/* What the counts cover, as complement_state records it. */
typedef struct CountState
{
	TimestampTz counted_since;
	int			basket_cap;
	bool		paused;
} CountState;

/*
 * Changes to the counts, all of one sign, ready to apply: text[] and int8[]
 * arrays with the products in byte order and the pairs in byte order of
 * (a, b), which is the order rows are locked in.
 */
typedef struct CountDeltas
{
	int64		orders;
	int			nproducts;
	Datum		product_ids;
	Datum		product_deltas;
	int			npairs;
	Datum		pair_a;
	Datum		pair_b;
	Datum		pair_deltas;
} CountDeltas;

/* One product of a basket being sampled for pairs. */
typedef struct BasketItem
{
	const char *id;
	int			len;
	int			rank;			/* position in byte order */
	int64		draw;			/* sampling hash, for oversized baskets */
} BasketItem;

extern SavedStatement TotalDeltaStatement;

extern Datum TextArray(Datum *elements, int count);
extern Datum Int8Array(Datum *elements, int count);
extern CountState LockCounts(LOCKMODE mode);
extern int	KeepForPairs(BasketItem *items, int count, const char *order_id, int order_len, int cap);
extern void ApplyDeltas(CountDeltas *deltas);

#endif							/* PERSONALISATION_COMPLEMENT_INTERNAL_H */
