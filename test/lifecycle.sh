#!/usr/bin/env bash
# test/lifecycle.sh: the background worker through the operations every
# installation performs, run by the test command after crash.sh against its
# instance (PGHOST, PGPORT, PGUSER and CLUSTER_DIR in the environment), with
# contrib_regression holding the extension.
#  1. 20 databases with the extension are created and dropped, half with
#     FORCE: every drop works while the worker is connected, and afterwards
#     a new database gets its worker and the log shows no restart loop.
#  2. A streaming standby made with pg_basebackup runs nothing, logs
#     nothing, and refuses start_worker() and writes with the extension's
#     own errors; promoted, it starts the worker with no cart change.
#  3. The promoted server, restarted with pg_cron and pg_stat_statements
#     preloaded beside the extension, starts the worker again, and every
#     library works; restarted short of worker slots, it says so once, in
#     the log only.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"
MAIN_DB=contrib_regression
FAILURES=0
STANDBY_DIR="$CLUSTER_DIR/standby"
STANDBY_SOCKETS="$CLUSTER_DIR/standby-sockets"
STANDBY_LOG="$CLUSTER_DIR/standby.log"
SERVER_USER=$PGUSER

# sql DB [psql args]: runs SQL in DB on the main instance, printing bare values.
sql() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# standby_sql DB [psql args]: the same on the standby.
standby_sql() { sql "$@" -h "$STANDBY_SOCKETS" -p "$STANDBY_PORT"; }

# ok NAME: records a passed check; not_ok NAME WHY: a failed one.
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1 ($2)"; FAILURES=$((FAILURES + 1)); }

# check NAME ANSWER: the answer must be t.
check() { if [ "$2" = "t" ]; then ok "$1"; else not_ok "$1" "$2"; fi; }

# wait_for RUNNER DB QUERY [SECONDS]: polls a boolean query until it is true.
wait_for() {
    local runner=$1 db=$2 query=$3 deadline=$((SECONDS + ${4:-30}))
    until [ "$($runner "$db" -c "$query" 2>/dev/null || true)" = "t" ]; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# log_since FILE LINE: the log from that line on.
log_since() { tail -n +"$2" "$1"; }

worker_running() {
    echo "SELECT EXISTS (SELECT FROM pg_stat_activity
                          WHERE backend_type = 'personalisation worker' AND datname = '$1')"
}

# cleanup: whatever happened, the standby is stopped and workers are off again
cleanup() {
    [ -d "$STANDBY_DIR" ] && as_server "$PG_BINDIR/pg_ctl" -D "$STANDBY_DIR" -m fast -w stop >/dev/null 2>&1
    psql -X -q -d postgres -c "ALTER SYSTEM RESET personalisation.worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null
}
trap cleanup EXIT

echo "== lifecycle"
# the 20 databases are file copies of a template with the extension (cheaper
# to drop than WAL-logged ones, whose buffers the drop's checkpoint writes), made while
# workers are off so that no worker holds the template
psql -X -q -d postgres -c "CREATE DATABASE personalisation_template" >/dev/null
sql personalisation_template -c "SET client_min_messages = error" -c "CREATE EXTENSION personalisation" >/dev/null
wait_for sql postgres "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE datname = 'personalisation_template')" 30 || true
psql -X -q -d postgres -c "ALTER SYSTEM SET personalisation.worker_enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
sql "$MAIN_DB" -c "SELECT personalisation.start_worker()" >/dev/null
wait_for sql "$MAIN_DB" "$(worker_running $MAIN_DB)" 30 || true

# 1. dropped databases, in rounds of five (max_worker_processes is 16)
LOG_LINE=$(($(wc -l <"$CLUSTER_DIR/server.log") + 1))
started=$SECONDS
dropped_ok=0
for round in 0 1 2 3; do
    for i in $(seq $((round * 5 + 1)) $((round * 5 + 5))); do
        psql -X -q -d postgres -c "CREATE DATABASE personalisation_drop_$i TEMPLATE personalisation_template STRATEGY FILE_COPY" >/dev/null
        sql personalisation_drop_$i -c "SELECT personalisation.start_worker()" >/dev/null
    done
    for i in $(seq $((round * 5 + 1)) $((round * 5 + 5))); do
        db=personalisation_drop_$i
        wait_for sql postgres "$(worker_running "$db")" 30 || not_ok "database $i gets its worker" "none after 30 s"
        if [ $((i % 2)) -eq 0 ]; then
            psql -X -q -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null 2>&1 && dropped_ok=$((dropped_ok + 1))
        else
            psql -X -q -d postgres -c "DROP DATABASE $db" >/dev/null 2>&1 && dropped_ok=$((dropped_ok + 1))
        fi
    done
