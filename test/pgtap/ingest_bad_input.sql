-- Every kind of bad input to the tracking functions gets a clear error with a
-- documented SQLSTATE and leaves every table exactly as it was.
BEGIN;
SET LOCAL personalisation.event_retention = '36500d';
SELECT plan(111);

INSERT INTO personalisation.categories VALUES ('bi-root', NULL, 'Root'), ('bi-cat', 'bi-root', 'Cat');
INSERT INTO personalisation.products (product_id, category_id, name, price)
VALUES ('bi-p1', 'bi-cat', 'P1', 10), ('bi-p2', 'bi-root', 'P2', 20);
SELECT personalisation.track_purchase('bi-s', 'bi-o1',
  '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 10}]', now() - interval '1 hour');

\ir ../ingest_state.sql

-- refused(call, sqlstate, message): the call fails as described and changes nothing.
CREATE FUNCTION pg_temp.refused(call text, state text, message text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  before text := pg_temp.ingest_state();
BEGIN
  RETURN NEXT throws_ok(call, state, message, call || ' is refused');
  RETURN NEXT is(pg_temp.ingest_state(), before, call || ' writes nothing');
END $$;

-- identifiers
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view(NULL)$$, '22004', 'session_id must not be null');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('')$$, '22023', 'session_id must not be empty');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('   ')$$, '22023', 'session_id must not be empty');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view(repeat('x', 300))$$, '22001', 'session_id is too long');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view(E'bi\nsession')$$, '22023', 'session_id contains a control character');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('bi-s', event_id => '')$$, '22023', 'event_id must not be empty');

-- catalogue
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('bi-s', 'no-such-cat')$$, '23503', 'category "no-such-cat" is not in the catalogue');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('bi-s', NULL, 'no-such-product')$$, '23503', 'product "no-such-product" is not in the catalogue');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('bi-s', 'bi-root', 'bi-p1')$$, '22023', 'product "bi-p1" is not in category "bi-root"');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-s', 'no-such-product')$$, '23503', 'product "no-such-product" is not in the catalogue');

-- quantities
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-s', 'bi-p1', 0)$$, '22023', 'quantity 0 is not positive');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-s', 'bi-p1', -2)$$, '22023', 'quantity -2 is not positive');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-s', 'bi-p1', NULL)$$, '22004', 'quantity must not be null');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_remove('bi-s', 'bi-p1', 0)$$, '22023', 'quantity 0 is not positive');
-- a cart line holds 1 to 1,000,000 units
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-s', 'bi-p1', 1000001)$$, '22003', 'quantity 1000001 is out of range');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-s', 'bi-p1', 2147483647)$$, '22003', 'quantity 2147483647 is out of range');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_remove('bi-s', 'bi-p1', 1000001)$$, '22003', 'quantity 1000001 is out of range');
-- quantities are bigint: an int8 beyond int4 (a literal, or a driver binding int8) gets the same 22003
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-s', 'bi-p1', 3000000000)$$, '22003', 'quantity 3000000000 is out of range');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_remove('bi-s', 'bi-p1', 9223372036854775807)$$, '22003', 'quantity 9223372036854775807 is out of range');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-s', 'bi-p1', -3000000000::int8)$$, '22023', 'quantity -3000000000 is not positive');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_events('[{"kind": "cart_add", "session_id": "bi-s", "product_id": "bi-p1", "quantity": 3000000000}]')$$, '22003', 'quantity 3000000000 is out of range');
SELECT lives_ok($$SELECT personalisation.track_cart_add('bi-int8', 'bi-p1', 2::int8, now() - interval '1 hour')$$,
  'an int8 quantity within range is accepted');
SELECT is((SELECT quantity FROM personalisation.cart_lines l JOIN personalisation.sessions s USING (profile_id)
            WHERE s.session_id = 'bi-int8'), 2, 'and put in the cart');
SELECT lives_ok($$SELECT personalisation.track_cart_add('bi-cart', 'bi-p2', 1000000, now() - interval '1 hour')$$,
  'a cart line of 1,000,000 units is accepted');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_cart_add('bi-cart', 'bi-p2', 1)$$, '22003', 'adding 1 units of product "bi-p2" would put more than 1000000 in the cart');

-- JSON syntax errors: the extension's message naming the argument, and its hint
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": ')$$, '22P02', 'items is not valid JSON: "[{"product_id": "');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_events('[{"kind": page_view}]')$$, '22P02', 'events is not valid JSON: "[{"kind": page_view}]"');
DO $$
BEGIN
  PERFORM personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": ');
EXCEPTION WHEN invalid_text_representation THEN
  DECLARE hint text; detail text;
  BEGIN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT, detail = PG_EXCEPTION_DETAIL;
    CREATE TEMP TABLE bi_json_error AS SELECT hint, detail;
  END;
END $$;
SELECT is((SELECT hint || ' | ' || detail FROM bi_json_error),
  'Pass items as a JSON array of objects with product_id, quantity and unit_price. | The input string ended unexpectedly.',
  'a JSON syntax error has the hint of what the function accepts and the parser''s detail');

-- time
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('bi-s', occurred_at => now() + interval '1 day')$$, '22008', NULL);
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('bi-s', occurred_at => 'infinity')$$, '22008', 'occurred_at must be a finite timestamp');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_page_view('bi-s', occurred_at => NULL)$$, '22004', 'occurred_at must not be null');

