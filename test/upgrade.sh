#!/usr/bin/env bash
# test/upgrade.sh: the upgrade test, run by the test command against its
# instance (PGHOST, PGPORT and PGUSER in the environment).
#
# It installs the released 0.1.0 (sql/personalisation--0.1.0.sql, as shipped)
# and drives that database through the 0.1.0 API with the library just built
# (track, consent, identify, purchase, rank, run_due, claim, ack): the new
# library must serve a database that has not been updated.  It digests every
# table, runs ALTER EXTENSION personalisation UPDATE, and checks that
#   - every row is intact (the same digests, over the columns 0.1.0 had,
#     of every table but those whose rows the extension ships),
#   - the updated database goes on working (the same calls, a merge, a claim),
#   - a pg_dump of it restores (the day partitions 0.1.0 made included),
#   - its schema equals a fresh install of the current version: the
#     extension's member objects and configuration tables, and the
#     pg_dump --schema-only text of both once the member objects are
#     released from the extension (pg_dump prints only CREATE EXTENSION for
#     members), so columns, types, defaults, constraints, indexes, triggers,
#     functions (body, library symbol, SECURITY DEFINER, search_path),
#     views, sequences, comments and grants are all compared,
#   - the rows the extension ships (journeys, journey_steps, access_map,
#     event_partition_indexes) are those of a fresh install.
# A difference is printed as a unified diff, fresh install on the + side.
set -euo pipefail
OLD=personalisation_upgrade_old
NEW=personalisation_upgrade_new
RESTORED=personalisation_upgrade_restored
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/personalisation-upgrade.XXXXXX)
FROM_VERSION=0.1.0
TO_VERSION=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\(.*\)'/\1/p" "$REPO_DIR/personalisation.control")
SAME_LABELS=("updated from $FROM_VERSION" "fresh $TO_VERSION")
source "$REPO_DIR/test/checks.sh"

# exercise DB PREFIX: drives the API both versions share with explicit
# timestamps: two visitors browse, one logs in and leaves a cart, the other
# buys twice; the cart is abandoned, its push is claimed and acknowledged.  Prints
# nothing; a failing call stops the test.
exercise() {
    local db=$1 p=$2
    sql "$db" -v p="$p" >/dev/null <<'SQL'
SET personalisation.journey_holdout_percent = 0;
SELECT personalisation.set_consent(:'p' || '-s1', 'push', true, now() - interval '50 minutes', :'p' || '-e1');
SELECT personalisation.track_page_view(:'p' || '-s1', 'up-cat', 'up-p1', now() - interval '49 minutes', :'p' || '-e2');
SELECT personalisation.track_page_view(:'p' || '-s2', 'up-cat', 'up-p2', now() - interval '48 minutes');
SELECT personalisation.identify(:'p' || '-s1', :'p' || '-customer', :'p' || '@example.com', now() - interval '47 minutes');
SELECT personalisation.set_consent(:'p' || '-s1', 'email', true, now() - interval '46 minutes');
SELECT personalisation.track_cart_add(:'p' || '-s1', 'up-p1', 2, now() - interval '45 minutes', :'p' || '-e3');
SELECT personalisation.track_cart_add(:'p' || '-s1', 'up-p3', 1, now() - interval '44 minutes');
SELECT personalisation.track_cart_remove(:'p' || '-s1', 'up-p3', NULL, now() - interval '43 minutes');
SELECT personalisation.track_cart_add(:'p' || '-s2', 'up-p2', 1, now() - interval '42 minutes');
SELECT personalisation.track_purchase(:'p' || '-s2', :'p' || '-order' || i,
       '[{"product_id": "up-p2", "quantity": 1, "unit_price": 12.5},
         {"product_id": "up-p3", "quantity": 2, "unit_price": 7}]', now() - interval '41 minutes' + i * interval '1 second')
  FROM generate_series(1, 2) i;
SELECT personalisation.refresh_popularity(now());
SQL
    check "$p: rank_products ranks every candidate" "$db" \
          "SELECT array_agg(product_id ORDER BY position) @> '{up-p1,up-p2,up-p3}' AND count(*) = 3
             FROM personalisation.rank_products('$p-s1', '{up-p1,up-p2,up-p3}')"
    check "$p: rank_categories ranks every candidate" "$db" \
          "SELECT count(*) = 2 FROM personalisation.rank_categories('$p-s1', '{up-cat,up-other}')"
    check "$p: also_bought answers from the orders" "$db" \
          "SELECT array_agg(product_id) = '{up-p3}' FROM personalisation.also_bought('up-p2')"
    check "$p: run_due starts the abandoned cart's journey" "$db" \
          "SET personalisation.journey_holdout_percent = 0;
           SELECT personalisation.run_due(now()) >= 1"
    check "$p: its push is claimed once and acknowledged" "$db" \
          "SELECT personalisation.ack_message(c.message_id, now())
             FROM personalisation.claim_messages('$p-consumer', 100, '5 minutes', now()) c
            WHERE c.session_id = '$p-s1' AND c.channel = 'push'"
}

