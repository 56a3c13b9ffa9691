-- ranking_eval.sql: one pass of bench/ranking_eval.sh with the settings it
-- is given (:label names them; :half_life and :shrinkage, 'default' for the
-- build's own).  Two scenarios, each with :visitors new visitors:
--  * stray: the first view is of a product of a category other than the
--    visitor's planted interest (drawn by category popularity), the next
--    ones of the planted category (with probability 0.8; else of any
--    category); after 1, 2, 3 and 5 views, the share of the planted
--    category's products among the top 10 of rank_products over all 600
--    products (precision@10), and the share of the stray view's category;
--  * shift: 8 views of category A, then views of another category B; the
--    number of B views until B's products are at least half the top 10.
-- Views are :gap apart.  Each pass is measured for the ranking and for
-- "the session's most-viewed category first" (ties: the most recent
-- category first; within and beyond: popularity).
SET client_min_messages = warning;
SET personalisation.ranking_holdout_percent = 0;
SELECT CASE WHEN :'half_life' <> 'default' THEN set_config('personalisation.session_half_life', :'half_life', false) END;
SELECT CASE WHEN :'shrinkage' <> 'default' THEN set_config('personalisation.session_shrinkage', :'shrinkage', false) END;
SELECT setseed(:seed);

CREATE TEMP TABLE visits AS
WITH v AS (
  SELECT n, eval.draw_category(random()) AS planted, 1 + floor(random() * 19)::int AS offset_ FROM generate_series(1, :visitors) n)
SELECT 'stray' AS scenario, n, step,
       CASE WHEN step = 1 THEN 1 + (planted - 1 + offset_) % 20 ELSE planted END AS wanted, planted
  FROM v, generate_series(1, 5) step
UNION ALL
SELECT 'shift', n, step, CASE WHEN step <= 8 THEN 1 + (planted - 1 + offset_) % 20 ELSE planted END, planted
  FROM v, generate_series(1, 24) step;
-- a non-stray view strays anyway with probability 0.2
UPDATE visits SET wanted = eval.draw_category(random()) WHERE scenario = 'stray' AND step > 1 AND random() < 0.2;
ALTER TABLE visits ADD product_id text, ADD at timestamptz, ADD category_id text;
UPDATE visits SET product_id = eval.draw_product(wanted, random()), category_id = 'cat-' || wanted,
                  at = :'start'::timestamptz + n * interval '1 second' + step * :'gap'::interval;

-- top10_counting(scenario, n, step): the 10 products "most-viewed category first" puts on top.
CREATE FUNCTION pg_temp.top10_counting(scen text, visitor int, upto int) RETURNS text[] LANGUAGE sql AS $$
  WITH seen AS (SELECT category_id, count(*) AS views, max(step) AS last
                  FROM visits WHERE scenario = scen AND n = visitor AND step <= upto GROUP BY category_id)
  SELECT (array_agg(p.product_id ORDER BY coalesce(s.views, 0) DESC, coalesce(s.last, 0) DESC,
                    coalesce(pp.score, 0) DESC, p.product_id))[1:10]
    FROM personalisation.products p LEFT JOIN seen s USING (category_id)
    LEFT JOIN personalisation.product_popularity pp USING (product_id)
$$;

CREATE TEMP TABLE measured (scenario text, n int, step int, method text, precision float8, stray float8);
DO $$
DECLARE
  v record;
  ranked text[];
  session text;
BEGIN
  FOR v IN SELECT * FROM visits ORDER BY scenario, n, step LOOP
    session := v.scenario || '-' || current_setting('personalisation.session_half_life') || '-'
               || coalesce(current_setting('personalisation.session_shrinkage', true), 'none') || '-' || v.n;
    PERFORM personalisation.track_page_view(session, NULL, v.product_id, v.at);
    IF v.scenario = 'shift' AND v.step <= 8 OR v.scenario = 'stray' AND v.step = 4 THEN
      CONTINUE;
    END IF;
    SELECT (array_agg(r.product_id ORDER BY r.position))[1:10] INTO ranked
      FROM personalisation.rank_products(session, (SELECT ids FROM eval.candidates), false,
                                         v.at + interval '10 seconds') r;
    INSERT INTO measured
    SELECT v.scenario, v.n, v.step, m.method,
           (SELECT count(*) FROM unnest(m.top) t JOIN personalisation.products p ON p.product_id = t
             WHERE p.category_id = 'cat-' || v.planted) / 10.0,
           (SELECT count(*) FROM unnest(m.top) t JOIN personalisation.products p ON p.product_id = t
             WHERE p.category_id = (SELECT w.category_id FROM visits w
                                     WHERE w.scenario = v.scenario AND w.n = v.n AND w.step = 1)) / 10.0
      FROM (VALUES ('ranking', ranked), ('most-viewed category first', pg_temp.top10_counting(v.scenario, v.n, v.step))) m (method, top);
  END LOOP;
END $$;

INSERT INTO evalres.precision
SELECT :'label', method, step, count(*), avg(precision), stddev_samp(precision), avg(stray)
  FROM measured WHERE scenario = 'stray' GROUP BY method, step;
-- views of B until B holds half the top 10 (17 when it never does within 16)
INSERT INTO evalres.shift
SELECT :'label', method, n, coalesce(min(step) FILTER (WHERE precision >= 0.5) - 8, 17)
  FROM measured WHERE scenario = 'shift' GROUP BY method, n;
