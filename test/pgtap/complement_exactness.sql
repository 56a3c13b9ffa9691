-- Complementarity is exact: a few hundred random orders (some over the
-- basket cap), then refunds, then a window; at every step each pair's
-- co_orders, confidence, lift and jaccard as also_bought reports them equal
-- a plain-SQL computation from the order tables, and the incremental counts
-- equal what rebuild_complementarity() computes from the history.
BEGIN;
SELECT plan(16);

SET LOCAL personalisation.complement_min_co_orders = 1;
SET LOCAL personalisation.complement_basket_cap = 6;
SELECT personalisation.rebuild_complementarity();

-- The plain-SQL definition: counted orders are those not refunded and placed
-- since `since`; pairs are taken among each order's `cap` products with the
-- smallest hashtextextended(product_id, hashtext(order_id)).
CREATE FUNCTION pg_temp.counted_lines(since timestamptz)
RETURNS TABLE (order_id text, product_id text) LANGUAGE sql AS $$
    SELECT l.order_id, l.product_id
      FROM personalisation.orders o JOIN personalisation.order_lines l ON l.order_id = o.order_id
     WHERE o.refunded_at IS NULL AND o.occurred_at >= since
$$;

CREATE FUNCTION pg_temp.expected_pairs(since timestamptz, cap int)
RETURNS TABLE (product_a text, product_b text, co_orders bigint) LANGUAGE sql AS $$
    WITH kept AS (
        SELECT order_id, product_id
          FROM (SELECT order_id, product_id,
                       row_number() OVER (PARTITION BY order_id
                                          ORDER BY hashtextextended(product_id, hashtext(order_id)),
                                                   product_id COLLATE "C") AS draw
                  FROM pg_temp.counted_lines(since)) AS d
         WHERE draw <= cap)
    SELECT x.product_id, y.product_id, count(*)
      FROM kept x JOIN kept y ON y.order_id = x.order_id AND x.product_id COLLATE "C" < y.product_id COLLATE "C"
     GROUP BY 1, 2
$$;

CREATE FUNCTION pg_temp.expected_measures(since timestamptz, cap int)
RETURNS TABLE (product text, other text, co_orders bigint, confidence float8, lift float8, jaccard float8)
LANGUAGE sql AS $$
    WITH per_product AS (
        SELECT product_id, count(*) AS orders FROM pg_temp.counted_lines(since) GROUP BY product_id),
    total AS (SELECT count(DISTINCT order_id) AS orders FROM pg_temp.counted_lines(since)),
    directed AS (
        SELECT product_a AS product, product_b AS other, co_orders FROM pg_temp.expected_pairs(since, cap)
        UNION ALL
        SELECT product_b, product_a, co_orders FROM pg_temp.expected_pairs(since, cap))
    SELECT d.product, d.other, d.co_orders,
           d.co_orders::float8 / px.orders,
           (d.co_orders::float8 / px.orders) / (py.orders::float8 / total.orders),
           d.co_orders::float8 / (px.orders + py.orders - d.co_orders)
      FROM directed d
      JOIN per_product px ON px.product_id = d.product
      JOIN per_product py ON py.product_id = d.other
      JOIN personalisation.products p ON p.product_id = d.other AND p.in_stock
     CROSS JOIN total
$$;

-- What also_bought reports for every product in the catalogue.
CREATE VIEW pg_temp.reported_measures AS
SELECT p.product_id AS product, a.product_id AS other, a.co_orders, a.confidence, a.lift, a.jaccard
  FROM personalisation.products p, personalisation.also_bought(p.product_id, 1000) AS a;

-- 40 products, 3 of them out of stock; 400 orders of 1 to 10 distinct
-- products, skewed towards the first ones, over the last 20 days.
INSERT INTO personalisation.products (product_id, name, price, in_stock)
SELECT 'cxe-' || lpad(i::text, 2, '0'), 'Exactness ' || i, 10, i % 13 <> 5
  FROM generate_series(1, 40) AS i;
SELECT setseed(0.31);
CREATE TEMP TABLE cxe_orders AS
SELECT 'cxe-o' || i AS order_id, 'cxe-s' || i % 60 AS session_id,
       now() - random() * interval '20 days' AS occurred_at, items
  FROM generate_series(1, 400) AS i,
       LATERAL (SELECT jsonb_agg(jsonb_build_object('product_id', p, 'quantity', 1 + i % 3,
                                                    'unit_price', 10)) AS items
                  FROM (SELECT DISTINCT 'cxe-' || lpad((1 + floor(40 * random() ^ 2))::int::text, 2, '0') AS p
                          FROM generate_series(1, 1 + (i * 7919) % 10)) AS l) AS basket;
SELECT personalisation.track_purchase(session_id, order_id, items, occurred_at)
  FROM cxe_orders ORDER BY occurred_at;

