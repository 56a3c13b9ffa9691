/*
 * identity.c
 *		Identity resolution: identify() and the identify_on_login() trigger
 *		stitch a browser session to a known customer at login, and unmerge()
 *		splits a merge back.  Owns the merge ledger (merges, merge_items), the
 *		events.merge_id column, the refusal of placeholder identifiers, and
 *		MergeSteps[]: the one table that says what moves when an anonymous
 *		profile is merged into a customer's profile, and how it moves back.
 *
 *		Locks are always taken in this order (docs/identity.md#lock-order):
 *		an order id's advisory lock (purchases), the customer's advisory
 *		lock, the advisory lock of the session's profile, the sessions'
 *		advisory locks, session rows, profile rows, affinity rows, cart
 *		lines, the cart summary, orders and pair counts, consent history,
 *		subscriptions, journey rows.  Every tracking call holds its session
 *		in share mode (LockSessionForEvent: the advisory lock, or past 16 of
 *		those in one transaction the session's row FOR KEY SHARE) while it
 *		reads the session and writes; a login or an unmerge holds both
 *		exclusively, so an event is never written to a profile that is
 *		being merged away, nor missed by the merge.
 */
#include "identity.h"

#include "affinity.h"
#include "journey.h"
#include "locks.h"
#include "subscriptions.h"

#include "miscadmin.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* Settings of this part (defined by IdentityInit) */
char	   *BlockedIdentifiers = NULL;

PG_FUNCTION_INFO_V1(identify);
PG_FUNCTION_INFO_V1(identify_on_login);
PG_FUNCTION_INFO_V1(unmerge);


/* Placeholder values refused whatever personalisation.blocked_identifiers says. */
static const char *const AlwaysBlocked[] = {"0", "null", "undefined", "anonymous"};

/*
 * A merge step moves one kind of per-profile row from the anonymous profile
 * to the customer's (move) and puts exactly those rows back (undo).  Both
 * run inside the caller's SPI connection, with every session of the merge
 * locked, and return how many items they moved, which the ledger records
 * under the step's name.  A step records what its undo needs in
 * personalisation.merge_items (step = its name) or in a merge_id column of
 * its own table.
 */
typedef int64 (*MergeStepFunction) (const Merge *merge);

typedef struct MergeStep
{
	const char *name;
	MergeStepFunction move;
	MergeStepFunction undo;
} MergeStep;

static int64 MoveSessions(const Merge *merge);
static int64 RestoreSessions(const Merge *merge);
static int64 MoveEvents(const Merge *merge);
static int64 RestoreEvents(const Merge *merge);
static int64 MoveCart(const Merge *merge);
static int64 RestoreCart(const Merge *merge);
static int64 MoveOrders(const Merge *merge);
static int64 RestoreOrders(const Merge *merge);
static int64 MoveConsent(const Merge *merge);
static int64 RestoreConsent(const Merge *merge);

/*
 * Every merge runs these moves in order; unmerge runs the undos in reverse
 * order.  A capability with per-profile rows of its own adds one line here.
 */
static const MergeStep MergeSteps[] = {
	{"sessions", MoveSessions, RestoreSessions},
	{"affinity", AffinityMergeMove, AffinityMergeUndo},
	{"events", MoveEvents, RestoreEvents},
	{"cart_lines", MoveCart, RestoreCart},
	{"orders", MoveOrders, RestoreOrders},
	{"consent_changes", MoveConsent, RestoreConsent},
	{"subscriptions", SubscriptionMergeProfiles, SubscriptionUnmergeProfiles},
	{"journeys", JourneyMergeProfiles, JourneyUnmergeProfiles},
};

/* A merge as the ledger holds it. */
typedef struct LedgerEntry
{
	Merge		merge;
	text	   *customer_id;
	bool		unmerged;
} LedgerEntry;

static SavedStatement SessionProfileStatement = {
	"SELECT profile_id FROM personalisation.sessions WHERE session_id = $1",
	1, {TEXTOID}
};

static SavedStatement LockSessionStatement = {
	"SELECT profile_id FROM personalisation.sessions WHERE session_id = $1 FOR UPDATE",
	1, {TEXTOID}
};

/* Locks the rows of the sessions a login or an unmerge moves, in session id order. */
static SavedStatement InsertSessionStatement = {
	"INSERT INTO personalisation.sessions (session_id, profile_id, started_at, last_seen_at)"
	" VALUES ($1, $2, $3, $3) ON CONFLICT (session_id) DO NOTHING",
	3, {TEXTOID, INT8OID, TIMESTAMPTZOID}
};

static SavedStatement MoveSessionStatement = {
	"UPDATE personalisation.sessions SET profile_id = $2 WHERE session_id = $1",
	2, {TEXTOID, INT8OID}
};

static SavedStatement LockProfileStatement = {
	"SELECT customer_id FROM personalisation.profiles WHERE profile_id = $1 FOR UPDATE",
	1, {INT8OID}
};

static SavedStatement CustomerProfileStatement = {
	"SELECT profile_id FROM personalisation.profiles WHERE customer_id = $1",
	1, {TEXTOID}
};

static SavedStatement CreateCustomerProfileStatement = {
	"INSERT INTO personalisation.profiles (created_at, customer_id, email) VALUES ($1, $2, $3)"
	" RETURNING profile_id",
	3, {TIMESTAMPTZOID, TEXTOID, TEXTOID}
};

static SavedStatement ClaimProfileStatement = {
	"UPDATE personalisation.profiles SET customer_id = $2, email = coalesce($3, email)"
	" WHERE profile_id = $1",
	3, {INT8OID, TEXTOID, TEXTOID}
};

static SavedStatement SetEmailStatement = {
	"UPDATE personalisation.profiles SET email = $2"
	" WHERE profile_id = $1 AND email IS DISTINCT FROM $2",
	2, {INT8OID, TEXTOID}
};

