-- Real concurrent connections tracking events of one profile, each event in
-- its own transaction: no event's affinity is lost, no deadlock, and the
-- result is the closed form of all of them.  Commits, then cleans up.
SELECT plan(5);

CREATE FUNCTION pg_temp.connect(name text) RETURNS text LANGUAGE sql AS $$
  SELECT dblink_connect(name, format('dbname=%s host=%s port=%s', current_database(),
         current_setting('unix_socket_directories'), current_setting('port')))
$$;
SELECT pg_temp.connect('a'), pg_temp.connect('b');
INSERT INTO personalisation.categories VALUES ('afc-cat', NULL, 'Concurrency');
INSERT INTO personalisation.products (product_id, category_id, brand) VALUES
  ('afc-p1', 'afc-cat', 'afc-brand'), ('afc-p2', 'afc-cat', 'afc-brand');

-- two sessions of one profile (as after a login): the second session's
-- directory entry points at the first one's profile
SELECT personalisation.track_page_view('afc-s1', 'afc-cat', NULL, now() - interval '1 hour');
SELECT personalisation.track_page_view('afc-s2', 'afc-cat', NULL, now() - interval '1 hour');
SELECT profile_id AS orphan FROM personalisation.sessions WHERE session_id = 'afc-s2' \gset
UPDATE personalisation.sessions SET profile_id = (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'afc-s1')
 WHERE session_id = 'afc-s2';
DELETE FROM personalisation.affinity WHERE profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id LIKE 'afc-%');

SELECT now() AS base \gset
-- a: 200 views of afc-p1 in session 1, b: 200 views of afc-p2 in session 2, one transaction each
SELECT dblink_send_query('a', format($q$DO $do$ BEGIN
  FOR i IN 1..200 LOOP
    PERFORM personalisation.track_page_view('afc-s1', NULL, 'afc-p1', %L::timestamptz - i * interval '1 second');
    COMMIT;
  END LOOP; END $do$$q$, :'base'));
SELECT dblink_send_query('b', format($q$DO $do$ BEGIN
  FOR i IN 1..200 LOOP
    PERFORM personalisation.track_page_view('afc-s2', NULL, 'afc-p2', %L::timestamptz - i * interval '1 second' - interval '500 ms');
    COMMIT;
  END LOOP; END $do$$q$, :'base'));
SELECT is(status, 'DO', 'connection a tracked its events') FROM dblink_get_result('a') AS r(status text);
SELECT is(status, 'DO', 'connection b tracked its events') FROM dblink_get_result('b') AS r(status text);

-- scores read at base, against sum(2^(-age / half-life)) over the events
CREATE FUNCTION pg_temp.score(session text, key_kind text, key text, at timestamptz) RETURNS float8 LANGUAGE sql AS $$
  SELECT e.score FROM personalisation.affinity a, personalisation._affinity_entries(a.entries, a.decayed_to, a.session_id <> '', at) e
   WHERE a.profile_id = (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'afc-s1')
     AND a.session_id = session AND e.key_hash = personalisation._affinity_key(key_kind, key)
$$;
CREATE FUNCTION pg_temp.closed_form(offsets float8[], half_life float8) RETURNS float8 LANGUAGE sql AS $$
  SELECT sum(2 ^ (-o / half_life)) FROM unnest(offsets) o
$$;
SELECT ok(abs(pg_temp.score('', 'category', 'afc-cat', :'base') -
              pg_temp.closed_form(array(SELECT i FROM generate_series(1, 200) i) ||
                                  array(SELECT i + 0.5 FROM generate_series(1, 200) i), 14 * 86400))
          < 1e-5 * 400, 'the profile''s category score counts all 400 events');
SELECT ok(abs(pg_temp.score('afc-s2', 'product', 'afc-p2', :'base') -
              pg_temp.closed_form(array(SELECT i + 0.5 FROM generate_series(1, 200) i), 1800))
          < 1e-5 * 200, 'the second session''s product score counts its 200 events');
SELECT is((SELECT count(*) FROM personalisation.events WHERE session_id LIKE 'afc-%'), 402::bigint,
          'every event is in the log');

SELECT dblink_disconnect('a'), dblink_disconnect('b');
-- clean up what was committed
DELETE FROM personalisation.affinity WHERE profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id LIKE 'afc-%');
DELETE FROM personalisation.events WHERE session_id LIKE 'afc-%';
DELETE FROM personalisation.profiles WHERE profile_id = :orphan
   OR profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id LIKE 'afc-%');
DELETE FROM personalisation.sessions WHERE session_id LIKE 'afc-%';
DELETE FROM personalisation.products WHERE product_id LIKE 'afc-%';
DELETE FROM personalisation.categories WHERE category_id LIKE 'afc-%';
SELECT * FROM finish();
