-- Claims and acknowledgements rewrite outbox rows straight in the table
-- (src/direct.c), not through UPDATE statements.  What the executor would
-- guarantee still holds: every index (a shop's own ones too) has every row,
-- the generated column queued follows the status, a read-only transaction is
-- refused, and from real concurrent connections a message held by another
-- claim is skipped, a REPEATABLE READ claim skips what another committed
-- after its snapshot, and acknowledgements wait for one another.  Commits
-- (the other connections must see the messages), then cleans up.
SET personalisation.event_retention = '36500d';
SET timezone = 'UTC';
SELECT plan(23);
\ir ../direct_checks.sql
-- every btree index of the outbox, checked to hold every row
CREATE FUNCTION pg_temp.outbox_indexes_whole() RETURNS boolean LANGUAGE sql AS $$
  SELECT bool_and(pg_temp.check_index(indexrelid)) FROM pg_index
   WHERE indrelid = 'personalisation.outbox'::regclass
$$;

-- Twelve shoppers leave a lamp in the cart on 2020-01-06 at 10:00 plus i
-- minutes (earlier than any other file's messages, so claims here take
-- these first); run_due, called each minute, writes each a push at 30
-- minutes, so shopper i's push is the i-th oldest.
INSERT INTO personalisation.categories VALUES ('od-cat', NULL, 'Outbox direct');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('od-lamp', 'od-cat', 'Lamp', 40);
SELECT count(personalisation.track_cart_add('od-' || i, 'od-lamp', 1, timestamptz '2020-01-06 10:00+00' + i * interval '1 minute'))
  FROM generate_series(1, 12) i;
SELECT count(personalisation.set_consent('od-' || i, 'push', true, timestamptz '2020-01-06 10:00+00' + i * interval '1 minute'))
  FROM generate_series(1, 12) i;
CREATE TABLE pg_temp.od_mine AS SELECT profile_id FROM personalisation.sessions WHERE session_id ~ '^od-[0-9]+$';
SET personalisation.journey_holdout_percent = 0;
SET personalisation.frequency_cap = 0;
SET personalisation.quiet_hours = '';
SELECT sum(personalisation.run_due(timestamptz '2020-01-06 10:30+00' + i * interval '1 minute'))
  FROM generate_series(1, 12) i;
-- the push of shopper i, and its state
CREATE FUNCTION pg_temp.msg(i int) RETURNS bigint LANGUAGE sql AS $$
  SELECT o.message_id FROM personalisation.outbox o JOIN personalisation.sessions s USING (session_id)
   WHERE s.session_id = 'od-' || i AND o.step = 1
$$;
CREATE FUNCTION pg_temp.state(id bigint) RETURNS text LANGUAGE sql AS $$
  SELECT status || '/' || attempts || '/' || queued FROM personalisation.outbox WHERE message_id = id
$$;
SELECT is((SELECT count(*) FROM personalisation.outbox WHERE profile_id IN (SELECT profile_id FROM od_mine)),
          12::bigint, 'twelve pushes are queued');

-- a shop's own indexes on the outbox: plain, on an expression, partial
CREATE INDEX od_outbox_consumer ON personalisation.outbox (claimed_by);
CREATE INDEX od_outbox_lower_status ON personalisation.outbox (lower(status));
CREATE INDEX od_outbox_delivered ON personalisation.outbox (finished_at) WHERE status = 'delivered';

-------------------------------------------------------------------------------
-- One connection: claims, acknowledgement, the generated column, the indexes.
SELECT is(array(SELECT message_id FROM personalisation.claim_messages('od-w1', 2, '5 minutes', '2020-01-06 11:00+00')),
          ARRAY[pg_temp.msg(1), pg_temp.msg(2)], 'a claim takes the two oldest pushes');
SELECT is(pg_temp.state(pg_temp.msg(1)), 'claimed/1/true', 'a claimed message stays queued');
SELECT is(personalisation.ack_messages(ARRAY[pg_temp.msg(1), pg_temp.msg(1)], '2020-01-06 11:01+00'), 1,
          'an id given twice in one acknowledgement counts once');
SELECT is(pg_temp.state(pg_temp.msg(1)), 'delivered/1/false', 'a delivered message leaves the queue (queued is computed)');
-- consent withdrawn behind set_consent's back: only the claim's re-check sees it
UPDATE personalisation.sessions SET push_consent = false, push_consent_at = '2020-01-06 11:01+00' WHERE session_id = 'od-3';
SELECT is(array(SELECT message_id FROM personalisation.claim_messages('od-w1', 1, '5 minutes', '2020-01-06 11:02+00')),
          ARRAY[pg_temp.msg(4)], 'a claim passes over a message whose consent is gone');
SELECT is(pg_temp.state(pg_temp.msg(3)), 'suppressed/0/false', 'which is suppressed and leaves the queue');
SELECT ok(pg_temp.outbox_indexes_whole(),
          'every index of the outbox, the shop''s too, holds every row (amcheck heapallindexed)');
SET enable_seqscan = off;
SELECT is((SELECT count(*) FROM personalisation.outbox WHERE lower(status) = 'delivered' AND claimed_by = 'od-w1'),
          1::bigint, 'a shop''s expression index finds the delivered message');
SELECT is((SELECT count(*) FROM personalisation.outbox WHERE status = 'delivered' AND finished_at = '2020-01-06 11:01+00'),
          1::bigint, 'a shop''s partial index finds it');
RESET enable_seqscan;

BEGIN READ ONLY;
SELECT throws_ok($$SELECT * FROM personalisation.claim_messages('od-w1', 1, '5 minutes', '2020-01-06 11:03+00')$$,
                 '25006', NULL, 'a claim in a read-only transaction is refused');
ROLLBACK;

-------------------------------------------------------------------------------
-- Two connections.
SELECT pg_temp.connect('a'), pg_temp.connect('b');

-- a claim in an open transaction holds its message; another claim skips it
SELECT dblink_exec('a', 'BEGIN');
SELECT is(array(SELECT id FROM dblink('a', $$SELECT message_id FROM personalisation.claim_messages('od-a', 1, '5 minutes', '2020-01-06 11:04+00')$$) AS r(id bigint)),
          ARRAY[pg_temp.msg(5)], 'connection a claims the oldest available message');
SELECT is(array(SELECT id FROM dblink('b', $$SELECT message_id FROM personalisation.claim_messages('od-b', 1, '5 minutes', '2020-01-06 11:04+00')$$) AS r(id bigint)),
          ARRAY[pg_temp.msg(6)], 'connection b, at once, skips it for the next one');
SELECT dblink_exec('a', 'COMMIT');
SELECT is(pg_temp.state(pg_temp.msg(5)) || ' ' || pg_temp.state(pg_temp.msg(6)), 'claimed/1/true claimed/1/true',
          'each was claimed once');

-- REPEATABLE READ: a message claimed and committed after b's snapshot is skipped, not a failure
SELECT dblink_exec('b', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('b', 'SELECT count(*) FROM personalisation.outbox') AS r(n bigint);
SELECT is(array(SELECT id FROM dblink('a', $$SELECT message_id FROM personalisation.claim_messages('od-a', 1, '5 minutes', '2020-01-06 11:04+00')$$) AS r(id bigint)),
          ARRAY[pg_temp.msg(7)], 'connection a claims and commits the oldest available message');
SELECT is(array(SELECT id FROM dblink('b', $$SELECT message_id FROM personalisation.claim_messages('od-b', 1, '5 minutes', '2020-01-06 11:04+00')$$) AS r(id bigint)),
          ARRAY[pg_temp.msg(8)], 'b''s REPEATABLE READ claim, whose snapshot still shows it pending, skips it');
SELECT dblink_exec('b', 'COMMIT');

-- two acknowledgements of the same message: the second waits, then finds it delivered
SELECT dblink_exec('a', 'BEGIN');
SELECT * FROM dblink('a', format('SELECT personalisation.ack_messages(%L, %L)', ARRAY[pg_temp.msg(8), pg_temp.msg(7)],
                                 '2020-01-06 11:07+00')) AS r(n int);
SELECT dblink_send_query('b', format('SELECT personalisation.ack_messages(%L, %L)', ARRAY[pg_temp.msg(7), pg_temp.msg(8)],
                                     '2020-01-06 11:08+00'));
SELECT pg_sleep(0.2);
SELECT is(dblink_is_busy('b'), 1, 'b''s acknowledgement waits for a''s');
SELECT dblink_exec('a', 'COMMIT');
SELECT is((SELECT n FROM dblink_get_result('b') AS r(n int)), 0, 'and then changes nothing: both were delivered');
SELECT * FROM dblink_get_result('b') AS r(n int);
SELECT is((SELECT finished_at FROM personalisation.outbox WHERE message_id = pg_temp.msg(7)),
          '2020-01-06 11:07+00'::timestamptz, 'the delivery is a''s');

-- claims and acknowledgements in turn, each committed, so that the queue's
-- head fills with index entries of delivered messages the next claims pass
SELECT count(*) FROM generate_series(1, 4) i,
  LATERAL dblink('a', format($$SELECT personalisation.ack_messages(ARRAY(SELECT message_id FROM
      personalisation.claim_messages('od-a', 1, '5 minutes', %L)))$$, timestamptz '2020-01-06 11:10+00' + i * interval '1 minute')) AS r(n int);
SELECT is(array(SELECT pg_temp.state(pg_temp.msg(i)) FROM unnest(ARRAY[2, 4, 5, 6]) i),
          ARRAY['delivered/2/false', 'delivered/2/false', 'delivered/2/false', 'delivered/2/false'],
          'those claims took the lapsed leases, oldest first, each a second attempt');
SELECT is(array(SELECT id FROM dblink('b', $$SELECT message_id FROM personalisation.claim_messages('od-b', 10, '1 minute', '2020-01-06 12:00+00')
                                             WHERE session_id LIKE 'od-%' ORDER BY message_id$$) AS r(id bigint)),
          array(SELECT pg_temp.msg(i) FROM generate_series(9, 12) i ORDER BY 1),
          'a claim past the delivered messages takes exactly the four still pending');
SELECT ok(pg_temp.outbox_indexes_whole(), 'after the concurrent claims and acknowledgements too');
SELECT dblink_disconnect('a'), dblink_disconnect('b');

-- Clean up everything this file committed.
DROP INDEX personalisation.od_outbox_consumer, personalisation.od_outbox_lower_status, personalisation.od_outbox_delivered;
DELETE FROM personalisation.outbox WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.journey_run_steps WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.journey_runs WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.cart_lines WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.carts WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.consent_history WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.events WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.affinity WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.sessions WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.profiles WHERE profile_id IN (SELECT profile_id FROM od_mine);
DELETE FROM personalisation.products WHERE product_id = 'od-lamp';
DELETE FROM personalisation.categories WHERE category_id = 'od-cat';
SELECT is((SELECT count(*) FROM personalisation.sessions WHERE session_id ~ '^od-'), 0::bigint, 'the test leaves nothing behind');
SELECT * FROM finish();
