-- The affinity model: decay against the closed form, out-of-order events,
-- ancestor propagation, weights, the entry cap, rebuild and fold.
BEGIN;
SELECT plan(30);

-- af-home > af-kitchen > af-knives > af-chef, and af-garden
INSERT INTO personalisation.categories VALUES
  ('af-home', NULL, 'Home'), ('af-kitchen', 'af-home', 'Kitchen'),
  ('af-knives', 'af-kitchen', 'Knives'), ('af-chef', 'af-knives', 'Chef knives'),
  ('af-garden', NULL, 'Garden');
INSERT INTO personalisation.products (product_id, category_id, brand) VALUES
  ('af-p1', 'af-chef', 'af-Sharp'), ('af-p2', 'af-knives', 'af-Sharp'),
  ('af-p3', 'af-garden', 'af-Green'), ('af-p4', 'af-kitchen', NULL);
INSERT INTO personalisation.products (product_id, category_id)
SELECT 'af-bulk-' || i, 'af-garden' FROM generate_series(1, 40) i;

-- the current score of a session's visitor, in the profile or the session scope
CREATE FUNCTION pg_temp.score(session text, scope text, dimension text, key text)
RETURNS float8 LANGUAGE sql AS $$
  SELECT coalesce(sum(a.score), 0)
    FROM personalisation.affinity_scores a
    JOIN personalisation.sessions s ON s.profile_id = a.profile_id
   WHERE s.session_id = $1 AND a.scope = $2 AND coalesce(a.session_id, $1) = $1
     AND a.dimension = $3 AND a.key = $4
$$;
-- whether two numbers agree to float4 precision
CREATE FUNCTION pg_temp.close(actual float8, expected float8) RETURNS boolean LANGUAGE sql AS $$
  SELECT abs(actual - expected) <= 1e-5 * greatest(abs(expected), 1e-3)
$$;

-- Decay: events of one product arriving out of order, against
-- sum(weight * 2^(-age / half-life)) at now().
CREATE TEMP TABLE decay_events (kind text, age interval, weight float8);
INSERT INTO decay_events VALUES
  ('page_view', '50 hours', 1), ('cart_add', '3 hours', 3), ('page_view', '26 hours', 1),
  ('cart_remove', '2 hours', -2), ('page_view', '10 minutes', 1), ('purchase', '20 minutes', 5),
  ('page_view', '5 days', 1);
SELECT CASE kind
         WHEN 'page_view' THEN personalisation.track_page_view('af-decay', NULL, 'af-p1', now() - age)
         WHEN 'cart_add' THEN personalisation.track_cart_add('af-decay', 'af-p1', 1, now() - age)
         WHEN 'cart_remove' THEN personalisation.track_cart_remove('af-decay', 'af-p1', 1, now() - age)
         WHEN 'purchase' THEN personalisation.track_purchase('af-decay', 'af-o1',
                               '[{"product_id": "af-p1", "quantity": 1, "unit_price": 10}]', now() - age)
       END
  FROM decay_events;
CREATE TEMP VIEW closed_form AS
SELECT sum(weight * 2 ^ (-extract(epoch FROM age) / (14 * 86400))) AS profile,
       sum(weight * 2 ^ (-extract(epoch FROM age) / 1800)) AS session
  FROM decay_events;

SELECT ok(pg_temp.close(pg_temp.score('af-decay', 'profile', 'product', 'af-p1'), profile),
          'profile product score is the closed form (14-day half-life)') FROM closed_form;
SELECT ok(pg_temp.close(pg_temp.score('af-decay', 'session', 'product', 'af-p1'), session),
          'session product score is the closed form (30-minute half-life)') FROM closed_form;
SELECT ok(pg_temp.close(pg_temp.score('af-decay', 'profile', 'brand', 'af-Sharp'), profile),
          'the brand gets the full weight') FROM closed_form;
SELECT ok(pg_temp.close(pg_temp.score('af-decay', 'profile', 'category', 'af-chef'), profile),
          'the product''s category gets the full weight') FROM closed_form;
SELECT ok(pg_temp.close(pg_temp.score('af-decay', 'profile', 'category', 'af-home'), profile * 0.125),
          'the third ancestor gets damping^3 of it') FROM closed_form;

-- Reading decays to the read time: affinity_entries at now() + one half-life halves.
SELECT ok(pg_temp.close(
  (SELECT e.score FROM personalisation.affinity a JOIN personalisation.sessions s USING (profile_id),
          personalisation._affinity_entries(a.entries, a.decayed_to, false, now() + interval '14 days') e
    WHERE s.session_id = 'af-decay' AND a.session_id = ''
      AND e.key_hash = personalisation._affinity_key('product', 'af-p1')),
  pg_temp.score('af-decay', 'profile', 'product', 'af-p1') / 2),
  'a read one half-life later reads half');

-- The same events in opposite orders give the same affinity.
SELECT personalisation.track_page_view('af-order-a', NULL, p, now() - age)
  FROM (VALUES ('af-p1', interval '9 hours'), ('af-p3', '7 hours'), ('af-p2', '2 hours'), ('af-p4', '1 minute')) v (p, age)
 ORDER BY age DESC;
