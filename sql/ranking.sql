-- Affinity and ranking, a worked example at fixed times (docs/ranking.md
-- walks through the same numbers), and the errors ranking gives.
SET personalisation.event_retention = '36500d';
SET personalisation.ranking_holdout_percent = 0;
SET timezone = 'UTC';
BEGIN;
INSERT INTO personalisation.categories VALUES
  ('rg-home', NULL, 'Home'), ('rg-kitchen', 'rg-home', 'Kitchen'),
  ('rg-knives', 'rg-kitchen', 'Knives'), ('rg-pans', 'rg-kitchen', 'Pans'), ('rg-garden', NULL, 'Garden');
INSERT INTO personalisation.products (product_id, category_id, brand, in_stock) VALUES
  ('rg-knife', 'rg-knives', 'Sharp', true), ('rg-knife-oos', 'rg-knives', 'Sharp', false),
  ('rg-pan', 'rg-pans', 'Heat', true), ('rg-hose', 'rg-garden', 'Green', true);

-- A visitor views a knife, puts it in the cart, then looks at pans.
SELECT personalisation.track_page_view('rg-s1', NULL, 'rg-knife', '2026-03-01 10:00+00');
SELECT personalisation.track_cart_add('rg-s1', 'rg-knife', 1, '2026-03-01 10:05+00');
SELECT personalisation.track_page_view('rg-s1', 'rg-pans', NULL, '2026-03-01 10:30+00');

-- Its affinity, read at 11:00: the profile's decays over 14 days, the session's over 30 minutes.
SELECT CASE WHEN a.session_id = '' THEN 'profile' ELSE 'session' END AS scope,
       e.dimension, d.key, round(e.score::numeric, 4) AS score
  FROM personalisation.affinity a
  JOIN personalisation.sessions s USING (profile_id),
       personalisation._affinity_entries(a.entries, a.decayed_to, a.session_id <> '', '2026-03-01 11:00+00') e
  JOIN personalisation._affinity_dimensions d USING (dimension, key_hash)
 WHERE s.session_id = 'rg-s1'
 ORDER BY scope, e.score DESC, d.key;

-- Its ranking at 11:00, with the reasons (signals rounded for display).
SELECT product_id, round(score::numeric, 4) AS score, position,
       (SELECT jsonb_object_agg(k, CASE WHEN jsonb_typeof(v) = 'number' THEN to_jsonb(round(v::text::numeric, 4)) ELSE v END)
          FROM jsonb_each(reason) r (k, v)) AS reason
  FROM personalisation.rank_products('rg-s1', ARRAY['rg-hose', 'rg-knife-oos', 'rg-pan', 'rg-unknown', 'rg-knife'],
                                     explain => true, at => '2026-03-01 11:00+00');
SELECT category_id, round(score::numeric, 4) AS score, position
  FROM personalisation.rank_categories('rg-s1', ARRAY['rg-garden', 'rg-home', 'rg-pans', 'rg-knives'],
                                       at => '2026-03-01 11:00+00');
SELECT module, category_id, round(score::numeric, 4) AS score, position
  FROM personalisation.rank_modules('rg-s1',
         '[{"module": "garden-hero", "category_id": "rg-garden"}, {"module": "new-in"},
           {"module": "pans-hero", "category_id": "rg-pans"}]', at => '2026-03-01 11:00+00');
ROLLBACK;

-- Refused input.
SELECT * FROM personalisation.rank_products('rg-s1', NULL);
SELECT * FROM personalisation.rank_products('rg-s1', ARRAY[['a', 'b'], ['c', 'd']]);
SELECT * FROM personalisation.rank_products('rg-s1', ARRAY['a'], explain => NULL);
SELECT * FROM personalisation.rank_categories('', ARRAY['a']);
SELECT * FROM personalisation.rank_modules('rg-s1', '[{"module": "a"}, "b"]');
SELECT * FROM personalisation.rank_modules('rg-s1', '[{"module": "a", "category_id": 7}]');
SELECT * FROM personalisation.rank_modules('rg-s1', '[{"category_id": "c"}]');
SELECT * FROM personalisation.refresh_popularity('-infinity');
