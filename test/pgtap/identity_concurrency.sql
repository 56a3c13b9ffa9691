-- Concurrent logins, on real concurrent connections (dblink).  Each race
-- holds both connections at a gate (an advisory lock this session holds)
-- until both wait there, then opens it so that they run at the same moment.
-- The data must be committed for the other connections to see it, so this
-- file commits and removes its rows (ids starting with idc-) at the end.
SELECT plan(15);

SELECT pg_catalog.format('host=%s port=%s dbname=%s user=%s',
         split_part(current_setting('unix_socket_directories'), ',', 1),
         current_setting('port'), current_database(), current_user) AS conninfo \gset
SELECT dblink_connect('idc1', :'conninfo');
SELECT dblink_connect('idc2', :'conninfo');

INSERT INTO personalisation.categories VALUES ('idc-cat', NULL, 'Identity concurrency');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('idc-prod', 'idc-cat', 'Racer', 1);

-- race runs the two statements on the two connections at the same moment
-- and returns their results as text.
CREATE FUNCTION pg_temp.race(first text, second text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    spins bigint := 0;
    result1 text;
    result2 text;
BEGIN
    PERFORM pg_advisory_lock(4242);
    PERFORM dblink_send_query('idc1', 'WITH gate AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(4242))'
                                      ' SELECT (' || first || ')::text FROM gate');
    PERFORM dblink_send_query('idc2', 'WITH gate AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(4242))'
                                      ' SELECT (' || second || ')::text FROM gate');
    WHILE (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = 4242
              AND objsubid = 1 AND NOT granted) < 2 LOOP
        spins := spins + 1;
        IF spins > 50000000 THEN
            RAISE EXCEPTION 'the racing connections never reached the gate';
        END IF;
    END LOOP;
    PERFORM pg_advisory_unlock(4242);
    SELECT r INTO result1 FROM dblink_get_result('idc1') AS t(r text);
    PERFORM * FROM dblink_get_result('idc1') AS t(r text);
    SELECT r INTO result2 FROM dblink_get_result('idc2') AS t(r text);
    PERFORM * FROM dblink_get_result('idc2') AS t(r text);
    RETURN ARRAY[result1, result2];
END
$$;
CREATE TEMP TABLE races (kind text, round int, results text[]);

-- 1. The same new customer logs in from two anonymous sessions at once.
SELECT personalisation.track_page_view('idc-a' || r || '-' || s, 'idc-cat', NULL, now() - (e || ' minutes')::interval)
  FROM generate_series(1, 10) r, generate_series(1, 2) s, generate_series(1, 3) e;
INSERT INTO races
SELECT 'first login', r, pg_temp.race(
         format('personalisation.identify(%L, %L)', 'idc-a' || r || '-1', 'idc-a' || r),
         format('personalisation.identify(%L, %L)', 'idc-a' || r || '-2', 'idc-a' || r))
  FROM generate_series(1, 10) r;
SELECT is((SELECT count(*) FROM races WHERE kind = 'first login' AND results[1] = results[2]), 10::bigint,
          'both logins of a customer return the same profile');
SELECT is((SELECT count(*) FROM personalisation.profiles WHERE customer_id LIKE 'idc-a%'), 10::bigint,
          'each customer ends with exactly one profile');
SELECT is((SELECT count(*) FROM personalisation.sessions s JOIN personalisation.profiles p USING (profile_id)
            WHERE s.session_id LIKE 'idc-a%' AND s.session_id LIKE p.customer_id || '-%'), 20::bigint,
          'both sessions belong to their customer''s profile');
SELECT is((SELECT count(*) FROM personalisation.events e JOIN personalisation.profiles p USING (profile_id)
            WHERE e.session_id LIKE 'idc-a%' AND p.customer_id IS NOT NULL), 60::bigint,
          'no event is lost or left on an anonymous profile');
SELECT is((SELECT count(*) FROM personalisation.merges WHERE customer_id LIKE 'idc-a%'), 10::bigint,
          'one login of each pair claims the profile, the other merges into it');

-- 2. Two anonymous carts merge into a known customer at once.
SELECT personalisation.identify('idc-b-desk', 'idc-b');
SELECT personalisation.track_cart_add('idc-b-desk', 'idc-prod', 1);
SELECT personalisation.track_cart_add('idc-b' || r || '-' || s, 'idc-prod', 1, now() - interval '5 minutes')
  FROM generate_series(1, 5) r, generate_series(1, 2) s;
SELECT personalisation.track_page_view('idc-b' || r || '-' || s, 'idc-cat', NULL, now() - interval '4 minutes')
  FROM generate_series(1, 5) r, generate_series(1, 2) s;
INSERT INTO races
SELECT 'merge', r, pg_temp.race(
         format('personalisation.identify(%L, %L)', 'idc-b' || r || '-1', 'idc-b'),
         format('personalisation.identify(%L, %L)', 'idc-b' || r || '-2', 'idc-b'))
  FROM generate_series(1, 5) r;
SELECT is((SELECT quantity FROM personalisation.cart_lines c JOIN personalisation.profiles p USING (profile_id)
            WHERE p.customer_id = 'idc-b' AND c.product_id = 'idc-prod'), 11,
          'concurrent merges fold every anonymous cart line into the customer''s');
SELECT is((SELECT count(*) FROM personalisation.events e JOIN personalisation.profiles p USING (profile_id)
            WHERE p.customer_id = 'idc-b'), 21::bigint,
          'the customer''s profile has every event of all eleven sessions');
SELECT is((SELECT count(*) FROM personalisation.merges WHERE customer_id = 'idc-b'), 10::bigint,
          'every anonymous session was merged once');

-- 3. A login races an event or a consent change of the same session.  The
-- login starts a moment later (after a little work of its own), and the
-- event's transaction goes on working after its call, as a shop's would:
-- the event is written, but not yet committed, while the login runs.
SELECT personalisation.identify('idc-c-desk', 'idc-c');
-- (The sessions were seen just now, so the racing event only reads its session.)
SELECT personalisation.track_page_view('idc-c' || r, 'idc-cat', NULL, now() - interval '1 second')
  FROM generate_series(1, 12) r;
INSERT INTO races
SELECT 'event', r, pg_temp.race(
         format('concat((SELECT count(*) FROM generate_series(1, 20000)), personalisation.identify(%L, %L))',
                'idc-c' || r, 'idc-c'),
         'concat(' || CASE r % 3
           WHEN 0 THEN format('personalisation.track_page_view(%L, %L, event_id => %L)', 'idc-c' || r, 'idc-cat', 'idc-ev' || r)
           WHEN 1 THEN format('personalisation.track_cart_add(%L, %L, event_id => %L)', 'idc-c' || r, 'idc-prod', 'idc-ev' || r)
           ELSE format('personalisation.set_consent(%L, %L, true)', 'idc-c' || r, 'email') END
         || ', (SELECT count(*) FROM generate_series(1, 200000)))')
  FROM generate_series(1, 12) r;
SELECT is((SELECT count(*) FROM personalisation.events e JOIN personalisation.profiles p USING (profile_id)
            WHERE e.session_id LIKE 'idc-c_%' AND e.session_id <> 'idc-c-desk' AND p.customer_id = 'idc-c'), 20::bigint,
          'an event racing the login lands on the customer''s profile');
SELECT is((SELECT count(*) FROM personalisation.events e JOIN personalisation.profiles p USING (profile_id)
            WHERE e.session_id LIKE 'idc-c%' AND p.customer_id IS NULL), 0::bigint,
          'no event is left behind on an anonymous profile');
SELECT is((SELECT quantity FROM personalisation.cart_lines c JOIN personalisation.profiles p USING (profile_id)
            WHERE p.customer_id = 'idc-c' AND c.product_id = 'idc-prod'), 4,
          'cart additions racing the login end in the customer''s cart');
SELECT results_eq(
  $$SELECT (SELECT count(*) FROM personalisation.consent_history h WHERE h.profile_id = p.profile_id), p.email_consent
      FROM personalisation.profiles p WHERE p.customer_id = 'idc-c'$$,
  $$VALUES (4::bigint, true)$$,
  'consent changes racing the login are the customer''s, without a deadlock');

-- 4. One device logs in as two customers at once.
SELECT personalisation.track_page_view('idc-d' || r, 'idc-cat', NULL, now() - interval '2 minutes')
  FROM generate_series(1, 5) r;
INSERT INTO races
SELECT 'shared', r, pg_temp.race(
         format('personalisation.identify(%L, %L)', 'idc-d' || r, 'idc-d' || r || '-x'),
         format('personalisation.identify(%L, %L)', 'idc-d' || r, 'idc-d' || r || '-y'))
  FROM generate_series(1, 5) r;
SELECT is((SELECT count(*) FROM personalisation.profiles WHERE customer_id LIKE 'idc-d%'), 10::bigint,
          'two customers on one device keep two profiles');
SELECT is((SELECT count(*) FROM personalisation.merges WHERE customer_id LIKE 'idc-d%'), 0::bigint,
          'two known customers are never merged, even at the same moment');
SELECT is((SELECT count(DISTINCT e.profile_id) FROM personalisation.events e WHERE e.session_id LIKE 'idc-d%'), 5::bigint,
          'the device''s history stays whole with the customer who claimed it');

SELECT dblink_disconnect('idc1');
SELECT dblink_disconnect('idc2');

-- Remove every row this file made.
CREATE TEMP TABLE idc_profiles AS
SELECT profile_id FROM personalisation.sessions WHERE session_id LIKE 'idc-%'
UNION SELECT profile_id FROM personalisation.profiles WHERE customer_id LIKE 'idc-%'
UNION SELECT from_profile_id FROM personalisation.merges WHERE customer_id LIKE 'idc-%';
DELETE FROM personalisation.merges WHERE customer_id LIKE 'idc-%';
DELETE FROM personalisation.events WHERE profile_id IN (SELECT profile_id FROM idc_profiles);
DELETE FROM personalisation.event_keys WHERE event_id LIKE 'idc-%';
DELETE FROM personalisation.cart_lines WHERE profile_id IN (SELECT profile_id FROM idc_profiles);
DELETE FROM personalisation.carts WHERE profile_id IN (SELECT profile_id FROM idc_profiles);
DELETE FROM personalisation.consent_history WHERE profile_id IN (SELECT profile_id FROM idc_profiles);
DELETE FROM personalisation.sessions WHERE profile_id IN (SELECT profile_id FROM idc_profiles);
DELETE FROM personalisation.profiles WHERE profile_id IN (SELECT profile_id FROM idc_profiles);
DELETE FROM personalisation.products WHERE product_id = 'idc-prod';
DELETE FROM personalisation.categories WHERE category_id = 'idc-cat';

SELECT * FROM finish();
