-- Bounds on money, quantities and intervals outside the tracking calls: the
-- catalogue's and the journey configuration's CHECK constraints, a
-- subscribable purchase whose supply outlasts any timestamp, a login that
-- folds two full carts, payloads and reports at the largest amounts, and an
-- update from 0.1.0 over rows that break the new bounds.
BEGIN;
SELECT plan(48);

SET LOCAL personalisation.event_retention = '36500d';
SET LOCAL personalisation.journey_holdout_percent = 0;
SET LOCAL personalisation.frequency_cap = 0;
SET LOCAL personalisation.quiet_hours = '';
SET LOCAL timezone = 'UTC';

INSERT INTO personalisation.categories VALUES ('mb-cat', NULL, 'Money bounds');
INSERT INTO personalisation.products (product_id, category_id, name, price, subscribable, replenish_days) VALUES
  ('mb-gold', 'mb-cat', 'Gold bar', 999999999999.9999, false, NULL),
  ('mb-tea', 'mb-cat', 'Tea', 4.5, true, 3650),
  ('mb-soap', 'mb-cat', 'Soap', 2, true, 30);

-- A fingerprint of the catalogue and the journey configuration.
CREATE FUNCTION pg_temp.configuration() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(p::text, ',' ORDER BY product_id) FROM personalisation.products p),
    (SELECT string_agg(j::text, ',' ORDER BY journey) FROM personalisation.journeys j),
    (SELECT string_agg(s::text, ',' ORDER BY journey, step) FROM personalisation.journey_steps s)))
$$;

-- violates(statement, constraint): the statement fails on that CHECK and changes nothing.
CREATE FUNCTION pg_temp.violates(statement text, constraint_name text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  before text := pg_temp.configuration();
BEGIN
  RETURN NEXT throws_like(statement, '%violates check constraint "' || constraint_name || '"',
                          statement || ' is refused by ' || constraint_name);
  RETURN NEXT is(pg_temp.configuration(), before, statement || ' changes nothing');
END $$;

-- the catalogue: prices 0 or more, below 10^12, at most 4 decimal places
SELECT * FROM pg_temp.violates($$INSERT INTO personalisation.products (product_id, price) VALUES ('mb-x', 'NaN')$$, 'products_price_check');
SELECT * FROM pg_temp.violates($$INSERT INTO personalisation.products (product_id, price) VALUES ('mb-x', 'Infinity')$$, 'products_price_check');
SELECT * FROM pg_temp.violates($$INSERT INTO personalisation.products (product_id, price) VALUES ('mb-x', 1e1000)$$, 'products_price_check');
SELECT * FROM pg_temp.violates($$INSERT INTO personalisation.products (product_id, price) VALUES ('mb-x', 1000000000000)$$, 'products_price_check');
SELECT * FROM pg_temp.violates($$INSERT INTO personalisation.products (product_id, price) VALUES ('mb-x', 1.23456)$$, 'products_price_check');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.products SET price = -0.01 WHERE product_id = 'mb-tea'$$, 'products_price_check');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.products SET replenish_days = 3651 WHERE product_id = 'mb-tea'$$, 'products_replenish_days_check');

-- the journeys: amounts bounded like prices, percents at most 100, intervals at most 3650 days
SELECT * FROM pg_temp.violates($$UPDATE personalisation.journey_steps SET incentive_kind = 'amount', incentive_value = 'NaN' WHERE journey = 'abandoned_cart' AND step = 4$$, 'journey_steps_incentive_value_check');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.journey_steps SET incentive_value = 101 WHERE journey = 'abandoned_cart' AND step = 4$$, 'journey_steps_incentive_percent');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.journey_steps SET incentive_kind = 'amount', incentive_value = 1e12 WHERE journey = 'abandoned_cart' AND step = 4$$, 'journey_steps_incentive_value_check');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.journey_steps SET min_cart_value = 'NaN' WHERE journey = 'abandoned_cart' AND step = 4$$, 'journey_steps_min_cart_value_check');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.journey_steps SET delay = '3651 days' WHERE journey = 'abandoned_cart' AND step = 4$$, 'journey_steps_delay_check');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.journey_steps SET max_lateness = '100000000 years' WHERE journey = 'abandoned_cart' AND step = 4$$, 'journey_steps_max_lateness_check');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.journey_steps SET before_runout = '3651 days' WHERE journey = 'subscription_offer'$$, 'journey_steps_before_runout_check');
SELECT * FROM pg_temp.violates($$UPDATE personalisation.journeys SET send_within = '170000000 years' WHERE journey = 'post_purchase'$$, 'journeys_send_within_check');
SELECT lives_ok($$UPDATE personalisation.journey_steps SET incentive_kind = 'amount', incentive_value = 999999999999.9999, delay = '3650 days' WHERE journey = 'abandoned_cart' AND step = 4$$,
  'a step at the bounds is accepted');
