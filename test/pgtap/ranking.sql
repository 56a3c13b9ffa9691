-- Ranking: every candidate once, cold start by popularity, read-your-writes,
-- ancestors, out-of-stock and unknown candidates last, stable ties, the
-- session/profile blend, explanations, modules, and refused input.
BEGIN;
SELECT plan(36);
SET LOCAL personalisation.ranking_holdout_percent = 0;
-- the shrinkage these expectations are computed with (the default is 6)
SET LOCAL personalisation.session_shrinkage = 2;

-- rk-home > rk-kitchen > (rk-knives, rk-pans); rk-garden > rk-hoses
INSERT INTO personalisation.categories VALUES
  ('rk-home', NULL, 'Home'), ('rk-kitchen', 'rk-home', 'Kitchen'), ('rk-knives', 'rk-kitchen', 'Knives'),
  ('rk-pans', 'rk-kitchen', 'Pans'), ('rk-garden', NULL, 'Garden'), ('rk-hoses', 'rk-garden', 'Hoses');
INSERT INTO personalisation.products (product_id, category_id, brand, in_stock) VALUES
  ('rk-knife-1', 'rk-knives', 'rk-Sharp', true), ('rk-knife-2', 'rk-knives', 'rk-Sharp', false),
  ('rk-pan-1', 'rk-pans', 'rk-Heat', true), ('rk-pan-2', 'rk-pans', 'rk-Heat', true),
  ('rk-board', 'rk-kitchen', 'rk-Woody', true),
  ('rk-hose-1', 'rk-hoses', 'rk-Green', true), ('rk-hose-2', 'rk-hoses', 'rk-Green', true);
DELETE FROM personalisation.product_popularity;
DELETE FROM personalisation.category_popularity;

CREATE FUNCTION pg_temp.order_of(session text, candidates text[]) RETURNS text[] LANGUAGE sql AS $$
  SELECT array_agg(product_id ORDER BY position) FROM personalisation.rank_products(session, candidates)
$$;

-- Every candidate exactly once, whatever it is.
SELECT bag_eq(
  $$SELECT product_id FROM personalisation.rank_products('rk-new',
      ARRAY['rk-hose-1', 'rk-knife-2', 'rk-nope', 'rk-pan-1', 'rk-hose-1', 'rk-board', 'rk-nope'])$$,
  $$VALUES ('rk-hose-1'), ('rk-knife-2'), ('rk-nope'), ('rk-pan-1'), ('rk-board')$$,
  'every candidate comes back exactly once, repeats and unknown ones included');
SELECT results_eq(
  $$SELECT position FROM personalisation.rank_products('rk-new', ARRAY['rk-hose-1', 'rk-pan-1', 'rk-hose-1', 'rk-board'])
     ORDER BY position$$,
  $$VALUES (1), (2), (3)$$, 'positions run from 1 without gaps');
SELECT is_empty($$SELECT * FROM personalisation.rank_products('rk-new', '{}')$$, 'no candidates, no rows');

-- Cold start without any popularity: the shop's order, out-of-stock then unknown last.
SELECT is(pg_temp.order_of('rk-cold', ARRAY['rk-hose-1', 'rk-knife-2', 'rk-nope', 'rk-pan-1', 'rk-board']),
          ARRAY['rk-hose-1', 'rk-pan-1', 'rk-board', 'rk-knife-2', 'rk-nope'],
          'a new visitor without a prior gets the shop''s order, out-of-stock and unknown last');

-- Cold start with the popularity prior of other visitors' views and purchases.
SELECT personalisation.track_page_view('rk-crowd-' || i, NULL, 'rk-pan-2', now() - interval '5 minutes')
  FROM generate_series(1, 3) i;
SELECT personalisation.track_page_view('rk-crowd-' || i, NULL, 'rk-board', now() - interval '5 minutes')
  FROM generate_series(4, 5) i;
SELECT personalisation.track_purchase('rk-crowd-6', 'rk-order-1',
  '[{"product_id": "rk-hose-2", "quantity": 1, "unit_price": 20}]', now() - interval '5 minutes');
SELECT ok(products >= 3 AND categories >= 5, 'refresh_popularity computes products and categories')
  FROM personalisation.refresh_popularity();