static SavedStatement InsertMergeStatement = {
	"INSERT INTO personalisation.merges"
	" (profile_id, from_profile_id, customer_id, session_id, reason, merged_at)"
	" VALUES ($1, $2, $3, $4, $5, $6) RETURNING merge_id",
	6, {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

static SavedStatement RecordMovedStatement = {
	"UPDATE personalisation.merges SET moved = $3 WHERE profile_id = $1 AND merge_id = $2",
	3, {INT8OID, INT8OID, JSONBOID}
};

static SavedStatement ReadMergeStatement = {
	"SELECT profile_id, from_profile_id, customer_id, merged_at, unmerged_at IS NOT NULL"
	"  FROM personalisation.merges WHERE merge_id = $1",
	1, {INT8OID}
};

static SavedStatement LockMergeStatement = {
	"SELECT profile_id, from_profile_id, customer_id, merged_at, unmerged_at IS NOT NULL"
	"  FROM personalisation.merges WHERE merge_id = $1 AND profile_id = $2 FOR UPDATE",
	2, {INT8OID, INT8OID}
};

static SavedStatement RecordRestoredStatement = {
	"UPDATE personalisation.merges SET unmerged_at = $3, restored = $4"
	" WHERE profile_id = $1 AND merge_id = $2",
	4, {INT8OID, INT8OID, TIMESTAMPTZOID, JSONBOID}
};

/* The sessions a login may move: all of an anonymous profile's, or just its own. */
static SavedStatement MovableSessionsStatement = {
	"SELECT s.session_id FROM personalisation.sessions s"
	"  JOIN personalisation.profiles p USING (profile_id)"
	" WHERE s.profile_id = $1 AND (p.customer_id IS NULL OR s.session_id = $2)"
	" ORDER BY s.session_id",
	2, {INT8OID, TEXTOID}
};

static SavedStatement MergedSessionsStatement = MERGE_STATEMENT(
	"SELECT item_key FROM personalisation.merge_items"
	" WHERE profile_id = $3 AND merge_id = $1 AND step = 'sessions' ORDER BY item_key");

/* Merge step statements: $1 merge_id, $2 anonymous profile, $3 customer's profile, $4 merged_at. */

static SavedStatement MoveSessionsStatement = MERGE_STATEMENT(
	"WITH moved AS ("
	"  UPDATE personalisation.sessions SET profile_id = $3 WHERE profile_id = $2 RETURNING session_id)"
	" INSERT INTO personalisation.merge_items (profile_id, merge_id, step, item_key)"
	" SELECT $3, $1, 'sessions', session_id FROM moved");

/* A session that has since logged in as another customer stays with that customer. */
static SavedStatement RestoreSessionsStatement = MERGE_STATEMENT(
	"UPDATE personalisation.sessions s SET profile_id = $2"
	"  FROM personalisation.merge_items i"
	" WHERE i.profile_id = $3 AND i.merge_id = $1 AND i.step = 'sessions'"
	"   AND s.session_id = i.item_key AND s.profile_id = $3");

static SavedStatement MoveEventsStatement = MERGE_STATEMENT(
	"UPDATE personalisation.events SET profile_id = $3, merge_id = $1 WHERE profile_id = $2");

static SavedStatement RestoreEventsStatement = MERGE_STATEMENT(
	"UPDATE personalisation.events SET profile_id = $2, merge_id = NULL"
	" WHERE merge_id = $1 AND profile_id = $3");

/*
 * Cart lines fold into the customer's: quantities add up (to at most
 * MAX_QUANTITY, so that a login never fails on a cart), the earliest
 * added_at and the latest updated_at (with its session) win.  The ledger
 * keeps the anonymous line, the customer's line before and the folded line.
 * Lines are folded in product order, the order in which a purchase on the
 * customer's other device deletes them, so the two cannot deadlock.
 */
static SavedStatement MoveCartLinesStatement = MERGE_STATEMENT(
	"WITH anon AS ("
	"  DELETE FROM personalisation.cart_lines WHERE profile_id = $2"
	"  RETURNING product_id, quantity, session_id, added_at, updated_at),"
	" known AS ("
	"  SELECT k.product_id, k.quantity, k.session_id, k.added_at, k.updated_at"
	"    FROM personalisation.cart_lines k WHERE k.profile_id = $3"
	"     AND k.product_id IN (SELECT product_id FROM anon)),"
	" folded AS ("
	"  INSERT INTO personalisation.cart_lines AS c"
	"   (profile_id, product_id, quantity, session_id, added_at, updated_at)"
	"  SELECT $3, product_id, quantity, session_id, added_at, updated_at FROM anon ORDER BY product_id"
	"  ON CONFLICT (profile_id, product_id) DO UPDATE"
	"  SET quantity = least(c.quantity + excluded.quantity, " CppAsString2(MAX_QUANTITY) "),"
	"      session_id = CASE WHEN excluded.updated_at > c.updated_at"
	"                        THEN excluded.session_id ELSE c.session_id END,"
	"      added_at = least(c.added_at, excluded.added_at),"
	"      updated_at = greatest(c.updated_at, excluded.updated_at)"
	"  RETURNING product_id, quantity, updated_at)"
	" INSERT INTO personalisation.merge_items (profile_id, merge_id, step, item_key, detail)"
	" SELECT $3, $1, 'cart_lines', a.product_id,"
	"        pg_catalog.jsonb_build_object('from', pg_catalog.to_jsonb(a), 'into', pg_catalog.to_jsonb(k),"
	"                                      'folded', pg_catalog.to_jsonb(f))"
	"   FROM anon a JOIN folded f USING (product_id) LEFT JOIN known k USING (product_id)");

static SavedStatement MoveCartSummaryStatement = MERGE_STATEMENT(
	"WITH anon AS ("
	"  DELETE FROM personalisation.carts WHERE profile_id = $2"
	"  RETURNING session_id, last_activity_at),"
	" known AS ("
	"  SELECT session_id, last_activity_at FROM personalisation.carts WHERE profile_id = $3),"
	" folded AS ("
	"  INSERT INTO personalisation.carts AS c (profile_id, session_id, line_count, last_activity_at)"
	"  SELECT $3, session_id,"
	"         (SELECT pg_catalog.count(*) FROM personalisation.cart_lines WHERE profile_id = $3), last_activity_at"
	"    FROM anon"
	"  ON CONFLICT (profile_id) DO UPDATE"
	"  SET line_count = excluded.line_count,"
	"      session_id = CASE WHEN excluded.last_activity_at > c.last_activity_at"
	"                        THEN excluded.session_id ELSE c.session_id END,"
	"      last_activity_at = greatest(c.last_activity_at, excluded.last_activity_at)"
	"  RETURNING session_id, last_activity_at)"
	" INSERT INTO personalisation.merge_items (profile_id, merge_id, step, item_key, detail)"
	" SELECT $3, $1, 'carts', 'cart',"
	"        pg_catalog.jsonb_build_object('from', pg_catalog.to_jsonb(a), 'into', pg_catalog.to_jsonb(k),"
	"                                      'folded', pg_catalog.to_jsonb(f))"
	"   FROM anon a CROSS JOIN folded f LEFT JOIN known k ON true");

static SavedStatement LockFoldedLinesStatement = MERGE_STATEMENT(
	"SELECT 1 FROM personalisation.cart_lines c JOIN personalisation.merge_items i"
	"    ON i.profile_id = $3 AND i.merge_id = $1 AND i.step = 'cart_lines'"
	"   AND c.product_id = i.item_key"
	" WHERE c.profile_id = $3 ORDER BY c.product_id FOR UPDATE OF c");

/*
 * Each folded line gives back to the anonymous profile what it brought, as
 * far as the customer's line still holds it.  A line unchanged since the
 * merge gets its own values back exactly; a line changed since keeps the
 * changes, less the anonymous units.  The customer's line loses the units
 * the fold added to it, which are fewer than the anonymous line brought
 * when the fold stopped at MAX_QUANTITY.
 */
static SavedStatement RestoreCartLinesStatement = MERGE_STATEMENT(
	"WITH moved AS ("
	"  SELECT i.item_key AS product_id,"
	"         (i.detail #>> '{from,quantity}')::int AS from_quantity,"
	"         i.detail #>> '{from,session_id}' AS from_session_id,"
	"         (i.detail #>> '{from,added_at}')::timestamptz AS from_added_at,"
	"         (i.detail #>> '{from,updated_at}')::timestamptz AS from_updated_at,"
	"         (i.detail #>> '{into,quantity}')::int AS known_quantity,"
	"         i.detail #>> '{into,session_id}' AS known_session_id,"
	"         (i.detail #>> '{into,added_at}')::timestamptz AS known_added_at,"
	"         (i.detail #>> '{into,updated_at}')::timestamptz AS known_updated_at,"
	"         (i.detail #>> '{folded,quantity}')::int AS folded_quantity,"
	"         (i.detail #>> '{folded,updated_at}')::timestamptz AS folded_updated_at"
	"    FROM personalisation.merge_items i"
	"   WHERE i.profile_id = $3 AND i.merge_id = $1 AND i.step = 'cart_lines'),"
	" held AS ("
	"  SELECT m.*, c.quantity, least(m.from_quantity, c.quantity) AS give,"
	"         least(m.folded_quantity - coalesce(m.known_quantity, 0), c.quantity) AS taken,"
	"         c.quantity = m.folded_quantity AND c.updated_at = m.folded_updated_at AS unchanged"
	"    FROM moved m JOIN personalisation.cart_lines c"
	"      ON c.profile_id = $3 AND c.product_id = m.product_id),"
	" emptied AS ("
	"  DELETE FROM personalisation.cart_lines c USING held h"
	"   WHERE c.profile_id = $3 AND c.product_id = h.product_id AND h.quantity = h.taken),"
	" kept AS ("
	"  UPDATE personalisation.cart_lines c"
	"     SET quantity = h.quantity - h.taken,"
	"         session_id = CASE WHEN h.unchanged THEN coalesce(h.known_session_id, c.session_id)"
	"                           ELSE c.session_id END,"
	"         added_at = CASE WHEN h.unchanged THEN coalesce(h.known_added_at, c.added_at)"
	"                         WHEN c.added_at = h.from_added_at THEN coalesce(h.known_added_at, $4)"
	"                         ELSE c.added_at END,"
	"         updated_at = CASE WHEN h.unchanged THEN coalesce(h.known_updated_at, c.updated_at)"
	"                           ELSE c.updated_at END"
	"    FROM held h"
	"   WHERE c.profile_id = $3 AND c.product_id = h.product_id AND h.quantity > h.taken)"
	" INSERT INTO personalisation.cart_lines"
	"  (profile_id, product_id, quantity, session_id, added_at, updated_at)"
	" SELECT $2, product_id, give, from_session_id, from_added_at, from_updated_at FROM held");

/*
 * The anonymous cart summary comes back from the ledger; the customer's
 * gets its own values back when nothing happened to it since the merge
 * (and goes when it did not exist before and has no lines), else it keeps
 * them.  Line counts are recounted on both sides.
 */
static SavedStatement RestoreCartSummaryStatement = MERGE_STATEMENT(
	"WITH moved AS ("
	"  SELECT i.detail FROM personalisation.merge_items i"
	"   WHERE i.profile_id = $3 AND i.merge_id = $1 AND i.step = 'carts'),"
	" anon AS ("
	"  INSERT INTO personalisation.carts (profile_id, session_id, line_count, last_activity_at)"
	"  SELECT $2, m.detail #>> '{from,session_id}',"
	"         (SELECT pg_catalog.count(*) FROM personalisation.cart_lines WHERE profile_id = $2),"
	"         (m.detail #>> '{from,last_activity_at}')::timestamptz"
	"    FROM moved m),"
	" known AS ("
	"  SELECT m.detail,"
	"         c.session_id = m.detail #>> '{folded,session_id}'"
	"         AND c.last_activity_at = (m.detail #>> '{folded,last_activity_at}')::timestamptz AS unchanged,"
	"         pg_catalog.jsonb_typeof(m.detail -> 'into') = 'null' AS was_absent,"
	"         (SELECT pg_catalog.count(*) FROM personalisation.cart_lines WHERE profile_id = $3) AS line_count"
	"    FROM moved m JOIN personalisation.carts c ON c.profile_id = $3),"
	" dropped AS ("
	"  DELETE FROM personalisation.carts c USING known k"
	"   WHERE c.profile_id = $3 AND k.unchanged AND k.was_absent AND k.line_count = 0)"
	" UPDATE personalisation.carts c"
	"    SET line_count = k.line_count,"
	"        session_id = CASE WHEN k.unchanged"
	"                          THEN coalesce(k.detail #>> '{into,session_id}', c.session_id)"
	"                          ELSE c.session_id END,"
	"        last_activity_at = CASE WHEN k.unchanged"
	"                                THEN coalesce((k.detail #>> '{into,last_activity_at}')::timestamptz,"
	"                                              c.last_activity_at)"
	"                                ELSE c.last_activity_at END"
	"   FROM known k"
	"  WHERE c.profile_id = $3 AND NOT (k.unchanged AND k.was_absent AND k.line_count = 0)");

static SavedStatement MoveOrdersStatement = MERGE_STATEMENT(
	"WITH moved AS ("
	"  UPDATE personalisation.orders SET profile_id = $3 WHERE profile_id = $2 RETURNING order_id)"
	" INSERT INTO personalisation.merge_items (profile_id, merge_id, step, item_key)"
	" SELECT $3, $1, 'orders', order_id FROM moved");

static SavedStatement RestoreOrdersStatement = MERGE_STATEMENT(
	"UPDATE personalisation.orders o SET profile_id = $2"
	"  FROM personalisation.merge_items i"
	" WHERE i.profile_id = $3 AND i.merge_id = $1 AND i.step = 'orders'"
	"   AND o.order_id = i.item_key AND o.profile_id = $3");

static SavedStatement MoveConsentHistoryStatement = MERGE_STATEMENT(
	"WITH moved AS ("
	"  UPDATE personalisation.consent_history SET profile_id = $3 WHERE profile_id = $2"
	"  RETURNING change_id)"
	" INSERT INTO personalisation.merge_items (profile_id, merge_id, step, item_key)"
	" SELECT $3, $1, 'consent_history', change_id::text FROM moved");

static SavedStatement RestoreConsentHistoryStatement = MERGE_STATEMENT(
	"UPDATE personalisation.consent_history h SET profile_id = $2"
	"  FROM personalisation.merge_items i"
	" WHERE i.profile_id = $3 AND i.merge_id = $1 AND i.step = 'consent_history'"
	"   AND h.profile_id = $3 AND h.change_id = i.item_key::bigint");

/*
 * Email consent is the customer's: the anonymous side's decision replaces
 * it only when it was taken later (the rule set_consent applies to changes
 * of one profile).  The ledger keeps the customer's value before and after.
 */
static SavedStatement MoveEmailConsentStatement = MERGE_STATEMENT(
	"WITH anon AS ("
	"  SELECT email_consent, email_consent_at FROM personalisation.profiles"
	"   WHERE profile_id = $2 AND email_consent_at IS NOT NULL),"
	" known AS ("
	"  SELECT email_consent, email_consent_at FROM personalisation.profiles WHERE profile_id = $3),"
	" merged AS ("
	"  UPDATE personalisation.profiles p"
	"     SET email_consent = a.email_consent, email_consent_at = a.email_consent_at"
	"    FROM anon a"
	"   WHERE p.profile_id = $3"
	"     AND (p.email_consent_at IS NULL OR p.email_consent_at < a.email_consent_at)"
	"  RETURNING p.email_consent, p.email_consent_at)"
	" INSERT INTO personalisation.merge_items (profile_id, merge_id, step, item_key, detail)"
	" SELECT $3, $1, 'email_consent', 'profile',"
	"        pg_catalog.jsonb_build_object('into', pg_catalog.to_jsonb(k), 'merged', pg_catalog.to_jsonb(m))"
	"   FROM merged m CROSS JOIN known k");

/* A consent the customer changed again after the merge keeps that change. */
static SavedStatement RestoreEmailConsentStatement = MERGE_STATEMENT(
	"UPDATE personalisation.profiles p"
	"   SET email_consent = (i.detail #>> '{into,email_consent}')::boolean,"
	"       email_consent_at = (i.detail #>> '{into,email_consent_at}')::timestamptz"
	"  FROM personalisation.merge_items i"
	" WHERE i.profile_id = $3 AND i.merge_id = $1 AND i.step = 'email_consent'"
	"   AND p.profile_id = $3"
	"   AND p.email_consent = (i.detail #>> '{merged,email_consent}')::boolean"
	"   AND p.email_consent_at = (i.detail #>> '{merged,email_consent_at}')::timestamptz");

/*
 * MoveSessions puts every session of the anonymous profile on the
 * customer's profile, so that their next events land there.  Push consent
 * lives on the session row and so travels with the browser that gave it.
 */
static int64
MoveSessions(const Merge *merge)
{
	return ExecMergeStatement(&MoveSessionsStatement, merge);
}

/*
 * RestoreSessions puts the merged sessions back on the anonymous profile,
 * except a session that has since logged in as another customer.
 */
static int64
RestoreSessions(const Merge *merge)
{
	return ExecMergeStatement(&RestoreSessionsStatement, merge);
}

/*
 * MoveEvents moves the anonymous profile's events, marking each with the
 * merge so that unmerge finds exactly these.
 */
static int64
MoveEvents(const Merge *merge)
{
	return ExecMergeStatement(&MoveEventsStatement, merge);
}

/*
 * RestoreEvents moves the events the merge moved back.  Events the merged
 * sessions recorded on the customer's profile after the merge stay there:
 * they happened while the visitor was logged in as the customer.
 */
static int64
RestoreEvents(const Merge *merge)
{
	return ExecMergeStatement(&RestoreEventsStatement, merge);
}

/*
 * MoveCart folds the anonymous cart's lines into the customer's cart and
 * the two cart summaries into one.
 */
static int64
MoveCart(const Merge *merge)
{
	int64		lines = ExecMergeStatement(&MoveCartLinesStatement, merge);

	ExecMergeStatement(&MoveCartSummaryStatement, merge);
	return lines;
}

/*
 * RestoreCart gives each folded line back to the anonymous cart and brings
 * both cart summaries back; it returns the number of lines given back.
 */
static int64
RestoreCart(const Merge *merge)
{
	int64		lines;

	ExecMergeStatement(&LockFoldedLinesStatement, merge);
	lines = ExecMergeStatement(&RestoreCartLinesStatement, merge);
	ExecMergeStatement(&RestoreCartSummaryStatement, merge);
	return lines;
}

/*
 * MoveOrders moves the anonymous profile's orders (their purchase events
 * move with the events).
 */
static int64
MoveOrders(const Merge *merge)
{
	return ExecMergeStatement(&MoveOrdersStatement, merge);
}

/*
 * RestoreOrders moves the orders the merge moved back.
 */
static int64
RestoreOrders(const Merge *merge)
{
	return ExecMergeStatement(&RestoreOrdersStatement, merge);
}

/*
 * MoveConsent moves the anonymous profile's consent history and lets its
 * email consent decision replace the customer's when it is the later one;
 * it returns the number of consent changes moved.
 */
static int64
MoveConsent(const Merge *merge)
{
	int64		changes = ExecMergeStatement(&MoveConsentHistoryStatement, merge);

	ExecMergeStatement(&MoveEmailConsentStatement, merge);
	return changes;
}

/*
 * RestoreConsent moves the consent history back and gives the customer its
 * email consent from before the merge, unless it changed since.
 */
static int64
RestoreConsent(const Merge *merge)
{
	ExecMergeStatement(&RestoreEmailConsentStatement, merge);
	return ExecMergeStatement(&RestoreConsentHistoryStatement, merge);
}

/*
 * LockSessionsFound takes LockSessions for every session id the last
 * statement returned in its first column (in the order returned, which is
 * session id order).
 */
static void
LockSessionsFound(void)
{
	uint64		count = SPI_processed;
	SPITupleTable *found = SPI_tuptable;
	Datum	   *ids = palloc(sizeof(Datum) * (count + 1));
	bool		isnull;

	for (uint64 i = 0; i < count; i++)
		ids[i] = SPI_getbinval(found->vals[i], found->tupdesc, 1, &isnull);
	LockSessions(ids, (int) count);
}

/*
 * FirstInt64 returns column `column` of the last statement's first row.
 */
static int64
FirstInt64(int column)
{
	bool		isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull));
}

