-- The recommendation evaluation's table, from evalres.results: per level and
-- method the cases, hit@5 and hit@10 (a target among the first 5 or 10) with
-- Wilson 95% intervals, nDCG@10 with a normal 95% interval, answered (the
-- share of cases given at least one recommendation, Wilson 95%), catalogue
-- coverage (distinct products recommended over the catalogue) and hit@10 over
-- the baseline's (popularity for the basket methods, cross_sell_popular for
-- the cross-sell); then one line with recommend_for_cart's ratio at every
-- level against the target.
CREATE OR REPLACE FUNCTION evalres.wilson(k numeric, n numeric) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN n = 0 THEN '-' ELSE
           to_char(k / n, 'FM0.000') || ' [' ||
           to_char((k / n + 1.92 / n - 1.96 * sqrt(k / n * (1 - k / n) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n), 'FM0.000') || ',' ||
           to_char((k / n + 1.92 / n + 1.96 * sqrt(k / n * (1 - k / n) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n), 'FM0.000') || ']' END
$$;
CREATE TEMP VIEW eval_summary AS
WITH scored AS (
    SELECT r.level, r.method, r.case_id, r.recommended,
           (r.ranks[1] <= 5)::int AS hit5, coalesce(r.ranks[1] <= 10, false)::int AS hit10,
           coalesce((SELECT sum(1 / log(2, k + 1)) FROM unnest(r.ranks) k WHERE k <= 10), 0)
             / (SELECT sum(1 / log(2, k + 1)) FROM generate_series(1, least(r.targets, 10)) k) AS ndcg,
           (cardinality(r.recommended) > 0)::int AS answered
      FROM evalres.results r WHERE r.targets > 0),
summary AS (
    SELECT level, method, count(*) AS cases, sum(coalesce(hit5, 0)) AS hit5, sum(hit10) AS hit10,
           avg(ndcg) AS ndcg, stddev_samp(ndcg) AS ndcg_sd, sum(answered) AS answered,
           (SELECT count(DISTINCT p) FROM scored s2, unnest(s2.recommended) p
             WHERE s2.level = s.level AND s2.method = s.method)::numeric
             / (SELECT c.products FROM evalres.catalogue c WHERE c.level = s.level) AS coverage
      FROM scored s GROUP BY level, method)
SELECT * FROM summary;

SELECT s.level, s.method, s.cases,
       evalres.wilson(s.hit5, s.cases) AS "hit@5 [95%]",
       evalres.wilson(s.hit10, s.cases) AS "hit@10 [95%]",
       to_char(s.ndcg, 'FM0.000') || ' ±' || to_char(1.96 * s.ndcg_sd / sqrt(s.cases), 'FM0.000') AS "nDCG@10",
       evalres.wilson(s.answered, s.cases) AS "answered [95%]",
       to_char(s.coverage, 'FM0.000') AS coverage,
       to_char(s.hit10::numeric / nullif(b.hit10, 0), 'FM0.00') || 'x' AS "hit@10 / baseline"
  FROM eval_summary s
  LEFT JOIN eval_summary b ON b.level = s.level
   AND b.method = CASE WHEN s.method LIKE 'cross_sell%' THEN 'cross_sell_popular' ELSE 'popularity' END
 ORDER BY s.level, s.method LIKE 'cross_sell%', s.method;

\pset tuples_only on
\pset format unaligned
SELECT 'recommend_for_cart hit@10 / popularity: '
       || string_agg(s.level || ' ' || to_char(s.hit10::numeric / nullif(b.hit10, 0), 'FM0.00') || 'x', ', ' ORDER BY s.level)
       || ' (target >= 1.15x at every level)'
  FROM eval_summary s JOIN eval_summary b ON b.level = s.level AND b.method = 'popularity'
 WHERE s.method = 'recommend_for_cart';
