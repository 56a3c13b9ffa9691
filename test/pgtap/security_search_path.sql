-- The search-path attack, end to end: a role that is granted only
-- personalisation_shop but may create objects in public (on PostgreSQL 15,
-- any role owning the shop's database) defines operators in public that
-- make it superuser when a superuser's code reaches them, and leaves a cart
-- idle.  The real background worker, connected as the extension's owner (a
-- superuser) with the default search_path ("$user", public), declares the
-- cart abandoned and writes its push: the role must still not be superuser,
-- and the cart must still have been processed.  Then pg_cron's jobs: they
-- run as the extension's owner whoever called schedule_jobs(), and running
-- their commands under the attacker's search_path reaches nothing of the
-- attacker's either.  Polling is bounded; no test sleeps for a fixed time.
SELECT plan(14);
\ir ../worker_helpers.sql

-- the attacker
CREATE ROLE hxa_attacker LOGIN;
GRANT personalisation_shop TO hxa_attacker;
GRANT CREATE ON SCHEMA public TO hxa_attacker;
INSERT INTO personalisation.categories VALUES ('hxa-cat', NULL, 'Attack');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES ('hxa-p', 'hxa-cat', 'Bait', 5);

SET ROLE hxa_attacker;
-- Every call of a trap is logged; a superuser's call in the background
-- worker (or in a session that set hxa.trap = on) makes the attacker superuser.
CREATE TABLE public.hxa_trap_calls (backend_type text, caller name, superuser boolean);
GRANT INSERT ON public.hxa_trap_calls TO PUBLIC;
CREATE FUNCTION public.hxa_trap() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  kind text := (SELECT a.backend_type FROM pg_catalog.pg_stat_activity a
                 WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid());
  super boolean := (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user);
BEGIN
  INSERT INTO public.hxa_trap_calls VALUES (kind, current_user, super);
  IF super AND (kind OPERATOR(pg_catalog.=) 'personalisation worker'
                OR pg_catalog.current_setting('hxa.trap', true) OPERATOR(pg_catalog.=) 'on') THEN
    EXECUTE 'ALTER ROLE hxa_attacker SUPERUSER';
  END IF;
END $$;
CREATE FUNCTION public.hxa_concat(a text, b bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hxa_trap(); RETURN a OPERATOR(pg_catalog.||) b; END $$;
CREATE FUNCTION public.hxa_concat(a text, b integer) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hxa_trap(); RETURN a OPERATOR(pg_catalog.||) b; END $$;
CREATE FUNCTION public.hxa_later(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hxa_trap(); RETURN a OPERATOR(pg_catalog.>) b; END $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = public.hxa_concat);
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = integer, FUNCTION = public.hxa_concat);
-- an exact-match shadow: reached only when public precedes pg_catalog
CREATE OPERATOR public.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.hxa_later);
RESET ROLE;

SELECT is((SELECT 'run:' || 42::bigint), 'run:42', 'the attacker''s operator is what a plain query with the default search_path runs');
SELECT cmp_ok((SELECT count(*) FROM public.hxa_trap_calls), '>=', 1::bigint, 'and its trap fires');
DELETE FROM public.hxa_trap_calls;

-- the worker on, with a long naptime: only the cart change wakes it; no
-- holdout, so that the cart's journey writes its messages whatever its arm
ALTER SYSTEM SET personalisation.worker_enabled = on;
ALTER SYSTEM SET personalisation.worker_naptime = '60s';
ALTER SYSTEM SET personalisation.journey_holdout_percent = 0;
SELECT pg_reload_conf();
SELECT ok(personalisation.start_worker(), 'the worker is started');

-- the attacker's cart, idle past personalisation.abandon_after, with push consent
SET ROLE hxa_attacker;
SELECT personalisation.set_consent('hxa-s', 'push', true, now() - interval '40 minutes');
SELECT personalisation.track_cart_add('hxa-s', 'hxa-p', 1, now() - interval '35 minutes');
RESET ROLE;

SELECT ok(pg_temp.wait_until($$SELECT EXISTS (
            SELECT FROM personalisation.journey_run_steps rs
              JOIN personalisation.sessions s USING (profile_id)
             WHERE s.session_id = 'hxa-s' AND rs.step = 1 AND rs.outcome = 'sent')$$, 20),
          'the worker declares the attacker''s cart abandoned and does its push step');
