\set session random(1, 10000)
\set product random(1, 20000)
\set id random(1, 9000000000000000)
SELECT personalisation.track_cart_add('c' || :session, 'p' || :product, 1, now(), :id::text);
