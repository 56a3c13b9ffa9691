#!/usr/bin/env bash
# Complementarity benchmarks, each against a baseline measured in the same run
# on a throw-away instance (about four minutes on two cores):
#
#  1. rebuild: rebuild_complementarity() over ~1,000,000 order lines against
#     the plain-SQL rebuild of the same tables (TRUNCATE, then INSERT ...
#     SELECT with the self-join GROUP BY that counts pairs); both outputs are
#     compared row for row.  Target: >= 3x.
#  2. ingest: track_purchase with complementarity maintenance against the same
#     purchases with counting paused (pause_complementarity()), baskets of 1-8
#     lines, 2 pgbench clients.  Target: >= 0.5x.
#  3. also_bought: latency with 20,000 products and 1,000,000 orders, p99
#     from pgbench's per-transaction log (client round trip included), for
#     products drawn uniformly and drawn towards the best sellers; baseline:
#     the same answer computed by plain SQL from the order tables.  Target:
#     p99 <= 1 ms.
set -euo pipefail
source "$(dirname "$0")/../test/cluster.sh"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
INGEST_SECONDS=${INGEST_SECONDS:-15}
LATENCY_SECONDS=${LATENCY_SECONDS:-15}

install_dependencies
build_and_install

WORK=$(mktemp -d /tmp/personalisation-bench.XXXXXX)
chmod 755 "$WORK"
start_cluster "$WORK/cluster" "$(free_port 56432)" bench
trap 'stop_cluster; rm -rf "$WORK"' EXIT
psql -q -X -d postgres -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "SELECT pg_reload_conf()" >/dev/null

# sql DB SQL... runs statements quietly, stopping at the first error.
sql() {
    local db=$1
    shift
    psql -q -X -At -v ON_ERROR_STOP=1 -d "$db" "$@"
}

