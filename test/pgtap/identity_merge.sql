-- identify(): first login, login into an existing profile (cross-device),
-- idempotent repeats, shared device (A then B), blocked identifiers and bad
-- input leaving every table unchanged.
BEGIN;
SELECT plan(53);
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL timezone = 'UTC';

INSERT INTO personalisation.categories VALUES ('idm-cat', NULL, 'Identity merge');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES
  ('idm-p1', 'idm-cat', 'One', 10), ('idm-p2', 'idm-cat', 'Two', 5), ('idm-p3', 'idm-cat', 'Three', 1);

\ir ../identity_state.sql

-- First login: the desktop session's anonymous profile becomes the customer's.
SELECT personalisation.track_page_view('idm-desk', 'idm-cat', NULL, '2026-03-01 09:00+00');
SELECT personalisation.track_cart_add('idm-desk', 'idm-p1', 1, '2026-03-01 09:01+00');
SELECT profile_id AS desk FROM personalisation.sessions WHERE session_id = 'idm-desk' \gset

SELECT is(personalisation.identify('idm-desk', 'idm-cust', 'cust@example.com', '2026-03-01 09:02+00'),
          :desk::bigint, 'a first login returns the session''s own profile');
SELECT results_eq($$SELECT customer_id, email FROM personalisation.profiles WHERE profile_id = $$ || :desk,
                  $$VALUES ('idm-cust'::text, 'cust@example.com'::text)$$,
                  'the anonymous profile now carries the customer id and email');
SELECT is((SELECT count(*) FROM personalisation.merges WHERE profile_id = :desk), 0::bigint,
          'a first login merges nothing');
SELECT is((SELECT count(*) FROM personalisation.events WHERE profile_id = :desk), 2::bigint,
          'the history stays on the profile');

SELECT digest AS before_repeat FROM identity_all \gset
SELECT is(personalisation.identify('idm-desk', 'idm-cust', 'cust@example.com', '2026-03-01 09:02+00'),
          :desk::bigint, 'identify again returns the same profile');
SELECT is((SELECT digest FROM identity_all), :'before_repeat', 'identify again changes nothing');

-- Cross-device: an anonymous phone session with a cart, an order and consent logs in.
SELECT personalisation.track_page_view('idm-phone', 'idm-cat', NULL, '2026-03-02 10:00+00');
SELECT personalisation.track_page_view('idm-phone', NULL, 'idm-p2', '2026-03-02 10:01+00');
SELECT personalisation.track_cart_add('idm-phone', 'idm-p1', 2, '2026-03-01 08:00+00');
SELECT personalisation.track_cart_add('idm-phone', 'idm-p2', 1, '2026-03-02 10:02+00');
SELECT personalisation.track_purchase('idm-phone', 'idm-order-1',
  '[{"product_id": "idm-p3", "quantity": 1, "unit_price": 1}]', '2026-03-02 10:03+00');
SELECT profile_id AS phone FROM personalisation.sessions WHERE session_id = 'idm-phone' \gset

SELECT is(personalisation.identify('idm-phone', 'idm-cust', NULL, '2026-03-02 10:05+00'),
          :desk::bigint, 'a login into an existing customer returns the customer''s profile');
SELECT is((SELECT profile_id FROM personalisation.sessions WHERE session_id = 'idm-phone'), :desk::bigint,
          'the phone session now belongs to the customer''s profile');
SELECT is((SELECT count(*) FROM personalisation.events WHERE profile_id = :desk), 7::bigint,
          'the customer''s profile reads the union of both devices'' events');
SELECT is((SELECT count(*) FROM personalisation.events WHERE profile_id = :phone), 0::bigint,
          'no event is left on the anonymous profile');
SELECT is((SELECT count(*) FROM personalisation.events WHERE profile_id = :desk AND merge_id IS NOT NULL),
          5::bigint, 'the moved events are marked with their merge');
SELECT results_eq(
  $$SELECT product_id, quantity, added_at FROM personalisation.cart_lines WHERE profile_id = $$ || :desk || $$ ORDER BY product_id$$,
  $$VALUES ('idm-p1'::text, 3, '2026-03-01 08:00+00'::timestamptz), ('idm-p2', 1, '2026-03-02 10:02+00')$$,
  'cart lines fold: quantities add up per product and the earliest added_at is kept');
