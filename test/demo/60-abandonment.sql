-- Demo: one abandoned cart's messages appearing over simulated time.
-- run_due(now) is called with explicit instants instead of waiting for
-- pg_cron or the worker, so the whole 72-hour sequence plays out in a
-- second.  The story lies six weeks back, before the sample shop's traffic
-- and the later parts' simulated days, so the demo's clock only moves
-- forward.  Run with psql against the demo shop (test/demo.sh, which pauses
-- the real-time clocks meanwhile); everything it writes stays in the
-- database.
\set ON_ERROR_STOP on
\pset pager off
SET personalisation.journey_holdout_percent = 0;   -- this cart is not in the holdout
SET timezone = 'UTC';

\echo
\echo '== The default abandoned-cart journey (rows the shop can change)'
SELECT step, name, delay, channel, template, blocks FROM personalisation.journey_steps
 WHERE journey = 'abandoned_cart' ORDER BY step;

\echo '== Ann browses, opts in to push, and leaves two kettles in her cart six weeks ago (t0)'
INSERT INTO personalisation.categories VALUES ('demo-kitchen', NULL, 'Kitchen') ON CONFLICT DO NOTHING;
INSERT INTO personalisation.products (product_id, category_id, name, price, url, image_url) VALUES
  ('demo-kettle', 'demo-kitchen', 'Copper kettle', 49.00, 'https://shop.example/kettle', 'https://img.example/kettle.jpg')
  ON CONFLICT DO NOTHING;
SELECT date_trunc('hour', now()) - interval '42 days' AS t0 \gset
SELECT personalisation.track_page_view('demo-ann', NULL, 'demo-kettle', :'t0');
SELECT personalisation.set_consent('demo-ann', 'push', true, :'t0');
SELECT personalisation.track_cart_add('demo-ann', 'demo-kettle', 2, :'t0');
-- she logged in earlier: a known profile with an email address and email consent
UPDATE personalisation.profiles p SET customer_id = 'demo-ann', email = 'ann@example.com', email_consent = true
  FROM personalisation.sessions s WHERE s.session_id = 'demo-ann' AND s.profile_id = p.profile_id;
-- other shoppers looked at and bought the same kettle (the social proof)
SELECT personalisation.track_page_view('demo-bob', NULL, 'demo-kettle', :'t0');
SELECT personalisation.track_purchase('demo-bob', 'demo-order-bob',
  '[{"product_id": "demo-kettle", "quantity": 1, "unit_price": 49.00}]', :'t0');

\echo '== The clock: run_due at simulated instants after her last cart activity'
SELECT after_last_activity, personalisation.run_due(:'t0'::timestamptz + after_last_activity::interval) AS messages_written
  FROM (VALUES ('29 minutes'), ('30 minutes'), ('59 minutes'), ('60 minutes'),
               ('24 hours'), ('24 hours'), ('72 hours'), ('96 hours')) AS t(after_last_activity);

\echo '== What each step did'
SELECT s.step, s.outcome, s.reason, s.done_at - :'t0'::timestamptz AS after_last_activity
  FROM personalisation.journey_run_steps s JOIN personalisation.journey_runs r USING (profile_id, run_id)
 WHERE r.session_id = 'demo-ann' ORDER BY s.step;

\echo '== Her messages in the outbox, carrying what the delivery worker needs to render them'
SELECT o.message_id, o.step, o.channel, o.template, o.status,
       o.created_at - :'t0'::timestamptz AS after_last_activity,
       o.payload -> 'recipient' ->> coalesce(nullif(o.channel, 'push'), 'session_id') AS "to"
  FROM personalisation.outbox o JOIN personalisation.journey_runs r USING (profile_id, run_id)
 WHERE r.session_id = 'demo-ann' ORDER BY o.step;
\echo '   the items (every message), the social proof (24 hours) and the incentive (72 hours):'
SELECT o.step, jsonb_pretty(jsonb_strip_nulls(jsonb_build_object(
         'items', o.payload -> 'items',
         'social_proof', nullif(o.payload -> 'social_proof', '[]'),
         'incentive', o.payload -> 'incentive'))) AS payload
  FROM personalisation.outbox o JOIN personalisation.journey_runs r USING (profile_id, run_id)
 WHERE r.session_id = 'demo-ann' AND o.step IN (2, 3, 4) ORDER BY o.step;

\echo '== A delivery worker claims, delivers and acknowledges them'
SELECT personalisation.ack_messages(array_agg(c.message_id), :'t0'::timestamptz + interval '96 hours')
  FROM personalisation.claim_messages('demo-worker', 100, '5 minutes', :'t0'::timestamptz + interval '96 hours') c
  JOIN personalisation.journey_runs r USING (profile_id, run_id) WHERE r.session_id = 'demo-ann';
SELECT r.status, r.abandoned_at - :'t0'::timestamptz AS abandoned_after, c.code AS coupon, c.expires_at
  FROM personalisation.journey_runs r LEFT JOIN personalisation.coupons c USING (profile_id, run_id)
 WHERE r.session_id = 'demo-ann';

\echo '== The analyst view'
SELECT arm, step, template, carts_abandoned, messages_sent, messages_delivered, carts_recovered, recovery_rate
  FROM personalisation.journey_report WHERE journey = 'abandoned_cart' ORDER BY arm, step NULLS FIRST;
