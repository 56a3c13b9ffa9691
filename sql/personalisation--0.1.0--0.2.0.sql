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
-- Backup and restore (issue 15, point 1; README, "Backup and restore";
-- sql/backup.sql): pg_dump carries every row the extension holds, and
-- pg_restore puts the rows and the day partitions back over a fresh
-- CREATE EXTENSION.

-- Day partitions get indexes of their own instead of partitions of indexes
-- on events (a partition pg_restore attaches would get a second copy), and
-- the partitions 0.1.0 made in CREATE EXTENSION leave the extension, so that
-- pg_dump dumps them like the later ones.  maintain_partitions() then gives
-- every partition its indexes (and makes the days ahead, as its job does).
CREATE TABLE personalisation.event_partition_indexes (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z_]{1,40}$'),
    definition text NOT NULL
);
INSERT INTO personalisation.event_partition_indexes VALUES
    ('profile_idx', '(profile_id, occurred_at)'),
    ('merge_idx', '(merge_id) WHERE merge_id IS NOT NULL'),
    ('product_views_idx', '(product_id, occurred_at)'
                          ' WHERE kind OPERATOR(pg_catalog.=) ''page_view'' AND product_id IS NOT NULL');
DROP INDEX personalisation.events_profile_idx, personalisation.events_merge_idx,
           personalisation.events_product_views_idx;
DO $$
DECLARE
    day_partition pg_catalog.regclass;
BEGIN
    FOR day_partition IN
        SELECT c.oid::pg_catalog.regclass
          FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.deptype = 'e' AND e.extname = 'personalisation' AND c.relispartition
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION personalisation DROP TABLE %s', day_partition);
    END LOOP;
END
$$;
SELECT personalisation.maintain_partitions();

-- Shipped journeys and steps: those still as 0.1.0 shipped them are marked
-- shipped (pg_dump leaves them out); the ones the shop changed are its own.
ALTER TABLE personalisation.journeys ADD COLUMN shipped boolean NOT NULL DEFAULT false;
ALTER TABLE personalisation.journey_steps ADD COLUMN shipped boolean NOT NULL DEFAULT false;
UPDATE personalisation.journeys j SET shipped = true
  FROM (VALUES
    ('abandoned_cart'::text, 'cart_abandoned'::text, true, true, true, true, true, NULL::interval,
     'Push at once, then emails at 60 minutes, 24 hours (social proof) and 72 hours (incentive).'::text),
    ('post_purchase', 'purchase', true, false, false, true, false, '30 days',
     'Cross-sell emails 3 and 14 days after an order, with complements of what was bought.'),
    ('subscription_offer', 'subscribable_purchase', true, false, false, true, true, '30 days',
     'One subscription offer per subscribable product bought, before it runs out.'))
    AS v (journey, trigger, enabled, exit_on_purchase, exit_on_cart_emptied, exit_on_refund,
          exit_on_subscribed, send_within, description)
 WHERE (j.journey, j.trigger, j.enabled, j.exit_on_purchase, j.exit_on_cart_emptied, j.exit_on_refund,
        j.exit_on_subscribed, j.send_within, j.description)
       IS NOT DISTINCT FROM
       (v.journey, v.trigger, v.enabled, v.exit_on_purchase, v.exit_on_cart_emptied, v.exit_on_refund,
        v.exit_on_subscribed, v.send_within, v.description);
