-- personalisation 0.1.0 -> 0.2.0
--
-- Every SQL change made after the 0.1.0 release goes here as well as into the
-- install parts (sql/*.sql); the upgrade test (test/upgrade.sh) proves that an
-- updated 0.1.0 database and a fresh 0.2.0 install have the same schema.
-- Every object is schema-qualified.

\echo Use "ALTER EXTENSION personalisation UPDATE TO '0.2.0'" to load this file. \quit

-- worker lifecycle: jobs() shows which periodic jobs run where (pg_cron, the
-- background worker, or nobody) and when they fall due.
CREATE FUNCTION personalisation.jobs(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval,
    until timestamptz DEFAULT pg_catalog.now(),
    OUT job_name text, OUT schedule text, OUT command text, OUT runner text, OUT due boolean)
RETURNS SETOF record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'jobs';
ALTER FUNCTION personalisation.jobs(timestamptz, timestamptz)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION personalisation.jobs(timestamptz, timestamptz) FROM PUBLIC;
INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
    ('jobs', 'owner_only', 'owner');