SELECT is((SELECT count(*) FROM personalisation.cart_lines WHERE profile_id = :phone), 0::bigint,
          'the anonymous cart is empty');
SELECT results_eq(
  $$SELECT line_count, last_activity_at FROM personalisation.carts WHERE profile_id = $$ || :desk,
  $$VALUES (2, '2026-03-02 10:03+00'::timestamptz)$$,
  'the customer''s cart summary counts the folded lines and the latest activity');
SELECT is((SELECT count(*) FROM personalisation.carts WHERE profile_id = :phone), 0::bigint,
          'the anonymous cart summary is gone');
SELECT is((SELECT profile_id FROM personalisation.orders WHERE order_id = 'idm-order-1'), :desk::bigint,
          'the anonymous order belongs to the customer');
SELECT results_eq(
  $$SELECT from_profile_id, customer_id, session_id, reason, merged_at, moved, unmerged_at
      FROM personalisation.merges WHERE profile_id = $$ || :desk,
  $$VALUES ($$ || :phone || $$::bigint, 'idm-cust'::text, 'idm-phone'::text, 'identify'::text,
            '2026-03-02 10:05+00'::timestamptz,
            '{"sessions": 1, "affinity": 2, "events": 5, "cart_lines": 2, "orders": 1, "consent_changes": 0, "journeys": 0}'::jsonb,
            NULL::timestamptz)$$,
  'the ledger records which profiles merged, when, why and what moved');
SELECT is((SELECT customer_id FROM personalisation.profiles WHERE profile_id = :phone), NULL,
          'the anonymous profile stays anonymous');

SELECT digest AS before_repeat FROM identity_all \gset
SELECT is(personalisation.identify('idm-phone', 'idm-cust', NULL, '2026-03-02 10:05+00'),
          :desk::bigint, 'identify again after a merge returns the customer''s profile');
SELECT is((SELECT digest FROM identity_all), :'before_repeat', 'identify again after a merge changes nothing');

SELECT personalisation.track_page_view('idm-phone', 'idm-cat', NULL, '2026-03-02 10:06+00');
SELECT is((SELECT profile_id FROM personalisation.events
            WHERE session_id = 'idm-phone' AND occurred_at = '2026-03-02 10:06+00'), :desk::bigint,
          'the next event of the merged session lands on the customer''s profile');

-- A session never seen before starts on the customer's profile; an unknown
-- customer on an unknown session gets a profile of its own.
SELECT is(personalisation.identify('idm-tablet', 'idm-cust', NULL, '2026-03-03 08:00+00'), :desk::bigint,
          'a login from a new session joins the customer''s profile');
SELECT is((SELECT count(*) FROM personalisation.merges WHERE profile_id = :desk), 1::bigint,
          'a new session needs no merge');
SELECT isnt(personalisation.identify('idm-kiosk', 'idm-newcomer', NULL, '2026-03-03 08:00+00'), :desk::bigint,
            'a new customer on a new session gets a new profile');
SELECT results_eq(
  $$SELECT p.customer_id, p.created_at FROM personalisation.profiles p
      JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = 'idm-kiosk'$$,
  $$VALUES ('idm-newcomer'::text, '2026-03-03 08:00+00'::timestamptz)$$,
  'the new profile belongs to the customer from the login on');

-- Shared device: a session identified as A logs in as B.
SELECT personalisation.track_page_view('idm-shared', 'idm-cat', NULL, '2026-03-04 09:00+00');
SELECT personalisation.identify('idm-shared', 'idm-alice', NULL, '2026-03-04 09:01+00') AS alice \gset
SELECT personalisation.track_cart_add('idm-shared', 'idm-p1', 1, '2026-03-04 09:02+00');
SELECT personalisation.identify('idm-shared', 'idm-bob', NULL, '2026-03-04 09:10+00') AS bob \gset
SELECT isnt(:bob::bigint, :alice::bigint, 'B gets a profile of his own');
SELECT is((SELECT profile_id FROM personalisation.sessions WHERE session_id = 'idm-shared'), :bob::bigint,
          'the session continues on B''s profile');
