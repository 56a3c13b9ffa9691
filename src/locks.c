/*
 * locks.c
 *		The advisory locks that order concurrent work, taken one way: the
 *		registry of their keys is locks.h, the lock order docs/architecture.md.
 *		A lock is a transaction-level advisory lock on (space, key), the one
 *		pg_advisory_xact_lock(space, key) takes, so that pg_locks shows it.
 */
#include "locks.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

/*
 * Session advisory locks one transaction's events take (LockSessionForEvent)
 * before they lock session rows instead: a statement tracking events of
 * thousands of sessions would otherwise fill the shared lock table.
 */
#define SESSION_ADVISORY_LOCKS 16

static SavedStatement LockSessionRowsStatement = {
	"SELECT FROM personalisation.sessions WHERE session_id = ANY ($1) ORDER BY session_id FOR UPDATE",
	1, {TEXTARRAYOID}
};

/*
 * LockAdvisoryKey takes a transaction-level advisory lock on (space, key)
 * in mode ExclusiveLock or ShareLock: the lock pg_advisory_xact_lock(space,
 * key) or pg_advisory_xact_lock_shared(space, key) takes, so pg_locks shows
 * it.
 */
void
LockAdvisoryKey(int32 space, int32 key, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) space, (uint32) key, 2);
	(void) LockAcquire(&tag, mode, false, false);
}

/*
 * LockAdvisoryKeyWithin takes LockAdvisoryKey(space, key, mode) unless this
 * transaction already took allowance->limit locks through the allowance,
 * and reports whether the transaction holds the lock.  The lock table is
 * shared memory sized for a few dozen locks per transaction, so a statement
 * over thousands of keys must hold the rest some other way (a row lock,
 * which lives in the tuple); the caller does that when this returns false.
 */
bool
LockAdvisoryKeyWithin(int32 space, int32 key, LOCKMODE mode, AdvisoryAllowance *allowance)
{
	LOCKTAG		tag;

	if (allowance->xact != MyProc->lxid)
	{
		allowance->xact = MyProc->lxid;
		allowance->taken = 0;
	}
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) space, (uint32) key, 2);
	if (LockHeldByMe(&tag, mode))
		return true;
	if (allowance->taken >= allowance->limit)
		return false;
	(void) LockAcquire(&tag, mode, false, false);
	allowance->taken++;
	return true;
}

/*
 * LockSessionForEvent holds the session, until the end of the transaction,
 * against a login or unmerge that would move it to another profile, and
 * waits for one in progress, through the session's advisory lock in share
 * mode; many events of one session hold it together.  Every tracking call
 * takes it before reading which profile the session belongs to.  The lock
 * table is shared memory sized for a few dozen locks per transaction, so a
 * transaction takes at most SESSION_ADVISORY_LOCKS of these; past that it
 * returns false, and the caller locks the session's row instead (FOR KEY
 * SHARE, which lives in the tuple and so costs no lock table entry), which
 * a login's or an unmerge's FOR UPDATE of the row waits for just the same.
 */
bool
LockSessionForEvent(text *session_id)
{
	static AdvisoryAllowance allowance = {SESSION_ADVISORY_LOCKS};

	return LockAdvisoryKeyWithin(SESSION_LOCK_KEY, HashText(session_id), ShareLock, &allowance);
}

/*
 * LockSession keeps the session's events out while a login, an unmerge or
 * an erasure moves or removes it, and waits for the events being written,
 * as far as they hold the session's advisory lock (see LockSessions).
 */
static void
LockSession(text *session_id)
{
	LockAdvisoryKey(SESSION_LOCK_KEY, HashText(session_id), ExclusiveLock);
}

/*
 * LockSessions keeps out the events of the sessions a login, an unmerge or
 * an erasure moves or removes: it takes LockSession for each (in the order
 * given), then locks their rows FOR UPDATE in session id order, since an
 * event past its transaction's advisory locks holds the row instead
 * (LockSessionForEvent).
 */
void
LockSessions(Datum *session_ids, int count)
{
	Datum		values[1];

	for (int i = 0; i < count; i++)
		LockSession(DatumGetTextPP(session_ids[i]));
	values[0] = PointerGetDatum(construct_array(session_ids, count, TEXTOID, -1, false, TYPALIGN_INT));
	ExecSaved(&LockSessionRowsStatement, values, NULL, false, 0);
}

/*
 * LockCustomer serialises everything that may create, merge into or erase
 * the customer's profile.
 */
void
LockCustomer(text *customer_id)
{
	LockAdvisoryKey(CUSTOMER_LOCK_KEY, HashText(customer_id), ExclusiveLock);
}

/*
 * LockProfile serialises the merges (and the erasure) of one profile's
 * sessions.
 */
void
LockProfile(int64 profile_id)
{
	LockAdvisoryKey(PROFILE_LOCK_KEY, DatumGetInt32(DirectFunctionCall1(hashint8, Int64GetDatum(profile_id))),
			ExclusiveLock);
}
