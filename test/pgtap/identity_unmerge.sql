-- unmerge(): a merge undone puts back exactly what came from the anonymous
-- profile; activity after the merge is kept; repeats are no-ops.  Consent
-- across merges: push stays with the browser, email is the customer's.
BEGIN;
SELECT plan(33);
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL timezone = 'UTC';

INSERT INTO personalisation.categories VALUES ('idu-cat', NULL, 'Identity unmerge');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES
  ('idu-p1', 'idu-cat', 'One', 10), ('idu-p2', 'idu-cat', 'Two', 5), ('idu-p3', 'idu-cat', 'Three', 1);

\ir ../identity_state.sql

-- The customer on the desktop: a cart line, email consent withdrawn at 09:02.
SELECT personalisation.track_page_view('idu-desk', 'idu-cat', NULL, '2026-04-01 09:00+00');
SELECT personalisation.track_cart_add('idu-desk', 'idu-p1', 1, '2026-04-01 09:01+00');
SELECT personalisation.set_consent('idu-desk', 'email', false, '2026-04-01 09:02+00');
SELECT personalisation.identify('idu-desk', 'idu-cust', 'cust@example.com', '2026-04-01 09:03+00') AS desk \gset

-- The anonymous phone: events, a folded and a new cart line, an order, consent.
SELECT personalisation.track_page_view('idu-phone', 'idu-cat', NULL, '2026-04-01 10:00+00');
SELECT personalisation.track_cart_add('idu-phone', 'idu-p1', 2, '2026-04-01 08:00+00');
SELECT personalisation.track_cart_add('idu-phone', 'idu-p2', 1, '2026-04-01 10:02+00');
SELECT personalisation.track_purchase('idu-phone', 'idu-order',
  '[{"product_id": "idu-p3", "quantity": 1, "unit_price": 1}]', '2026-04-01 10:03+00');
SELECT personalisation.set_consent('idu-phone', 'email', true, '2026-04-01 10:04+00');
SELECT personalisation.set_consent('idu-phone', 'push', true, '2026-04-01 10:04+00');
SELECT profile_id AS phone FROM personalisation.sessions WHERE session_id = 'idu-phone' \gset
SELECT digest AS before_merge FROM identity_data \gset

SELECT is(personalisation.identify('idu-phone', 'idu-cust', NULL, '2026-04-01 10:05+00'), :desk::bigint,
          'the phone merges into the customer');
SELECT merge_id AS m1 FROM personalisation.merges WHERE from_profile_id = :phone \gset

-- Consent across the merge.
SELECT results_eq(
  $$SELECT email_consent, email_consent_at FROM personalisation.profiles WHERE profile_id = $$ || :desk,
  $$VALUES (true, '2026-04-01 10:04+00'::timestamptz)$$,
  'the anonymous side''s later email decision becomes the customer''s');
SELECT results_eq(
  $$SELECT session_id, push_consent FROM personalisation.sessions WHERE profile_id = $$ || :desk || $$ ORDER BY session_id$$,
  $$VALUES ('idu-desk'::text, false), ('idu-phone', true)$$,
  'push consent stays with the browser session that granted it');
SELECT is((SELECT count(*) FROM personalisation.consent_history WHERE profile_id = :desk), 3::bigint,
          'the consent history of both sides is the customer''s');

-- Undo it: everything is back exactly as before the merge.
SELECT is(personalisation.unmerge(:m1, '2026-04-01 10:30+00'), :phone::bigint,
          'unmerge returns the anonymous profile');
SELECT is((SELECT digest FROM identity_data), :'before_merge',
          'unmerge restores sessions, events, carts, orders and consent exactly');
SELECT results_eq(
  $$SELECT unmerged_at, restored = moved FROM personalisation.merges WHERE merge_id = $$ || :m1,
  $$VALUES ('2026-04-01 10:30+00'::timestamptz, true)$$,
  'the ledger records the unmerge and that everything moved came back');
SELECT digest AS after_unmerge FROM identity_all \gset
SELECT is(personalisation.unmerge(:m1, '2026-04-01 10:40+00'), :phone::bigint,
          'unmerging again returns the anonymous profile');
