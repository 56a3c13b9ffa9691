#!/usr/bin/env bash
# Affinity storage under a high update rate: ten passes of page views over
# the same 20,000 visitors (each views the same product every pass, so the
# live data stays the same size), autovacuum on with its defaults, one
# event per transaction from 2 pgbench clients.  Prints the affinity
# table's and its index's size after every pass; target: after pass ten
# within 2x of after pass one.
set -euo pipefail
source "$(dirname "$0")/common.sh"

VISITORS=${VISITORS:-20000}
PASSES=10
CLIENTS=2

bench_start
WORK=$BENCH_WORK
psql -qX -d bench -v ON_ERROR_STOP=1 -c 'CREATE SEQUENCE next_visitor'

# one pass: every visitor once (the sequence hands them out in turn)
cat >"$WORK/pass.sql" <<SQL
SELECT personalisation.track_page_view('b' || v, NULL, 'p' || (v % 20000 + 1))
  FROM (SELECT nextval('next_visitor') % $VISITORS + 1 AS v) s;
SQL

sizes() {
    psql -qXAt -d bench -c "SELECT pg_relation_size('personalisation.affinity'), pg_indexes_size('personalisation.affinity')"
}

echo "== $PASSES passes of one page view by each of $VISITORS visitors (2 affinity rows each)"
printf '%-6s %12s %12s %12s\n' pass table_kB index_kB total_kB
for pass in $(seq $PASSES); do
    "$PG_BINDIR/pgbench" -n -M prepared -c $CLIENTS -j $CLIENTS -t $((VISITORS / CLIENTS)) -f "$WORK/pass.sql" bench >/dev/null
    IFS='|' read -r table index < <(sizes)
    [ "$pass" = 1 ] && first=$((table + index))
    printf '%-6s %12d %12d %12d\n' "$pass" $((table / 1024)) $((index / 1024)) $(((table + index) / 1024))
done
last=$((table + index))
psql -qXAt -d bench -c "SELECT 'updates: ' || n_tup_upd || ', of which HOT: ' || n_tup_hot_upd || ' (' || round(100.0 * n_tup_hot_upd / greatest(n_tup_upd, 1), 1) || '%), autovacuum runs: ' || autovacuum_count FROM pg_stat_user_tables WHERE relid = 'personalisation.affinity'::regclass"
printf 'table+index after pass %d / after pass 1: %sx (target <= 2x)\n' $PASSES "$(ratio "$last" "$first")"
