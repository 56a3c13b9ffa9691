-- Complementarity: order counts per product and pair kept by purchases and
-- refunds, also_bought and its measures, recommend_for_cart, the basket cap,
-- the window, pausing and the bulk rebuild.
-- fixed timestamps in the past: widen the retention so they are accepted
SET personalisation.event_retention = '36500d';
SET timezone = 'UTC';
-- nothing here is granted to PUBLIC
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'personalisation'::regnamespace
   AND p.proname IN ('track_refund', 'also_bought', 'recommend_for_cart', 'rebuild_complementarity',
                     'maintain_complementarity', 'pause_complementarity')
 ORDER BY 1;
-- a rebuild refuses a transaction snapshot
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM personalisation.rebuild_complementarity();
ROLLBACK;

-- The rest runs on an order history of its own, in one transaction rolled
-- back at the end; a refused call rolls back to just before it.
\set ON_ERROR_ROLLBACK on
BEGIN;
DELETE FROM personalisation.orders;
SELECT * FROM personalisation.rebuild_complementarity('2026-01-01 00:00+00');

INSERT INTO personalisation.products (product_id, name, price) VALUES
  ('tent', 'Tent', 199), ('stove', 'Stove', 49), ('mug', 'Mug', 9),
  ('lamp', 'Lamp', 25), ('map', 'Map', 12), ('rope', 'Rope', 15);

-- the order's quantities do not matter: an order counts once per product
SELECT personalisation.track_purchase('cx-s1', 'cx-o1', '[
  {"product_id": "tent", "quantity": 1, "unit_price": 199},
  {"product_id": "stove", "quantity": 1, "unit_price": 49},
  {"product_id": "mug", "quantity": 4, "unit_price": 9}]', '2026-01-01 10:00+00');
SELECT personalisation.track_purchase('cx-s2', 'cx-o2', '[
  {"product_id": "tent", "quantity": 1, "unit_price": 199},
  {"product_id": "stove", "quantity": 2, "unit_price": 49}]', '2026-01-02 10:00+00');
SELECT personalisation.track_purchase('cx-s3', 'cx-o3', '[
  {"product_id": "tent", "quantity": 1, "unit_price": 199},
  {"product_id": "lamp", "quantity": 1, "unit_price": 25}]', '2026-01-03 10:00+00');
SELECT personalisation.track_purchase('cx-s4', 'cx-o4', '[
  {"product_id": "mug", "quantity": 2, "unit_price": 9},
  {"product_id": "stove", "quantity": 1, "unit_price": 49}]', '2026-01-04 10:00+00');
SELECT personalisation.track_purchase('cx-s5', 'cx-o5', '[
  {"product_id": "map", "quantity": 1, "unit_price": 12}]', '2026-01-05 10:00+00');
-- a retried purchase counts nothing again
SELECT personalisation.track_purchase('cx-s5', 'cx-o5', '[
  {"product_id": "map", "quantity": 1, "unit_price": 12}]', '2026-01-05 10:00+00');
-- this backend's counter stripe (its backend id modulo 8), the only stripe
-- these purchases wrote to: the folding below depends on it
SELECT min(stripe) = max(stripe) AS one_stripe FROM personalisation.complement_products;
SELECT max(stripe) AS own_stripe FROM personalisation.complement_products \gset

SELECT * FROM personalisation.complement_pairs ORDER BY product_a, product_b;
SELECT * FROM personalisation._complement_product_orders ORDER BY product_id;
SELECT sum(orders) AS all_orders FROM personalisation.complement_totals;

-- tent: 3 orders of 5; stove: 3 of 5, together in 2.
-- confidence = 2/3, lift = (2/3) / (3/5) = 10/9, jaccard = 2 / (3 + 3 - 2)
SELECT * FROM personalisation.also_bought('tent');
-- pairs bought together once are noise at the default minimum of 2
SET personalisation.complement_min_co_orders = 1;
SELECT * FROM personalisation.also_bought('tent');
SELECT * FROM personalisation.also_bought('tent', 2);
SELECT * FROM personalisation.also_bought('stove');
-- a product never bought with anything, or never bought at all
SELECT * FROM personalisation.also_bought('map');
SELECT * FROM personalisation.also_bought('rope');
-- out-of-stock products never appear
UPDATE personalisation.products SET in_stock = false WHERE product_id = 'stove';
SELECT * FROM personalisation.also_bought('tent');
UPDATE personalisation.products SET in_stock = true WHERE product_id = 'stove';

