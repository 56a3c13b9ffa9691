-- personalisation 0.1.0 -> 0.2.0
--
-- Every SQL change made after the 0.1.0 release goes here as well as into the
-- install parts (sql/*.sql); the upgrade test (test/upgrade.sh) proves that an
-- updated 0.1.0 database and a fresh 0.2.0 install have the same schema.
-- Every object is schema-qualified.

\echo Use "ALTER EXTENSION personalisation UPDATE TO '0.2.0'" to load this file. \quit

-- Measurement (issue 18): exposure recorded at the first ranking, the
-- attribution windows as settings, every report with the uplift, its 95%
-- interval, a p-value and the detectable uplift per arm, uplift_arms,
-- uplift_summary() and uplift_report_html().  docs/measurement.md.
-- An arm against its control: the uplift (ratio of conversion rates), its
-- 95% Katz log interval, the two-proportion z-test's p-value, the smallest
-- uplift the sample detects with 80% power, and a hint while the result is
-- not significant.
CREATE FUNCTION personalisation.uplift_test(
    exposed bigint, converted bigint, control_exposed bigint, control_converted bigint,
    OUT uplift float8, OUT uplift_low float8, OUT uplift_high float8, OUT p_value float8,
    OUT min_detectable_uplift float8, OUT sample_hint text)
RETURNS record LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'uplift_test';

-- One line saying what an experiment's result lets the shop claim.
CREATE FUNCTION personalisation.uplift_claim(
    experiment text, metric text, units bigint, unit_name text,
    uplift float8, uplift_low float8, uplift_high float8, p_value float8)
RETURNS text LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'uplift_claim';

-- personalisation.ranking_attribution_window and
-- personalisation.repeat_order_window as intervals.
CREATE FUNCTION personalisation.ranking_attribution_window()
RETURNS interval LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ranking_attribution_window';

CREATE FUNCTION personalisation.repeat_order_window()
RETURNS interval LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'repeat_order_window';

-- Ranking exposures: one row per session, written by its first rank_* call
-- (at its `at`), with the arm it was ranked in.  rank_* keeps the session in
-- that arm and the ranking_holdout report counts it there, whatever
-- personalisation.ranking_holdout_percent becomes later.
CREATE TABLE personalisation.ranking_exposures (
    session_id text PRIMARY KEY,
    arm        text NOT NULL CHECK (arm IN ('personalised', 'control')),
    exposed_at timestamptz NOT NULL
);

-- A first ranking writes the session's exposure.
ALTER FUNCTION personalisation.rank_products(text, text[], boolean, timestamptz) VOLATILE;
ALTER FUNCTION personalisation.rank_categories(text, text[], boolean, timestamptz) VOLATILE;
ALTER FUNCTION personalisation.rank_modules(text, jsonb, boolean, timestamptz) VOLATILE;

-- Analysts: the ranking holdout's outcome.  Each session counts in the arm
-- recorded at its first ranking (ranking_exposures), sessions never ranked
-- not at all; it converted if it placed an order within
-- personalisation.ranking_attribution_window of that ranking.  uplift is
-- the arm's conversion rate over the control arm's, with its 95% interval
-- and p-value (uplift_test, docs/measurement.md).
CREATE OR REPLACE VIEW personalisation.ranking_holdout AS
WITH session_outcomes AS (
    SELECT e.arm, count(o.order_id) AS orders, sum(o.total) AS revenue
      FROM personalisation.ranking_exposures e
      LEFT JOIN personalisation.orders o
             ON o.session_id = e.session_id AND o.occurred_at >= e.exposed_at
            AND o.occurred_at < e.exposed_at + personalisation.ranking_attribution_window()
     GROUP BY e.session_id, e.arm
), arms AS (
    SELECT a.arm,
           count(so.arm) AS sessions,
           count(so.arm) FILTER (WHERE so.orders > 0) AS converted_sessions,
           coalesce(sum(so.orders), 0) AS orders,
           coalesce(sum(so.revenue), 0) AS revenue
      FROM (VALUES ('personalised'), ('control')) a (arm)
      LEFT JOIN session_outcomes so USING (arm)
     GROUP BY a.arm
)
SELECT a.arm, a.sessions, a.converted_sessions,
       a.converted_sessions::float8 / NULLIF(a.sessions, 0) AS conversion_rate,
       a.orders, a.revenue,
       (a.converted_sessions::float8 / NULLIF(a.sessions, 0)) /
       NULLIF(c.converted_sessions::float8 / NULLIF(c.sessions, 0), 0) AS uplift,
       round(a.revenue / NULLIF(a.sessions, 0), 2) AS revenue_per_session,
       u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM arms a
  JOIN arms c ON c.arm = 'control'
  LEFT JOIN LATERAL personalisation.uplift_test(a.sessions, a.converted_sessions,
                                                c.sessions, c.converted_sessions) u ON a.arm <> 'control'
 ORDER BY a.arm DESC;

-- Per abandoned-cart journey, arm and step (step NULL: the arm as a whole):
-- carts abandoned, messages sent, held (holdout) and delivered, carts
-- recovered and their revenue, and the recovery rate.  A cart is recovered
-- when its profile orders within personalisation.attribution_window after
-- abandonment; the first such order is the recovered revenue, credited to
-- the last step sent (or held) before it.  Each cart counts in the arm its
-- run recorded when the cart was declared abandoned.  Against the holdout
-- arm's row of the same step: the uplift of the recovery rate with its 95%
-- interval and p-value (uplift_test, docs/measurement.md).  Ordered by
-- journey, arm (treatment first) and step (the whole arm, then 1, 2, ...).
-- No personal data.  The post-purchase journeys have their own views
-- (post_purchase.sql).
CREATE OR REPLACE VIEW personalisation.journey_report AS
WITH runs AS (
    SELECT r.journey, r.arm, r.profile_id, r.run_id,
           rec.order_id IS NOT NULL AS recovered, rec.total AS revenue,
           (SELECT s.step FROM personalisation.journey_run_steps s
             WHERE s.profile_id = r.profile_id AND s.run_id = r.run_id
               AND s.outcome IN ('sent', 'held') AND s.done_at <= rec.occurred_at
             ORDER BY s.done_at DESC, s.step DESC LIMIT 1) AS credited_step
      FROM personalisation.journey_runs r
      JOIN personalisation.journeys j ON j.journey = r.journey AND j.trigger = 'cart_abandoned'
      LEFT JOIN LATERAL (
           SELECT o.order_id, o.total, o.occurred_at FROM personalisation.orders o
            WHERE o.profile_id = r.profile_id
              AND o.occurred_at >= r.abandoned_at
              AND o.occurred_at < r.abandoned_at + personalisation.attribution_window()
            ORDER BY o.occurred_at LIMIT 1) rec ON true
), arms AS (
    SELECT journey, arm, count(*) AS carts_abandoned,
           count(*) FILTER (WHERE recovered) AS carts_recovered,
           coalesce(sum(revenue), 0) AS recovered_revenue
      FROM runs GROUP BY journey, arm
), step_outcomes AS (
    SELECT s.journey, s.arm, s.step,
           count(*) FILTER (WHERE s.outcome = 'sent') AS messages_sent,
           count(*) FILTER (WHERE s.outcome = 'held') AS messages_held,
           count(*) FILTER (WHERE o.status = 'delivered') AS messages_delivered,
           count(*) FILTER (WHERE s.outcome = 'skipped') AS steps_skipped
      FROM personalisation.journey_run_steps s
      LEFT JOIN personalisation.outbox o
             ON o.message_id = s.message_id AND o.profile_id = s.profile_id
     GROUP BY s.journey, s.arm, s.step
), credited AS (
    SELECT journey, arm, credited_step AS step, count(*) AS carts_recovered,
           sum(revenue) AS recovered_revenue
      FROM runs WHERE recovered AND credited_step IS NOT NULL
     GROUP BY journey, arm, credited_step
), rows AS (
    SELECT a.journey, a.arm, NULL::int AS step, NULL::text AS template, a.carts_abandoned,
           coalesce(sum(so.messages_sent), 0)::bigint AS messages_sent,
           coalesce(sum(so.messages_held), 0)::bigint AS messages_held,
           coalesce(sum(so.messages_delivered), 0)::bigint AS messages_delivered,
           coalesce(sum(so.steps_skipped), 0)::bigint AS steps_skipped,
           a.carts_recovered, a.recovered_revenue
      FROM arms a
      LEFT JOIN step_outcomes so ON so.journey = a.journey AND so.arm = a.arm
     GROUP BY a.journey, a.arm, a.carts_abandoned, a.carts_recovered, a.recovered_revenue
    UNION ALL
    SELECT a.journey, a.arm, js.step, js.template, a.carts_abandoned,
           coalesce(so.messages_sent, 0), coalesce(so.messages_held, 0),
           coalesce(so.messages_delivered, 0), coalesce(so.steps_skipped, 0),
           coalesce(c.carts_recovered, 0), coalesce(c.recovered_revenue, 0)
      FROM arms a
      JOIN personalisation.journey_steps js ON js.journey = a.journey
      LEFT JOIN step_outcomes so ON so.journey = a.journey AND so.arm = a.arm AND so.step = js.step
      LEFT JOIN credited c ON c.journey = a.journey AND c.arm = a.arm AND c.step = js.step
)
SELECT r.journey, r.arm, r.step, r.template, r.carts_abandoned, r.messages_sent, r.messages_held,
       r.messages_delivered, r.steps_skipped, r.carts_recovered, r.recovered_revenue,
       round(r.carts_recovered::numeric / r.carts_abandoned, 4) AS recovery_rate,
       round(r.recovered_revenue / r.carts_abandoned, 2) AS revenue_per_cart,
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM rows r
  LEFT JOIN rows h ON h.journey = r.journey AND h.arm = 'holdout' AND h.step IS NOT DISTINCT FROM r.step
  LEFT JOIN LATERAL personalisation.uplift_test(r.carts_abandoned, r.carts_recovered,
                                                h.carts_abandoned, h.carts_recovered) u ON r.arm <> 'holdout'
 ORDER BY r.journey, r.arm DESC, r.step NULLS FIRST;

-- Order value after cross-sell messages: per post-purchase journey, the
-- standing orders (not refunded) its profiles placed within
-- personalisation.attribution_window after a cross-sell message (a step with
-- recommendations) was sent (treatment) or held (holdout), each order
-- counted once, against every profile's first standing order
-- (first_orders).  Then, per arm, the repeat orders: of the customers the
-- journey enrolled (each in the arm of its first run, recorded when that
-- order enrolled it), how many placed a further standing order within
-- personalisation.repeat_order_window of that order, the repeat-order rate,
-- the revenue of those orders per customer, and against the holdout the
-- uplift of the repeat-order rate with its 95% interval and p-value
-- (uplift_test, docs/measurement.md).  No personal data.
CREATE OR REPLACE VIEW personalisation.post_purchase_order_value AS
WITH standing AS (
    SELECT o.order_id, o.profile_id, o.occurred_at, o.total
      FROM personalisation.orders o WHERE o.refunded_at IS NULL
), first_orders AS (
    SELECT DISTINCT ON (profile_id) order_id, total
      FROM standing ORDER BY profile_id, occurred_at, order_id
), cross_sell AS (
    SELECT s.journey, s.arm, s.profile_id, s.done_at
      FROM personalisation.journey_run_steps s
      JOIN personalisation.journeys j ON j.journey = s.journey AND j.trigger = 'purchase'
      JOIN personalisation.journey_steps js
        ON js.journey = s.journey AND js.step = s.step AND 'recommendations' = ANY (js.blocks)
     WHERE s.outcome IN ('sent', 'held')
), followed AS (
    SELECT DISTINCT c.journey, c.arm, o.order_id, o.total
      FROM cross_sell c
      JOIN standing o ON o.profile_id = c.profile_id AND o.occurred_at > c.done_at
                     AND o.occurred_at < c.done_at + personalisation.attribution_window()
), messages AS (
    SELECT journey, arm, count(*) AS messages FROM cross_sell GROUP BY journey, arm
), enrolled AS (
    SELECT DISTINCT ON (r.journey, r.profile_id) r.journey, r.arm, r.profile_id, r.order_id, r.anchor_at
      FROM personalisation.journey_runs r
      JOIN personalisation.journeys j ON j.journey = r.journey AND j.trigger = 'purchase'
     ORDER BY r.journey, r.profile_id, r.anchor_at, r.run_id
), repeats AS (
    SELECT e.journey, e.arm, e.profile_id, count(o.order_id) AS orders, sum(o.total) AS revenue
      FROM enrolled e
      LEFT JOIN standing o ON o.profile_id = e.profile_id AND o.order_id <> e.order_id
                          AND o.occurred_at >= e.anchor_at
                          AND o.occurred_at < e.anchor_at + personalisation.repeat_order_window()
     GROUP BY e.journey, e.arm, e.profile_id
), customers AS (
    SELECT journey, arm, count(*) AS customers,
           count(*) FILTER (WHERE orders > 0) AS repeat_customers,
           coalesce(sum(revenue), 0) AS repeat_revenue
      FROM repeats GROUP BY journey, arm
)
SELECT NULL::text AS journey, 'first_orders'::text AS cohort, NULL::bigint AS messages,
       count(*) AS orders, coalesce(sum(total), 0) AS order_value,
       round(avg(total), 2) AS average_order_value,
       NULL::bigint AS customers, NULL::bigint AS repeat_customers, NULL::numeric AS repeat_order_rate,
       NULL::numeric AS revenue_per_customer, NULL::float8 AS uplift, NULL::float8 AS uplift_low,
       NULL::float8 AS uplift_high, NULL::float8 AS p_value, NULL::float8 AS min_detectable_uplift,
       NULL::text AS sample_hint
  FROM first_orders
UNION ALL
SELECT m.journey, m.arm, m.messages, count(f.order_id), coalesce(sum(f.total), 0), round(avg(f.total), 2),
       c.customers, c.repeat_customers, round(c.repeat_customers::numeric / c.customers, 4),
       round(c.repeat_revenue / c.customers, 2),
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM messages m
  LEFT JOIN followed f ON f.journey = m.journey AND f.arm = m.arm
  LEFT JOIN customers c ON c.journey = m.journey AND c.arm = m.arm
  LEFT JOIN customers h ON h.journey = m.journey AND h.arm = 'holdout'
  LEFT JOIN LATERAL personalisation.uplift_test(c.customers, c.repeat_customers,
                                                h.customers, h.repeat_customers) u ON m.arm <> 'holdout'
 GROUP BY m.journey, m.arm, m.messages, c.customers, c.repeat_customers, c.repeat_revenue,
          u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
 ORDER BY journey NULLS FIRST, cohort DESC;

-- Every profile with a standing order: its first one, its first subscription
-- start, its arm in the subscription-offer journeys (that of its first
-- offer run; not_offered without one), the revenue of its standing orders
-- in the 30 days from the first, and whether it was still a customer in the
-- retention window, the 30 days up to the first order's 365th day: a
-- standing order placed in (first + 335 days, first + 365 days], or a
-- subscription active at some point of it.  The base of the two views below.
CREATE OR REPLACE VIEW personalisation.subscription_customers AS
SELECT c.profile_id, c.first_order_at,
       (SELECT min(s.started_at) FROM personalisation.subscriptions s
         WHERE s.profile_id = c.profile_id) AS first_subscribed_at,
       coalesce((SELECT r.arm FROM personalisation.journey_runs r
                   JOIN personalisation.journeys j ON j.journey = r.journey
                  WHERE r.profile_id = c.profile_id AND j.trigger = 'subscribable_purchase'
                  ORDER BY r.run_id LIMIT 1), 'not_offered') AS offer_arm,
       (SELECT coalesce(sum(o.total), 0) FROM personalisation.orders o
         WHERE o.profile_id = c.profile_id AND o.refunded_at IS NULL
           AND o.occurred_at >= c.first_order_at
           AND o.occurred_at < c.first_order_at + interval '30 days') AS revenue_30_days,
       EXISTS (SELECT FROM personalisation.orders o
                WHERE o.profile_id = c.profile_id AND o.refunded_at IS NULL
                  AND o.occurred_at > c.first_order_at + interval '335 days'
                  AND o.occurred_at <= c.first_order_at + interval '365 days')
       OR EXISTS (SELECT FROM personalisation.subscriptions s
                   WHERE s.profile_id = c.profile_id
                     AND s.started_at <= c.first_order_at + interval '365 days'
                     AND (s.stopped_at IS NULL
                          OR s.stopped_at > c.first_order_at + interval '335 days')) AS retained_12_months
  FROM (SELECT o.profile_id, min(o.occurred_at) AS first_order_at
          FROM personalisation.orders o WHERE o.refunded_at IS NULL
         GROUP BY o.profile_id) c;

-- Subscription uptake per offer arm (arm NULL: everyone): of the customers
-- whose first standing order is at least 30 days old, how many first
-- subscribed within 30 days of it (or before it), how many later, how many
-- never, and the two uptake rates; the revenue of their standing orders in
-- those 30 days per customer; and the 12-month retention of the arm's
-- customers whose first standing order is at least 365 days old (retained
-- as in subscription_retention below).  Against the holdout arm: the uplift
-- of the uptake within 30 days and of the retention, each with its 95%
-- interval and p-value (uplift_test, docs/measurement.md).  Each customer
-- counts in the arm its first offer run recorded.  No personal data.
CREATE OR REPLACE VIEW personalisation.subscription_uptake AS
WITH arms AS (
    SELECT offer_arm AS arm, count(*) AS customers,
           count(*) FILTER (WHERE first_subscribed_at <= first_order_at + interval '30 days')
               AS subscribed_within_30_days,
           count(*) FILTER (WHERE first_subscribed_at > first_order_at + interval '30 days')
               AS subscribed_later,
           count(*) FILTER (WHERE first_subscribed_at IS NULL) AS never_subscribed,
           sum(revenue_30_days) AS revenue_30_days,
           count(*) FILTER (WHERE first_order_at + interval '365 days' <= pg_catalog.now())
               AS retention_customers,
           count(*) FILTER (WHERE first_order_at + interval '365 days' <= pg_catalog.now()
                              AND retained_12_months) AS retained
      FROM personalisation.subscription_customers
     WHERE first_order_at + interval '30 days' <= pg_catalog.now()
     GROUP BY ROLLUP (offer_arm)
)
SELECT a.arm, a.customers, a.subscribed_within_30_days, a.subscribed_later, a.never_subscribed,
       round(a.subscribed_within_30_days::numeric / a.customers, 4) AS uptake_within_30_days,
       round(a.subscribed_later::numeric / a.customers, 4) AS uptake_later,
       round(a.revenue_30_days / a.customers, 2) AS revenue_per_customer,
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint,
       a.retention_customers, a.retained,
       round(a.retained::numeric / NULLIF(a.retention_customers, 0), 4) AS retention_rate,
       t.uplift AS retention_uplift, t.uplift_low AS retention_uplift_low,
       t.uplift_high AS retention_uplift_high, t.p_value AS retention_p_value
  FROM arms a
  LEFT JOIN arms h ON h.arm = 'holdout'
  LEFT JOIN LATERAL personalisation.uplift_test(a.customers, a.subscribed_within_30_days,
                                                h.customers, h.subscribed_within_30_days) u
         ON a.arm = 'treatment'
  LEFT JOIN LATERAL personalisation.uplift_test(a.retention_customers, a.retained,
                                                h.retention_customers, h.retained) t
         ON a.arm = 'treatment'
 ORDER BY a.arm DESC NULLS LAST;

-- 12-month retention by subscription timing: of the customers whose first
-- standing order is at least 365 days old, grouped by when they first
-- subscribed (within_30_days of the first order or before it,
-- after_30_days but within the 365, or never within the 365), how many were
-- still customers in the retention window (subscription_customers).
-- No personal data.
CREATE OR REPLACE VIEW personalisation.subscription_retention AS
SELECT timing AS subscription_timing, count(*) AS customers,
       count(*) FILTER (WHERE retained) AS retained,
       round(count(*) FILTER (WHERE retained)::numeric / count(*), 4) AS retention_rate
  FROM (SELECT CASE WHEN c.first_subscribed_at <= c.first_order_at + interval '30 days' THEN 'within_30_days'
                    WHEN c.first_subscribed_at <= c.first_order_at + interval '365 days' THEN 'after_30_days'
                    ELSE 'never' END AS timing,
               c.retained_12_months AS retained
          FROM personalisation.subscription_customers c
         WHERE c.first_order_at + interval '365 days' <= pg_catalog.now()) t
 GROUP BY timing;

-- What the shop can claim today (docs/measurement.md), read from the
-- analyst reports.  uplift_arms has one row per experiment, arm and step
-- (step NULL: the arm as a whole; steps for the abandoned-cart journeys):
--   ranking                conversion of ranked sessions (ranking_holdout)
--   each cart journey      recovery of abandoned carts (journey_report)
--   each purchase journey  repeat orders of enrolled customers (post_purchase_order_value)
--   subscription_offer     uptake within 30 days, and 12-month retention (subscription_uptake)
-- with the units exposed and converted, and on the treated arm's rows the
-- uplift against control.  No personal data.
CREATE VIEW personalisation.uplift_arms AS
SELECT 1 AS sort, 'ranking'::text AS experiment, 'conversion'::text AS metric, 'sessions'::text AS unit,
       r.arm, r.arm <> 'control' AS treated, NULL::int AS step,
       r.sessions AS exposed, r.converted_sessions AS converted,
       CASE WHEN r.arm <> 'control' THEN r.uplift END AS uplift, r.uplift_low, r.uplift_high, r.p_value
  FROM personalisation.ranking_holdout r
UNION ALL
SELECT 2, j.journey, 'recovery', 'carts', j.arm, j.arm = 'treatment', j.step,
       j.carts_abandoned, j.carts_recovered, j.uplift, j.uplift_low, j.uplift_high, j.p_value
  FROM personalisation.journey_report j
UNION ALL
SELECT 3, v.journey, 'repeat orders', 'customers', v.cohort, v.cohort = 'treatment', NULL,
       coalesce(v.customers, 0), coalesce(v.repeat_customers, 0), v.uplift, v.uplift_low, v.uplift_high, v.p_value
  FROM personalisation.post_purchase_order_value v
 WHERE v.cohort IN ('treatment', 'holdout')
UNION ALL
SELECT 4, 'subscription_offer', 'uptake', 'customers', s.arm, s.arm = 'treatment', NULL,
       s.customers, s.subscribed_within_30_days, s.uplift, s.uplift_low, s.uplift_high, s.p_value
  FROM personalisation.subscription_uptake s
 WHERE s.arm IN ('treatment', 'holdout')
UNION ALL
SELECT 5, 'subscription_offer', '12-month retention', 'customers', s.arm, s.arm = 'treatment', NULL,
       s.retention_customers, s.retained, s.retention_uplift, s.retention_uplift_low,
       s.retention_uplift_high, s.retention_p_value
  FROM personalisation.subscription_uptake s
 WHERE s.arm IN ('treatment', 'holdout');

-- One row per experiment: the treated arm's uplift with its interval, the
-- units exposed in both arms, whether the interval excludes 1, and the
-- claim in words (uplift_claim).
CREATE FUNCTION personalisation.uplift_summary()
RETURNS TABLE (experiment text, metric text, unit text, units bigint, uplift float8,
               uplift_low float8, uplift_high float8, p_value float8, significant boolean, claim text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT t.experiment, t.metric, t.unit, pg_catalog.sum(a.exposed)::bigint, t.uplift, t.uplift_low,
           t.uplift_high, t.p_value,
           t.uplift_low OPERATOR(pg_catalog.>) 1::float8 OR t.uplift_high OPERATOR(pg_catalog.<) 1::float8,
           personalisation.uplift_claim(t.experiment, t.metric, pg_catalog.sum(a.exposed)::bigint, t.unit,
                                        t.uplift, t.uplift_low, t.uplift_high, t.p_value)
      FROM personalisation.uplift_arms t
      JOIN personalisation.uplift_arms a
        ON a.sort OPERATOR(pg_catalog.=) t.sort AND a.experiment OPERATOR(pg_catalog.=) t.experiment
       AND a.metric OPERATOR(pg_catalog.=) t.metric AND a.step IS NULL
     WHERE t.treated AND t.step IS NULL
     GROUP BY t.sort, t.experiment, t.metric, t.unit, t.uplift, t.uplift_low, t.uplift_high, t.p_value
     ORDER BY t.sort, t.experiment, t.metric
$$;

-- The same as a self-contained HTML page (inline SVG, no external assets):
-- the claims, each experiment's uplift with its interval, the funnel per
-- arm and the recovery per step.
CREATE FUNCTION personalisation.uplift_report_html()
RETURNS text LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'uplift_report_html';

REVOKE ALL ON TABLE personalisation.ranking_exposures FROM PUBLIC;
REVOKE ALL ON TABLE personalisation.uplift_arms FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.uplift_test(bigint, bigint, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.uplift_claim(text, text, bigint, text, float8, float8, float8, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.ranking_attribution_window() FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.repeat_order_window() FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.uplift_summary() FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.uplift_report_html() FROM PUBLIC;
ALTER FUNCTION personalisation.uplift_summary() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION personalisation.uplift_report_html() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
GRANT EXECUTE ON FUNCTION personalisation.uplift_test(bigint, bigint, bigint, bigint) TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.uplift_claim(text, text, bigint, text, float8, float8, float8, float8)
    TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.ranking_attribution_window() TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.repeat_order_window() TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.uplift_summary() TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.uplift_report_html() TO personalisation_analyst;
GRANT SELECT ON TABLE personalisation.uplift_arms TO personalisation_analyst;
INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
    ('ranking_attribution_window', 'personalisation_analyst', 'caller'),
    ('repeat_order_window',  'personalisation_analyst', 'caller'),
    ('uplift_test',          'personalisation_analyst', 'caller'),
    ('uplift_claim',         'personalisation_analyst', 'caller'),
    ('uplift_summary',       'personalisation_analyst', 'owner'),
    ('uplift_report_html',   'personalisation_analyst', 'owner'),
    ('uplift_arms',          'personalisation_analyst', 'owner');