UPDATE personalisation.journey_steps SET incentive_kind = 'percent', incentive_value = 10, delay = '72 hours'
 WHERE journey = 'abandoned_cart' AND step = 4;

-- a subscribable purchase whose supply would outlast the timestamp range
-- (1,000,000 units of 3650 days) runs out after 3650 days at most, and a
-- smaller one after quantity times replenish_days
SELECT lives_ok($$SELECT personalisation.track_purchase('mb-s1', 'mb-o1', '[{"product_id": "mb-tea", "quantity": 1000000, "unit_price": 4.5}, {"product_id": "mb-soap", "quantity": 2, "unit_price": 2}]', '2025-07-01 10:00+00')$$,
  'a purchase of 1,000,000 units of a product lasting 3650 days each is accepted');
SELECT results_eq(
  $$SELECT product_id, runs_out_at FROM personalisation.journey_runs WHERE order_id = 'mb-o1' AND product_id IS NOT NULL ORDER BY product_id$$,
  $$VALUES ('mb-soap'::text, '2025-08-30 10:00+00'::timestamptz), ('mb-tea', '2035-06-29 10:00+00')$$,
  'its supply runs out after 3650 days at most, the other after 2 times 30 days');
SELECT lives_ok($$SELECT personalisation.run_due('2025-07-30 10:00+00')$$, 'run_due goes through its offers');
SELECT is((SELECT string_agg(s.outcome, ' ' ORDER BY r.product_id)
             FROM personalisation.journey_run_steps s JOIN personalisation.journey_runs r USING (profile_id, run_id)
            WHERE r.order_id = 'mb-o1' AND r.product_id IS NOT NULL),
          'skipped skipped', 'and does each (skipped: the buyer has no email address)');

-- a login folding two full carts keeps 1,000,000 units and does not fail
SELECT personalisation.track_cart_add('mb-s2', 'mb-gold', 1000000, '2025-06-01 10:00+00');
SELECT personalisation.track_cart_add('mb-s3', 'mb-gold', 1000000, '2025-06-01 10:05+00');
SELECT lives_ok($$SELECT personalisation.identify('mb-s2', 'mb-customer', 'mb@shop.test', '2025-06-01 10:06+00')$$, 'the first login');
SELECT lives_ok($$SELECT personalisation.identify('mb-s3', 'mb-customer', 'mb@shop.test', '2025-06-01 10:07+00')$$, 'the second login folds the second cart');
SELECT is((SELECT l.quantity FROM personalisation.cart_lines l JOIN personalisation.profiles p USING (profile_id)
            WHERE p.customer_id = 'mb-customer' AND l.product_id = 'mb-gold'), 1000000,
          'the folded line holds 1,000,000 units, the most a line holds');
-- undoing that merge gives each side its own line back, though the fold added nothing
SELECT merge_id AS mb_merge FROM personalisation.merges WHERE session_id = 'mb-s3' \gset
SELECT personalisation.unmerge(:mb_merge, '2025-06-01 10:08+00');
SELECT results_eq(
  $$SELECT l.session_id, l.quantity FROM personalisation.cart_lines l
     WHERE l.product_id = 'mb-gold' AND l.session_id IN ('mb-s2', 'mb-s3') ORDER BY 1$$,
  $$VALUES ('mb-s2'::text, 1000000), ('mb-s3', 1000000)$$,
  'an unmerge gives each cart its own 1,000,000 units back');
SELECT is((SELECT count(DISTINCT l.profile_id) FROM personalisation.cart_lines l
            WHERE l.product_id = 'mb-gold' AND l.session_id IN ('mb-s2', 'mb-s3')), 2::bigint,
          'on two profiles again');

