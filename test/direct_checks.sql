-- Included by the pgTAP files about the direct writes (src/direct.c):
-- connect(name), a dblink connection to this database, and
-- check_index(index), amcheck's proof that a btree index holds every row of
-- its table (true, or an error naming what is missing).
CREATE EXTENSION IF NOT EXISTS amcheck;

CREATE FUNCTION pg_temp.connect(name text) RETURNS text LANGUAGE sql AS $$
  SELECT dblink_connect(name, format('dbname=%s host=%s port=%s', current_database(),
         current_setting('unix_socket_directories'), current_setting('port')))
$$;

CREATE FUNCTION pg_temp.check_index(index oid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM bt_index_check(index, heapallindexed => true);
  RETURN true;
END $$;
