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