/*
 * SessionProfile looks the session up, locking its row when lock is true,
 * and returns its profile, or 0 when the session is unknown.
 */
static int64
SessionProfile(text *session_id, bool lock)
{
	Datum		values[1] = {PointerGetDatum(session_id)};

	ExecSaved(lock ? &LockSessionStatement : &SessionProfileStatement, values, NULL, false, 0);
	return SPI_processed == 1 ? FirstInt64(1) : 0;
}

/*
 * LockSessionProfile locks the merges of the session's profile, then the
 * sessions the login may move against their events (every session of an
 * anonymous profile, else just this one), then the session's row, and
 * returns the profile, or 0 when the session is unknown.  A session that
 * moves to another profile while we wait is locked again on its new one.
 */
static int64
LockSessionProfile(text *session_id)
{
	for (;;)
	{
		int64		profile_id = SessionProfile(session_id, false);
		Datum		values[2] = {Int64GetDatum(profile_id), PointerGetDatum(session_id)};

		if (profile_id == 0)
			return 0;
		LockProfile(profile_id);
		ExecSaved(&MovableSessionsStatement, values, NULL, false, 0);
		LockSessionsFound();
		if (SessionProfile(session_id, true) == profile_id)
			return profile_id;
	}
}

/*
 * LockProfileRow locks the profile's row FOR UPDATE, leaving its
 * customer_id as the last statement's result, and reports whether the
 * profile exists.
 */
