-- bench/journeys_setup.sql: :carts shoppers at :'t0', written straight into
-- the tables (tracking them one call at a time is ingestion's benchmark, not
-- this one's): each with a known, consenting email, a browser session that
-- granted push, two products in the cart and a page view of each.  The
-- journeys send to everyone (no holdout, no cap, no quiet hours).
\set ON_ERROR_STOP on
ALTER DATABASE :"DBNAME" SET personalisation.journey_holdout_percent = 0;
ALTER DATABASE :"DBNAME" SET personalisation.frequency_cap = 0;
INSERT INTO personalisation.categories VALUES ('b-cat', NULL, 'Bench');
INSERT INTO personalisation.products (product_id, category_id, name, price, url, image_url)
SELECT 'b-p' || i, 'b-cat', 'Product ' || i, 10 + i % 90,
       'https://shop.test/p/' || i, 'https://img.test/p/' || i || '.jpg'
  FROM generate_series(0, 999) i;
-- one tracked call creates the day partition the events below go to
SELECT personalisation.track_page_view('b-0', 'b-cat', NULL, :'t0'::timestamptz - interval '1 hour');
CREATE TEMP TABLE shoppers AS
SELECT nextval('personalisation.profile_id_seq') AS profile_id, i FROM generate_series(1, :carts) i;
INSERT INTO personalisation.profiles (profile_id, created_at, customer_id, email, email_consent)
SELECT profile_id, :'t0', 'c-' || i, 'shopper' || i || '@example.test', true FROM shoppers;
INSERT INTO personalisation.sessions (session_id, profile_id, started_at, last_seen_at, push_consent, push_consent_at)
SELECT 'b-' || i, profile_id, :'t0', :'t0', true, :'t0' FROM shoppers;
INSERT INTO personalisation.cart_lines (profile_id, product_id, quantity, session_id, added_at, updated_at)
SELECT profile_id, 'b-p' || (i % 1000), 1, 'b-' || i, :'t0'::timestamptz, :'t0'::timestamptz FROM shoppers
UNION ALL
SELECT profile_id, 'b-p' || ((i * 7 + 3) % 1000), 2, 'b-' || i, :'t0'::timestamptz, :'t0'::timestamptz FROM shoppers;
INSERT INTO personalisation.carts (profile_id, session_id, line_count, last_activity_at)
SELECT profile_id, 'b-' || i, 2, :'t0' FROM shoppers;
INSERT INTO personalisation.events (kind, occurred_at, profile_id, session_id, category_id, product_id)
SELECT 'page_view', :'t0'::timestamptz - interval '10 minutes', profile_id, 'b-' || i, 'b-cat', product_id
  FROM shoppers JOIN personalisation.cart_lines USING (profile_id);
VACUUM ANALYZE;
