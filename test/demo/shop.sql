-- The demo's sample shop: a three-level category tree, 3,000 products and
-- 3,000 visitor sessions of traffic over the last three days.  Deterministic:
-- the same ids, catalogue and event sequence every time (timestamps are
-- relative to now() so that they fall inside the event retention).
\set ON_ERROR_STOP on
SELECT setseed(0.4242);

INSERT INTO personalisation.categories (category_id, parent_id, name)
SELECT d.id, NULL, d.name
  FROM (VALUES ('kitchen', 'Kitchen'), ('garden', 'Garden'), ('outdoor', 'Outdoor'),
               ('living', 'Living'), ('beauty', 'Beauty'), ('pets', 'Pets')) AS d(id, name);
INSERT INTO personalisation.categories (category_id, parent_id, name)
SELECT top.category_id || '-' || s, top.category_id, top.name || ' ' || s
  FROM personalisation.categories top, generate_series(1, 5) s
 WHERE top.parent_id IS NULL;
INSERT INTO personalisation.categories (category_id, parent_id, name)
SELECT mid.category_id || '-' || l, mid.category_id, mid.name || '.' || l
  FROM personalisation.categories mid, generate_series(1, 4) l
 WHERE mid.parent_id IS NOT NULL;

-- products spread over the 120 leaf categories; beauty and pets sell consumables
WITH leaves AS (
  SELECT category_id, row_number() OVER (ORDER BY category_id) - 1 AS n
    FROM personalisation.categories c
   WHERE NOT EXISTS (SELECT FROM personalisation.categories k WHERE k.parent_id = c.category_id))
INSERT INTO personalisation.products
  (product_id, category_id, name, price, brand, url, image_url, in_stock, subscribable, replenish_days)
SELECT format('sku-%s', lpad(i::text, 5, '0')),
       l.category_id,
       initcap(split_part(l.category_id, '-', 1)) || ' item ' || i,
       round((5 + random() * 195)::numeric, 2),
       'brand-' || (1 + (i * 7) % 40),
       'https://shop.example/p/sku-' || lpad(i::text, 5, '0'),
       'https://shop.example/img/sku-' || lpad(i::text, 5, '0') || '.jpg',
       random() > 0.05,
       l.category_id LIKE 'beauty%' OR l.category_id LIKE 'pets%',
       CASE WHEN l.category_id LIKE 'beauty%' OR l.category_id LIKE 'pets%' THEN 30 END
  FROM generate_series(1, 3000) i
  JOIN leaves l ON l.n = (i - 1) % 120;

-- traffic: every visitor favours one top-level category; some add to cart,
-- fewer buy; some grant push or email consent
CREATE TEMP TABLE demo_visits AS
SELECT v, format('demo-%s', lpad(v::text, 4, '0')) AS session_id,
       (ARRAY['kitchen','garden','outdoor','living','beauty','pets'])[1 + (v % 6)] AS favourite,
       now() - interval '3 days' + (v * interval '80 seconds') AS started_at,
       3 + floor(random() * 12)::int AS views,
       random() AS cart_roll, random() AS buy_roll, random() AS consent_roll
  FROM generate_series(1, 3000) v;

CREATE TEMP TABLE demo_views AS
SELECT d.session_id, d.started_at + (n * interval '40 seconds') AS at,
       (SELECT p.product_id FROM personalisation.products p
         WHERE p.category_id LIKE (CASE WHEN random() < 0.8 THEN d.favourite ELSE '' END) || '%'
           AND p.product_id >= format('sku-%s', lpad((1 + floor(random() * 3000))::text, 5, '0'))
         ORDER BY p.product_id LIMIT 1) AS product_id,
       d.v, n
  FROM demo_visits d, generate_series(1, 15) n
 WHERE n <= d.views;

SELECT count(personalisation.track_page_view(session_id, NULL, product_id, at,
                                             format('view-%s-%s', v, n))) AS page_views
  FROM demo_views WHERE product_id IS NOT NULL ORDER BY count(*);

-- the last two products a visitor viewed go into the cart for 35% of visitors
SELECT count(personalisation.track_cart_add(w.session_id, w.product_id, 1 + (w.n % 2),
                                            w.at + interval '20 seconds', format('cart-%s-%s', w.v, w.n))) AS cart_adds
  FROM demo_views w JOIN demo_visits d USING (v)
 WHERE d.cart_roll < 0.35 AND w.n > d.views - 2 AND w.product_id IS NOT NULL;

-- a third of those buy what is in their cart
SELECT count(personalisation.track_purchase(d.session_id, 'order-' || d.v,
         (SELECT jsonb_agg(jsonb_build_object('product_id', c.product_id, 'quantity', c.quantity,
                                              'unit_price', p.price) ORDER BY c.product_id)
            FROM personalisation.cart_lines c
            JOIN personalisation.products p USING (product_id)
           WHERE c.session_id = d.session_id),
         d.started_at + d.views * interval '40 seconds' + interval '2 minutes')) AS purchases
  FROM demo_visits d
 WHERE d.cart_roll < 0.35 AND d.buy_roll < 0.33
   AND EXISTS (SELECT FROM personalisation.cart_lines c WHERE c.session_id = d.session_id);

SELECT count(personalisation.set_consent(session_id, 'push', true, started_at + interval '10 seconds')) AS push_consents
  FROM demo_visits WHERE consent_roll < 0.4;
-- email consent is given at sign-up: those visitors are known customers with
-- an address (the first 120 stay anonymous, for the identity walk-through
-- and the backup test to log in)
SELECT count(personalisation.identify(session_id, 'shopper-' || v, 'shopper' || v || '@example.com',
                                      started_at + interval '15 seconds')) AS sign_ups
  FROM demo_visits WHERE consent_roll < 0.3 AND v > 120;
SELECT count(personalisation.set_consent(session_id, 'email', true, started_at + interval '15 seconds')) AS email_consents
  FROM demo_visits WHERE consent_roll < 0.3;
