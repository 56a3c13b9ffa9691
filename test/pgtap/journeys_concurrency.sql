-- Concurrency: two real connections (dblink) call run_due, and then
-- claim_messages, at the same instant.  Each message must be written
-- exactly once and handed to exactly one consumer.  A barrier (an advisory
-- lock this session holds until both connections wait on it) makes the two
-- calls start together.  The data is committed, so that the other
-- connections see it, and removed at the end.
SET personalisation.event_retention = '36500d';
SET timezone = 'UTC';
SELECT plan(9);

INSERT INTO personalisation.categories VALUES ('jc-cat', NULL, 'Concurrency test');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('jc-lamp', 'jc-cat', 'Lamp', 40);
SELECT count(personalisation.track_cart_add('jc-' || i, 'jc-lamp', 1, '2025-10-06 10:00+00')) FROM generate_series(1, 40) i;
SELECT count(personalisation.set_consent('jc-' || i, 'push', true, '2025-10-06 10:00+00')) FROM generate_series(1, 40) i;
UPDATE personalisation.profiles p
   SET customer_id = 'cust-' || s.session_id, email = s.session_id || '@example.test', email_consent = true
  FROM personalisation.sessions s WHERE s.session_id ~ '^jc-[0-9]+$' AND s.profile_id = p.profile_id;
CREATE TEMP TABLE jc_mine AS
  SELECT profile_id FROM personalisation.sessions WHERE session_id ~ '^jc-[0-9]+$';

-- Two connections to this database, every send in the treatment arm and uncapped.
CREATE FUNCTION pg_temp.connect(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dblink_connect(name, format('dbname=%s host=%s port=%s user=%s', current_database(),
                                        current_setting('unix_socket_directories'),
                                        current_setting('port'), current_user));
    PERFORM dblink_exec(name, 'SET personalisation.journey_holdout_percent = 0');
    PERFORM dblink_exec(name, 'SET personalisation.frequency_cap = 0');
    PERFORM dblink_exec(name, 'SET personalisation.quiet_hours = ''''');
END
$$;
SELECT pg_temp.connect('jc1'), pg_temp.connect('jc2');

-- Runs the query (returning one text column) on both connections at once
-- and returns their two answers.
CREATE FUNCTION pg_temp.race(query text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    answers text[] := '{}';
    answer text;
    conn text;
BEGIN
    PERFORM pg_advisory_lock(64046);
    FOREACH conn IN ARRAY ARRAY['jc1', 'jc2'] LOOP
        PERFORM dblink_send_query(conn,
            'SELECT (' || query || ')::text FROM (SELECT pg_advisory_xact_lock_shared(64046)) AS barrier');
    END LOOP;
    -- bounded wait until both are queued behind the barrier
    FOR i IN 1..1001 LOOP
        EXIT WHEN (SELECT count(*) FROM pg_locks
                    WHERE locktype = 'advisory' AND objid = 64046 AND objsubid = 1 AND NOT granted) = 2;
        IF i = 1001 THEN
            RAISE EXCEPTION 'the two connections never both reached the barrier';
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    PERFORM pg_advisory_unlock(64046);
    FOREACH conn IN ARRAY ARRAY['jc1', 'jc2'] LOOP
        SELECT r INTO answer FROM dblink_get_result(conn) AS t(r text);
        answers := answers || answer;
        PERFORM * FROM dblink_get_result(conn) AS t(r text);
    END LOOP;
    RETURN answers;
END
$$;

-- This file's messages, and how many distinct (run, step) they cover.
CREATE FUNCTION pg_temp.my_messages() RETURNS text LANGUAGE sql AS $$
    SELECT count(*) || ' messages, ' || count(DISTINCT (run_id, step)) || ' steps'
      FROM personalisation.outbox WHERE profile_id IN (SELECT profile_id FROM jc_mine)
$$;

CREATE TEMP TABLE jc_answers (round text, answers text[]);

INSERT INTO jc_answers SELECT 'declare', pg_temp.race($$personalisation.run_due('2025-10-06 10:30+00')$$);
SELECT is(pg_temp.my_messages(), '40 messages, 40 steps', 'two run_due at once declare each cart and write each push once');
SELECT is((SELECT count(*) FROM personalisation.journey_runs WHERE profile_id IN (SELECT profile_id FROM jc_mine)),
  40::bigint, 'one run per cart');
SELECT is((SELECT answers[1]::int + answers[2]::int FROM jc_answers WHERE round = 'declare'), 40,
  'the two calls report the messages they wrote between them');

INSERT INTO jc_answers SELECT 'advance', pg_temp.race($$personalisation.run_due('2025-10-06 11:00+00')$$);
SELECT is(pg_temp.my_messages(), '80 messages, 80 steps', 'two run_due at once write each due email once');

INSERT INTO jc_answers SELECT 'repeat', pg_temp.race($$personalisation.run_due('2025-10-06 11:00+00')$$);
SELECT is(pg_temp.my_messages(), '80 messages, 80 steps', 'repeating them writes nothing');

INSERT INTO jc_answers SELECT 'claim', pg_temp.race(
  $$(SELECT array_agg(message_id) FROM personalisation.claim_messages('jc-' || pg_backend_pid(), 60, '5 minutes', '2025-10-06 11:01+00'))$$);
SELECT is((SELECT count(*) FROM personalisation.outbox
            WHERE profile_id IN (SELECT profile_id FROM jc_mine) AND status = 'claimed'), 80::bigint,
  'two consumers claiming at once take every message');
SELECT is((SELECT count(*) FROM jc_answers, unnest(answers[1]::bigint[]) a JOIN unnest(answers[2]::bigint[]) b ON a = b
            WHERE round = 'claim'), 0::bigint,
  'and no message goes to both');
SELECT ok((SELECT answers[1] IS NOT NULL AND answers[2] IS NOT NULL FROM jc_answers WHERE round = 'claim'),
  'both consumers received messages');

SELECT dblink_disconnect('jc1'), dblink_disconnect('jc2');

-- Clean up everything this file committed.
DELETE FROM personalisation.coupons WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.outbox WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.journey_run_steps WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.journey_runs WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.cart_lines WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.carts WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.consent_history WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.events WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.sessions WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.profiles WHERE profile_id IN (SELECT profile_id FROM jc_mine);
DELETE FROM personalisation.products WHERE product_id = 'jc-lamp';
DELETE FROM personalisation.categories WHERE category_id = 'jc-cat';
SELECT is((SELECT count(*) FROM personalisation.sessions WHERE session_id ~ '^jc-'), 0::bigint, 'the test leaves nothing behind');

SELECT * FROM finish();
