-- schedule_jobs() registers the complementarity maintenance with pg_cron.
BEGIN;
SELECT plan(2);
CREATE EXTENSION IF NOT EXISTS pg_cron;

SELECT is((SELECT schedule FROM personalisation.schedule_jobs()
            WHERE job_name = 'personalisation:maintain-complementarity'),
          '*/5 * * * *',
          'schedule_jobs registers personalisation:maintain-complementarity every five minutes');
SELECT is((SELECT command FROM cron.job WHERE jobname = 'personalisation:maintain-complementarity'),
          'SELECT personalisation.maintain_complementarity()',
          'the job runs maintain_complementarity()');

SELECT * FROM finish();
ROLLBACK;
