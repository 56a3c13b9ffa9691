-- Concurrency of the post-purchase journeys, on two real connections
-- (test/race.sql): two orders of one customer placed at the same instant
-- start one cross-sell run and one offer per product; two subscription
-- starts at once record one subscription; a subscription racing the
-- run_due that writes its offer never lets the offer be handed out.  Times
-- are relative to now() (the background worker only sees due steps days
-- ahead); the data is committed, so that the other connections see it, and
-- removed at the end.
SET timezone = 'UTC';
SELECT plan(9);

INSERT INTO personalisation.categories VALUES ('ppc-cat', NULL, 'Concurrency test');
INSERT INTO personalisation.products (product_id, category_id, name, price, subscribable, replenish_days) VALUES
  ('ppc-beans', 'ppc-cat', 'Beans', 12, true, 30), ('ppc-tea', 'ppc-cat', 'Tea', 8, true, 30);
SELECT personalisation.track_page_view('ppc-s', occurred_at => now() - interval '2 hours');
UPDATE personalisation.profiles p SET customer_id = 'cust-ppc', email = 'ppc@example.test', email_consent = true
  FROM personalisation.sessions s WHERE s.session_id = 'ppc-s' AND s.profile_id = p.profile_id;
CREATE TEMP TABLE ppc_mine AS SELECT profile_id FROM personalisation.sessions WHERE session_id = 'ppc-s';

\ir ../race.sql
SELECT pg_temp.race_connect(ARRAY['SET personalisation.journey_holdout_percent = 0',
                                  'SET personalisation.frequency_cap = 0',
                                  'SET personalisation.quiet_hours = ''''']);

-- The profile's runs, e.g. 'post_purchase:active subscription_offer/ppc-beans:active'.
CREATE FUNCTION pg_temp.runs() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(journey || coalesce('/' || product_id, '') || ':' || status || coalesce('/' || end_reason, ''),
                      ' ' ORDER BY journey, product_id)
      FROM personalisation.journey_runs WHERE profile_id IN (SELECT profile_id FROM ppc_mine)
$$;

-- Two orders at once, both with beans.
SELECT pg_temp.race(ARRAY[
  $$personalisation.track_purchase('ppc-s', 'ppc-o1', '[{"product_id": "ppc-beans", "quantity": 1, "unit_price": 12}]',
                                    now() - interval '1 hour')$$,
  $$personalisation.track_purchase('ppc-s', 'ppc-o2', '[{"product_id": "ppc-beans", "quantity": 1, "unit_price": 12},
                                                       {"product_id": "ppc-tea", "quantity": 1, "unit_price": 8}]',
                                    now() - interval '1 hour')$$]);
SELECT is((SELECT count(*) FROM personalisation.orders WHERE order_id IN ('ppc-o1', 'ppc-o2')), 2::bigint,
  'both orders placed at once are recorded');
SELECT is(pg_temp.runs(), 'post_purchase:active subscription_offer/ppc-beans:active subscription_offer/ppc-tea:active',
  'one cross-sell run and one offer per product: the second order joined the first''s runs');

-- Two starts of the same subscription at once.
SELECT pg_temp.race(ARRAY[
  $$personalisation.track_subscription_start('ppc-s', 'ppc-tea', now(), 'ppc-ev-1')$$,
  $$personalisation.track_subscription_start('ppc-s', 'ppc-tea', now(), 'ppc-ev-2')$$]);
SELECT is((SELECT count(*) FROM personalisation.subscriptions WHERE profile_id IN (SELECT profile_id FROM ppc_mine)), 1::bigint,
  'two starts at once record one subscription');
SELECT is((SELECT count(*) FROM personalisation.events WHERE session_id = 'ppc-s' AND kind = 'subscription_start'), 2::bigint,
  'and both events');
SELECT is(pg_temp.runs(), 'post_purchase:active subscription_offer/ppc-beans:active subscription_offer/ppc-tea:ended/subscribed',
  'the tea offer ends');

-- run_due reaches the beans offer (day 25) while the customer subscribes to beans.
SELECT pg_temp.race(ARRAY[
  $$personalisation.run_due(now() + interval '25 days')$$,
  $$personalisation.track_subscription_start('ppc-s', 'ppc-beans', now(), 'ppc-ev-3')$$]);
SELECT is((SELECT count(*) FROM personalisation.claim_messages('ppc-sender', 100, '5 minutes', now() + interval '25 days') c
            WHERE c.profile_id IN (SELECT profile_id FROM ppc_mine) AND c.journey = 'subscription_offer'), 0::bigint,
  'whichever came first, the offer for the product just subscribed is never handed out');
SELECT is((SELECT count(*) FROM personalisation.outbox o JOIN personalisation.journey_runs r USING (profile_id, run_id)
            WHERE o.profile_id IN (SELECT profile_id FROM ppc_mine) AND r.product_id = 'ppc-beans' AND o.status <> 'cancelled'),
  0::bigint, 'if it was written at all, it is cancelled');
SELECT is((SELECT end_reason FROM personalisation.journey_runs
            WHERE profile_id IN (SELECT profile_id FROM ppc_mine) AND product_id = 'ppc-beans'), 'subscribed',
  'and its run ended as subscribed');

SELECT pg_temp.race_disconnect();

-- Clean up everything this file committed, and recount complementarity without its orders.
DELETE FROM personalisation.outbox WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.journey_run_steps WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.journey_runs WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.subscriptions WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.orders WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.carts WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.events WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.event_keys WHERE event_id LIKE 'ppc-%';
DELETE FROM personalisation.sessions WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.profiles WHERE profile_id IN (SELECT profile_id FROM ppc_mine);
DELETE FROM personalisation.products WHERE product_id LIKE 'ppc-%';
DELETE FROM personalisation.categories WHERE category_id = 'ppc-cat';
SELECT orders FROM personalisation.rebuild_complementarity() WHERE false;
SELECT is((SELECT count(*) FROM personalisation.sessions WHERE session_id LIKE 'ppc-%'), 0::bigint, 'the test leaves nothing behind');

SELECT * FROM finish();
