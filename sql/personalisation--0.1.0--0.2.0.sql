-- personalisation 0.1.0 -> 0.2.0
--
-- Every SQL change made after the 0.1.0 release goes here as well as into the
-- install parts (sql/*.sql); the upgrade test (test/upgrade.sh) proves that an
-- updated 0.1.0 database and a fresh 0.2.0 install have the same schema.
-- Every object is schema-qualified.

\echo Use "ALTER EXTENSION personalisation UPDATE TO '0.2.0'" to load this file. \quit

-- money: bounds on prices, quantities and intervals.  A price (catalogue,
-- order line, journey step amount) is 0 or more, below 10^12, with at most 4
-- decimal places; a cart or order line holds 1 to 1,000,000 units; a product
-- lasts at most 3650 days and no journey interval is longer; a percent
-- incentive is at most 100.  The constraints are added NOT VALID and then
-- validated one by one, so that rows an earlier version accepted (NaN, 1e300,
-- 1e130000) refuse the update with a message naming the table, the
-- constraint and the query that finds them, and nothing changes until they
-- are corrected.
ALTER TABLE personalisation.products
    DROP CONSTRAINT products_price_check,
    ADD CONSTRAINT products_price_check
        CHECK (price >= 0 AND price < 1e12 AND pg_catalog.scale(price) <= 4) NOT VALID,
    DROP CONSTRAINT products_replenish_days_check,
    ADD CONSTRAINT products_replenish_days_check CHECK (replenish_days BETWEEN 1 AND 3650) NOT VALID;
ALTER TABLE personalisation.cart_lines
    DROP CONSTRAINT cart_lines_quantity_check,
    ADD CONSTRAINT cart_lines_quantity_check CHECK (quantity BETWEEN 1 AND 1000000) NOT VALID;
ALTER TABLE personalisation.order_lines
    DROP CONSTRAINT order_lines_quantity_check,
    ADD CONSTRAINT order_lines_quantity_check CHECK (quantity BETWEEN 1 AND 1000000) NOT VALID,
    DROP CONSTRAINT order_lines_unit_price_check,
    ADD CONSTRAINT order_lines_unit_price_check
        CHECK (unit_price >= 0 AND unit_price < 1e12 AND pg_catalog.scale(unit_price) <= 4) NOT VALID;
ALTER TABLE personalisation.journeys
    DROP CONSTRAINT journeys_send_within_check,
    ADD CONSTRAINT journeys_send_within_check
        CHECK (send_within > interval '0' AND send_within <= interval '3650 days') NOT VALID;
ALTER TABLE personalisation.journey_steps
    DROP CONSTRAINT journey_steps_delay_check,
    ADD CONSTRAINT journey_steps_delay_check
        CHECK (delay BETWEEN interval '0' AND interval '3650 days') NOT VALID,
    DROP CONSTRAINT journey_steps_max_lateness_check,
    ADD CONSTRAINT journey_steps_max_lateness_check
        CHECK (max_lateness BETWEEN interval '0' AND interval '3650 days') NOT VALID,
    DROP CONSTRAINT journey_steps_min_cart_value_check,
    ADD CONSTRAINT journey_steps_min_cart_value_check
        CHECK (min_cart_value >= 0 AND min_cart_value < 1e12
               AND pg_catalog.scale(min_cart_value) <= 4) NOT VALID,
    DROP CONSTRAINT journey_steps_incentive_value_check,
    ADD CONSTRAINT journey_steps_incentive_value_check
        CHECK (incentive_value >= 0 AND incentive_value < 1e12
               AND pg_catalog.scale(incentive_value) <= 4) NOT VALID,
    DROP CONSTRAINT journey_steps_before_runout_check,
    ADD CONSTRAINT journey_steps_before_runout_check
        CHECK (before_runout BETWEEN interval '0' AND interval '3650 days') NOT VALID,
    ADD CONSTRAINT journey_steps_incentive_percent
        CHECK (incentive_kind IS DISTINCT FROM 'percent' OR incentive_value <= 100) NOT VALID;
DO $bounds$
DECLARE
    bound record;
BEGIN
    FOR bound IN
        SELECT pg_catalog.format('personalisation.%I', r.relname) AS relation, c.conname,
               pg_catalog.pg_get_expr(c.conbin, c.conrelid) AS expression
          FROM pg_catalog.pg_constraint c
          JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) c.conrelid
         WHERE c.connamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
           AND NOT c.convalidated
           AND c.conname OPERATOR(pg_catalog.=) ANY (ARRAY[
                   'products_price_check', 'products_replenish_days_check', 'cart_lines_quantity_check',
                   'order_lines_quantity_check', 'order_lines_unit_price_check', 'journeys_send_within_check',
                   'journey_steps_delay_check', 'journey_steps_max_lateness_check',
                   'journey_steps_min_cart_value_check', 'journey_steps_incentive_value_check',
                   'journey_steps_before_runout_check', 'journey_steps_incentive_percent']::pg_catalog.name[])
         ORDER BY c.conname
    LOOP
        BEGIN
            EXECUTE pg_catalog.format('ALTER TABLE %s VALIDATE CONSTRAINT %I', bound.relation, bound.conname);
        EXCEPTION WHEN check_violation THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                MESSAGE = pg_catalog.format('%s holds rows outside the bounds of personalisation 0.2.0',
                                            bound.relation),
                DETAIL = pg_catalog.format('Constraint %s requires %s.', bound.conname, bound.expression),
                HINT = pg_catalog.format('Find the rows with SELECT * FROM %s WHERE NOT (%s), correct or '
                                         'delete them (round a price with round(price, 4), for example), '
                                         'then run ALTER EXTENSION personalisation UPDATE again.',
                                         bound.relation, bound.expression);
        END;
    END LOOP;
END
$bounds$;
-- sender: claim_messages, ack_message(s) and fail_message refuse a sender's
-- forged clock (C only); ack_message(s) and fail_message take the consumer
-- that claimed the message, as a trailing parameter with a NULL default, so
-- that 0.1.0 calls keep working (the C symbols read the 0.1.0 arguments
-- first, and the consumer only when declared).
DROP FUNCTION personalisation.ack_message(bigint, timestamptz);
DROP FUNCTION personalisation.ack_messages(bigint[], timestamptz);
DROP FUNCTION personalisation.fail_message(bigint, text, timestamptz);
-- An acknowledgement or failure names the consumer that claimed the message
-- (claim_messages' consumer): another consumer's lease is refused.  Only the
-- extension's owner may omit it, and settle any claim.
CREATE FUNCTION personalisation.ack_message(
    message_id bigint,
    now timestamptz DEFAULT pg_catalog.now(),
    consumer text DEFAULT NULL)
RETURNS boolean LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ack_message';

CREATE FUNCTION personalisation.ack_messages(
    message_ids bigint[],
    now timestamptz DEFAULT pg_catalog.now(),
    consumer text DEFAULT NULL)
RETURNS int LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ack_messages';

CREATE FUNCTION personalisation.fail_message(
    message_id bigint,
    error text,
    now timestamptz DEFAULT pg_catalog.now(),
    consumer text DEFAULT NULL)
RETURNS text LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'fail_message';
ALTER FUNCTION personalisation.ack_message(bigint, timestamptz, text)
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION personalisation.ack_messages(bigint[], timestamptz, text)
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION personalisation.fail_message(bigint, text, timestamptz, text)
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION personalisation.ack_message(bigint, timestamptz, text),
                       personalisation.ack_messages(bigint[], timestamptz, text),
                       personalisation.fail_message(bigint, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION personalisation.ack_message(bigint, timestamptz, text),
                          personalisation.ack_messages(bigint[], timestamptz, text),
                          personalisation.fail_message(bigint, text, timestamptz, text) TO personalisation_sender;

-- sender: the privileges every script leaves are the access map's, applied by
-- apply_access_map() (sql/security.sql) as the script's last statement; 0.1.0's
-- ALTER DEFAULT PRIVILEGES IN SCHEMA changed nothing (pg_default_acl stayed
-- empty), so there is nothing to undo.
INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
    ('apply_access_map',     'owner_only',              'owner');
-- apply_access_map() makes the schema's privileges what the access map says,
-- and refuses a function or view the map does not classify.  Nothing is left
-- to PUBLIC, which PostgreSQL grants EXECUTE on every new function: the
-- install script and every upgrade script call it as their last statement, so
-- the functions an upgrade adds are covered too.  (Default privileges cannot
-- do this confined to the schema: ALTER DEFAULT PRIVILEGES IN SCHEMA can only
-- add to the global defaults, and FOR ROLE would change every function the
-- owner creates in any schema.)  EXECUTE on the schema's functions is
-- revoked from the three roles before the map grants it, so a role keeps
-- nothing the map has stopped naming.
CREATE FUNCTION personalisation.apply_access_map() RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    entry record;
    target record;
    matched boolean;
    missing text;
BEGIN
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA personalisation
      FROM PUBLIC, personalisation_shop, personalisation_analyst, personalisation_sender;
    REVOKE ALL ON ALL TABLES IN SCHEMA personalisation FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA personalisation FROM PUBLIC;
    FOR entry IN SELECT m.* FROM personalisation.access_map m ORDER BY m.object_name, m.role_name LOOP
        matched := false;
        FOR target IN
            SELECT pg_catalog.format('personalisation.%I(%s)', p.proname,
                                     pg_catalog.pg_get_function_identity_arguments(p.oid)) AS signature
              FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'personalisation'::pg_catalog.regnamespace AND p.proname = entry.object_name
        LOOP
            matched := true;
            IF entry.runs_as = 'owner' THEN
                EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp',
                                          target.signature);
            END IF;
            IF entry.role_name <> 'owner_only' THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I', target.signature, entry.role_name);
            END IF;
        END LOOP;
        FOR target IN
            SELECT pg_catalog.format('personalisation.%I', c.relname) AS relation, c.relkind
              FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'personalisation'::pg_catalog.regnamespace AND c.relname = entry.object_name
               AND c.relkind IN ('r', 'p', 'v', 'm')
        LOOP
            matched := true;
            IF entry.role_name <> 'owner_only' THEN
                EXECUTE pg_catalog.format('GRANT %s ON TABLE %s TO %I',
                                          CASE WHEN target.relkind IN ('v', 'm') THEN 'SELECT'
                                               ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
                                          target.relation, entry.role_name);
            END IF;
        END LOOP;
        IF NOT matched THEN
            RAISE EXCEPTION 'personalisation.access_map names "%", which is no function, table or view of schema personalisation',
                            entry.object_name
                  USING HINT = 'Correct or remove its line in the access map (sql/security.sql).';
        END IF;
    END LOOP;

    SELECT pg_catalog.string_agg(DISTINCT o.name, ', ') INTO missing
      FROM (SELECT p.proname::text AS name FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'personalisation'::pg_catalog.regnamespace
            UNION ALL
            SELECT c.relname::text FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'personalisation'::pg_catalog.regnamespace AND c.relkind IN ('v', 'm')) o
     WHERE NOT EXISTS (SELECT FROM personalisation.access_map m WHERE m.object_name = o.name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'the access map does not say who may use: %', missing
              USING HINT = 'Add one line per name to the access map in sql/security.sql: the role that may use it, or owner_only.';
    END IF;
END
$$;

-- Keep this the last statement of the script: it covers every function the
-- blocks above added, and refuses one the access map does not name.
SELECT personalisation.apply_access_map();
