-- The recommendation evaluation's generated shop (psql variables products,
-- customers, orders, seed): eval.lines(order_id, customer_id, occurred_at,
-- product_id, category_id), one row per distinct product of an order, over a
-- year.  Its structure is that of a real shop's history:
--  * popularity skew: product i is drawn with weight 1/i (Zipf), spread over
--    40 categories, so a few best sellers and a long, sparse tail;
--  * category taste: each customer has a favourite category that 35% of the
--    basket's items come from;
--  * repeat purchases: each customer has 3 staples, drawn from the favourite
--    category, that 30% of the items are;
--  * complementary pairs: every product has a partner (and a weaker second
--    one) that is added with it to 20% (8%) of the baskets containing it;
--  * activity skew: a few customers place many orders.
SELECT setseed(:seed);

CREATE TABLE eval.gen_products AS
SELECT i, 'g' || i AS product_id, 'k' || (1 + (i * 7) % 40) AS category_id,
       1 + (i * 7919) % :products AS partner, 1 + (i * 104729 + 17) % :products AS partner2,
       1.0 / i AS w
  FROM generate_series(1, :products) i;
CREATE TABLE eval.gen_draw AS
SELECT i, product_id, category_id,
       sum(w) OVER (ORDER BY i) / sum(w) OVER () AS cum,
       sum(w) OVER (PARTITION BY category_id ORDER BY i) / sum(w) OVER (PARTITION BY category_id) AS cat_cum
  FROM eval.gen_products;
CREATE INDEX ON eval.gen_draw (cum);
CREATE INDEX ON eval.gen_draw (category_id, cat_cum);

CREATE TABLE eval.gen_customers AS
SELECT c, 'k' || (1 + (c * 13) % 40) AS favourite FROM generate_series(1, :customers) c;
CREATE TABLE eval.gen_staples AS
SELECT s.c, s.slot,
       (SELECT d.i FROM eval.gen_draw d WHERE d.category_id = s.favourite AND d.cat_cum >= s.u
         ORDER BY d.cat_cum LIMIT 1) AS i
  FROM (SELECT c, favourite, slot, random() AS u
          FROM eval.gen_customers, generate_series(1, 3) slot) s;

CREATE TABLE eval.gen_orders AS
SELECT o, 1 + floor(:customers * power(random(), 1.5))::int AS c,
       timestamptz '2025-01-01 00:00+00' + (o - 1) * (interval '365 days' / :orders) AS occurred_at,
       least(8, 1 + floor(-ln(1 - random()) * 1.3))::int AS size
  FROM generate_series(1, :orders) o;
CREATE TABLE eval.gen_slots AS
SELECT o.o, o.c, g.favourite, slot, random() AS kind, random() AS u
  FROM eval.gen_orders o JOIN eval.gen_customers g USING (c), generate_series(1, o.size) slot;
CREATE TABLE eval.gen_items AS
SELECT s.o,
       CASE WHEN s.kind < 0.30 THEN
                (SELECT t.i FROM eval.gen_staples t WHERE t.c = s.c AND t.slot = 1 + floor(s.u * 3)::int)
            WHEN s.kind < 0.65 THEN
                (SELECT d.i FROM eval.gen_draw d WHERE d.category_id = s.favourite AND d.cat_cum >= s.u
                  ORDER BY d.cat_cum LIMIT 1)
            ELSE (SELECT d.i FROM eval.gen_draw d WHERE d.cum >= s.u ORDER BY d.cum LIMIT 1)
       END AS i
  FROM eval.gen_slots s;
INSERT INTO eval.gen_items
SELECT x.o, CASE WHEN x.u < 0.20 THEN p.partner ELSE p.partner2 END
  FROM (SELECT o, i, random() AS u FROM eval.gen_items) x
  JOIN eval.gen_products p USING (i)
 WHERE x.u < 0.28;

INSERT INTO eval.lines (order_id, customer_id, occurred_at, product_id, category_id)
SELECT DISTINCT 'o' || o.o, 'u' || o.c, o.occurred_at, p.product_id, p.category_id
  FROM eval.gen_items x JOIN eval.gen_orders o USING (o) JOIN eval.gen_products p ON p.i = x.i
 WHERE x.i IS NOT NULL;
