-- Helpers included by the security pgTAP files.  Every one finds the
-- extension's tables from the catalog, so tables added later are covered.

-- Every table of the schema, partitioned tables as a whole.
CREATE TEMP VIEW schema_tables AS
SELECT c.oid::regclass AS rel, c.relname::text AS name
  FROM pg_class c
 WHERE c.relnamespace = 'personalisation'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition;

-- The columns by which a row can name a person, with the key each holds
-- (from_profile_id and the like hold profile ids).
CREATE TEMP VIEW person_key_columns AS
SELECT t.rel, t.name AS table_name, a.attname::text AS column_name,
       CASE WHEN a.attname::text LIKE '%profile_id' THEN 'profile_id' ELSE a.attname::text END AS key
  FROM schema_tables t JOIN pg_attribute a ON a.attrelid = t.rel AND a.attnum > 0 AND NOT a.attisdropped
 WHERE a.attname::text IN ('session_id', 'order_id', 'customer_id', 'email', 'event_id')
    OR a.attname::text LIKE '%profile_id';

-- references_to(keys, pattern): every table.column holding one of the keys
-- ({"profile_id": [...], "session_id": [...], ...}), and every table with a
-- row whose text matches pattern (NULL: not searched), as "table (text)".
CREATE FUNCTION pg_temp.references_to(keys jsonb, pattern text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  col record;
  t record;
  hits bigint;
  found text[] := '{}';
BEGIN
  FOR col IN SELECT * FROM person_key_columns WHERE keys ? key ORDER BY table_name, column_name LOOP
    EXECUTE format('SELECT count(*) FROM %s r WHERE r.%I::text IN (SELECT jsonb_array_elements_text($1 -> %L))',
                   col.rel, col.column_name, col.key) INTO hits USING keys;
    IF hits > 0 THEN found := found || (col.table_name || '.' || col.column_name); END IF;
  END LOOP;
  IF pattern IS NOT NULL THEN
    FOR t IN SELECT * FROM schema_tables ORDER BY name LOOP
      EXECUTE format('SELECT count(*) FROM %s r WHERE r::text ~ $1', t.rel) INTO hits USING pattern;
      IF hits > 0 THEN found := found || (t.name || ' (text)'); END IF;
    END LOOP;
  END IF;
  RETURN found;
END $$;

-- wait_until(query, seconds): polls a boolean query until it holds or time runs out.
CREATE FUNCTION pg_temp.wait_until(query text, seconds float8 DEFAULT 10) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + seconds * interval '1 second';
  ok boolean;
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    EXECUTE query INTO ok;
    IF ok THEN RETURN true; END IF;
    IF clock_timestamp() > deadline THEN RETURN false; END IF;
    PERFORM pg_sleep(0.02);
  END LOOP;
END $$;