SELECT is(pg_temp.order_of('rk-cold', ARRAY['rk-hose-1', 'rk-board', 'rk-pan-1', 'rk-pan-2', 'rk-hose-2']),
          ARRAY['rk-hose-2', 'rk-pan-2', 'rk-board', 'rk-hose-1', 'rk-pan-1'],
          'a new visitor gets the most popular first (a purchase 5, three views 3, two views 2), the rest in the shop''s order');
SELECT is((SELECT score FROM personalisation.rank_products('rk-cold', ARRAY['rk-hose-2'])),
          1::float8, 'the most popular product scores popularity_weight');

-- Read-your-writes: one view changes the very next ranking.
SELECT is(pg_temp.order_of('rk-ryw', ARRAY['rk-hose-1', 'rk-pan-1', 'rk-knife-1', 'rk-board']),
          ARRAY['rk-board', 'rk-hose-1', 'rk-pan-1', 'rk-knife-1'], 'before the view: popularity');
-- One view is one event: its affinity is shrunk to 1 / (1 + 2) and the popular board
-- (0.4 + 0.5 / 3 for the kitchen) stays ahead of the knife (1 / 3).
SELECT personalisation.track_page_view('rk-ryw', 'rk-knives', NULL, now() - interval '1 second');
SELECT is(pg_temp.order_of('rk-ryw', ARRAY['rk-hose-1', 'rk-pan-1', 'rk-knife-1', 'rk-board']),
          ARRAY['rk-board', 'rk-knife-1', 'rk-pan-1', 'rk-hose-1'],
          'right after one view of knives: the popular board (kitchen) still leads, then the knife, a sibling category, the garden');
SELECT personalisation.track_page_view('rk-ryw', 'rk-knives', NULL, now());
SELECT is(pg_temp.order_of('rk-ryw', ARRAY['rk-hose-1', 'rk-pan-1', 'rk-knife-1', 'rk-board']),
          ARRAY['rk-knife-1', 'rk-board', 'rk-pan-1', 'rk-hose-1'],
          'after a second view of knives: the knife, then the kitchen, then a sibling category, then the garden');

-- Out-of-stock goes last however well it scores; unknown after it.
SELECT is(pg_temp.order_of('rk-ryw', ARRAY['rk-nope', 'rk-knife-2', 'rk-hose-1']),
          ARRAY['rk-hose-1', 'rk-knife-2', 'rk-nope'], 'out-of-stock after in-stock, unknown after both');

-- Ties keep the shop's order, whichever it is.
SELECT is(pg_temp.order_of('rk-ryw', ARRAY['rk-pan-1', 'rk-hose-1', 'rk-hose-2x', 'rk-pan-2x']),
          ARRAY['rk-pan-1', 'rk-hose-1', 'rk-hose-2x', 'rk-pan-2x'], 'unknown candidates keep the shop''s order');
SET LOCAL personalisation.popularity_weight = 0;
SELECT is(pg_temp.order_of('rk-ryw', ARRAY['rk-pan-1', 'rk-pan-2']), ARRAY['rk-pan-1', 'rk-pan-2'],
          'two products with equal scores keep the shop''s order');
SELECT is(pg_temp.order_of('rk-ryw', ARRAY['rk-pan-2', 'rk-pan-1']), ARRAY['rk-pan-2', 'rk-pan-1'],
          'and swap when the shop swaps them');
SELECT is((SELECT count(DISTINCT score) FROM personalisation.rank_products('rk-ryw', ARRAY['rk-pan-1', 'rk-pan-2'])),
          1::bigint, 'their scores are indeed equal');
RESET personalisation.popularity_weight;

-- Decay on read: 200 days on, the knives interest has faded below the prior.
SELECT is((SELECT array_agg(product_id ORDER BY position)
             FROM personalisation.rank_products('rk-ryw', ARRAY['rk-knife-1', 'rk-hose-2'], at => now() + interval '200 days')),
          ARRAY['rk-hose-2', 'rk-knife-1'], 'ranking reads affinity decayed to its read time');