static bool
LockProfileRow(int64 profile_id)
{
	Datum		values[1] = {Int64GetDatum(profile_id)};

	ExecSaved(&LockProfileStatement, values, NULL, false, 0);
	return SPI_processed == 1;
}

/*
 * FindCustomerProfile returns the customer's profile, or 0 when the
 * customer was never identified.
 */
static int64
FindCustomerProfile(text *customer_id)
{
	Datum		values[1] = {PointerGetDatum(customer_id)};

	ExecSaved(&CustomerProfileStatement, values, NULL, false, 0);
	return SPI_processed == 1 ? FirstInt64(1) : 0;
}

/*
 * SetEmail records the customer's email address when the login gave one.
 */
static void
SetEmail(int64 profile_id, text *email)
{
	Datum		values[2] = {Int64GetDatum(profile_id), PointerGetDatum(email)};

	if (email != NULL)
		ExecSaved(&SetEmailStatement, values, NULL, false, 0);
}

/*
 * EnsureCustomerProfile returns the customer's profile, creating it (as of
 * the login) when the customer was never identified.
 */
static int64
EnsureCustomerProfile(text *customer_id, text *email, TimestampTz occurred_at)
{
	int64		profile_id = FindCustomerProfile(customer_id);
	Datum		values[3] = {TimestampTzGetDatum(occurred_at), PointerGetDatum(customer_id),
	PointerGetDatum(email)};
	char		nulls[3] = {' ', ' ', email ? ' ' : 'n'};

	if (profile_id != 0)
	{
		SetEmail(profile_id, email);
		return profile_id;
	}
	ExecSaved(&CreateCustomerProfileStatement, values, nulls, false, 0);
	return FirstInt64(1);
}

