-- Subscriptions: track_subscription_start and track_subscription_stop
-- (events, idempotency, one active subscription per product, refusals), and
-- the subscriptions' identity merge step: moved with the anonymous profile,
-- two active subscriptions to one product folded, everything put back by
-- unmerge.  Sessions ps-*; rolled back at the end.
BEGIN;
SELECT plan(26);

SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL timezone = 'UTC';

INSERT INTO personalisation.categories VALUES ('ps-cat', NULL, 'Pantry');
INSERT INTO personalisation.products (product_id, category_id, name, price, subscribable, replenish_days) VALUES
  ('ps-tea', 'ps-cat', 'Tea', 8, true, 30), ('ps-oats', 'ps-cat', 'Oats', 5, true, 20),
  ('ps-honey', 'ps-cat', 'Honey', 7, true, NULL), ('ps-pot', 'ps-cat', 'Teapot', 30, false, NULL);

-- The session's subscriptions as 'product:started_at-stopped_at' (times as MM-DD HH24).
CREATE FUNCTION pg_temp.subs(profile bigint) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(product_id || ':' || to_char(started_at, 'MM-DD HH24') || '-'
                               || coalesce(to_char(stopped_at, 'MM-DD HH24'), ''), ' '
                               ORDER BY product_id, started_at), '')
      FROM personalisation.subscriptions WHERE profile_id = profile
$$;
CREATE FUNCTION pg_temp.profile(session text) RETURNS bigint LANGUAGE sql AS $$
    SELECT profile_id FROM personalisation.sessions WHERE session_id = session
$$;

-------------------------------------------------------------------------------
-- Tracking (2025-03).
SELECT is((SELECT string_agg(p.proname || ':' || has_function_privilege('public', p.oid, 'EXECUTE'), ' ' ORDER BY p.proname)
             FROM pg_proc p WHERE p.pronamespace = 'personalisation'::regnamespace
              AND p.proname IN ('track_subscription_start', 'track_subscription_stop')),
  'track_subscription_start:false track_subscription_stop:false',
  'the subscription functions are not executable by PUBLIC');

SELECT personalisation.track_subscription_start('ps-ann', 'ps-tea', '2025-03-01 10:00+00', 'ps-ev-1');
SELECT is(pg_temp.subs(pg_temp.profile('ps-ann')), 'ps-tea:03-01 10-', 'a start records an active subscription');
SELECT results_eq(
  $$SELECT kind, category_id, product_id, event_id FROM personalisation.events WHERE session_id = 'ps-ann'$$,
  $$VALUES ('subscription_start'::text, 'ps-cat'::text, 'ps-tea'::text, 'ps-ev-1'::text)$$,
  'and an event of the product and its category');
SELECT personalisation.track_subscription_start('ps-ann', 'ps-tea', '2025-03-01 10:00+00', 'ps-ev-1');
SELECT is((SELECT count(*) FROM personalisation.events WHERE session_id = 'ps-ann'), 1::bigint,
  'a retry with the same event_id changes nothing');
SELECT personalisation.track_subscription_start('ps-ann', 'ps-tea', '2025-03-02 10:00+00');
SELECT is(pg_temp.subs(pg_temp.profile('ps-ann')), 'ps-tea:03-01 10-',
  'a start while the product is subscribed keeps the subscription there is');
SELECT is((SELECT count(*) FROM personalisation.events WHERE session_id = 'ps-ann'), 2::bigint, 'but is recorded as an event');

SELECT throws_ok($$SELECT personalisation.track_subscription_stop('ps-ann', 'ps-tea', '2025-02-28 10:00+00')$$,
  '22023', 'subscription stop at 2025-02-28 10:00:00+00 precedes its start', 'a stop before the start is refused');
SELECT personalisation.track_subscription_stop('ps-ann', 'ps-tea', '2025-03-10 10:00+00', 'ps-ev-2');
SELECT is(pg_temp.subs(pg_temp.profile('ps-ann')), 'ps-tea:03-01 10-03-10 10', 'a stop ends the subscription');
SELECT personalisation.track_subscription_stop('ps-ann', 'ps-tea', '2025-03-11 10:00+00');
SELECT is(pg_temp.subs(pg_temp.profile('ps-ann')), 'ps-tea:03-01 10-03-10 10', 'a stop with nothing active changes nothing');
SELECT is((SELECT string_agg(kind, ',' ORDER BY occurred_at) FROM personalisation.events WHERE session_id = 'ps-ann'),
  'subscription_start,subscription_start,subscription_stop,subscription_stop', 'every call is an event');
SELECT personalisation.track_subscription_start('ps-ann', 'ps-tea', '2025-03-20 10:00+00');
SELECT is(pg_temp.subs(pg_temp.profile('ps-ann')), 'ps-tea:03-01 10-03-10 10 ps-tea:03-20 10-',
  'subscribing again after a stop starts a new subscription');
SELECT lives_ok($$SELECT personalisation.rebuild_affinity(pg_temp.profile('ps-ann'))$$,
  'rebuilding affinity replays the event log, subscription events included (they carry no affinity)');

SELECT throws_ok($$SELECT personalisation.track_subscription_start('ps-ann', 'ps-pot')$$,
  '22023', 'product "ps-pot" is not subscribable', 'a product not sold as a subscription is refused');
SELECT throws_ok($$SELECT personalisation.track_subscription_start('ps-ann', 'ps-nothing')$$,
  '23503', 'product "ps-nothing" is not in the catalogue', 'an unknown product is refused');
