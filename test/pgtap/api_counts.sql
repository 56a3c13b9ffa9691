-- Integer parameters as a driver binds them: every integer parameter of the
-- extension's functions is a bigint (the catalogue says so, and the list
-- below names each one, so that a new one has to be covered here), an
-- int8-bound call reaches the function, and a count or limit beyond what it
-- accepts gets the extension's own 22003, one below 1 its 22023.
BEGIN;
SELECT plan(32);

SET LOCAL timezone = 'UTC';
SET LOCAL personalisation.event_retention = '36500d';
INSERT INTO personalisation.categories VALUES ('ac-cat', NULL, 'Count test');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES
  ('ac-tent', 'ac-cat', 'Tent', 200), ('ac-pegs', 'ac-cat', 'Pegs', 5);

-- The catalogue: no int2 or int4 parameter anywhere in the schema, and the
-- integer parameters are exactly the ones this file covers.
SELECT is_empty($$
  SELECT p.oid::regprocedure::text, a.name
    FROM pg_proc p, unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[]) AS a(name, type)
   WHERE p.pronamespace = 'personalisation'::regnamespace
     AND a.type IN ('int2'::regtype, 'int4'::regtype, 'int2[]'::regtype, 'int4[]'::regtype)$$,
  'no function of the extension takes an int2 or int4 parameter');
SELECT set_eq($$
  SELECT p.proname || '.' || a.name || ' ' || a.type::regtype::text
    FROM pg_proc p, unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[]) AS a(name, type)
   WHERE p.pronamespace = 'personalisation'::regnamespace
     AND a.type IN ('int8'::regtype, 'int8[]'::regtype)$$,
  ARRAY['also_bought.n bigint', 'recommend_for_cart.n bigint', 'claim_messages.max_messages bigint',
        'track_cart_add.quantity bigint', 'track_cart_remove.quantity bigint',
        'ack_message.message_id bigint', 'ack_messages.message_ids bigint[]', 'fail_message.message_id bigint',
        'unmerge.merge_id bigint', 'rebuild_affinity.profile_id bigint', '_holdout_arm.customer_profile_id bigint',
        'uplift_claim.units bigint', 'uplift_test.exposed bigint', 'uplift_test.converted bigint',
        'uplift_test.control_exposed bigint', 'uplift_test.control_converted bigint'],
  'the integer parameters are the bigints this file covers');
SELECT is((SELECT pg_get_expr(proargdefaults, 0) FROM pg_proc WHERE oid = 'personalisation.also_bought(text, bigint)'::regprocedure),
  '10', 'also_bought keeps its default n');
SELECT is((SELECT replace(pg_get_expr(proargdefaults, 0), 'pg_catalog.', '') FROM pg_proc WHERE oid = 'personalisation.claim_messages(text, bigint, interval, timestamptz)'::regprocedure),
  '100, ''00:05:00''::interval, now()', 'claim_messages keeps its defaults');

-- Calls as a driver binding int8 makes them: a prepared statement with int8 parameters.
PREPARE ac_also(text, int8) AS SELECT count(*) FROM personalisation.also_bought($1, $2);
PREPARE ac_cart(text, int8) AS SELECT count(*) FROM personalisation.recommend_for_cart($1, $2);
PREPARE ac_claim(text, int8) AS SELECT count(*) FROM personalisation.claim_messages($1, $2, '5 minutes', '2001-01-01 00:00+00');
PREPARE ac_add(text, text, int8) AS SELECT personalisation.track_cart_add($1, $2, $3, '2026-01-05 10:00+00');
PREPARE ac_remove(text, text, int8) AS SELECT personalisation.track_cart_remove($1, $2, $3, '2026-01-05 10:05+00');
PREPARE ac_ack(int8) AS SELECT personalisation.ack_message($1);
PREPARE ac_acks(int8[]) AS SELECT personalisation.ack_messages($1);
PREPARE ac_fail(int8) AS SELECT personalisation.fail_message($1, 'smtp down');
PREPARE ac_unmerge(int8) AS SELECT personalisation.unmerge($1);
PREPARE ac_affinity(int8) AS SELECT personalisation.rebuild_affinity($1);
PREPARE ac_arm(text, int8) AS SELECT personalisation._holdout_arm($1, $2);
PREPARE ac_claim_text(int8) AS SELECT personalisation.uplift_claim('rank', 'conversion', $1, 'profile', 1.5, 1.2, 1.8, 0.001);
PREPARE ac_test(int8, int8, int8, int8) AS SELECT uplift FROM personalisation.uplift_test($1, $2, $3, $4);

