-- Post-purchase journeys, driven with explicit timestamps: enrolment by a
-- purchase, the cross-sell timeline and its recommendations (complements,
-- the popular-in-category fallback, exclusions, no repeats), subscription
-- offers timed from replenish_days and never after day 30, overlapping
-- orders, refunds, and the abandonment rules (consent, cap, quiet hours,
-- holdout, idempotency) applied to them.  Every assertion looks at this
-- file's own sessions (pp-*); each scenario has a month of its own.
BEGIN;
SELECT plan(60);

SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 3;
SET LOCAL personalisation.quiet_hours = '';
SET LOCAL personalisation.complement_min_co_orders = 2;
SET LOCAL timezone = 'UTC';

-- two recommendations per cross-sell email keep the hand-checked lists short
UPDATE personalisation.journey_steps SET max_recommendations = 2 WHERE journey = 'post_purchase';

INSERT INTO personalisation.categories VALUES ('pp-coffee', NULL, 'Coffee'), ('pp-kit', NULL, 'Kit');
INSERT INTO personalisation.products (product_id, category_id, name, price, in_stock, subscribable, replenish_days, url) VALUES
  ('pp-beans',   'pp-coffee', 'Beans',   12, true,  true,  30,   'https://shop.test/beans'),
  ('pp-filters', 'pp-coffee', 'Filters',  4, true,  true,  60,   'https://shop.test/filters'),
  ('pp-syrup',   'pp-coffee', 'Syrup',    6, true,  true,  NULL, NULL),
  ('pp-pods',    'pp-coffee', 'Pods',     9, true,  true,  8,    NULL),
  ('pp-decaf',   'pp-coffee', 'Decaf',   13, true,  true,  30,   NULL),
  ('pp-cups',    'pp-coffee', 'Cups',     3, true,  false, NULL, NULL),
  ('pp-grinder', 'pp-kit',    'Grinder', 80, true,  false, NULL, 'https://shop.test/grinder'),
  ('pp-mug',     'pp-kit',    'Mug',      9, true,  false, NULL, NULL),
  ('pp-tamper',  'pp-kit',    'Tamper',  15, true,  false, NULL, NULL),
  ('pp-scale',   'pp-kit',    'Scale',   30, false, false, NULL, NULL);

-- Purchase history of other people (2025-04-01): beans goes with grinder,
-- mug, tamper and the out-of-stock scale twice each; decaf sold twice,
-- cups once.
SELECT personalisation.track_purchase('pp-h' || i, 'pp-h' || i,
         jsonb_build_array(jsonb_build_object('product_id', 'pp-beans', 'quantity', 1, 'unit_price', 12),
                           jsonb_build_object('product_id', p, 'quantity', 1, 'unit_price', 10)),
         '2025-04-01 10:00+00')
  FROM (VALUES (1, 'pp-grinder'), (2, 'pp-grinder'), (3, 'pp-mug'), (4, 'pp-mug'),
               (5, 'pp-tamper'), (6, 'pp-tamper'), (7, 'pp-scale'), (8, 'pp-scale')) AS h(i, p);
SELECT personalisation.track_purchase('pp-h' || i, 'pp-h' || i,
         jsonb_build_array(jsonb_build_object('product_id', p, 'quantity', 1, 'unit_price', 10)),
         '2025-04-01 10:00+00')
  FROM (VALUES (9, 'pp-decaf'), (10, 'pp-decaf'), (11, 'pp-cups')) AS h(i, p);
-- the counts stay as this history made them, so that every recommendation
-- below can be checked by hand: the scenarios' own orders are not counted
SELECT personalisation.pause_complementarity();

-- A known customer with email consent, first seen at `at`.  Returns the profile.
CREATE FUNCTION pg_temp.customer(session text, at timestamptz) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    profile bigint;
BEGIN
    PERFORM personalisation.track_page_view(session, occurred_at => at);
    SELECT s.profile_id INTO profile FROM personalisation.sessions s WHERE s.session_id = session;
    UPDATE personalisation.profiles
       SET customer_id = 'cust-' || session, email = session || '@example.test', email_consent = true
     WHERE profile_id = profile;
    RETURN profile;
END
$$;

