-- The navigation: 10 top-level categories ranked for the visitor.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
SELECT count(*) FROM personalisation.rank_categories('ls' || :sid, ARRAY(SELECT 'c' || g FROM generate_series(1, 10) g));
