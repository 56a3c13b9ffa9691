-- test/locking.sh checks, run once the clients have stopped (psql variables:
-- deadlocks_before, and calls, the number of calls the clients made).  The
-- committed calls of each kind are counted from the ledger locking_calls.
-- Prints one "ok - " or "not ok - " line per check.
CREATE TEMP TABLE checks (name text, ok boolean, detail text);
CREATE TEMP TABLE committed AS
SELECT k.kind, count(c.kind) AS calls
  FROM (VALUES ('identify'), ('page_view'), ('cart_add'), ('cart_remove'), ('consent'), ('purchase')) AS k(kind)
  LEFT JOIN locking_calls c USING (kind)
 GROUP BY k.kind;

INSERT INTO checks
SELECT 'every call committed', sum(calls) = :calls, sum(calls) || ' committed of ' || :calls || ' calls'
  FROM committed;

INSERT INTO checks
SELECT 'no deadlock (pg_stat_database)', deadlocks = :deadlocks_before, deadlocks - :deadlocks_before || ' deadlocks'
  FROM pg_stat_database WHERE datname = current_database();

-- No lost events: every committed call recorded exactly its event.
INSERT INTO checks
SELECT 'every ' || kind || ' call recorded its event', count(e.kind) = calls,
       count(e.kind) || ' events of ' || calls || ' calls'
  FROM committed k
  LEFT JOIN personalisation.events e USING (kind)
 WHERE k.kind IN ('page_view', 'cart_add', 'cart_remove', 'purchase')
 GROUP BY kind, calls;
INSERT INTO checks
SELECT 'every purchase recorded its order', count(*) = k.calls, count(*) || ' orders of ' || k.calls || ' calls'
  FROM personalisation.orders, committed k
 WHERE k.kind = 'purchase'
 GROUP BY k.calls;
INSERT INTO checks
SELECT 'every consent call recorded its change', count(*) = k.calls,
       count(*) || ' changes of ' || k.calls || ' calls'
  FROM personalisation.consent_history, committed k
 WHERE k.kind = 'consent'
 GROUP BY k.calls;

-- Nothing left behind by a merge: every event, order and consent change is
-- on the profile its session belongs to now (a session belongs to one
-- customer, and nothing is unmerged).
INSERT INTO checks
SELECT 'every event is on its session''s profile', count(*) = 0, count(*) || ' events elsewhere'
  FROM personalisation.events e JOIN personalisation.sessions s USING (session_id)
 WHERE e.profile_id <> s.profile_id;
INSERT INTO checks
SELECT 'every order and consent change is on its session''s profile', count(*) = 0, count(*) || ' rows elsewhere'
  FROM (SELECT session_id, profile_id FROM personalisation.orders
        UNION ALL SELECT session_id, profile_id FROM personalisation.consent_history) r
  JOIN personalisation.sessions s USING (session_id)
 WHERE r.profile_id <> s.profile_id;
INSERT INTO checks
SELECT 'each customer has one profile, holding every identified session', count(*) = 0,
       count(*) || ' customers with sessions elsewhere'
  FROM personalisation.profiles p
 WHERE p.customer_id IS NOT NULL
   AND EXISTS (SELECT FROM personalisation.merges m JOIN personalisation.sessions s USING (session_id)
                WHERE m.customer_id = p.customer_id AND s.profile_id <> p.profile_id);
INSERT INTO checks
SELECT 'every cart summary counts its lines', count(*) = 0, count(*) || ' carts miscounted'
  FROM personalisation.carts c
 WHERE c.line_count <> (SELECT count(*) FROM personalisation.cart_lines l WHERE l.profile_id = c.profile_id);
INSERT INTO checks
SELECT 'the logins merged sessions', count(*) > 0, count(*) || ' merges of ' || k.calls || ' logins'
  FROM personalisation.merges, committed k
 WHERE k.kind = 'identify'
 GROUP BY k.calls;

SELECT CASE WHEN ok THEN 'ok - ' ELSE 'not ok - ' END || name || ' (' || detail || ')' FROM checks;
