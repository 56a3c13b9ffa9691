-- The cart page's recommendations.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
SELECT count(*) FROM personalisation.recommend_for_cart('ls' || :sid, 10);