-- bad arguments
SELECT * FROM personalisation.also_bought(NULL);
SELECT * FROM personalisation.also_bought('');
SELECT * FROM personalisation.also_bought('kayak');
SELECT * FROM personalisation.also_bought('tent', 0);
SELECT * FROM personalisation.also_bought('tent', 1001);
SELECT * FROM personalisation.also_bought('tent', NULL);

-- recommend_for_cart: complements of the cart, without the cart's own
-- products and without what this profile already bought (cx-s4 bought mug and
-- stove, once each).  The products have no category.  With the default
-- shrinkage 5 and popularity weight 1 (N = 5; tent in 3 orders, stove 3, mug
-- 2, lamp 1): stove 2/(3+5) + 3/5; mug 1/8 + 2/5; lamp 1/8 + 1/5; with
-- stove in the cart too, mug gets 2/(3+5) from stove as well.
SELECT personalisation.track_cart_add('cx-s6', 'tent', 1, '2026-01-06 10:00+00');
SELECT * FROM personalisation.recommend_for_cart('cx-s6');
SELECT personalisation.track_cart_add('cx-s4', 'tent', 1, '2026-01-06 10:00+00');
SELECT * FROM personalisation.recommend_for_cart('cx-s4');
SELECT personalisation.track_cart_add('cx-s6', 'stove', 1, '2026-01-06 10:01+00');
SELECT * FROM personalisation.recommend_for_cart('cx-s6');
SELECT * FROM personalisation.recommend_for_cart('cx-s6', 1);
-- an unknown session, or an empty cart, gets nothing
SELECT * FROM personalisation.recommend_for_cart('cx-s-never-seen');
SELECT * FROM personalisation.recommend_for_cart('cx-s1');
SELECT * FROM personalisation.recommend_for_cart(NULL);
SELECT * FROM personalisation.recommend_for_cart('cx-s6', 0);

-- a refund takes the order back out and is recorded on the order
SELECT personalisation.track_refund('cx-o2', '2026-01-07 10:00+00');
SELECT order_id, refunded_at FROM personalisation.orders WHERE order_id = 'cx-o2';
SELECT * FROM personalisation.complement_pairs ORDER BY product_a, product_b;
SELECT * FROM personalisation._complement_product_orders ORDER BY product_id;
SELECT sum(orders) AS all_orders FROM personalisation.complement_totals;
-- refunding again changes nothing, whatever the time given
SELECT personalisation.track_refund('cx-o2', '2026-01-08 10:00+00');
SELECT order_id, refunded_at FROM personalisation.orders WHERE order_id = 'cx-o2';
SELECT sum(orders) AS all_orders FROM personalisation.complement_totals;
-- bad refunds
SELECT personalisation.track_refund('cx-o-unknown', '2026-01-08 10:00+00');
SELECT personalisation.track_refund('cx-o3', '2026-01-02 10:00+00');
SELECT personalisation.track_refund(NULL);
SELECT personalisation.track_refund('cx-o3', NULL);

-- a rebuild from the history holds exactly what the purchases and refunds did
CREATE TEMP TABLE live_pairs AS SELECT * FROM personalisation.complement_pairs;
CREATE TEMP TABLE live_products AS SELECT * FROM personalisation._complement_product_orders;
SELECT * FROM personalisation.rebuild_complementarity('2026-01-10 00:00+00');
SELECT count(*) AS pair_differences FROM (
  (SELECT * FROM live_pairs EXCEPT SELECT * FROM personalisation.complement_pairs)
  UNION ALL (SELECT * FROM personalisation.complement_pairs EXCEPT SELECT * FROM live_pairs)) AS d;
SELECT count(*) AS product_differences FROM (
  (SELECT * FROM live_products EXCEPT SELECT * FROM personalisation._complement_product_orders)
  UNION ALL (SELECT * FROM personalisation._complement_product_orders EXCEPT SELECT * FROM live_products)) AS d;
SELECT counted_since, basket_cap, paused, rebuilt_at FROM personalisation.complement_state;

