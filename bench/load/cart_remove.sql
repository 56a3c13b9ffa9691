-- Removes one unit, or the whole line, of one of the visitor's five products.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
\set product 1 + (:sid * 7 + random(0, 4)) % :products
\set whole random(0, 1)
SELECT personalisation.track_cart_remove('ls' || :sid, 'p' || :product, CASE WHEN :whole = 1 THEN NULL ELSE 1 END);
