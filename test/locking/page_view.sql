-- A product page view on a session of one of the customers.
\set c random(1, :customers)
\set s random(1, :sessions)
\set p random(1, 6)
WITH call AS (SELECT personalisation.track_page_view('lk-' || :c || '-' || :s, NULL, 'lk-p' || :p) AS result)
INSERT INTO locking_calls (kind) SELECT 'page_view' FROM call;
