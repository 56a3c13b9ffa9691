-- The same 100 page views as track_events_batch.sql, as 100 track_page_view calls in one statement.
\set base random(0, 9900)
\set product random(1, 19900)
\set id random(1, 9000000000000000)
SELECT pg_catalog.count(personalisation.track_page_view('s' || (:base + i), NULL, 'p' || (:product + i), now(),
                                                        :id || '-' || i))
  FROM pg_catalog.generate_series(1, 100) i;
