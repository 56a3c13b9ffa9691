/*
 * payload.h
 *		What a journey step's message carries: recommendations, social proof and
 *		coupons (payload.c).
 */
#ifndef PERSONALISATION_PAYLOAD_H
#define PERSONALISATION_PAYLOAD_H

#include "journey.h"

extern void ForgetSocialProof(void);
extern int	RecommendForStep(RunStep *step);
extern char *NewCouponCode(void);
extern Datum BuildPayload(RunStep *step, TimestampTz now, const char *coupon_code,
						  TimestampTz coupon_expires_at);
extern void IssueCoupon(RunStep *step, const char *code, TimestampTz issued_at,
						TimestampTz expires_at);
extern void PayloadInit(void);

#endif							/* PERSONALISATION_PAYLOAD_H */
