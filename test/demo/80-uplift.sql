-- Demo: proof of uplift.  A simulated week of 6,000 new visitors to the
-- demo shop, hour by hour, with effects planted where the shop would hope
-- to find them, then the reports that measure them.
--
-- Ranking: every visitor has a latent interest, one of the six top-level
-- categories, looks at two of its products, and is then shown the homepage's
-- category modules, ranked (20% of visitors held out: the shop's order).  A
-- visitor responds to what is shown: one whose category is among the first
-- two modules buys with 12% probability, any other with 6%.  The shop's
-- order leads with kitchen and garden, which a third of the visitors like,
-- so the planted effect is what ranking makes of that: the demo prints the
-- conversion each arm was due from what it was shown, and their ratio,
-- before the measured uplift.
-- Cart recovery: of those who do not buy, 40% leave a cart; an abandoned
-- cart (the week's, and the shop's own) is recovered 26 hours later, after
-- the social-proof email and the ranking's one-day window, for 15% of the
-- treated carts and 5% of the held-out ones (3x; 20% of carts held out).
-- Post-purchase: a buyer comes back six hours after the day-3 cross-sell
-- email, for 25% of the treatment and 12% of its holdout (2.1x).
--
-- run_due advances the clock every simulated hour and a delivery loop
-- claims and acknowledges what it wrote (test/demo.sh keeps pg_cron's
-- minute clock and the worker, which act at the real time, paused
-- meanwhile).  Draws are hashes of the session ids: the same shop every
-- time.  Each simulated hour is committed: everything stays in the
-- database to explore.
\set ON_ERROR_STOP on
\pset pager off
\pset footer off
SET personalisation.ranking_holdout_percent = 20;
SET personalisation.journey_holdout_percent = 20;
SET personalisation.frequency_cap = 3;
SET timezone = 'UTC';

\echo
\echo '== Proof of uplift: a simulated week of 6,000 visitors with planted effects'
\echo '   ranking: a visitor buys with 12% if the first two modules shown include the category'
\echo '   they like, else with 6%; cart recovery 3x (15% against 5% of abandoned carts);'
\echo '   post-purchase repeat orders 2.1x (25% against 12% of buyers)'

-- u(key): a uniform number in [0, 1) from a hash of the key
CREATE FUNCTION pg_temp.u(key text) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT ('x' || substr(md5(key), 1, 8))::bit(32)::bigint / 4294967296.0
$$;
-- buy(session, order, at): the session buys what its cart holds, or one product
CREATE FUNCTION pg_temp.buy(session text, order_id text, product text, at timestamptz) RETURNS void
LANGUAGE sql AS $$
  SELECT personalisation.track_purchase(session, order_id,
           coalesce((SELECT jsonb_agg(jsonb_build_object('product_id', c.product_id, 'quantity', c.quantity,
                                                         'unit_price', p.price) ORDER BY c.product_id)
                       FROM personalisation.cart_lines c JOIN personalisation.products p USING (product_id)
                      WHERE c.session_id = session),
                    (SELECT jsonb_build_array(jsonb_build_object('product_id', p.product_id, 'quantity', 1,
                                                                 'unit_price', p.price))
                       FROM personalisation.products p WHERE p.product_id = product)), at)
$$;

-- the week's visitors: when each arrives, the category it likes, and the
-- two of its products it looks at (product i lies in top-level category
-- floor(((i - 1) % 120) / 20) of the alphabetical six, as shop.sql spreads them)
CREATE TEMP TABLE week_visitors AS
SELECT v, 'week-' || lpad(v::text, 4, '0') AS session_id,
       date_trunc('hour', now()) - interval '7 days' + (v - 1) * interval '7 days' / 6000 AS arrived_at,
       (ARRAY['beauty', 'garden', 'kitchen', 'living', 'outdoor', 'pets'])[1 + t] AS likes,
       format('sku-%s', lpad((1 + 20 * t + (v * 7) % 20 + 120 * (v % 25))::text, 5, '0')) AS product_id,
       format('sku-%s', lpad((1 + 20 * t + (v * 7 + 3) % 20 + 120 * ((v + 11) % 25))::text, 5, '0')) AS second_product_id
  FROM generate_series(1, 6000) v,
       LATERAL (SELECT floor(6 * pg_temp.u('likes' || v))::int AS t) AS likes;
-- what each visitor was shown, and the conversion that was due from it
CREATE TEMP TABLE week_shown (session_id text PRIMARY KEY, arm text, shown text[], due float8);
-- the homepage's category modules, in the shop's order
SELECT set_config('demo.modules', '{kitchen,garden,outdoor,living,beauty,pets}', false) IS NOT NULL AS listed;

DO $$
DECLARE
    week_start timestamptz := date_trunc('hour', now()) - interval '7 days';
    hour_start timestamptz;
    hour_end timestamptz;
    visitor record;
    visitor_arm text;
    visitor_shown text[];
    visitor_due float8;
BEGIN
    FOR h IN 0..167 LOOP
        hour_start := week_start + h * interval '1 hour';
        hour_end := hour_start + interval '1 hour';
        FOR visitor IN SELECT * FROM week_visitors
                        WHERE arrived_at >= hour_start AND arrived_at < hour_end ORDER BY v LOOP
            PERFORM personalisation.track_page_view(visitor.session_id, NULL, visitor.product_id,
                                                    visitor.arrived_at);
            PERFORM personalisation.track_page_view(visitor.session_id, NULL, visitor.second_product_id,
                                                    visitor.arrived_at + interval '1 minute');
            SELECT array_agg(r.category_id ORDER BY r.position) INTO visitor_shown
              FROM personalisation.rank_categories(visitor.session_id, current_setting('demo.modules')::text[],
                                                   false, visitor.arrived_at + interval '2 minutes') r;
            SELECT e.arm INTO visitor_arm FROM personalisation.ranking_exposures e WHERE e.session_id = visitor.session_id;
            visitor_due := CASE WHEN visitor.likes = ANY (visitor_shown[1:2]) THEN 0.12 ELSE 0.06 END;
            INSERT INTO week_shown VALUES (visitor.session_id, visitor_arm, visitor_shown, visitor_due);
            IF pg_temp.u('buy' || visitor.session_id) < visitor_due THEN
                PERFORM personalisation.identify(visitor.session_id, 'week-customer-' || visitor.v,
                                                 'week' || visitor.v || '@example.com',
                                                 visitor.arrived_at + interval '2 minutes');
                PERFORM personalisation.set_consent(visitor.session_id, 'email', true,
                                                    visitor.arrived_at + interval '2 minutes');
                PERFORM pg_temp.buy(visitor.session_id, 'week-order-' || visitor.v, visitor.product_id,
                                    visitor.arrived_at + interval '8 minutes');
            ELSIF pg_temp.u('cart' || visitor.session_id) < 0.40 THEN
                PERFORM personalisation.identify(visitor.session_id, 'week-customer-' || visitor.v,
                                                 'week' || visitor.v || '@example.com',
                                                 visitor.arrived_at + interval '2 minutes');
                PERFORM personalisation.set_consent(visitor.session_id, 'email', true,
                                                    visitor.arrived_at + interval '2 minutes');
                PERFORM personalisation.track_cart_add(visitor.session_id, visitor.product_id, 1,
                                                       visitor.arrived_at + interval '3 minutes');
            END IF;
        END LOOP;

        -- the planted recoveries and repeat orders falling in this hour
        PERFORM pg_temp.buy(r.session_id, 'week-recovery-' || r.run_id, NULL, r.abandoned_at + interval '26 hours')
           FROM personalisation.journey_runs r
          WHERE r.journey = 'abandoned_cart' AND r.status = 'active'
            AND r.abandoned_at + interval '26 hours' >= hour_start
            AND r.abandoned_at + interval '26 hours' < hour_end
            AND pg_temp.u('recover' || r.session_id) < CASE r.arm WHEN 'treatment' THEN 0.15 ELSE 0.05 END;
        PERFORM pg_temp.buy(r.session_id, 'week-repeat-' || r.run_id,
                            (SELECT w.product_id FROM week_visitors w WHERE w.session_id = r.session_id),
                            r.anchor_at + interval '3 days 6 hours')
           FROM personalisation.journey_runs r
          WHERE r.journey = 'post_purchase' AND r.session_id LIKE 'week-%'
            AND r.anchor_at + interval '3 days 6 hours' >= hour_start
            AND r.anchor_at + interval '3 days 6 hours' < hour_end
            AND pg_temp.u('repeat' || r.session_id) < CASE r.arm WHEN 'treatment' THEN 0.25 ELSE 0.12 END;

        -- the clock, and a delivery worker draining the outbox
        PERFORM personalisation.run_due(hour_end);
        PERFORM personalisation.ack_messages(array_agg(c.message_id), hour_end)
           FROM personalisation.claim_messages('demo-delivery', 10000, '5 minutes', hour_end) c
         HAVING count(*) > 0;
        COMMIT;   -- one transaction per simulated hour, as a shop's requests would be
    END LOOP;
END
$$;

\echo '== The planted ranking effect: what each arm was shown, and the conversion due from it'
SELECT arm, count(*) AS visitors,
       round(avg((likes = ANY (shown[1:2]))::int), 3) AS liked_category_in_first_two,
       round(avg(due)::numeric, 4) AS conversion_due
  FROM week_shown JOIN week_visitors USING (session_id) GROUP BY arm ORDER BY arm DESC;
SELECT round((avg(due) FILTER (WHERE arm = 'personalised') / avg(due) FILTER (WHERE arm = 'control'))::numeric, 2)
       AS planted_ranking_uplift
  FROM week_shown \gset
\echo '   the planted ranking uplift:' :planted_ranking_uplift 'x; the measured one follows, with its interval'

\echo '== What the shop can claim (personalisation.uplift_summary())'
SELECT experiment, metric, units, claim FROM personalisation.uplift_summary();

\echo '== The ranking holdout: ranked sessions per arm, by the arm of their first ranking'
SELECT arm, sessions, converted_sessions, round(conversion_rate::numeric, 4) AS conversion_rate,
       revenue_per_session, round(uplift::numeric, 2) AS uplift, round(uplift_low::numeric, 2) AS low,
       round(uplift_high::numeric, 2) AS high, round(p_value::numeric, 6) AS p_value
  FROM personalisation.ranking_holdout;

\echo '== Cart recovery per arm and step (the week''s carts and the shop''s own)'
SELECT arm, step, template, carts_abandoned, messages_sent, messages_held, messages_delivered,
       carts_recovered, recovery_rate, round(uplift::numeric, 2) AS uplift,
       round(uplift_low::numeric, 2) AS low, round(uplift_high::numeric, 2) AS high
  FROM personalisation.journey_report WHERE journey = 'abandoned_cart';

\echo '== Post-purchase: repeat orders per arm'
SELECT cohort, customers, repeat_customers, repeat_order_rate, revenue_per_customer, average_order_value,
       round(uplift::numeric, 2) AS uplift, round(uplift_low::numeric, 2) AS low,
       round(uplift_high::numeric, 2) AS high
  FROM personalisation.post_purchase_order_value WHERE journey = 'post_purchase';

\echo '== Planted against measured: each interval should contain the effect the simulation planted'
SELECT s.experiment, s.metric, p.planted, round(s.uplift::numeric, 2) AS measured,
       round(s.uplift_low::numeric, 2) AS low, round(s.uplift_high::numeric, 2) AS high,
       s.uplift_low <= p.planted AND p.planted <= s.uplift_high AS interval_contains_planted
  FROM personalisation.uplift_summary() s
  JOIN (VALUES ('ranking', :planted_ranking_uplift), ('abandoned_cart', 3.0), ('post_purchase', round(25 / 12.0, 2)))
       AS p(experiment, planted) USING (experiment);

\pset format unaligned
\pset tuples_only on
\o :report
SELECT personalisation.uplift_report_html();
\o
\pset format aligned
\pset tuples_only off
\echo '== The report page (personalisation.uplift_report_html()):' :report
