-- pgbench: one purchase of 1-8 products from one family of 10 (families
-- drawn with a Zipf skew, so popular pairs are hot rows), by one of 200,000
-- sessions, under a fresh order id.
\set lines random(1, 8)
\set family random_zipfian(0, 1999, 1.05)
\set start random(0, 9)
\set session random(1, 200000)
SELECT personalisation.track_purchase(
    'bench-s' || :session,
    'bench-o' || nextval('bench_order_ids'),
    (SELECT jsonb_agg(jsonb_build_object(
                'product_id', 'p' || (1 + :family * 10 + (:start + 3 * j) % 10),
                'quantity', 1, 'unit_price', 10))
       FROM generate_series(0, :lines - 1) AS j));
