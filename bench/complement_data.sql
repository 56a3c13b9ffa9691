-- Synthetic order history for the complementarity benchmarks, over the
-- 20,000-product catalogue of common.sh (p1 .. p20000), read as 2,000
-- families of 10: orders :first .. :last of 1-8 lines each.  An order picks a
-- family (skewed towards the first ones) and takes each line from it with
-- probability 0.7, otherwise from the whole catalogue (skewed towards the
-- first products), so that pairs have the long-tailed distribution of a real
-- shop.  Orders are written straight to the tables, as a bulk load of history
-- would be, spread over the last 90 days.
INSERT INTO personalisation.orders (order_id, profile_id, session_id, occurred_at, line_count, total)
SELECT 'o' || i, i % 50000, 's' || i % 50000, now() - random() * interval '90 days', 0, 0
  FROM generate_series(:first, :last) AS i;

INSERT INTO personalisation.order_lines (order_id, product_id, quantity, unit_price)
SELECT 'o' || o.i,
       'p' || (1 + CASE WHEN random() < 0.7 THEN o.family * 10 + (o.start + 3 * j) % 10
                        ELSE floor(20000 * random() ^ 3)::int END),
       1, 10
  FROM (SELECT i, floor(2000 * random() ^ 2)::int AS family, floor(random() * 10)::int AS start,
               1 + floor(random() * 8)::int AS lines
          FROM generate_series(:first, :last) AS i) AS o,
       LATERAL generate_series(0, o.lines - 1) AS j
ON CONFLICT DO NOTHING;

VACUUM ANALYZE personalisation.orders;
VACUUM ANALYZE personalisation.order_lines;
