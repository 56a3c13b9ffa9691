-- What the shop can claim today (docs/measurement.md): one row per
-- experiment, read from the analyst reports, with the claim in words.
--   ranking             conversion of sessions ranked (ranking_holdout)
--   each cart journey   recovery of abandoned carts (journey_report)
--   each purchase journey  repeat orders of enrolled customers (post_purchase_order_value)
--   subscription offers    uptake within 30 days, and 12-month retention (subscription_uptake)
CREATE FUNCTION personalisation.uplift_summary()
RETURNS TABLE (experiment text, metric text, unit text, units bigint, uplift float8,
               uplift_low float8, uplift_high float8, p_value float8, significant boolean, claim text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH results AS (
        SELECT 1 AS sort, 'ranking'::text AS experiment, 'conversion'::text AS metric, 'sessions'::text AS unit,
               (SELECT pg_catalog.sum(a.sessions) FROM personalisation.ranking_holdout a)::bigint AS units,
               r.uplift, r.uplift_low, r.uplift_high, r.p_value
          FROM personalisation.ranking_holdout r WHERE r.arm OPERATOR(pg_catalog.=) 'personalised'
        UNION ALL
        SELECT 2, j.journey, 'recovery', 'carts',
               (SELECT pg_catalog.sum(a.carts_abandoned) FROM personalisation.journey_report a
                 WHERE a.journey OPERATOR(pg_catalog.=) j.journey AND a.step IS NULL)::bigint,
               j.uplift, j.uplift_low, j.uplift_high, j.p_value
          FROM personalisation.journey_report j
         WHERE j.arm OPERATOR(pg_catalog.=) 'treatment' AND j.step IS NULL
        UNION ALL
        SELECT 3, v.journey, 'repeat orders', 'customers',
               (SELECT pg_catalog.sum(a.customers) FROM personalisation.post_purchase_order_value a
                 WHERE a.journey OPERATOR(pg_catalog.=) v.journey)::bigint,
               v.uplift, v.uplift_low, v.uplift_high, v.p_value
          FROM personalisation.post_purchase_order_value v
         WHERE v.cohort OPERATOR(pg_catalog.=) 'treatment'
        UNION ALL
        SELECT 4, 'subscription_offer', 'uptake', 'customers',
               (SELECT pg_catalog.sum(a.customers) FROM personalisation.subscription_uptake a
                 WHERE a.arm OPERATOR(pg_catalog.=) ANY (ARRAY['treatment', 'holdout']))::bigint,
               s.uplift, s.uplift_low, s.uplift_high, s.p_value
          FROM personalisation.subscription_uptake s WHERE s.arm OPERATOR(pg_catalog.=) 'treatment'
        UNION ALL
        SELECT 5, 'subscription_offer', '12-month retention', 'customers',
               (SELECT pg_catalog.sum(a.retention_customers) FROM personalisation.subscription_uptake a
                 WHERE a.arm OPERATOR(pg_catalog.=) ANY (ARRAY['treatment', 'holdout']))::bigint,
               s.retention_uplift, s.retention_uplift_low, s.retention_uplift_high, s.retention_p_value
          FROM personalisation.subscription_uptake s WHERE s.arm OPERATOR(pg_catalog.=) 'treatment'
    )
    SELECT r.experiment, r.metric, r.unit, coalesce(r.units, 0), r.uplift, r.uplift_low,
           r.uplift_high, r.p_value,
           r.uplift_low OPERATOR(pg_catalog.>) 1::float8 OR r.uplift_high OPERATOR(pg_catalog.<) 1::float8,
           personalisation.uplift_claim(r.experiment, r.metric, coalesce(r.units, 0), r.unit,
                                        r.uplift, r.uplift_low, r.uplift_high, r.p_value)
      FROM results r
     ORDER BY r.sort, r.experiment, r.metric
$$;