-- An order of (product, quantity, unit price) lines.
CREATE FUNCTION pg_temp.buy(session text, order_id text, at timestamptz, VARIADIC lines text[])
RETURNS void LANGUAGE sql AS $$
    SELECT personalisation.track_purchase(session, order_id,
             (SELECT jsonb_agg(jsonb_build_object('product_id', split_part(l, ':', 1),
                                                  'quantity', split_part(l, ':', 2)::int,
                                                  'unit_price', split_part(l, ':', 3)::numeric))
                FROM unnest(lines) AS l), at)
$$;

-- The session's runs, e.g. 'post_purchase:active subscription_offer/pp-beans:ended/refunded'.
CREATE FUNCTION pg_temp.runs(session text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(r.journey || coalesce('/' || r.product_id, '') || ':' || r.status
                      || coalesce('/' || r.end_reason, ''), ' ' ORDER BY r.run_id)
      FROM personalisation.journey_runs r WHERE r.session_id = session
$$;

-- What each step of the session's runs of a journey did, e.g. '1:sent 2:skipped(late)'.
CREATE FUNCTION pg_temp.trail(session text, journey_name text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(s.step || ':' || s.outcome || coalesce('(' || s.reason || ')', ''), ' '
                               ORDER BY s.run_id, s.step), '')
      FROM personalisation.journey_run_steps s
      JOIN personalisation.journey_runs r USING (profile_id, run_id)
     WHERE r.session_id = session AND r.journey = journey_name
$$;

-- The session's messages, e.g. 'post_purchase/1:pending subscription_offer/1[pp-beans]:cancelled'.
CREATE FUNCTION pg_temp.messages(session text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(o.journey || '/' || o.step || coalesce('[' || r.product_id || ']', '')
                               || ':' || o.status, ' ' ORDER BY o.created_at, o.message_id), '')
      FROM personalisation.outbox o
      JOIN personalisation.journey_runs r USING (profile_id, run_id)
     WHERE r.session_id = session
$$;

-- The payload of the session's message for a journey's step (and product).
CREATE FUNCTION pg_temp.payload(session text, journey_name text, step_no int, product text DEFAULT NULL)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT o.payload FROM personalisation.outbox o
      JOIN personalisation.journey_runs r USING (profile_id, run_id)
     WHERE r.session_id = session AND o.journey = journey_name AND o.step = step_no
       AND r.product_id IS NOT DISTINCT FROM product
     ORDER BY o.created_at DESC LIMIT 1
$$;

-- A payload's recommendations as 'product(reason<because_of)' in rank order.
CREATE FUNCTION pg_temp.picks(payload jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg((e ->> 'product_id') || '(' || (e ->> 'reason') || '<' || (e ->> 'because_of') || ')',
                               ' ' ORDER BY n), '')
      FROM jsonb_array_elements(payload -> 'recommendations') WITH ORDINALITY AS t(e, n)
$$;

-- A payload's items as 'product x quantity @ unit_price'.
CREATE FUNCTION pg_temp.items(payload jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg((e ->> 'product_id') || ' x' || (e ->> 'quantity') || ' @' || (e ->> 'unit_price'),
                               ' ' ORDER BY n), '')
      FROM jsonb_array_elements(payload -> 'items') WITH ORDINALITY AS t(e, n)
$$;

-------------------------------------------------------------------------------
-- The default journeys are data.
SELECT results_eq(
  $$SELECT journey, trigger, exit_on_purchase, exit_on_refund, exit_on_subscribed, send_within
      FROM personalisation.journeys WHERE trigger <> 'cart_abandoned' ORDER BY journey$$,
  $$VALUES ('post_purchase'::text, 'purchase'::text, false, true, false, interval '30 days'),
           ('subscription_offer', 'subscribable_purchase', false, true, true, interval '30 days')$$,
  'a purchase triggers the cross-sell journey and a subscription offer per subscribable product, both within 30 days');
SELECT results_eq(
  $$SELECT journey, step, delay, channel, blocks, before_runout, min_recommendations
      FROM personalisation.journey_steps WHERE journey IN ('post_purchase', 'subscription_offer') ORDER BY journey, step$$,
  $$VALUES ('post_purchase'::text, 1, interval '3 days', 'email'::text, '{items,recommendations}'::text[], NULL::interval, 1),
           ('post_purchase', 2, interval '14 days', 'email', '{items,recommendations}', NULL, 1),
           ('subscription_offer', 1, interval '1 day', 'email', '{items,subscription_offer}', interval '5 days', NULL)$$,
  'cross-sell emails on day 3 and day 14; the offer 5 days before the product runs out');

-------------------------------------------------------------------------------
-- The timeline of one order (2025-05-01): Ann, who owns a mug from an
-- earlier order, buys beans, filters and syrup.
SELECT pg_temp.customer('pp-ann', '2025-02-01 09:00+00');
INSERT INTO personalisation.orders (order_id, profile_id, session_id, occurred_at, line_count, total)
  SELECT 'pp-a0', profile_id, 'pp-ann', '2025-02-01 09:30+00', 1, 9 FROM personalisation.sessions WHERE session_id = 'pp-ann';
INSERT INTO personalisation.order_lines VALUES ('pp-a0', 'pp-mug', 1, 9);
SELECT pg_temp.buy('pp-ann', 'pp-a1', '2025-05-01 10:00+00', 'pp-beans:1:12', 'pp-filters:1:4', 'pp-syrup:1:6');

SELECT is(pg_temp.runs('pp-ann'),
  'post_purchase:active subscription_offer/pp-beans:active subscription_offer/pp-filters:active',
  'the purchase starts one cross-sell run and an offer per subscribable product with replenish_days');
SELECT results_eq(
  $$SELECT product_id, runs_out_at FROM personalisation.journey_runs
     WHERE session_id = 'pp-ann' AND product_id IS NOT NULL ORDER BY product_id$$,
  $$VALUES ('pp-beans'::text, '2025-05-31 10:00+00'::timestamptz), ('pp-filters', '2025-06-30 10:00+00')$$,
  'each offer knows when the quantity bought runs out: replenish_days per unit');

SELECT personalisation.run_due('2025-05-04 09:59+00');
SELECT is(pg_temp.messages('pp-ann'), '', 'nothing before day 3');
SELECT personalisation.run_due('2025-05-04 10:00+00');
SELECT is(pg_temp.messages('pp-ann'), 'post_purchase/1:pending', 'the first cross-sell email goes out on day 3');
SELECT is(pg_temp.items(pg_temp.payload('pp-ann', 'post_purchase', 1)),
  'pp-beans x1 @12 pp-filters x1 @4 pp-syrup x1 @6', 'it lists what was bought, at the price paid');
SELECT is(pg_temp.payload('pp-ann', 'post_purchase', 1) -> 'order',
  '{"order_id": "pp-a1", "ordered_at": "2025-05-01T10:00:00+00:00", "value": 22}'::jsonb,
  'it names the order, when it was placed and its value');
SELECT is(pg_temp.payload('pp-ann', 'post_purchase', 1) -> 'cart', 'null'::jsonb, 'and has no cart');
SELECT is(pg_temp.picks(pg_temp.payload('pp-ann', 'post_purchase', 1)),
  'pp-grinder(also_bought<pp-beans) pp-tamper(also_bought<pp-beans)',
  'it recommends complements of the order: the mug she owns and the out-of-stock scale are left out');
SELECT is(pg_temp.payload('pp-ann', 'post_purchase', 1) -> 'recommendations' -> 0,
  '{"product_id": "pp-grinder", "name": "Grinder", "unit_price": 80, "url": "https://shop.test/grinder",
    "image_url": null, "reason": "also_bought", "because_of": "pp-beans"}'::jsonb,
  'each recommendation carries what the renderer needs and why it is there');