/*
 * StepCounts renders per-step item counts as the ledger's jsonb object.
 */
static Datum
StepCounts(const int64 *counts)
{
	StringInfoData json;

	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	for (int i = 0; i < lengthof(MergeSteps); i++)
	{
		if (i > 0)
			appendStringInfoString(&json, ", ");
		escape_json(&json, MergeSteps[i].name);
		appendStringInfo(&json, ": " INT64_FORMAT, counts[i]);
	}
	appendStringInfoChar(&json, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data));
}

/*
 * MergeProfiles merges the anonymous profile into the customer's: it locks
 * the customer's profile row (Identify locked both already, in id order; this
 * keeps the step safe for any caller), so that both are held before any
 * per-profile row as the lock order says, writes
 * the ledger entry, then runs every merge step's move.
 */
static void
MergeProfiles(int64 from_profile_id, int64 into_profile_id, text *customer_id,
			  text *session_id, const char *reason, TimestampTz occurred_at)
{
	Merge		merge = {0, from_profile_id, into_profile_id, occurred_at};
	int64		counts[lengthof(MergeSteps)];
	Datum		entry[6] = {Int64GetDatum(into_profile_id), Int64GetDatum(from_profile_id),
		PointerGetDatum(customer_id), PointerGetDatum(session_id), CStringGetTextDatum(reason),
	TimestampTzGetDatum(occurred_at)};
	Datum		moved[3];

	LockProfileRow(into_profile_id);
	ExecSaved(&InsertMergeStatement, entry, NULL, false, 0);
	merge.merge_id = FirstInt64(1);

	for (int i = 0; i < lengthof(MergeSteps); i++)
		counts[i] = MergeSteps[i].move(&merge);

	moved[0] = Int64GetDatum(into_profile_id);
	moved[1] = Int64GetDatum(merge.merge_id);
	moved[2] = StepCounts(counts);
	ExecSaved(&RecordMovedStatement, moved, NULL, false, 0);
}

