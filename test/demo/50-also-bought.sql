-- Walk-through: customers who bought X also bought Y.
--
-- The sample traffic's few hundred orders of one or two products are too
-- thin for pairs to repeat, so this part first loads a month of order history
-- the way a shop backfills it (counting paused, then one rebuild): 2,000
-- orders of 2 to 4 products from one leaf category each, the first products
-- of each leaf selling best.  Deterministic, like the sample shop.
\pset footer off
\echo
\echo '== Complementarity: the sample traffic alone'
SELECT (SELECT sum(orders) FROM personalisation.complement_totals) AS orders_counted,
       count(*) AS pairs, count(*) FILTER (WHERE co_orders >= 2) AS pairs_bought_together_twice
  FROM personalisation.complement_pairs;

\echo '== A month of order history, loaded with counting paused, then counted in one rebuild'
SELECT setseed(0.5050) \g /dev/null
SELECT personalisation.pause_complementarity() \g /dev/null
-- a backfill is not a wave of new customers: no post-purchase journey for it
UPDATE personalisation.journeys SET enabled = false WHERE trigger <> 'cart_abandoned' \g /dev/null
CREATE TEMP TABLE demo_history AS
SELECT h, format('demo-history-%s', lpad(h::text, 4, '0')) AS session_id,
       now() - interval '30 days' + h * interval '20 minutes' AS at,
       floor(120 * random())::int AS leaf, 2 + floor(random() * 3)::int AS lines
  FROM generate_series(1, 2000) AS h;
SELECT count(personalisation.track_purchase(d.session_id, format('history-%s', d.h),
         (SELECT jsonb_agg(jsonb_build_object('product_id', p.product_id, 'quantity', 1,
                                              'unit_price', p.price) ORDER BY p.product_id)
            FROM (SELECT DISTINCT format('sku-%s', lpad((d.leaf + 1 + 120 * floor(10 * random() ^ 2)::int)::text, 5, '0')) AS product_id
                    FROM generate_series(1, d.lines)) AS pick
            JOIN personalisation.products p USING (product_id)),
         d.at)) AS history_orders
  FROM demo_history d;
UPDATE personalisation.journeys SET enabled = true WHERE trigger <> 'cart_abandoned' \g /dev/null
SELECT * FROM personalisation.rebuild_complementarity();

\echo '== Customers who bought X also bought Y: the three best sellers, five complements each'
SELECT b.product_id AS bought, b.orders AS bought_in, a.rank, a.product_id AS also_bought, p.name,
       a.co_orders, round(a.confidence::numeric, 3) AS confidence, round(a.lift::numeric, 1) AS lift,
       round(a.jaccard::numeric, 3) AS jaccard
  FROM (SELECT product_id, orders FROM personalisation._complement_product_orders
         ORDER BY orders DESC, product_id LIMIT 3) AS b
 CROSS JOIN LATERAL personalisation.also_bought(b.product_id, 5)
       WITH ORDINALITY AS a(product_id, co_orders, confidence, lift, jaccard, rank)
  JOIN personalisation.products p ON p.product_id = a.product_id
 ORDER BY b.orders DESC, b.product_id, a.rank;

\echo '== A refund takes its order back out at once, in the refund''s transaction'
SELECT o.order_id AS refunded_order, l.product_id AS best_seller
  FROM personalisation.orders o JOIN personalisation.order_lines l USING (order_id)
 WHERE o.order_id LIKE 'history-%'
   AND l.product_id = (SELECT product_id FROM personalisation._complement_product_orders
                        ORDER BY orders DESC, product_id LIMIT 1)
 ORDER BY o.occurred_at DESC LIMIT 1 \gset
SELECT orders AS best_seller_orders_before FROM personalisation._complement_product_orders
 WHERE product_id = :'best_seller';
SELECT personalisation.track_refund(:'refunded_order') \g /dev/null
SELECT orders AS best_seller_orders_after FROM personalisation._complement_product_orders
 WHERE product_id = :'best_seller';

\echo '== Complements of an open cart, leaving out the cart and what the visitor bought before'
SELECT c.session_id AS cart_session
  FROM personalisation.carts c
  JOIN personalisation.cart_lines l USING (profile_id)
  JOIN personalisation._complement_product_orders n USING (product_id)
 WHERE c.line_count > 0
 GROUP BY c.session_id ORDER BY sum(n.orders) DESC, c.session_id LIMIT 1 \gset
SELECT l.product_id AS in_cart, p.name, l.quantity
  FROM personalisation.sessions s
  JOIN personalisation.cart_lines l USING (profile_id)
  JOIN personalisation.products p USING (product_id)
 WHERE s.session_id = :'cart_session' ORDER BY l.product_id;
SELECT r.product_id AS recommended, p.name, round(r.score::numeric, 3) AS score, r.because_of,
       r.co_orders, round(r.lift::numeric, 1) AS lift
  FROM personalisation.recommend_for_cart(:'cart_session', 5) AS r
  JOIN personalisation.products p USING (product_id);
