-- The ranking benchmark's visitors: 1,000,000 profiles, each with one session
-- ('v' || id) that viewed two products in the last day, their affinity rebuilt
-- from those events, and the popularity prior.  Then the baseline's
-- normalised affinity table: one row per (profile, dimension, key) with the
-- score at updated_at, maintained the obvious way (here, filled from the same
-- events), and the 200 category pages' candidate lists (the 100 products
-- of each category, in the shop's order).
SET personalisation.ranking_holdout_percent = 0;
INSERT INTO personalisation.profiles (profile_id, created_at)
SELECT i, now() - interval '1 day' FROM generate_series(1, 1000000) i;
SELECT setval('personalisation.profile_id_seq', 1000000);
INSERT INTO personalisation.sessions (session_id, profile_id, started_at, last_seen_at)
SELECT 'v' || i, i, now() - interval '1 day', now() FROM generate_series(1, 1000000) i;
SELECT personalisation.maintain_partitions(now() - interval '1 day');
CREATE TEMP TABLE bench_views AS
SELECT i AS profile_id, 'p' || (1 + (i::bigint * k) % 20000) AS product_id,
       now() - (i % 1440) * interval '1 minute' - j * interval '1 minute' AS occurred_at
  FROM generate_series(1, 1000000) i, (VALUES (1, 7919), (2, 104729)) v (j, k);
INSERT INTO personalisation.events (kind, occurred_at, profile_id, session_id, category_id, product_id)
SELECT 'page_view', v.occurred_at, v.profile_id, 'v' || v.profile_id, p.category_id, v.product_id
  FROM bench_views v JOIN personalisation.products p USING (product_id);
ANALYZE personalisation.events;
SELECT personalisation.rebuild_affinity() AS events_replayed;
SELECT * FROM personalisation.refresh_popularity();

CREATE TABLE bench_affinity (
    profile_id bigint, dimension text, key text, score float8, updated_at timestamptz,
    PRIMARY KEY (profile_id, dimension, key));
INSERT INTO bench_affinity
SELECT v.profile_id, d.dimension, d.key, count(*), max(v.occurred_at)
  FROM bench_views v JOIN personalisation.products p USING (product_id),
       LATERAL (VALUES ('product', v.product_id), ('brand', p.brand), ('category', p.category_id)) d (dimension, key)
 GROUP BY 1, 2, 3;

CREATE TABLE bench_lists (list_id int PRIMARY KEY, candidates text[]);
INSERT INTO bench_lists
SELECT k, array_agg('p' || n ORDER BY n) FROM generate_series(1, 20000) n, LATERAL (SELECT n % 200 + 1 AS k) c GROUP BY k;
-- settle the loaded tables now, so that autovacuum does not run during the measurement
VACUUM ANALYZE;
SELECT pg_size_pretty(pg_total_relation_size('personalisation.affinity')) AS affinity_size,
       pg_size_pretty(pg_total_relation_size('bench_affinity')) AS baseline_size;
