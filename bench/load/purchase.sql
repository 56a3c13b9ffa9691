-- An order of one or two of the visitor's products.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
\set a 1 + (:sid * 7 + random(0, 4)) % :products
\set b 1 + (:sid * 7 + random(0, 4)) % :products
\set order random(1, 900000000000000)
SELECT personalisation.track_purchase('ls' || :sid, 'lo' || :client_id || '-' || :order,
  CASE WHEN :a = :b
       THEN jsonb_build_array(jsonb_build_object('product_id', 'p' || :a, 'quantity', 1, 'unit_price', 9.99))
       ELSE jsonb_build_array(jsonb_build_object('product_id', 'p' || :a, 'quantity', 1, 'unit_price', 9.99),
                              jsonb_build_object('product_id', 'p' || :b, 'quantity', 2, 'unit_price', 4.50))
  END);
