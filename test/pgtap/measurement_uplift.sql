-- Proof of uplift: the interval and test math against a hand computation,
-- and a planted effect the ranking report must recover.  4,000 visitors
-- are ranked at a 50% holdout; a visitor converts when a hash of its id
-- falls under its arm's planted probability (personalised 15%, control
-- 10%: a true uplift of 1.5x), so the data are the same on every run.
-- Background sessions that were never ranked order too, and must not
-- count; nor must an order placed after the attribution window.  Changing
-- the holdout share afterwards must change no reported number.
BEGIN;
SELECT plan(16);

SET LOCAL timezone = 'UTC';
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.ranking_attribution_window = '1d';

-- The hand computation for 30 of 200 against 10 of 100:
--   uplift 0.15 / 0.10 = 1.5
--   se = sqrt(1/30 - 1/200 + 1/10 - 1/100) = 0.343996
--   interval 1.5 * exp(-+1.959964 * se) = 0.76433 .. 2.94375
--   pooled rate 40/300, z = 0.05 / sqrt(0.13333 * 0.86667 * (1/200 + 1/100)) = 1.20096, p = 0.22977
--   detectable uplift 1 + 2.801585 * sqrt(0.1 * 0.9 * 0.015) / 0.1 = 2.02937
SELECT ok(abs(uplift - 1.5) < 1e-9 AND abs(uplift_low - 0.76433) < 1e-5 AND abs(uplift_high - 2.94375) < 1e-5,
          format('the Katz log interval matches the hand computation (%s: %s .. %s)', uplift, uplift_low, uplift_high))
  FROM personalisation.uplift_test(200, 30, 100, 10);
SELECT ok(abs(p_value - 0.22977) < 1e-5 AND abs(min_detectable_uplift - 2.02937) < 1e-5,
          format('the z-test and the detectable uplift match it (p %s, detectable %s)', p_value, min_detectable_uplift))
  FROM personalisation.uplift_test(200, 30, 100, 10);
SELECT is(sample_hint,
          'Not significant: at this sample only an uplift above 2.03x would be detected with 80% power; both arms need more units to detect a smaller one.',
          'a result whose interval holds 1 says how large an uplift the sample could detect')
  FROM personalisation.uplift_test(200, 30, 100, 10);
SELECT ok(uplift IS NULL AND uplift_low IS NULL AND p_value IS NOT NULL
          AND sample_hint = 'An arm has no converted unit yet: there is no interval until both have some.',
          'without a converted control unit there is no uplift and no interval, but a test')
  FROM personalisation.uplift_test(100, 5, 100, 0);
SELECT throws_ok($$SELECT * FROM personalisation.uplift_test(10, 11, 10, 1)$$, '22023',
                 'converted exceeds the units exposed', 'more converted than exposed units is refused');
SELECT throws_ok($$SELECT * FROM personalisation.uplift_test(-1, 0, 10, 1)$$, '22023',
                 'exposed must not be negative', 'a negative count is refused');
SELECT is(personalisation.uplift_claim('ranking', 'conversion', 30214, 'visitors', 1.42, 1.18, 1.71, 0.0004),
          'ranking: 1.42x conversion (95% 1.18-1.71), 30,214 visitors, significant (p = 0.0004)',
          'the claim states the uplift, its interval, the sample and the verdict');
SELECT is(personalisation.uplift_claim('subscription_offer', 'uptake', 1, 'customers', NULL, NULL, NULL, NULL),
          'subscription_offer: no uptake uplift to claim yet, 1 customer',
          'a claim without an uplift says so, and one unit is named in the singular');

-- The planted effect.
DELETE FROM personalisation.ranking_exposures;
DELETE FROM personalisation.orders;
INSERT INTO personalisation.categories VALUES ('mu-cat', NULL, 'Uplift');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES
  ('mu-p1', 'mu-cat', 'One', 20), ('mu-p2', 'mu-cat', 'Two', 30);

-- u(id): a uniform number in [0, 1) from a hash of the id.
CREATE FUNCTION pg_temp.u(id text) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT ('x' || substr(md5(id), 1, 8))::bit(32)::bigint / 4294967296.0
$$;
CREATE FUNCTION pg_temp.buy(session text, at timestamptz) RETURNS void LANGUAGE sql AS $$
  SELECT personalisation.track_purchase(session, 'mu-order-' || session,
           '[{"product_id": "mu-p1", "quantity": 1, "unit_price": 20}]', at)
$$;

