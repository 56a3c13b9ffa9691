-- A listing page: 24 products, around the ones this visitor browses, ranked for them.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
\set first :sid * 13 + random(-12, 0)
SELECT count(*) FROM personalisation.rank_products('ls' || :sid,
  ARRAY(SELECT 'p' || (1 + (:first + g + :products) % :products) FROM generate_series(0, 23) g));
