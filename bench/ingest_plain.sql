\set session random(1, 10000)
\set product random(1, 20000)
\set id random(1, 9000000000000000)
INSERT INTO bench_plain_events (event_id, kind, occurred_at, profile_id, session_id, category_id, product_id)
VALUES (:id::text, 'page_view', now(), :session, 's' || :session, NULL, 'p' || :product);
