-- The recommendation evaluation on one shop's history (eval.lines; psql
-- variables level, test_share, max_cases): loads the older orders into the
-- extension as its history, then replays the newer ones as test cases and
-- records, per method and case, the rank of what the customer actually bought
-- in evalres.results.  A time split: nothing from a test order is counted.
--
--  * basket cases: a test order with two or more products; the product with
--    the smallest md5(order_id || product_id) is hidden, the rest is the cart.
--      popularity          the most ordered products, the cart left out
--      also_bought         also_bought() of the cart's most ordered product
--      recommend_for_cart  recommend_for_cart() of a session of the customer
--  * cross-sell cases: each customer's first test order after a history order;
--    sources are the products of the customer's last history order, targets
--    the products of the next order not among them.
--      cross_sell          the post-purchase recommendations: the order's
--                          products as the sources, the profile's purchases
--                          left out, as RecommendForSources builds them
--      cross_sell_popular  the most ordered products, the sources left out
\set ON_ERROR_STOP 1
SET personalisation.event_retention = '36500d';

INSERT INTO personalisation.categories (category_id, name)
SELECT DISTINCT category_id, category_id FROM eval.lines;
INSERT INTO personalisation.products (product_id, category_id, name, price)
SELECT product_id, min(category_id), product_id, 1 FROM eval.lines GROUP BY product_id;

CREATE TABLE eval.orders AS
SELECT order_id, min(customer_id) AS customer_id, min(occurred_at) AS occurred_at,
       array_agg(DISTINCT product_id ORDER BY product_id) AS products
  FROM eval.lines GROUP BY order_id;
CREATE TABLE eval.cutoff AS
SELECT percentile_disc(1 - :test_share) WITHIN GROUP (ORDER BY occurred_at) AS at FROM eval.orders;

CREATE TABLE eval.customers AS
SELECT customer_id, nextval('personalisation.profile_id_seq') AS profile_id
  FROM (SELECT DISTINCT customer_id FROM eval.orders) c;
INSERT INTO personalisation.profiles (profile_id, created_at, customer_id)
SELECT profile_id, '2020-01-01 00:00+00', customer_id FROM eval.customers;
INSERT INTO personalisation.sessions (session_id, profile_id, started_at, last_seen_at)
SELECT 'eval-' || customer_id, profile_id, '2020-01-01 00:00+00', '2020-01-01 00:00+00' FROM eval.customers;

INSERT INTO personalisation.orders (order_id, profile_id, session_id, occurred_at, line_count, total)
SELECT o.order_id, c.profile_id, 'eval-' || c.customer_id, o.occurred_at, cardinality(o.products), 0
  FROM eval.orders o JOIN eval.customers c USING (customer_id)
 WHERE o.occurred_at < (SELECT at FROM eval.cutoff);
INSERT INTO personalisation.order_lines (order_id, product_id, quantity, unit_price)
SELECT o.order_id, p, 1, 1
  FROM eval.orders o, unnest(o.products) p
 WHERE o.occurred_at < (SELECT at FROM eval.cutoff);
SELECT orders AS history_orders, products AS history_products, pairs AS history_pairs
  FROM personalisation.rebuild_complementarity('2030-01-01 00:00+00');
ANALYZE;

-- the test cases: case_id, kind, the customer, the cart (sources), the targets
CREATE TABLE eval.cases AS
SELECT row_number() OVER (ORDER BY kind, pick) AS case_id, *
  FROM ((SELECT 'basket' AS kind, md5(o.order_id) AS pick, o.customer_id,
                array(SELECT p FROM unnest(o.products) p WHERE p <> h.p ORDER BY p) AS cart,
                ARRAY[h.p] AS targets
           FROM eval.orders o
          CROSS JOIN LATERAL (SELECT p FROM unnest(o.products) p ORDER BY md5(o.order_id || p) LIMIT 1) h
          WHERE o.occurred_at >= (SELECT at FROM eval.cutoff) AND cardinality(o.products) >= 2
          ORDER BY md5(o.order_id) LIMIT :max_cases)
        UNION ALL
        (SELECT 'cross_sell', md5(n.order_id), n.customer_id, l.products,
                array(SELECT p FROM unnest(n.products) p WHERE p <> ALL (l.products) ORDER BY p)
           FROM (SELECT DISTINCT ON (customer_id) * FROM eval.orders
                  WHERE occurred_at >= (SELECT at FROM eval.cutoff) ORDER BY customer_id, occurred_at) n
          CROSS JOIN LATERAL (SELECT products FROM eval.orders h
                               WHERE h.customer_id = n.customer_id AND h.occurred_at < (SELECT at FROM eval.cutoff)
                               ORDER BY h.occurred_at DESC LIMIT 1) l
          WHERE n.products <> l.products AND NOT n.products <@ l.products
          ORDER BY md5(n.order_id) LIMIT :max_cases)) c;

