-- A product page view, among the ten products this visitor browses.
-- Sessions are split between clients (session number = client_id modulo
-- clients), so each visitor's events arrive in order.
\set sid :client_id + :clients * random(0, :sessions_per_client - 1)
\set product 1 + (:sid * 13 + random(0, 9)) % :products
SELECT personalisation.track_page_view('ls' || :sid, NULL, 'p' || :product);
