-- The extension installs cleanly into a database with pg_cron preloaded, and
-- reports that it was preloaded (so no warning is raised).
CREATE EXTENSION personalisation;
SELECT personalisation.preloaded();
SELECT extname, extversion, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'personalisation';
-- nothing in the schema is granted to PUBLIC
SELECT has_schema_privilege('public', 'personalisation', 'USAGE') AS public_usage;
-- no day partition exists before the first event of its day or
-- maintain_partitions (so that a restore's CREATE EXTENSION makes none of
-- the partitions the dump brings), and none is a member of the extension
SELECT count(*) AS partitions FROM pg_inherits
 WHERE inhparent = 'personalisation.events'::regclass;
SELECT created >= 8 AS premade FROM personalisation.maintain_partitions();
SELECT count(*) AS member_partitions
  FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relispartition;
