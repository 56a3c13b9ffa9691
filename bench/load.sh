#!/usr/bin/env bash
# bench/load.sh: a shop's mixed workload through pgbench, then a check.
#
# LOAD_CLIENTS (default 2) shop clients, logged in as a member of
# personalisation_shop, run page views, rankings, recommendations, cart
# changes, logins, consent, page-leave beacons and purchases for
# LOAD_SECONDS (default 180), while a
# delivery worker logged in as a member of personalisation_sender claims and
# acknowledges messages, the background worker runs the journeys within
# seconds and (on its own instance) pg_cron runs run_due every minute.  It
# prints the transactions per second of each kind, then stops the clock
# (worker and pg_cron off), drains the queue and checks: no failed
# transaction, no ERROR and no deadlock in the server log, no deadlock in
# pg_stat_database, every message written once per journey step and
# delivered exactly once, and the state the extension derives from events
# (carts, orders, product pair counts) equal to a recomputation from the
# event log (bench/load_check.sql).  Exits non-zero when a check fails.
#
# Run alone it starts its own throw-away instance.  The test command runs a
# short version (LOAD_SECONDS=20) in its running instance, with
# LOAD_IN_RUNNING_INSTANCE=1 and PGHOST, PGPORT, PGUSER and CLUSTER_DIR set;
# LOAD_KEEP_DATABASE=1 then leaves the database for inspection.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/../test/cluster.sh"
LOAD_SECONDS=${LOAD_SECONDS:-180}
LOAD_CLIENTS=${LOAD_CLIENTS:-2}
SESSIONS_PER_CLIENT=${SESSIONS_PER_CLIENT:-2500}
DB=personalisation_load

# The shop's mix: script and weight, one per line, mostly page views and
# rankings.  A capability adds its calls here with a weight matching how
# often a shop makes them.
SHOP_MIX=(
    "page_view.sql@40"
    "rank_products.sql@25"
    "rank_categories.sql@6"
    "also_bought.sql@4"
    "recommend_for_cart.sql@3"
    "cart_add.sql@10"
    "cart_remove.sql@3"
    "login.sql@4"
    "consent.sql@3"
    "session_end.sql@2"
    "purchase.sql@3"
)

if [ -n "${LOAD_IN_RUNNING_INSTANCE:-}" ]; then
    PRODUCTS=${LOAD_PRODUCTS:-2000}
    WITH_PG_CRON=no        # pg_cron serves the test database there
else
    PRODUCTS=${LOAD_PRODUCTS:-20000}
    install_dependencies
    build_and_install
    WORK=$(mktemp -d /tmp/personalisation-load.XXXXXX)
    chmod 755 "$WORK"
    start_cluster "$WORK/cluster" "$(free_port 55632)" "$DB"
    trap 'stop_cluster; rm -rf "$WORK"' EXIT
    WITH_PG_CRON=yes
fi
LOG="$CLUSTER_DIR/server.log"

sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

echo "== load: $LOAD_CLIENTS shop clients and 1 delivery worker for ${LOAD_SECONDS}s, background worker on$([ $WITH_PG_CRON = yes ] && echo ', pg_cron on')"
sql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
sql -d "$DB" -v db="$DB" -v products="$PRODUCTS" -v sessions=$((SESSIONS_PER_CLIENT * LOAD_CLIENTS)) \
    -f "$BENCH_DIR/load_setup.sql" >/dev/null
if [ $WITH_PG_CRON = yes ]; then
    sql -d "$DB" -c "CREATE EXTENSION pg_cron" -c "SELECT count(*) FROM personalisation.schedule_jobs()" >/dev/null
fi
sql -d postgres -c "ALTER SYSTEM SET personalisation.worker_enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
sql -d "$DB" -c "SELECT personalisation.start_worker()" >/dev/null

deadlocks_before=$(sql -d "$DB" -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
log_offset=$(stat -c %s "$LOG")
started=$(date +%s)

# The delivery worker polls for the whole run, in the background.
PGOPTIONS="-c application_name=load-sender" "$PG_BINDIR/pgbench" -n -U load_sender -c 1 -j 1 -T "$LOAD_SECONDS" \
    -f "$BENCH_DIR/load/deliver.sql" "$DB" >"$CLUSTER_DIR/load-sender.out" 2>&1 &
sender=$!
shop_args=()
for entry in "${SHOP_MIX[@]}"; do shop_args+=(-f "$BENCH_DIR/load/$entry"); done
shop_status=0
"$PG_BINDIR/pgbench" -n -M prepared -U load_shop -c "$LOAD_CLIENTS" -j "$LOAD_CLIENTS" -T "$LOAD_SECONDS" \
    -D clients="$LOAD_CLIENTS" -D sessions_per_client="$SESSIONS_PER_CLIENT" -D products="$PRODUCTS" \
    "${shop_args[@]}" "$DB" >"$CLUSTER_DIR/load-shop.out" 2>&1 || shop_status=$?
sender_status=0
wait "$sender" || sender_status=$?
elapsed=$(( $(date +%s) - started ))

printf '%-20s %12s %10s\n' kind transactions tps
awk '/^SQL script [0-9]+:/ { name = $4; sub(/.*\//, "", name); sub(/\.sql.*/, "", name) }
     /^ - [0-9]+ transactions/ { n = $2; tps = $0; sub(/.*tps = /, "", tps); sub(/\).*/, "", tps);
                                 printf "%-20s %12s %10.1f\n", name, n, tps }' "$CLUSTER_DIR/load-shop.out"