UPDATE personalisation.journey_steps s SET shipped = true
  FROM (VALUES
    ('abandoned_cart'::text, 1, 'push'::text, '0'::interval, 'push'::text, 'cart_push'::text, '{items}'::text[],
     '1 hour'::interval, NULL::numeric, NULL::text, NULL::numeric, true, NULL::interval, 4, NULL::int),
    ('abandoned_cart', 2, 'items_email', '60 minutes', 'email', 'cart_items', '{items,recommendations}',
     '6 hours', NULL, NULL, NULL, true, NULL, 4, NULL),
    ('abandoned_cart', 3, 'social_proof_email', '24 hours', 'email', 'cart_social_proof',
     '{items,social_proof,recommendations}', '12 hours', NULL, NULL, NULL, true, NULL, 4, NULL),
    ('abandoned_cart', 4, 'incentive_email', '72 hours', 'email', 'cart_incentive',
     '{items,incentive,recommendations}', '24 hours', NULL, 'percent', 10, true, NULL, 4, NULL),
    ('post_purchase', 1, 'cross_sell_email', '3 days', 'email', 'post_purchase_cross_sell',
     '{items,recommendations}', '1 day', NULL, NULL, NULL, true, NULL, 4, 1),
    ('post_purchase', 2, 'cross_sell_reminder', '14 days', 'email', 'post_purchase_cross_sell',
     '{items,recommendations}', '1 day', NULL, NULL, NULL, true, NULL, 4, 1),
    ('subscription_offer', 1, 'subscription_offer_email', '1 day', 'email', 'subscription_offer',
     '{items,subscription_offer}', '1 day', NULL, NULL, NULL, true, '5 days', 4, NULL))
    AS v (journey, step, name, delay, channel, template, blocks, max_lateness, min_cart_value,
          incentive_kind, incentive_value, enabled, before_runout, max_recommendations, min_recommendations)
 WHERE (s.journey, s.step, s.name, s.delay, s.channel, s.template, s.blocks, s.max_lateness, s.min_cart_value,
        s.incentive_kind, s.incentive_value, s.enabled, s.before_runout, s.max_recommendations,
        s.min_recommendations)
       IS NOT DISTINCT FROM
       (v.journey, v.step, v.name, v.delay, v.channel, v.template, v.blocks, v.max_lateness, v.min_cart_value,
        v.incentive_kind, v.incentive_value, v.enabled, v.before_runout, v.max_recommendations,
        v.min_recommendations);

