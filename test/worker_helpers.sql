-- Helpers included by the pgTAP files that drive the real background worker.

-- wait_until(query, seconds): polls a boolean query until it holds or time runs out.
CREATE FUNCTION pg_temp.wait_until(query text, seconds float8 DEFAULT 10) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + seconds * interval '1 second';
  ok boolean;
BEGIN
  LOOP
    EXECUTE query INTO ok;
    IF ok THEN RETURN true; END IF;
    IF clock_timestamp() > deadline THEN RETURN false; END IF;
    PERFORM pg_sleep(0.05);
    PERFORM pg_stat_clear_snapshot();  -- pg_stat_activity is otherwise read once per transaction
  END LOOP;
END $$;
