-- Proof of uplift after a purchase.  400 customers enrolled by the
-- cross-sell journey at a 50% holdout order again for their arm's planted
-- share (treatment 30%, holdout 10%: 3x); 400 customers of a 30-day refill
-- get the subscription offer at a 50% holdout and subscribe for their arm's
-- share (treatment 40%, holdout 10%: 4x), a quarter of each arm's
-- subscribers stopping after 200 days, so 12-month retention is 4x as well.
-- The shares are exact: an arm's customers are ordered by a hash of their
-- session and the first share converts, so the result cannot flake.  The
-- reports must count each arm's customers, repeat customers, revenue,
-- uptake and retention exactly, recover the planted uplifts inside their
-- intervals, and keep every number when the holdout share changes.
BEGIN;
SELECT plan(8);

SET LOCAL timezone = 'UTC';
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.frequency_cap = 0;
SET LOCAL personalisation.quiet_hours = '';
SET LOCAL personalisation.repeat_order_window = '30d';
DELETE FROM personalisation.journey_run_steps;
DELETE FROM personalisation.outbox;
DELETE FROM personalisation.coupons;
DELETE FROM personalisation.journey_runs;
DELETE FROM personalisation.subscriptions;
DELETE FROM personalisation.orders;
UPDATE personalisation.journey_steps SET min_recommendations = NULL;

INSERT INTO personalisation.categories VALUES ('mp-cat', NULL, 'Post-purchase uplift');
INSERT INTO personalisation.products (product_id, category_id, name, price, subscribable, replenish_days) VALUES
  ('mp-lamp', 'mp-cat', 'Lamp', 40, false, NULL), ('mp-bulb', 'mp-cat', 'Bulb', 20, false, NULL),
  ('mp-refill', 'mp-cat', 'Refill', 15, true, 30);

-- u(id): a uniform number in [0, 1) from a hash of the id.
CREATE FUNCTION pg_temp.u(id text) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT ('x' || substr(md5(id), 1, 8))::bit(32)::bigint / 4294967296.0
$$;
-- buy(session, order, product, at): one unit of the product, by a known customer.
CREATE FUNCTION pg_temp.buy(session text, order_id text, product text, at timestamptz) RETURNS void
LANGUAGE sql AS $$
  SELECT personalisation.identify(session, 'cust-' || session, session || '@example.test', at - interval '1 hour');
  SELECT personalisation.set_consent(session, 'email', true, at - interval '1 hour');
  SELECT personalisation.track_purchase(session, order_id,
           (SELECT jsonb_build_array(jsonb_build_object('product_id', product_id, 'quantity', 1, 'unit_price', price))
              FROM personalisation.products WHERE product_id = product), at);
$$;
-- planted(journey, treatment, holdout): each run of the journey, its arm and
-- whether it converts at its arm's share.
CREATE FUNCTION pg_temp.planted(journey_name text, treatment float8, holdout float8)
RETURNS TABLE (session_id text, arm text, converts boolean) LANGUAGE sql AS $$
  SELECT session_id, arm, rn <= round(n * CASE arm WHEN 'treatment' THEN treatment ELSE holdout END)
    FROM (SELECT r.session_id, r.arm, count(*) OVER (PARTITION BY r.arm) AS n,
                 row_number() OVER (PARTITION BY r.arm ORDER BY pg_temp.u(r.session_id)) AS rn
            FROM personalisation.journey_runs r WHERE r.journey = journey_name) c
$$;
SET LOCAL personalisation.journey_holdout_percent = 50;

-- cross-sell: a lamp on 2025-01-10, the day-3 email, a bulb on day 5 for the planted share
UPDATE personalisation.journeys SET enabled = (trigger = 'purchase');
SELECT count(*) FROM generate_series(1, 400) i,
       pg_temp.buy('mp-post-' || i, 'mp-post-' || i, 'mp-lamp', '2025-01-10 10:00+00');
SELECT personalisation.run_due('2025-01-13 10:30+00');
CREATE TEMP TABLE repeats AS SELECT * FROM pg_temp.planted('post_purchase', 0.30, 0.10);
SELECT count(*) FROM repeats r, pg_temp.buy(r.session_id, 'mp-repeat-' || r.session_id, 'mp-bulb',
                                            '2025-01-15 10:00+00')
 WHERE r.converts;

-- subscription offer: a refill on 2025-03-03, the offer five days before it runs
-- out, a subscription on day 27 for the planted share, a quarter stopping on day 200
UPDATE personalisation.journeys SET enabled = (trigger = 'subscribable_purchase');
SELECT count(*) FROM generate_series(1, 400) i,
       pg_temp.buy('mp-sub-' || i, 'mp-sub-' || i, 'mp-refill', '2025-03-03 10:00+00');
