-- pgbench: also_bought for one product, drawn uniformly from the catalogue.
\set p random(1, 20000)
SELECT * FROM personalisation.also_bought('p' || :p, 10);
