-- recommend_for_cart's blend: complements, repurchase, the popular-in-
-- category fallback and the popularity prior, each score checked against a
-- plain-SQL computation of the documented formula; what a profile bought is
-- recommended again only when it buys it again and again
-- (repurchase_min_orders) or when its replenish_days have passed, never
-- after a refund, and not at all with recommend_repurchase off.  Orders are
-- stamped relative to now(), as recommend_for_cart judges replenishment as
-- of now.
BEGIN;
SELECT plan(9);

SET LOCAL personalisation.complement_min_co_orders = 2;
SELECT personalisation.rebuild_complementarity();

INSERT INTO personalisation.categories VALUES ('rb-food', NULL, 'Food'), ('rb-kit', NULL, 'Kit');
INSERT INTO personalisation.products (product_id, category_id, name, price, in_stock, replenish_days) VALUES
  ('rb-bread',  'rb-food', 'Bread',  2, true,  NULL),
  ('rb-cheese', 'rb-food', 'Cheese', 5, true,  NULL),
  ('rb-milk',   'rb-food', 'Milk',   1, true,  7),
  ('rb-jam',    'rb-food', 'Jam',    3, true,  NULL),
  ('rb-oil',    'rb-food', 'Oil',    4, false, NULL),
  ('rb-knife',  'rb-kit',  'Knife', 20, true,  NULL),
  ('rb-board',  'rb-kit',  'Board', 15, true,  NULL);

-- buy(session, order, days ago, products...)
CREATE FUNCTION pg_temp.buy(session text, order_id text, days_ago int, VARIADIC products text[]) RETURNS void
LANGUAGE sql AS $$
    SELECT personalisation.track_purchase(session, order_id,
             (SELECT jsonb_agg(jsonb_build_object('product_id', p, 'quantity', 1, 'unit_price', 1)) FROM unnest(products) p),
             now() - days_ago * interval '1 day')
$$;

-- other people: bread with cheese twice, with the out-of-stock oil twice; milk, jam alone
SELECT pg_temp.buy('rb-h1', 'rb-h1', 30, 'rb-bread', 'rb-cheese');
SELECT pg_temp.buy('rb-h2', 'rb-h2', 30, 'rb-bread', 'rb-cheese');
SELECT pg_temp.buy('rb-h3', 'rb-h3', 30, 'rb-milk');
SELECT pg_temp.buy('rb-h4', 'rb-h4', 30, 'rb-milk');
SELECT pg_temp.buy('rb-h5', 'rb-h5', 30, 'rb-jam');
SELECT pg_temp.buy('rb-h6', 'rb-h6', 30, 'rb-bread', 'rb-oil');
SELECT pg_temp.buy('rb-h7', 'rb-h7', 30, 'rb-bread', 'rb-oil');
-- Ann: the knife in two orders, cheese once, milk 10 days ago (replenished
-- every 7), the board twice but one of those orders refunded
SELECT pg_temp.buy('rb-ann', 'rb-a1', 60, 'rb-knife');
SELECT pg_temp.buy('rb-ann', 'rb-a2', 40, 'rb-knife', 'rb-cheese');
SELECT pg_temp.buy('rb-ann', 'rb-a3', 10, 'rb-milk');
SELECT pg_temp.buy('rb-ann', 'rb-a4', 50, 'rb-board');
SELECT pg_temp.buy('rb-ann', 'rb-a5', 45, 'rb-board');
SELECT personalisation.track_refund('rb-a4', now() - interval '49 days');
-- Bob: milk 3 days ago and 20 days ago
SELECT pg_temp.buy('rb-bob', 'rb-b1', 20, 'rb-milk');
SELECT pg_temp.buy('rb-bob', 'rb-b2', 3, 'rb-milk');
SELECT personalisation.track_cart_add('rb-ann', 'rb-bread', 1, now());
SELECT personalisation.track_cart_add('rb-bob', 'rb-bread', 1, now());
SELECT personalisation.track_cart_add('rb-cat', 'rb-bread', 1, now());

