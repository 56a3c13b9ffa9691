-- table_digests.sql: prints one query per table of schema personalisation
-- (the partitioned events table once, with its partitions' rows) that
-- returns the table's name, its row count and an md5 of its rows, each row
-- as the text of its columns in column order, sorted.  Every table is found
-- from the catalogue, so a table added later is compared without naming it.
-- Run with psql -At; the output is itself a script: saved and run against
-- another database (or the same one later), it digests the same columns
-- there, so a column added since does not change a table's digest.
SELECT pg_catalog.format(
           'SELECT %L, count(*), md5(coalesce(string_agg(r, E''\n'' ORDER BY r COLLATE "C"), '''')) '
           'FROM (SELECT ROW(%s)::text AS r FROM %s t) s;',
           c.oid::regclass::text,
           pg_catalog.string_agg(pg_catalog.format('t.%I', a.attname), ', ' ORDER BY a.attnum),
           c.oid::regclass::text)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'personalisation'::pg_catalog.regnamespace
   AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 GROUP BY c.oid
 ORDER BY c.oid::regclass::text;