SELECT is((SELECT digest FROM identity_all), :'after_unmerge', 'unmerging again changes nothing');
SELECT personalisation.track_page_view('idu-phone', 'idu-cat', NULL, '2026-04-01 10:45+00');
SELECT is((SELECT count(*) FROM personalisation.events WHERE profile_id = :phone), 5::bigint,
          'the unmerged session records on the anonymous profile again');

-- Refusals.
SELECT throws_ok($$SELECT personalisation.unmerge(-1)$$, '42704', 'merge -1 does not exist',
                 'an unknown merge is refused');
SELECT throws_ok($$SELECT personalisation.unmerge(NULL)$$, '22004', 'merge_id must not be null',
                 'a NULL merge id is refused');

-- Merge again, then act after the merge before undoing it.
SELECT is(personalisation.identify('idu-phone', 'idu-cust', NULL, '2026-04-01 11:00+00'), :desk::bigint,
          'the same session can log in again after an unmerge');
SELECT merge_id AS m2 FROM personalisation.merges WHERE from_profile_id = :phone AND unmerged_at IS NULL \gset
SELECT isnt(:m2::bigint, :m1::bigint, 'the new login is a new merge');
SELECT throws_ok($$SELECT personalisation.unmerge($$ || :m2 || $$, '2026-04-01 10:59+00')$$, '22008', NULL,
                 'an unmerge stamped before its merge is refused');
SELECT personalisation.track_page_view('idu-phone', NULL, 'idu-p1', '2026-04-01 11:01+00');
SELECT personalisation.track_cart_add('idu-phone', 'idu-p1', 1, '2026-04-01 11:02+00');
SELECT personalisation.track_cart_remove('idu-desk', 'idu-p2', NULL, '2026-04-01 11:03+00');
SELECT personalisation.set_consent('idu-desk', 'email', false, '2026-04-01 11:04+00');
SELECT is((SELECT quantity FROM personalisation.cart_lines WHERE profile_id = :desk AND product_id = 'idu-p1'),
          4, 'after the merge the customer''s line holds both sides'' units and a new one');

SELECT is(personalisation.unmerge(:m2, '2026-04-01 11:30+00'), :phone::bigint, 'the second merge is undone');
SELECT is((SELECT profile_id FROM personalisation.sessions WHERE session_id = 'idu-phone'), :phone::bigint,
          'the session is back on the anonymous profile');
SELECT is((SELECT count(*) FROM personalisation.events WHERE profile_id = :phone), 5::bigint,
          'the events the merge moved are back on the anonymous profile');
SELECT results_eq(
  $$SELECT kind, occurred_at FROM personalisation.events
     WHERE profile_id = $$ || :desk || $$ AND session_id = 'idu-phone' ORDER BY occurred_at$$,
  $$VALUES ('page_view'::text, '2026-04-01 11:01+00'::timestamptz), ('cart_add', '2026-04-01 11:02+00')$$,
  'events the session recorded after the merge stay with the customer');
SELECT is((SELECT count(*) FROM personalisation.events WHERE merge_id = :m2), 0::bigint,
          'no event is left marked with the undone merge');
SELECT results_eq(
  $$SELECT profile_id, product_id, quantity, added_at FROM personalisation.cart_lines
     WHERE profile_id IN ($$ || :desk || ',' || :phone || $$) ORDER BY profile_id, product_id$$,
  $$VALUES ($$ || :desk || $$::bigint, 'idu-p1'::text, 2, '2026-04-01 09:01+00'::timestamptz),
           ($$ || :phone || $$::bigint, 'idu-p1'::text, 2, '2026-04-01 08:00+00'::timestamptz)$$,
  'the anonymous units go back, the unit added after the merge stays, a removed line is not revived');
SELECT results_eq(
  $$SELECT profile_id, line_count FROM personalisation.carts
     WHERE profile_id IN ($$ || :desk || ',' || :phone || $$) ORDER BY profile_id$$,
  $$VALUES ($$ || :desk || $$::bigint, 1), ($$ || :phone || $$::bigint, 1)$$,
  'both cart summaries count their own lines');
SELECT is((SELECT profile_id FROM personalisation.orders WHERE order_id = 'idu-order'), :phone::bigint,
          'the order goes back');
