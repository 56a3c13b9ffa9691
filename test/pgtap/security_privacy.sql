-- Privacy: export_customer returns everything held about a customer and
-- forget_customer erases it.  Completeness is checked against the catalog,
-- not a list: every table of the schema is searched for the person's keys
-- (profile ids, session ids, customer id, email, order ids, event ids) and
-- for their text anywhere in a row, so a table that a later capability adds
-- without being erased makes this test fail.
BEGIN;
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 0;
SET LOCAL personalisation.quiet_hours = '';
SELECT plan(26);
\ir ../security_helpers.sql

INSERT INTO personalisation.categories VALUES ('fg-cat', NULL, 'Forget');
INSERT INTO personalisation.products (product_id, category_id, name, price, subscribable, replenish_days)
VALUES ('fg-p1', 'fg-cat', 'Kettle', 30, false, NULL), ('fg-p2', 'fg-cat', 'Tea', 20, true, 30);

-- The customer: a first device (ranked once), a second device merged at
-- login, consent, an order, an abandoned cart whose journey sent, delivered and queued
-- messages and issued a coupon.
SELECT personalisation.track_page_view('fg-sess-Zq-a', 'fg-cat', NULL, '2025-05-01 09:00+00', 'fg-ev-Zq-1');
SELECT personalisation.set_consent('fg-sess-Zq-a', 'push', true, '2025-05-01 09:01+00', 'fg-ev-Zq-2');
SELECT count(*) FROM personalisation.rank_products('fg-sess-Zq-a', ARRAY['fg-p1'], false, '2025-05-01 09:01+00');
SELECT personalisation.identify('fg-sess-Zq-a', 'fg-cust-Zq', 'fg-zq@example.test', '2025-05-01 09:02+00');
SELECT personalisation.set_consent('fg-sess-Zq-a', 'email', true, '2025-05-01 09:03+00', 'fg-ev-Zq-3');
SELECT personalisation.track_cart_add('fg-sess-Zq-b', 'fg-p2', 1, '2025-05-01 09:04+00', 'fg-ev-Zq-4');
SELECT personalisation.identify('fg-sess-Zq-b', 'fg-cust-Zq', NULL, '2025-05-01 09:05+00');
SELECT personalisation.track_purchase('fg-sess-Zq-b', 'fg-order-Zq-1',
       '[{"product_id": "fg-p1", "quantity": 1, "unit_price": 30}, {"product_id": "fg-p2", "quantity": 2, "unit_price": 20}]',
       '2025-05-01 09:06+00');
SELECT personalisation.track_subscription_start('fg-sess-Zq-b', 'fg-p2', '2025-05-01 09:30+00');
SELECT personalisation.track_cart_add('fg-sess-Zq-a', 'fg-p1', 1, '2025-05-01 10:00+00', 'fg-ev-Zq-5');
SELECT personalisation.run_due(t) FROM unnest(ARRAY['2025-05-01 10:30+00', '2025-05-01 11:00+00',
                                                    '2025-05-02 10:00+00', '2025-05-04 10:00+00']::timestamptz[]) t;
SELECT count(personalisation.ack_message(message_id, '2025-05-04 10:02+00'))
  FROM personalisation.claim_messages('fg-sender', 2, '5 minutes', '2025-05-04 10:01+00');

