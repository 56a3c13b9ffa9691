-- The post-purchase analyst views on a small hand-checked data set (2024):
-- six customers, their orders, cross-sell messages sent and held, and
-- subscriptions.  Everything else in the database is cleared first, inside
-- this transaction, which is rolled back at the end.
--
--   customer  first order           later                                     subscription
--   pr-1      03-01  50  treatment  03-06 80 (after day 3), 03-18 30 (day 14) 03-20, never stopped
--   pr-2      03-01  20  treatment  03-30 25 (too late for the window)        06-01 .. 12-01
--   pr-3      03-01  40  holdout    03-05 60 (after the held day-3 message)   none; orders 2025-02-15
--   pr-4      03-01 100  treatment  03-06 500 refunded                        02-20 .. 05-01 (before the order)
--   pr-5      03-01  10  anonymous: no message                                none
--   pr-6      03-01  70 refunded, then 04-01 35 (its first standing order)    none
BEGIN;
SELECT plan(5);

SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 3;
SET LOCAL personalisation.quiet_hours = '';
SET LOCAL personalisation.attribution_window = '7d';
SET LOCAL timezone = 'UTC';

DELETE FROM personalisation.journey_run_steps;
DELETE FROM personalisation.outbox;
DELETE FROM personalisation.coupons;
DELETE FROM personalisation.journey_runs;
DELETE FROM personalisation.subscriptions;
DELETE FROM personalisation.orders;
-- the cross-sell emails go out whatever complementarity has to offer
UPDATE personalisation.journey_steps SET min_recommendations = NULL WHERE journey = 'post_purchase';

INSERT INTO personalisation.categories VALUES ('pr-cat', NULL, 'Report test');
INSERT INTO personalisation.products (product_id, category_id, name, price, subscribable, replenish_days) VALUES
  ('pr-refill', 'pr-cat', 'Refill', 20, true, 30), ('pr-gift', 'pr-cat', 'Gift', 50, false, NULL),
  ('pr-soap', 'pr-cat', 'Soap', 5, true, 30);