SELECT results_eq(
  $$SELECT email_consent, email_consent_at FROM personalisation.profiles WHERE profile_id = $$ || :desk,
  $$VALUES (false, '2026-04-01 11:04+00'::timestamptz)$$,
  'a consent the customer changed after the merge keeps that change');
SELECT results_eq(
  $$SELECT profile_id, count(*) FROM personalisation.consent_history
     WHERE profile_id IN ($$ || :desk || ',' || :phone || $$) GROUP BY 1 ORDER BY 1$$,
  $$VALUES ($$ || :desk || $$::bigint, 2::bigint), ($$ || :phone || $$::bigint, 2::bigint)$$,
  'the consent history goes back; changes made after the merge stay');
SELECT is((SELECT push_consent FROM personalisation.sessions WHERE session_id = 'idu-phone'), true,
          'push consent is still the browser''s');

-- Email consent: an older anonymous decision does not override the customer's.
SELECT personalisation.identify('idu-desk2', 'idu-cust2', NULL, '2026-04-02 09:00+00') AS desk2 \gset
SELECT personalisation.set_consent('idu-desk2', 'email', true, '2026-04-02 12:00+00');
SELECT personalisation.set_consent('idu-anon2', 'email', false, '2026-04-02 11:00+00');
SELECT personalisation.identify('idu-anon2', 'idu-cust2', NULL, '2026-04-02 12:30+00');
SELECT results_eq(
  $$SELECT email_consent, email_consent_at FROM personalisation.profiles WHERE profile_id = $$ || :desk2,
  $$VALUES (true, '2026-04-02 12:00+00'::timestamptz)$$,
  'an anonymous decision older than the customer''s own does not replace it');
SELECT is((SELECT count(*) FROM personalisation.merge_items i JOIN personalisation.merges m USING (profile_id, merge_id)
            WHERE m.profile_id = :desk2 AND i.step = 'email_consent'), 0::bigint,
          'an unchanged customer consent needs nothing to undo');

-- Email consent given while anonymous is kept by a first login.
SELECT personalisation.set_consent('idu-anon3', 'email', true, '2026-04-03 09:00+00');
SELECT personalisation.identify('idu-anon3', 'idu-cust3', 'three@example.com', '2026-04-03 09:05+00') AS three \gset
SELECT results_eq(
  $$SELECT email, email_consent FROM personalisation.profiles WHERE profile_id = $$ || :three,
  $$VALUES ('three@example.com'::text, true)$$,
  'a first login keeps the consent the visitor gave while anonymous');

-- Two merges into one customer are undone independently.
SELECT personalisation.track_cart_add('idu-anon4', 'idu-p2', 1, '2026-04-04 09:00+00');
SELECT personalisation.track_cart_add('idu-anon5', 'idu-p2', 2, '2026-04-04 09:01+00');
SELECT personalisation.identify('idu-anon4', 'idu-cust3', NULL, '2026-04-04 09:10+00');
SELECT personalisation.identify('idu-anon5', 'idu-cust3', NULL, '2026-04-04 09:11+00');
SELECT profile_id AS anon4 FROM personalisation.sessions WHERE session_id = 'idu-anon4' \gset
SELECT merge_id AS m4 FROM personalisation.merges m JOIN personalisation.merge_items i USING (profile_id, merge_id)
 WHERE i.step = 'sessions' AND i.item_key = 'idu-anon4' \gset
SELECT is((SELECT quantity FROM personalisation.cart_lines WHERE profile_id = :three AND product_id = 'idu-p2'), 3,
          'both anonymous carts fold into the customer''s');
SELECT personalisation.unmerge(:m4, '2026-04-04 09:20+00') AS restored4 \gset
SELECT results_eq(
  $$SELECT s.session_id, s.profile_id = $$ || :three || $$, c.quantity FROM personalisation.sessions s
      JOIN personalisation.cart_lines c USING (profile_id)
     WHERE s.session_id IN ('idu-anon4', 'idu-anon5') AND c.product_id = 'idu-p2' ORDER BY 1$$,
  $$VALUES ('idu-anon4'::text, false, 1), ('idu-anon5', true, 2)$$,
  'undoing the first merge leaves the second in place');
SELECT is(:restored4::bigint, (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'idu-anon4'),
          'the first session is back on its own profile');

SELECT * FROM finish();
ROLLBACK;