SELECT personalisation.track_page_view('idm-shared', NULL, 'idm-p2', '2026-03-04 09:11+00');
SELECT results_eq(
  $$SELECT profile_id, count(*) FROM personalisation.events WHERE session_id = 'idm-shared'
     GROUP BY profile_id ORDER BY profile_id$$,
  $$VALUES ($$ || :alice || $$::bigint, 2::bigint), ($$ || :bob || $$::bigint, 1::bigint)$$,
  'A''s history stays A''s; events after the switch are B''s');
SELECT is((SELECT count(*) FROM personalisation.cart_lines WHERE profile_id = :alice), 1::bigint,
          'A''s cart stays A''s');
SELECT is((SELECT count(*) FROM personalisation.cart_lines WHERE profile_id = :bob), 0::bigint,
          'B does not get A''s cart');
SELECT is((SELECT count(*) FROM personalisation.merges WHERE profile_id IN (:alice, :bob)
             OR from_profile_id IN (:alice, :bob)), 0::bigint,
          'two known customers are never merged');
SELECT results_eq(
  $$SELECT customer_id FROM personalisation.profiles WHERE profile_id IN ($$ || :alice || ',' || :bob || $$) ORDER BY profile_id$$,
  $$VALUES ('idm-alice'::text), ('idm-bob')$$,
  'both customers keep their profiles');
SELECT is(personalisation.identify('idm-shared', 'idm-alice', NULL, '2026-03-04 09:20+00'), :alice::bigint,
          'A logging in again on the device takes the session back to A''s profile');
SELECT is((SELECT count(*) FROM personalisation.events WHERE profile_id = :bob), 1::bigint,
          'B keeps the event he made');
SELECT is(personalisation.identify('idm-phone', 'idm-bob', NULL, '2026-03-04 09:30+00'), :bob::bigint,
          'a session merged into a customer can also move on to another customer');
SELECT is((SELECT count(*) FROM personalisation.events WHERE profile_id = :desk), 8::bigint,
          'the first customer keeps everything the merged session brought');

-- Blocked identifiers are refused and change nothing.
SELECT digest AS before_refusals FROM identity_all \gset
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', '0')$$, '22023',
                 'customer_id "0" is a blocked identifier', '"0" is refused as a customer id');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', 'NULL')$$, '22023',
                 'customer_id "NULL" is a blocked identifier', '"null" is refused in any letter case');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', 'Undefined')$$, '22023',
                 'customer_id "Undefined" is a blocked identifier', '"undefined" is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', ' anonymous ')$$, '22023',
                 'customer_id " anonymous " is a blocked identifier', '"anonymous" is refused with blanks around it');
SELECT throws_ok($$SELECT personalisation.identify('undefined', 'idm-cust')$$, '22023',
                 'session_id "undefined" is a blocked identifier', 'a placeholder session id is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', 'idm-cust', 'null')$$, '22023',
                 'email "null" is a blocked identifier', 'a placeholder email is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', 'idm-cust', 'nobody')$$, '22023',
                 'email "nobody" is not an email address', 'an email without @ is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', '')$$, '22023',
                 'customer_id must not be empty', 'an empty customer id is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', '   ')$$, '22023',
                 'customer_id must not be empty', 'a blank customer id is refused');
SET LOCAL personalisation.blocked_identifiers = 'guest, -1';
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', 'GUEST')$$, '22023',
                 'customer_id "GUEST" is a blocked identifier',
                 'values listed in personalisation.blocked_identifiers are refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', '-1')$$, '22023',
                 'customer_id "-1" is a blocked identifier', 'every listed value is refused');
RESET personalisation.blocked_identifiers;

-- Bad input is refused and changes nothing.
SELECT throws_ok($$SELECT personalisation.identify(NULL, 'idm-cust')$$, '22004',
                 'session_id must not be null', 'a NULL session is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', NULL)$$, '22004',
                 'customer_id must not be null', 'a NULL customer is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', repeat('x', 300))$$, '22001',
                 'customer_id is too long', 'a customer id over 256 bytes is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', E'idm\tcust')$$, '22023',
                 'customer_id contains a control character', 'a customer id with a tab is refused');
SELECT throws_ok($$SELECT personalisation.identify('idm-desk', 'idm-cust', NULL, NULL)$$, '22004',
                 'occurred_at must not be null', 'a NULL login time is refused');
SELECT is((SELECT digest FROM identity_all), :'before_refusals', 'refused calls changed nothing');

SELECT * FROM finish();
ROLLBACK;
