-- The report page test's shop (test/report_page.sh): a planted effect for
-- every experiment, at explicit instants in early 2025, so that every
-- window has closed, the 12-month retention included.  Each arm's planted
-- share is exact: the units of an arm are ordered by a hash of their
-- session and the first share of them converts.  The experiments use
-- separate visitors and the journeys a phase does not measure are off
-- while it runs, so no experiment feeds another's numbers.
--   ranking             2,000 sessions, 50% held out: 15% against 10% buy (1.5x)
--   abandoned_cart        600 carts, 50% held out: 30% against 10% recovered (3x)
--   post_purchase         600 customers, 50% held out: 30% against 10% order again (3x)
--   subscription_offer    600 customers, 50% held out: 40% against 10% subscribe (4x);
--                         a quarter of the subscribers stop after 200 days
\set ON_ERROR_STOP on
SET timezone = 'UTC';
SET personalisation.event_retention = '36500d';
SET personalisation.frequency_cap = 0;
SET personalisation.quiet_hours = '';
SET personalisation.ranking_holdout_percent = 50;
SET personalisation.journey_holdout_percent = 50;
UPDATE personalisation.journey_steps SET min_recommendations = NULL, min_cart_value = NULL;

INSERT INTO personalisation.categories VALUES ('rp-cat', NULL, 'Report page');
INSERT INTO personalisation.products (product_id, category_id, name, price, subscribable, replenish_days)
SELECT 'rp-' || i, 'rp-cat', 'Product ' || i, 10 * i, false, NULL FROM generate_series(1, 8) i;
INSERT INTO personalisation.products (product_id, category_id, name, price, subscribable, replenish_days)
VALUES ('rp-refill', 'rp-cat', 'Refill', 20, true, 30);

-- u(id): a uniform number in [0, 1) from a hash of the id.
CREATE FUNCTION pg_temp.u(id text) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT ('x' || substr(md5(id), 1, 8))::bit(32)::bigint / 4294967296.0
$$;
-- buy(session, order, product, at): one unit of the product.
CREATE FUNCTION pg_temp.buy(session text, order_id text, product text, at timestamptz) RETURNS void
LANGUAGE sql AS $$
  SELECT personalisation.track_purchase(session, order_id,
           (SELECT jsonb_build_array(jsonb_build_object('product_id', product_id, 'quantity', 1,
                                                        'unit_price', price))
              FROM personalisation.products WHERE product_id = product), at)
$$;
-- known(session, at): the session's visitor logs in with an email address and email consent.
CREATE FUNCTION pg_temp.known(session text, at timestamptz) RETURNS void LANGUAGE sql AS $$
  SELECT personalisation.identify(session, 'cust-' || session, session || '@example.test', at);
  SELECT personalisation.set_consent(session, 'email', true, at);
$$;
-- planted(prefix, journey, treatment, holdout): the runs of the journey whose
-- session starts with the prefix, with whether each converts at its arm's share.
CREATE FUNCTION pg_temp.planted(prefix text, journey_name text, treatment float8, holdout float8)
RETURNS TABLE (session_id text, converts boolean) LANGUAGE sql AS $$
  SELECT session_id, rn <= round(n * CASE arm WHEN 'treatment' THEN treatment ELSE holdout END)
    FROM (SELECT r.session_id, r.arm, count(*) OVER (PARTITION BY r.arm) AS n,
                 row_number() OVER (PARTITION BY r.arm ORDER BY pg_temp.u(r.session_id)) AS rn
            FROM personalisation.journey_runs r
           WHERE r.journey = journey_name AND r.session_id LIKE prefix || '%') c
$$;

-- Ranking: every session is ranked on arrival; the planted share of each arm buys.
UPDATE personalisation.journeys SET enabled = false;
SELECT count(*) AS ranked FROM generate_series(1, 2000) i,
       personalisation.rank_products('rp-rank-' || i, '{rp-1,rp-2,rp-3,rp-4,rp-5,rp-6,rp-7,rp-8}', false,
                                     '2025-01-06 10:00+00'::timestamptz + i * interval '1 minute');
