-- One unit of a product out of the cart of a session of one of the customers.
\set c random(1, :customers)
\set s random(1, :sessions)
\set p random(1, 6)
WITH call AS (SELECT personalisation.track_cart_remove('lk-' || :c || '-' || :s, 'lk-p' || :p, 1) AS result)
INSERT INTO locking_calls (kind) SELECT 'cart_remove' FROM call;
