-- Bulk statements: one statement tracking events of tens of thousands of
-- sessions works with the default lock table (max_locks_per_transaction =
-- 64 in the test instance), because a transaction takes at most 16 session
-- advisory locks and locks further sessions' rows instead; and a login still
-- or an unmerge still waits for such a transaction's uncommitted events,
-- and they for a login, on real concurrent connections (dblink); and the
-- same for order ids.  Commits, then removes its rows
-- (ids starting with ib-).
SELECT plan(17);

SELECT pg_catalog.format('host=%s port=%s dbname=%s user=%s',
         split_part(current_setting('unix_socket_directories'), ',', 1),
         current_setting('port'), current_database(), current_user) AS conninfo \gset
SELECT dblink_connect('ib1', :'conninfo');
SELECT dblink_connect('ib2', :'conninfo');
SELECT dblink_exec('ib1', 'SET application_name = ''ib1''');
SELECT dblink_exec('ib2', 'SET application_name = ''ib2''');

INSERT INTO personalisation.categories VALUES ('ib-cat', NULL, 'Bulk');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('ib-prod', 'ib-cat', 'Bulk', 1);

-- waits_on_lock(application_name) waits (bounded) until that connection's
-- query waits for a lock, and reports whether it did.
CREATE FUNCTION pg_temp.waits_on_lock(app text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..500 LOOP
        IF EXISTS (SELECT FROM pg_stat_activity WHERE application_name = app AND wait_event_type = 'Lock') THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN false;
END
$$;

-- 1. One statement over 30,000 sessions, half of them known already.
SELECT is(current_setting('max_locks_per_transaction'), '64', 'the lock table has its default size');
SELECT count(personalisation.track_page_view('ib-' || i, 'ib-cat', NULL, now() - interval '2 hours'))
  FROM generate_series(1, 15000) i;
SELECT lives_ok(
  $$SELECT count(personalisation.track_page_view('ib-' || i, NULL, 'ib-prod', now() - interval '1 hour'))
      FROM generate_series(1, 30000) i$$,
  'one statement tracks page views of 30,000 sessions');
SELECT is((SELECT count(*) FROM personalisation.sessions WHERE session_id LIKE 'ib-%'), 30000::bigint,
          'every session is recorded once');
SELECT is((SELECT count(*) FROM personalisation.events e JOIN personalisation.sessions s USING (session_id, profile_id)
            WHERE e.session_id LIKE 'ib-%'), 45000::bigint,
          'every event is on its session''s profile');
SELECT is((SELECT count(*) FROM personalisation.affinity WHERE session_id LIKE 'ib-%'), 30000::bigint,
          'every session''s affinity is recorded');

-- 2. A login waits for a transaction past its advisory locks.  Twenty known
-- anonymous sessions, seen just now (so that an event only reads them).
-- Both customers are known, so that their logins merge.
SELECT personalisation.track_page_view('ib-r' || i, 'ib-cat', NULL, now() - interval '10 seconds')
  FROM generate_series(1, 20) i;
SELECT personalisation.identify('ib-desk1', 'ib-cust'), personalisation.identify('ib-desk2', 'ib-cust2');
SELECT dblink_exec('ib1', 'BEGIN');
SELECT * FROM dblink('ib1', $$SELECT count(personalisation.track_page_view('ib-r' || i, 'ib-cat'))
                                FROM generate_series(1, 20) i$$) AS t(n bigint);
SELECT is((SELECT count(*)::int FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE a.application_name = 'ib1' AND l.locktype = 'advisory' AND l.classid = x'73657373'::int::oid),
          16, 'a transaction holds at most 16 session advisory locks');
SELECT dblink_send_query('ib2', $$SELECT personalisation.identify('ib-r20', 'ib-cust')$$);
SELECT ok(pg_temp.waits_on_lock('ib2'), 'a login of the 20th session waits for that transaction');
SELECT * FROM dblink('ib1', $$SELECT personalisation.track_cart_add('ib-r20', 'ib-prod')::text$$) AS t(done text);
SELECT dblink_exec('ib1', 'COMMIT');
SELECT * FROM dblink_get_result('ib2') AS t(profile_id bigint);
SELECT * FROM dblink_get_result('ib2') AS t(profile_id bigint);
SELECT results_eq(
  $$SELECT count(*) FILTER (WHERE p.customer_id = 'ib-cust'), count(*)
      FROM personalisation.events e JOIN personalisation.profiles p USING (profile_id)
     WHERE e.session_id = 'ib-r20'$$,
  $$VALUES (3::bigint, 3::bigint)$$,
  'the login moves every event that transaction wrote');
SELECT is((SELECT c.quantity FROM personalisation.cart_lines c JOIN personalisation.profiles p USING (profile_id)
            WHERE p.customer_id = 'ib-cust' AND c.product_id = 'ib-prod'), 1,
          'and its cart line');

-- 3. An event past its transaction's advisory locks waits for a login in
-- progress, and lands on the customer's profile.
SELECT dblink_exec('ib2', 'BEGIN');
SELECT * FROM dblink('ib2', $$SELECT personalisation.identify('ib-r19', 'ib-cust2')$$) AS t(profile_id bigint);
SELECT dblink_exec('ib1', 'BEGIN');
SELECT * FROM dblink('ib1', $$SELECT count(personalisation.track_page_view('ib-r' || i, 'ib-cat'))
                                FROM generate_series(1, 16) i$$) AS t(n bigint);
SELECT dblink_send_query('ib1', $$SELECT personalisation.track_cart_add('ib-r19', 'ib-prod', 2)::text$$);
SELECT ok(pg_temp.waits_on_lock('ib1'), 'the 17th session''s event waits for the login');
SELECT dblink_exec('ib2', 'COMMIT');
SELECT * FROM dblink_get_result('ib1') AS t(done text);
SELECT * FROM dblink_get_result('ib1') AS t(done text);
SELECT dblink_exec('ib1', 'COMMIT');
SELECT results_eq(
  $$SELECT p.customer_id, c.quantity
      FROM personalisation.cart_lines c JOIN personalisation.profiles p USING (profile_id)
     WHERE c.session_id = 'ib-r19'$$,
  $$VALUES ('ib-cust2'::text, 2)$$,
  'the event lands on the customer''s profile');
SELECT is((SELECT count(*) FROM personalisation.events e JOIN personalisation.profiles p USING (profile_id)
            WHERE e.session_id = 'ib-r19' AND p.customer_id IS DISTINCT FROM 'ib-cust2'), 0::bigint,
          'no event of the session is left on the anonymous profile');

-- 4. An unmerge waits for such a transaction too: the event it is writing
-- was recorded while the session was the customer's, and stays there.
SELECT dblink_exec('ib1', 'BEGIN');
SELECT * FROM dblink('ib1', $$SELECT count(personalisation.track_page_view('ib-r' || i, 'ib-cat'))
                                FROM generate_series(1, 16) i$$) AS t(n bigint);
SELECT * FROM dblink('ib1', $$SELECT personalisation.track_page_view('ib-r20', 'ib-cat')::text$$) AS t(done text);
SELECT dblink_send_query('ib2', format('SELECT personalisation.unmerge(%s)',
         (SELECT merge_id FROM personalisation.merges WHERE session_id = 'ib-r20')));
SELECT ok(pg_temp.waits_on_lock('ib2'), 'an unmerge of the session waits for that transaction');
SELECT dblink_exec('ib1', 'COMMIT');
SELECT * FROM dblink_get_result('ib2') AS t(profile_id bigint);
SELECT * FROM dblink_get_result('ib2') AS t(profile_id bigint);
SELECT results_eq(
  $$SELECT p.customer_id, count(*)
      FROM personalisation.events e JOIN personalisation.profiles p USING (profile_id)
     WHERE e.session_id = 'ib-r20' GROUP BY p.customer_id ORDER BY p.customer_id$$,
  $$VALUES ('ib-cust'::text, 1::bigint), (NULL, 3)$$,
  'the unmerge gives back what the merge moved and leaves the customer what came after it');

-- 5. Orders: a transaction takes at most 16 order advisory locks; past them
-- the new order's row claims its id, and a concurrent retry of that order
-- waits for it, then records nothing.
SELECT dblink_exec('ib1', 'BEGIN');
SELECT * FROM dblink('ib1', $$SELECT count(personalisation.track_purchase('ib-r1', 'ib-o' || i,
                                  '[{"product_id": "ib-prod", "quantity": 1, "unit_price": 1}]'))
                                FROM generate_series(1, 20) i$$) AS t(n bigint);
SELECT is((SELECT count(*)::int FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE a.application_name = 'ib1' AND l.locktype = 'advisory' AND l.classid = x'6f726472'::int::oid),
          16, 'a transaction recording 20 orders holds 16 order advisory locks');
SELECT dblink_send_query('ib2', $$SELECT personalisation.track_purchase('ib-r1', 'ib-o20',
                                    '[{"product_id": "ib-prod", "quantity": 1, "unit_price": 1}]')::text$$);
SELECT ok(pg_temp.waits_on_lock('ib2'), 'a retry of the 20th order waits for that transaction');
SELECT dblink_exec('ib1', 'COMMIT');
SELECT * FROM dblink_get_result('ib2') AS t(done text);
SELECT * FROM dblink_get_result('ib2') AS t(done text);
SELECT results_eq(
  $$SELECT (SELECT count(*) FROM personalisation.orders WHERE order_id LIKE 'ib-o%'),
           (SELECT count(*) FROM personalisation.events WHERE kind = 'purchase' AND order_id LIKE 'ib-o%')$$,
  $$VALUES (20::bigint, 20::bigint)$$,
  'the retry recorded nothing: each order and its purchase event once');

SELECT dblink_disconnect('ib1');
SELECT dblink_disconnect('ib2');

-- Remove every row this file made.
CREATE TEMP TABLE ib_profiles AS
SELECT profile_id FROM personalisation.sessions WHERE session_id LIKE 'ib-%'
UNION SELECT profile_id FROM personalisation.profiles WHERE customer_id LIKE 'ib-%'
UNION SELECT from_profile_id FROM personalisation.merges WHERE customer_id LIKE 'ib-%';
DELETE FROM personalisation.merges WHERE customer_id LIKE 'ib-%';
DELETE FROM personalisation.events WHERE profile_id IN (SELECT profile_id FROM ib_profiles);
DELETE FROM personalisation.affinity WHERE profile_id IN (SELECT profile_id FROM ib_profiles);
DELETE FROM personalisation.cart_lines WHERE profile_id IN (SELECT profile_id FROM ib_profiles);
DELETE FROM personalisation.carts WHERE profile_id IN (SELECT profile_id FROM ib_profiles);
DELETE FROM personalisation.journey_run_steps WHERE profile_id IN (SELECT profile_id FROM ib_profiles);
DELETE FROM personalisation.journey_runs WHERE profile_id IN (SELECT profile_id FROM ib_profiles);
DELETE FROM personalisation.orders WHERE order_id LIKE 'ib-o%';
SELECT orders FROM personalisation.rebuild_complementarity();
DELETE FROM personalisation.sessions WHERE profile_id IN (SELECT profile_id FROM ib_profiles);
DELETE FROM personalisation.profiles WHERE profile_id IN (SELECT profile_id FROM ib_profiles);
DELETE FROM personalisation.products WHERE product_id = 'ib-prod';
DELETE FROM personalisation.categories WHERE category_id = 'ib-cat';

SELECT * FROM finish();