# seconds DB SQL prints how long the statement takes, in seconds.
seconds() {
    local start end
    start=$(date +%s.%N)
    sql "$1" -c "$2" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

# ratio A B prints A / B with two decimals.
ratio() {
    printf '%.2f' "$(echo "$1 / $2" | bc -l)"
}

# new_database NAME creates a database with the extension and 20,000 products.
new_database() {
    createdb "$1"
    sql "$1" -c "CREATE EXTENSION personalisation"
    sql "$1" -v first=1 -v last=0 -f "$BENCH_DIR/complement_data.sql"
}

# latency DB SCRIPT SECONDS runs one pgbench client and prints "p50 p99" in ms.
latency() {
    local logdir
    logdir=$(mktemp -d "$WORK/log.XXXXXX")
    chmod 777 "$logdir"
    (cd "$logdir" && pgbench -n -c 1 -T "$3" -l --random-seed=7 -f "$BENCH_DIR/$2" "$1" >/dev/null)
    cat "$logdir"/pgbench_log.* | awk '{print $3}' | sort -n | awk '
        { v[NR] = $1 }
        END { printf "%.3f %.3f\n", v[int(NR * 0.50 + 0.5)] / 1000, v[int(NR * 0.99 + 0.5)] / 1000 }'
}

# tps DB SCRIPT SECONDS runs two pgbench clients and prints transactions per second.
tps() {
    pgbench -n -c 2 -j 2 -T "$3" -f "$BENCH_DIR/$2" "$1" | awk '/^tps/ { printf "%.1f", $3 }'
}

echo "== 1. rebuild over ~1,000,000 order lines"
new_database rebuild
sql rebuild -v first=1 -v last=225000 -f "$BENCH_DIR/complement_data.sql"
sql rebuild -c "CREATE TABLE bench_pairs (LIKE personalisation.complement_pairs INCLUDING ALL)" \
            -c "CREATE TABLE bench_products (LIKE personalisation.complement_products INCLUDING ALL)" \
            -c "CREATE TABLE bench_totals (LIKE personalisation.complement_totals INCLUDING ALL)"
lines=$(sql rebuild -c "SELECT count(*) FROM personalisation.order_lines")
sql rebuild -c "CHECKPOINT"
baseline=$(seconds rebuild "\\i $BENCH_DIR/complement_rebuild_baseline.sql")
sql rebuild -c "CHECKPOINT"
rebuild=$(seconds rebuild "SELECT personalisation.rebuild_complementarity()")
query=$(seconds rebuild "SELECT count(*) FROM (SELECT x.product_id, y.product_id, count(*)
    FROM personalisation.orders o
    JOIN personalisation.order_lines x ON x.order_id = o.order_id
    JOIN personalisation.order_lines y ON y.order_id = o.order_id
                                      AND x.product_id COLLATE \"C\" < y.product_id COLLATE \"C\"
   WHERE o.refunded_at IS NULL GROUP BY 1, 2) AS pairs")
differences=$(sql rebuild -c "SELECT
    (SELECT count(*) FROM (SELECT * FROM bench_pairs EXCEPT ALL SELECT * FROM personalisation.complement_pairs) d)
  + (SELECT count(*) FROM (SELECT * FROM personalisation.complement_pairs EXCEPT ALL SELECT * FROM bench_pairs) d)
  + (SELECT count(*) FROM (SELECT * FROM bench_products EXCEPT ALL SELECT * FROM personalisation.complement_products) d)
  + (SELECT count(*) FROM (SELECT * FROM personalisation.complement_products EXCEPT ALL SELECT * FROM bench_products) d)
  + (SELECT count(*) FROM (SELECT * FROM bench_totals EXCEPT ALL SELECT * FROM personalisation.complement_totals) d)")
pairs=$(sql rebuild -c "SELECT count(*) FROM personalisation.complement_pairs")
printf '%s order lines, %s pairs\n' "$lines" "$pairs"
printf 'plain-SQL rebuild (self-join GROUP BY into the same tables): %.2f s\n' "$baseline"
printf 'rebuild_complementarity():                                  %.2f s\n' "$rebuild"
printf '(for reference, the self-join GROUP BY query alone, no writes: %.2f s)\n' "$query"
printf 'rows that differ between the two outputs: %s\n' "$differences"
printf 'rebuild speed-up: %sx (target >= 3x)\n' "$(ratio "$baseline" "$rebuild")"
dropdb rebuild

echo "== 2. purchase ingest, baskets of 1-8 lines, 2 clients, ${INGEST_SECONDS}s per run"
new_database ingest
sql ingest -c "CREATE SEQUENCE bench_order_ids"
sql ingest -c "SELECT personalisation.pause_complementarity()"
paused_1=$(tps ingest complement_purchase.sql "$INGEST_SECONDS")
sql ingest -c "SELECT personalisation.rebuild_complementarity()" >/dev/null
counted_1=$(tps ingest complement_purchase.sql "$INGEST_SECONDS")
sql ingest -c "SELECT personalisation.pause_complementarity()"
paused_2=$(tps ingest complement_purchase.sql "$INGEST_SECONDS")
sql ingest -c "SELECT personalisation.rebuild_complementarity()" >/dev/null
counted_2=$(tps ingest complement_purchase.sql "$INGEST_SECONDS")
paused=$(echo "($paused_1 + $paused_2) / 2" | bc -l)
counted=$(echo "($counted_1 + $counted_2) / 2" | bc -l)
printf 'without complementarity (counting paused): %s, %s tps\n' "$paused_1" "$paused_2"
printf 'with complementarity maintenance:          %s, %s tps\n' "$counted_1" "$counted_2"
printf 'ingest throughput ratio: %sx (target >= 0.5x)\n' "$(ratio "$counted" "$paused")"
dropdb ingest

echo "== 3. also_bought latency, 20,000 products, 1,000,000 orders"
new_database serve
sql serve -v first=1 -v last=1000000 -f "$BENCH_DIR/complement_data.sql"
load=$(seconds serve "SELECT personalisation.rebuild_complementarity()")
sql serve -c "VACUUM ANALYZE personalisation.complement_pairs" -c "VACUUM ANALYZE personalisation.complement_products"
printf '%s order lines, %s pairs (rebuilt in %.1f s)\n' \
    "$(sql serve -c "SELECT count(*) FROM personalisation.order_lines")" \
    "$(sql serve -c "SELECT count(*) FROM personalisation.complement_pairs")" "$load"
sql serve <<'SQL'
CREATE FUNCTION bench_also_bought(pid text, n int)
RETURNS TABLE (product_id text, co_orders bigint, confidence float8, lift float8, jaccard float8)
LANGUAGE sql STABLE AS $$
    WITH co AS (
        SELECT y.product_id, count(*) AS co_orders
          FROM personalisation.order_lines x
          JOIN personalisation.orders o ON o.order_id = x.order_id AND o.refunded_at IS NULL
          JOIN personalisation.order_lines y ON y.order_id = x.order_id AND y.product_id <> x.product_id
          JOIN personalisation.products p ON p.product_id = y.product_id AND p.in_stock
         WHERE x.product_id = pid
         GROUP BY 1
        HAVING count(*) >= current_setting('personalisation.complement_min_co_orders')::int),
    per_product AS (
        SELECT l.product_id, count(*) AS orders
          FROM personalisation.order_lines l
          JOIN personalisation.orders o ON o.order_id = l.order_id AND o.refunded_at IS NULL
         WHERE l.product_id = pid OR l.product_id IN (SELECT product_id FROM co)
         GROUP BY 1),
    total AS (SELECT count(*) AS orders FROM personalisation.orders WHERE refunded_at IS NULL),
    measured AS (
        SELECT co.product_id, co.co_orders,
               co.co_orders::float8 / px.orders AS confidence,
               (co.co_orders::float8 / px.orders) / (py.orders::float8 / total.orders) AS lift,
               co.co_orders::float8 / (px.orders + py.orders - co.co_orders) AS jaccard
          FROM co
          JOIN per_product py ON py.product_id = co.product_id
          JOIN per_product px ON px.product_id = pid
         CROSS JOIN total)
    SELECT * FROM measured ORDER BY co_orders DESC, lift DESC, product_id COLLATE "C" LIMIT n
$$;
SQL
mismatches=$(sql serve -c "SELECT count(*) FROM (SELECT 'p' || lpad((i * 397 % 20000)::text, 5, '0') AS pid
                                                  FROM generate_series(1, 40) AS i) AS s,
    LATERAL ((SELECT * FROM personalisation.also_bought(s.pid, 10) EXCEPT ALL SELECT * FROM bench_also_bought(s.pid, 10))
             UNION ALL
             (SELECT * FROM bench_also_bought(s.pid, 10) EXCEPT ALL SELECT * FROM personalisation.also_bought(s.pid, 10))) AS d")
read -r ab_p50 ab_p99 < <(latency serve complement_also_bought.sql "$LATENCY_SECONDS")
read -r hot_p50 hot_p99 < <(latency serve complement_also_bought_popular.sql "$LATENCY_SECONDS")
read -r sql_p50 sql_p99 < <(latency serve complement_also_bought_sql.sql "$LATENCY_SECONDS")
printf 'rows that differ from the plain-SQL answer over 40 products: %s\n' "$mismatches"
printf 'also_bought, uniform products:     p50 %s ms, p99 %s ms\n' "$ab_p50" "$ab_p99"
printf 'also_bought, best-seller skew:     p50 %s ms, p99 %s ms\n' "$hot_p50" "$hot_p99"
printf 'plain SQL, uniform products:       p50 %s ms, p99 %s ms\n' "$sql_p50" "$sql_p99"
printf 'also_bought p99 (worse of the two): %s ms (target <= 1 ms); %sx faster than plain SQL at p99\n' \
    "$(printf '%s\n%s\n' "$ab_p99" "$hot_p99" | sort -n | tail -1)" "$(ratio "$sql_p99" "$ab_p99")"
