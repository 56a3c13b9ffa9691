-- Affinity across identity: a login folds the anonymous profile's affinity
-- into the customer's (the union of both histories, at once), the session's
-- ranking and holdout arm become the customer's, and unmerge gives each
-- profile back the affinity of its own events.
BEGIN;
SELECT plan(9);
SET LOCAL personalisation.ranking_holdout_percent = 0;

INSERT INTO personalisation.categories VALUES ('afm-garden', NULL, 'Garden'), ('afm-kitchen', NULL, 'Kitchen');
INSERT INTO personalisation.products (product_id, category_id, brand) VALUES
  ('afm-hose', 'afm-garden', 'afm-Green'), ('afm-pan', 'afm-kitchen', 'afm-Heat');

CREATE FUNCTION pg_temp.profile_score(profile bigint, dimension text, key text) RETURNS float8 LANGUAGE sql AS $$
  SELECT coalesce(sum(score), 0) FROM personalisation.affinity_scores
   WHERE profile_id = profile AND scope = 'profile' AND affinity_scores.dimension = $2 AND affinity_scores.key = $3
$$;
CREATE FUNCTION pg_temp.close(actual float8, expected float8) RETURNS boolean LANGUAGE sql AS $$
  SELECT abs(actual - expected) <= 1e-5 * greatest(abs(expected), 1e-3)
$$;

-- The customer, known from the desktop, likes kitchen things; the phone, anonymous, the garden.
SELECT personalisation.track_page_view('afm-desk', NULL, 'afm-pan', now() - interval '2 days') FROM generate_series(1, 3);
SELECT personalisation.identify('afm-desk', 'afm-cust', NULL, now() - interval '2 days') AS desk \gset
SELECT personalisation.track_page_view('afm-phone', NULL, 'afm-hose', now() - interval '10 minutes');
SELECT personalisation.track_cart_add('afm-phone', 'afm-hose', 1, now() - interval '5 minutes');
SELECT profile_id AS phone FROM personalisation.sessions WHERE session_id = 'afm-phone' \gset
SELECT pg_temp.profile_score(:desk, 'product', 'afm-pan') AS desk_pan \gset
SELECT is((SELECT array_agg(product_id ORDER BY position) FROM personalisation.rank_products('afm-phone', ARRAY['afm-pan', 'afm-hose'])),
          ARRAY['afm-hose', 'afm-pan'], 'the anonymous phone ranks by its own garden interest');

SELECT is(personalisation.identify('afm-phone', 'afm-cust', NULL, now()), :desk::bigint, 'the phone logs in as the customer');
SELECT ok(pg_temp.close(pg_temp.profile_score(:desk, 'product', 'afm-hose'),
                        2 ^ (-600.0 / (14 * 86400)) + 3 * 2 ^ (-300.0 / (14 * 86400)))
          AND pg_temp.close(pg_temp.profile_score(:desk, 'product', 'afm-pan'), :desk_pan),
          'the customer''s affinity is the union of both histories');
SELECT is((SELECT count(*) FROM personalisation.affinity WHERE profile_id = :phone), 0::bigint,
          'the anonymous profile keeps no affinity');
SELECT is((SELECT count(*) FROM personalisation.affinity WHERE profile_id = :desk AND session_id = 'afm-phone'), 1::bigint,
          'the phone''s session affinity moved with it');
SELECT is(personalisation.holdout_arm('afm-phone'), personalisation._holdout_arm(NULL, :desk::bigint),
          'the phone''s holdout arm is now the customer''s');

-- After the login, the phone ranks by the customer's profile too.
SELECT personalisation.track_page_view('afm-phone', 'afm-kitchen', NULL, now());
SELECT ok((SELECT score FROM personalisation.rank_products('afm-phone', ARRAY['afm-pan'], true)) >
          (SELECT score FROM personalisation.rank_products('afm-desk', ARRAY['afm-pan'], true)),
          'the phone''s ranking adds its session''s kitchen view to the customer''s profile');

-- Unmerge: each profile gets the affinity of the events it now holds.
SELECT is(personalisation.unmerge(merge_id, now()), :phone::bigint, 'unmerge gives the phone its profile back')
  FROM personalisation.merges WHERE from_profile_id = :phone;
SELECT ok(pg_temp.close(pg_temp.profile_score(:phone, 'product', 'afm-hose'),
                        2 ^ (-600.0 / (14 * 86400)) + 3 * 2 ^ (-300.0 / (14 * 86400)))
          AND pg_temp.profile_score(:desk, 'product', 'afm-hose') = 0
          AND pg_temp.close(pg_temp.profile_score(:desk, 'product', 'afm-pan'), :desk_pan)
          AND pg_temp.close(pg_temp.profile_score(:desk, 'category', 'afm-kitchen'), :desk_pan + 1),
          'after unmerge the phone has its garden interest back and the customer keeps what it did since the login');

SELECT * FROM finish();
ROLLBACK;
