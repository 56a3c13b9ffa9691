-- An order listing one product in several lines at the same unit price, as
-- order exports do, is recorded with one line, the quantities summed; at
-- different prices it is refused with nothing written; a retry, with the
-- lines split or merged, changes nothing.
BEGIN;
SELECT plan(8);
SET LOCAL personalisation.event_retention = '36500d';

INSERT INTO personalisation.products (product_id, name, price) VALUES ('ml-p1', 'P1', 5), ('ml-p2', 'P2', 3);

SELECT lives_ok(
  $$SELECT personalisation.track_purchase('ml-s', 'ml-o1',
      '[{"product_id": "ml-p1", "quantity": 1, "unit_price": 5}, {"product_id": "ml-p2", "quantity": 1, "unit_price": 3},
        {"product_id": "ml-p1", "quantity": 2, "unit_price": 5.00}]', '2026-03-01 10:00+00')$$,
  'two lines of one product at the same price are accepted');
SELECT results_eq(
  $$SELECT product_id, quantity, unit_price FROM personalisation.order_lines WHERE order_id = 'ml-o1' ORDER BY product_id$$,
  $$VALUES ('ml-p1'::text, 3, 5::numeric), ('ml-p2', 1, 3)$$,
  'they are one line with the quantities summed');
SELECT results_eq(
  $$SELECT line_count, total FROM personalisation.orders WHERE order_id = 'ml-o1'$$,
  $$VALUES (2, 18::numeric)$$,
  'the order counts two lines and the whole total');
SELECT is((SELECT orders FROM personalisation._complement_product_orders WHERE product_id = 'ml-p1'), 1::bigint,
  'the product counts once for complementarity');

SELECT lives_ok(
  $$SELECT personalisation.track_purchase('ml-s', 'ml-o1',
      '[{"product_id": "ml-p2", "quantity": 1, "unit_price": 3}, {"product_id": "ml-p1", "quantity": 3, "unit_price": 5}]',
      '2026-03-01 10:05+00')$$,
  'a retry listing the merged line is the same order');
SELECT is((SELECT count(*) FROM personalisation.order_lines WHERE order_id = 'ml-o1'), 2::bigint, 'and changes nothing');

SELECT throws_ok(
  $$SELECT personalisation.track_purchase('ml-s', 'ml-o2',
      '[{"product_id": "ml-p1", "quantity": 1, "unit_price": 5}, {"product_id": "ml-p1", "quantity": 1, "unit_price": 4}]')$$,
  '22023', 'purchase lists product "ml-p1" more than once',
  'lines of one product at different prices are refused');
SELECT throws_ok(
  $$SELECT personalisation.track_purchase('ml-s', 'ml-o3',
      '[{"product_id": "ml-p1", "quantity": 600000, "unit_price": 5}, {"product_id": "ml-p1", "quantity": 600000, "unit_price": 5}]')$$,
  '22003', 'purchase lists product "ml-p1" in lines whose quantities add up to more than 1000000',
  'merged quantities stay within an order line''s bound');

SELECT * FROM finish();
ROLLBACK;