SELECT throws_ok($$SELECT personalisation.track_subscription_start(NULL, 'ps-tea')$$,
  '22004', 'session_id must not be null', 'a NULL session is refused');
SELECT throws_ok($$SELECT personalisation.track_subscription_stop('ps-ann', '')$$,
  '22023', 'product_id must not be empty', 'an empty product is refused');
SELECT throws_ok($$SELECT personalisation.track_subscription_start('ps-ann', 'ps-tea', now() + interval '1 day')$$,
  '22008', NULL, 'a start in the future is refused');

-------------------------------------------------------------------------------
-- Merging (2025-06): a customer, known on the laptop, with an order of tea
-- (its runs are active) and subscriptions to oats and honey; on the phone,
-- anonymously, a subscription to tea stopped before an order of tea and a
-- teapot, then subscriptions to oats (active on both sides) and honey
-- (started at the same instant as the customer's).
SELECT personalisation.identify('ps-laptop', 'ps-cust', 'cust@example.test', '2025-06-01 08:00+00');
SELECT personalisation.track_purchase('ps-laptop', 'ps-o-laptop', '[{"product_id": "ps-tea", "quantity": 1, "unit_price": 8}]',
  '2025-06-01 09:00+00');
SELECT personalisation.track_subscription_start('ps-laptop', 'ps-oats', '2025-06-01 09:30+00');
SELECT personalisation.track_subscription_start('ps-laptop', 'ps-honey', '2025-06-01 09:40+00');
SELECT personalisation.track_subscription_start('ps-phone', 'ps-tea', '2025-06-02 08:00+00');
SELECT personalisation.track_subscription_stop('ps-phone', 'ps-tea', '2025-06-02 08:30+00');
SELECT personalisation.track_purchase('ps-phone', 'ps-o-phone',
  '[{"product_id": "ps-tea", "quantity": 1, "unit_price": 8}, {"product_id": "ps-pot", "quantity": 1, "unit_price": 30}]',
  '2025-06-02 09:00+00');
SELECT personalisation.track_subscription_start('ps-phone', 'ps-oats', '2025-06-02 09:30+00');
SELECT personalisation.track_subscription_start('ps-phone', 'ps-honey', '2025-06-01 09:40+00');
SELECT pg_temp.profile('ps-laptop') AS cust, pg_temp.profile('ps-phone') AS anon \gset
CREATE TEMP TABLE ps_before AS
  SELECT pg_temp.subs(:anon) AS anon_subs, pg_temp.subs(:cust) AS cust_subs,
         (SELECT string_agg(journey || coalesce('/' || product_id, '') || ':' || status, ' ' ORDER BY run_id)
            FROM personalisation.journey_runs WHERE profile_id = :anon) AS anon_runs;
SELECT is((SELECT anon_runs FROM ps_before), 'post_purchase:active subscription_offer/ps-tea:active',
  'before the login the phone''s order has its runs (tea, no longer subscribed, is offered)');

SELECT personalisation.identify('ps-phone', 'ps-cust', NULL, '2025-06-03 10:00+00');
SELECT is(pg_temp.subs(:cust),
  'ps-honey:06-01 09- ps-oats:06-01 09- ps-oats:06-02 09-06-03 10 ps-tea:06-02 08-06-02 08',
  'the subscriptions move to the customer: the phone''s oats, active on both, stopped at the login; honey, the same subscription twice, kept once');
SELECT is(pg_temp.subs(:anon), '', 'nothing is left on the anonymous profile');
SELECT is((SELECT moved -> 'subscriptions' FROM personalisation.merges WHERE from_profile_id = :anon), '3'::jsonb,
  'the ledger counts the three subscriptions the merge moved');
SELECT is((SELECT string_agg(journey || coalesce('/' || product_id, '') || ':' || status || coalesce('/' || end_reason, ''), ' '
                             ORDER BY run_id)
             FROM personalisation.journey_runs WHERE profile_id = :cust),
  'post_purchase:active subscription_offer/ps-tea:active post_purchase:ended/merged subscription_offer/ps-tea:ended/merged',
  'runs of the same journey and product on both sides: the customer''s go on, the phone''s end as merged');

-- after the login the customer stops the moved honey subscription from the phone
SELECT personalisation.track_subscription_stop('ps-phone', 'ps-honey', '2025-06-04 10:00+00');
SELECT personalisation.unmerge(merge_id, '2025-06-05 10:00+00') FROM personalisation.merges WHERE from_profile_id = :anon;
SELECT is(pg_temp.subs(:anon), 'ps-honey:06-01 09- ps-oats:06-02 09- ps-tea:06-02 08-06-02 08',
  'unmerge gives the phone its subscriptions back as they were, the fold undone');
SELECT is(pg_temp.subs(:cust), 'ps-honey:06-01 09-06-04 10 ps-oats:06-01 09-',
  'the customer keeps its own, with the stop made after the login');
SELECT is((SELECT restored -> 'subscriptions' FROM personalisation.merges WHERE from_profile_id = :anon), '3'::jsonb,
  'the ledger counts the three subscriptions put back');
SELECT is((SELECT string_agg(journey || coalesce('/' || product_id, '') || ':' || status, ' ' ORDER BY run_id)
             FROM personalisation.journey_runs WHERE profile_id = :anon),
  (SELECT anon_runs FROM ps_before), 'the phone''s runs come back and go on');

SELECT * FROM finish();
ROLLBACK;