SELECT personalisation.run_due('2025-05-15 10:00+00');
SELECT is(pg_temp.messages('pp-ann'), 'post_purchase/1:pending post_purchase/2:pending', 'the second cross-sell email goes out on day 14');
SELECT is(pg_temp.picks(pg_temp.payload('pp-ann', 'post_purchase', 2)),
  'pp-decaf(popular_in_category<pp-beans) pp-cups(popular_in_category<pp-beans)',
  'it repeats no recommendation: with complements used up, it falls back on the most ordered of the same category');

SELECT personalisation.run_due('2025-05-26 09:59+00');
SELECT is(pg_temp.trail('pp-ann', 'subscription_offer'), '', 'no offer before 5 days ahead of running out');
SELECT personalisation.run_due('2025-05-26 10:00+00');
SELECT is(pg_temp.messages('pp-ann'), 'post_purchase/1:pending post_purchase/2:pending subscription_offer/1[pp-beans]:pending',
  'beans (30 days) are offered as a subscription on day 25, before they run out');
SELECT is(pg_temp.payload('pp-ann', 'subscription_offer', 1, 'pp-beans') -> 'subscription_offer',
  '{"product_id": "pp-beans", "name": "Beans", "unit_price": 12, "url": "https://shop.test/beans",
    "image_url": null, "replenish_days": 30, "runs_out_at": "2025-05-31T10:00:00+00:00"}'::jsonb,
  'the offer says what is offered and when the customer runs out');