done
echo "# 20 databases created, given their worker and dropped in $((SECONDS - started)) s"
check "20 databases with a running worker are dropped, 10 with FORCE and 10 without" \
      "$([ $dropped_ok -eq 20 ] && echo t || echo "$dropped_ok dropped")"
check "no worker is left for a dropped database, running or in worker_status" \
      "$(sql "$MAIN_DB" -c "SELECT NOT EXISTS (SELECT FROM personalisation.worker_status() w
                                                WHERE NOT EXISTS (SELECT FROM pg_database d WHERE d.oid = w.database_id))
                               AND NOT EXISTS (SELECT FROM pg_stat_activity
                                                WHERE backend_type = 'personalisation worker' AND datname IS NULL)")"
# more drops than max_worker_processes (16): a leaked slot would keep this one from its worker
psql -X -q -d postgres -c "CREATE DATABASE personalisation_drop_after TEMPLATE personalisation_template STRATEGY FILE_COPY" >/dev/null
sql personalisation_drop_after -c "SELECT personalisation.start_worker()" >/dev/null
if wait_for sql postgres "$(worker_running personalisation_drop_after)" 30; then
    ok "a database created after the 20 drops gets its worker"
else
    not_ok "a database created after the 20 drops gets its worker" "none after 30 s"
fi
# a restart loop would log its FATAL every 2 seconds: wait past one such interval
sleep 3
restarts=$(log_since "$CLUSTER_DIR/server.log" "$LOG_LINE" | grep -c -E 'FATAL: +database [0-9]+ does not exist' || true)
check "the server log shows no worker restarted into a dropped database" \
      "$([ "$restarts" -eq 0 ] && echo t || echo "$restarts lines")"
psql -X -q -d postgres -c "DROP DATABASE personalisation_drop_after" >/dev/null

# 2. a streaming standby, then promoted.  The calls refused on the standby go
# to the template's copy, so that nothing they might register there starts
# the main database's worker at promotion; the product exists, so that only
# the standby can refuse the cart change.
sql personalisation_template -c "INSERT INTO personalisation.products (product_id) VALUES ('lc-p')" >/dev/null
rm -rf "$STANDBY_DIR" "$STANDBY_SOCKETS" "$STANDBY_LOG"
mkdir -p "$STANDBY_SOCKETS"
[ "$(id -u)" -eq 0 ] && chown "$SERVER_USER" "$STANDBY_SOCKETS" "$CLUSTER_DIR"
as_server "$PG_BINDIR/pg_basebackup" -D "$STANDBY_DIR" -R -X stream -c fast
STANDBY_PORT=$(free_port $((PGPORT + 1)))
{
    echo "port = $STANDBY_PORT"
    echo "unix_socket_directories = '$STANDBY_SOCKETS'"
} | as_server tee -a "$STANDBY_DIR/postgresql.auto.conf" >/dev/null
as_server "$PG_BINDIR/pg_ctl" -D "$STANDBY_DIR" -l "$STANDBY_LOG" -w start >/dev/null

check "the standby is in recovery, with workers enabled" \
      "$(standby_sql "$MAIN_DB" -c "SELECT pg_is_in_recovery() AND current_setting('personalisation.worker_enabled')::boolean")"
sleep 1
check "on the standby no launcher, probe or worker runs" \
      "$(standby_sql "$MAIN_DB" -c "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type LIKE 'personalisation%')")"
check "and the standby's log says nothing about personalisation" \
      "$(grep -v -F "$CLUSTER_DIR" "$STANDBY_LOG" | grep -i personalisation | head -1 | sed 's/^/it does: /' | grep . || echo t)"
answer=$(standby_sql personalisation_template -c "SELECT personalisation.start_worker()" 2>&1 || true)
check "start_worker() on the standby says the worker cannot run there, with a hint" \
      "$(echo "$answer" | grep -q 'cannot run on a standby' && echo "$answer" | grep -q 'HINT:  Call start_worker() on the primary' && echo t || echo "got: $answer")"
answer=$(standby_sql personalisation_template -c "SELECT personalisation.track_cart_add('lc-s', 'lc-p')" 2>&1 || true)
check "track_cart_add on the standby fails with the extension's own error and hint" \
      "$(echo "$answer" | grep -q 'track_cart_add cannot run on a standby' && echo "$answer" | grep -q 'HINT:  Send this call to the primary server' && echo t || echo "got: $answer")"
answer=$(standby_sql personalisation_template -c "SELECT personalisation.identify('lc-s', 'lc-c')" 2>&1 || true)
check "and so does identify" \
      "$(echo "$answer" | grep -q 'identify cannot run on a standby' && echo t || echo "got: $answer")"

