-- forget_customer against work in flight on real connections (dblink): a
-- tracking call on the customer's session, a run_due writing the customer's
-- next message, and a run_due declaring the customer's cart abandoned while
-- the erasure is uncommitted.  Afterwards nothing refers to the customer:
-- no row written by the concurrent transaction survives the erasure, and
-- no journey is started for a person being forgotten.  The data is
-- committed (the other connections must see it); the erasures remove it.
SET personalisation.event_retention = '36500d';
SET personalisation.journey_holdout_percent = 0;
SELECT plan(9);
\ir ../security_helpers.sql

INSERT INTO personalisation.categories VALUES ('fc-cat', NULL, 'Forget concurrently');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('fc-p', 'fc-cat', 'Vase', 25);

-- Three customers, each with a cart; the second's is abandoned and its first message sent.
SELECT personalisation.track_cart_add('fc-s' || i, 'fc-p', 1, CASE i WHEN 3 THEN '2025-07-01 12:00+00'::timestamptz
                                                                       ELSE '2025-07-01 10:00+00' END)
  FROM generate_series(1, 3) i;
SELECT personalisation.identify('fc-s' || i, 'fc-cust-' || i, 'fc' || i || '@example.test', '2025-07-01 10:01+00')
  FROM generate_series(1, 3) i;
SELECT personalisation.set_consent('fc-s2', c, true, '2025-07-01 10:02+00') FROM unnest(ARRAY['push', 'email']) c;
SELECT personalisation.run_due('2025-07-01 10:31+00');
CREATE TEMP TABLE fc_people AS
  SELECT p.customer_id, p.profile_id FROM personalisation.profiles p WHERE p.customer_id LIKE 'fc-cust-%';

CREATE FUNCTION pg_temp.connect(name text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM dblink_connect(name, format('dbname=%s host=%s port=%s user=%s', current_database(),
                                      current_setting('unix_socket_directories'), current_setting('port'), current_user));
  PERFORM dblink_exec(name, 'SET personalisation.event_retention = ''36500d''');
  PERFORM dblink_exec(name, 'SET personalisation.journey_holdout_percent = 0');
  RETURN (SELECT pid FROM dblink(name, 'SELECT pg_backend_pid()') AS t(pid int));
END $$;
CREATE TEMP TABLE fc_conn AS SELECT pg_temp.connect('fc_work') AS work_pid, pg_temp.connect('fc_forget') AS forget_pid;

-- blocked(pid): the backend waits for a lock.
CREATE FUNCTION pg_temp.blocked(pid int) RETURNS boolean LANGUAGE sql AS $$
  SELECT pg_temp.wait_until(format('SELECT wait_event_type = ''Lock'' FROM pg_stat_activity WHERE pid = %s', pid))
$$;
-- traces(customer): every table.column still naming the customer's profile or session.
CREATE FUNCTION pg_temp.traces(customer text) RETURNS text[] LANGUAGE sql AS $$
  SELECT pg_temp.references_to(jsonb_build_object(
           'profile_id', (SELECT jsonb_agg(profile_id) FROM fc_people WHERE customer_id = customer),
           'session_id', jsonb_build_array('fc-s' || right(customer, 1))), NULL)
$$;

-- 1. A tracking call holds the customer's session: the erasure waits for it, then erases its rows too.
SELECT dblink_exec('fc_work', 'BEGIN');
SELECT * FROM dblink('fc_work', $$SELECT personalisation.track_cart_add('fc-s1', 'fc-p', 5, '2025-07-01 10:40+00')::text$$)
  AS t(r text);
SELECT dblink_send_query('fc_forget', $$SELECT personalisation.forget_customer('fc-cust-1')$$);
SELECT ok(pg_temp.blocked(forget_pid), 'forget_customer waits for a tracking call on the customer''s session') FROM fc_conn;
SELECT dblink_exec('fc_work', 'COMMIT');
SELECT ok((SELECT (r ->> 'profiles')::int = 1 FROM dblink_get_result('fc_forget') AS t(r jsonb)), 'then erases');
SELECT * FROM dblink_get_result('fc_forget') AS t(r jsonb);
SELECT is(pg_temp.traces('fc-cust-1'), '{}', 'nothing of the customer is left, the tracked cart change included');

-- 2. A run_due holds the customer's journey run and writes its next message:
--    the erasure waits for it, then erases that message too.
SELECT dblink_exec('fc_work', 'BEGIN');
SELECT ok((SELECT n >= 1 FROM dblink('fc_work', $$SELECT personalisation.run_due('2025-07-01 11:00+00')$$) AS t(n int)),
          'run_due writes the customer''s email (uncommitted)');
SELECT dblink_send_query('fc_forget', $$SELECT personalisation.forget_customer('fc-cust-2')$$);
SELECT ok(pg_temp.blocked(forget_pid), 'forget_customer waits for it') FROM fc_conn;
SELECT dblink_exec('fc_work', 'COMMIT');
SELECT * FROM dblink_get_result('fc_forget') AS t(r jsonb);
SELECT * FROM dblink_get_result('fc_forget') AS t(r jsonb);
SELECT is(pg_temp.traces('fc-cust-2'), '{}', 'nothing of the customer is left, the message written meanwhile included');

-- 3. An uncommitted erasure: a run_due that would declare the customer's
--    cart abandoned waits for it, and then declares nothing for them.
SELECT dblink_exec('fc_forget', 'BEGIN');
SELECT * FROM dblink('fc_forget', $$SELECT personalisation.forget_customer('fc-cust-3')$$) AS t(r jsonb);
SELECT dblink_send_query('fc_work', $$SELECT personalisation.run_due('2025-07-01 12:31+00')$$);
SELECT ok(pg_temp.blocked(work_pid), 'run_due waits for the erasure of a cart it would declare abandoned') FROM fc_conn;
SELECT dblink_exec('fc_forget', 'COMMIT');
SELECT * FROM dblink_get_result('fc_work') AS t(n int);
SELECT * FROM dblink_get_result('fc_work') AS t(n int);
SELECT is(pg_temp.traces('fc-cust-3'), '{}', 'and starts no journey for the forgotten customer');

SELECT dblink_disconnect('fc_work'), dblink_disconnect('fc_forget');
DELETE FROM personalisation.products WHERE product_id = 'fc-p';
DELETE FROM personalisation.categories WHERE category_id = 'fc-cat';
SELECT is((SELECT count(*) FROM personalisation.profiles WHERE customer_id LIKE 'fc-cust-%'), 0::bigint,
          'the test leaves nothing behind');

SELECT * FROM finish();