SELECT count(*) AS ranking_orders
  FROM (SELECT e.session_id, e.exposed_at, count(*) OVER (PARTITION BY e.arm) AS n,
               row_number() OVER (PARTITION BY e.arm ORDER BY pg_temp.u(e.session_id)) AS rn,
               e.arm
          FROM personalisation.ranking_exposures e WHERE e.session_id LIKE 'rp-rank-%') c
 CROSS JOIN LATERAL pg_temp.buy(c.session_id, 'rp-rank-order-' || c.session_id, 'rp-' || (1 + c.rn % 8),
                                c.exposed_at + interval '10 minutes')
 WHERE c.rn <= round(c.n * CASE c.arm WHEN 'control' THEN 0.10 ELSE 0.15 END);

-- Abandoned carts: the messages go out, the planted share is recovered after the first email.
UPDATE personalisation.journeys SET enabled = (trigger = 'cart_abandoned');
SELECT count(*) AS carts FROM generate_series(1, 600) i,
       pg_temp.known('rp-cart-' || i, '2025-02-03 09:00+00'),
       personalisation.track_cart_add('rp-cart-' || i, 'rp-' || (1 + i % 8), 1, '2025-02-03 10:00+00');
SELECT personalisation.run_due('2025-02-03 10:45+00') + personalisation.run_due('2025-02-03 11:45+00') AS cart_messages;
SELECT count(*) AS recoveries FROM pg_temp.planted('rp-cart-', 'abandoned_cart', 0.30, 0.10) p,
       pg_temp.buy(p.session_id, 'rp-recovery-' || p.session_id, 'rp-1', '2025-02-03 12:00+00')
 WHERE p.converts;
SELECT personalisation.run_due('2025-02-04 11:00+00') + personalisation.run_due('2025-02-06 11:00+00')
       AS later_cart_messages;

-- Post-purchase: known customers buy; the cross-sell email goes out on day 3;
-- the planted share of each arm orders again on day 5.
UPDATE personalisation.journeys SET enabled = (trigger = 'purchase');
SELECT count(*) AS customers FROM generate_series(1, 600) i,
       pg_temp.known('rp-post-' || i, '2025-03-03 09:00+00'),
       pg_temp.buy('rp-post-' || i, 'rp-post-order-' || i, 'rp-' || (1 + i % 8), '2025-03-03 10:00+00');
SELECT personalisation.run_due('2025-03-06 10:30+00') AS cross_sell_messages;
SELECT count(*) AS repeat_orders FROM pg_temp.planted('rp-post-', 'post_purchase', 0.30, 0.10) p,
       pg_temp.buy(p.session_id, 'rp-repeat-' || p.session_id, 'rp-2', '2025-03-08 10:00+00')
 WHERE p.converts;
SELECT personalisation.run_due('2025-03-17 10:30+00') AS reminder_messages;

-- Subscriptions: known customers buy a refill that lasts 30 days; the offer
-- goes out five days before it runs out; the planted share of each arm
-- subscribes on day 27; a quarter of the subscribers stop on day 200.
UPDATE personalisation.journeys SET enabled = (trigger = 'subscribable_purchase');
SELECT count(*) AS customers FROM generate_series(1, 600) i,
       pg_temp.known('rp-sub-' || i, '2025-04-07 09:00+00'),
       pg_temp.buy('rp-sub-' || i, 'rp-sub-order-' || i, 'rp-refill', '2025-04-07 10:00+00');
SELECT personalisation.run_due('2025-05-02 10:30+00') AS offer_messages;
CREATE TEMP TABLE subscribers AS
SELECT session_id FROM pg_temp.planted('rp-sub-', 'subscription_offer', 0.40, 0.10) WHERE converts;
SELECT count(*) AS subscribed FROM subscribers s,
       personalisation.track_subscription_start(s.session_id, 'rp-refill', '2025-05-04 10:00+00');
SELECT count(*) AS stopped FROM subscribers s,
       personalisation.track_subscription_stop(s.session_id, 'rp-refill', '2025-10-24 10:00+00')
 WHERE pg_temp.u('stop' || s.session_id) < 0.25;
SELECT personalisation.run_due('2025-06-01 10:30+00') AS later_offer_messages;
UPDATE personalisation.journeys SET enabled = true;

-- a delivery worker takes everything written, 1,000 at a time
DO $$
BEGIN
    LOOP
        PERFORM personalisation.ack_messages(array_agg(c.message_id), '2025-06-01 11:00+00')
           FROM personalisation.claim_messages('rp-delivery', 1000, '5 minutes', '2025-06-01 11:00+00') c
         HAVING count(*) > 0;
        EXIT WHEN NOT FOUND;
    END LOOP;
END
$$;
