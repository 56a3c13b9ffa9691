-- pgbench: the same answer as complement_also_bought.sql computed by plain
-- SQL from the order tables, as a shop without the extension would.
\set p random(1, 20000)
SELECT * FROM bench_also_bought('p' || :p, 10);