-- the most ordered products, for the popularity baseline
CREATE TABLE eval.popular AS
SELECT product_id, row_number() OVER (ORDER BY orders DESC, product_id COLLATE "C") AS position
  FROM personalisation._complement_product_orders;
DELETE FROM eval.popular WHERE position > 1000;

INSERT INTO evalres.catalogue SELECT :'level', count(*) FROM personalisation.products;

-- Record runs every method of the evaluation on every case.
CREATE FUNCTION eval.record(level text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c record;
    profile bigint;
    session text;
    anchor text;
BEGIN
    FOR c IN SELECT * FROM eval.cases ORDER BY case_id LOOP
        SELECT profile_id INTO profile FROM eval.customers WHERE customer_id = c.customer_id;
        session := 'eval-' || c.customer_id;
        DELETE FROM personalisation.cart_lines WHERE profile_id = profile;
        INSERT INTO personalisation.cart_lines (profile_id, product_id, quantity, session_id, added_at, updated_at)
        SELECT profile, p, 1, session, '2030-01-01', '2030-01-01' FROM unnest(c.cart) p;
        INSERT INTO evalres.results (level, method, case_id, targets, recommended)
        SELECT level, CASE c.kind WHEN 'basket' THEN 'recommend_for_cart' ELSE 'cross_sell' END, c.case_id,
               cardinality(c.targets),
               coalesce((SELECT array_agg(r.product_id ORDER BY r.n)
                           FROM personalisation.recommend_for_cart(session, 10) WITH ORDINALITY AS r(product_id, score, because_of, co_orders, lift, n)), '{}');
        INSERT INTO evalres.results (level, method, case_id, targets, recommended)
        SELECT level, CASE c.kind WHEN 'basket' THEN 'popularity' ELSE 'cross_sell_popular' END, c.case_id,
               cardinality(c.targets),
               (SELECT array_agg(product_id ORDER BY position)
                  FROM (SELECT product_id, position FROM eval.popular
                         WHERE product_id <> ALL (c.cart) ORDER BY position LIMIT 10) t);
        IF c.kind = 'basket' THEN
            SELECT p INTO anchor FROM unnest(c.cart) p
              LEFT JOIN personalisation._complement_product_orders o ON o.product_id = p
             ORDER BY o.orders DESC NULLS LAST, p LIMIT 1;
            INSERT INTO evalres.results (level, method, case_id, targets, recommended)
            SELECT level, 'also_bought', c.case_id, 1,
                   coalesce((SELECT array_agg(a.product_id ORDER BY a.n)
                               FROM (SELECT b.product_id, row_number() OVER () AS n
                                       FROM personalisation.also_bought(anchor, 20) b
                                      WHERE b.product_id <> ALL (c.cart)) a
                              WHERE a.n <= 10), '{}');
        END IF;
    END LOOP;
    DELETE FROM personalisation.cart_lines;
    UPDATE evalres.results r
       SET ranks = array(SELECT t.n FROM unnest(r.recommended) WITH ORDINALITY AS t(p, n)
                          WHERE t.p = ANY (k.targets) ORDER BY t.n)
      FROM eval.cases k
     WHERE r.case_id = k.case_id AND r.level = $1;
END $$;
SELECT eval.record(:'level');