awk '/^number of transactions actually processed/ { n = $NF } /^tps = / { printf "%-20s %12s %10.1f\n", "deliver", n, $3 }' \
    "$CLUSTER_DIR/load-sender.out"
awk '/^tps = / { printf "%-20s %12s %10.1f\n", "shop, all kinds", "", $3 }' "$CLUSTER_DIR/load-shop.out"

# Stop the clock: no worker, no pg_cron job; then catch up and drain the queue.
sql -d postgres -c "ALTER SYSTEM RESET personalisation.worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null
if [ $WITH_PG_CRON = yes ]; then
    sql -d "$DB" -c "UPDATE cron.job SET active = false WHERE jobname LIKE 'personalisation:%'" >/dev/null
fi
for _ in $(seq 1 100); do
    [ "$(sql -d "$DB" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'personalisation worker'
                            OR (datname = current_database() AND backend_type = 'pg_cron worker')")" = 0 ] && break
    sleep 0.1
done
sql -d "$DB" -c "SELECT personalisation.run_due()" >/dev/null
for _ in $(seq 1 1000); do
    handed=$(sql -d "$DB" -U load_sender -c "
        WITH claimed AS (SELECT message_id FROM personalisation.claim_messages('load-drain', 1000, '5 minutes')),
             handed AS (INSERT INTO public.load_deliveries (message_id) SELECT message_id FROM claimed RETURNING message_id)
        SELECT personalisation.ack_messages(coalesce(array_agg(message_id), '{}'), consumer => 'load-drain') FROM handed")
    [ "$handed" = 0 ] && break
done
echo "messages: $(sql -d "$DB" -c "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
                                   FROM (SELECT status, count(*) AS n FROM personalisation.outbox GROUP BY status) s"),
 $(sql -d "$DB" -c "SELECT count(*) FROM personalisation.journey_runs") journey runs, $(sql -d "$DB" -c "SELECT count(*) FROM personalisation.orders") orders, $(sql -d "$DB" -c "SELECT count(*) FROM personalisation.merges") merges"

echo "== checks"
failures=0
report() { if [ "$2" = ok ]; then echo "ok - $1"; else echo "not ok - $1"; failures=$((failures + 1)); fi; }
failed=$(awk '/number of failed transactions/ { s += $5 } END { print s + 0 }' "$CLUSTER_DIR/load-shop.out" "$CLUSTER_DIR/load-sender.out")
if [ "$shop_status" -eq 0 ] && [ "$sender_status" -eq 0 ] && [ "$failed" = 0 ]; then
    report "no failed or aborted transaction (pgbench)" ok
else
    report "no failed or aborted transaction (pgbench: exit $shop_status/$sender_status, $failed failed)" no
    grep -m 5 -E "error|ERROR|abort" "$CLUSTER_DIR/load-shop.out" "$CLUSTER_DIR/load-sender.out" || true
fi
log_errors=$(tail -c +$((log_offset + 1)) "$LOG" | grep -cE "ERROR:|personalisation worker: " || true)
if [ "$log_errors" = 0 ]; then report "no ERROR in the server log during the run" ok; else
    report "no ERROR in the server log during the run ($log_errors)" no
    tail -c +$((log_offset + 1)) "$LOG" | grep -m 5 -E "ERROR:|personalisation worker: " || true
fi
log_deadlocks=$(tail -c +$((log_offset + 1)) "$LOG" | grep -c "deadlock detected" || true)
if [ "$log_deadlocks" = 0 ]; then report "no deadlock in the server log" ok; else report "no deadlock in the server log ($log_deadlocks)" no; fi
if [ $WITH_PG_CRON = yes ]; then
    read -r cron_ok cron_failed < <(sql -d "$DB" -F ' ' -c "
        SELECT count(*) FILTER (WHERE d.status = 'succeeded'), count(*) FILTER (WHERE d.status <> 'succeeded')
          FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'personalisation:run-due'")
    if [ "$cron_failed" = 0 ] && { [ "$cron_ok" -gt 0 ] || [ "$LOAD_SECONDS" -lt 60 ]; }; then
        report "pg_cron ran run_due $cron_ok times, none failed" ok
    else
        report "pg_cron ran run_due $cron_ok times, none failed ($cron_failed failed)" no
    fi
fi
while IFS= read -r line; do
    case "$line" in
        "ok - "*) echo "$line" ;;
        "not ok - "*) echo "$line"; failures=$((failures + 1)) ;;
    esac
done < <(sql -d "$DB" -v deadlocks_before="$deadlocks_before" -f "$BENCH_DIR/load_check.sql")

if [ -n "${LOAD_IN_RUNNING_INSTANCE:-}" ] && [ -z "${LOAD_KEEP_DATABASE:-}" ]; then
    sql -d postgres -c "DROP DATABASE $DB" -c "DROP ROLE load_shop" -c "DROP ROLE load_sender" >/dev/null
fi
echo "load ran ${elapsed}s; $failures check(s) failed"
[ "$failures" -eq 0 ]
