-- personalisation 0.1.0 -> 0.2.0
--
-- Every SQL change made after the 0.1.0 release goes here as well as into the
-- install parts (sql/*.sql); the upgrade test (test/upgrade.sh) proves that an
-- updated 0.1.0 database and a fresh 0.2.0 install have the same schema.
-- Every object is schema-qualified.

\echo Use "ALTER EXTENSION personalisation UPDATE TO '0.2.0'" to load this file. \quit