SELECT is(pg_temp.items(pg_temp.payload('pp-ann', 'subscription_offer', 1, 'pp-beans')), 'pp-beans x1 @12',
  'and lists only that product of the order');

SELECT personalisation.run_due('2025-05-30 09:59+00');
SELECT is(pg_temp.trail('pp-ann', 'subscription_offer'), '1:sent', 'filters (60 days) are not offered yet');
SELECT personalisation.run_due('2025-05-30 10:00+00');
SELECT is(pg_temp.trail('pp-ann', 'subscription_offer'), '1:sent 1:sent',
  'filters run out after day 30, so their offer goes on day 29: early enough to be sent within 30 days');
SELECT personalisation.run_due('2025-06-15 10:00+00');
SELECT is(pg_temp.runs('pp-ann'),
  'post_purchase:completed subscription_offer/pp-beans:completed subscription_offer/pp-filters:completed',
  'every run completes after its last step');
SELECT is((SELECT max(s.done_at) - r.anchor_at FROM personalisation.journey_run_steps s
             JOIN personalisation.journey_runs r USING (profile_id, run_id) WHERE r.session_id = 'pp-ann'
            GROUP BY r.anchor_at), interval '29 days', 'every message went out within 30 days of the order');

-- retries change nothing
SELECT pg_temp.buy('pp-ann', 'pp-a1', '2025-05-01 10:00+00', 'pp-beans:1:12', 'pp-filters:1:4', 'pp-syrup:1:6');
SELECT personalisation.run_due('2025-05-30 10:00+00');
SELECT is(pg_temp.messages('pp-ann'),
  'post_purchase/1:pending post_purchase/2:pending subscription_offer/1[pp-beans]:pending subscription_offer/1[pp-filters]:pending',
  'a retried purchase and a repeated run_due write nothing twice');
SELECT is((SELECT count(*) FROM personalisation.journey_runs WHERE session_id = 'pp-ann'), 3::bigint, 'nor start a run twice');

-------------------------------------------------------------------------------
-- Overlapping orders and refunds (2025-07-01): Bob orders beans, then beans
-- and two packs of filters the next day.
SELECT pg_temp.customer('pp-bob', '2025-07-01 09:00+00');
SELECT pg_temp.buy('pp-bob', 'pp-b1', '2025-07-01 10:00+00', 'pp-beans:1:12');
SELECT is(pg_temp.runs('pp-bob'), 'post_purchase:active subscription_offer/pp-beans:active',
  'the first order starts its runs');
SELECT pg_temp.buy('pp-bob', 'pp-b2', '2025-07-02 10:00+00', 'pp-beans:1:11', 'pp-filters:2:4');
SELECT is(pg_temp.runs('pp-bob'),
  'post_purchase:active subscription_offer/pp-beans:active subscription_offer/pp-filters:active',
  'a second order while they run joins the cross-sell run and the beans offer, and starts an offer only for the new product');
SELECT is((SELECT runs_out_at FROM personalisation.journey_runs WHERE session_id = 'pp-bob' AND product_id = 'pp-filters'),
  '2025-10-30 10:00+00'::timestamptz, 'two packs of filters last twice as long');
SELECT personalisation.run_due('2025-07-04 10:00+00');
SELECT is(pg_temp.items(pg_temp.payload('pp-bob', 'post_purchase', 1)), 'pp-beans x2 @11 pp-filters x2 @4',
  'one cross-sell email covers both orders: quantities add up, the last price paid');
SELECT is(pg_temp.payload('pp-bob', 'post_purchase', 1) -> 'order' ->> 'order_id', 'pp-b1', 'and names the order that started the run');