as_server "$PG_BINDIR/pg_ctl" -D "$STANDBY_DIR" -w promote >/dev/null
if wait_for standby_sql "$MAIN_DB" "$(worker_running $MAIN_DB)" 30; then
    ok "promoted, the server starts the worker of the database with the extension, with no cart change"
else
    not_ok "promoted, the server starts the worker of the database with the extension, with no cart change" "none after 30 s"
fi

# 3. restarts, beside the neighbours
standby_sql postgres -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_cron', 'pg_stat_statements', 'personalisation'" >/dev/null
LOG_LINE=$(($(wc -l <"$STANDBY_LOG") + 1))
as_server "$PG_BINDIR/pg_ctl" -D "$STANDBY_DIR" -l "$STANDBY_LOG" -m fast -w restart >/dev/null
if wait_for standby_sql "$MAIN_DB" "$(worker_running $MAIN_DB)" 30; then
    ok "restarted, the server starts the worker again, with no cart change"
else
    not_ok "restarted, the server starts the worker again, with no cart change" "none after 30 s"
fi
standby_sql "$MAIN_DB" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
check "beside pg_cron and pg_stat_statements every library works: pg_cron's launcher runs, statements are counted, events are tracked" \
      "$(standby_sql "$MAIN_DB" -c "SELECT personalisation.track_page_view('lc-s')" >/dev/null
         standby_sql "$MAIN_DB" -c "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher')
                 AND EXISTS (SELECT FROM pg_stat_statements WHERE query LIKE '%track_page_view%')")"
check "and the log shows no library out of callback slots" \
      "$(log_since "$STANDBY_LOG" "$LOG_LINE" | grep -q 'out of .*callback_list slots' && echo "it does" || echo t)"

# short of worker slots: only pg_cron's launcher and the extension's fit
standby_sql postgres -c "SET client_min_messages = error" -c "CREATE DATABASE personalisation_second" >/dev/null
standby_sql personalisation_second -c "SET client_min_messages = error" -c "CREATE EXTENSION personalisation" >/dev/null
standby_sql postgres -c "ALTER SYSTEM SET max_worker_processes = 2" -c "ALTER SYSTEM SET max_logical_replication_workers = 0" >/dev/null
as_server "$PG_BINDIR/pg_ctl" -D "$STANDBY_DIR" -l "$STANDBY_LOG" -m fast -w restart >/dev/null
wait_for standby_sql postgres "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'personalisation launcher')" 30 || true
LOG_LINE=$(($(wc -l <"$STANDBY_LOG") + 1))
# the main database's cart change takes the one free slot; the second database finds none
standby_sql "$MAIN_DB" -c "INSERT INTO personalisation.products (product_id) VALUES ('lc-p') ON CONFLICT DO NOTHING" \
    -c "SELECT personalisation.track_cart_add('lc-s', 'lc-p')" >/dev/null
wait_for standby_sql "$MAIN_DB" "$(worker_running $MAIN_DB)" 30 || true
standby_sql personalisation_second -c "INSERT INTO personalisation.products (product_id) VALUES ('lc-p')" >/dev/null
client_output=$(for i in 1 2 3 4 5; do
    standby_sql personalisation_second -c "SELECT personalisation.track_cart_add('lc-s$i', 'lc-p')" 2>&1 >/dev/null
done)
check "short of worker slots, cart changes send the application no warning" \
      "$([ -z "$client_output" ] && echo t || echo "$client_output")"
second_oid=$(standby_sql postgres -c "SELECT oid FROM pg_database WHERE datname = 'personalisation_second'")
logged=$(log_since "$STANDBY_LOG" "$LOG_LINE" | grep -c "could not start the personalisation worker for database $second_oid" || true)
check "and the server log says once, for five cart changes, that the worker could not start" \
      "$([ "$logged" -eq 1 ] && echo t || echo "$logged lines")"
check "with a hint that names the setting and what does the work meanwhile" \
      "$(log_since "$STANDBY_LOG" "$LOG_LINE" | grep -q 'HINT:  Raise max_worker_processes.*run_due()' && echo t || echo 'no such hint')"

as_server "$PG_BINDIR/pg_ctl" -D "$STANDBY_DIR" -m fast -w stop >/dev/null
rm -rf "$STANDBY_DIR" "$STANDBY_SOCKETS"
cleanup
trap - EXIT
psql -X -q -d postgres -c "DROP DATABASE personalisation_template" >/dev/null
wait_for sql postgres "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'personalisation worker')" 30 || true
if [ $FAILURES -gt 0 ]; then echo "lifecycle: $FAILURES check(s) failed"; exit 1; fi
echo "lifecycle: all checks passed"