-- The session/profile blend: a second session of the same profile.
SELECT personalisation.track_page_view('rk-a', NULL, 'rk-hose-2', now() - interval '2 days') FROM generate_series(1, 5);
SELECT personalisation.track_page_view('rk-b', 'rk-kitchen', NULL, now() - interval '1 minute');
SELECT profile_id AS rk_b_orphan FROM personalisation.sessions WHERE session_id = 'rk-b' \gset
DELETE FROM personalisation.affinity WHERE profile_id = :rk_b_orphan;
UPDATE personalisation.sessions SET profile_id = (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'rk-a')
 WHERE session_id = 'rk-b';
SELECT personalisation.track_page_view('rk-b', 'rk-kitchen', NULL, now());
SET LOCAL personalisation.popularity_weight = 0;
SET LOCAL personalisation.session_weight = 0;
SELECT is(pg_temp.order_of('rk-b', ARRAY['rk-pan-1', 'rk-hose-1']), ARRAY['rk-hose-1', 'rk-pan-1'],
          'with session_weight 0 the profile''s older garden interest leads');
SET LOCAL personalisation.session_weight = 50;
SELECT is(pg_temp.order_of('rk-b', ARRAY['rk-pan-1', 'rk-hose-1']), ARRAY['rk-pan-1', 'rk-hose-1'],
          'with a heavy session_weight this session''s kitchen interest leads');
RESET personalisation.session_weight;
RESET personalisation.popularity_weight;

-- Explanations: the signals, rounded to 4 decimal places, sum to the score
-- (each is off by at most 0.00005), and say why a candidate went last.
SELECT ok(bool_and(abs(score - (SELECT coalesce(sum(value::text::float8), 0) FROM jsonb_each(reason)
                                 WHERE jsonb_typeof(value) = 'number')) < 0.0005),
          'every explanation''s signals sum to its score')
  FROM personalisation.rank_products('rk-b', ARRAY['rk-pan-1', 'rk-hose-1', 'rk-hose-2', 'rk-knife-2', 'rk-board', 'rk-nope'], true);
SELECT results_eq(
  $$SELECT product_id, reason - ARRAY['profile_category', 'profile_brand', 'profile_product', 'session_category', 'session_brand',
                           'session_product', 'popularity', 'category_from']
      FROM personalisation.rank_products('rk-b', ARRAY['rk-knife-2', 'rk-nope', 'rk-hose-1'], true) ORDER BY position$$,
  $$VALUES ('rk-hose-1', '{"arm": "personalised", "session_shrinkage": {"events": 1, "weight": 0.3333}}'::jsonb),
           ('rk-knife-2', '{"arm": "personalised", "session_shrinkage": {"events": 1, "weight": 0.3333}, "out_of_stock": true}'),
           ('rk-nope', '{"arm": "personalised", "session_shrinkage": {"events": 1, "weight": 0.3333}, "unknown": true}')$$,
  'the explanation names the arm and why a candidate went last');
SELECT ok((SELECT reason ? 'profile_brand' AND reason ? 'profile_category' AND reason ? 'profile_product'
             FROM personalisation.rank_products('rk-b', ARRAY['rk-hose-2'], true)),
          'the explanation names the product, category and brand signals');
SELECT is((SELECT reason FROM personalisation.rank_products('rk-b', ARRAY['rk-hose-2'])), NULL,
          'without explain there is no reason');
SELECT ok(bool_and(scale(value::text::numeric) <= 4 AND value::text::numeric <> 0),
          'an explanation''s figures are rounded to 4 decimal places, and none is 0')
  FROM personalisation.rank_products('rk-b', ARRAY['rk-pan-1', 'rk-hose-1', 'rk-hose-2', 'rk-knife-1', 'rk-board'], true),
       jsonb_each(reason) WHERE jsonb_typeof(value) = 'number';
-- Two years on, the profile's garden interest (rk-a's views) has decayed to about 1e-15: the score
-- keeps it, the explanation leaves it out.
SET LOCAL personalisation.popularity_weight = 0;
SELECT ok((SELECT score > 0 AND score < 1e-9 AND reason - 'session_shrinkage' = '{"arm": "personalised"}'
             FROM personalisation.rank_products('rk-b', ARRAY['rk-hose-2'], true, now() + interval '2 years')),
          'the score stays exact while the explanation leaves out what rounds to 0');
