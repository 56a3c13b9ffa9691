/*
 * affinity.h
 *		The affinity model (affinity.c): dimension keys, the decoded form of
 *		a stored affinity, and what tracking, merges and ranking call.
 */
#ifndef PERSONALISATION_AFFINITY_H
#define PERSONALISATION_AFFINITY_H

#include "events.h"
#include "identity.h"

#include "common/hashfn.h"

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

/* Seed of the key hash; changing it would orphan every stored score. */
#define AFFINITY_KEY_SEED UINT64CONST(0x6166666e74790001)

/*
 * AffinityKey returns the key under which a dimension's value is scored: a
 * 62-bit hash of the value with the dimension in the top two bits.  It is
 * inline because the catalogue cache keys its categories and products the
 * same way without calling into the affinity model.
 */
static inline uint64
AffinityKey(AffinityDimension dimension, const char *data, int len)
{
	uint64		hash = DatumGetUInt64(hash_any_extended((const unsigned char *) data, len,
														AFFINITY_KEY_SEED));

	return ((uint64) dimension << AFFINITY_DIMENSION_SHIFT) |
		(hash & ((UINT64CONST(1) << AFFINITY_DIMENSION_SHIFT) - 1));
}

/* AffinityTextKey is AffinityKey for a text value. */
static inline uint64
AffinityTextKey(AffinityDimension dimension, text *value)
{
	return AffinityKey(dimension, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

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

/* Event weights and the category damping ranking reads too (defined by AffinityInit) */
extern double PageViewWeight;
extern double PurchaseWeight;
extern double AncestorDamping;

extern const char *AffinityDimensionName(AffinityDimension dimension);
extern void DecodeAffinity(bytea *entries, TimestampTz decayed_to, AffinityState *state);
extern float8 AffinityDecay(TimestampTz from, TimestampTz to, bool session_scope);
extern float8 AffinityScore(AffinityState *state, uint64 key);
extern int64 AffinitySessionInProfile(int64 profile_id, text *session_id, TimestampTz newest_event,
									  AffinityState *state);
/* AffinityRecordEvent runs inside the tracking call's SPI connection */
extern void AffinityRecordEvent(TrackedEvent *event);
extern int64 AffinityMergeMove(const Merge *merge);
extern int64 AffinityMergeUndo(const Merge *merge);
extern void LockAffinityWriters(void);
extern void AffinityInit(void);

#endif							/* PERSONALISATION_AFFINITY_H */
