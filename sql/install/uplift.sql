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
