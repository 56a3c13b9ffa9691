#!/usr/bin/env bash
# test/locking.sh: the lock order under load.  Four pgbench clients run
# logins, page views, cart additions and removals, email consent changes and
# purchases on sessions of the same three customers, LOCKING_CALLS (default
# 5000) calls each, so that every kind of call meets a concurrent merge into
# the same profile.  Each call also records its kind in the ledger
# locking_calls in the same statement, so committed calls are counted on the
# server.  Then it checks: no failed transaction, no deadlock
# (pg_stat_database.deadlocks unchanged, none in the server log), every call
# committed, every committed call recorded its event, order or consent
# change, and nothing was left behind on a merged profile
# (test/locking/check.sql).
#
# Run by the test command in its running instance, with PGHOST, PGPORT,
# PGUSER and CLUSTER_DIR set.  Exits non-zero when a check fails.
set -euo pipefail
TEST_DIR=$(cd "$(dirname "$0")" && pwd)
PG_BINDIR=$(pg_config --bindir)
LOCKING_CALLS=${LOCKING_CALLS:-5000}
DB=personalisation_locking
LOG="$CLUSTER_DIR/server.log"
OUT="$CLUSTER_DIR/locking.out"

sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

echo "== locking: 4 clients on the sessions of 3 customers, ${LOCKING_CALLS} calls each"
sql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
sql -d "$DB" -c "CREATE EXTENSION personalisation" -f "$TEST_DIR/locking/setup.sql" >/dev/null
deadlocks_before=$(sql -d "$DB" -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
log_offset=$(stat -c %s "$LOG")

status=0
"$PG_BINDIR/pgbench" -n -c 4 -j 4 -t "$LOCKING_CALLS" -D customers=3 -D sessions=300 \
    -f "$TEST_DIR/locking/identify.sql@3" -f "$TEST_DIR/locking/page_view.sql@4" \
    -f "$TEST_DIR/locking/cart_add.sql@3" -f "$TEST_DIR/locking/cart_remove.sql@1" \
    -f "$TEST_DIR/locking/consent.sql@1" -f "$TEST_DIR/locking/purchase.sql@1" \
    "$DB" >"$OUT" 2>&1 || status=$?

failed=$(awk '/^number of failed transactions/ { print $5 }' "$OUT")
echo "committed calls: $(sql -d "$DB" -c "SELECT string_agg(kind || ' ' || n, '  ' ORDER BY kind) FROM (SELECT kind, count(*) AS n FROM locking_calls GROUP BY kind) c")"

failures=0
report() { if [ "$2" = ok ]; then echo "ok - $1"; else echo "not ok - $1"; failures=$((failures + 1)); fi; }
if [ "$status" -eq 0 ] && [ "${failed:-x}" = 0 ]; then
    report "no failed or aborted transaction (pgbench)" ok
else
    report "no failed or aborted transaction (pgbench: exit $status, ${failed:-?} failed)" no
    grep -m 5 -E "error|ERROR|abort" "$OUT" || true
fi
log_deadlocks=$(tail -c +$((log_offset + 1)) "$LOG" | grep -c "deadlock detected" || true)
if [ "$log_deadlocks" = 0 ]; then report "no deadlock in the server log" ok; else
    report "no deadlock in the server log ($log_deadlocks)" no
    tail -c +$((log_offset + 1)) "$LOG" | grep -m 3 -A 3 "deadlock detected" || true
fi
# the checks' output is read whole, so that an error in check.sql fails the test
checks=$(sql -d "$DB" -v deadlocks_before="$deadlocks_before" -v calls="$((4 * LOCKING_CALLS))" \
             -f "$TEST_DIR/locking/check.sql" 2>&1) || report "the checks ran (check.sql failed)" no
while IFS= read -r line; do
    echo "$line"
    case "$line" in "not ok - "*) failures=$((failures + 1)) ;; esac
done <<<"$checks"

# Two logins swapping two sessions between two customers lock both profile
# rows; in id order they cannot deadlock (the 0.1.0 order: 16 deadlocks in
# 4,000 such logins).
echo "== locking: 2 clients moving 2 sessions between 2 customers, ${LOCKING_CALLS} logins each"
sql -d "$DB" -c "SELECT personalisation.identify('sw-0', 'sw-a'), personalisation.identify('sw-1', 'sw-b')" >/dev/null
deadlocks_before=$(sql -d "$DB" -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
status=0
"$PG_BINDIR/pgbench" -n -c 2 -j 2 -t "$((LOCKING_CALLS / 2))" -f "$TEST_DIR/locking/swap.sql" "$DB" >"$OUT" 2>&1 || status=$?
failed=$(awk '/^number of failed transactions/ { print $5 }' "$OUT")
if [ "$status" -eq 0 ] && [ "${failed:-x}" = 0 ]; then
    report "no failed swapping login (pgbench)" ok
else
    report "no failed swapping login (pgbench: exit $status, ${failed:-?} failed)" no
    grep -m 5 -E "error|ERROR|abort" "$OUT" || true
fi
swap=$(sql -d "$DB" -c "
    SELECT (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()) - $deadlocks_before,
           count(*) FILTER (WHERE s.session_id = 'sw-0' AND p.customer_id = 'sw-b'
                             OR s.session_id = 'sw-1' AND p.customer_id = 'sw-a')
      FROM personalisation.sessions s JOIN personalisation.profiles p USING (profile_id)
     WHERE s.session_id IN ('sw-0', 'sw-1')")
if [ "${swap%%|*}" = 0 ]; then report "no deadlock between swapping logins" ok; else
    report "no deadlock between swapping logins (${swap%%|*} deadlocks)" no; fi
if [ "${swap#*|}" = 2 ]; then report "each session ends on the customer of its last login" ok; else
    report "each session ends on the customer of its last login (${swap#*|} of 2)" no; fi

sql -d postgres -c "DROP DATABASE $DB" >/dev/null
echo "locking: $failures check(s) failed"
[ "$failures" -eq 0 ]
