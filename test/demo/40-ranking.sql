-- Walk-through: the homepage the shop would show, next to the one each visitor gets, and why.
\pset footer off
\echo
\echo '== Ranking: the popularity prior, computed from the last two weeks of views and purchases'
SELECT * FROM personalisation.refresh_popularity();

-- The homepage as the CMS describes it, in the shop's default order.
\set modules '[{"module": "Kitchen hero", "category_id": "kitchen"}, {"module": "Garden hero", "category_id": "garden"}, {"module": "Outdoor deals", "category_id": "outdoor"}, {"module": "Living room", "category_id": "living"}, {"module": "Beauty picks", "category_id": "beauty"}, {"module": "Pet corner", "category_id": "pets"}, {"module": "New arrivals"}]'

-- Sample visitors: the busiest personalised visitors who mostly browse pets
-- and the garden, and the busiest visitor in the holdout's control arm.
SELECT s.session_id AS pets_fan FROM personalisation.sessions s
  JOIN personalisation.events e USING (session_id)
 WHERE personalisation.holdout_arm(s.session_id) = 'personalised'
 GROUP BY s.session_id HAVING count(*) FILTER (WHERE e.category_id LIKE 'pets%') > count(*) / 2
 ORDER BY count(*) DESC, s.session_id LIMIT 1 \gset
SELECT s.session_id AS garden_fan FROM personalisation.sessions s
  JOIN personalisation.events e USING (session_id)
 WHERE personalisation.holdout_arm(s.session_id) = 'personalised'
 GROUP BY s.session_id HAVING count(*) FILTER (WHERE e.category_id LIKE 'garden%') > count(*) / 2
 ORDER BY count(*) DESC, s.session_id LIMIT 1 \gset
SELECT s.session_id AS held_out FROM personalisation.sessions s
  JOIN personalisation.events e USING (session_id)
 WHERE personalisation.holdout_arm(s.session_id) = 'control'
 GROUP BY s.session_id ORDER BY count(*) DESC, s.session_id LIMIT 1 \gset
-- the pets category the pets fan viewed most, for a category page at the end
SELECT category_id AS fan_category FROM personalisation.events
 WHERE session_id = :'pets_fan' AND category_id LIKE 'pets-%-%'
 GROUP BY category_id ORDER BY count(*) DESC, category_id LIMIT 1 \gset

-- why(reason): the signals behind a score, largest first, or why there are none
CREATE FUNCTION pg_temp.why(reason jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT ltrim(coalesce(
    (SELECT string_agg(replace(k, '_', ' ') || ' ' || round(v::text::numeric, 2), ', ' ORDER BY v::text::numeric DESC)
       FROM jsonb_each(reason) e (k, v) WHERE jsonb_typeof(v) = 'number' AND abs(v::text::numeric) >= 0.005), '')
  || coalesce((SELECT string_agg(' (' || replace(k, '_', ' ') || ')', '') FROM jsonb_each(reason) e (k, v)
                WHERE v = 'true'::jsonb), '')
  || CASE WHEN reason ->> 'arm' = 'control' THEN 'control arm: the shop''s order' ELSE '' END)
$$;

-- homepage(visitor): the shop's order next to the visitor's, and why
PREPARE homepage(text, jsonb) AS
SELECT r.position, d.m ->> 'module' AS shop_order, r.module AS this_visitor_sees,
       round(r.score::numeric, 2) AS score, pg_temp.why(r.reason) AS why
  FROM personalisation.rank_modules($1, $2, explain => true) r
  JOIN jsonb_array_elements($2) WITH ORDINALITY AS d (m, ord) ON d.ord = r.position
 ORDER BY r.position;

\echo '== A visitor who mostly browses pets,' :pets_fan '- the strongest interests, decayed to now:'
SELECT a.dimension, a.key, round(a.score::numeric, 2) AS score
  FROM personalisation.affinity_scores a JOIN personalisation.sessions s USING (profile_id)
 WHERE s.session_id = :'pets_fan' AND a.scope = 'profile'
 ORDER BY a.score DESC, a.key LIMIT 6;
\echo '   their homepage:'
EXECUTE homepage(:'pets_fan', :'modules');

\echo '== A visitor who mostly browses the garden,' :garden_fan
EXECUTE homepage(:'garden_fan', :'modules');

\echo '== A brand-new visitor: nothing known yet, so the popularity prior orders the page'
EXECUTE homepage('demo-newcomer', :'modules');

\echo '== Read-your-writes: the newcomer looks at two beauty products, and the very next page reflects it'
SELECT count(personalisation.track_page_view('demo-newcomer', NULL, product_id)) AS beauty_views
  FROM (SELECT product_id FROM personalisation.products
         WHERE category_id LIKE 'beauty%' AND in_stock ORDER BY product_id LIMIT 2) p;
EXECUTE homepage('demo-newcomer', :'modules');

\echo '== A visitor held out of ranking,' :held_out '- the control arm keeps the shop''s order'
EXECUTE homepage(:'held_out', :'modules');

\echo '== The pets fan on the' :fan_category 'category page: the shop lists it by sku, the ranking lifts what they viewed'
SELECT r.position, d.product_id AS shop_order, r.product_id AS this_visitor_sees,
       round(r.score::numeric, 2) AS score, pg_temp.why(r.reason) AS why
  FROM personalisation.rank_products(:'pets_fan',
         (SELECT array_agg(product_id ORDER BY product_id) FROM personalisation.products WHERE category_id = :'fan_category'),
         explain => true) r
  JOIN (SELECT product_id, row_number() OVER (ORDER BY product_id) AS ord
          FROM personalisation.products WHERE category_id = :'fan_category') d ON d.ord = r.position
 ORDER BY r.position LIMIT 10;

\echo '== Each visitor ranked above keeps the arm of its first ranking (personalisation.ranking_exposures);'
\echo '   part 80 measures what ranking is worth over a simulated week'
SELECT arm, count(*) AS sessions_ranked FROM personalisation.ranking_exposures GROUP BY arm ORDER BY arm DESC;
DEALLOCATE homepage;