-- A shared device: merged into the customer at a login, then unmerged (it
-- was someone else's); its history is not the customer's.
SELECT personalisation.track_page_view('fg-shared-c', NULL, 'fg-p1', '2025-05-01 12:00+00');
SELECT personalisation.identify('fg-shared-c', 'fg-cust-Zq', NULL, '2025-05-01 12:01+00');
SELECT personalisation.unmerge(merge_id, '2025-05-01 12:02+00')
  FROM personalisation.merges WHERE session_id = 'fg-shared-c';

-- Another customer, who must not be touched.
SELECT personalisation.track_cart_add('fg-other-s', 'fg-p1', 1, '2025-05-01 09:00+00');
SELECT personalisation.identify('fg-other-s', 'fg-other', 'fg-other@example.test', '2025-05-01 09:01+00');
SELECT personalisation.track_purchase('fg-other-s', 'fg-other-order',
       '[{"product_id": "fg-p2", "quantity": 1, "unit_price": 20}]', '2025-05-01 09:02+00');

-- The person's keys, found independently of the code under test.
CREATE TEMP TABLE fg_profiles AS
  SELECT profile_id FROM personalisation.profiles WHERE customer_id = 'fg-cust-Zq'
  UNION SELECT m.from_profile_id FROM personalisation.merges m
          JOIN personalisation.profiles p ON p.profile_id = m.profile_id
         WHERE p.customer_id = 'fg-cust-Zq' AND m.unmerged_at IS NULL;
CREATE TEMP TABLE fg_keys (key_column text, value text);
INSERT INTO fg_keys
  SELECT 'profile_id', profile_id::text FROM fg_profiles
  UNION ALL SELECT 'session_id', session_id FROM personalisation.sessions WHERE profile_id IN (SELECT profile_id FROM fg_profiles)
  UNION ALL SELECT 'order_id', order_id FROM personalisation.orders WHERE profile_id IN (SELECT profile_id FROM fg_profiles)
  UNION ALL SELECT 'event_id', event_id FROM personalisation.events
             WHERE profile_id IN (SELECT profile_id FROM fg_profiles) AND event_id IS NOT NULL
  UNION ALL SELECT 'event_id', event_id FROM personalisation.consent_history
             WHERE profile_id IN (SELECT profile_id FROM fg_profiles) AND event_id IS NOT NULL
  UNION ALL SELECT 'customer_id', 'fg-cust-Zq'
  UNION ALL SELECT 'email', 'fg-zq@example.test';

-- references(): every table.column still naming the person by a key, and
-- every table with the person's text anywhere in a row.
CREATE FUNCTION pg_temp.references() RETURNS text[] LANGUAGE sql AS $$
  SELECT pg_temp.references_to((SELECT jsonb_object_agg(key_column, v)
                                  FROM (SELECT key_column, jsonb_agg(value) AS v FROM fg_keys GROUP BY 1) k),
                               '(fg-cust-Zq|fg-sess-Zq|fg-order-Zq|fg-ev-Zq|fg-zq@)')
$$;

-- The fixture reaches every table that can refer to a person, so that the
-- checks below can fail for each (a capability adding such a table extends
-- the fixture above so that the customer has rows there).
SELECT is((SELECT array_agg(DISTINCT c.table_name ORDER BY c.table_name) FROM person_key_columns c
            WHERE NOT EXISTS (SELECT FROM unnest(pg_temp.references()) r WHERE split_part(r, '.', 1) = c.table_name)),
          NULL, 'before: the customer has rows in every table that can refer to a person');
SELECT ok((SELECT count(*) >= 2 FROM personalisation.outbox WHERE profile_id IN (SELECT profile_id FROM fg_profiles)
             AND status = 'delivered'), 'the customer was sent messages that were delivered');
SELECT ok((SELECT count(*) > 0 FROM personalisation.coupons WHERE profile_id IN (SELECT profile_id FROM fg_profiles)),
          'and issued a coupon');
SELECT is((SELECT count(*) FROM fg_profiles), 2::bigint, 'the customer has a profile and a merged anonymous one');
SELECT ok((SELECT sum(co_orders) > 0 FROM personalisation.complement_pairs WHERE product_a = 'fg-p1' AND product_b = 'fg-p2'),
          'and their order counts in the product pairs');

CREATE TEMP TABLE fg_other_before AS
  SELECT md5(string_agg(r, ',' ORDER BY r)) AS digest FROM (
    SELECT e::text AS r FROM personalisation.events e WHERE session_id = 'fg-other-s'
    UNION ALL SELECT p::text FROM personalisation.profiles p WHERE customer_id = 'fg-other'
    UNION ALL SELECT o::text FROM personalisation.orders o WHERE order_id = 'fg-other-order'
    UNION ALL SELECT l::text FROM personalisation.order_lines l WHERE order_id = 'fg-other-order'
    UNION ALL SELECT c::text FROM personalisation.cart_lines c WHERE session_id = 'fg-other-s') rows;
CREATE TEMP TABLE fg_shared_before AS
  SELECT count(*) AS events FROM personalisation.events WHERE session_id = 'fg-shared-c';

-- Export.
CREATE TEMP TABLE fg_export AS SELECT personalisation.export_customer('fg-cust-Zq') AS doc;
SELECT is((SELECT array_agg(c.table_name ORDER BY c.table_name) FROM person_key_columns c
            WHERE c.column_name = 'profile_id' AND NOT (SELECT doc -> 'tables' ? c.table_name FROM fg_export)),
          NULL, 'the export has a section for every table with a profile_id column');
SELECT is((SELECT jsonb_array_length(doc -> 'tables' -> 'events') FROM fg_export),
          (SELECT count(*)::int FROM personalisation.events WHERE profile_id IN (SELECT profile_id FROM fg_profiles)),
          'with every event of the customer');
SELECT is((SELECT jsonb_array_length(doc -> 'tables' -> 'order_lines') FROM fg_export), 2, 'the lines of the order');
SELECT is((SELECT jsonb_array_length(doc -> 'tables' -> 'event_keys') FROM fg_export),
          (SELECT count(*)::int FROM fg_keys WHERE key_column = 'event_id'), 'the idempotency keys of the events');
SELECT is((SELECT jsonb_array_length(doc -> 'tables' -> 'sessions') FROM fg_export), 2, 'both devices');
SELECT ok((SELECT jsonb_array_length(doc -> 'tables' -> 'merges') = 2 FROM fg_export),
          'and the merge ledger, the undone merge included');
SELECT ok((SELECT doc::text !~ 'fg-other' AND doc -> 'tables' ->> 'events' !~ 'fg-shared-c' FROM fg_export),
          'and nothing of anybody else: not the other customer, not the shared device''s own history');
SELECT is((SELECT doc ->> 'customer_id' FROM fg_export), 'fg-cust-Zq', 'the export names the customer');

-- Forget.
CREATE TEMP TABLE fg_report AS SELECT personalisation.forget_customer('fg-cust-Zq') AS report;
SELECT is(pg_temp.references(), '{}', 'after forget_customer no table of the schema refers to the customer');
SELECT ok((SELECT (report ->> 'events')::int > 0 AND (report ->> 'outbox')::int >= 3
                  AND (report ->> 'profiles')::int = 2 AND (report ->> 'order_lines')::int = 2 FROM fg_report),
          'and it reports what it erased per table');
SELECT is((SELECT md5(string_agg(r, ',' ORDER BY r)) FROM (
    SELECT e::text AS r FROM personalisation.events e WHERE session_id = 'fg-other-s'
    UNION ALL SELECT p::text FROM personalisation.profiles p WHERE customer_id = 'fg-other'
    UNION ALL SELECT o::text FROM personalisation.orders o WHERE order_id = 'fg-other-order'
    UNION ALL SELECT l::text FROM personalisation.order_lines l WHERE order_id = 'fg-other-order'
    UNION ALL SELECT c::text FROM personalisation.cart_lines c WHERE session_id = 'fg-other-s') rows),
   (SELECT digest FROM fg_other_before), 'the other customer is untouched');
SELECT is((SELECT count(*) FROM personalisation.events WHERE session_id = 'fg-shared-c'),
          (SELECT events FROM fg_shared_before), 'the shared device unmerged from the customer keeps its own history');
SELECT is((SELECT count(*) FROM personalisation.products WHERE product_id LIKE 'fg-p%'), 2::bigint, 'the catalogue stays');
SELECT is((SELECT count(*) FROM personalisation.journeys), (SELECT count(DISTINCT journey) FROM personalisation.journey_steps),
          'and so do the journey definitions');
CREATE TEMP TABLE fg_pairs AS SELECT * FROM personalisation.complement_pairs WHERE product_a LIKE 'fg-%';
SELECT * FROM personalisation.rebuild_complementarity();
SELECT set_eq($$SELECT * FROM fg_pairs WHERE co_orders <> 0$$,
              $$SELECT * FROM personalisation.complement_pairs WHERE product_a LIKE 'fg-%' AND co_orders <> 0$$,
              'the anonymous pair counts stay, equal to a rebuild from the orders that remain');

SELECT throws_ok($$SELECT personalisation.forget_customer('fg-cust-Zq')$$, 'P0002',
                 'customer "fg-cust-Zq" is not known', 'forgetting the customer again is refused as unknown');
SELECT throws_ok($$SELECT personalisation.export_customer('fg-cust-Zq')$$, 'P0002', NULL, 'so is exporting them');
SELECT throws_ok($$SELECT personalisation.forget_customer(NULL)$$, '22004', NULL, 'a NULL customer id is refused');
SELECT throws_ok($$SELECT personalisation.forget_customer('')$$, '22023', NULL, 'so is an empty one');

-- The person comes back: nothing links them to what was forgotten.
SELECT personalisation.track_page_view('fg-sess-Zq-a', 'fg-cat', NULL, '2025-06-01 09:00+00');
SELECT ok((SELECT p.customer_id IS NULL FROM personalisation.sessions s JOIN personalisation.profiles p USING (profile_id)
            WHERE s.session_id = 'fg-sess-Zq-a'), 'a forgotten session seen again starts a new anonymous profile');
SELECT ok(personalisation.identify('fg-sess-Zq-a', 'fg-cust-Zq', NULL, '2025-06-01 09:01+00')
            NOT IN (SELECT profile_id FROM fg_profiles), 'and a new login a new customer profile');

SELECT * FROM finish();
ROLLBACK;
