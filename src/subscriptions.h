/*
 * subscriptions.h
 *		Subscriptions: their merge step (subscriptions.c).
 */
#ifndef PERSONALISATION_SUBSCRIPTIONS_H
#define PERSONALISATION_SUBSCRIPTIONS_H

#include "identity.h"

extern int64 SubscriptionMergeProfiles(const Merge *merge);
extern int64 SubscriptionUnmergeProfiles(const Merge *merge);

#endif							/* PERSONALISATION_SUBSCRIPTIONS_H */