-- The documented score, in plain SQL: shrunk confidence from the cart
-- product, the category share when in the cart's category, the popularity
-- prior and the repurchase share (k of the profile's standing orders).
CREATE FUNCTION pg_temp.expected(product text, co bigint, repeat_orders bigint, profile_orders bigint) RETURNS float8
LANGUAGE sql AS $$
    WITH n AS (SELECT product_id, orders FROM personalisation._complement_product_orders),
         total AS (SELECT sum(orders)::float8 AS all_orders FROM personalisation.complement_totals),
         food AS (SELECT sum(n.orders)::float8 AS orders FROM n JOIN personalisation.products p USING (product_id)
                   WHERE p.category_id = 'rb-food' AND p.in_stock)
    SELECT co / ((SELECT orders FROM n WHERE product_id = 'rb-bread') + 5.0)
           + CASE WHEN (SELECT category_id FROM personalisation.products WHERE product_id = product) = 'rb-food'
                  THEN 0.5 * (SELECT orders FROM n WHERE product_id = product) / (SELECT orders FROM food) ELSE 0 END
           + (SELECT orders FROM n WHERE product_id = product) / (SELECT all_orders FROM total)
           + repeat_orders::float8 / (profile_orders + 1)
$$;

SELECT results_eq(
  $$SELECT product_id, because_of, co_orders, lift IS NULL FROM personalisation.recommend_for_cart('rb-cat') ORDER BY 1$$,
  $$VALUES ('rb-cheese'::text, 'rb-bread'::text, 2::bigint, false), ('rb-jam', 'rb-bread', 0, true),
           ('rb-milk', 'rb-bread', 0, true)$$,
  'a new visitor gets the complement and the popular products of the cart''s category (the fallback, without co-orders)');
SELECT results_eq(
  $$SELECT product_id, round(score::numeric, 12) FROM personalisation.recommend_for_cart('rb-cat')$$,
  $$SELECT * FROM (VALUES ('rb-cheese'::text, round(pg_temp.expected('rb-cheese', 2, 0, 0)::numeric, 12)),
                          ('rb-milk', round(pg_temp.expected('rb-milk', 0, 0, 0)::numeric, 12)),
                          ('rb-jam', round(pg_temp.expected('rb-jam', 0, 0, 0)::numeric, 12))) v ORDER BY 2 DESC$$,
  'each score is the documented blend');
SELECT results_eq(
  $$SELECT product_id, because_of, round(score::numeric, 12) FROM personalisation.recommend_for_cart('rb-ann')$$,
  $$SELECT * FROM (VALUES ('rb-milk'::text, 'rb-milk'::text, round(pg_temp.expected('rb-milk', 0, 1, 4)::numeric, 12)),
                          ('rb-knife', 'rb-knife', round(pg_temp.expected('rb-knife', 0, 2, 4)::numeric, 12)),
                          ('rb-jam', 'rb-bread', round(pg_temp.expected('rb-jam', 0, 0, 4)::numeric, 12))) v
     ORDER BY 3 DESC$$,
  'Ann gets again the knife she bought twice and the milk whose 7 days have passed, not the cheese bought once nor the board refunded once');
SELECT results_eq(
  $$SELECT product_id FROM personalisation.recommend_for_cart('rb-bob')$$,
  $$VALUES ('rb-cheese'::text), ('rb-jam')$$,
  'Bob''s milk, bought 3 days ago, is not due again');

SET LOCAL personalisation.repurchase_min_orders = 1;
SELECT ok((SELECT because_of = 'rb-bread' AND co_orders = 2 FROM personalisation.recommend_for_cart('rb-ann') WHERE product_id = 'rb-cheese'),
  'with repurchase_min_orders 1 the cheese comes back, as the complement it also is');
SELECT is((SELECT count(*) FROM personalisation.recommend_for_cart('rb-ann') WHERE product_id = 'rb-board'), 0::bigint,
  'a product from a refunded order never comes back');
RESET personalisation.repurchase_min_orders;

SET LOCAL personalisation.recommend_repurchase = off;
SELECT results_eq(
  $$SELECT product_id FROM personalisation.recommend_for_cart('rb-ann')$$,
  $$VALUES ('rb-jam'::text)$$,
  'with recommend_repurchase off everything Ann ordered is left out');
RESET personalisation.recommend_repurchase;

SET LOCAL personalisation.recommend_popularity_weight = 0;
SET LOCAL personalisation.recommend_category_weight = 0;
SELECT results_eq(
  $$SELECT product_id, score FROM personalisation.recommend_for_cart('rb-cat')$$,
  $$VALUES ('rb-cheese'::text, 2 / (4 + 5.0)::float8), ('rb-jam', 0), ('rb-milk', 0)$$,
  'without the priors the score is the shrunk confidence alone, the fallback at zero (ties by product id)');
SET LOCAL personalisation.recommend_shrinkage = 0;
SELECT is((SELECT score FROM personalisation.recommend_for_cart('rb-cat') WHERE product_id = 'rb-cheese'), 0.5::float8,
  'with no shrinkage it is the confidence, co(bread, cheese) / n(bread)');

SELECT * FROM finish();
ROLLBACK;
