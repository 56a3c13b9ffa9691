/*
 * post_purchase.h
 *		Enrolment in the post-purchase journeys (post_purchase.c).
 */
#ifndef PERSONALISATION_POST_PURCHASE_H
#define PERSONALISATION_POST_PURCHASE_H

#include "util.h"

extern void JourneyOrderPlaced(int64 profile_id, text *session_id, text *order_id,
							   TimestampTz occurred_at);

#endif							/* PERSONALISATION_POST_PURCHASE_H */
