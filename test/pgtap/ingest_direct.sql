-- The tracking functions write events, event ids and affinity straight to
-- the tables (src/direct.c), not through INSERT and UPDATE statements.  What
-- the executor would guarantee still holds: every index (a shop's own
-- ones too) has every row, a read-only transaction is refused, a rollback
-- leaves nothing, and REPEATABLE READ sees no lost update.  Commits, then
-- cleans up.
SELECT plan(28);
\ir ../direct_checks.sql
-- every btree index of the tables the tracking functions write, checked to hold every row
CREATE FUNCTION pg_temp.indexes_hold_every_row() RETURNS boolean LANGUAGE sql AS $$
  SELECT bool_and(pg_temp.check_index(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
   WHERE c.relnamespace = 'personalisation'::regnamespace AND c.relkind = 'r'
     AND (c.relname IN ('event_keys', 'affinity', 'sessions') OR c.relname LIKE 'events_p%')
$$;

INSERT INTO personalisation.categories VALUES ('di-cat', NULL, 'Direct');
INSERT INTO personalisation.products (product_id, category_id, brand) VALUES
  ('di-p1', 'di-cat', 'di-brand'), ('di-p2', 'di-cat', 'di-brand'),
  ('di-p3', 'di-cat', NULL), ('di-p4', 'di-cat', NULL);

-- a shop's own indexes on the event log: plain, on an expression, partial
CREATE INDEX di_events_product ON personalisation.events (product_id);
CREATE INDEX di_events_lower_session ON personalisation.events (lower(session_id));
CREATE INDEX di_events_views ON personalisation.events (occurred_at) WHERE kind = 'page_view';
SELECT personalisation.track_page_view('di-s1', NULL, 'di-p1', now() - interval '3 minutes', 'di-e1');
SELECT personalisation.track_page_view('di-s1', 'di-cat', NULL, now() - interval '2 minutes', 'di-e2');
SELECT personalisation.track_page_view('di-s1', NULL, 'di-p2', now() - interval '1 minute', 'di-e3');
SELECT ok(pg_temp.indexes_hold_every_row(),
          'every index of events, event_keys, affinity and sessions holds every row (amcheck heapallindexed)');
SET enable_seqscan = off;
SELECT is((SELECT count(*) FROM personalisation.events WHERE lower(session_id) = 'di-s1'), 3::bigint,
          'a shop''s expression index finds the events');
SELECT is((SELECT count(*) FROM personalisation.events WHERE kind = 'page_view' AND session_id = 'di-s1'
             AND occurred_at > now() - interval '1 hour'), 3::bigint,
          'a shop''s partial index finds the page views');
RESET enable_seqscan;

-- many updates of the same affinity rows: the rows stay one per scope, the index whole
SELECT personalisation.track_page_view('di-s1', NULL, 'di-p' || (1 + i % 2), now() - interval '1 minute' + i * interval '1 ms')
  FROM generate_series(1, 300) i;
SELECT is((SELECT count(*) FROM personalisation.affinity a JOIN personalisation.sessions s USING (profile_id)
            WHERE s.session_id = 'di-s1'), 2::bigint, 'one affinity row for the profile, one for the session');
SELECT ok(pg_temp.indexes_hold_every_row(), 'the indexes still hold every row after 300 updates');

-- a backfill of many event ids in one transaction holds no lock per id
BEGIN;
SELECT count(*) FROM (SELECT personalisation.track_page_view('di-s6', NULL, 'di-p1', now() - interval '1 hour', 'di-bulk-' || i)
                        FROM generate_series(1, 2000) i) t;
SELECT cmp_ok((SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'), '<=', 1::bigint,
              '2,000 event ids tracked in one transaction hold at most the session''s advisory lock');
ROLLBACK;

-- the table's NOT NULL and CHECK constraints hold for the direct writes, a shop's own included
ALTER TABLE personalisation.events ADD CONSTRAINT di_no_p4 CHECK (product_id IS DISTINCT FROM 'di-p4');
SELECT throws_ok($$SELECT personalisation.track_page_view('di-s1', NULL, 'di-p4')$$, '23514', NULL,
                 'a shop''s CHECK constraint on the event log refuses an event');
ALTER TABLE personalisation.events DROP CONSTRAINT di_no_p4;
ALTER TABLE personalisation.events ADD COLUMN di_source text NOT NULL DEFAULT 'web';
SELECT throws_ok($$SELECT personalisation.track_page_view('di-s1', NULL, 'di-p4')$$, '23502', NULL,
                 'a shop''s NOT NULL column the tracking functions do not fill is refused loudly, not left NULL');
ALTER TABLE personalisation.events DROP COLUMN di_source;

-- a read-only transaction is refused and nothing is written
SELECT count(*) AS events_before FROM personalisation.events \gset
BEGIN READ ONLY;
SELECT throws_ok($$SELECT personalisation.track_page_view('di-s1', NULL, 'di-p1', event_id => 'di-ro')$$,
                 '25006', NULL, 'tracking in a read-only transaction is refused');
ROLLBACK;
SELECT is((SELECT count(*) FROM personalisation.events), :events_before::bigint, 'and writes nothing');

-- a rollback takes the event, its id and its affinity with it
SELECT entries AS entries_before FROM personalisation.affinity a JOIN personalisation.sessions s USING (profile_id)
 WHERE s.session_id = 'di-s1' AND a.session_id = '' \gset
BEGIN;
SELECT personalisation.track_page_view('di-s1', NULL, 'di-p1', event_id => 'di-rolled-back');
ROLLBACK;
SELECT is((SELECT count(*) FROM personalisation.event_keys WHERE event_id = 'di-rolled-back'), 0::bigint,
          'a rolled-back event leaves no event id');
SELECT is((SELECT entries FROM personalisation.affinity a JOIN personalisation.sessions s USING (profile_id)
            WHERE s.session_id = 'di-s1' AND a.session_id = ''), :'entries_before'::bytea,
          'nor any affinity');
SELECT personalisation.track_page_view('di-s1', NULL, 'di-p1', event_id => 'di-rolled-back');
SELECT is((SELECT count(*) FROM personalisation.events WHERE event_id = 'di-rolled-back'), 1::bigint,
          'and the same event id can then be recorded');

-- REPEATABLE READ: a's snapshot predates b's event of the same profile;
-- a's own event must not overwrite b's affinity, so it fails to serialize
SELECT pg_temp.connect('a'), pg_temp.connect('b');
SELECT dblink_exec('a', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('a', 'SELECT count(*) FROM personalisation.affinity') AS r(n bigint);
SELECT * FROM dblink('b', $$SELECT personalisation.track_page_view('di-s1', NULL, 'di-p2', event_id => 'di-rr-b')$$) AS r(v text);
SELECT throws_ok($$SELECT * FROM dblink('a', 'SELECT personalisation.track_page_view(''di-s1'', NULL, ''di-p1'', event_id => ''di-rr-a'')') AS r(v text)$$,
                 '40001', NULL, 'under REPEATABLE READ a concurrent update of the affinity is a serialization failure');
SELECT dblink_exec('a', 'ROLLBACK');

-- REPEATABLE READ: an event id committed after a's snapshot is seen as recorded
SELECT dblink_exec('a', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('a', 'SELECT count(*) FROM personalisation.event_keys') AS r(n bigint);
SELECT * FROM dblink('b', $$SELECT personalisation.track_page_view('di-s2', NULL, 'di-p2', event_id => 'di-rr-dup')$$) AS r(v text);
SELECT lives_ok($$SELECT * FROM dblink('a', 'SELECT personalisation.track_page_view(''di-s3'', NULL, ''di-p2'', event_id => ''di-rr-dup'')') AS r(v text)$$,
                'a retry whose id was committed after the snapshot is not an error');
SELECT dblink_exec('a', 'COMMIT');
SELECT is((SELECT count(*) FROM personalisation.events WHERE event_id = 'di-rr-dup'), 1::bigint,
          'and the event is recorded once');
SELECT is((SELECT count(*) FROM personalisation.sessions WHERE session_id = 'di-s3'), 0::bigint,
          'the retry touched nothing');

-- the facets of tracked products are cached per backend: a catalogue change
-- committed by another connection is seen by the next call
INSERT INTO personalisation.categories VALUES ('di-cat2', NULL, 'Direct 2');
SELECT * FROM dblink('a', $$SELECT personalisation.track_page_view('di-s4', NULL, 'di-p1', event_id => 'di-c1')$$) AS r(v text);
UPDATE personalisation.products SET category_id = 'di-cat2', brand = 'di-brand2' WHERE product_id = 'di-p1';
SELECT * FROM dblink('a', $$SELECT personalisation.track_page_view('di-s4', NULL, 'di-p1', event_id => 'di-c2')$$) AS r(v text);
SELECT is((SELECT category_id FROM personalisation.events WHERE event_id = 'di-c2'), 'di-cat2',
          'a product moved to another category is tracked under it at once, by a backend that had cached it');
SELECT is((SELECT array_agg(s.key ORDER BY s.key) FROM personalisation.affinity_scores s
            JOIN personalisation.sessions d ON d.profile_id = s.profile_id
            WHERE d.session_id = 'di-s4' AND s.scope = 'session' AND s.dimension = 'brand'),
          ARRAY['di-brand', 'di-brand2'], 'and its new brand is credited');
-- ranking inside a parallel query (the leader may take no new snapshot) reads
-- uncached products under the statement's snapshot
SET force_parallel_mode = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT is((SELECT count(*) FROM personalisation.rank_products('di-s8',
             ARRAY(SELECT product_id FROM personalisation.products WHERE product_id LIKE 'di-%'))), 4::bigint,
          'rank_products ranks every candidate when its query runs in parallel mode');
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- with the cache off every call reads the catalogue
SET personalisation.product_cache_size = 0;
UPDATE personalisation.products SET category_id = 'di-cat' WHERE product_id = 'di-p1';
SELECT personalisation.track_page_view('di-s4', NULL, 'di-p1', event_id => 'di-c3');
SELECT is((SELECT category_id FROM personalisation.events WHERE event_id = 'di-c3'), 'di-cat',
          'with product_cache_size 0, tracking reads the product''s category from the catalogue');
RESET personalisation.product_cache_size;
-- a product inserted in a transaction that rolls back is forgotten with it
BEGIN;
INSERT INTO personalisation.products (product_id, category_id) VALUES ('di-p9', 'di-cat');
SELECT personalisation.track_page_view('di-s4', NULL, 'di-p9');
ROLLBACK;
SELECT throws_ok($$SELECT personalisation.track_page_view('di-s4', NULL, 'di-p9')$$, '23503', NULL,
                 'a product whose insert rolled back is not in the catalogue');
DELETE FROM personalisation.products WHERE product_id = 'di-p2';
SELECT throws_ok($$SELECT * FROM dblink('a', 'SELECT personalisation.track_page_view(''di-s4'', NULL, ''di-p2'')') AS r(v text)$$,
                 '23503', NULL, 'a product deleted by another connection is refused at once');
-- the same 300 event ids from two connections at once, one transaction each:
-- every id recorded once, no error, no deadlock
SELECT dblink_send_query('a', $q$DO $do$ BEGIN
  FOR i IN 1..300 LOOP
    PERFORM personalisation.track_page_view('di-s7', NULL, 'di-p1', event_id => 'di-race-' || i);
    COMMIT;
  END LOOP; END $do$$q$);
SELECT dblink_send_query('b', $q$DO $do$ BEGIN
  FOR i IN 1..300 LOOP
    PERFORM personalisation.track_page_view('di-s7', NULL, 'di-p1', event_id => 'di-race-' || i);
    COMMIT;
  END LOOP; END $do$$q$);
SELECT is(status, 'DO', 'connection a tracked its 300 events') FROM dblink_get_result('a') AS r(status text);
SELECT is(status, 'DO', 'connection b tracked the same 300') FROM dblink_get_result('b') AS r(status text);
SELECT * FROM dblink_get_result('a') AS r(status text);
SELECT * FROM dblink_get_result('b') AS r(status text);
SELECT is((SELECT count(*) FROM personalisation.events WHERE event_id LIKE 'di-race-%'), 300::bigint,
          'each event id raced from two connections is recorded once');

-- ranking reads stock and popularity through the same cache
SELECT dblink_exec('a', 'SET personalisation.ranking_holdout_percent = 0');
SELECT * FROM dblink('a', $$SELECT product_id FROM personalisation.rank_products('di-s5', '{di-p3,di-p4}') ORDER BY position$$) AS r(p text);
UPDATE personalisation.products SET in_stock = false WHERE product_id = 'di-p3';
SELECT is(array(SELECT p FROM dblink('a', $$SELECT product_id FROM personalisation.rank_products('di-s5', '{di-p3,di-p4}') ORDER BY position$$) AS r(p text)),
          ARRAY['di-p4', 'di-p3'], 'a product out of stock ranks last at once, in a backend that had cached it');
UPDATE personalisation.products SET in_stock = true WHERE product_id = 'di-p3';
INSERT INTO personalisation.product_popularity VALUES ('di-p4', 1, 1, now());
SELECT is(array(SELECT p FROM dblink('a', $$SELECT product_id FROM personalisation.rank_products('di-s5', '{di-p3,di-p4}') ORDER BY position$$) AS r(p text)),
          ARRAY['di-p4', 'di-p3'], 'and new popularity counts at once');
DELETE FROM personalisation.product_popularity WHERE product_id = 'di-p4';
SELECT dblink_disconnect('a'), dblink_disconnect('b');

-- clean up what was committed
DROP INDEX personalisation.di_events_product, personalisation.di_events_lower_session, personalisation.di_events_views;
DELETE FROM personalisation.events WHERE session_id LIKE 'di-%';
DELETE FROM personalisation.event_keys WHERE event_id LIKE 'di-%';
DELETE FROM personalisation.affinity WHERE profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id LIKE 'di-%');
DELETE FROM personalisation.profiles WHERE profile_id IN (SELECT profile_id FROM personalisation.sessions WHERE session_id LIKE 'di-%');
DELETE FROM personalisation.sessions WHERE session_id LIKE 'di-%';
DELETE FROM personalisation.products WHERE product_id LIKE 'di-%';
DELETE FROM personalisation.products WHERE product_id LIKE 'di-%';
DELETE FROM personalisation.categories WHERE category_id LIKE 'di-%';
SELECT * FROM finish();
