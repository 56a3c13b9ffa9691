-- Retention: maintain_partitions drops the event partitions older than
-- personalisation.event_retention, expires the sessions last seen before
-- then, and erases the anonymous profiles left with no session (nothing can
-- reach them again).  Customers' profiles and merged profiles that unmerge
-- may still need stay.
BEGIN;
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 0;
SET LOCAL personalisation.quiet_hours = '';
SELECT plan(12);
\ir ../security_helpers.sql

INSERT INTO personalisation.categories VALUES ('rt-cat', NULL, 'Retention');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('rt-p', 'rt-cat', 'Mug', 8);
CREATE TEMP TABLE rt_clock AS SELECT now() - interval '10 days' AS old, now() - interval '1 hour' AS fresh;

-- An anonymous visitor last seen ten days ago, with a cart, consent and a journey.
SELECT personalisation.set_consent('rt-anon-old', 'push', true, old) FROM rt_clock;
SELECT personalisation.track_cart_add('rt-anon-old', 'rt-p', 1, old, 'rt-ev-1') FROM rt_clock;
SELECT personalisation.run_due(old + interval '31 minutes') FROM rt_clock;
-- A customer last seen ten days ago, with an order, and an anonymous device merged in then.
SELECT personalisation.track_page_view('rt-merged', 'rt-cat', NULL, old) FROM rt_clock;
SELECT personalisation.identify('rt-cust-old', 'rt-cust', 'rt@example.test', old) FROM rt_clock;
SELECT personalisation.identify('rt-merged', 'rt-cust', NULL, old + interval '1 minute') FROM rt_clock;
SELECT personalisation.track_purchase('rt-cust-old', 'rt-order', '[{"product_id": "rt-p", "quantity": 1, "unit_price": 8}]', old)
  FROM rt_clock;
-- A visitor seen an hour ago.
SELECT personalisation.track_page_view('rt-fresh', 'rt-cat', NULL, fresh, 'rt-ev-2') FROM rt_clock;

CREATE TEMP TABLE rt_profiles AS
  SELECT s.session_id, s.profile_id FROM personalisation.sessions s WHERE s.session_id LIKE 'rt-%'
  UNION ALL SELECT 'merged-away', m.from_profile_id FROM personalisation.merges m WHERE m.session_id = 'rt-merged';

-- Every table.column naming the profile (from the catalog).
CREATE FUNCTION pg_temp.rows_of(profile bigint) RETURNS text[] LANGUAGE sql AS $$
  SELECT pg_temp.references_to(jsonb_build_object('profile_id', jsonb_build_array(profile)), NULL)
$$;

SELECT ok(cardinality(pg_temp.rows_of(profile_id)) >= 8,
          'before: the old anonymous visitor has a profile, a session, a cart, events, consent, a run and a message')
  FROM rt_profiles WHERE session_id = 'rt-anon-old';

SET LOCAL personalisation.event_retention = '2d';
CREATE TEMP TABLE rt_maintained AS SELECT * FROM personalisation.maintain_partitions(now());
SELECT ok((SELECT expired_sessions >= 3 AND forgotten_profiles >= 1 FROM rt_maintained),
          'maintain_partitions reports the sessions it expired and the profiles it forgot');
SELECT is((SELECT array_agg(session_id ORDER BY session_id) FROM rt_profiles r
            WHERE session_id <> 'merged-away'
              AND NOT EXISTS (SELECT FROM personalisation.sessions s WHERE s.session_id = r.session_id)),
          ARRAY['rt-anon-old', 'rt-cust-old', 'rt-merged'], 'it expires the three sessions last seen ten days ago');
SELECT is(pg_temp.rows_of(profile_id), '{}', 'nothing of the old anonymous visitor is left in any table')
  FROM rt_profiles WHERE session_id = 'rt-anon-old';
SELECT is((SELECT count(*) FROM personalisation.event_keys WHERE event_id = 'rt-ev-1'), 0::bigint,
          'not even the idempotency keys of its events');
SELECT ok((SELECT count(*) = 1 FROM personalisation.profiles WHERE customer_id = 'rt-cust'),
          'the customer''s profile stays: the next login reaches it');
SELECT is((SELECT count(*) FROM personalisation.orders WHERE order_id = 'rt-order'), 1::bigint, 'with its order');
SELECT personalisation.track_page_view('rt-cust-old', 'rt-cat', NULL, now());
SELECT ok((SELECT p.customer_id IS NULL FROM personalisation.sessions s JOIN personalisation.profiles p USING (profile_id)
            WHERE s.session_id = 'rt-cust-old'), 'an expired session seen again starts anonymous, until the next login');
SELECT is((SELECT count(*) FROM personalisation.profiles WHERE profile_id = (SELECT profile_id FROM rt_profiles WHERE session_id = 'merged-away')),
          1::bigint, 'the anonymous profile merged into the customer stays for unmerge');
SELECT ok((SELECT count(*) = 1 FROM personalisation.sessions WHERE session_id = 'rt-fresh')
          AND (SELECT count(*) = 1 FROM personalisation.events WHERE event_id = 'rt-ev-2'),
          'the visitor seen an hour ago keeps the session and the events');
SELECT is((SELECT count(*) FROM personalisation.events WHERE occurred_at < now() - interval '2 days'), 0::bigint,
          'no event older than the retention is left (their partitions were dropped)');
SELECT is((SELECT expired_sessions FROM personalisation.maintain_partitions(now())), 0::bigint,
          'running it again expires nothing more');

SELECT * FROM finish();
ROLLBACK;
