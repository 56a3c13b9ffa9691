-- Shipped rows and restores: what a restore's COPY does to the rows the
-- target's CREATE EXTENSION wrote.  A change by the shop makes a shipped
-- journey step its own (pg_dump carries it); a dumped row with the key of a
-- shipped row takes its place; a deleted shipped row is remembered, and
-- restoring the memory deletes the shipped row again.  Rolled back.
BEGIN;
SELECT plan(12);

-- this file's own journey, as an install would ship it
INSERT INTO personalisation.journeys (journey, trigger, shipped) VALUES ('bk_journey', 'cart_abandoned', true);
INSERT INTO personalisation.journey_steps (journey, step, name, delay, channel, template, shipped)
SELECT 'bk_journey', s, 'step ' || s, s * interval '1 hour', 'email', 'bk_template', true
  FROM generate_series(1, 4) s;

UPDATE personalisation.journey_steps SET delay = '90 minutes' WHERE journey = 'bk_journey' AND step = 1;
SELECT is((SELECT shipped FROM personalisation.journey_steps WHERE journey = 'bk_journey' AND step = 1), false,
          'a step the shop changes is no longer shipped, so pg_dump carries it');

INSERT INTO personalisation.journey_steps (journey, step, name, delay, channel, template)
VALUES ('bk_journey', 2, 'restored', '5 hours', 'push', 'bk_restored');
SELECT is((SELECT (name, delay, channel, shipped)::text FROM personalisation.journey_steps
            WHERE journey = 'bk_journey' AND step = 2),
          '(restored,05:00:00,push,f)', 'a row with the key of a shipped row takes its place');
SELECT is((SELECT count(*) FROM personalisation.journey_steps WHERE journey = 'bk_journey' AND step = 2), 1::bigint,
          'and the shipped row is gone, not doubled');
SELECT throws_ok($$INSERT INTO personalisation.journey_steps (journey, step, name, delay, channel, template)
                   VALUES ('bk_journey', 1, 'again', '1 hour', 'email', 'bk_template')$$,
                 '23505', NULL, 'a row with the key of a changed row is refused as before');

DELETE FROM personalisation.journey_steps WHERE journey = 'bk_journey' AND step = 3;
SELECT is((SELECT count(*) FROM personalisation.removed_shipped_rows
            WHERE relation = 'journey_steps' AND key = '{bk_journey,3}'), 1::bigint,
          'a deleted step leaves its key in removed_shipped_rows');
INSERT INTO personalisation.journey_steps (journey, step, name, delay, channel, template)
VALUES ('bk_journey', 3, 'back', '3 hours', 'email', 'bk_template');
SELECT is((SELECT count(*) FROM personalisation.removed_shipped_rows
            WHERE relation = 'journey_steps' AND key = '{bk_journey,3}'), 0::bigint,
          'inserting it again forgets the key');

-- a restore brings the memory of deleted rows after CREATE EXTENSION wrote them
INSERT INTO personalisation.removed_shipped_rows (relation, key) VALUES ('journey_steps', '{bk_journey,4}');
SELECT is((SELECT count(*) FROM personalisation.journey_steps WHERE journey = 'bk_journey' AND step = 4), 0::bigint,
          'a restored key deletes the shipped step');
INSERT INTO personalisation.removed_shipped_rows (relation, key) VALUES ('journey_steps', '{bk_journey,3}');
SELECT is((SELECT name FROM personalisation.journey_steps WHERE journey = 'bk_journey' AND step = 3), 'back',
          'but leaves a row that is the shop''s own');

INSERT INTO personalisation.journeys (journey, trigger, shipped) VALUES ('bk_gone', 'cart_abandoned', true);
INSERT INTO personalisation.journey_steps (journey, step, name, delay, channel, template, shipped)
VALUES ('bk_gone', 1, 'one', '1 hour', 'email', 'bk_template', true),
       ('bk_gone', 2, 'two', '2 hours', 'email', 'bk_template', true);
INSERT INTO personalisation.removed_shipped_rows (relation, key) VALUES ('journeys', '{bk_gone}');
SELECT is((SELECT count(*) FROM personalisation.journeys WHERE journey = 'bk_gone')
          + (SELECT count(*) FROM personalisation.journey_steps WHERE journey = 'bk_gone'), 0::bigint,
          'a restored journey key deletes the shipped journey with its shipped steps');
SELECT is((SELECT count(*) FROM personalisation.removed_shipped_rows WHERE key[1] = 'bk_gone'), 1::bigint,
          'and what it deletes is not remembered twice');

SELECT throws_ok($$INSERT INTO personalisation.removed_shipped_rows (relation, key) VALUES ('products', '{p1}')$$,
                 '22023', 'removed_shipped_rows cannot name table "products"',
                 'removed_shipped_rows names journeys and journey_steps only');

-- the pseudonym key a restore brings replaces the one CREATE EXTENSION drew
INSERT INTO personalisation.pseudonym_key (key) VALUES (pg_catalog.sha256('bk restored key'));
SELECT is((SELECT array_agg(key) FROM personalisation.pseudonym_key), ARRAY[pg_catalog.sha256('bk restored key')],
          'a restored pseudonym key replaces the installed one');

SELECT * FROM finish();
ROLLBACK;