/*
 * Identify stitches the session to the customer and returns the customer's
 * profile:
 *	- a session not seen before starts on the customer's profile;
 *	- a session already on the customer's profile changes nothing;
 *	- an anonymous session becomes the customer's profile at the customer's
 *	  first login, and is merged into the customer's profile otherwise;
 *	- a session identified as another customer continues on this
 *	  customer's profile, leaving the other customer's history alone.
 */
static int64
Identify(text *session_id, text *customer_id, text *email, TimestampTz occurred_at,
		 const char *reason)
{
	int64		profile_id;
	int64		known;
	bool		isnull;
	Datum		session_values[3];
	Datum		current_customer;

	LockCustomer(customer_id);
	for (;;)
	{
		profile_id = LockSessionProfile(session_id);
		if (profile_id != 0)
			break;

		known = EnsureCustomerProfile(customer_id, email, occurred_at);
		session_values[0] = PointerGetDatum(session_id);
		session_values[1] = Int64GetDatum(known);
		session_values[2] = TimestampTzGetDatum(occurred_at);
		ExecSaved(&InsertSessionStatement, session_values, NULL, false, 0);
		if (SPI_processed == 1)
			return known;
		/* a first event created the session meanwhile: identify it as it is */
	}

	/*
	 * Profile rows are locked in id order: the customer's profile first when
	 * it is the older one, so that two logins swapping two sessions between
	 * two customers cannot each hold the profile the other one waits for.
	 */
	known = FindCustomerProfile(customer_id);
	if (known != 0 && known < profile_id)
		LockProfileRow(known);
	if (!LockProfileRow(profile_id))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("profile " INT64_FORMAT " of session \"%s\" does not exist",
						profile_id, text_to_cstring(session_id)),
				 errdetail("Every session in personalisation.sessions must point to a row of personalisation.profiles."),
				 errhint("Restore the profile row, or delete the session so that its next event starts afresh.")));
	current_customer = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	if (!isnull && DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, current_customer,
														PointerGetDatum(customer_id))))
	{
		SetEmail(profile_id, email);
		return profile_id;
	}

	if (isnull)
	{
		if (known == 0)
		{
			Datum		claim[3] = {Int64GetDatum(profile_id), PointerGetDatum(customer_id),
			PointerGetDatum(email)};
			char		nulls[3] = {' ', ' ', email ? ' ' : 'n'};

			ExecSaved(&ClaimProfileStatement, claim, nulls, false, 0);
			return profile_id;
		}
		SetEmail(known, email);
		MergeProfiles(profile_id, known, customer_id, session_id, reason, occurred_at);
		return known;
	}

	known = EnsureCustomerProfile(customer_id, email, occurred_at);
	session_values[0] = PointerGetDatum(session_id);
	session_values[1] = Int64GetDatum(known);
	ExecSaved(&MoveSessionStatement, session_values, NULL, false, 0);
	return known;
}

/*
 * IsBlocked reports whether the identifier, less surrounding blanks, is a
 * placeholder: one of AlwaysBlocked or of personalisation.blocked_identifiers,
 * in any letter case.
 */
