-- Proof of uplift for a journey, and the report page.  600 carts are
-- abandoned at a 50% journey holdout; in each arm its planted share of the
-- carts is recovered (treatment 30%, holdout 10%: a true uplift of 3x),
-- the carts chosen by a hash of their session.  The arms follow the
-- profiles' ids, which differ from run to run, but the shares do not: the
-- result cannot flake.  journey_report must recover the planted uplift inside its
-- interval, order its rows by arm and step, and keep every number when
-- the holdout share changes afterwards; uplift_report_html() must be one
-- self-contained, well-formed page showing every experiment.
BEGIN;
SELECT plan(8);

SET LOCAL timezone = 'UTC';
SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.frequency_cap = 0;
SET LOCAL personalisation.quiet_hours = '';
SET LOCAL personalisation.attribution_window = '7d';
DELETE FROM personalisation.journey_run_steps;
DELETE FROM personalisation.outbox;
DELETE FROM personalisation.coupons;
DELETE FROM personalisation.journey_runs;
DELETE FROM personalisation.orders;
DELETE FROM personalisation.ranking_exposures;
UPDATE personalisation.journey_steps SET enabled = true, min_cart_value = NULL WHERE journey = 'abandoned_cart';

INSERT INTO personalisation.categories VALUES ('mj-cat', NULL, 'Journey uplift');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('mj-lamp', 'mj-cat', 'Lamp', 40);

-- u(id): a uniform number in [0, 1) from a hash of the id.
CREATE FUNCTION pg_temp.u(id text) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT ('x' || substr(md5(id), 1, 8))::bit(32)::bigint / 4294967296.0
$$;

SET LOCAL personalisation.journey_holdout_percent = 50;
SELECT count(personalisation.track_cart_add('mj-c' || i, 'mj-lamp', 1, '2025-03-01 10:00+00'))
  FROM generate_series(1, 600) i;
UPDATE personalisation.profiles p
   SET customer_id = 'cust-' || s.session_id, email = s.session_id || '@example.test', email_consent = true
  FROM personalisation.sessions s WHERE s.session_id LIKE 'mj-c%' AND s.profile_id = p.profile_id;
SELECT personalisation.run_due('2025-03-01 10:45+00');
SELECT personalisation.run_due('2025-03-01 11:45+00');
-- the planted recoveries, after the first email
CREATE TEMP TABLE planted AS
SELECT session_id, arm, rn <= round(n * CASE arm WHEN 'treatment' THEN 0.30 ELSE 0.10 END) AS recovered
  FROM (SELECT r.session_id, r.arm, count(*) OVER (PARTITION BY r.arm) AS n,
               row_number() OVER (PARTITION BY r.arm ORDER BY pg_temp.u(r.session_id)) AS rn
          FROM personalisation.journey_runs r WHERE r.journey = 'abandoned_cart') c;
SELECT count(personalisation.track_purchase(session_id, 'mj-order-' || session_id,
             '[{"product_id": "mj-lamp", "quantity": 1, "unit_price": 40}]', '2025-03-01 12:00+00'))
  FROM planted WHERE recovered;

SELECT results_eq(
  $$SELECT arm, carts_abandoned, carts_recovered, revenue_per_cart FROM personalisation.journey_report
     WHERE journey = 'abandoned_cart' AND step IS NULL$$,
  $$SELECT arm, count(*), count(*) FILTER (WHERE recovered),
           round(40::numeric * count(*) FILTER (WHERE recovered) / count(*), 2)
      FROM planted GROUP BY arm ORDER BY arm DESC$$,
  'each arm counts its abandoned carts, those recovered, and the revenue per cart');
SELECT ok(uplift_low < 3 AND 3 < uplift_high AND uplift_low > 1 AND p_value < 0.05,
          format('the planted 3x recovery uplift lies inside the reported interval (%s: %s .. %s, p %s)',
                 round(uplift::numeric, 2), round(uplift_low::numeric, 2), round(uplift_high::numeric, 2),
                 round(p_value::numeric, 6)))
  FROM personalisation.journey_report WHERE journey = 'abandoned_cart' AND arm = 'treatment' AND step IS NULL;
SELECT is((SELECT string_agg(arm || ':' || coalesce(step::text, '-'), ' ') FROM personalisation.journey_report
            WHERE journey = 'abandoned_cart'),
          'treatment:- treatment:1 treatment:2 treatment:3 treatment:4 holdout:- holdout:1 holdout:2 holdout:3 holdout:4',
          'the rows come ordered by arm and step, the arm as a whole first');
SELECT ok((SELECT bool_and(uplift IS NULL AND uplift_low IS NULL) FROM personalisation.journey_report
            WHERE arm = 'holdout')
          AND (SELECT uplift IS NOT DISTINCT FROM (carts_recovered::float8 / carts_abandoned)
                      / (SELECT h.carts_recovered::float8 / h.carts_abandoned FROM personalisation.journey_report h
                          WHERE h.journey = 'abandoned_cart' AND h.arm = 'holdout' AND h.step = 2)
                 FROM personalisation.journey_report
                WHERE journey = 'abandoned_cart' AND arm = 'treatment' AND step = 2),
          'a step''s uplift compares the treatment''s recoveries credited to it with the holdout''s');

CREATE TEMP TABLE report_before AS SELECT * FROM personalisation.journey_report;
SET LOCAL personalisation.journey_holdout_percent = 90;
SELECT set_eq($$SELECT * FROM personalisation.journey_report$$, $$SELECT * FROM report_before$$,
              'after the journey holdout share changes every reported number is the same');

-- The page.
SELECT personalisation.uplift_report_html() AS page \gset
SELECT ok(xml_is_well_formed_document(:'page'), 'the report page is well-formed');
SELECT ok(:'page' !~* '(src=|href=|url\(|@import)', 'and self-contained: no external asset is referenced');
SELECT is((SELECT array_agg(s.claim ORDER BY s.claim) FILTER (WHERE strpos(:'page', s.claim) = 0)
             FROM personalisation.uplift_summary() s), NULL,
          'and it states the claim of every experiment');

SELECT * FROM finish();
ROLLBACK;