SELECT cmp_ok((SELECT count(*)::int FROM cxe_orders WHERE jsonb_array_length(items) > 6), '>=', 20,
              'at least 20 orders are over the basket cap of 6');
SELECT cmp_ok((SELECT count(*)::int FROM pg_temp.expected_measures('-infinity', 6)), '>=', 500,
              'the orders make at least 500 directed pairs to compare');
SELECT set_eq('SELECT * FROM pg_temp.reported_measures',
              $$SELECT * FROM pg_temp.expected_measures('-infinity', 6)$$,
              'after the purchases, also_bought reports every pair''s measures exactly as plain SQL computes them');
SELECT set_eq('SELECT * FROM personalisation.complement_pairs',
              $$SELECT * FROM pg_temp.expected_pairs('-infinity', 6)$$,
              'after the purchases, the pair counts (out-of-stock products too) equal plain SQL');
SELECT is((SELECT sum(orders)::bigint FROM personalisation.complement_totals),
          (SELECT count(DISTINCT order_id) FROM pg_temp.counted_lines('-infinity')),
          'after the purchases, the order total equals plain SQL');

-- refund 60 orders, 10 of them twice
SELECT personalisation.track_refund(order_id, least(occurred_at + interval '1 hour', now()))
  FROM cxe_orders WHERE order_id ~ '[05]$' ORDER BY order_id DESC LIMIT 60;
SELECT personalisation.track_refund(order_id)
  FROM cxe_orders WHERE order_id ~ '0$' ORDER BY order_id DESC LIMIT 10;

SELECT set_eq('SELECT * FROM pg_temp.reported_measures',
              $$SELECT * FROM pg_temp.expected_measures('-infinity', 6)$$,
              'after the refunds, also_bought reports every pair''s measures exactly as plain SQL computes them');
SELECT is((SELECT sum(orders)::bigint FROM personalisation.complement_totals),
          (SELECT count(DISTINCT order_id) FROM pg_temp.counted_lines('-infinity')),
          'after the refunds, the order total equals plain SQL');

-- the incremental counts, then a rebuild from the history
CREATE TEMP TABLE live_pairs AS SELECT * FROM personalisation.complement_pairs;
CREATE TEMP TABLE live_products AS SELECT * FROM personalisation._complement_product_orders;
CREATE TEMP TABLE live_total AS SELECT sum(orders)::bigint AS orders FROM personalisation.complement_totals;
SELECT personalisation.rebuild_complementarity();

SELECT set_eq('SELECT * FROM live_pairs', 'SELECT * FROM personalisation.complement_pairs',
              'incremental and rebuilt pair counts are identical');
SELECT set_eq('SELECT * FROM live_products', 'SELECT * FROM personalisation._complement_product_orders',
              'incremental and rebuilt product counts are identical');
SELECT is((SELECT sum(orders)::bigint FROM personalisation.complement_totals), (SELECT orders FROM live_total),
          'incremental and rebuilt order totals are identical');
SELECT set_eq('SELECT * FROM pg_temp.reported_measures',
              $$SELECT * FROM pg_temp.expected_measures('-infinity', 6)$$,
              'after the rebuild, also_bought reports every pair''s measures exactly as plain SQL computes them');

-- a window of 10 days: rebuilt now, then maintained three days later
SET LOCAL personalisation.complement_window = '10d';
SELECT personalisation.rebuild_complementarity(now());
SELECT set_eq('SELECT * FROM pg_temp.reported_measures',
              $$SELECT * FROM pg_temp.expected_measures(now() - interval '10 days', 6)$$,
              'with a 10-day window, also_bought reports exactly the plain-SQL measures over the window');
SELECT cmp_ok((SELECT expired_orders::int FROM personalisation.maintain_complementarity(now() + interval '3 days')),
              '>', 0, 'three days later, maintenance takes out the orders that left the window');
SELECT set_eq('SELECT * FROM pg_temp.reported_measures',
              $$SELECT * FROM pg_temp.expected_measures(now() - interval '7 days', 6)$$,
              'after maintenance, also_bought reports exactly the plain-SQL measures over the moved window');

DELETE FROM live_pairs;
INSERT INTO live_pairs SELECT * FROM personalisation.complement_pairs;
DELETE FROM live_products;
INSERT INTO live_products SELECT * FROM personalisation._complement_product_orders;
SELECT personalisation.rebuild_complementarity(now() + interval '3 days');
SELECT set_eq('SELECT * FROM live_pairs', 'SELECT * FROM personalisation.complement_pairs',
              'maintained and rebuilt pair counts under the window are identical');
SELECT set_eq('SELECT * FROM live_products', 'SELECT * FROM personalisation._complement_product_orders',
              'maintained and rebuilt product counts under the window are identical');

SELECT * FROM finish();
ROLLBACK;
