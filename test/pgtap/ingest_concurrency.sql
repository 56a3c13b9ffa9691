-- Real concurrent connections: first events of one session, one event id and
-- one order id arriving at the same moment are each recorded exactly once.
SELECT plan(8);
SET personalisation.event_retention = '36500d';

CREATE FUNCTION pg_temp.connect(name text) RETURNS text LANGUAGE sql AS $$
  SELECT dblink_connect(name, format('dbname=%s host=%s port=%s', current_database(),
         current_setting('unix_socket_directories'), current_setting('port')))
$$;
SELECT pg_temp.connect('a'), pg_temp.connect('b');
INSERT INTO personalisation.categories VALUES ('cc-cat', NULL, 'CC') ON CONFLICT DO NOTHING;
INSERT INTO personalisation.products (product_id, category_id) VALUES ('cc-p', 'cc-cat') ON CONFLICT DO NOTHING;

-- a: opens a transaction and records the session's first event, holding it open;
-- b: records another first event of the same session, which must wait for a.
SELECT dblink_exec('a', 'BEGIN');
SELECT * FROM dblink('a', $$SELECT personalisation.track_page_view('cc-s', 'cc-cat', occurred_at => now() - interval '1 minute')$$) AS r(v text);
SELECT dblink_send_query('b', $$SELECT personalisation.track_page_view('cc-s', NULL, 'cc-p', event_id => 'cc-e1')$$);
SELECT is(dblink_is_busy('b'), 1, 'the second first-event waits for the first');
SELECT dblink_exec('a', 'COMMIT');
SELECT * FROM dblink_get_result('b') AS r(v text);
SELECT * FROM dblink_get_result('b') AS r(v text);
SELECT is((SELECT count(*) FROM personalisation.sessions WHERE session_id = 'cc-s'), 1::bigint, 'one session');
SELECT is((SELECT count(DISTINCT profile_id) FROM personalisation.events WHERE session_id = 'cc-s'), 1::bigint, 'one profile');
SELECT is((SELECT count(*) FROM personalisation.events WHERE session_id = 'cc-s'), 2::bigint, 'both events recorded');

-- the same event id from both at once
SELECT dblink_exec('a', 'BEGIN');
SELECT * FROM dblink('a', $$SELECT personalisation.track_cart_add('cc-s', 'cc-p', 1, event_id => 'cc-e2')$$) AS r(v text);
SELECT dblink_send_query('b', $$SELECT personalisation.track_cart_add('cc-s', 'cc-p', 1, event_id => 'cc-e2')$$);
SELECT dblink_exec('a', 'COMMIT');
SELECT * FROM dblink_get_result('b') AS r(v text);
SELECT * FROM dblink_get_result('b') AS r(v text);
SELECT is((SELECT quantity FROM personalisation.cart_lines c JOIN personalisation.sessions s USING (profile_id)
            WHERE s.session_id = 'cc-s' AND c.product_id = 'cc-p'), 1, 'a duplicated cart add counts once');

-- the same order id from both at once
SELECT dblink_exec('a', 'BEGIN');
SELECT * FROM dblink('a', $$SELECT personalisation.track_purchase('cc-s', 'cc-o', '[{"product_id": "cc-p", "quantity": 1, "unit_price": 3}]')$$) AS r(v text);
SELECT dblink_send_query('b', $$SELECT personalisation.track_purchase('cc-s', 'cc-o', '[{"product_id": "cc-p", "quantity": 1, "unit_price": 3}]')$$);
SELECT is(dblink_is_busy('b'), 1, 'the retry waits for the original');
SELECT dblink_exec('a', 'COMMIT');
SELECT is(v, '', 'the retry succeeds') FROM dblink_get_result('b') AS r(v text);
SELECT * FROM dblink_get_result('b') AS r(v text);
SELECT is((SELECT count(*) FROM personalisation.events WHERE order_id = 'cc-o'), 1::bigint, 'the order is recorded once');

SELECT dblink_disconnect('a'), dblink_disconnect('b');
-- clean up what the connections committed
DELETE FROM personalisation.order_lines WHERE order_id = 'cc-o';
DELETE FROM personalisation.orders WHERE order_id = 'cc-o';
DELETE FROM personalisation.events WHERE session_id = 'cc-s';
DELETE FROM personalisation.event_keys WHERE event_id IN ('cc-e1', 'cc-e2');
DELETE FROM personalisation.cart_lines WHERE session_id = 'cc-s';
DELETE FROM personalisation.carts WHERE session_id = 'cc-s';
DELETE FROM personalisation.affinity WHERE profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'cc-s');
DELETE FROM personalisation.profiles WHERE profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'cc-s');
DELETE FROM personalisation.sessions WHERE session_id = 'cc-s';
SELECT * FROM finish();
