-- ranking_eval_data.sql: the shop and the crowd for bench/ranking_eval.sh.
-- 5 departments of 4 categories, 30 products each (600); category c is
-- wanted in proportion to 1 / c^0.8, product i of a category to 1 / i (a
-- popularity skew); :crowd page views of other visitors on the day before
-- the evaluation make the popularity prior (refresh_popularity).
SET client_min_messages = warning;
SELECT setseed(:seed);
INSERT INTO personalisation.categories (category_id, parent_id, name)
SELECT 'dept-' || d, NULL, 'Department ' || d FROM generate_series(1, 5) d;
INSERT INTO personalisation.categories (category_id, parent_id, name)
SELECT 'cat-' || c, 'dept-' || ((c - 1) / 4 + 1), 'Category ' || c FROM generate_series(1, 20) c;
INSERT INTO personalisation.products (product_id, category_id, brand, in_stock)
SELECT 'p-' || c || '-' || i, 'cat-' || c, 'brand-' || c || '-' || (i % 3), true
  FROM generate_series(1, 20) c, generate_series(1, 30) i;

CREATE TABLE eval.categories AS
SELECT c, 'cat-' || c AS category_id, w, sum(w) OVER (ORDER BY c) / sum(w) OVER () AS upto
  FROM (SELECT c, 1 / pow(c, 0.8) AS w FROM generate_series(1, 20) c) x;
CREATE TABLE eval.products AS
SELECT c, i, 'p-' || c || '-' || i AS product_id,
       sum(1.0 / i) OVER (PARTITION BY c ORDER BY i) / sum(1.0 / i) OVER (PARTITION BY c) AS upto
  FROM generate_series(1, 20) c, generate_series(1, 30) i;

-- draw_category(u) is the category a uniform draw u lands on (by category popularity);
-- draw_product(c, u) the product of category c.
CREATE FUNCTION eval.draw_category(u float8) RETURNS int LANGUAGE sql STABLE AS
  $$SELECT min(c) FROM eval.categories WHERE upto >= u$$;
CREATE FUNCTION eval.draw_product(cat int, u float8) RETURNS text LANGUAGE sql STABLE AS
  $$SELECT product_id FROM eval.products WHERE c = cat AND upto >= u ORDER BY i LIMIT 1$$;

SET personalisation.affinity_tracking = off;
SELECT personalisation.track_page_view('crowd-' || n, NULL,
         eval.draw_product(eval.draw_category(random()), random()),
         :'start'::timestamptz - interval '1 day' + n * interval '1 second')
  FROM generate_series(1, :crowd) n;
RESET personalisation.affinity_tracking;
SELECT * FROM personalisation.refresh_popularity(:'start'::timestamptz);
CREATE TABLE eval.candidates AS
SELECT array_agg(product_id ORDER BY product_id) AS ids FROM eval.products;