SELECT lives_ok('EXECUTE ac_also(''ac-tent'', 1000)', 'also_bought takes an int8-bound n up to 1000');
SELECT throws_ok('EXECUTE ac_also(''ac-tent'', 1001)', '22003', 'n 1001 is out of range', 'also_bought refuses n 1001 with 22003');
SELECT throws_ok('EXECUTE ac_also(''ac-tent'', 3000000000)', '22003', 'n 3000000000 is out of range', 'also_bought refuses an n beyond int4 with 22003');
SELECT throws_ok($$SELECT * FROM personalisation.also_bought('ac-tent', 3000000000)$$, '22003', 'n 3000000000 is out of range',
  'also_bought refuses a literal n beyond int4 with 22003');
SELECT throws_ok('EXECUTE ac_also(''ac-tent'', -3000000000)', '22023', 'n -3000000000 is not positive', 'also_bought refuses a negative n');

SELECT lives_ok('EXECUTE ac_cart(''ac-s1'', 1000)', 'recommend_for_cart takes an int8-bound n');
SELECT throws_ok('EXECUTE ac_cart(''ac-s1'', 3000000000)', '22003', 'n 3000000000 is out of range', 'recommend_for_cart refuses an n beyond int4 with 22003');
SELECT throws_ok('EXECUTE ac_cart(''ac-s1'', 0)', '22023', 'n 0 is not positive', 'recommend_for_cart refuses n 0');

SELECT lives_ok('EXECUTE ac_claim(''ac-w'', 10000)', 'claim_messages takes an int8-bound max_messages up to 10000');
SELECT throws_ok('EXECUTE ac_claim(''ac-w'', 10001)', '22003', 'max_messages 10001 is out of range', 'claim_messages refuses 10001 with 22003');
SELECT throws_ok('EXECUTE ac_claim(''ac-w'', 3000000000)', '22003', 'max_messages 3000000000 is out of range',
  'claim_messages refuses a max_messages beyond int4 with 22003');
SELECT throws_ok('EXECUTE ac_claim(''ac-w'', -1)', '22023', 'max_messages -1 is not positive', 'claim_messages refuses a negative max_messages');
SELECT throws_ok('EXECUTE ac_claim(''ac-w'', NULL)', '22004', 'max_messages must not be null', 'claim_messages refuses a NULL max_messages');

SELECT lives_ok('EXECUTE ac_add(''ac-s1'', ''ac-tent'', 3)', 'track_cart_add takes an int8-bound quantity');
SELECT lives_ok('EXECUTE ac_remove(''ac-s1'', ''ac-tent'', 1)', 'track_cart_remove takes an int8-bound quantity');
SELECT is((SELECT l.quantity FROM personalisation.cart_lines l JOIN personalisation.sessions s USING (profile_id)
            WHERE s.session_id = 'ac-s1' AND l.product_id = 'ac-tent'), 2, 'and the cart holds 3 - 1');
SELECT throws_ok('EXECUTE ac_remove(''ac-s1'', ''ac-tent'', 3000000000)', '22003', 'quantity 3000000000 is out of range',
  'track_cart_remove refuses a quantity beyond int4 with 22003');

-- Identifiers beyond int4 reach the function, which says the row is not there.
SELECT throws_ok('EXECUTE ac_ack(3000000000)', 'P0002', 'message 3000000000 is not in the outbox', 'ack_message takes an int8-bound id');
SELECT throws_ok('EXECUTE ac_acks(ARRAY[3000000000]::int8[])', 'P0002', 'message 3000000000 is not in the outbox', 'ack_messages takes int8-bound ids');
SELECT throws_ok('EXECUTE ac_fail(3000000000)', 'P0002', 'message 3000000000 is not in the outbox', 'fail_message takes an int8-bound id');
SELECT throws_ok('EXECUTE ac_unmerge(3000000000)', '42704', 'merge 3000000000 does not exist', 'unmerge takes an int8-bound merge_id');
SELECT lives_ok('EXECUTE ac_affinity(3000000000)', 'rebuild_affinity takes an int8-bound profile_id');
SELECT ok((SELECT personalisation._holdout_arm('rank', 3000000000::int8)) IN ('personalised', 'holdout'),
  '_holdout_arm takes a profile id beyond int4');
SELECT lives_ok('EXECUTE ac_arm(''rank'', 3000000000)', '_holdout_arm takes an int8-bound profile id');
SELECT is((SELECT round(uplift::numeric, 6) FROM personalisation.uplift_test(3000000000, 300000000, 3000000000, 200000000)), 1.5::numeric,
  'uplift_test counts beyond int4');
SELECT lives_ok('EXECUTE ac_test(3000000000, 1, 3000000000, 2)', 'uplift_test takes int8-bound counts');
SELECT matches((SELECT personalisation.uplift_claim('rank', 'conversion', 3000000000::int8, 'profile', 1.5, 1.2, 1.8, 0.001)), '3,000,000,000 profile',
  'uplift_claim reports a unit count beyond int4');
SELECT lives_ok('EXECUTE ac_claim_text(3000000000)', 'uplift_claim takes an int8-bound unit count');

SELECT * FROM finish();
ROLLBACK;
