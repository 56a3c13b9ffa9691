/*
 * identity.h
 *		Who a visitor is: profile merges and the merge steps' shared type (identity.c).
 */
#ifndef PERSONALISATION_IDENTITY_H
#define PERSONALISATION_IDENTITY_H

#include "util.h"

/*
 * One merge of an anonymous profile into a customer's profile,
 * as handed to each merge step's move and undo (see MergeSteps[] in identity.c).
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

/*
 * ExecMergeStatement runs a merge step's statement for one merge and returns
 * how many rows it processed.  It is inline so that the merge steps of other
 * parts run their statements without calling back into identity.c.
 */
static inline int64
ExecMergeStatement(SavedStatement *statement, const Merge *merge)
{
	Datum		values[4] = {Int64GetDatum(merge->merge_id), Int64GetDatum(merge->from_profile_id),
		Int64GetDatum(merge->into_profile_id), TimestampTzGetDatum(merge->merged_at)};

	ExecSaved(statement, values, NULL, false, 0);
	return (int64) SPI_processed;
}

extern void IdentityInit(void);

#endif							/* PERSONALISATION_IDENTITY_H */