RESET personalisation.popularity_weight;
-- rk-b looked at rk-kitchen: a pan (rk-pans, under rk-kitchen) inherits that affinity, and says so.
SELECT is((SELECT array_agg(k ORDER BY k) FROM personalisation.rank_products('rk-b', ARRAY['rk-pan-1'], true),
                  jsonb_object_keys(reason -> 'category_from') k),
          ARRAY['rk-home', 'rk-kitchen'],
          'an inherited category affinity names the categories it came from, not the product''s own');
SELECT ok((SELECT abs(coalesce((reason ->> 'profile_category')::numeric, 0) + coalesce((reason ->> 'session_category')::numeric, 0)
                      - (SELECT sum(v::text::numeric) FROM jsonb_each(reason -> 'category_from') c (k, v))) <= 0.0002
             FROM personalisation.rank_products('rk-b', ARRAY['rk-pan-1'], true)),
          'the categories'' parts sum to the category signals');

-- Categories and modules.
SET LOCAL personalisation.popularity_weight = 0;
SELECT results_eq(
  $$SELECT category_id FROM personalisation.rank_categories('rk-ryw', ARRAY['rk-garden', 'rk-pans', 'rk-nope', 'rk-knives'])
     ORDER BY position$$,
  $$VALUES ('rk-knives'), ('rk-pans'), ('rk-garden'), ('rk-nope')$$,
  'categories rank by affinity with their ancestors, unknown last');
SELECT results_eq(
  $$SELECT module, category_id FROM personalisation.rank_modules('rk-ryw',
      '[{"module": "garden-hero", "category_id": "rk-garden"}, {"module": "newsletter"},
        {"module": "ghost", "category_id": "rk-nope"}, {"module": "kitchen-hero", "category_id": "rk-kitchen"},
        {"module": "garden-hero", "category_id": "rk-garden"}]') ORDER BY position$$,
  $$VALUES ('kitchen-hero', 'rk-kitchen'), ('garden-hero', 'rk-garden'), ('newsletter', NULL), ('ghost', 'rk-nope')$$,
  'modules rank by their category; without one they keep their place among equals; unknown last; repeats once');
RESET personalisation.popularity_weight;
SELECT results_eq(
  $$SELECT category_id FROM personalisation.rank_categories('rk-cold', ARRAY['rk-knives', 'rk-home', 'rk-garden', 'rk-pans'])
     ORDER BY position$$,
  $$VALUES ('rk-pans'), ('rk-garden'), ('rk-home'), ('rk-knives')$$,
  'a new visitor gets categories by popularity, ancestors counting their children''s damped');

-- Refused input.
SELECT throws_ok($$SELECT * FROM personalisation.rank_products(NULL, ARRAY['a'])$$, '22004',
                 'session_id must not be null', 'a NULL session is refused');
SELECT throws_ok($$SELECT * FROM personalisation.rank_products('s', ARRAY['a', NULL])$$, '22004',
                 'candidate 2 is null', 'a NULL candidate is refused');
SELECT throws_ok($$SELECT * FROM personalisation.rank_products('s', ARRAY['a', ' '])$$, '22023',
                 'candidate must not be empty', 'an empty candidate is refused');
SELECT throws_ok($$SELECT * FROM personalisation.rank_categories('s', array_fill('c'::text, ARRAY[10001]))$$, '54000',
                 '10001 candidates are more than the 10000 one call ranks', 'too many candidates are refused');
SELECT throws_ok($$SELECT * FROM personalisation.rank_modules('s', '{"hero": "rk-garden"}')$$, '22023',
                 'modules must be a JSON array', 'modules as an object (which loses the order) are refused');
SELECT throws_ok($$SELECT * FROM personalisation.rank_modules('s', '[{"module": hero}]')$$, '22P02',
                 'modules is not valid JSON: "[{"module": hero}]"', 'a JSON syntax error names the argument');
SELECT throws_ok($$SELECT * FROM personalisation.rank_products('s', ARRAY['a'], at => 'infinity')$$, '22008',
                 'at must be a finite timestamp', 'an infinite read time is refused');

SELECT * FROM finish();
ROLLBACK;
