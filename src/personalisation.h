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
#include "utils/timestamp.h"

#include "compat.h"

/* GUCs (personalisation.c) */
extern int	EventRetentionMinutes;
extern int	PartitionPremakeDays;
extern int	MaxClockSkewSeconds;
extern int	MaxOrderLines;
extern bool PersonalisationPreloaded;

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
extern double SessionWeight;
extern double BrandWeight;
extern double PopularityWeight;
extern int	PopularityHalfLifeSeconds;
extern int	PopularityWindowSeconds;
extern double HoldoutPercent;

/* Longest identifier (session, product, order, event id) accepted, in bytes. */
#define MAX_IDENTIFIER_BYTES 256

/* Most parameters any saved statement takes. */
#define SAVED_STATEMENT_MAX_ARGS 10

/*
 * A statement prepared once per backend on first use and kept across
 * transactions; the plan cache revalidates it when the tables change.
 */
typedef struct SavedStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[SAVED_STATEMENT_MAX_ARGS];
	SPIPlanPtr	plan;
	int			cursor_options; /* CURSOR_OPT_GENERIC_PLAN: never re-plan per value */
} SavedStatement;

/* util.c */
extern int	ExecSaved(SavedStatement *statement, Datum *values, const char *nulls,
					  bool read_only, long count);
extern bool TextEqual(text *left, text *right);
extern void CheckIdentifierText(text *value, const char *argname);
extern text *RequireIdentifier(FunctionCallInfo fcinfo, int argno, const char *argname);
extern text *OptionalIdentifier(FunctionCallInfo fcinfo, int argno, const char *argname);
extern TimestampTz RequireEventTime(FunctionCallInfo fcinfo, int argno);
extern int32 RequirePositiveQuantity(FunctionCallInfo fcinfo, int argno);
extern TimestampTz EventRetentionCutoff(TimestampTz now);

/* One event as it is written to personalisation.events. */
typedef struct TrackedEvent
{
	const char *kind;			/* page_view, cart_add, cart_remove, purchase */
	text	   *event_id;		/* NULL when the shop supplied none */
	text	   *session_id;
	TimestampTz occurred_at;
	int64		profile_id;
	text	   *category_id;	/* NULL when not applicable */
	text	   *product_id;		/* NULL when not applicable */
	int32		quantity;		/* 0 when not applicable */
	text	   *order_id;		/* purchases only */
	Datum		value;			/* purchases only: the order total (numeric) */
} TrackedEvent;

/* events.c */
extern int64 TouchSession(text *session_id, TimestampTz occurred_at);
extern bool ClaimEventKey(text *event_id, TimestampTz occurred_at);
extern void InsertEvent(TrackedEvent *event);
extern void RefreshCart(TrackedEvent *event);

/* affinity.c: call AffinityRecordEvent inside the tracking call's SPI connection */
extern void AffinityRecordEvent(TrackedEvent *event);
extern void AffinityMergeProfiles(int64 from_profile, int64 to_profile);
extern int64 AffinityRebuildProfile(int64 profile_id);

/* catalogue.c */
extern void CatalogueInit(void);

/* partitions.c */
extern void EnsureEventPartition(TimestampTz occurred_at);
extern void PartitionsInit(void);

#endif							/* PERSONALISATION_H */
