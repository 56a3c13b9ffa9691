-- The background worker: started on demand, woken by a committed cart change
-- through its latch, restarted after being terminated, gone when the
-- extension is dropped or the worker is disabled.  Polling is bounded; no
-- test sleeps for a fixed time.
SELECT plan(14);

\ir ../worker_helpers.sql

CREATE FUNCTION pg_temp.worker_pid(db text DEFAULT current_database()) RETURNS int LANGUAGE sql AS $$
  SELECT pid FROM pg_stat_activity
   WHERE backend_type = 'personalisation worker' AND datname = db
$$;

ALTER SYSTEM SET personalisation.worker_enabled = on;
ALTER SYSTEM SET personalisation.worker_naptime = '60s';
SELECT pg_reload_conf();

SELECT ok(personalisation.start_worker(), 'start_worker registers a worker');
SELECT ok(pg_temp.wait_until($$SELECT pg_temp.worker_pid() IS NOT NULL$$),
          'the worker runs, visible in pg_stat_activity');
SELECT is((SELECT application_name FROM pg_stat_activity WHERE pid = pg_temp.worker_pid()),
          'personalisation worker', 'with a clear application name');
SELECT ok(pg_temp.wait_until($$SELECT runs > 0 FROM personalisation.worker_status()
                                WHERE database_id = (SELECT oid FROM pg_database WHERE datname = current_database())$$),
          'and has done a unit of work');

-- with a 60 s naptime, only the latch can make it run again within seconds
CREATE TEMP TABLE runs_before AS
  SELECT runs FROM personalisation.worker_status()
   WHERE database_id = (SELECT oid FROM pg_database WHERE datname = current_database());
INSERT INTO personalisation.categories VALUES ('wk-cat', NULL, 'Worker') ON CONFLICT DO NOTHING;
INSERT INTO personalisation.products (product_id, category_id) VALUES ('wk-p', 'wk-cat') ON CONFLICT DO NOTHING;
SELECT personalisation.track_cart_add('wk-s', 'wk-p');
SELECT ok(pg_temp.wait_until($$SELECT s.runs > b.runs FROM personalisation.worker_status() s, runs_before b
                                WHERE s.database_id = (SELECT oid FROM pg_database WHERE datname = current_database())$$, 5),
          'a committed cart change wakes the worker at once');

-- a burst of committed cart changes shares runs: runs started by wake-ups
-- are at least 50 ms apart, where one run per commit would follow each
CREATE TEMP TABLE burst_before AS
  SELECT runs, clock_timestamp() AS started_at FROM personalisation.worker_status()
   WHERE database_id = (SELECT oid FROM pg_database WHERE datname = current_database());
DO $$ BEGIN
  FOR i IN 1..100 LOOP
    PERFORM personalisation.track_cart_add('wk-s', 'wk-p');
    COMMIT;
  END LOOP; END $$;
SELECT cmp_ok((SELECT s.runs - b.runs FROM personalisation.worker_status() s, burst_before b
                WHERE s.database_id = (SELECT oid FROM pg_database WHERE datname = current_database())),
              '<=', (SELECT floor(extract(epoch FROM clock_timestamp() - started_at) * 1000 / 50)::bigint + 3
                       FROM burst_before),
              '100 cart changes committed in a burst start at most one run per 50 ms');

-- a cart idle past personalisation.abandon_after is declared and its first step
-- done by the worker alone: nobody calls run_due
SELECT personalisation.set_consent('wk-idle', 'push', true, now() - interval '40 minutes');
SELECT personalisation.track_cart_add('wk-idle', 'wk-p', 1, now() - interval '35 minutes');
SELECT ok(pg_temp.wait_until($$SELECT EXISTS (
            SELECT FROM personalisation.journey_run_steps rs
              JOIN personalisation.sessions s USING (profile_id)
             WHERE s.session_id = 'wk-idle' AND rs.step = 1 AND rs.outcome IN ('sent', 'held'))$$, 5),
          'the worker picks up an abandoned cart and does its push step without any run_due call');

