-- The extension installs cleanly into a database with pg_cron preloaded, and
-- reports that it was preloaded (so no warning is raised).
CREATE EXTENSION personalisation;
SELECT personalisation.preloaded();
SELECT extname, extversion, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'personalisation';
-- nothing in the schema is granted to PUBLIC
SELECT has_schema_privilege('public', 'personalisation', 'USAGE') AS public_usage;
-- the partitions for today and the week ahead exist from the start
SELECT count(*) >= 8 AS premade FROM pg_inherits
 WHERE inhparent = 'personalisation.events'::regclass;
