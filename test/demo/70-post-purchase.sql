-- Demo: one order's post-purchase messages over simulated time.  Cleo buys
-- two consumables 38 days ago; run_due(now) is called at instants after her
-- order instead of waiting for pg_cron, so the 30-day sequence (cross-sell
-- emails on days 3 and 14, a subscription offer before each product runs
-- out) plays out in a second.  Run with psql against the demo shop after
-- part 50 (its order history feeds the recommendations) and part 60 (whose
-- story ends where hers begins: the demo's clock only moves forward); her
-- month ends a week ago, where part 80's simulated week begins.  Everything
-- it writes stays in the database.
\set ON_ERROR_STOP on
\pset pager off
\pset footer off
SET personalisation.journey_holdout_percent = 0;   -- Cleo is not in the holdout
SET timezone = 'UTC';

\echo
\echo '== The default post-purchase journeys (rows the shop can change)'
SELECT j.journey, j.trigger, j.send_within, s.step, s.name, s.delay, s.before_runout, s.blocks,
       s.max_recommendations, s.min_recommendations
  FROM personalisation.journeys j JOIN personalisation.journey_steps s USING (journey)
 WHERE j.trigger <> 'cart_abandoned' ORDER BY j.journey, s.step;

-- the best-selling beauty consumable, and the next one of its category
SELECT p.product_id AS cream, p.category_id AS cream_category
  FROM personalisation.products p JOIN personalisation._complement_product_orders n USING (product_id)
 WHERE p.category_id LIKE 'beauty%' AND p.in_stock AND p.subscribable
 ORDER BY n.orders DESC, p.product_id LIMIT 1 \gset
SELECT p.product_id AS soap
  FROM personalisation.products p JOIN personalisation._complement_product_orders n USING (product_id)
 WHERE p.category_id = :'cream_category' AND p.product_id <> :'cream' AND p.in_stock AND p.subscribable
 ORDER BY n.orders DESC, p.product_id LIMIT 1 \gset
SELECT date_trunc('hour', now()) - interval '38 days' AS t0 \gset

\echo '== Cleo, a known customer with email consent, buys one cream and two soaps 38 days ago (t0)'
SELECT personalisation.identify('demo-cleo', 'demo-cleo', 'cleo@example.com', :'t0'::timestamptz - interval '1 hour') \g /dev/null
SELECT personalisation.set_consent('demo-cleo', 'email', true, :'t0'::timestamptz - interval '1 hour');
SELECT personalisation.track_purchase('demo-cleo', 'demo-order-cleo-1',
  (SELECT jsonb_agg(jsonb_build_object('product_id', product_id, 'quantity', q, 'unit_price', price))
     FROM personalisation.products JOIN (VALUES (:'cream', 1), (:'soap', 2)) AS o(product_id, q) USING (product_id)),
  :'t0');
\echo '   the purchase started her runs: one cross-sell run, one offer per consumable, timed from when it runs out'
SELECT journey, product_id, order_id, runs_out_at - :'t0'::timestamptz AS runs_out_after, status
  FROM personalisation.journey_runs WHERE session_id = 'demo-cleo' ORDER BY run_id;

\echo '== The clock: run_due at simulated instants after her order'
SELECT after_order, personalisation.run_due(:'t0'::timestamptz + after_order::interval) AS messages_written
  FROM (VALUES ('1 day'), ('2 days 23 hours'), ('3 days')) AS t(after_order);
\echo '   on day 9 she orders another cream: it joins the running sequence, nothing is sent twice'
SELECT personalisation.track_purchase('demo-cleo', 'demo-order-cleo-2',
  (SELECT jsonb_build_array(jsonb_build_object('product_id', product_id, 'quantity', 1, 'unit_price', price))
     FROM personalisation.products WHERE product_id = :'cream'),
  :'t0'::timestamptz + interval '9 days');
SELECT count(*) AS runs FROM personalisation.journey_runs WHERE session_id = 'demo-cleo';
SELECT after_order, personalisation.run_due(:'t0'::timestamptz + after_order::interval) AS messages_written
  FROM (VALUES ('14 days'), ('20 days'), ('25 days')) AS t(after_order);

\echo '== A delivery worker claims, delivers and acknowledges what is queued'
SELECT count(*) AS delivered FROM (
  SELECT personalisation.ack_message(c.message_id, :'t0'::timestamptz + interval '25 days')
    FROM personalisation.claim_messages('demo-worker', 100, '5 minutes', :'t0'::timestamptz + interval '25 days') c
    JOIN personalisation.journey_runs r USING (profile_id, run_id) WHERE r.session_id = 'demo-cleo') AS d;

\echo '== On day 26 she subscribes to the cream she was offered, and to the soap too'
SELECT personalisation.track_subscription_start('demo-cleo', :'cream', :'t0'::timestamptz + interval '26 days');
SELECT personalisation.track_subscription_start('demo-cleo', :'soap', :'t0'::timestamptz + interval '26 days');
SELECT after_order, personalisation.run_due(:'t0'::timestamptz + after_order::interval) AS messages_written
  FROM (VALUES ('29 days'), ('31 days')) AS t(after_order);

\echo '== What each run and step did'
SELECT r.journey, r.product_id, s.step, s.outcome, s.reason, s.done_at - :'t0'::timestamptz AS after_order
  FROM personalisation.journey_runs r
  LEFT JOIN personalisation.journey_run_steps s USING (profile_id, run_id)
 WHERE r.session_id = 'demo-cleo' ORDER BY s.done_at NULLS LAST, r.run_id;
SELECT journey, product_id, status, end_reason FROM personalisation.journey_runs
 WHERE session_id = 'demo-cleo' ORDER BY run_id;

\echo '== Her messages, carrying what the delivery worker needs to render them'
SELECT o.journey, o.step, o.template, o.status, o.created_at - :'t0'::timestamptz AS after_order,
       o.payload -> 'recipient' ->> 'email' AS "to"
  FROM personalisation.outbox o JOIN personalisation.journey_runs r USING (profile_id, run_id)
 WHERE r.session_id = 'demo-cleo' ORDER BY o.created_at;
\echo '   what was bought (both orders by day 14), and the recommendations: complements first, then popular in the category, none repeated'
SELECT o.step, jsonb_pretty(jsonb_build_object(
         'items', (SELECT jsonb_agg((i ->> 'product_id') || ' x' || (i ->> 'quantity')) FROM jsonb_array_elements(o.payload -> 'items') i),
         'recommendations', (SELECT jsonb_agg((e ->> 'product_id') || ' ' || (e ->> 'reason') || ' (' || (e ->> 'because_of') || ')')
                               FROM jsonb_array_elements(o.payload -> 'recommendations') e))) AS payload
  FROM personalisation.outbox o JOIN personalisation.journey_runs r USING (profile_id, run_id)
 WHERE r.session_id = 'demo-cleo' AND o.journey = 'post_purchase' ORDER BY o.step;
\echo '   the subscription offer'
SELECT jsonb_pretty(o.payload -> 'subscription_offer') AS subscription_offer
  FROM personalisation.outbox o JOIN personalisation.journey_runs r USING (profile_id, run_id)
 WHERE r.session_id = 'demo-cleo' AND o.journey = 'subscription_offer';

\echo '== Her subscriptions'
SELECT s.product_id, s.started_at - :'t0'::timestamptz AS started_after_order, s.stopped_at
  FROM personalisation.subscriptions s JOIN personalisation.sessions x USING (profile_id)
 WHERE x.session_id = 'demo-cleo' ORDER BY s.product_id;

\echo '== The analyst views'
SELECT journey, cohort, messages, orders, order_value, average_order_value
  FROM personalisation.post_purchase_order_value ORDER BY journey NULLS FIRST, cohort;
SELECT arm, customers, subscribed_within_30_days, subscribed_later, never_subscribed,
       uptake_within_30_days, uptake_later
  FROM personalisation.subscription_uptake ORDER BY arm NULLS LAST;