SELECT personalisation.track_refund('pp-b1', '2025-07-05 10:00+00');
SELECT is(pg_temp.runs('pp-bob'),
  'post_purchase:active subscription_offer/pp-beans:active subscription_offer/pp-filters:active',
  'refunding one order leaves the runs going while another order stands');
SELECT personalisation.run_due('2025-07-15 10:00+00');
SELECT is(pg_temp.items(pg_temp.payload('pp-bob', 'post_purchase', 2)), 'pp-beans x1 @11 pp-filters x2 @4',
  'the next email leaves the refunded order out');
SELECT personalisation.track_refund('pp-b2', '2025-07-16 10:00+00');
SELECT is(pg_temp.runs('pp-bob'),
  'post_purchase:completed subscription_offer/pp-beans:ended/refunded subscription_offer/pp-filters:ended/refunded',
  'refunding the last order ends the runs it started');
SELECT is(pg_temp.messages('pp-bob'), 'post_purchase/1:cancelled post_purchase/2:cancelled',
  'and cancels their queued messages');
SELECT personalisation.run_due('2025-08-01 10:00+00');
SELECT is(pg_temp.trail('pp-bob', 'subscription_offer'), '', 'no offer goes out for refunded products');
SELECT pg_temp.buy('pp-bob', 'pp-b3', '2025-08-02 10:00+00', 'pp-mug:1:9');
SELECT is(pg_temp.runs('pp-bob'),
  'post_purchase:completed subscription_offer/pp-beans:ended/refunded subscription_offer/pp-filters:ended/refunded post_purchase:active',
  'an order after the run is over starts a new one');

-------------------------------------------------------------------------------
-- Subscribing ends the offer (2025-09-01): Cat subscribes to decaf, then
-- buys beans and filters.
SELECT pg_temp.customer('pp-cat', '2025-08-20 09:00+00');
SELECT personalisation.track_subscription_start('pp-cat', 'pp-decaf', '2025-08-20 10:00+00');
SELECT pg_temp.buy('pp-cat', 'pp-c1', '2025-09-01 10:00+00', 'pp-beans:1:12', 'pp-filters:1:4');
SELECT personalisation.run_due('2025-09-04 10:00+00');
SELECT personalisation.run_due('2025-09-15 10:00+00');
SELECT is(pg_temp.picks(pg_temp.payload('pp-cat', 'post_purchase', 2)),
  'pp-tamper(also_bought<pp-beans) pp-cups(popular_in_category<pp-beans)',
  'a product the profile subscribes to is never recommended: cups, not the more popular decaf');
SELECT personalisation.run_due('2025-09-26 10:00+00');
SELECT is(pg_temp.messages('pp-cat'), 'post_purchase/1:pending post_purchase/2:pending subscription_offer/1[pp-beans]:pending',
  'the beans offer is queued');
SELECT personalisation.track_subscription_start('pp-cat', 'pp-beans', '2025-09-26 11:00+00', 'pp-cat-sub-1');
SELECT is(pg_temp.messages('pp-cat'), 'post_purchase/1:pending post_purchase/2:pending subscription_offer/1[pp-beans]:cancelled',
  'subscribing cancels the queued offer for that product');
SELECT is((SELECT reason FROM personalisation.outbox o JOIN personalisation.journey_runs r USING (profile_id, run_id)
            WHERE r.session_id = 'pp-cat' AND r.product_id = 'pp-beans'), 'subscribed', 'with its reason');
SELECT is(pg_temp.runs('pp-cat'),
  'post_purchase:completed subscription_offer/pp-beans:completed subscription_offer/pp-filters:active',
  'the filters offer goes on');
SELECT personalisation.track_subscription_start('pp-cat', 'pp-beans', '2025-09-26 11:00+00', 'pp-cat-sub-1');
SELECT is((SELECT count(*) FROM personalisation.subscriptions s JOIN personalisation.sessions x USING (profile_id)
            WHERE x.session_id = 'pp-cat' AND s.product_id = 'pp-beans'), 1::bigint, 'a retried start records one subscription');
SELECT pg_temp.buy('pp-cat', 'pp-c2', '2025-09-27 10:00+00', 'pp-beans:1:12', 'pp-decaf:1:13');
SELECT is((SELECT count(*) FROM personalisation.journey_runs
            WHERE session_id = 'pp-cat' AND product_id IN ('pp-beans', 'pp-decaf') AND status = 'active'), 0::bigint,
  'buying a product the profile subscribes to starts no offer for it');