SELECT is((SELECT count(*) FROM personalisation.outbox o JOIN personalisation.sessions s USING (profile_id)
            WHERE s.session_id = 'hxa-s' AND o.channel = 'push' AND o.journey = 'abandoned_cart'),
          1::bigint, 'the push message is in the outbox');
SELECT is((SELECT count(*) FROM personalisation.worker_status() WHERE database_id =
            (SELECT oid FROM pg_database WHERE datname = current_database()) AND errors > 0),
          0::bigint, 'the worker ran without an error');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'hxa_attacker'), false,
          'the attacker is still not superuser');
SELECT is((SELECT count(*) FROM public.hxa_trap_calls WHERE backend_type = 'personalisation worker'), 0::bigint,
          'the worker reached none of the attacker''s operators');

ALTER SYSTEM RESET personalisation.worker_enabled;
ALTER SYSTEM RESET personalisation.worker_naptime;
ALTER SYSTEM RESET personalisation.journey_holdout_percent;
SELECT pg_reload_conf();
SELECT ok(pg_temp.wait_until($$SELECT NOT EXISTS (SELECT FROM pg_stat_activity
                                 WHERE backend_type = 'personalisation worker' AND datname = current_database())$$),
          'the worker stops again');

-- pg_cron's jobs, registered by a role that was handed schedule_jobs()
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE ROLE hxa_scheduler;
GRANT USAGE ON SCHEMA personalisation TO hxa_scheduler;
GRANT EXECUTE ON FUNCTION personalisation.schedule_jobs() TO hxa_scheduler;
SET LOCAL ROLE hxa_scheduler;
SELECT count(*) FROM personalisation.schedule_jobs();
RESET ROLE;
SELECT is((SELECT array_agg(DISTINCT username) FROM cron.job WHERE jobname LIKE 'personalisation:%'),
          (SELECT ARRAY[extowner::regrole::text] FROM pg_extension WHERE extname = 'personalisation'),
          'every job runs as the extension''s owner, not as the role that called schedule_jobs()');
SELECT is((SELECT array_agg(jobname ORDER BY jobname) FROM cron.job
            WHERE jobname LIKE 'personalisation:%' AND command !~ '^SELECT personalisation\.[a-z_]+\(\)$'),
          NULL, 'every job''s command is one schema-qualified call without arguments');
SELECT is((SELECT array_agg(j.jobname ORDER BY j.jobname) FROM cron.job j
             LEFT JOIN pg_proc p ON p.pronamespace = 'personalisation'::regnamespace
                    AND p.proname = substring(j.command FROM '^SELECT personalisation\.([a-z_]+)\(\)$')
            WHERE j.jobname LIKE 'personalisation:%'
              AND (p.oid IS NULL OR NOT p.prosecdef OR p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp'])),
          NULL, 'and each calls a SECURITY DEFINER function whose search_path is pinned to pg_catalog, pg_temp');
-- every command, run as a superuser under the attacker's search_path, public first
-- (the count of trap calls they made is returned)
CREATE FUNCTION pg_temp.run_job_commands() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  job record;
BEGIN
  DELETE FROM public.hxa_trap_calls;
  FOR job IN SELECT j.command FROM cron.job j WHERE j.jobname LIKE 'personalisation:%' ORDER BY j.jobname LOOP
    PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog', true);
    PERFORM pg_catalog.set_config('hxa.trap', 'on', true);
    EXECUTE job.command;
    PERFORM pg_catalog.set_config('hxa.trap', 'off', true);
    PERFORM pg_catalog.set_config('search_path', '"$user", public', true);
  END LOOP;
  RETURN (SELECT pg_catalog.count(*) FROM public.hxa_trap_calls);
END $$;
SELECT is(pg_temp.run_job_commands(), 0::bigint,
          'the jobs'' commands reach none of the attacker''s operators, even with public first in search_path');
ROLLBACK;

SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'hxa_attacker'), false,
          'after all of it, the attacker is still not superuser');

-- clean up what this file committed: the attacker's session, claimed by a
-- login, is erased with everything about it
SELECT personalisation.identify('hxa-s', 'hxa-customer');
SELECT personalisation.forget_customer('hxa-customer');
DELETE FROM personalisation.products WHERE product_id = 'hxa-p';
DELETE FROM personalisation.categories WHERE category_id = 'hxa-cat';
DROP OWNED BY hxa_attacker;
DROP ROLE hxa_attacker;
SELECT * FROM finish();
