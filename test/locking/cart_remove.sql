-- One unit of a product out of the cart of a session of one of the customers.
\set c random(1, :customers)
\set s random(1, :sessions)
\set p random(1, 6)
SELECT personalisation.track_cart_remove('lk-' || :c || '-' || :s, 'lk-p' || :p, 1);