-- purchases
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', NULL)$$, '22004', 'purchase items must not be null');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '{"product_id": "bi-p1"}')$$, '22023', 'purchase items must be a JSON array');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '3')$$, '22023', 'purchase items must be a JSON array');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[]')$$, '22023', 'purchase items must not be empty');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '["bi-p1"]')$$, '22023', 'purchase item 1 is not a JSON object');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"quantity": 1, "unit_price": 1}]')$$, '22023', 'purchase item 1 has no "product_id"');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "unit_price": 1}]')$$, '22023', 'purchase item 1 has no "quantity"');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1}]')$$, '22023', 'purchase item 1 has no "unit_price"');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": -5}]')$$, '22023', 'purchase item 1 has unit_price -5, which is negative');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1.5, "unit_price": 5}]')$$, '22023', 'purchase item 1 has quantity 1.5, which is not a positive whole number');
-- bounds: a quantity of 1 to 1,000,000, a price below 10^12 with at most 4
-- decimal places; absurd numbers are quoted short, not with 130,000 digits
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1000001, "unit_price": 5}]')$$, '22003', 'purchase item 1 has quantity 1000001, which is more than 1000000');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1e130000, "unit_price": 5}]')$$, '22003', 'purchase item 1 has quantity 1.000000e+130000, which is more than 1000000');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 1e300}]')$$, '22003', 'purchase item 1 has unit_price 1.000000e+300, which is not below 10^12');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 1e130000}]')$$, '22003', 'purchase item 1 has unit_price 1.000000e+130000, which is not below 10^12');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 1000000000000}]')$$, '22003', 'purchase item 1 has unit_price 1000000000000, which is not below 10^12');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 9.99001}]')$$, '22003', 'purchase item 1 has unit_price 9.99001, which has more than 4 decimal places');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 1e-16000}]')$$, '22003', 'purchase item 1 has unit_price 1.000000e-16000, which has more than 4 decimal places');
-- JSON has no NaN or infinity: numeric ones arrive as strings
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('product_id', 'bi-p1', 'quantity', 1, 'unit_price', 'NaN'::numeric)))$$, '22023', 'purchase item 1 has a unit_price that is not a number');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('product_id', 'bi-p1', 'quantity', 'Infinity'::numeric, 'unit_price', 1)))$$, '22023', 'purchase item 1 has a quantity that is not a number');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": "2", "unit_price": 5}]')$$, '22023', 'purchase item 1 has a quantity that is not a number');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 5}, {"product_id": "bi-p1", "quantity": 2, "unit_price": 6}]')$$, '22023', 'purchase lists product "bi-p1" more than once');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o2', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 5}, {"product_id": "nope", "quantity": 1, "unit_price": 5}]')$$, '23503', 'product "nope" is not in the catalogue');
SELECT * FROM pg_temp.refused($$SELECT personalisation.track_purchase('bi-s', 'bi-o1', '[{"product_id": "bi-p1", "quantity": 2, "unit_price": 10}]')$$, '23505', 'order "bi-o1" was already recorded with different contents');

-- and the good paths still work after all that
SELECT lives_ok($$SELECT personalisation.track_purchase('bi-s', 'bi-o1', '[{"product_id": "bi-p1", "quantity": 1, "unit_price": 10.00}]')$$,
  'a retry of the recorded order is accepted');
SELECT is((SELECT count(*) FROM personalisation.orders WHERE order_id = 'bi-o1'), 1::bigint, 'and records it once');
-- the largest order line there can be, and zeros beyond 4 decimal places
SELECT lives_ok($$SELECT personalisation.track_purchase('bi-s', 'bi-o3', '[{"product_id": "bi-p1", "quantity": 1000000, "unit_price": 999999999999.9999}, {"product_id": "bi-p2", "quantity": 1, "unit_price": 9.990000000}]')$$,
  'an order at the bounds is accepted');
SELECT is((SELECT total::text FROM personalisation.orders WHERE order_id = 'bi-o3'), '999999999999999909.9900',
  'and its total is exact, with 4 decimal places');
SELECT is((SELECT unit_price::text FROM personalisation.order_lines WHERE order_id = 'bi-o3' AND product_id = 'bi-p2'), '9.9900',
  'a price written with trailing zeros is kept with 4 decimal places');
SELECT lives_ok($$SELECT personalisation.track_purchase('bi-s', 'bi-o3', '[{"product_id": "bi-p2", "quantity": 1, "unit_price": 9.99}, {"product_id": "bi-p1", "quantity": 1000000, "unit_price": 999999999999.9999}]')$$,
  'a retry writing the price without the zeros is the same order');
SELECT is((SELECT count(*) FROM personalisation.order_lines WHERE order_id = 'bi-o3'), 2::bigint, 'and records nothing more');

SELECT * FROM finish();
ROLLBACK;