CREATE FUNCTION pg_temp.customer(session text, known boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM personalisation.track_page_view(session, occurred_at => '2024-02-01 10:00+00');
    IF known THEN
        UPDATE personalisation.profiles p
           SET customer_id = 'cust-' || session, email = session || '@example.test', email_consent = true
          FROM personalisation.sessions s WHERE s.session_id = session AND s.profile_id = p.profile_id;
    END IF;
END
$$;
CREATE FUNCTION pg_temp.buy(session text, order_id text, product text, total numeric, at timestamptz)
RETURNS void LANGUAGE sql AS $$
    SELECT personalisation.track_purchase(session, order_id,
             jsonb_build_array(jsonb_build_object('product_id', product, 'quantity', 1, 'unit_price', total)), at)
$$;

SELECT pg_temp.customer('pr-' || i, i <= 4) FROM generate_series(1, 6) i;
SELECT personalisation.track_subscription_start('pr-4', 'pr-soap', '2024-02-20 10:00+00');
SELECT pg_temp.buy('pr-1', 'pr-1a', 'pr-refill', 50, '2024-03-01 10:00+00');
SELECT pg_temp.buy('pr-2', 'pr-2a', 'pr-refill', 20, '2024-03-01 10:00+00');
SET LOCAL personalisation.journey_holdout_percent = 100;
SELECT pg_temp.buy('pr-3', 'pr-3a', 'pr-refill', 40, '2024-03-01 10:00+00');
SET LOCAL personalisation.journey_holdout_percent = 0;
SELECT pg_temp.buy('pr-4', 'pr-4a', 'pr-gift', 100, '2024-03-01 10:00+00');
SELECT pg_temp.buy('pr-5', 'pr-5a', 'pr-gift', 10, '2024-03-01 10:00+00');
SELECT pg_temp.buy('pr-6', 'pr-6a', 'pr-gift', 70, '2024-03-01 10:00+00');
SELECT personalisation.track_refund('pr-6a', '2024-03-02 10:00+00');

SELECT personalisation.run_due('2024-03-04 10:00+00');
SELECT pg_temp.buy('pr-3', 'pr-3b', 'pr-gift', 60, '2024-03-05 10:00+00');
SELECT pg_temp.buy('pr-1', 'pr-1b', 'pr-gift', 80, '2024-03-06 10:00+00');
SELECT pg_temp.buy('pr-4', 'pr-4b', 'pr-gift', 500, '2024-03-06 10:00+00');
SELECT personalisation.track_refund('pr-4b', '2024-03-07 10:00+00');
SELECT personalisation.run_due('2024-03-15 10:00+00');
SELECT pg_temp.buy('pr-1', 'pr-1c', 'pr-gift', 30, '2024-03-18 10:00+00');
SELECT personalisation.track_subscription_start('pr-1', 'pr-refill', '2024-03-20 10:00+00');
SELECT pg_temp.buy('pr-2', 'pr-2b', 'pr-gift', 25, '2024-03-30 10:00+00');
SELECT pg_temp.buy('pr-6', 'pr-6b', 'pr-gift', 35, '2024-04-01 10:00+00');
SELECT personalisation.track_subscription_stop('pr-4', 'pr-soap', '2024-05-01 10:00+00');
SELECT personalisation.track_subscription_start('pr-2', 'pr-refill', '2024-06-01 10:00+00');
SELECT personalisation.track_subscription_stop('pr-2', 'pr-refill', '2024-12-01 10:00+00');
SELECT pg_temp.buy('pr-3', 'pr-3c', 'pr-gift', 15, '2025-02-15 10:00+00');
SELECT pg_temp.buy('pr-4', 'pr-4c', 'pr-gift', 45, '2025-03-05 10:00+00');

SELECT is((SELECT string_agg(r.session_id || ':' || s.step || ':' || s.outcome, ' ' ORDER BY r.session_id, s.step)
             FROM personalisation.journey_run_steps s JOIN personalisation.journey_runs r USING (profile_id, run_id)
            WHERE r.journey = 'post_purchase' AND s.outcome <> 'skipped'),
  'pr-1:1:sent pr-1:2:sent pr-2:1:sent pr-2:2:sent pr-3:1:held pr-3:2:held pr-4:1:sent pr-4:2:sent',
  'the data set: three customers sent both cross-sell emails, one in the holdout');

-- first orders: 50 + 20 + 40 + 100 + 10 + 35 (pr-6's first standing order) = 255 over 6;
-- treatment: 80 and 30 (pr-1) followed a message within 7 days; pr-2's 25 came
-- 15 days after, pr-4's 500 was refunded; holdout: 60 (pr-3)
SELECT results_eq(
  $$SELECT journey, cohort, messages, orders, order_value, average_order_value
      FROM personalisation.post_purchase_order_value ORDER BY journey NULLS FIRST, cohort$$,
  $$VALUES (NULL::text, 'first_orders'::text, NULL::bigint, 6::bigint, 255::numeric, 42.50::numeric),
           ('post_purchase', 'holdout', 2, 1, 60, 60.00),
           ('post_purchase', 'treatment', 6, 2, 110, 55.00)$$,
  'order value after cross-sell messages, against first orders and against the holdout');

-- within 30 days of the first order: pr-1 (03-20) and pr-4 (before it); later: pr-2;
-- offer arm: pr-1, pr-2 treatment, pr-3 holdout, the others bought nothing subscribable
SELECT results_eq(
  $$SELECT arm, customers, subscribed_within_30_days, subscribed_later, never_subscribed,
           uptake_within_30_days, uptake_later
      FROM personalisation.subscription_uptake ORDER BY arm NULLS LAST$$,
  $$VALUES ('holdout'::text, 1::bigint, 0::bigint, 0::bigint, 1::bigint, 0.0000::numeric, 0.0000::numeric),
           ('not_offered', 3, 1, 0, 2, 0.3333, 0.0000),
           ('treatment', 2, 1, 1, 0, 0.5000, 0.5000),
           (NULL, 6, 2, 1, 3, 0.3333, 0.1667)$$,
  'subscription uptake within 30 days of the first purchase against later, per offer arm');

-- retention window: the 30 days up to the 365th day after the first order,
-- (2025-01-30, 2025-03-01] for a 2024-03-01 first order: pr-1 still subscribed;
-- pr-3 ordered 2025-02-15; pr-4's 2025-03-05 order is after it; pr-2 stopped in December
SELECT results_eq(
  $$SELECT subscription_timing, customers, retained, retention_rate
      FROM personalisation.subscription_retention ORDER BY subscription_timing$$,
  $$VALUES ('after_30_days'::text, 1::bigint, 0::bigint, 0.0000::numeric),
           ('never', 3, 1, 0.3333),
           ('within_30_days', 2, 1, 0.5000)$$,
  '12-month retention by subscription timing');

SELECT is((SELECT count(*) FROM personalisation.journey_report), 0::bigint,
  'the abandoned-cart report counts no post-purchase run');

SELECT * FROM finish();
ROLLBACK;
