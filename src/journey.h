/*
 * journey.h
 *		The journeys: the sequence clock (journey.c), the steps of a run
 *		(journey_steps.c) and the exit rules and merge step that tracked
 *		events fire (journey_hooks.c).
 */
#ifndef PERSONALISATION_JOURNEY_H
#define PERSONALISATION_JOURNEY_H

#include "identity.h"

#include "nodes/parsenodes.h"

/*
 * The journey and outbox statements look rows up by key whatever their
 * arguments, so they use one generic plan instead of being planned per call.
 */
#define KEYED_PLAN .cursor_options = CURSOR_OPT_GENERIC_PLAN

/*
 * The sticky arm of a new run, as SQL: a hash of the journey and the profile
 * against personalisation.journey_holdout_percent in basis points, so a
 * profile is in the same arm of a journey for every run.  Its operators take
 * arguments of mixed types (text || bigint, bigint % integer), which no
 * built-in matches exactly, so they are named in pg_catalog: an operator of
 * another schema with those exact types would otherwise win.
 */
#define RUN_ARM(journey, profile, basis_points) \
	"CASE WHEN (pg_catalog.hashtextextended(" journey " OPERATOR(pg_catalog.||) ':'" \
	"                                       OPERATOR(pg_catalog.||) " profile ", 0)" \
	"           OPERATOR(pg_catalog.&) 9223372036854775807) OPERATOR(pg_catalog.%) 10000" \
	"           OPERATOR(pg_catalog.<) " basis_points \
	"     THEN 'holdout' ELSE 'treatment' END"

/*
 * When step js of run r (of journey j) falls due, as SQL: delay after the
 * anchor, never before the run is declared; a step with before_runout, in a
 * run about one product, that long before the product runs out, but early
 * enough to go out, max_lateness included, within the journey's send_within.
 */
#define STEP_DUE_AT \
	"greatest(r.declared_at, r.anchor_at + js.delay," \
	"         CASE WHEN js.before_runout IS NOT NULL AND r.runs_out_at IS NOT NULL" \
	"              THEN least(r.runs_out_at - js.before_runout," \
	"                         r.anchor_at + j.send_within - js.max_lateness) END)"

/* The step of a run that run_due is about to do, with everything its rules need. */
typedef struct RunStep
{
	int64		profile_id;
	int64		run_id;
	text	   *journey;
	bool		holdout;		/* the run is in the holdout arm */
	int32		step;			/* 0 when the run has no step left */
	bool		incentive;		/* the payload carries a coupon */
	bool		social_proof;	/* the payload carries social proof */
	bool		recommendations;	/* the payload carries recommendations */
	int32		max_recommendations;	/* how many at most */
	int32		min_recommendations;	/* fewer skip the step (0: no condition) */
	int			recommended;	/* how many were found, once computed */
	Datum		recommendation_list;	/* the recommendations block, 0 until computed */
	TimestampTz due_at;			/* when the step falls due */
	TimestampTz baseline;		/* when it should go out: due, postponed, or after the last message */
	bool		late;			/* reached more than max_lateness after baseline */
	char	   *exit_reason;	/* why the run must stop, or NULL */
	char	   *refusal;		/* why the step's channel may not be used, or NULL */
	bool		below_min_value;	/* the cart is worth less than the step's min_cart_value */
} RunStep;

/* journey.c: the sequence clock, shared by run_due() and the background worker */
extern int	RunDue(TimestampTz now, int max_runs, bool *more);
extern TimestampTz NextDueAt(TimestampTz now);
extern int32 HoldoutBasisPoints(void);
extern void JourneyInit(void);

/* journey_steps.c */
extern int	ProcessRun(int64 profile_id, int64 run_id, TimestampTz now);
extern void JourneyStepsInit(void);

/* journey_hooks.c: exit rules fired by tracked events, and the journeys' merge step */
extern void JourneyCartChanged(int64 profile_id);
extern void JourneyPurchase(int64 profile_id, TimestampTz occurred_at);
extern void JourneyRefund(int64 profile_id, TimestampTz occurred_at);
extern void JourneySubscribed(int64 profile_id, TimestampTz occurred_at);
extern void JourneyConsentWithdrawn(int64 profile_id, text *session_id, const char *channel,
									TimestampTz occurred_at);
extern int64 JourneyMergeProfiles(const Merge *merge);
extern int64 JourneyUnmergeProfiles(const Merge *merge);

#endif							/* PERSONALISATION_JOURNEY_H */