SELECT personalisation.run_due('2025-09-30 10:00+00');
SELECT is(pg_temp.trail('pp-cat', 'subscription_offer'), '1:sent 1:sent', 'the other product is still offered');
-- an offer already due is ended by the subscription at the due step too
UPDATE personalisation.journey_runs SET status = 'active', next_step = 1, next_due_at = '2025-09-30 10:00+00', ended_at = NULL
 WHERE session_id = 'pp-cat' AND product_id = 'pp-beans';
SELECT is((SELECT c.exit_reason FROM personalisation.journey_run_checks c JOIN personalisation.journey_runs r USING (profile_id, run_id)
            WHERE r.session_id = 'pp-cat' AND r.product_id = 'pp-beans'), 'subscribed',
  'run_due and claim_messages see a subscribed product''s offer as ended');

-------------------------------------------------------------------------------
-- Consent (2025-10-01): Dan never consented to email; Eve withdraws.
SELECT pg_temp.customer('pp-dan', '2025-10-01 09:00+00');
UPDATE personalisation.profiles p SET email_consent = false
  FROM personalisation.sessions s WHERE s.session_id = 'pp-dan' AND s.profile_id = p.profile_id;
SELECT pg_temp.buy('pp-dan', 'pp-d1', '2025-10-01 10:00+00', 'pp-beans:1:12');
SELECT pg_temp.customer('pp-eve', '2025-10-01 09:00+00');
SELECT pg_temp.buy('pp-eve', 'pp-e1', '2025-10-01 10:00+00', 'pp-beans:1:12');
SELECT personalisation.run_due('2025-10-04 10:00+00');
SELECT is(pg_temp.trail('pp-dan', 'post_purchase'), '1:skipped(no_email_consent)', 'without email consent the cross-sell is skipped with its reason');
SELECT personalisation.set_consent('pp-eve', 'email', false, '2025-10-04 11:00+00');
SELECT is(pg_temp.messages('pp-eve'), 'post_purchase/1:suppressed', 'withdrawing email consent suppresses the queued cross-sell');
SELECT is(pg_temp.runs('pp-eve'), 'post_purchase:ended/consent_withdrawn subscription_offer/pp-beans:ended/consent_withdrawn',
  'and ends the runs: every remaining step is an email');

-------------------------------------------------------------------------------
-- The frequency cap and quiet hours postpone, across journeys (2025-11-01).
SET LOCAL personalisation.frequency_cap = 1;
SELECT pg_temp.customer('pp-fay', '2025-11-01 09:00+00');
SELECT pg_temp.buy('pp-fay', 'pp-f1', '2025-11-01 10:00+00', 'pp-pods:1:9');  -- pods last 8 days: offered on day 3
SELECT personalisation.run_due('2025-11-04 10:00+00');
SELECT is(pg_temp.messages('pp-fay'), 'post_purchase/1:pending', 'under a cap of 1 the cross-sell goes and the offer due with it waits');
SELECT is((SELECT wait_reason || ' until ' || next_due_at FROM personalisation.journey_runs WHERE session_id = 'pp-fay' AND product_id = 'pp-pods'),
  'frequency_cap until 2025-11-05 10:00:00+00', 'the offer says why and until when');
SELECT personalisation.run_due('2025-11-05 10:00+00');
SELECT is(pg_temp.trail('pp-fay', 'subscription_offer'), '1:sent', 'and goes out when the day frees up');
SET LOCAL personalisation.frequency_cap = 3;

SET LOCAL personalisation.quiet_hours = '22:00-08:00';
SELECT pg_temp.customer('pp-gus', '2025-11-10 09:00+00');
SELECT pg_temp.buy('pp-gus', 'pp-g1', '2025-11-10 23:30+00', 'pp-beans:1:12');
SELECT personalisation.run_due('2025-11-13 23:30+00');
SELECT is((SELECT wait_reason || ' until ' || next_due_at FROM personalisation.journey_runs WHERE session_id = 'pp-gus' AND product_id IS NULL),
  'quiet_hours until 2025-11-14 08:00:00+00', 'a cross-sell due in the quiet hours waits for their end');
SELECT personalisation.run_due('2025-11-14 08:00+00');
SELECT is(pg_temp.trail('pp-gus', 'post_purchase'), '1:sent', 'and then goes out');
SET LOCAL personalisation.quiet_hours = '';

