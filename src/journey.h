/*
 * journey.h
 *		Declarations shared by the journey files (journey.c, journey_steps.c,
 *		journey_hooks.c, payload.c) and the outbox (outbox.c).
 */
#ifndef JOURNEY_H
#define JOURNEY_H

#include "personalisation.h"

#include "nodes/parsenodes.h"

/*
 * The journey and outbox statements look rows up by key whatever their
 * arguments, so they use one generic plan instead of being planned per call.
 */
#define KEYED_PLAN .cursor_options = CURSOR_OPT_GENERIC_PLAN

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
	TimestampTz due_at;			/* when the step falls due */
	TimestampTz baseline;		/* when it should go out: due, postponed, or after the last message */
	bool		late;			/* reached more than max_lateness after baseline */
	char	   *exit_reason;	/* why the run must stop, or NULL */
	char	   *refusal;		/* why the step's channel may not be used, or NULL */
	bool		below_min_value;	/* the cart is worth less than the step's min_cart_value */
} RunStep;

/* journey_steps.c */
extern int	ProcessRun(int64 profile_id, int64 run_id, TimestampTz now);
extern Datum IntervalFromUsecs(int64 usecs);

/* payload.c */
extern void ForgetSocialProof(void);
extern char *NewCouponCode(void);
extern Datum BuildPayload(RunStep *step, TimestampTz now, const char *coupon_code,
						  TimestampTz coupon_expires_at);
extern void IssueCoupon(RunStep *step, const char *code, TimestampTz issued_at,
						TimestampTz expires_at);

/* outbox.c */
extern void OutboxWithdraw(int64 profile_id, Datum run_ids, const char *status,
						   const char *reason, TimestampTz at);

#endif							/* JOURNEY_H */