# members DB: the extension's version-independent description: its member
# objects (day partitions under one name) and configuration tables.
members() {
    sql "$1" <<'SQL'
SELECT m FROM (
SELECT DISTINCT pg_catalog.regexp_replace(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
                                          'events_p[0-9]{8}', 'events_pYYYYMMDD', 'g') AS m
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
   AND e.extname = 'personalisation'
UNION ALL
SELECT 'configuration table ' || c.relid::pg_catalog.regclass::text || ' ' || coalesce(c.cond, '(all rows)')
  FROM pg_catalog.pg_extension e,
       ROWS FROM (pg_catalog.unnest(e.extconfig::pg_catalog.regclass[]),
                  pg_catalog.unnest(e.extcondition)) c (relid, cond)
 WHERE e.extname = 'personalisation') o
ORDER BY m COLLATE "C";
SQL
}

# release DB: turns the extension's members into ordinary objects (its
# pg_depend rows and initial privileges deleted), so that pg_dump prints
# them.  The database is a scratch copy: it is useless afterwards.
release() {
    sql "$1" <<'SQL'
DELETE FROM pg_catalog.pg_init_privs WHERE privtype = 'e';
DELETE FROM pg_catalog.pg_depend d USING pg_catalog.pg_extension e
 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.refobjid = e.oid
   AND d.deptype = 'e' AND e.extname = 'personalisation';
SQL
}

# schema_dump DB [pg_dump args]: the schema's DDL, without pg_dump's version
# lines and the random key of its \restrict guard.
schema_dump() {
    local db=$1; shift
    pg_dump --schema-only --schema=personalisation "$@" "$db" | grep -v '^-- Dumped \(from\|by\)\|^\\\(un\)\?restrict '
}

echo "== upgrade from $FROM_VERSION to $TO_VERSION"
psql -X -q -d postgres -c "SET client_min_messages = warning" \
     -c "DROP DATABASE IF EXISTS $OLD WITH (FORCE)" -c "DROP DATABASE IF EXISTS $NEW WITH (FORCE)" \
     -c "DROP DATABASE IF EXISTS $RESTORED WITH (FORCE)" \
     -c "CREATE DATABASE $OLD" -c "CREATE DATABASE $NEW"
CATALOGUE="INSERT INTO personalisation.categories VALUES ('up-cat', NULL, 'Upgrade'), ('up-other', NULL, 'Other');
INSERT INTO personalisation.products (product_id, category_id, name, price, brand, url, image_url)
SELECT 'up-p' || i, 'up-cat', 'Product ' || i, 10 + i, 'brand-' || i,
       'https://shop.example/up-p' || i, 'https://shop.example/up-p' || i || '.jpg'
  FROM generate_series(1, 3) i;"

sql "$OLD" -c "CREATE EXTENSION personalisation VERSION '$FROM_VERSION'" -c "$CATALOGUE"
check "the database is at $FROM_VERSION" "$OLD" \
      "SELECT extversion = '$FROM_VERSION' FROM pg_extension WHERE extname = 'personalisation'"
exercise "$OLD" before

sql "$OLD" -f "$REPO_DIR/test/table_digests.sql" >"$WORK/digest.sql"
# the tables whose rows the extension ships are compared with a fresh install below
SHIPPED="personalisation.journeys personalisation.journey_steps personalisation.access_map
         personalisation.event_partition_indexes"
SHIPPED_PATTERN="^\($(echo $SHIPPED | sed 's/ /\\|/g')\)|"
sql "$OLD" -f "$WORK/digest.sql" | grep -v "$SHIPPED_PATTERN" >"$WORK/rows-before"
sql "$OLD" -c "ALTER EXTENSION personalisation UPDATE"
check "ALTER EXTENSION UPDATE brings it to $TO_VERSION" "$OLD" \
      "SELECT extversion = '$TO_VERSION' FROM pg_extension WHERE extname = 'personalisation'"
