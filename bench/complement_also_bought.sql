-- pgbench: also_bought for one product, drawn uniformly from the catalogue.
\set p random(0, 19999)
SELECT * FROM personalisation.also_bought('p' || lpad(:p::text, 5, '0'), 10);