SELECT personalisation.run_due('2025-03-28 10:30+00');
CREATE TEMP TABLE uptake AS
SELECT p.*, p.converts AND pg_temp.u('stop' || p.session_id) < 0.25 AS stops
  FROM pg_temp.planted('subscription_offer', 0.40, 0.10) p;
SELECT count(*) FROM uptake s, personalisation.track_subscription_start(s.session_id, 'mp-refill', '2025-03-30 10:00+00')
 WHERE s.converts;
SELECT count(*) FROM uptake s, personalisation.track_subscription_stop(s.session_id, 'mp-refill', '2025-09-19 10:00+00')
 WHERE s.stops;
UPDATE personalisation.journeys SET enabled = true;

SELECT is((SELECT count(*) FROM personalisation.journey_run_steps WHERE outcome = 'sent')
          = (SELECT count(*) FROM personalisation.journey_runs WHERE arm = 'treatment')
          AND (SELECT count(*) FROM personalisation.journey_run_steps WHERE outcome = 'held')
          = (SELECT count(*) FROM personalisation.journey_runs WHERE arm = 'holdout'), true,
          'the data set: every treated run was sent its first message, every held-out run held it');

SELECT results_eq(
  $$SELECT cohort, customers, repeat_customers, repeat_order_rate, revenue_per_customer
      FROM personalisation.post_purchase_order_value WHERE journey = 'post_purchase'
       AND cohort IN ('treatment', 'holdout') ORDER BY cohort DESC$$,
  $$SELECT arm, count(*), count(*) FILTER (WHERE converts),
           round(count(*) FILTER (WHERE converts)::numeric / count(*), 4),
           round(20::numeric * count(*) FILTER (WHERE converts) / count(*), 2)
      FROM repeats GROUP BY arm ORDER BY arm DESC$$,
  'post-purchase: each arm''s customers, repeat customers, repeat-order rate and revenue per customer');
SELECT ok(uplift_low < 3 AND 3 < uplift_high AND uplift_low > 1 AND p_value < 0.05,
          format('the planted 3x repeat-order uplift lies inside the reported interval (%s: %s .. %s, p %s)',
                 round(uplift::numeric, 2), round(uplift_low::numeric, 2), round(uplift_high::numeric, 2),
                 round(p_value::numeric, 6)))
  FROM personalisation.post_purchase_order_value WHERE journey = 'post_purchase' AND cohort = 'treatment';

SELECT results_eq(
  $$SELECT arm, customers, subscribed_within_30_days, uptake_within_30_days,
           retention_customers, retained, retention_rate
      FROM personalisation.subscription_uptake WHERE arm IN ('treatment', 'holdout') ORDER BY arm DESC$$,
  $$SELECT arm, count(*), count(*) FILTER (WHERE converts),
           round(count(*) FILTER (WHERE converts)::numeric / count(*), 4),
           count(*), count(*) FILTER (WHERE converts AND NOT stops),
           round(count(*) FILTER (WHERE converts AND NOT stops)::numeric / count(*), 4)
      FROM uptake GROUP BY arm ORDER BY arm DESC$$,
  'subscriptions: each arm''s customers, uptake within 30 days, and 12-month retention');
SELECT ok(uplift_low < 4 AND 4 < uplift_high AND uplift_low > 1 AND p_value < 0.05,
          format('the planted 4x uptake uplift lies inside the reported interval (%s: %s .. %s, p %s)',
                 round(uplift::numeric, 2), round(uplift_low::numeric, 2), round(uplift_high::numeric, 2),
                 round(p_value::numeric, 6)))
  FROM personalisation.subscription_uptake WHERE arm = 'treatment';
SELECT ok(retention_uplift_low < 4 AND 4 < retention_uplift_high AND retention_uplift_low > 1
          AND retention_p_value < 0.05,
          format('the planted 4x retention uplift lies inside the reported interval (%s: %s .. %s, p %s)',
                 round(retention_uplift::numeric, 2), round(retention_uplift_low::numeric, 2),
                 round(retention_uplift_high::numeric, 2), round(retention_p_value::numeric, 6)))
  FROM personalisation.subscription_uptake WHERE arm = 'treatment';

-- A later change of the share moves nobody between arms.
CREATE TEMP TABLE post_before AS SELECT * FROM personalisation.post_purchase_order_value;
CREATE TEMP TABLE uptake_before AS SELECT * FROM personalisation.subscription_uptake;
SET LOCAL personalisation.journey_holdout_percent = 5;
SELECT set_eq($$SELECT * FROM personalisation.post_purchase_order_value$$, $$SELECT * FROM post_before$$,
              'after the journey holdout share changes every post-purchase number is the same');
SELECT set_eq($$SELECT * FROM personalisation.subscription_uptake$$, $$SELECT * FROM uptake_before$$,
              'and every subscription number');

SELECT * FROM finish();
ROLLBACK;