-- The keys of the journeys and steps the shop deleted (key: the primary key
-- columns' text, in column order).  Inserting the row again forgets its key.
CREATE TABLE personalisation.removed_shipped_rows (
    relation   text NOT NULL,
    key        text[] NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (relation, key)
);

CREATE FUNCTION personalisation.replace_installed_row()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'replace_installed_row';

CREATE FUNCTION personalisation.shipped_row_edited()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'shipped_row_edited';

CREATE FUNCTION personalisation.remember_removed_row()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'remember_removed_row';

CREATE FUNCTION personalisation.apply_removed_row()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'apply_removed_row';

CREATE TRIGGER journeys_replace_installed
    BEFORE INSERT ON personalisation.journeys
    FOR EACH ROW EXECUTE FUNCTION personalisation.replace_installed_row();
CREATE TRIGGER journey_steps_replace_installed
    BEFORE INSERT ON personalisation.journey_steps
    FOR EACH ROW EXECUTE FUNCTION personalisation.replace_installed_row();
CREATE TRIGGER pseudonym_key_replace_installed
    BEFORE INSERT ON personalisation.pseudonym_key
    FOR EACH ROW EXECUTE FUNCTION personalisation.replace_installed_row();
CREATE TRIGGER complement_state_replace_installed
    BEFORE INSERT ON personalisation.complement_state
    FOR EACH ROW EXECUTE FUNCTION personalisation.replace_installed_row();
CREATE TRIGGER journeys_edited
    BEFORE UPDATE ON personalisation.journeys
    FOR EACH ROW WHEN (OLD.shipped AND NEW.shipped) EXECUTE FUNCTION personalisation.shipped_row_edited();
CREATE TRIGGER journey_steps_edited
    BEFORE UPDATE ON personalisation.journey_steps
    FOR EACH ROW WHEN (OLD.shipped AND NEW.shipped) EXECUTE FUNCTION personalisation.shipped_row_edited();
CREATE TRIGGER journeys_removed
    AFTER DELETE ON personalisation.journeys
    FOR EACH ROW EXECUTE FUNCTION personalisation.remember_removed_row();
CREATE TRIGGER journey_steps_removed
    AFTER DELETE ON personalisation.journey_steps
    FOR EACH ROW EXECUTE FUNCTION personalisation.remember_removed_row();
CREATE TRIGGER removed_shipped_rows_apply
    BEFORE INSERT ON personalisation.removed_shipped_rows
    FOR EACH ROW EXECUTE FUNCTION personalisation.apply_removed_row();

-- What pg_dump carries: every row of these tables (the journeys and steps
-- the shop changed or added), and the position of every sequence.  Derived
-- state (affinity, popularity, complementarity counts) is dumped too, so
-- that the restored database answers at once as the original did.
-- (One call per statement: each call rewrites the extension's catalogue row.)
DO $$
DECLARE
    dumped text;
BEGIN
    FOREACH dumped IN ARRAY ARRAY[
    'personalisation.categories', 'personalisation.products', 'personalisation.profiles',
    'personalisation.sessions', 'personalisation.event_keys', 'personalisation.cart_lines',
    'personalisation.carts', 'personalisation.orders', 'personalisation.order_lines',
    'personalisation.consent_history', 'personalisation.merges', 'personalisation.merge_items',
    'personalisation.affinity', 'personalisation.product_popularity',
    'personalisation.category_popularity', 'personalisation.complement_state',
    'personalisation.complement_totals', 'personalisation.complement_products',
    'personalisation.complement_pairs', 'personalisation.subscriptions',
    'personalisation.outbox', 'personalisation.journey_runs', 'personalisation.journey_run_steps',
    'personalisation.coupons', 'personalisation.pseudonym_key',
    'personalisation.removed_shipped_rows',
    'personalisation.profile_id_seq', 'personalisation.consent_history_change_id_seq',
    'personalisation.merge_id_seq', 'personalisation.outbox_message_id_seq',
    'personalisation.journey_run_id_seq', 'personalisation.coupon_seq'] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(dumped::pg_catalog.regclass, '');
    END LOOP;
END
$$;
SELECT pg_catalog.pg_extension_config_dump('personalisation.journeys', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('personalisation.journey_steps', 'WHERE NOT shipped');

INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
    ('replace_installed_row', 'owner_only', 'owner'),
    ('shipped_row_edited',    'owner_only', 'owner'),
    ('remember_removed_row',  'owner_only', 'owner'),
    ('apply_removed_row',     'owner_only', 'owner');
REVOKE ALL ON FUNCTION personalisation.replace_installed_row(), personalisation.shipped_row_edited(),
                        personalisation.remember_removed_row(), personalisation.apply_removed_row() FROM PUBLIC;
ALTER FUNCTION personalisation.replace_installed_row() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION personalisation.shipped_row_edited() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION personalisation.remember_removed_row() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION personalisation.apply_removed_row() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
-- worker lifecycle: jobs() shows which periodic jobs run where (pg_cron, the
-- background worker, or nobody) and when they fall due.
CREATE FUNCTION personalisation.jobs(
    since timestamptz DEFAULT pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval,
    until timestamptz DEFAULT pg_catalog.now(),
    OUT job_name text, OUT schedule text, OUT command text, OUT runner text, OUT due boolean)
RETURNS SETOF record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'jobs';
ALTER FUNCTION personalisation.jobs(timestamptz, timestamptz)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION personalisation.jobs(timestamptz, timestamptz) FROM PUBLIC;
INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
    ('jobs', 'owner_only', 'owner');
-- locking: track_events(events jsonb), bulk ingestion through the typed tracking functions.
CREATE FUNCTION personalisation.track_events(events jsonb)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_events';
ALTER FUNCTION personalisation.track_events(jsonb) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION personalisation.track_events(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION personalisation.track_events(jsonb) TO personalisation_shop;
INSERT INTO personalisation.access_map (object_name, role_name, runs_as)
VALUES ('track_events', 'personalisation_shop', 'owner');