-- still with a 60 s naptime: a cart whose threshold passes in a few seconds
-- is picked up then, as the worker sleeps only until the next threshold
SELECT personalisation.set_consent('wk-soon', 'push', true, now() - interval '40 minutes');
SELECT personalisation.track_cart_add('wk-soon', 'wk-p', 1,
       clock_timestamp() - current_setting('personalisation.abandon_after')::interval + interval '3 seconds');
SELECT ok(pg_temp.wait_until($$SELECT EXISTS (
            SELECT FROM personalisation.journey_run_steps rs
              JOIN personalisation.sessions s USING (profile_id)
             WHERE s.session_id = 'wk-soon' AND rs.step = 1 AND rs.outcome IN ('sent', 'held'))$$, 15),
          'the worker wakes when the next cart passes the abandonment threshold, not only after the naptime');

-- back to the default naptime: a dropped extension is noticed within one naptime
ALTER SYSTEM RESET personalisation.worker_naptime;
SELECT pg_reload_conf();

-- terminated, it comes back
CREATE TEMP TABLE first_pid AS SELECT pg_temp.worker_pid() AS pid;
SELECT ok(pg_terminate_backend(pid), 'the worker can be terminated') FROM first_pid;
SELECT ok(pg_temp.wait_until($$SELECT pg_temp.worker_pid() IS NOT NULL AND pg_temp.worker_pid() <> (SELECT pid FROM first_pid)$$),
          'the postmaster restarts a terminated worker');

-- in another database, dropping the extension ends that database's worker
CREATE DATABASE personalisation_worker_drop;
SELECT dblink_connect('other', format('dbname=personalisation_worker_drop host=%s port=%s',
       current_setting('unix_socket_directories'), current_setting('port')));
SELECT * FROM dblink('other', 'CREATE EXTENSION personalisation') AS r(v text);
SELECT ok(pg_temp.wait_until($$SELECT pg_temp.worker_pid('personalisation_worker_drop') IS NOT NULL$$),
          'creating the extension starts a worker for that database');
SELECT * FROM dblink('other', 'DROP EXTENSION personalisation') AS r(v text);
SELECT dblink_disconnect('other');
SELECT ok(pg_temp.wait_until($$SELECT pg_temp.worker_pid('personalisation_worker_drop') IS NULL$$),
          'dropping the extension ends its worker, which is not restarted');
DROP DATABASE personalisation_worker_drop;

-- disabled, the worker exits
ALTER SYSTEM RESET personalisation.worker_enabled;
SELECT pg_reload_conf();
SELECT ok(pg_temp.wait_until($$SELECT pg_temp.worker_pid() IS NULL$$),
          'turning personalisation.worker_enabled off stops the worker');
SELECT is((SELECT count(*) FROM personalisation.worker_status() WHERE pid IS NOT NULL), 0::bigint,
          'and worker_status shows no running worker');

-- clean up what this file committed
DELETE FROM personalisation.outbox WHERE session_id IN ('wk-s', 'wk-idle');
DELETE FROM personalisation.journey_run_steps WHERE run_id IN
  (SELECT run_id FROM personalisation.journey_runs WHERE session_id IN ('wk-s', 'wk-idle'));
DELETE FROM personalisation.coupons WHERE run_id IN
  (SELECT run_id FROM personalisation.journey_runs WHERE session_id IN ('wk-s', 'wk-idle'));
DELETE FROM personalisation.journey_runs WHERE session_id IN ('wk-s', 'wk-idle');
DELETE FROM personalisation.consent_history WHERE session_id IN ('wk-s', 'wk-idle');
DELETE FROM personalisation.events WHERE session_id IN ('wk-s', 'wk-idle');
DELETE FROM personalisation.cart_lines WHERE session_id IN ('wk-s', 'wk-idle');
DELETE FROM personalisation.carts WHERE session_id IN ('wk-s', 'wk-idle');
DELETE FROM personalisation.profiles WHERE profile_id IN
  (SELECT profile_id FROM personalisation.sessions WHERE session_id IN ('wk-s', 'wk-idle'));
DELETE FROM personalisation.sessions WHERE session_id IN ('wk-s', 'wk-idle');
SELECT * FROM finish();
