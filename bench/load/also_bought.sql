-- A product page's "customers also bought", for one of the visitor's products.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
\set product 1 + (:sid * 7 + random(0, 4)) % :products
SELECT count(*) FROM personalisation.also_bought('p' || :product, 10);