SELECT personalisation.track_page_view('af-order-b', NULL, p, now() - age)
  FROM (VALUES ('af-p1', interval '9 hours'), ('af-p3', '7 hours'), ('af-p2', '2 hours'), ('af-p4', '1 minute')) v (p, age)
 ORDER BY age;
SELECT is((SELECT count(*) FROM personalisation.affinity_scores a JOIN personalisation.sessions s USING (profile_id)
            WHERE s.session_id = 'af-order-a' AND a.scope = 'profile'), 11::bigint,
          'four product views give 4 products, 2 brands, 5 categories');
SELECT ok(bool_and(pg_temp.close(pg_temp.score('af-order-b', scope, dimension, key), score)),
          'arrival order does not change any score')
  FROM personalisation.affinity_scores a JOIN personalisation.sessions s USING (profile_id)
 WHERE s.session_id = 'af-order-a';

-- Ancestors: a category view credits each ancestor damping^k of the weight.
SELECT personalisation.track_page_view('af-anc', 'af-chef', occurred_at => now());
CREATE FUNCTION pg_temp.profile_scores(session text) RETURNS TABLE (key text, score numeric) LANGUAGE sql AS $$
  SELECT a.key, round(a.score::numeric, 6) FROM personalisation.affinity_scores a
    JOIN personalisation.sessions s USING (profile_id)
   WHERE s.session_id = session AND a.scope = 'profile' ORDER BY a.score DESC
$$;
SELECT results_eq($$SELECT * FROM pg_temp.profile_scores('af-anc')$$,
  $$VALUES ('af-chef', 1.0), ('af-knives', 0.5), ('af-kitchen', 0.25), ('af-home', 0.125)$$,
  'a category view credits the category and its ancestors with damping 0.5');
SET LOCAL personalisation.ancestor_damping = 0.2;
SELECT personalisation.track_page_view('af-anc2', 'af-chef', occurred_at => now());
SELECT results_eq($$SELECT * FROM pg_temp.profile_scores('af-anc2')$$,
  $$VALUES ('af-chef', 1.0), ('af-knives', 0.2), ('af-kitchen', 0.04), ('af-home', 0.008)$$,
  'the damping is personalisation.ancestor_damping');
RESET personalisation.ancestor_damping;
SELECT is(pg_temp.score('af-anc', 'session', 'category', 'af-knives'), 0.5::float8,
          'the session scope gets the same credits');

-- A product without a brand credits the product and its category path only.
SELECT personalisation.track_page_view('af-nobrand', NULL, 'af-p4', now());
SELECT results_eq(
  $$SELECT dimension, key, score FROM personalisation.affinity_scores a
      JOIN personalisation.sessions s USING (profile_id)
     WHERE s.session_id = 'af-nobrand' AND a.scope = 'profile' ORDER BY score DESC, key$$,
  $$VALUES ('category', 'af-kitchen', 1::float8), ('product', 'af-p4', 1), ('category', 'af-home', 0.5)$$,
  'a product view credits product, category and ancestors');

-- Weights are GUCs; a cart removal lowers interest; a purchase counts per line.
SET LOCAL personalisation.page_view_weight = 2.5;
SELECT personalisation.track_page_view('af-heavy', NULL, 'af-p3', now());
SELECT is(pg_temp.score('af-heavy', 'profile', 'product', 'af-p3'), 2.5::float8,
          'a page view adds personalisation.page_view_weight');
RESET personalisation.page_view_weight;
SELECT personalisation.track_page_view('af-weights', NULL, 'af-p3', now());
SELECT personalisation.track_cart_add('af-weights', 'af-p3', 2, now());
SELECT personalisation.track_cart_remove('af-weights', 'af-p3', NULL, now());
SELECT is(pg_temp.score('af-weights', 'profile', 'product', 'af-p3'), 2::float8,
          'a cart add adds 3 and a removal takes 2 back');
SELECT personalisation.track_purchase('af-weights', 'af-o2',
  '[{"product_id": "af-p1", "quantity": 4, "unit_price": 1}, {"product_id": "af-p2", "quantity": 1, "unit_price": 1}]', now());
SELECT is(pg_temp.score('af-weights', 'profile', 'brand', 'af-Sharp'), 10::float8,
          'each order line adds the purchase weight, whatever its quantity');

-- The cap: beyond personalisation.affinity_max_entries the weakest go.
SET LOCAL personalisation.affinity_max_entries = 16;
SELECT personalisation.track_page_view('af-cap', NULL, 'af-p1', now() - interval '1 minute') FROM generate_series(1, 3);
SELECT personalisation.track_page_view('af-cap', NULL, 'af-bulk-' || i, now()) FROM generate_series(1, 40) i;
SELECT is((SELECT count(*) FROM personalisation.affinity_scores a JOIN personalisation.sessions s USING (profile_id)
            WHERE s.session_id = 'af-cap' AND a.scope = 'profile'), 16::bigint,
          'a profile keeps at most affinity_max_entries scores');
