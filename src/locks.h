/*
 * locks.h
 *		The registry of the extension's advisory lock keys and the functions
 *		that take them (locks.c).  The first half of a key names what it
 *		serialises; the second half is a hash of the thing (HashText), or 0.
 */
#ifndef PERSONALISATION_LOCKS_H
#define PERSONALISATION_LOCKS_H

#include "util.h"

#include "storage/lockdefs.h"

/* One customer's logins, profile creation and erasure (exclusive). */
#define CUSTOMER_LOCK_KEY 0x63757374
/* One profile's merges and erasure (exclusive). */
#define PROFILE_LOCK_KEY 0x70726f66
/* One session's events (shared) against its login, unmerge or erasure (exclusive). */
#define SESSION_LOCK_KEY 0x73657373
/* One order id's tracking calls (exclusive). */
#define ORDER_LOCK_KEY 0x6f726472
/* Creating and dropping event partitions (exclusive, second half 0). */
#define PARTITION_LOCK_KEY 0x70657273

/* How many advisory locks of one kind a transaction takes (LockAdvisoryKeyWithin). */
typedef struct AdvisoryAllowance
{
	int			limit;
	LocalTransactionId xact;	/* the transaction the count is for */
	int			taken;
} AdvisoryAllowance;

extern bool LockAdvisoryKeyWithin(int32 space, int32 key, LOCKMODE mode, AdvisoryAllowance *allowance);
extern void LockAdvisoryKey(int32 space, int32 key, LOCKMODE mode);
extern bool LockAdvisoryKeyWithin(int32 space, int32 key, LOCKMODE mode, AdvisoryAllowance *allowance);
extern bool LockSessionForEvent(text *session_id);
extern void LockSessions(Datum *session_ids, int count);
extern void LockCustomer(text *customer_id);
extern void LockProfile(int64 profile_id);

#endif							/* PERSONALISATION_LOCKS_H */