-- the largest cart there can be: its abandoned-cart message and the report
-- of the order that recovers it carry exact amounts of 24 digits
UPDATE personalisation.profiles SET email_consent = true WHERE customer_id = 'mb-customer';
SELECT personalisation.run_due('2025-06-01 12:00+00');
SELECT is((SELECT o.payload #>> '{cart,value}' FROM personalisation.outbox o
             JOIN personalisation.profiles p USING (profile_id)
            WHERE p.customer_id = 'mb-customer' AND o.journey = 'abandoned_cart' AND o.step = 2),
          '999999999999999900.0000', 'the message carries the cart value exactly');
SELECT is((SELECT o.payload #>> '{items,0,unit_price}' FROM personalisation.outbox o
             JOIN personalisation.profiles p USING (profile_id)
            WHERE p.customer_id = 'mb-customer' AND o.journey = 'abandoned_cart' AND o.step = 2),
          '999999999999.9999', 'and the unit price');
SELECT personalisation.track_purchase('mb-s2', 'mb-o2', '[{"product_id": "mb-gold", "quantity": 1000000, "unit_price": 999999999999.9999}]',
                                      '2025-06-01 13:00+00');
SELECT ok((SELECT recovered_revenue >= 999999999999999900.0000 AND length(recovered_revenue::text) < 40
             FROM personalisation.journey_report
            WHERE journey = 'abandoned_cart' AND arm = 'treatment' AND step IS NULL),
          'the report counts the recovered revenue as a number of a few dozen digits');

-- an update from 0.1.0 refuses rows that break the new bounds, naming them,
-- and goes through once they are corrected
SELECT dblink_exec(format('dbname=%s host=%s port=%s', current_database(),
                          current_setting('unix_socket_directories'), current_setting('port')),
                   'CREATE DATABASE personalisation_money_bounds');
SELECT dblink_connect('mb', format('dbname=personalisation_money_bounds host=%s port=%s',
                                   current_setting('unix_socket_directories'), current_setting('port')));
SELECT dblink_exec('mb', $$CREATE EXTENSION personalisation VERSION '0.1.0'$$);
SELECT dblink_exec('mb', $$INSERT INTO personalisation.products (product_id, price) VALUES ('nan', 'NaN'), ('ok', 9.99)$$);
SELECT throws_ok($$SELECT dblink_exec('mb', 'ALTER EXTENSION personalisation UPDATE')$$, '23514',
  'personalisation.products holds rows outside the bounds of personalisation 0.2.0',
  'the update refuses a NaN price');
SELECT is((SELECT v FROM dblink('mb', 'SELECT extversion FROM pg_extension WHERE extname = ''personalisation''') AS t(v text)),
          '0.1.0', 'and leaves the database at 0.1.0');
SELECT dblink_exec('mb', $$UPDATE personalisation.products SET price = 0 WHERE product_id = 'nan'$$);
SELECT dblink_exec('mb', $$UPDATE personalisation.journey_steps SET max_lateness = '4000 days' WHERE step = 1$$);
SELECT throws_ok($$SELECT dblink_exec('mb', 'ALTER EXTENSION personalisation UPDATE')$$, '23514',
  'personalisation.journey_steps holds rows outside the bounds of personalisation 0.2.0',
  'the update refuses a journey interval of more than 3650 days');
SELECT dblink_exec('mb', $$UPDATE personalisation.journey_steps SET max_lateness = '1 day' WHERE step = 1$$);
SELECT lives_ok($$SELECT dblink_exec('mb', 'ALTER EXTENSION personalisation UPDATE')$$, 'the corrected database updates');
SELECT is((SELECT v FROM dblink('mb', $$SELECT count(*) FROM pg_constraint WHERE connamespace = 'personalisation'::regnamespace AND contype = 'c' AND NOT convalidated$$) AS t(v bigint)),
          0::bigint, 'with every constraint validated');
SELECT dblink_disconnect('mb');
SELECT dblink_exec(format('dbname=%s host=%s port=%s', current_database(),
                          current_setting('unix_socket_directories'), current_setting('port')),
                   'DROP DATABASE personalisation_money_bounds WITH (FORCE)');

SELECT * FROM finish();
ROLLBACK;