SELECT ok(pg_temp.score('af-cap', 'profile', 'product', 'af-p1') > 2.99
          AND pg_temp.score('af-cap', 'profile', 'category', 'af-garden') > 39.9,
          'the strongest scores are kept');
RESET personalisation.affinity_max_entries;

-- Tracking off changes nothing; rebuild_affinity replays the event log.
CREATE TEMP TABLE before_rebuild AS
SELECT scope, dimension, key, score FROM personalisation.affinity_scores a
  JOIN personalisation.sessions s USING (profile_id) WHERE s.session_id = 'af-weights';
SET LOCAL personalisation.affinity_tracking = off;
SELECT personalisation.track_page_view('af-weights', NULL, 'af-p3', now());
SELECT ok(pg_temp.close(pg_temp.score('af-weights', 'profile', 'product', 'af-p3'), 2),
          'with affinity_tracking off an event leaves affinity alone');
SELECT is(personalisation.rebuild_affinity(profile_id), 6::bigint,
          'rebuild replays the profile''s events, a purchase once per line')
  FROM personalisation.sessions WHERE session_id = 'af-weights';
RESET personalisation.affinity_tracking;
SELECT ok(pg_temp.close(pg_temp.score('af-weights', 'profile', 'product', 'af-p3'), 3),
          'the rebuilt affinity counts the event tracked without it');
SELECT ok(bool_and(pg_temp.close(pg_temp.score('af-weights', scope, dimension, key),
                                 score + CASE WHEN key IN ('af-p3', 'af-Green', 'af-garden') THEN 1 ELSE 0 END)),
          'the rebuilt affinity equals the one built event by event')
  FROM before_rebuild;
SELECT is(personalisation.rebuild_affinity(), (SELECT count(*) FROM personalisation.events e
            LEFT JOIN personalisation.order_lines l ON e.kind = 'purchase' AND l.order_id = e.order_id
           WHERE e.category_id IS NOT NULL OR e.product_id IS NOT NULL OR e.kind = 'purchase'),
          'rebuild_affinity() replays every event');
SELECT ok(pg_temp.close(pg_temp.score('af-decay', 'profile', 'product', 'af-p1'), profile),
          'a full rebuild gives the closed form again') FROM closed_form;

-- Folding two profiles' affinity (what a merge does) adds their scores.
SELECT ok(bool_and(pg_temp.close(f.score,
            pg_temp.score('af-order-a', 'profile', d.dimension, d.key) + pg_temp.score('af-anc', 'profile', d.dimension, d.key))),
          'the fold of two affinities is their sum')
  FROM personalisation.affinity a JOIN personalisation.sessions sa ON sa.profile_id = a.profile_id,
       personalisation.affinity b JOIN personalisation.sessions sb ON sb.profile_id = b.profile_id,
       personalisation._affinity_entries(personalisation.affinity_fold(a.entries, a.decayed_to, b.entries, b.decayed_to, false),
                                        greatest(a.decayed_to, b.decayed_to), false) f
       JOIN personalisation._affinity_dimensions d USING (dimension, key_hash)
 WHERE sa.session_id = 'af-order-a' AND a.session_id = '' AND sb.session_id = 'af-anc' AND b.session_id = '';

-- Session rows expire 20 session half-lives after their last event; profile rows stay.
SELECT personalisation.track_page_view('af-old', 'af-garden', NULL, now() - interval '11 hours');
SELECT personalisation.track_page_view('af-recent', 'af-garden', NULL, now() - interval '9 hours');
SELECT cmp_ok(personalisation.expire_session_affinity(), '>=', 1::bigint, 'expire_session_affinity deletes old session rows');
SELECT results_eq(
  $$SELECT s.session_id, a.session_id = '' FROM personalisation.affinity a JOIN personalisation.sessions s USING (profile_id)
     WHERE s.session_id IN ('af-old', 'af-recent') ORDER BY 1, 2$$,
  $$VALUES ('af-old', true), ('af-recent', false), ('af-recent', true)$$,
  'the old session''s row is gone, the recent one and both profiles stay');

SELECT throws_ok($$SELECT personalisation._affinity_key('colour', 'red')$$, '22023',
                 'unknown affinity dimension "colour"', 'an unknown dimension is refused');
SELECT throws_ok($$SELECT personalisation.affinity_fold('\x0102'::bytea, now(), ''::bytea, now(), false)$$, 'XX001',
                 'affinity entries of 2 bytes are corrupt', 'stored entries of the wrong length are refused');
SELECT throws_ok($$SELECT * FROM personalisation._affinity_entries(decode(repeat('00', 12), 'hex'), now(), false)$$, 'XX001',
                 'affinity entries of 12 bytes are corrupt', 'a stored key without a dimension is refused');
SELECT throws_ok($$SELECT personalisation.expire_session_affinity(NULL)$$, '22004',
                 'now must not be null', 'a NULL time is refused');

SELECT * FROM finish();
ROLLBACK;