static bool
IsBlocked(text *value)
{
	const char *data = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	const char *item;

	while (len > 0 && data[0] == ' ')
		data++, len--;
	while (len > 0 && data[len - 1] == ' ')
		len--;

	for (int i = 0; i < lengthof(AlwaysBlocked); i++)
		if (strlen(AlwaysBlocked[i]) == len && pg_strncasecmp(AlwaysBlocked[i], data, len) == 0)
			return true;

	item = BlockedIdentifiers ? BlockedIdentifiers : "";
	while (*item != '\0')
	{
		const char *end = strchr(item, ',');
		int			item_len = end ? end - item : strlen(item);
		const char *next = end ? end + 1 : item + item_len;

		while (item_len > 0 && isspace((unsigned char) item[0]))
			item++, item_len--;
		while (item_len > 0 && isspace((unsigned char) item[item_len - 1]))
			item_len--;
		if (item_len > 0 && item_len == len && pg_strncasecmp(item, data, len) == 0)
			return true;
		item = next;
	}
	return false;
}

/*
 * RequireUnblocked refuses a placeholder identifier: identifying on one
 * would stitch unrelated visitors together.
 */
static void
RequireUnblocked(text *value, const char *argname)
{
	if (IsBlocked(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" is a blocked identifier", argname, text_to_cstring(value)),
				 errdetail("Placeholders such as \"0\", \"null\", \"undefined\" and \"anonymous\" in any "
						   "letter case, and the values listed in personalisation.blocked_identifiers, "
						   "are refused: identifying on them would merge unrelated visitors."),
				 errhint("Call identify only once the visitor has logged in, with the real identifier.")));
}

/*
 * IdentifyCall checks identify's arguments (session_id, customer_id, email,
 * occurred_at) in fcinfo, refusing bad ones before anything is written, and
 * runs Identify.
 */
static int64
IdentifyCall(FunctionCallInfo fcinfo, const char *reason)
{
	text	   *session_id = RequireIdentifier(fcinfo, 0, "session_id");
	text	   *customer_id = RequireIdentifier(fcinfo, 1, "customer_id");
	text	   *email = OptionalIdentifier(fcinfo, 2, "email");
	TimestampTz occurred_at = RequireEventTime(fcinfo, 3);
	int64		profile_id;

	RequireUnblocked(session_id, "session_id");
	RequireUnblocked(customer_id, "customer_id");
	if (email != NULL)
	{
		const char *data = VARDATA_ANY(email);
		int			len = VARSIZE_ANY_EXHDR(email);
		const char *at = memchr(data, '@', len);

		RequireUnblocked(email, "email");
		if (at == NULL || at == data || at == data + len - 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("email \"%s\" is not an email address", text_to_cstring(email)),
					 errhint("Pass an address of the form name@domain, or NULL when the login gave none.")));
	}

	SPI_connect();
	profile_id = Identify(session_id, customer_id, email, occurred_at, reason);
	SPI_finish();
	return profile_id;
}

/*
 * identify stitches the session to the customer at login and returns the
 * customer's profile id.  Calling it again with the same session and
 * customer changes nothing.
 */
Datum
identify(PG_FUNCTION_ARGS)
{
	RequireWritableServer(fcinfo);
	PG_RETURN_INT64(IdentifyCall(fcinfo, "identify"));
}

/* What an identify_on_login error is about. */
typedef struct LoginTrigger
{
	Relation	relation;
	char	  **columns;
	int			ncolumns;
} LoginTrigger;

/*
 * LoginTriggerContext names the login table and the trigger's columns in
 * errors raised while the trigger identifies a row.
 */
static void
LoginTriggerContext(void *arg)
{
	LoginTrigger *trigger = (LoginTrigger *) arg;
	StringInfoData columns;

	initStringInfo(&columns);
	for (int i = 0; i < trigger->ncolumns; i++)
		appendStringInfo(&columns, "%s%s", i > 0 ? ", " : "", trigger->columns[i]);
	errcontext("identify_on_login(%s) on table \"%s\"", columns.data,
			   RelationGetRelationName(trigger->relation));
}

/*
 * RowColumn returns the named column of the row as its text form, setting
 * *isnull for NULL, and refuses a column the table does not have.
 */
static char *
RowColumn(LoginTrigger *trigger, HeapTuple row, const char *column, bool *isnull)
{
	TupleDesc	desc = RelationGetDescr(trigger->relation);
	int			attnum = SPI_fnumber(desc, column);
	char	   *value;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in table \"%s\"", column,
						RelationGetRelationName(trigger->relation)),
				 errhint("Name the login table's columns in the trigger's arguments: session, customer, "
						 "then optionally email and login time.")));
	value = SPI_getvalue(row, desc, attnum);
	*isnull = (value == NULL);
	return value;
}

/*
 * identify_on_login is a row trigger for the shop's own login table: it
 * identifies each inserted or updated login row as identify would.  Its
 * arguments name the session column, the customer column, and optionally
 * the email column ('' for none) and the column holding the login time
 * (now() when omitted).  Columns of any type are read in their text form.
 */
