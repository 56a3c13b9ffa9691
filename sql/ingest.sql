-- Ingestion: sessions and anonymous profiles on first sight, the event log,
-- the cart, orders, and idempotent retries.
-- fixed timestamps in the past: widen the retention so they are accepted
SET personalisation.event_retention = '36500d';
SET timezone = 'UTC';

INSERT INTO personalisation.categories VALUES
  ('home', NULL, 'Home'), ('kitchen', 'home', 'Kitchen'), ('knives', 'kitchen', 'Knives');
INSERT INTO personalisation.products (product_id, category_id, name, price, brand) VALUES
  ('knife-1', 'knives', 'Chef knife', 49.00, 'Sharp'),
  ('board-1', 'kitchen', 'Cutting board', 19.50, 'Woody');

-- a first page view creates the session and its anonymous profile
SELECT personalisation.track_page_view('s1', 'knives', NULL, '2026-01-10 10:00+00', 'e1');
SELECT personalisation.track_page_view('s1', NULL, 'knife-1', '2026-01-10 10:01+00', 'e2');
SELECT personalisation.track_page_view('s1', occurred_at => '2026-01-10 10:02+00');
SELECT session_id, profile_id IS NOT NULL AS has_profile, started_at, last_seen_at
  FROM personalisation.sessions;
SELECT count(*) AS profiles FROM personalisation.profiles;
-- a product view records the product's category
SELECT event_id, kind, occurred_at, session_id, category_id, product_id
  FROM personalisation.events ORDER BY occurred_at;

-- retrying an event id changes nothing, even with another timestamp
SELECT personalisation.track_page_view('s1', 'knives', NULL, '2026-01-10 11:00+00', 'e1');
SELECT count(*) AS events, max(occurred_at) FROM personalisation.events;
SELECT last_seen_at FROM personalisation.sessions WHERE session_id = 's1';

-- the cart
SELECT personalisation.track_cart_add('s1', 'knife-1', 1, '2026-01-10 10:05+00', 'c1');
SELECT personalisation.track_cart_add('s1', 'knife-1', 2, '2026-01-10 10:06+00', 'c2');
SELECT personalisation.track_cart_add('s1', 'board-1', 1, '2026-01-10 10:07+00', 'c3');
SELECT personalisation.track_cart_add('s1', 'board-1', 1, '2026-01-10 10:07+00', 'c3');
SELECT product_id, quantity, added_at, updated_at FROM personalisation.cart_lines ORDER BY product_id;
SELECT personalisation.track_cart_remove('s1', 'knife-1', 1, '2026-01-10 10:08+00', 'c4');
SELECT product_id, quantity FROM personalisation.cart_lines ORDER BY product_id;
SELECT line_count, last_activity_at FROM personalisation.carts;
-- removing a product that is not in the cart records interest withdrawn, no more
SELECT personalisation.track_cart_remove('s2', 'board-1', occurred_at => '2026-01-10 10:09+00');
SELECT count(*) AS lines_for_s2 FROM personalisation.cart_lines c
  JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = 's2';

-- a purchase records the order and its lines and clears the purchased products
SELECT personalisation.track_purchase('s1', 'o1',
  '[{"product_id": "knife-1", "quantity": 2, "unit_price": 45.00}]', '2026-01-10 10:10+00');
SELECT order_id, session_id, occurred_at, line_count, total FROM personalisation.orders;
SELECT product_id, quantity FROM personalisation.cart_lines ORDER BY product_id;
SELECT kind, order_id, value FROM personalisation.events WHERE kind = 'purchase';
-- the same order again (a retry, later) is accepted and changes nothing
SELECT personalisation.track_purchase('s1', 'o1',
  '[{"product_id": "knife-1", "quantity": 2, "unit_price": 45.0}]', '2026-01-10 12:00+00');
SELECT count(*) AS orders, sum(total) FROM personalisation.orders;
SELECT count(*) AS purchase_events FROM personalisation.events WHERE kind = 'purchase';
-- but the same order id with other contents is refused
SELECT personalisation.track_purchase('s1', 'o1',
  '[{"product_id": "knife-1", "quantity": 3, "unit_price": 45.00}]', '2026-01-10 12:00+00');

-- the full picture of profile activity
SELECT kind, count(*) FROM personalisation.events GROUP BY kind ORDER BY kind;
