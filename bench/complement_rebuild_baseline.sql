-- The plain-SQL rebuild the benchmark measures rebuild_complementarity()
-- against: the same three tables (copies with the same columns, collations
-- and indexes), filled by a self-join GROUP BY over the order lines.
BEGIN;
TRUNCATE bench_pairs, bench_products, bench_totals;
INSERT INTO bench_pairs (product_a, product_b, co_orders)
SELECT x.product_id, y.product_id, count(*)
  FROM personalisation.orders o
  JOIN personalisation.order_lines x ON x.order_id = o.order_id
  JOIN personalisation.order_lines y ON y.order_id = o.order_id
                                    AND x.product_id COLLATE "C" < y.product_id COLLATE "C"
 WHERE o.refunded_at IS NULL
 GROUP BY 1, 2;
INSERT INTO bench_products (product_id, stripe, orders)
SELECT l.product_id, 0, count(*)
  FROM personalisation.orders o JOIN personalisation.order_lines l ON l.order_id = o.order_id
 WHERE o.refunded_at IS NULL
 GROUP BY 1;
INSERT INTO bench_totals (stripe, orders)
SELECT 0, count(DISTINCT o.order_id)
  FROM personalisation.orders o JOIN personalisation.order_lines l ON l.order_id = o.order_id
 WHERE o.refunded_at IS NULL;
COMMIT;
