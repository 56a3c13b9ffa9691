
-- Operations: partition maintenance, pg_cron registration, load checks.

CREATE FUNCTION personalisation.maintain_partitions(
    now timestamptz DEFAULT pg_catalog.now(),
    since timestamptz DEFAULT NULL,
    OUT created int, OUT dropped int, OUT expired_keys bigint,
    OUT expired_sessions bigint, OUT forgotten_profiles bigint)
RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'maintain_partitions';

CREATE FUNCTION personalisation.schedule_jobs(
    OUT job_name text, OUT schedule text, OUT command text, OUT job_id bigint)
RETURNS SETOF record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'schedule_jobs';

CREATE FUNCTION personalisation.preloaded()
RETURNS boolean LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'preloaded';

DO $$
BEGIN
    IF NOT personalisation.preloaded() THEN
        RAISE WARNING 'personalisation is not loaded through shared_preload_libraries'
            USING DETAIL = 'Tracking and ranking work; the background worker does not run.',
                  HINT = 'Add personalisation to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END
$$;
