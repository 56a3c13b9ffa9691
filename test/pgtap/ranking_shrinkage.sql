-- Ranking's session shrinkage and the live session counted once: exact
-- scores from the closed form of the affinity model, computed here
-- independently of the C code (2^(-age / half-life) per view).
BEGIN;
SELECT plan(9);
SET LOCAL personalisation.ranking_holdout_percent = 0;
SET LOCAL personalisation.popularity_weight = 0;
SET LOCAL personalisation.session_shrinkage = 2;

-- explicit instants, inside the event retention: day 0 is three days ago
SELECT date_trunc('day', now()) - interval '3 days' AS day0 \gset
INSERT INTO personalisation.categories VALUES ('sh-cat', NULL, 'Shrinkage');
INSERT INTO personalisation.products (product_id, category_id, brand, in_stock) VALUES
  ('sh-p', 'sh-cat', NULL, true), ('sh-q', 'sh-cat', NULL, true);

-- A customer viewed sh-p two days ago on a desktop; today, logged in on a phone, the
-- live session views sh-p at 10:00 and 10:10.  Ranked at 10:20.
SELECT personalisation.track_page_view('sh-desk', NULL, 'sh-p', (:'day0'::timestamptz + interval '10 hours'));
SELECT personalisation.identify('sh-desk', 'sh-cust', NULL, (:'day0'::timestamptz + interval '10 hours 1 minute'));
SELECT personalisation.identify('sh-phone', 'sh-cust', NULL, (:'day0'::timestamptz + interval '2 days 9 hours 59 minutes'));
SELECT personalisation.track_page_view('sh-phone', NULL, 'sh-p', (:'day0'::timestamptz + interval '2 days 10 hours'));
SELECT personalisation.track_page_view('sh-phone', NULL, 'sh-p', (:'day0'::timestamptz + interval '2 days 10 hours 10 minutes'));

CREATE TEMP TABLE ranked AS
SELECT product_id, score, reason
  FROM personalisation.rank_products('sh-phone', ARRAY['sh-p'], true, (:'day0'::timestamptz + interval '2 days 10 hours 20 minutes'));
-- session: two views, 20 and 10 minutes old (30-minute half-life), weighted 2 / (2 + 2)
\set session_part '(0.5 * (2 ^ (-20.0 / 30) + 2 ^ (-10.0 / 30)))'
-- profile: only the desktop view, two days and 20 minutes old (14-day half-life)
\set profile_part '(2 ^ (-(2 * 1440 + 20.0) / (14 * 1440)))'

SELECT ok(abs(score - (2 * :session_part + 2 * :profile_part)) < 1e-5,
          'score = shrunk session (product + category) + the profile without the live session')
  FROM ranked;
SELECT ok(abs((reason ->> 'session_product')::numeric - round(:session_part, 4)) <= 0.0001,
          'session_product is the session''s two views, weighted n / (n + k) = 0.5')
  FROM ranked;
SELECT ok(abs((reason ->> 'profile_product')::numeric - round(:profile_part, 4)) <= 0.0001,
          'profile_product is the desktop view alone: the live session''s views are not counted twice')
  FROM ranked;
SELECT is(reason -> 'session_shrinkage', '{"events": 2, "weight": 0.5}'::jsonb,
          'the explanation shows the session''s events and the weight they give it')
  FROM ranked;

-- The stored profile row does hold the phone's views (what is written per event is unchanged).
SELECT ok(abs(s.score - (SELECT sum(2 ^ (-extract(epoch FROM now() - t) / (14 * 86400)))
                           FROM unnest(ARRAY[interval '10 hours', '2 days 10 hours', '2 days 10 hours 10 minutes']) o,
                                LATERAL (SELECT :'day0'::timestamptz + o AS t) x)) < 1e-4,
          'the stored profile affinity (read now) still has all three views')
  FROM personalisation.affinity_scores s
 WHERE s.scope = 'profile' AND s.dimension = 'product' AND s.key = 'sh-p'
   AND s.profile_id = (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'sh-phone');

-- One view: weight 1 / 3.
SELECT personalisation.track_page_view('sh-one', NULL, 'sh-q', (:'day0'::timestamptz + interval '2 days 10 hours'));
SELECT ok(abs(score - 2 * (1.0 / 3)) < 1e-6, 'one view of a new visitor is worth 1/3 per signal with k = 2')
  FROM personalisation.rank_products('sh-one', ARRAY['sh-q'], false, (:'day0'::timestamptz + interval '2 days 10 hours'));
SET LOCAL personalisation.session_shrinkage = 0;
SELECT ok(abs(score - 2) < 1e-6, 'session_shrinkage 0 turns the shrinkage off')
  FROM personalisation.rank_products('sh-one', ARRAY['sh-q'], false, (:'day0'::timestamptz + interval '2 days 10 hours'));
RESET personalisation.session_shrinkage;
SELECT ok(abs(score - 2 * (1.0 / 7)) < 1e-6, 'the default shrinkage, 6, weighs one view 1/7')
  FROM personalisation.rank_products('sh-one', ARRAY['sh-q'], false, (:'day0'::timestamptz + interval '2 days 10 hours'));

-- A second visitor's session is not taken off this profile: sh-q's profile score is sh-one's own
-- session, which is taken off, so nothing is left.
SELECT is((SELECT reason ? 'profile_product' FROM personalisation.rank_products('sh-one', ARRAY['sh-q'], true,
                                                                                 (:'day0'::timestamptz + interval '2 days 10 hours'))),
          false, 'a new visitor''s profile, all of it the live session, adds nothing on top of the session');

SELECT * FROM finish();
ROLLBACK;
