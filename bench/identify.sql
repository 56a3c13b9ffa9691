-- bench/identify.sql: run by bench/identify.sh against the bench database
-- of bench/common.sh (the extension and a catalogue of products p1, p2, ...).
\set QUIET on
SET client_min_messages = warning;

-- The day partitions of the last 30 days exist, as they would in a shop.
SELECT count(personalisation.track_page_view('bench-warmup', NULL, 'p1', now() - (d || ' days')::interval))
  FROM generate_series(0, 30) d \gset

CREATE TABLE bench_timings (name text, operation text, round int, ms float8);

-- bench_known makes a customer whose profile has `events` events over the
-- last 30 days (written straight into the event log) and 3 cart lines.
CREATE PROCEDURE bench_known(customer text, events int) LANGUAGE plpgsql AS $$
DECLARE
    profile bigint;
BEGIN
    profile := personalisation.identify(customer || '-desk', customer);
    INSERT INTO personalisation.events (kind, occurred_at, profile_id, session_id, category_id, product_id)
    SELECT 'page_view', now() - interval '30 days' * random() - interval '2 hours', profile,
           customer || '-desk', NULL, 'p' || (1 + i % 50)
      FROM generate_series(1, events) i;
    PERFORM personalisation.track_cart_add(customer || '-desk', 'p' || i, 1, now() - interval '1 hour')
       FROM generate_series(1, 3) i;
END
$$;

-- bench_anonymous makes an anonymous session with `events` events: page
-- views and 5 cart additions, through the tracking functions.
CREATE PROCEDURE bench_anonymous(session text, events int) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM personalisation.track_page_view(session, NULL, 'p' || (1 + i % 50),
                                            now() - interval '1 hour' + i * interval '1 second')
       FROM generate_series(1, events - 5) i;
    PERFORM personalisation.track_cart_add(session, 'p' || i, 2, now() - interval '30 minutes')
       FROM generate_series(1, 5) i;
END
$$;

-- The three cases: name, events on the customer's profile, events of the anonymous session.
CREATE TABLE bench_cases (name text, known_events int, anonymous_events int);
INSERT INTO bench_cases VALUES
  ('known 100, anonymous 100', 100, 100),
  ('known 10000, anonymous 100', 10000, 100),
  ('known 100, anonymous 1000', 100, 1000);

-- bench_prepare makes, for every round and case, a fresh customer and an
-- anonymous session to merge into it.
CREATE PROCEDURE bench_prepare(rounds int) LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    FOR round IN 0..rounds LOOP
        FOR c IN SELECT * FROM bench_cases LOOP
            CALL bench_known(c.name || '-' || round, c.known_events);
            CALL bench_anonymous(c.name || '-' || round || '-phone', c.anonymous_events);
            COMMIT;
        END LOOP;
    END LOOP;
END
$$;

-- bench_run times each merge (identify) and its undo (unmerge), each in its
-- own transaction, the cases interleaved round by round.  Round 0 warms the
-- caches and is not reported.
CREATE PROCEDURE bench_run(rounds int) LANGUAGE plpgsql AS $$
DECLARE
    c record;
    customer text;
    started timestamptz;
    merge bigint;
BEGIN
    FOR round IN 0..rounds LOOP
        FOR c IN SELECT * FROM bench_cases LOOP
            customer := c.name || '-' || round;
            started := clock_timestamp();
            PERFORM personalisation.identify(customer || '-phone', customer);
            INSERT INTO bench_timings VALUES (c.name, 'identify', round,
                                              extract(epoch FROM clock_timestamp() - started) * 1000);
            COMMIT;
            SELECT merge_id INTO merge FROM personalisation.merges WHERE session_id = customer || '-phone';
            started := clock_timestamp();
            PERFORM personalisation.unmerge(merge);
            INSERT INTO bench_timings VALUES (c.name, 'unmerge', round,
                                              extract(epoch FROM clock_timestamp() - started) * 1000);
            COMMIT;
        END LOOP;
    END LOOP;
END
$$;

CALL bench_prepare(:rounds);
VACUUM ANALYZE;
CALL bench_run(:rounds);

\set QUIET off
\echo
\echo identify() and unmerge(): median and mean milliseconds per call, and the ratio of the median to the
\echo baseline (known 100, anonymous 100).  A merge should cost the same whatever the known side holds.
\echo
SELECT operation, name AS "case", count(*) AS rounds,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS median_ms,
       round(avg(ms)::numeric, 2) AS mean_ms,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)
              / first_value(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)) OVER (PARTITION BY operation
                  ORDER BY name = 'known 100, anonymous 100' DESC))::numeric, 2) AS ratio
  FROM bench_timings WHERE round > 0
 GROUP BY operation, name
 ORDER BY operation, ratio;
SELECT count(*) AS events_in_log, count(DISTINCT profile_id) AS profiles FROM personalisation.events;
