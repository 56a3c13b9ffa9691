-- pgbench: also_bought for one product, drawn with a Zipf skew towards the
-- best sellers (the products with the most partners), as product pages are.
\set p random_zipfian(1, 20000, 1.05)
SELECT * FROM personalisation.also_bought('p' || :p, 10);
