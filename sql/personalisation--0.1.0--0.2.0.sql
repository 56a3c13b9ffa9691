-- personalisation 0.1.0 -> 0.2.0
--
-- Every SQL change made after the 0.1.0 release goes here as well as into the
-- install parts (sql/*.sql); the upgrade test (test/upgrade.sh) proves that an
-- updated 0.1.0 database and a fresh 0.2.0 install have the same schema.
-- Every object is schema-qualified.

\echo Use "ALTER EXTENSION personalisation UPDATE TO '0.2.0'" to load this file. \quit

-- locking: track_events(events jsonb), bulk ingestion through the typed tracking functions.
CREATE FUNCTION personalisation.track_events(events jsonb)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_events';
ALTER FUNCTION personalisation.track_events(jsonb) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION personalisation.track_events(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION personalisation.track_events(jsonb) TO personalisation_shop;
INSERT INTO personalisation.access_map (object_name, role_name, runs_as)
VALUES ('track_events', 'personalisation_shop', 'owner');