sql "$OLD" -f "$WORK/digest.sql" | grep -v "$SHIPPED_PATTERN" >"$WORK/rows-after"
same "every row of every table is intact ($(wc -l <"$WORK/rows-before") tables)" \
     "$WORK/rows-before" "$WORK/rows-after" "before the update" "after"

exercise "$OLD" after
check "the first visitor logging in again on a new browser merges into the same profile" "$OLD" \
      "SELECT personalisation.identify('after-s9', 'before-customer', NULL, now() - interval '1 minute')
              = (SELECT profile_id FROM personalisation.profiles WHERE customer_id = 'before-customer')"

sql "$NEW" -c "CREATE EXTENSION personalisation" -c "$CATALOGUE"
exercise "$NEW" after

# the updated database restores from pg_dump, the day partitions 0.1.0 made in
# CREATE EXTENSION (released by the update) included
psql -X -q -d postgres -c "CREATE DATABASE $RESTORED"
pg_dump -Fc -f "$WORK/updated.dump" "$OLD" 2>"$WORK/dump.log"
if pg_restore --exit-on-error -d "$RESTORED" "$WORK/updated.dump" 2>"$WORK/restore.log"; then
    sql "$OLD" -f "$REPO_DIR/test/table_digests.sql" >"$WORK/digest-updated.sql"
    sql "$OLD" -f "$WORK/digest-updated.sql" >"$WORK/rows-updated"
    sql "$RESTORED" -f "$WORK/digest-updated.sql" >"$WORK/rows-restored"
    same "a dump of the updated database restores every row" "$WORK/rows-updated" "$WORK/rows-restored" \
         "updated" "restored"
    check "and every day partition of 0.1.0's, as a partition" "$RESTORED" \
          "SELECT count(*) >= 8 FROM pg_inherits WHERE inhparent = 'personalisation.events'::regclass"
else
    echo "not ok - a dump of the updated database restores"; sed 's/^/#   /' "$WORK/restore.log" | head -20
    FAILURES=$((FAILURES + 1))
fi

members "$OLD" >"$WORK/members-old"
members "$NEW" >"$WORK/members-new"
same "the same member objects and configuration tables" "$WORK/members-old" "$WORK/members-new"

for table in $SHIPPED; do
    sql "$OLD" -c "SELECT * FROM $table ORDER BY 1, 2" >"$WORK/shipped-old"
    sql "$NEW" -c "SELECT * FROM $table ORDER BY 1, 2" >"$WORK/shipped-new"
    same "the rows shipped in $table" "$WORK/shipped-old" "$WORK/shipped-new"
done

release "$OLD"
release "$NEW"
schema_dump "$OLD" --exclude-table='personalisation.events_p*' >"$WORK/schema-old"
schema_dump "$NEW" --exclude-table='personalisation.events_p*' >"$WORK/schema-new"
same "the same schema ($(grep -c '^CREATE\|^ALTER\|^GRANT\|^COMMENT' "$WORK/schema-new") statements)" \
     "$WORK/schema-old" "$WORK/schema-new"
# a day partition made by the install or the update and one made since have the same shape
TODAY=$(sql "$NEW" -c "SELECT 'personalisation.events_p' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')")
sql "$OLD" -c "SELECT personalisation.track_page_view('shape', 'up-cat', NULL, now())" >/dev/null
sql "$NEW" -c "SELECT personalisation.track_page_view('shape', 'up-cat', NULL, now())" >/dev/null
schema_dump "$OLD" -t "$TODAY" >"$WORK/partition-old"
schema_dump "$NEW" -t "$TODAY" >"$WORK/partition-new"
same "the same day partition $TODAY" "$WORK/partition-old" "$WORK/partition-new"

psql -X -q -d postgres -c "DROP DATABASE $OLD WITH (FORCE)" -c "DROP DATABASE $NEW WITH (FORCE)" \
     -c "DROP DATABASE $RESTORED WITH (FORCE)"
if [ $FAILURES -ne 0 ]; then echo "upgrade: $FAILURES failed (files in $WORK)"; exit 1; fi
rm -rf "$WORK"
