-- The periodic jobs: one list for pg_cron and the worker.  jobs() says when
-- each falls due (explicit instants) and who runs it here: the worker, where
-- pg_cron has no personalisation:* job for this database, pg_cron once
-- schedule_jobs() registered them.  DROP EXTENSION takes its pg_cron jobs and
-- its emptied schema with it.  Everything runs in one rolled-back transaction.
BEGIN;
SELECT plan(13);
CREATE EXTENSION IF NOT EXISTS pg_cron;
DELETE FROM cron.job WHERE jobname LIKE 'personalisation:%';

CREATE FUNCTION pg_temp.due(since timestamptz, until timestamptz) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(job_name ORDER BY job_name) FILTER (WHERE due), '{}')
    FROM personalisation.jobs(since, until)
$$;

SELECT is(pg_temp.due('2026-03-02 10:16:00+00', '2026-03-02 10:17:00+00'),
          '{personalisation:maintain-partitions,personalisation:run-due}',
          'the minute 10:17 holds the hourly partition job (17 * * * *) and run-due');
SELECT is(pg_temp.due('2026-03-02 10:16:00+00', '2026-03-02 10:16:59.999+00'),
          '{}', 'a span with no whole minute in it holds nothing');
SELECT is(pg_temp.due('2026-03-02 10:19:30+00', '2026-03-02 10:20:00+00'),
          '{personalisation:maintain-complementarity,personalisation:refresh-popularity,personalisation:run-due}',
          'the minute 10:20 holds the five- and ten-minute jobs');
SELECT is(pg_temp.due('2026-03-02 10:24:00+00', '2026-03-02 10:25:30+00'),
          '{personalisation:maintain-complementarity,personalisation:run-due}',
          'the minute 10:25 holds the five-minute job, not the ten-minute one');
SELECT is(pg_temp.due('2026-03-02 10:41:00+00', '2026-03-02 10:42:00+00'),
          '{personalisation:run-due}',
          'the span is open at its start: 10:41 itself is not in (10:41, 10:42]');
SELECT is(pg_temp.due('2026-03-02 09:00:00+00', '2026-03-02 10:00:00+00'),
          '{personalisation:expire-session-affinity,personalisation:maintain-complementarity,personalisation:maintain-partitions,personalisation:refresh-popularity,personalisation:run-due}',
          'an hour holds every job');
SELECT throws_ok($$SELECT * FROM personalisation.jobs(NULL, now())$$, '22004', NULL,
                 'a NULL instant is refused');

-- who runs them: the worker is off in the test instance, so nobody, until pg_cron has the jobs
SELECT is((SELECT array_agg(DISTINCT runner) FROM personalisation.jobs()), '{nobody}',
          'with the worker off and no pg_cron job for this database, nobody runs the jobs');
SELECT is((SELECT count(*) FROM personalisation.schedule_jobs()), 5::bigint, 'schedule_jobs registers the five jobs');
SELECT is((SELECT array_agg(DISTINCT runner) FROM personalisation.jobs()), '{pg_cron}',
          'then pg_cron runs every one of them');

-- DROP EXTENSION: its pg_cron jobs go, and so does its schema once empty
-- (CASCADE: earlier files may have left views of their own on its tables)
SAVEPOINT before_drop;
DROP EXTENSION personalisation CASCADE;
SELECT is((SELECT count(*) FROM cron.job WHERE jobname LIKE 'personalisation:%'), 0::bigint,
          'DROP EXTENSION unschedules its pg_cron jobs in this database');
SELECT ok(NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'personalisation'),
          'and leaves no empty schema behind');
ROLLBACK TO SAVEPOINT before_drop;
CREATE TABLE personalisation.shop_notes (note text);
DROP EXTENSION personalisation CASCADE;
SELECT ok(EXISTS (SELECT FROM pg_namespace WHERE nspname = 'personalisation'),
          'a schema still holding the shop''s own table is left alone');

SELECT * FROM finish();
ROLLBACK;
