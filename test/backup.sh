#!/usr/bin/env bash
# test/backup.sh: backups that restore, run by the test command against its
# instance (PGHOST, PGPORT and PGUSER in the environment; cluster.sh's
# helpers are used for a second instance).
#
# It builds a database with every kind of row the extension holds (the demo
# shop's traffic, logins and an undone merge, fresh carts whose journeys run to their coupon
# step, claims, acknowledgements and failures, subscriptions, a refund, day
# partitions premade and made by old events, shipped journey steps edited,
# added and deleted), then restores it three ways:
#   - pg_dump -Fc, pg_restore --exit-on-error into an empty database,
#   - the same with --single-transaction,
#   - pg_dumpall, psql -v ON_ERROR_STOP=1 into a second, fresh instance,
# and checks each time that every table of the schema (found from the
# catalogue) holds the same rows (an md5 of its sorted rows), that every day
# partition is back as a partition with its indexes, and that the restored
# database goes on working without id collisions: tracking, identify,
# ranking, run_due, claims, and (in the second instance) the worker.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"
SRC=personalisation_backup_src
RESTORED=personalisation_backup_restored
RESTORED_TX=personalisation_backup_restored_tx
if [ "$(id -u)" -eq 0 ]; then SERVER_USER=postgres; else SERVER_USER=$(id -un); fi
WORK=$(mktemp -d /tmp/personalisation-backup.XXXXXX)
chmod 755 "$WORK"
SAME_LABELS=(original restored)
source "$REPO_DIR/test/checks.sh"

# partitions DB: each day partition of events with its bound and its indexes.
partitions() {
    sql "$1" <<'SQL'
SELECT c.relname || ' ' || pg_catalog.pg_get_expr(c.relpartbound, c.oid) || ' ' ||
       (SELECT pg_catalog.string_agg(pg_catalog.regexp_replace(pg_catalog.pg_get_indexdef(i.indexrelid),
                                                               ' ON .* USING', ' USING'), '; ' ORDER BY 1)
          FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid)
  FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_class c ON c.oid = h.inhrelid
 WHERE h.inhparent = 'personalisation.events'::pg_catalog.regclass
 ORDER BY c.relname;
SQL
}

# compare NAME DB: DB holds the source's rows and partitions.
compare() {
    sql "$2" -f "$WORK/digest.sql" >"$WORK/rows-$2"
    same "$1: every table holds the same rows" "$WORK/rows-source" "$WORK/rows-$2"
    partitions "$2" >"$WORK/partitions-$2"
    same "$1: every day partition is a partition again, with its indexes" \
         "$WORK/partitions-source" "$WORK/partitions-$2"
}

# goes_on NAME DB: the restored database takes new traffic, with new ids
# past the restored ones.
goes_on() {
    local db=$2
    sql "$db" >/dev/null <<'SQL'
CREATE TABLE public.old_ids AS
SELECT (SELECT max(profile_id) FROM personalisation.profiles) AS profile,
       (SELECT max(merge_id) FROM personalisation.merges) AS merge,
       (SELECT max(run_id) FROM personalisation.journey_runs) AS run,
       (SELECT max(message_id) FROM personalisation.outbox) AS message;
SQL
    sql "$db" >/dev/null <<'SQL'
SET personalisation.journey_holdout_percent = 0;
SELECT personalisation.set_consent('after-restore', 'push', true, now() - interval '50 minutes');
SELECT personalisation.track_page_view('after-restore', NULL, 'sku-00001', now() - interval '49 minutes');
SELECT personalisation.track_cart_add('after-restore', 'sku-00001', 1, now() - interval '48 minutes');
SELECT personalisation.identify('after-restore', 'customer-after-restore', NULL, now() - interval '47 minutes');
SELECT personalisation.track_page_view('after-restore-2', NULL, 'sku-00002', now() - interval '46 minutes');
SELECT personalisation.identify('after-restore-2', 'customer-after-restore', NULL, now() - interval '45 minutes');
SELECT personalisation.run_due(now());
SQL
    check "$1: a new visitor gets a new profile" "$db" \
          "SELECT bool_and(s.profile_id > o.profile) FROM personalisation.sessions s, public.old_ids o
            WHERE s.session_id LIKE 'after-restore%'"
    check "$1: its login merges with a new merge id" "$db" \
          "SELECT count(*) = 1 AND bool_and(m.merge_id > o.merge) FROM personalisation.merges m, public.old_ids o
            WHERE m.customer_id = 'customer-after-restore'"
    check "$1: rank_products answers" "$db" \
          "SELECT count(*) = 2 FROM personalisation.rank_products('after-restore', '{sku-00001,sku-00002}')"
    check "$1: run_due starts its journey with a new run id and message id" "$db" \
          "SELECT count(*) > 0 AND bool_and(r.run_id > o.run AND m.message_id > o.message)
             FROM personalisation.journey_runs r JOIN personalisation.outbox m USING (profile_id, run_id), public.old_ids o
            WHERE r.session_id LIKE 'after-restore%'"
    check "$1: its push is claimed and acknowledged" "$db" \
          "SELECT bool_and(personalisation.ack_message(c.message_id, now()))
             FROM personalisation.claim_messages('restored-consumer', 1000, '5 minutes', now()) c
            WHERE c.session_id LIKE 'after-restore%'"
}