-------------------------------------------------------------------------------
-- Holdout (2025-12-01): the runs go through every rule without sending.
SET LOCAL personalisation.journey_holdout_percent = 100;
SELECT pg_temp.customer('pp-hal', '2025-12-01 09:00+00');
SELECT pg_temp.buy('pp-hal', 'pp-hal1', '2025-12-01 10:00+00', 'pp-beans:1:12');
SET LOCAL personalisation.journey_holdout_percent = 0;
SELECT personalisation.run_due('2025-12-04 10:00+00');
SELECT is((SELECT string_agg(DISTINCT arm, ',') FROM personalisation.journey_runs WHERE session_id = 'pp-hal'), 'holdout',
  'the order''s runs fall in the holdout arm');
SELECT is(pg_temp.trail('pp-hal', 'post_purchase') || ' / ' || pg_temp.messages('pp-hal'), '1:held / ',
  'the cross-sell is held: nothing reaches the outbox');
SELECT is(pg_temp.picks((SELECT s.payload FROM personalisation.journey_run_steps s JOIN personalisation.journey_runs r USING (profile_id, run_id)
                          WHERE r.session_id = 'pp-hal' AND r.journey = 'post_purchase' AND s.step = 1)),
  'pp-grinder(also_bought<pp-beans) pp-mug(also_bought<pp-beans)', 'the held step records the recommendations it would have sent');

-------------------------------------------------------------------------------
-- The abandoned-cart emails carry recommendations too (2026-01-05): Ivy
-- leaves beans in her cart.
SELECT pg_temp.customer('pp-ivy', '2026-01-05 09:00+00');
SELECT personalisation.set_consent('pp-ivy', 'push', true, '2026-01-05 09:00+00');
SELECT personalisation.track_cart_add('pp-ivy', 'pp-beans', 1, '2026-01-05 10:00+00');
SELECT personalisation.run_due('2026-01-05 10:30+00');
SELECT personalisation.run_due('2026-01-05 11:00+00');
SELECT is(pg_temp.picks(pg_temp.payload('pp-ivy', 'abandoned_cart', 2)),
  'pp-grinder(also_bought<pp-beans) pp-mug(also_bought<pp-beans) pp-tamper(also_bought<pp-beans) pp-decaf(popular_in_category<pp-beans)',
  'the first cart email recommends complements of the cart, then popular products of its category');
SELECT is(pg_temp.payload('pp-ivy', 'abandoned_cart', 1) -> 'recommendations', '[]'::jsonb,
  'the push, whose step lists no recommendations, carries none');
SELECT is(pg_temp.payload('pp-ivy', 'abandoned_cart', 2) -> 'order', 'null'::jsonb, 'a cart message has no order');

-------------------------------------------------------------------------------
-- Never after day 30 (2026-02-01): a step late only by the journey's
-- send_within is skipped.
UPDATE personalisation.journey_steps SET delay = '29 days 23 hours' WHERE journey = 'post_purchase' AND step = 2;
SELECT pg_temp.customer('pp-jon', '2026-02-01 09:00+00');
SELECT pg_temp.buy('pp-jon', 'pp-j1', '2026-02-01 10:00+00', 'pp-mug:1:9');
SELECT personalisation.run_due('2026-03-03 10:01+00');
SELECT is(pg_temp.trail('pp-jon', 'post_purchase'), '1:skipped(late) 2:skipped(late)',
  'a step reached after day 30 is skipped, though within its own max_lateness');
UPDATE personalisation.journey_steps SET delay = '14 days' WHERE journey = 'post_purchase' AND step = 2;

-------------------------------------------------------------------------------
-- Steps are data; bad input is refused.
SELECT throws_ok($$INSERT INTO personalisation.journey_steps (journey, step, name, delay, channel, template, min_recommendations)
                   VALUES ('post_purchase', 9, 'x', '1 day', 'email', 'x', 5)$$,
  '23514', NULL, 'a step cannot require more recommendations than it may carry');
SELECT throws_ok($$INSERT INTO personalisation.journeys (journey, trigger) VALUES ('x', 'birthday')$$,
  '23514', NULL, 'an unknown trigger is refused');

SELECT * FROM finish();
ROLLBACK;
