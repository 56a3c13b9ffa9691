/*
 * affinity.h
 *		What the affinity model (affinity.c), ranking (rank.c) and the
 *		category tree cache (catalogue.c) share: dimension keys, the decoded
 *		form of a stored affinity, and category paths.
 */
#ifndef PERSONALISATION_AFFINITY_H
#define PERSONALISATION_AFFINITY_H

#include "personalisation.h"

/*
 * What an affinity is about.  The dimension sits in the top two bits of a
 * key, so that a key alone says what it is about; key 0 means "none".
 */
typedef enum AffinityDimension
{
	AFFINITY_CATEGORY = 1,
	AFFINITY_PRODUCT = 2,
	AFFINITY_BRAND = 3
} AffinityDimension;

#define AFFINITY_DIMENSION_SHIFT 62
#define AffinityKeyDimension(key) ((AffinityDimension) ((key) >> AFFINITY_DIMENSION_SHIFT))

/* One score: a dimension key and its score at the state's decayed_to. */
typedef struct AffinityEntry
{
	uint64		key;
	float8		score;
} AffinityEntry;

/*
 * The affinity of one session or profile: every score valid at decayed_to
 * (the newest event folded in), entries sorted by key.
 */
typedef struct AffinityState
{
	TimestampTz decayed_to;
	int			count;
	AffinityEntry *entries;
} AffinityState;

/* Deepest category path followed; deeper ancestors are ignored. */
#define MAX_CATEGORY_DEPTH 16

/* affinity.c */
extern uint64 AffinityKey(AffinityDimension dimension, const char *data, int len);
extern uint64 AffinityTextKey(AffinityDimension dimension, text *value);
extern const char *AffinityDimensionName(AffinityDimension dimension);
extern void DecodeAffinity(bytea *entries, TimestampTz decayed_to, AffinityState *state);
extern float8 AffinityDecay(TimestampTz from, TimestampTz to, bool session_scope);
extern float8 AffinityScore(AffinityState *state, uint64 key);
extern int64 AffinitySessionInProfile(int64 profile_id, text *session_id, TimestampTz newest_event,
									  AffinityState *state);

/* catalogue.c */
extern int	CategoryPath(uint64 category_key, uint64 *path);
extern char *CategoryName(uint64 category_key);
/* What tracking and ranking need of a product. */
typedef struct ProductFacts
{
	text	   *category_id;	/* NULL when the product has none */
	text	   *brand;			/* NULL when the product has none */
	bool		in_stock;
	bool		has_popularity; /* in product_popularity */
	float8		popularity;		/* its score there (0 to 1) */
} ProductFacts;

extern bool LookupProduct(text *product_id, ProductFacts *facts);

#endif							/* PERSONALISATION_AFFINITY_H */
