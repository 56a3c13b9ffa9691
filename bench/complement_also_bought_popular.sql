-- pgbench: also_bought for one product, drawn with a Zipf skew towards the
-- best sellers (the products with the most partners), as product pages are.
\set p random_zipfian(0, 19999, 1.05)
SELECT * FROM personalisation.also_bought('p' || lpad(:p::text, 5, '0'), 10);
