-- The ranking holdout: a sticky hash of the session (of the customer's profile
-- once identified), a control share that is what the setting says and grows
-- monotonically, the shop's order for control visitors, and the analyst
-- report per arm.
BEGIN;
SELECT plan(13);

INSERT INTO personalisation.categories VALUES ('ho-cat', NULL, 'Holdout');
INSERT INTO personalisation.products (product_id, category_id) VALUES ('ho-p1', 'ho-cat'), ('ho-p2', 'ho-cat'), ('ho-p3', 'ho-cat');

-- The share: 10% of 20,000 customers and of 20,000 anonymous sessions by default,
-- none at 0, all at 100.
SELECT ok(share BETWEEN 0.09 AND 0.11, format('about 10%% of customers are in control (%s)', share))
  FROM (SELECT avg((personalisation._holdout_arm(NULL, i::bigint) = 'control')::int) AS share
          FROM generate_series(1, 20000) i) s;
SELECT ok(share BETWEEN 0.09 AND 0.11, format('about 10%% of anonymous sessions are in control (%s)', share))
  FROM (SELECT avg((personalisation._holdout_arm('ho-anon-' || i, NULL) = 'control')::int) AS share
          FROM generate_series(1, 20000) i) s;
SET LOCAL personalisation.ranking_holdout_percent = 0;
SELECT is((SELECT count(*) FROM generate_series(1, 20000) i WHERE personalisation._holdout_arm(NULL, i::bigint) = 'control'),
          0::bigint, 'ranking_holdout_percent 0 holds nobody out');
SET LOCAL personalisation.ranking_holdout_percent = 100;
SELECT is((SELECT count(*) FROM generate_series(1, 20000) i WHERE personalisation._holdout_arm(NULL, i::bigint) = 'control'),
          20000::bigint, 'ranking_holdout_percent 100 holds everybody out');

-- Raising the share keeps every control profile in control.
SET LOCAL personalisation.ranking_holdout_percent = 10;
CREATE TEMP TABLE control_at_10 AS
SELECT i FROM generate_series(1, 20000) i WHERE personalisation._holdout_arm(NULL, i::bigint) = 'control';
SET LOCAL personalisation.ranking_holdout_percent = 20;
SELECT is((SELECT count(*) FROM control_at_10 WHERE personalisation._holdout_arm(NULL, i::bigint) <> 'control'),
          0::bigint, 'raising the share from 10% to 20% moves nobody out of control');

-- Sticky: an anonymous session's arm is decided before its first event and
-- does not change with its events.
SET LOCAL personalisation.ranking_holdout_percent = 50;
CREATE TEMP TABLE report_before AS SELECT * FROM personalisation.ranking_holdout;
CREATE TEMP TABLE first_arms AS
SELECT 'ho-s' || i AS session_id, personalisation.holdout_arm('ho-s' || i) AS arm FROM generate_series(1, 40) i;
SELECT personalisation.track_page_view('ho-s' || i, 'ho-cat', NULL, now() - interval '1 minute')
  FROM generate_series(1, 40) i;
SELECT is((SELECT count(*) FROM first_arms WHERE personalisation.holdout_arm(session_id) <> arm), 0::bigint,
          'a session keeps the arm it had before its first event');
SELECT personalisation.track_page_view('ho-s' || i, NULL, 'ho-p1', now()) FROM generate_series(1, 40) i;
SELECT is((SELECT count(*) FROM first_arms WHERE personalisation.holdout_arm(session_id) <> arm), 0::bigint,
          'and through its later events');
SELECT ok((SELECT count(DISTINCT arm) = 2 FROM first_arms), 'at 50% both arms get sessions');

-- Once identified, every session of a customer, on any device, has the customer's arm.
SELECT personalisation.identify('ho-s' || i, 'ho-customer') FROM generate_series(1, 5) i;
SELECT is((SELECT count(*) FROM personalisation.sessions s
            WHERE s.session_id IN ('ho-s1', 'ho-s2', 'ho-s3', 'ho-s4', 'ho-s5')
              AND personalisation.holdout_arm(s.session_id) = personalisation._holdout_arm(NULL, s.profile_id)),
          5::bigint, 'every session of one customer is in the customer''s arm');

-- Control visitors get the shop's order; personalised ones the ranking.
SELECT personalisation.track_page_view(session_id, NULL, 'ho-p3', now()) FROM first_arms, generate_series(1, 2);
SELECT is(array_agg(product_id ORDER BY position), ARRAY['ho-p1', 'ho-p2', 'ho-p3'],
          'a control visitor gets the shop''s order')
  FROM personalisation.rank_products((SELECT session_id FROM first_arms WHERE personalisation.holdout_arm(session_id) = 'control' LIMIT 1),
                                     ARRAY['ho-p1', 'ho-p2', 'ho-p3']);
SELECT is(array_agg(product_id ORDER BY position), ARRAY['ho-p3', 'ho-p1', 'ho-p2'],
          'a personalised visitor gets the products it viewed first')
  FROM personalisation.rank_products((SELECT session_id FROM first_arms WHERE personalisation.holdout_arm(session_id) = 'personalised' LIMIT 1),
                                     ARRAY['ho-p2', 'ho-p1', 'ho-p3']);

-- The report counts each arm's ranked sessions and the ones that ordered.
SELECT count(*) FROM first_arms, personalisation.rank_products(session_id, ARRAY['ho-p1']);
SELECT personalisation.track_purchase(session_id, 'ho-order-' || session_id,
         '[{"product_id": "ho-p1", "quantity": 1, "unit_price": 10}]', now())
  FROM personalisation.sessions WHERE session_id IN ('ho-s10', 'ho-s11', 'ho-s12', 'ho-s13', 'ho-s14', 'ho-s15');
SELECT results_eq(
  $$SELECT r.arm, r.sessions - b.sessions, r.converted_sessions - b.converted_sessions, r.revenue - b.revenue
      FROM personalisation.ranking_holdout r JOIN report_before b USING (arm) ORDER BY r.arm$$,
  $$SELECT a.arm, count(s.session_id), count(s.session_id) FILTER (WHERE s.session_id IN ('ho-s10', 'ho-s11', 'ho-s12', 'ho-s13', 'ho-s14', 'ho-s15')),
           10::numeric * count(s.session_id) FILTER (WHERE s.session_id IN ('ho-s10', 'ho-s11', 'ho-s12', 'ho-s13', 'ho-s14', 'ho-s15'))
      FROM (VALUES ('control'), ('personalised')) a (arm)
      LEFT JOIN personalisation.ranking_exposures s ON s.session_id LIKE 'ho-s%' AND s.arm = a.arm
     GROUP BY a.arm ORDER BY a.arm$$,
  'each arm counts its ranked sessions, the ones that ordered and their revenue');
SELECT ok(bool_and(conversion_rate IS NOT DISTINCT FROM converted_sessions::float8 / NULLIF(sessions, 0)
                   AND uplift IS NOT DISTINCT FROM
                       conversion_rate / NULLIF((SELECT conversion_rate FROM personalisation.ranking_holdout WHERE arm = 'control'), 0)),
          'conversion rate and uplift are computed from the counts')
  FROM personalisation.ranking_holdout;

SELECT * FROM finish();
ROLLBACK;
