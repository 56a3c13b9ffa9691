/*
 * events.h
 *		The tracked event and the session it belongs to (events.c).
 */
#ifndef PERSONALISATION_EVENTS_H
#define PERSONALISATION_EVENTS_H

#include "util.h"

/* One event as it is written to personalisation.events. */
typedef struct TrackedEvent
{
	const char *kind;			/* page_view, cart_add, cart_remove, purchase, subscription_start, subscription_stop */
	text	   *event_id;		/* NULL when the shop supplied none */
	text	   *session_id;
	TimestampTz occurred_at;
	int64		profile_id;
	text	   *category_id;	/* NULL when not applicable */
	text	   *product_id;		/* NULL when not applicable */
	int32		quantity;		/* 0 when not applicable */
	text	   *order_id;		/* purchases only */
	Datum		value;			/* purchases only: the order total (numeric) */
	bool		facets_read;	/* the product's catalogue row was read: */
	text	   *brand;			/* its brand (NULL when it has none) */
} TrackedEvent;

extern int64 LockedSessionProfile(text *session_id, TimestampTz *last_seen_at);
extern int64 TouchSession(text *session_id, TimestampTz occurred_at);
extern bool ClaimEventKey(text *event_id, TimestampTz occurred_at);
extern void InsertEvent(TrackedEvent *event);
extern void SummariseCart(TrackedEvent *event);
extern void RefreshCart(TrackedEvent *event);

#endif							/* PERSONALISATION_EVENTS_H */
