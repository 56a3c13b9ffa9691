-- Demo: proof of uplift.  A simulated week of 6,000 new visitors to the
-- demo shop, hour by hour, with effects planted where the shop would hope
-- to find them, then the reports that measure them.  Every visitor is
-- ranked on arrival (20% held out of ranking) and buys with a planted
-- probability: 12% when ranked, 8% in control (1.5x).  Of the others, 40%
-- leave a cart; an abandoned cart (the week's, and the shop's own) is
-- recovered 26 hours later, after the ranking's one-day window, for 15% of
-- the treated carts and 5% of the held-out ones (3x; 10% of carts are held
-- out, as the shop's own were).  A buyer comes back four days later for
-- 25% of the post-purchase treatment and 12% of its holdout.  run_due
-- advances the clock every simulated hour and a delivery loop claims and
-- acknowledges what it wrote; pg_cron's minute clock is paused meanwhile,
-- since it would act at the real time, ahead of the simulated one.  Draws
-- are hashes of the session ids: the same shop every time.  Each simulated
-- hour is committed: everything stays in the database to explore.
\set ON_ERROR_STOP on
\pset pager off
\pset footer off
SET personalisation.ranking_holdout_percent = 20;
SET personalisation.journey_holdout_percent = 10;
SET personalisation.frequency_cap = 3;
SET timezone = 'UTC';

\echo
\echo '== Proof of uplift: a simulated week of 6,000 visitors with planted effects'
\echo '   ranking 1.5x conversion (12% against 8%), cart recovery 3x (15% against 5%),'
\echo '   post-purchase repeat orders 2.1x (25% against 12%)'

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

CREATE TEMP TABLE week_visitors AS
SELECT v, 'week-' || lpad(v::text, 4, '0') AS session_id,
       date_trunc('hour', now()) - interval '7 days' + (v - 1) * interval '7 days' / 6000 AS arrived_at,
       format('sku-%s', lpad((1 + (v * 37) % 3000)::text, 5, '0')) AS product_id
  FROM generate_series(1, 6000) v;
-- the 40 products every visitor's page lists
SELECT set_config('demo.candidates', array_agg(product_id ORDER BY product_id)::text, false) IS NOT NULL AS listed
  FROM (SELECT product_id FROM personalisation.products WHERE in_stock ORDER BY product_id LIMIT 40) p;

SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE jobname = 'personalisation:run-due';

DO $$
DECLARE
    week_start timestamptz := date_trunc('hour', now()) - interval '7 days';
    hour_start timestamptz;
    hour_end timestamptz;
    visitor record;
    visitor_arm text;
BEGIN
    FOR h IN 0..167 LOOP
        hour_start := week_start + h * interval '1 hour';
        hour_end := hour_start + interval '1 hour';
        FOR visitor IN SELECT * FROM week_visitors
                        WHERE arrived_at >= hour_start AND arrived_at < hour_end ORDER BY v LOOP
            PERFORM count(*) FROM personalisation.rank_products(visitor.session_id,
                        current_setting('demo.candidates')::text[], false, visitor.arrived_at);
            SELECT e.arm INTO visitor_arm FROM personalisation.ranking_exposures e WHERE e.session_id = visitor.session_id;
            PERFORM personalisation.track_page_view(visitor.session_id, NULL, visitor.product_id,
                                                    visitor.arrived_at + interval '1 minute');
            IF pg_temp.u('buy' || visitor.session_id) < (CASE visitor_arm WHEN 'personalised' THEN 0.12 ELSE 0.08 END) THEN
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
                            r.anchor_at + interval '4 days')
           FROM personalisation.journey_runs r
          WHERE r.journey = 'post_purchase' AND r.session_id LIKE 'week-%'
            AND r.anchor_at + interval '4 days' >= hour_start
            AND r.anchor_at + interval '4 days' < hour_end
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

SELECT cron.alter_job(jobid, active => true) FROM cron.job WHERE jobname = 'personalisation:run-due';

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

\pset format unaligned
\pset tuples_only on
\o :report
SELECT personalisation.uplift_report_html();
\o
\pset format aligned
\pset tuples_only off
\echo '== The report page (personalisation.uplift_report_html()):' :report