SET LOCAL personalisation.ranking_holdout_percent = 50;
SELECT count(*) FROM generate_series(1, 4000) i,
       personalisation.rank_products('mu-v' || i, ARRAY['mu-p1', 'mu-p2'], false, '2025-01-10 10:00+00');
SELECT pg_temp.buy(e.session_id, '2025-01-10 11:00+00')
  FROM personalisation.ranking_exposures e
 WHERE pg_temp.u(e.session_id) < CASE e.arm WHEN 'personalised' THEN 0.15 ELSE 0.10 END;
-- never ranked, yet ordering: background traffic the report must leave out
SELECT pg_temp.buy('mu-background-' || i, '2025-01-10 11:00+00') FROM generate_series(1, 500) i;
-- ranked, but ordering two days later: outside the attribution window
SELECT pg_temp.buy(e.session_id, '2025-01-12 11:00+00')
  FROM personalisation.ranking_exposures e
 WHERE e.arm = 'control' AND pg_temp.u(e.session_id) >= 0.10 AND pg_temp.u('late' || e.session_id) < 0.2;

SELECT results_eq(
  $$SELECT arm, sessions, converted_sessions, revenue FROM personalisation.ranking_holdout$$,
  $$SELECT a.arm, count(e.session_id),
           count(e.session_id) FILTER (WHERE pg_temp.u(e.session_id) < a.p),
           20::numeric * count(e.session_id) FILTER (WHERE pg_temp.u(e.session_id) < a.p)
      FROM (VALUES ('personalised', 0.15, 1), ('control', 0.10, 2)) a (arm, p, sort)
      JOIN personalisation.ranking_exposures e ON e.arm = a.arm
     GROUP BY a.arm, a.sort ORDER BY a.sort$$,
  'the report counts the ranked sessions of each arm and those that ordered within the window, nothing else');
SELECT ok(sessions BETWEEN 1800 AND 2200, format('about half the visitors are in each arm (%s personalised)', sessions))
  FROM personalisation.ranking_holdout WHERE arm = 'personalised';
SELECT ok(uplift_low < 1.5 AND 1.5 < uplift_high,
          format('the planted 1.5x uplift lies inside the reported interval (%s: %s .. %s)',
                 round(uplift::numeric, 3), round(uplift_low::numeric, 3), round(uplift_high::numeric, 3)))
  FROM personalisation.ranking_holdout WHERE arm = 'personalised';
SELECT ok(uplift_low > 1 AND p_value < 0.05 AND sample_hint IS NULL,
          format('and the uplift is significant (p %s)', p_value))
  FROM personalisation.ranking_holdout WHERE arm = 'personalised';
SELECT is(split_part(claim, ' (p = ', 1),
          format('ranking: %sx conversion (95%% %s-%s), %s sessions, significant',
                 to_char(uplift, 'FM0.00'), to_char(uplift_low, 'FM0.00'), to_char(uplift_high, 'FM0.00'),
                 to_char(units, 'FM9,999')),
          format('uplift_summary states the ranking result (%s)', claim))
  FROM personalisation.uplift_summary() WHERE experiment = 'ranking';

-- A later change of the share moves nobody between arms: neither in the
-- report nor in what rank_* gives the visitors already ranked.
CREATE TEMP TABLE report_at_50 AS SELECT * FROM personalisation.ranking_holdout;
SET LOCAL personalisation.ranking_holdout_percent = 10;
SELECT count(*) FROM generate_series(1, 4000) i,
       personalisation.rank_products('mu-v' || i, ARRAY['mu-p1', 'mu-p2'], false, '2025-01-10 12:00+00');
SELECT set_eq($$SELECT * FROM personalisation.ranking_holdout$$, $$SELECT * FROM report_at_50$$,
              'after the share drops to 10% every reported number is the same');
SELECT is((SELECT count(*) FROM personalisation.ranking_exposures e
            WHERE personalisation.holdout_arm(e.session_id) <> e.arm), 0::bigint,
          'every ranked visitor stays in the arm it was first ranked in');
SELECT is((SELECT count(*) FROM generate_series(1, 200) i
             JOIN personalisation.ranking_exposures e ON e.session_id = 'mu-v' || i AND e.arm = 'control'
            CROSS JOIN LATERAL personalisation.rank_products(e.session_id, ARRAY['mu-p2', 'mu-p1'], true) r
            WHERE r.reason <> '{"arm": "control"}'), 0::bigint,
          'a control visitor still gets the shop''s order');

SELECT * FROM finish();
ROLLBACK;
