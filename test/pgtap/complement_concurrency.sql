-- Two connections buy overlapping baskets of the same six products at once,
-- each purchase in its own transaction, listing their items in opposite
-- orders, and each refunds some of its orders as it goes.  Both finish
-- without a deadlock and the counts are exact.  The test commits, so it
-- removes its orders and recounts at the end.
SELECT plan(6);

-- start from counts that match the order tables, whatever ran before
SELECT orders FROM personalisation.rebuild_complementarity() WHERE false;

INSERT INTO personalisation.products (product_id, name, price)
SELECT 'cxc-' || i, 'Concurrency ' || i, 10 FROM generate_series(1, 6) AS i;

CREATE FUNCTION pg_temp.buyer_script(buyer text, direction text) RETURNS text LANGUAGE sql AS $$
    SELECT format($do$
        DO $body$
        DECLARE
            items jsonb;
        BEGIN
            FOR i IN 1..150 LOOP
                SELECT jsonb_agg(jsonb_build_object('product_id', 'cxc-' || p, 'quantity', 1,
                                                    'unit_price', 10) ORDER BY p %2$s)
                  INTO items
                  FROM generate_series(1, 6) AS p
                 WHERE p = 1 + i %% 6 OR random() < 0.6;
                PERFORM personalisation.track_purchase('cxc-%1$s', 'cxc-%1$s-' || i, items);
                COMMIT;
                IF i %% 5 = 0 THEN
                    PERFORM personalisation.track_refund('cxc-%1$s-' || (i - 2));
                    COMMIT;
                END IF;
            END LOOP;
        END
        $body$
    $do$, buyer, direction)
$$;

SELECT dblink_connect(buyer, format('dbname=%s host=%s port=%s user=%s', current_database(),
                                    current_setting('unix_socket_directories'),
                                    current_setting('port'), current_user))
  FROM (VALUES ('cxc_a'), ('cxc_b')) AS b(buyer);
SELECT dblink_send_query('cxc_a', pg_temp.buyer_script('a', 'ASC'));
SELECT dblink_send_query('cxc_b', pg_temp.buyer_script('b', 'DESC'));

SELECT is((SELECT status FROM dblink_get_result('cxc_a', false) AS r(status text)), 'DO',
          'the first buyer''s 150 purchases and 30 refunds all commit');
SELECT is((SELECT status FROM dblink_get_result('cxc_b', false) AS r(status text)), 'DO',
          'the second buyer''s 150 purchases and 30 refunds, made at the same time, all commit');
SELECT dblink_disconnect(buyer) FROM (VALUES ('cxc_a'), ('cxc_b')) AS b(buyer);

SELECT is((SELECT count(*)::int FROM personalisation.orders
            WHERE order_id LIKE 'cxc-%' AND refunded_at IS NULL), 240,
          'both buyers'' orders are recorded, 60 of them refunded');

CREATE TEMP VIEW counted_lines AS
SELECT l.order_id, l.product_id
  FROM personalisation.orders o JOIN personalisation.order_lines l ON l.order_id = o.order_id
 WHERE o.refunded_at IS NULL;

SELECT set_eq($$SELECT * FROM personalisation.complement_pairs WHERE product_a LIKE 'cxc-%'$$,
              $$SELECT x.product_id AS a, y.product_id AS b, count(*)
                  FROM counted_lines x
                  JOIN counted_lines y ON y.order_id = x.order_id AND x.product_id COLLATE "C" < y.product_id COLLATE "C"
                 WHERE x.product_id LIKE 'cxc-%'
                 GROUP BY 1, 2$$,
              'every pair count equals the orders that contain both, none lost or doubled');
SELECT set_eq($$SELECT * FROM personalisation._complement_product_orders WHERE product_id LIKE 'cxc-%'$$,
              $$SELECT product_id, count(*) FROM counted_lines WHERE product_id LIKE 'cxc-%' GROUP BY 1$$,
              'every product count equals the orders that contain it');
SELECT is((SELECT sum(orders)::bigint FROM personalisation.complement_totals),
          (SELECT count(DISTINCT order_id) FROM counted_lines),
          'the order total equals the orders not refunded');

-- clean up: remove the buyers, their orders and the post-purchase runs the
-- orders started, then recount
DELETE FROM personalisation.journey_runs
 WHERE profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id IN ('cxc-a', 'cxc-b'));
DELETE FROM personalisation.orders WHERE order_id LIKE 'cxc-%';
DELETE FROM personalisation.events WHERE session_id IN ('cxc-a', 'cxc-b');
DELETE FROM personalisation.carts WHERE session_id IN ('cxc-a', 'cxc-b');
DELETE FROM personalisation.profiles
 WHERE profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id IN ('cxc-a', 'cxc-b'));
DELETE FROM personalisation.sessions WHERE session_id IN ('cxc-a', 'cxc-b');
DELETE FROM personalisation.products WHERE product_id LIKE 'cxc-%';
SELECT orders FROM personalisation.rebuild_complementarity() WHERE false;

SELECT * FROM finish();
