-- One unit of a product into the cart of a session of one of the customers.
\set c random(1, :customers)
\set s random(1, :sessions)
\set p random(1, 6)
SELECT personalisation.track_cart_add('lk-' || :c || '-' || :s, 'lk-p' || :p, 1);
