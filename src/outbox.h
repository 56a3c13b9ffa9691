/*
 * outbox.h
 *		The outbox: messages, their claims and acknowledgements (outbox.c).
 */
#ifndef PERSONALISATION_OUTBOX_H
#define PERSONALISATION_OUTBOX_H

#include "util.h"

extern void OutboxWithdraw(int64 profile_id, Datum run_ids, const char *status,
						   const char *reason, TimestampTz at);
extern void OutboxInit(void);

#endif							/* PERSONALISATION_OUTBOX_H */