echo "== backup and restore"
psql -X -q -d postgres -c "SET client_min_messages = warning" \
     -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $RESTORED" \
     -c "DROP DATABASE IF EXISTS $RESTORED_TX" -c "CREATE DATABASE $SRC"
sql "$SRC" >/dev/null <<'SQL'
CREATE EXTENSION personalisation;
SET personalisation.journey_holdout_percent = 50;
-- the shop's changes to the shipped journeys: a step edited, a step added,
-- a step and a whole journey deleted
UPDATE personalisation.journey_steps SET delay = '2 hours' WHERE journey = 'abandoned_cart' AND step = 2;
INSERT INTO personalisation.journey_steps (journey, step, name, delay, channel, template)
VALUES ('abandoned_cart', 5, 'last_call', '96 hours', 'email', 'cart_last_call');
DELETE FROM personalisation.journey_steps WHERE journey = 'post_purchase' AND step = 2;
DELETE FROM personalisation.journey_steps WHERE journey = 'subscription_offer';
DELETE FROM personalisation.journeys WHERE journey = 'subscription_offer';
SQL
sql "$SRC" -f "$REPO_DIR/test/demo/shop.sql" >/dev/null
sql "$SRC" >/dev/null <<'SQL'
SET personalisation.journey_holdout_percent = 50;
SELECT personalisation.identify('demo-' || lpad(v::text, 4, '0'), 'customer-' || (v % 40), 'c' || v || '@example.com')
  FROM generate_series(1, 120) v;
SELECT personalisation.unmerge(min(merge_id)) FROM personalisation.merges;
SELECT personalisation.track_subscription_start('demo-0005', 'sku-00001');
SELECT personalisation.track_subscription_stop('demo-0005', 'sku-00001');
SELECT personalisation.track_subscription_start('demo-0005', 'sku-00001');
SELECT personalisation.track_refund(min(order_id)) FROM personalisation.orders;
SELECT personalisation.track_session_end('demo-0009');
-- carts left 40 minutes ago by customers who accept push and email
SELECT personalisation.set_consent('fresh-' || i, 'push', true, now() - interval '50 minutes'),
       personalisation.identify('fresh-' || i, 'fresh-customer-' || i, 'f' || i || '@example.com',
                                now() - interval '45 minutes'),
       personalisation.set_consent('fresh-' || i, 'email', true, now() - interval '44 minutes'),
       personalisation.track_cart_add('fresh-' || i, 'sku-0' || (1000 + i), 1, now() - interval '40 minutes')
  FROM generate_series(1, 20) i;
SELECT personalisation.run_due(now());
SELECT personalisation.run_due(now() + interval '3 days 1 hour');
SELECT count(*) FROM personalisation.claim_messages('backup-consumer', 40, '5 minutes', now());
SELECT personalisation.ack_messages(array_agg(message_id)) FROM
       (SELECT message_id FROM personalisation.outbox WHERE status = 'claimed' LIMIT 20) m;
SELECT personalisation.fail_message(message_id, 'mailbox full')
  FROM personalisation.outbox WHERE status = 'claimed' LIMIT 5;
SELECT personalisation.refresh_popularity(now());
-- rankings, so that visitors' exposures are recorded
SELECT count(*) FROM generate_series(1, 30) v,
       personalisation.rank_products('demo-' || lpad(v::text, 4, '0'), '{sku-00001,sku-00002,sku-00003}');
SELECT personalisation.maintain_partitions(now());
SELECT personalisation.maintain_complementarity(now());
SQL
check "the source has premade and past day partitions" "$SRC" \
      "SELECT count(*) FILTER (WHERE c.relname > 'events_p' || to_char(now(), 'YYYYMMDD')) > 0
          AND count(*) FILTER (WHERE c.relname < 'events_p' || to_char(now(), 'YYYYMMDD')) > 0
         FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'personalisation.events'::regclass"
sql "$SRC" -f "$REPO_DIR/test/table_digests.sql" >"$WORK/digest.sql"
sql "$SRC" -f "$WORK/digest.sql" >"$WORK/rows-source"
partitions "$SRC" >"$WORK/partitions-source"
EMPTY=$(awk -F'|' '$2 == 0 { print $1 }' "$WORK/rows-source" | tr '\n' ' ')
if [ -z "$EMPTY" ]; then echo "ok - the source has rows in every table of the schema"
else echo "not ok - the source has rows in every table of the schema (empty: $EMPTY)"; FAILURES=$((FAILURES + 1)); fi
echo "# $(wc -l <"$WORK/rows-source") tables, $(wc -l <"$WORK/partitions-source") day partitions, $(sql "$SRC" -c 'SELECT count(*) FROM personalisation.events') events"

