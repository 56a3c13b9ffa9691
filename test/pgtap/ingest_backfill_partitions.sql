-- A backfill creates the past days' event partitions in one step:
-- maintain_partitions(now, since) makes every day's partition from since's
-- day on, so the purchases loaded afterwards create none; again it changes
-- nothing; a since older than the event retention is refused.
BEGIN;
SELECT plan(6);
SET LOCAL personalisation.event_retention = '36500d';

-- The event partitions of 2021-03-01 .. 2021-03-10 that exist.
CREATE FUNCTION pg_temp.march_partitions() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'personalisation.events'::regclass
       AND c.relname BETWEEN 'events_p20210301' AND 'events_p20210310'
$$;

SELECT is(pg_temp.march_partitions(), 0::bigint, 'no partition for those days yet');
SELECT is((SELECT created FROM personalisation.maintain_partitions('2021-03-10 12:00+00', '2021-03-01 08:00+00')),
  17, 'one call creates the ten days from since to now and the 7 premade days after');
SELECT is(pg_temp.march_partitions(), 10::bigint, 'every day of the backfill has its partition');
SELECT is((SELECT created FROM personalisation.maintain_partitions('2021-03-10 12:00+00', '2021-03-01 08:00+00')),
  0, 'again, it creates nothing');

INSERT INTO personalisation.products (product_id, name, price) VALUES ('bp-p1', 'P1', 5);
SELECT personalisation.track_purchase('bp-s', 'bp-o' || d, '[{"product_id": "bp-p1", "quantity": 1, "unit_price": 5}]',
                                      timestamptz '2021-03-01 09:00+00' + d * interval '1 day')
  FROM generate_series(0, 9) d;
SELECT is(pg_temp.march_partitions(), 10::bigint, 'the purchases of those days found their partitions');

SET LOCAL personalisation.event_retention = '30d';
SELECT throws_ok($$SELECT personalisation.maintain_partitions('2021-03-10 12:00+00', '2021-01-01 00:00+00')$$,
  '22008', 'since 2021-01-01 00:00:00+00 is older than the event retention',
  'a since older than the retention is refused: its partitions would be dropped at once');

SELECT * FROM finish();
ROLLBACK;
