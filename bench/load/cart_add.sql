-- Adds 1 to 3 units of one of the five products this visitor shops for.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
\set product 1 + (:sid * 7 + random(0, 4)) % :products
\set quantity random(1, 3)
SELECT personalisation.track_cart_add('ls' || :sid, 'p' || :product, :quantity);
