
-- The background worker: observable from SQL, started on demand.

CREATE FUNCTION personalisation.worker_status(
    OUT database_id oid, OUT pid int, OUT started_at timestamptz, OUT last_run_at timestamptz,
    OUT runs bigint, OUT actions bigint, OUT errors bigint, OUT last_error_at timestamptz,
    OUT last_error text)
RETURNS SETOF record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'worker_status';

CREATE FUNCTION personalisation.start_worker()
RETURNS boolean LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'start_worker';

-- A database gets its worker as soon as the extension is created.
SELECT personalisation.start_worker() WHERE personalisation.preloaded();

-- The periodic jobs, who runs each in this database (pg_cron, the worker, or
-- nobody) and whether it has a scheduled minute in (since, until].
CREATE FUNCTION personalisation.jobs(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval,
    until timestamptz DEFAULT pg_catalog.now(),
    OUT job_name text, OUT schedule text, OUT command text, OUT runner text, OUT due boolean)
RETURNS SETOF record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'jobs';
