-- 100 page views of 100 sessions in one track_events call (the batch a consumer would send).
\set base random(0, 9900)
\set product random(1, 19900)
\set id random(1, 9000000000000000)
SELECT personalisation.track_events(
  (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'kind', 'page_view', 'session_id', 's' || (:base + i), 'product_id', 'p' || (:product + i),
            'event_id', :id || '-' || i))
     FROM pg_catalog.generate_series(1, 100) i));