# 1. pg_dump -Fc and pg_restore --exit-on-error, then with --single-transaction
pg_dump -Fc -f "$WORK/source.dump" "$SRC" 2>"$WORK/dump.log" || { cat "$WORK/dump.log"; exit 1; }
for mode in plain single-transaction; do
    target=$RESTORED; options=(--exit-on-error)
    if [ $mode = single-transaction ]; then target=$RESTORED_TX; options+=(--single-transaction); fi
    psql -X -q -d postgres -c "CREATE DATABASE $target"
    if pg_restore "${options[@]}" -d "$target" "$WORK/source.dump" 2>"$WORK/restore-$mode.log"; then
        echo "ok - pg_restore ${options[*]} exits 0"
        compare "pg_restore ($mode)" "$target"
    else
        echo "not ok - pg_restore ${options[*]} exits 0"; sed 's/^/#   /' "$WORK/restore-$mode.log" | head -20
        FAILURES=$((FAILURES + 1))
    fi
done
goes_on "pg_restore" "$RESTORED"

# 2. pg_dumpall of this instance (the source database and the roles) into a
#    second instance, whose bootstrap superuser has another name so that the
#    dump's CREATE ROLE of ours runs as it does on a new server
OTHERS=$(sql postgres -c "SELECT string_agg(format('--exclude-database=%s', datname), ' ')
                            FROM pg_database WHERE datname NOT IN ('$SRC', 'postgres', 'template0', 'template1')")
# shellcheck disable=SC2086
pg_dumpall $OTHERS -f "$WORK/all.sql" 2>"$WORK/dumpall-err.log" || { cat "$WORK/dumpall-err.log"; exit 1; }
chmod 644 "$WORK/all.sql"
FIRST=("$PGHOST" "$PGPORT" "$PGUSER")
SECOND_DIR=$WORK/second
SECOND_PORT=$(free_port $((PGPORT + 1)))
mkdir -p "$SECOND_DIR"; [ "$(id -u)" -eq 0 ] && chown "$SERVER_USER" "$SECOND_DIR"
as_server "$PG_BINDIR/initdb" -D "$SECOND_DIR/data" -U restorer --auth=trust --no-instructions \
    -E UTF8 --locale=C.UTF-8 >"$SECOND_DIR/initdb.log" 2>&1
{
    cat "$REPO_DIR/test/personalisation.conf"
    echo "port = $SECOND_PORT"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$SECOND_DIR'"
} | as_server tee -a "$SECOND_DIR/data/postgresql.conf" >/dev/null
as_server "$PG_BINDIR/pg_ctl" -D "$SECOND_DIR/data" -l "$SECOND_DIR/server.log" -w start >/dev/null
stop_second() { as_server "$PG_BINDIR/pg_ctl" -D "$SECOND_DIR/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop_second EXIT
export PGHOST=$SECOND_DIR PGPORT=$SECOND_PORT PGUSER=restorer
if psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$WORK/all.sql" >"$WORK/dumpall.log" 2>&1; then
    echo "ok - pg_dumpall's script runs into a new instance with ON_ERROR_STOP"
    compare "pg_dumpall" "$SRC"
    goes_on "pg_dumpall" "$SRC"
    # the worker stays off while the rows load (README, "Backup and restore"), on after
    sql postgres -c "ALTER SYSTEM SET personalisation.worker_enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
    sql "$SRC" -c "SELECT personalisation.start_worker()" >/dev/null
    deadline=$((SECONDS + 30))
    until [ "$(sql "$SRC" -c "SELECT EXISTS (SELECT FROM personalisation.worker_status() w
                                               WHERE w.database_id = (SELECT oid FROM pg_database
                                                                       WHERE datname = current_database())
                                                 AND w.pid IS NOT NULL AND w.runs > 0)")" = t ] \
          || [ $SECONDS -ge $deadline ]; do sleep 0.2; done
    check "pg_dumpall: the restored database's worker runs" "$SRC" \
          "SELECT EXISTS (SELECT FROM personalisation.worker_status() w WHERE w.pid IS NOT NULL AND w.runs > 0)"
else
    echo "not ok - pg_dumpall's script runs into a new instance with ON_ERROR_STOP"
    grep -m 20 -B2 ERROR "$WORK/dumpall.log" | sed 's/^/#   /'; FAILURES=$((FAILURES + 1))
fi
stop_second
trap - EXIT
export PGHOST=${FIRST[0]} PGPORT=${FIRST[1]} PGUSER=${FIRST[2]}

psql -X -q -d postgres -c "DROP DATABASE $SRC" -c "DROP DATABASE $RESTORED" -c "DROP DATABASE $RESTORED_TX"
if [ $FAILURES -ne 0 ]; then echo "backup: $FAILURES failed (files in $WORK)"; exit 1; fi
rm -rf "$WORK"
