-- An order of two products on a session of one of the customers.
\set c random(1, :customers)
\set s random(1, :sessions)
\set a random(1, 3)
\set b random(4, 6)
\set o random(1, 1000000000000)
WITH call AS (SELECT personalisation.track_purchase('lk-' || :c || '-' || :s, 'lk-o' || :client_id || '-' || :o,
  jsonb_build_array(jsonb_build_object('product_id', 'lk-p' || :a, 'quantity', 1, 'unit_price', 5),
                    jsonb_build_object('product_id', 'lk-p' || :b, 'quantity', 1, 'unit_price', 5))) AS result)
INSERT INTO locking_calls (kind) SELECT 'purchase' FROM call;