-- a basket over the cap counts its pairs among a hash-chosen sample of cap
-- products, and every product of it
SET personalisation.complement_basket_cap = 3;
SELECT * FROM personalisation.rebuild_complementarity('2026-01-10 00:00+00');
SELECT personalisation.track_purchase('cx-s7', 'cx-o7', '[
  {"product_id": "tent", "quantity": 1, "unit_price": 199},
  {"product_id": "stove", "quantity": 1, "unit_price": 49},
  {"product_id": "mug", "quantity": 1, "unit_price": 9},
  {"product_id": "lamp", "quantity": 1, "unit_price": 25},
  {"product_id": "rope", "quantity": 1, "unit_price": 15}]', '2026-01-09 10:00+00');
SELECT product_id FROM personalisation.order_lines WHERE order_id = 'cx-o7'
 ORDER BY hashtextextended(product_id, hashtext(order_id)), product_id COLLATE "C" LIMIT 3;
SELECT * FROM personalisation.complement_pairs ORDER BY product_a, product_b;
SELECT * FROM personalisation._complement_product_orders ORDER BY product_id;
RESET personalisation.complement_basket_cap;

-- a window of 5 days seen from 2026-01-08: orders before 2026-01-03 count nowhere
SET personalisation.complement_window = '5d';
SELECT * FROM personalisation.rebuild_complementarity('2026-01-08 00:00+00');
SELECT counted_since, basket_cap FROM personalisation.complement_state;
SELECT * FROM personalisation._complement_product_orders ORDER BY product_id;
-- a purchase placed before the window's start is recorded but not counted
SELECT personalisation.track_purchase('cx-s8', 'cx-o8', '[
  {"product_id": "tent", "quantity": 1, "unit_price": 199},
  {"product_id": "map", "quantity": 1, "unit_price": 12}]', '2026-01-02 12:00+00');
SELECT * FROM personalisation._complement_product_orders ORDER BY product_id;
-- two days later the window has moved on: cx-o3 and cx-o4 leave the counts,
-- which then equal a rebuild at the same instant.  Their deltas (tent, lamp,
-- mug, stove and the total) go to this backend's stripe, and folding moves
-- those 5 rows into stripe 0, or nothing when this backend writes stripe 0.
SELECT expired_orders, folded_rows = CASE WHEN :own_stripe = 0 THEN 0 ELSE 5 END AS folded_own_stripe
  FROM personalisation.maintain_complementarity('2026-01-10 00:00+00');
SELECT counted_since FROM personalisation.complement_state;
SELECT * FROM personalisation.complement_pairs ORDER BY product_a, product_b;
SELECT * FROM personalisation._complement_product_orders ORDER BY product_id;
SELECT sum(orders) AS all_orders FROM personalisation.complement_totals;
-- the stripes are folded into one row per product
SELECT count(*) AS rows, count(DISTINCT product_id) AS products, max(stripe) AS max_stripe
  FROM personalisation.complement_products;
SELECT * FROM personalisation.rebuild_complementarity('2026-01-10 00:00+00');
SELECT * FROM personalisation.complement_pairs ORDER BY product_a, product_b;
SELECT * FROM personalisation._complement_product_orders ORDER BY product_id;
-- refunding an order that already left the window changes no count
SELECT personalisation.track_refund('cx-o1', '2026-01-10 00:00+00');
SELECT sum(orders) AS all_orders FROM personalisation.complement_totals;
RESET personalisation.complement_window;

-- while paused, purchases and refunds leave the counts alone; the next
-- rebuild counts everything and resumes
SELECT * FROM personalisation.rebuild_complementarity('2026-01-10 00:00+00');
SELECT personalisation.pause_complementarity();
SELECT personalisation.track_purchase('cx-s9', 'cx-o9', '[
  {"product_id": "lamp", "quantity": 1, "unit_price": 25},
  {"product_id": "rope", "quantity": 1, "unit_price": 15}]', '2026-01-10 10:00+00');
SELECT personalisation.track_refund('cx-o4', '2026-01-10 11:00+00');
SELECT paused FROM personalisation.complement_state;
SELECT * FROM personalisation.complement_pairs ORDER BY product_a, product_b;
SELECT * FROM personalisation.rebuild_complementarity('2026-01-11 00:00+00');
SELECT paused FROM personalisation.complement_state;
SELECT * FROM personalisation.complement_pairs ORDER BY product_a, product_b;

-- bad maintenance calls
SELECT * FROM personalisation.rebuild_complementarity(NULL);
SELECT * FROM personalisation.maintain_complementarity('infinity');

ROLLBACK;
