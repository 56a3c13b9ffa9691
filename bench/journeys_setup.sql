-- bench/journeys_setup.sql: :carts shoppers, each with two products in the
-- cart at :'t0', push consent and a known, consenting email.  The journeys
-- send to everyone (no holdout, no cap, no quiet hours).
\set ON_ERROR_STOP on
ALTER DATABASE :"DBNAME" SET personalisation.journey_holdout_percent = 0;
ALTER DATABASE :"DBNAME" SET personalisation.frequency_cap = 0;
INSERT INTO personalisation.categories VALUES ('b-cat', NULL, 'Bench');
INSERT INTO personalisation.products (product_id, category_id, name, price, url, image_url)
SELECT 'b-p' || i, 'b-cat', 'Product ' || i, 10 + i % 90,
       'https://shop.test/p/' || i, 'https://img.test/p/' || i || '.jpg'
  FROM generate_series(0, 999) i;
SELECT count(personalisation.track_cart_add('b-' || i, 'b-p' || (i % 1000), 1, :'t0'::timestamptz)),
       count(personalisation.track_cart_add('b-' || i, 'b-p' || ((i * 7 + 3) % 1000), 2, :'t0'::timestamptz))
  FROM generate_series(1, :carts) i;
UPDATE personalisation.sessions SET push_consent = true, push_consent_at = :'t0'::timestamptz;
UPDATE personalisation.profiles SET customer_id = 'c-' || profile_id, email = profile_id || '@example.test',
       email_consent = true;
VACUUM ANALYZE;