Datum
identify_on_login(PG_FUNCTION_ARGS)
{
	TriggerData *data = (TriggerData *) fcinfo->context;
	LoginTrigger trigger;
	HeapTuple	row;
	ErrorContextCallback context;
	char	   *value;
	bool		isnull;
	char	   *reason;

	LOCAL_FCINFO(call, 4);

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("identify_on_login() must be called as a trigger"),
				 errhint("Attach it to the login table with CREATE TRIGGER ... FOR EACH ROW.")));
	if (!TRIGGER_FIRED_FOR_ROW(data->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(data->tg_event) || TRIGGER_FIRED_BY_UPDATE(data->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("identify_on_login() must be fired for each row inserted or updated"),
				 errhint("Create the trigger AFTER INSERT (or UPDATE) ... FOR EACH ROW.")));

	trigger.relation = data->tg_relation;
	trigger.columns = data->tg_trigger->tgargs;
	trigger.ncolumns = data->tg_trigger->tgnargs;
	if (trigger.ncolumns < 2 || trigger.ncolumns > 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("identify_on_login() takes 2 to 4 trigger arguments, not %d", trigger.ncolumns),
				 errhint("Pass the names of the session column and the customer column, then optionally "
						 "the email column ('' for none) and the login time column.")));
	row = TRIGGER_FIRED_BY_UPDATE(data->tg_event) ? data->tg_newtuple : data->tg_trigtuple;

	context.callback = LoginTriggerContext;
	context.arg = &trigger;
	context.previous = error_context_stack;
	error_context_stack = &context;

	InitFunctionCallInfoData(*call, NULL, 4, InvalidOid, NULL, NULL);
	for (int i = 0; i < 3; i++)
	{
		call->args[i].value = (Datum) 0;
		call->args[i].isnull = true;
		if (i < trigger.ncolumns && trigger.columns[i][0] != '\0')
		{
			value = RowColumn(&trigger, row, trigger.columns[i], &isnull);
			call->args[i].isnull = isnull;
			if (!isnull)
				call->args[i].value = CStringGetTextDatum(value);
		}
	}
	call->args[3].value = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	call->args[3].isnull = false;
	if (trigger.ncolumns == 4)
	{
		value = RowColumn(&trigger, row, trigger.columns[3], &isnull);
		call->args[3].isnull = isnull;
		if (!isnull)
			call->args[3].value = DirectFunctionCall3(timestamptz_in, CStringGetDatum(value),
													  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}

	reason = psprintf("identify_on_login on %s",
					  quote_qualified_identifier(get_namespace_name(RelationGetNamespace(trigger.relation)),
												 RelationGetRelationName(trigger.relation)));
	IdentifyCall(call, reason);

	error_context_stack = context.previous;
	return PointerGetDatum(row);
}

/*
 * ReadLedger reads merge merge_id into *entry, locking its row when lock is
 * true, and refuses an unknown merge id.
 */
static void
ReadLedger(int64 merge_id, bool lock, LedgerEntry *entry)
{
	Datum		values[2] = {Int64GetDatum(merge_id), Int64GetDatum(entry->merge.into_profile_id)};
	TupleDesc	desc;
	HeapTuple	row;
	bool		isnull;

	ExecSaved(lock ? &LockMergeStatement : &ReadMergeStatement, values, NULL, false, 0);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("merge " INT64_FORMAT " does not exist", merge_id),
				 errhint("Pass a merge_id from personalisation.merges.")));

	desc = SPI_tuptable->tupdesc;
	row = SPI_tuptable->vals[0];
	entry->merge.merge_id = merge_id;
	entry->merge.into_profile_id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	entry->merge.from_profile_id = DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull));
	entry->customer_id = DatumGetTextPP(SPI_datumTransfer(SPI_getbinval(row, desc, 3, &isnull),
														  false, -1));
	entry->merge.merged_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 4, &isnull));
	entry->unmerged = DatumGetBool(SPI_getbinval(row, desc, 5, &isnull));
}

/*
 * unmerge splits merge merge_id back: the sessions, events, cart lines,
 * orders and consent the anonymous profile brought go back to it, and the
 * ledger records when.  It returns the anonymous profile's id.  Unmerging
 * a merge already undone changes nothing, so a retried call is harmless.
 */
Datum
unmerge(PG_FUNCTION_ARGS)
{
	LedgerEntry entry = {0};
	TimestampTz occurred_at;
	int64		counts[lengthof(MergeSteps)];
	Datum		restored[4];

	RequireWritableServer(fcinfo);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("merge_id must not be null"),
				 errhint("Pass a merge_id from personalisation.merges.")));
	occurred_at = RequireEventTime(fcinfo, 1);

	SPI_connect();
	ReadLedger(PG_GETARG_INT64(0), false, &entry);
	LockCustomer(entry.customer_id);
	LockProfile(entry.merge.from_profile_id);
	ReadLedger(entry.merge.merge_id, true, &entry);

	if (!entry.unmerged)
	{
		if (occurred_at < entry.merge.merged_at)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("occurred_at %s is before merge " INT64_FORMAT " happened",
							timestamptz_to_str(occurred_at), entry.merge.merge_id),
					 errdetail("The merge happened at %s.", timestamptz_to_str(entry.merge.merged_at)),
					 errhint("Omit occurred_at to use now(), or pass a time after the merge.")));

		ExecMergeStatement(&MergedSessionsStatement, &entry.merge);
		LockSessionsFound();
		LockProfileRow(Min(entry.merge.from_profile_id, entry.merge.into_profile_id));
		LockProfileRow(Max(entry.merge.from_profile_id, entry.merge.into_profile_id));
		LockAffinityWriters();
		for (int i = lengthof(MergeSteps) - 1; i >= 0; i--)
			counts[i] = MergeSteps[i].undo(&entry.merge);

		restored[0] = Int64GetDatum(entry.merge.into_profile_id);
		restored[1] = Int64GetDatum(entry.merge.merge_id);
		restored[2] = TimestampTzGetDatum(occurred_at);
		restored[3] = StepCounts(counts);
		ExecSaved(&RecordRestoredStatement, restored, NULL, false, 0);
	}
	SPI_finish();

	PG_RETURN_INT64(entry.merge.from_profile_id);
}

/*
 * IdentityInit defines the settings of this part.
 */
void
IdentityInit(void)
{
	DefineCustomStringVariable("personalisation.blocked_identifiers",
							   "Extra placeholder values identify() refuses as session, customer or email identifiers.",
							   "A comma-separated list compared case-insensitively, surrounding blanks ignored. "
							   "Blank values, '0', 'null', 'undefined' and 'anonymous' are always refused.",
							   &BlockedIdentifiers,
							   "",
							   PGC_SUSET, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
}
