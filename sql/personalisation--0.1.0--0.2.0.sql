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
-- apply_access_map() (sql/install/security.sql) as the script's last statement; 0.1.0's
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
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
               AND p.proname OPERATOR(pg_catalog.=) entry.object_name
        LOOP
            matched := true;
            IF entry.runs_as OPERATOR(pg_catalog.=) 'owner' THEN
                EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp',
                                          target.signature);
            END IF;
            IF entry.role_name OPERATOR(pg_catalog.<>) 'owner_only' THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I', target.signature, entry.role_name);
            END IF;
        END LOOP;
        FOR target IN
            SELECT pg_catalog.format('personalisation.%I', c.relname) AS relation, c.relkind
              FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
               AND c.relname OPERATOR(pg_catalog.=) entry.object_name
               AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m}'::pg_catalog."char"[])
        LOOP
            matched := true;
            IF entry.role_name OPERATOR(pg_catalog.<>) 'owner_only' THEN
                EXECUTE pg_catalog.format('GRANT %s ON TABLE %s TO %I',
                                          CASE WHEN target.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog."char"[]) THEN 'SELECT'
                                               ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
                                          target.relation, entry.role_name);
            END IF;
        END LOOP;
        IF NOT matched THEN
            RAISE EXCEPTION 'personalisation.access_map names "%", which is no function, table or view of schema personalisation',
                            entry.object_name
                  USING HINT = 'Correct or remove its line in the access map (sql/install/security.sql).';
        END IF;
    END LOOP;

    SELECT pg_catalog.string_agg(DISTINCT o.name, ', ') INTO missing
      FROM (SELECT p.proname::text AS name FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
            UNION ALL
            SELECT c.relname::text FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) 'personalisation'::pg_catalog.regnamespace
               AND c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog."char"[])) o
     WHERE NOT EXISTS (SELECT FROM personalisation.access_map m WHERE m.object_name OPERATOR(pg_catalog.=) o.name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'the access map does not say who may use: %', missing
              USING HINT = 'Add one line per name to the access map in sql/install/security.sql: the role that may use it, or owner_only.';
    END IF;
END
$$;

-- Backup and restore (issue 15, point 1; README, "Backup and restore";
-- sql/install/backup.sql): pg_dump carries every row the extension holds, and
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
-- Measurement (issue 18): exposure recorded at the first ranking, the
-- attribution windows as settings, every report with the uplift, its 95%
-- interval, a p-value and the detectable uplift per arm, uplift_arms,
-- uplift_summary() and uplift_report_html().  docs/measurement.md.
-- An arm against its control: the uplift (ratio of conversion rates), its
-- 95% Katz log interval, the two-proportion z-test's p-value, the smallest
-- uplift the sample detects with 80% power, and a hint while the result is
-- not significant.
CREATE FUNCTION personalisation.uplift_test(
    exposed bigint, converted bigint, control_exposed bigint, control_converted bigint,
    OUT uplift float8, OUT uplift_low float8, OUT uplift_high float8, OUT p_value float8,
    OUT min_detectable_uplift float8, OUT sample_hint text)
RETURNS record LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'uplift_test';

-- One line saying what an experiment's result lets the shop claim.
CREATE FUNCTION personalisation.uplift_claim(
    experiment text, metric text, units bigint, unit_name text,
    uplift float8, uplift_low float8, uplift_high float8, p_value float8)
RETURNS text LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'uplift_claim';

-- personalisation.ranking_attribution_window and
-- personalisation.repeat_order_window as intervals.
CREATE FUNCTION personalisation.ranking_attribution_window()
RETURNS interval LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ranking_attribution_window';

CREATE FUNCTION personalisation.repeat_order_window()
RETURNS interval LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'repeat_order_window';

-- Ranking exposures: one row per session, written by its first rank_* call
-- (at its `at`), with the arm it was ranked in.  rank_* keeps the session in
-- that arm and the ranking_holdout report counts it there, whatever
-- personalisation.ranking_holdout_percent becomes later.
CREATE TABLE personalisation.ranking_exposures (
    session_id text PRIMARY KEY,
    arm        text NOT NULL CHECK (arm IN ('personalised', 'control')),
    exposed_at timestamptz NOT NULL
);
-- dumped by pg_dump, as every table listed in sql/install/backup.sql
SELECT pg_catalog.pg_extension_config_dump('personalisation.ranking_exposures', '');

-- A first ranking writes the session's exposure.
ALTER FUNCTION personalisation.rank_products(text, text[], boolean, timestamptz) VOLATILE;
ALTER FUNCTION personalisation.rank_categories(text, text[], boolean, timestamptz) VOLATILE;
ALTER FUNCTION personalisation.rank_modules(text, jsonb, boolean, timestamptz) VOLATILE;

-- Analysts: the ranking holdout's outcome.  Each session counts in the arm
-- recorded at its first ranking (ranking_exposures), sessions never ranked
-- not at all; it converted if it placed an order within
-- personalisation.ranking_attribution_window of that ranking.  uplift is
-- the arm's conversion rate over the control arm's, with its 95% interval
-- and p-value (uplift_test, docs/measurement.md).
CREATE OR REPLACE VIEW personalisation.ranking_holdout AS
WITH session_outcomes AS (
    SELECT e.arm, count(o.order_id) AS orders, sum(o.total) AS revenue
      FROM personalisation.ranking_exposures e
      LEFT JOIN personalisation.orders o
             ON o.session_id = e.session_id AND o.occurred_at >= e.exposed_at
            AND o.occurred_at < e.exposed_at + personalisation.ranking_attribution_window()
     GROUP BY e.session_id, e.arm
), arms AS (
    SELECT a.arm,
           count(so.arm) AS sessions,
           count(so.arm) FILTER (WHERE so.orders > 0) AS converted_sessions,
           coalesce(sum(so.orders), 0) AS orders,
           coalesce(sum(so.revenue), 0) AS revenue
      FROM (VALUES ('personalised'), ('control')) a (arm)
      LEFT JOIN session_outcomes so USING (arm)
     GROUP BY a.arm
)
SELECT a.arm, a.sessions, a.converted_sessions,
       a.converted_sessions::float8 / NULLIF(a.sessions, 0) AS conversion_rate,
       a.orders, a.revenue,
       (a.converted_sessions::float8 / NULLIF(a.sessions, 0)) /
       NULLIF(c.converted_sessions::float8 / NULLIF(c.sessions, 0), 0) AS uplift,
       round(a.revenue / NULLIF(a.sessions, 0), 2) AS revenue_per_session,
       u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM arms a
  JOIN arms c ON c.arm = 'control'
  LEFT JOIN LATERAL personalisation.uplift_test(a.sessions, a.converted_sessions,
                                                c.sessions, c.converted_sessions) u ON a.arm <> 'control'
 ORDER BY a.arm DESC;

-- Per abandoned-cart journey, arm and step (step NULL: the arm as a whole):
-- carts abandoned, messages sent, held (holdout) and delivered, carts
-- recovered and their revenue, and the recovery rate.  A cart is recovered
-- when its profile orders within personalisation.attribution_window after
-- abandonment; the first such order is the recovered revenue, credited to
-- the last step sent (or held) before it.  Each cart counts in the arm its
-- run recorded when the cart was declared abandoned.  Against the holdout
-- arm's row of the same step: the uplift of the recovery rate with its 95%
-- interval and p-value (uplift_test, docs/measurement.md).  Ordered by
-- journey, arm (treatment first) and step (the whole arm, then 1, 2, ...).
-- No personal data.  The post-purchase journeys have their own views
-- (post_purchase.sql).
CREATE OR REPLACE VIEW personalisation.journey_report AS
WITH runs AS (
    SELECT r.journey, r.arm, r.profile_id, r.run_id,
           rec.order_id IS NOT NULL AS recovered, rec.total AS revenue,
           (SELECT s.step FROM personalisation.journey_run_steps s
             WHERE s.profile_id = r.profile_id AND s.run_id = r.run_id
               AND s.outcome IN ('sent', 'held') AND s.done_at <= rec.occurred_at
             ORDER BY s.done_at DESC, s.step DESC LIMIT 1) AS credited_step
      FROM personalisation.journey_runs r
      JOIN personalisation.journeys j ON j.journey = r.journey AND j.trigger = 'cart_abandoned'
      LEFT JOIN LATERAL (
           SELECT o.order_id, o.total, o.occurred_at FROM personalisation.orders o
            WHERE o.profile_id = r.profile_id
              AND o.occurred_at >= r.abandoned_at
              AND o.occurred_at < r.abandoned_at + personalisation.attribution_window()
            ORDER BY o.occurred_at LIMIT 1) rec ON true
), arms AS (
    SELECT journey, arm, count(*) AS carts_abandoned,
           count(*) FILTER (WHERE recovered) AS carts_recovered,
           coalesce(sum(revenue), 0) AS recovered_revenue
      FROM runs GROUP BY journey, arm
), step_outcomes AS (
    SELECT s.journey, s.arm, s.step,
           count(*) FILTER (WHERE s.outcome = 'sent') AS messages_sent,
           count(*) FILTER (WHERE s.outcome = 'held') AS messages_held,
           count(*) FILTER (WHERE o.status = 'delivered') AS messages_delivered,
           count(*) FILTER (WHERE s.outcome = 'skipped') AS steps_skipped
      FROM personalisation.journey_run_steps s
      LEFT JOIN personalisation.outbox o
             ON o.message_id = s.message_id AND o.profile_id = s.profile_id
     GROUP BY s.journey, s.arm, s.step
), credited AS (
    SELECT journey, arm, credited_step AS step, count(*) AS carts_recovered,
           sum(revenue) AS recovered_revenue
      FROM runs WHERE recovered AND credited_step IS NOT NULL
     GROUP BY journey, arm, credited_step
), rows AS (
    SELECT a.journey, a.arm, NULL::int AS step, NULL::text AS template, a.carts_abandoned,
           coalesce(sum(so.messages_sent), 0)::bigint AS messages_sent,
           coalesce(sum(so.messages_held), 0)::bigint AS messages_held,
           coalesce(sum(so.messages_delivered), 0)::bigint AS messages_delivered,
           coalesce(sum(so.steps_skipped), 0)::bigint AS steps_skipped,
           a.carts_recovered, a.recovered_revenue
      FROM arms a
      LEFT JOIN step_outcomes so ON so.journey = a.journey AND so.arm = a.arm
     GROUP BY a.journey, a.arm, a.carts_abandoned, a.carts_recovered, a.recovered_revenue
    UNION ALL
    SELECT a.journey, a.arm, js.step, js.template, a.carts_abandoned,
           coalesce(so.messages_sent, 0), coalesce(so.messages_held, 0),
           coalesce(so.messages_delivered, 0), coalesce(so.steps_skipped, 0),
           coalesce(c.carts_recovered, 0), coalesce(c.recovered_revenue, 0)
      FROM arms a
      JOIN personalisation.journey_steps js ON js.journey = a.journey
      LEFT JOIN step_outcomes so ON so.journey = a.journey AND so.arm = a.arm AND so.step = js.step
      LEFT JOIN credited c ON c.journey = a.journey AND c.arm = a.arm AND c.step = js.step
)
SELECT r.journey, r.arm, r.step, r.template, r.carts_abandoned, r.messages_sent, r.messages_held,
       r.messages_delivered, r.steps_skipped, r.carts_recovered, r.recovered_revenue,
       round(r.carts_recovered::numeric / r.carts_abandoned, 4) AS recovery_rate,
       round(r.recovered_revenue / r.carts_abandoned, 2) AS revenue_per_cart,
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM rows r
  LEFT JOIN rows h ON h.journey = r.journey AND h.arm = 'holdout' AND h.step IS NOT DISTINCT FROM r.step
  LEFT JOIN LATERAL personalisation.uplift_test(r.carts_abandoned, r.carts_recovered,
                                                h.carts_abandoned, h.carts_recovered) u ON r.arm <> 'holdout'
 ORDER BY r.journey, r.arm DESC, r.step NULLS FIRST;

-- Order value after cross-sell messages: per post-purchase journey, the
-- standing orders (not refunded) its profiles placed within
-- personalisation.attribution_window after a cross-sell message (a step with
-- recommendations) was sent (treatment) or held (holdout), each order
-- counted once, against every profile's first standing order
-- (first_orders).  Then, per arm, the repeat orders: of the customers the
-- journey enrolled (each in the arm of its first run, recorded when that
-- order enrolled it), how many placed a further standing order within
-- personalisation.repeat_order_window of that order, the repeat-order rate,
-- the revenue of those orders per customer, and against the holdout the
-- uplift of the repeat-order rate with its 95% interval and p-value
-- (uplift_test, docs/measurement.md).  No personal data.
CREATE OR REPLACE VIEW personalisation.post_purchase_order_value AS
WITH standing AS (
    SELECT o.order_id, o.profile_id, o.occurred_at, o.total
      FROM personalisation.orders o WHERE o.refunded_at IS NULL
), first_orders AS (
    SELECT DISTINCT ON (profile_id) order_id, total
      FROM standing ORDER BY profile_id, occurred_at, order_id
), cross_sell AS (
    SELECT s.journey, s.arm, s.profile_id, s.done_at
      FROM personalisation.journey_run_steps s
      JOIN personalisation.journeys j ON j.journey = s.journey AND j.trigger = 'purchase'
      JOIN personalisation.journey_steps js
        ON js.journey = s.journey AND js.step = s.step AND 'recommendations' = ANY (js.blocks)
     WHERE s.outcome IN ('sent', 'held')
), followed AS (
    SELECT DISTINCT c.journey, c.arm, o.order_id, o.total
      FROM cross_sell c
      JOIN standing o ON o.profile_id = c.profile_id AND o.occurred_at > c.done_at
                     AND o.occurred_at < c.done_at + personalisation.attribution_window()
), messages AS (
    SELECT journey, arm, count(*) AS messages FROM cross_sell GROUP BY journey, arm
), enrolled AS (
    SELECT DISTINCT ON (r.journey, r.profile_id) r.journey, r.arm, r.profile_id, r.order_id, r.anchor_at
      FROM personalisation.journey_runs r
      JOIN personalisation.journeys j ON j.journey = r.journey AND j.trigger = 'purchase'
     ORDER BY r.journey, r.profile_id, r.anchor_at, r.run_id
), repeats AS (
    SELECT e.journey, e.arm, e.profile_id, count(o.order_id) AS orders, sum(o.total) AS revenue
      FROM enrolled e
      LEFT JOIN standing o ON o.profile_id = e.profile_id AND o.order_id <> e.order_id
                          AND o.occurred_at >= e.anchor_at
                          AND o.occurred_at < e.anchor_at + personalisation.repeat_order_window()
     GROUP BY e.journey, e.arm, e.profile_id
), customers AS (
    SELECT journey, arm, count(*) AS customers,
           count(*) FILTER (WHERE orders > 0) AS repeat_customers,
           coalesce(sum(revenue), 0) AS repeat_revenue
      FROM repeats GROUP BY journey, arm
)
SELECT NULL::text AS journey, 'first_orders'::text AS cohort, NULL::bigint AS messages,
       count(*) AS orders, coalesce(sum(total), 0) AS order_value,
       round(avg(total), 2) AS average_order_value,
       NULL::bigint AS customers, NULL::bigint AS repeat_customers, NULL::numeric AS repeat_order_rate,
       NULL::numeric AS revenue_per_customer, NULL::float8 AS uplift, NULL::float8 AS uplift_low,
       NULL::float8 AS uplift_high, NULL::float8 AS p_value, NULL::float8 AS min_detectable_uplift,
       NULL::text AS sample_hint
  FROM first_orders
UNION ALL
SELECT m.journey, m.arm, m.messages, count(f.order_id), coalesce(sum(f.total), 0), round(avg(f.total), 2),
       c.customers, c.repeat_customers, round(c.repeat_customers::numeric / c.customers, 4),
       round(c.repeat_revenue / c.customers, 2),
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
  FROM messages m
  LEFT JOIN followed f ON f.journey = m.journey AND f.arm = m.arm
  LEFT JOIN customers c ON c.journey = m.journey AND c.arm = m.arm
  LEFT JOIN customers h ON h.journey = m.journey AND h.arm = 'holdout'
  LEFT JOIN LATERAL personalisation.uplift_test(c.customers, c.repeat_customers,
                                                h.customers, h.repeat_customers) u ON m.arm <> 'holdout'
 GROUP BY m.journey, m.arm, m.messages, c.customers, c.repeat_customers, c.repeat_revenue,
          u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint
 ORDER BY journey NULLS FIRST, cohort DESC;

-- Every profile with a standing order: its first one, its first subscription
-- start, its arm in the subscription-offer journeys (that of its first
-- offer run; not_offered without one), the revenue of its standing orders
-- in the 30 days from the first, and whether it was still a customer in the
-- retention window, the 30 days up to the first order's 365th day: a
-- standing order placed in (first + 335 days, first + 365 days], or a
-- subscription active at some point of it.  The base of the two views below.
CREATE OR REPLACE VIEW personalisation.subscription_customers AS
SELECT c.profile_id, c.first_order_at,
       (SELECT min(s.started_at) FROM personalisation.subscriptions s
         WHERE s.profile_id = c.profile_id) AS first_subscribed_at,
       coalesce((SELECT r.arm FROM personalisation.journey_runs r
                   JOIN personalisation.journeys j ON j.journey = r.journey
                  WHERE r.profile_id = c.profile_id AND j.trigger = 'subscribable_purchase'
                  ORDER BY r.run_id LIMIT 1), 'not_offered') AS offer_arm,
       (SELECT coalesce(sum(o.total), 0) FROM personalisation.orders o
         WHERE o.profile_id = c.profile_id AND o.refunded_at IS NULL
           AND o.occurred_at >= c.first_order_at
           AND o.occurred_at < c.first_order_at + interval '30 days') AS revenue_30_days,
       EXISTS (SELECT FROM personalisation.orders o
                WHERE o.profile_id = c.profile_id AND o.refunded_at IS NULL
                  AND o.occurred_at > c.first_order_at + interval '335 days'
                  AND o.occurred_at <= c.first_order_at + interval '365 days')
       OR EXISTS (SELECT FROM personalisation.subscriptions s
                   WHERE s.profile_id = c.profile_id
                     AND s.started_at <= c.first_order_at + interval '365 days'
                     AND (s.stopped_at IS NULL
                          OR s.stopped_at > c.first_order_at + interval '335 days')) AS retained_12_months
  FROM (SELECT o.profile_id, min(o.occurred_at) AS first_order_at
          FROM personalisation.orders o WHERE o.refunded_at IS NULL
         GROUP BY o.profile_id) c;

-- Subscription uptake per offer arm (arm NULL: everyone): of the customers
-- whose first standing order is at least 30 days old, how many first
-- subscribed within 30 days of it (or before it), how many later, how many
-- never, and the two uptake rates; the revenue of their standing orders in
-- those 30 days per customer; and the 12-month retention of the arm's
-- customers whose first standing order is at least 365 days old (retained
-- as in subscription_retention below).  Against the holdout arm: the uplift
-- of the uptake within 30 days and of the retention, each with its 95%
-- interval and p-value (uplift_test, docs/measurement.md).  Each customer
-- counts in the arm its first offer run recorded.  No personal data.
CREATE OR REPLACE VIEW personalisation.subscription_uptake AS
WITH arms AS (
    SELECT offer_arm AS arm, count(*) AS customers,
           count(*) FILTER (WHERE first_subscribed_at <= first_order_at + interval '30 days')
               AS subscribed_within_30_days,
           count(*) FILTER (WHERE first_subscribed_at > first_order_at + interval '30 days')
               AS subscribed_later,
           count(*) FILTER (WHERE first_subscribed_at IS NULL) AS never_subscribed,
           sum(revenue_30_days) AS revenue_30_days,
           count(*) FILTER (WHERE first_order_at + interval '365 days' <= pg_catalog.now())
               AS retention_customers,
           count(*) FILTER (WHERE first_order_at + interval '365 days' <= pg_catalog.now()
                              AND retained_12_months) AS retained
      FROM personalisation.subscription_customers
     WHERE first_order_at + interval '30 days' <= pg_catalog.now()
     GROUP BY ROLLUP (offer_arm)
)
SELECT a.arm, a.customers, a.subscribed_within_30_days, a.subscribed_later, a.never_subscribed,
       round(a.subscribed_within_30_days::numeric / a.customers, 4) AS uptake_within_30_days,
       round(a.subscribed_later::numeric / a.customers, 4) AS uptake_later,
       round(a.revenue_30_days / a.customers, 2) AS revenue_per_customer,
       u.uplift, u.uplift_low, u.uplift_high, u.p_value, u.min_detectable_uplift, u.sample_hint,
       a.retention_customers, a.retained,
       round(a.retained::numeric / NULLIF(a.retention_customers, 0), 4) AS retention_rate,
       t.uplift AS retention_uplift, t.uplift_low AS retention_uplift_low,
       t.uplift_high AS retention_uplift_high, t.p_value AS retention_p_value
  FROM arms a
  LEFT JOIN arms h ON h.arm = 'holdout'
  LEFT JOIN LATERAL personalisation.uplift_test(a.customers, a.subscribed_within_30_days,
                                                h.customers, h.subscribed_within_30_days) u
         ON a.arm = 'treatment'
  LEFT JOIN LATERAL personalisation.uplift_test(a.retention_customers, a.retained,
                                                h.retention_customers, h.retained) t
         ON a.arm = 'treatment'
 ORDER BY a.arm DESC NULLS LAST;

-- 12-month retention by subscription timing: of the customers whose first
-- standing order is at least 365 days old, grouped by when they first
-- subscribed (within_30_days of the first order or before it,
-- after_30_days but within the 365, or never within the 365), how many were
-- still customers in the retention window (subscription_customers).
-- No personal data.
CREATE OR REPLACE VIEW personalisation.subscription_retention AS
SELECT timing AS subscription_timing, count(*) AS customers,
       count(*) FILTER (WHERE retained) AS retained,
       round(count(*) FILTER (WHERE retained)::numeric / count(*), 4) AS retention_rate
  FROM (SELECT CASE WHEN c.first_subscribed_at <= c.first_order_at + interval '30 days' THEN 'within_30_days'
                    WHEN c.first_subscribed_at <= c.first_order_at + interval '365 days' THEN 'after_30_days'
                    ELSE 'never' END AS timing,
               c.retained_12_months AS retained
          FROM personalisation.subscription_customers c
         WHERE c.first_order_at + interval '365 days' <= pg_catalog.now()) t
 GROUP BY timing;

-- What the shop can claim today (docs/measurement.md), read from the
-- analyst reports.  uplift_arms has one row per experiment, arm and step
-- (step NULL: the arm as a whole; steps for the abandoned-cart journeys):
--   ranking                conversion of ranked sessions (ranking_holdout)
--   each cart journey      recovery of abandoned carts (journey_report)
--   each purchase journey  repeat orders of enrolled customers (post_purchase_order_value)
--   subscription_offer     uptake within 30 days, and 12-month retention (subscription_uptake)
-- with the units exposed and converted, and on the treated arm's rows the
-- uplift against control.  No personal data.
CREATE VIEW personalisation.uplift_arms AS
SELECT 1 AS sort, 'ranking'::text AS experiment, 'conversion'::text AS metric, 'sessions'::text AS unit,
       r.arm, r.arm <> 'control' AS treated, NULL::int AS step,
       r.sessions AS exposed, r.converted_sessions AS converted,
       CASE WHEN r.arm <> 'control' THEN r.uplift END AS uplift, r.uplift_low, r.uplift_high, r.p_value
  FROM personalisation.ranking_holdout r
UNION ALL
SELECT 2, j.journey, 'recovery', 'carts', j.arm, j.arm = 'treatment', j.step,
       j.carts_abandoned, j.carts_recovered, j.uplift, j.uplift_low, j.uplift_high, j.p_value
  FROM personalisation.journey_report j
UNION ALL
SELECT 3, v.journey, 'repeat orders', 'customers', v.cohort, v.cohort = 'treatment', NULL,
       coalesce(v.customers, 0), coalesce(v.repeat_customers, 0), v.uplift, v.uplift_low, v.uplift_high, v.p_value
  FROM personalisation.post_purchase_order_value v
 WHERE v.cohort IN ('treatment', 'holdout')
UNION ALL
SELECT 4, 'subscription_offer', 'uptake', 'customers', s.arm, s.arm = 'treatment', NULL,
       s.customers, s.subscribed_within_30_days, s.uplift, s.uplift_low, s.uplift_high, s.p_value
  FROM personalisation.subscription_uptake s
 WHERE s.arm IN ('treatment', 'holdout')
UNION ALL
SELECT 5, 'subscription_offer', '12-month retention', 'customers', s.arm, s.arm = 'treatment', NULL,
       s.retention_customers, s.retained, s.retention_uplift, s.retention_uplift_low,
       s.retention_uplift_high, s.retention_p_value
  FROM personalisation.subscription_uptake s
 WHERE s.arm IN ('treatment', 'holdout');

-- One row per experiment: the treated arm's uplift with its interval, the
-- units exposed in both arms, whether the interval excludes 1, and the
-- claim in words (uplift_claim).
CREATE FUNCTION personalisation.uplift_summary()
RETURNS TABLE (experiment text, metric text, unit text, units bigint, uplift float8,
               uplift_low float8, uplift_high float8, p_value float8, significant boolean, claim text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT t.experiment, t.metric, t.unit, pg_catalog.sum(a.exposed)::bigint, t.uplift, t.uplift_low,
           t.uplift_high, t.p_value,
           t.uplift_low OPERATOR(pg_catalog.>) 1::float8 OR t.uplift_high OPERATOR(pg_catalog.<) 1::float8,
           personalisation.uplift_claim(t.experiment, t.metric, pg_catalog.sum(a.exposed)::bigint, t.unit,
                                        t.uplift, t.uplift_low, t.uplift_high, t.p_value)
      FROM personalisation.uplift_arms t
      JOIN personalisation.uplift_arms a
        ON a.sort OPERATOR(pg_catalog.=) t.sort AND a.experiment OPERATOR(pg_catalog.=) t.experiment
       AND a.metric OPERATOR(pg_catalog.=) t.metric AND a.step IS NULL
     WHERE t.treated AND t.step IS NULL
     GROUP BY t.sort, t.experiment, t.metric, t.unit, t.uplift, t.uplift_low, t.uplift_high, t.p_value
     ORDER BY t.sort, t.experiment, t.metric
$$;

-- The same as a self-contained HTML page (inline SVG, no external assets):
-- the claims, each experiment's uplift with its interval, the funnel per
-- arm and the recovery per step.
CREATE FUNCTION personalisation.uplift_report_html()
RETURNS text LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'uplift_report_html';

REVOKE ALL ON TABLE personalisation.ranking_exposures FROM PUBLIC;
REVOKE ALL ON TABLE personalisation.uplift_arms FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.uplift_test(bigint, bigint, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.uplift_claim(text, text, bigint, text, float8, float8, float8, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.ranking_attribution_window() FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.repeat_order_window() FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.uplift_summary() FROM PUBLIC;
REVOKE ALL ON FUNCTION personalisation.uplift_report_html() FROM PUBLIC;
ALTER FUNCTION personalisation.uplift_summary() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION personalisation.uplift_report_html() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
GRANT EXECUTE ON FUNCTION personalisation.uplift_test(bigint, bigint, bigint, bigint) TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.uplift_claim(text, text, bigint, text, float8, float8, float8, float8)
    TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.ranking_attribution_window() TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.repeat_order_window() TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.uplift_summary() TO personalisation_analyst;
GRANT EXECUTE ON FUNCTION personalisation.uplift_report_html() TO personalisation_analyst;
GRANT SELECT ON TABLE personalisation.uplift_arms TO personalisation_analyst;
INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
    ('ranking_attribution_window', 'personalisation_analyst', 'caller'),
    ('repeat_order_window',  'personalisation_analyst', 'caller'),
    ('uplift_test',          'personalisation_analyst', 'caller'),
    ('uplift_claim',         'personalisation_analyst', 'caller'),
    ('uplift_summary',       'personalisation_analyst', 'owner'),
    ('uplift_report_html',   'personalisation_analyst', 'owner'),
    ('uplift_arms',          'personalisation_analyst', 'owner');

-- Cart quantities are bigint, so that a driver binding int8 reaches the
-- functions and a quantity beyond int4 gets the extension's own 22003.
DROP FUNCTION personalisation.track_cart_add(text, text, int, timestamptz, text);
CREATE FUNCTION personalisation.track_cart_add(
    session_id text,
    product_id text,
    quantity bigint DEFAULT 1,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_cart_add';
DROP FUNCTION personalisation.track_cart_remove(text, text, int, timestamptz, text);
CREATE FUNCTION personalisation.track_cart_remove(
    session_id text,
    product_id text,
    quantity bigint DEFAULT NULL,
    occurred_at timestamptz DEFAULT pg_catalog.now(),
    event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_cart_remove';

-- The text overloads of the jsonb-taking functions call the same C function,
-- which parses the string itself: a literal or a driver's untyped parameter
-- with a JSON syntax error gets the extension's message and hint.
CREATE FUNCTION personalisation.track_purchase(
    session_id text,
    order_id text,
    items text,
    occurred_at timestamptz DEFAULT pg_catalog.now())
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_purchase';

CREATE FUNCTION personalisation.track_events(events text)
RETURNS void LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'track_events';

-- modules as a string: parsed by rank_modules itself, so that a JSON syntax
-- error gets the extension's message and hint.
CREATE FUNCTION personalisation.rank_modules(
    session_id text,
    modules text,
    explain boolean DEFAULT false,
    at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (module text, category_id text, score float8, "position" int, reason jsonb)
LANGUAGE c VOLATILE PARALLEL RESTRICTED ROWS 20
AS 'MODULE_PATHNAME', 'rank_modules';

-- Internal helpers take a leading underscore (analysts keep EXECUTE on the
-- caller-run ones their reporting views call): views and triggers follow the
-- renamed objects by oid, and the library's statements name the new ones.
ALTER FUNCTION personalisation.affinity_entries(bytea, timestamptz, boolean, timestamptz) RENAME TO _affinity_entries;
ALTER FUNCTION personalisation.affinity_key(text, text) RENAME TO _affinity_key;
ALTER FUNCTION personalisation.pseudonym(bytea, text) RENAME TO _pseudonym;
ALTER FUNCTION personalisation.attribution_window() RENAME TO _attribution_window;
ALTER FUNCTION personalisation.catalogue_changed() RENAME TO _catalogue_changed;
ALTER FUNCTION personalisation.holdout_arm(text, bigint) RENAME TO _holdout_arm;
ALTER FUNCTION personalisation.replace_installed_row() RENAME TO _replace_installed_row;
ALTER FUNCTION personalisation.shipped_row_edited() RENAME TO _shipped_row_edited;
ALTER FUNCTION personalisation.remember_removed_row() RENAME TO _remember_removed_row;
ALTER FUNCTION personalisation.apply_removed_row() RENAME TO _apply_removed_row;
ALTER VIEW personalisation.affinity_dimensions RENAME TO _affinity_dimensions;
ALTER VIEW personalisation.subscription_customers RENAME TO _subscription_customers;
ALTER VIEW personalisation.complement_product_orders RENAME TO _complement_product_orders;
UPDATE personalisation.access_map SET object_name = '_' || object_name
 WHERE object_name IN ('pseudonym', 'affinity_entries', 'affinity_key', 'attribution_window', 'catalogue_changed', 'replace_installed_row', 'shipped_row_edited', 'remember_removed_row',
                       'apply_removed_row', 'affinity_dimensions', 'subscription_customers', 'complement_product_orders');
INSERT INTO personalisation.access_map (object_name, role_name, runs_as) VALUES
    ('_holdout_arm',         'owner_only',              'owner');

-- maintain_partitions(now, since): a backfill creates every past day's
-- partition in one call.
DROP FUNCTION personalisation.maintain_partitions(timestamptz);
CREATE FUNCTION personalisation.maintain_partitions(
    now timestamptz DEFAULT pg_catalog.now(),
    since timestamptz DEFAULT NULL,
    OUT created int, OUT dropped int, OUT expired_keys bigint,
    OUT expired_sessions bigint, OUT forgotten_profiles bigint)
RETURNS record LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'maintain_partitions';

-- Counts and limits are bigint, so that a driver binding int8 reaches the
-- functions and a value beyond what they accept gets the extension's own
-- 22003; apply_access_map below grants them again.
DROP FUNCTION personalisation.also_bought(text, int);
CREATE FUNCTION personalisation.also_bought(
    product_id text,
    n bigint DEFAULT 10)
RETURNS TABLE (product_id text, co_orders bigint, confidence float8, lift float8, jaccard float8)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 10
AS 'MODULE_PATHNAME', 'also_bought';
DROP FUNCTION personalisation.recommend_for_cart(text, int);
CREATE FUNCTION personalisation.recommend_for_cart(
    session_id text,
    n bigint DEFAULT 10)
RETURNS TABLE (product_id text, score float8, because_of text, co_orders bigint, lift float8)
LANGUAGE c STABLE PARALLEL RESTRICTED ROWS 10
AS 'MODULE_PATHNAME', 'recommend_for_cart';
DROP FUNCTION personalisation.claim_messages(text, int, interval, timestamptz);
CREATE FUNCTION personalisation.claim_messages(
    consumer text,
    max_messages bigint DEFAULT 100,
    lease interval DEFAULT '5 minutes',
    now timestamptz DEFAULT pg_catalog.now())
RETURNS SETOF personalisation.outbox LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'claim_messages';

-- Claims are HOT updates only if the claimed versions fit on the rows' pages
-- (sql/install/outbox.sql): half of each page is left free.
ALTER TABLE personalisation.outbox SET (fillfactor = 50);

-- Keep this the last statement of the script: it covers every function the
-- blocks above added, and refuses one the access map does not name.
SELECT personalisation.apply_access_map();
