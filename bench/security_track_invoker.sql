\set session random(1, 10000)
\set product random(1, 20000)
\set id random(1, 9000000000000000)
SELECT public.track_page_view_invoker('s' || :session, NULL, 'p' || :product, now(), :id::text);
