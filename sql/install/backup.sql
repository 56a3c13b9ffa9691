
-- Backup and restore (README, "Backup and restore"): what pg_dump carries of
-- the extension.  The tables and sequences of an extension are not dumped
-- unless marked with pg_extension_config_dump; this part marks every one
-- that holds rows, so that pg_dump, pg_dumpall and pg_restore carry them:
-- a restore runs CREATE EXTENSION, then loads these rows over it.  Not
-- dumped: access_map and event_partition_indexes, whose rows are the
-- installed version's own.  The event partitions are no members of the
-- extension (partitions.c) and are dumped with their rows like any table.

-- Shipped journeys and steps are dumped only when the shop changed them:
-- shipped marks a row as the install or an upgrade wrote it; an update by
-- the shop clears it (shipped_row_edited), a deletion is remembered in
-- removed_shipped_rows.  On restore, CREATE EXTENSION writes the rows of the
-- version restored into, a dumped row with the key of one of them takes its
-- place (replace_installed_row), and a remembered key deletes it.
ALTER TABLE personalisation.journeys ADD COLUMN shipped boolean NOT NULL DEFAULT false;
ALTER TABLE personalisation.journey_steps ADD COLUMN shipped boolean NOT NULL DEFAULT false;
UPDATE personalisation.journeys SET shipped = true;
UPDATE personalisation.journey_steps SET shipped = true;

-- The keys of the journeys and steps the shop deleted (key: the primary key
-- columns' text, in column order).  Inserting the row again forgets its key.
CREATE TABLE personalisation.removed_shipped_rows (
    relation   text NOT NULL,
    key        text[] NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (relation, key)
);

CREATE FUNCTION personalisation._replace_installed_row()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'replace_installed_row';

CREATE FUNCTION personalisation._shipped_row_edited()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'shipped_row_edited';

CREATE FUNCTION personalisation._remember_removed_row()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'remember_removed_row';

CREATE FUNCTION personalisation._apply_removed_row()
RETURNS trigger LANGUAGE c
AS 'MODULE_PATHNAME', 'apply_removed_row';

CREATE TRIGGER journeys_replace_installed
    BEFORE INSERT ON personalisation.journeys
    FOR EACH ROW EXECUTE FUNCTION personalisation._replace_installed_row();
CREATE TRIGGER journey_steps_replace_installed
    BEFORE INSERT ON personalisation.journey_steps
    FOR EACH ROW EXECUTE FUNCTION personalisation._replace_installed_row();
CREATE TRIGGER pseudonym_key_replace_installed
    BEFORE INSERT ON personalisation.pseudonym_key
    FOR EACH ROW EXECUTE FUNCTION personalisation._replace_installed_row();
CREATE TRIGGER complement_state_replace_installed
    BEFORE INSERT ON personalisation.complement_state
    FOR EACH ROW EXECUTE FUNCTION personalisation._replace_installed_row();
CREATE TRIGGER journeys_edited
    BEFORE UPDATE ON personalisation.journeys
    FOR EACH ROW WHEN (OLD.shipped AND NEW.shipped) EXECUTE FUNCTION personalisation._shipped_row_edited();
CREATE TRIGGER journey_steps_edited
    BEFORE UPDATE ON personalisation.journey_steps
    FOR EACH ROW WHEN (OLD.shipped AND NEW.shipped) EXECUTE FUNCTION personalisation._shipped_row_edited();
CREATE TRIGGER journeys_removed
    AFTER DELETE ON personalisation.journeys
    FOR EACH ROW EXECUTE FUNCTION personalisation._remember_removed_row();
CREATE TRIGGER journey_steps_removed
    AFTER DELETE ON personalisation.journey_steps
    FOR EACH ROW EXECUTE FUNCTION personalisation._remember_removed_row();
CREATE TRIGGER removed_shipped_rows_apply
    BEFORE INSERT ON personalisation.removed_shipped_rows
    FOR EACH ROW EXECUTE FUNCTION personalisation._apply_removed_row();

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
    'personalisation.coupons', 'personalisation.pseudonym_key', 'personalisation.ranking_exposures',
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
