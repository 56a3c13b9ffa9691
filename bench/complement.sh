#!/usr/bin/env bash
# Complementarity benchmarks, each against a baseline measured in the same run
# on the throw-away instance of common.sh (about five minutes on two cores):
#
#  1. rebuild: rebuild_complementarity() over ~1,000,000 order lines against
#     the plain-SQL rebuild of the same tables (TRUNCATE, then INSERT ...
#     SELECT with the self-join GROUP BY that counts pairs); both outputs are
#     compared row for row.  Target: >= 3x.
#  2. ingest: track_purchase with complementarity maintenance against the same
#     purchases with counting paused (pause_complementarity()), baskets of 1-8
#     lines, 2 pgbench clients, three rounds each, alternated.  Target: >= 0.5x.
#  3. also_bought: latency with 20,000 products and 1,000,000 orders, p50 and
#     p99 from pgbench's per-transaction log (one client, prepared, client
#     round trip included), for products drawn uniformly and drawn towards the
#     best sellers, on a server whose shared_buffers hold the count tables
#     (1GB, prewarmed, checkpointed after the bulk load); baseline: the same answer computed by plain SQL from
#     the order tables, checked equal on 20 products.  Target: p99 <= 1 ms.
set -euo pipefail
source "$(dirname "$0")/common.sh"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
INGEST_SECONDS=${INGEST_SECONDS:-10}
LATENCY_SECONDS=${LATENCY_SECONDS:-15}

bench_start
psql -q -X -d bench -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "SELECT pg_reload_conf()" >/dev/null

# history FIRST LAST writes orders FIRST .. LAST straight to the order tables.
history() {
    sql -v first="$1" -v last="$2" -f "$BENCH_DIR/complement_data.sql"
}

# latency SCRIPT prints "p50 p99" in milliseconds for one prepared pgbench client.
latency() {
    local logdir
    logdir=$(mktemp -d "$BENCH_WORK/log.XXXXXX")
    (cd "$logdir" && "$PG_BINDIR/pgbench" -n -M prepared -c 1 -T "$LATENCY_SECONDS" -l \
        --random-seed=7 -f "$BENCH_DIR/$1" bench >/dev/null 2>&1)
    awk '{ print $3 }' "$logdir"/pgbench_log.* | sort -n | awk '
        { v[NR] = $1 }
        END { printf "%.3f %.3f\n", v[int(NR * 0.50 + 0.5)] / 1000, v[int(NR * 0.99 + 0.5)] / 1000 }'
}

sql -c "UPDATE personalisation.products SET in_stock = false WHERE substr(product_id, 2)::int % 50 = 7"

echo "== 1. rebuild over ~1,000,000 order lines"
history 1 225000
sql -c "CREATE TABLE bench_pairs (LIKE personalisation.complement_pairs INCLUDING ALL)" \
    -c "CREATE TABLE bench_products (LIKE personalisation.complement_products INCLUDING ALL)" \
    -c "CREATE TABLE bench_totals (LIKE personalisation.complement_totals INCLUDING ALL)"
sql -c "CHECKPOINT"
baseline=$(seconds "\\i $BENCH_DIR/complement_rebuild_baseline.sql")
sql -c "CHECKPOINT"
rebuild=$(seconds "SELECT personalisation.rebuild_complementarity()")
query=$(seconds "SELECT count(*) FROM (SELECT x.product_id, y.product_id, count(*)
    FROM personalisation.orders o
    JOIN personalisation.order_lines x ON x.order_id = o.order_id
    JOIN personalisation.order_lines y ON y.order_id = o.order_id
                                      AND x.product_id COLLATE \"C\" < y.product_id COLLATE \"C\"
   WHERE o.refunded_at IS NULL GROUP BY 1, 2) AS pairs")
differences=$(sql -c "SELECT
    (SELECT count(*) FROM (SELECT * FROM bench_pairs EXCEPT ALL SELECT * FROM personalisation.complement_pairs) d)
  + (SELECT count(*) FROM (SELECT * FROM personalisation.complement_pairs EXCEPT ALL SELECT * FROM bench_pairs) d)
  + (SELECT count(*) FROM (SELECT * FROM bench_products EXCEPT ALL SELECT * FROM personalisation.complement_products) d)
  + (SELECT count(*) FROM (SELECT * FROM personalisation.complement_products EXCEPT ALL SELECT * FROM bench_products) d)
  + (SELECT count(*) FROM (SELECT * FROM bench_totals EXCEPT ALL SELECT * FROM personalisation.complement_totals) d)
  + (SELECT count(*) FROM (SELECT * FROM personalisation.complement_totals EXCEPT ALL SELECT * FROM bench_totals) d)")
printf '%s order lines, %s pairs\n' "$(sql -c "SELECT count(*) FROM personalisation.order_lines")" \
    "$(sql -c "SELECT count(*) FROM personalisation.complement_pairs")"
echo "plain-SQL rebuild (self-join GROUP BY into the same tables): $baseline s"
echo "rebuild_complementarity():                                  $rebuild s"
echo "(for reference, the self-join GROUP BY query alone, no writes: $query s)"
echo "rows that differ between the two outputs: $differences"
echo "rebuild speed-up: $(ratio "$baseline" "$rebuild")x (target >= 3x)"
sql -c "DROP TABLE bench_pairs, bench_products, bench_totals" \
    -c "SET client_min_messages = warning" -c "TRUNCATE personalisation.orders CASCADE"

echo "== 2. purchase ingest, baskets of 1-8 lines, 2 clients, ${INGEST_SECONDS}s per run"
sql -c "CREATE SEQUENCE bench_order_ids"
paused=()
counted=()
for round in 1 2 3; do
    sql -c "SELECT personalisation.pause_complementarity()" >/dev/null
    paused+=("$(pgbench_tps "$BENCH_DIR/complement_purchase.sql" "$INGEST_SECONDS" 2)")
    sql -c "SELECT personalisation.rebuild_complementarity()" >/dev/null
    counted+=("$(pgbench_tps "$BENCH_DIR/complement_purchase.sql" "$INGEST_SECONDS" 2)")
done
echo "without complementarity (counting paused): ${paused[*]} tps"
echo "with complementarity maintenance:          ${counted[*]} tps"
echo "ingest throughput ratio: $(ratio "$(echo "${counted[*]}" | awk '{ print $1 + $2 + $3 }')" \
    "$(echo "${paused[*]}" | awk '{ print $1 + $2 + $3 }')")x (target >= 0.5x)"
sql -c "SET client_min_messages = warning" -c "TRUNCATE personalisation.orders CASCADE"

echo "== 3. also_bought latency, 20,000 products, 1,000,000 orders"
history 1 1000000
load=$(seconds "SELECT personalisation.rebuild_complementarity()")
sql -c "VACUUM ANALYZE personalisation.complement_pairs" -c "VACUUM ANALYZE personalisation.complement_products"
sql -c "ALTER SYSTEM SET shared_buffers = '1GB'"
as_server "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
sql -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
    -c "SELECT sum(pg_prewarm(oid)) FROM pg_class
         WHERE relnamespace = 'personalisation'::regnamespace AND relkind IN ('r', 'i')
           AND (relname LIKE 'complement%' OR relname LIKE 'products%')" >/dev/null
sql -c "CHECKPOINT"
printf '%s order lines, %s pairs (rebuilt in %s s)\n' \
    "$(sql -c "SELECT count(*) FROM personalisation.order_lines")" \
    "$(sql -c "SELECT count(*) FROM personalisation.complement_pairs")" "$load"
sql <<'SQL'
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
mismatches=$(sql -c "SELECT count(*) FROM (SELECT 'p' || (1 + i * 397 % 20000) AS pid
                                             FROM generate_series(1, 20) AS i) AS s,
    LATERAL ((SELECT * FROM personalisation.also_bought(s.pid, 10) EXCEPT ALL SELECT * FROM bench_also_bought(s.pid, 10))
             UNION ALL
             (SELECT * FROM bench_also_bought(s.pid, 10) EXCEPT ALL SELECT * FROM personalisation.also_bought(s.pid, 10))) AS d")
read -r ab_p50 ab_p99 < <(latency complement_also_bought.sql)
read -r hot_p50 hot_p99 < <(latency complement_also_bought_popular.sql)
read -r sql_p50 sql_p99 < <(latency complement_also_bought_sql.sql)
echo "rows that differ from the plain-SQL answer over 20 products: $mismatches"
echo "also_bought, uniform products:   p50 $ab_p50 ms, p99 $ab_p99 ms"
echo "also_bought, best-seller skew:   p50 $hot_p50 ms, p99 $hot_p99 ms"
echo "plain SQL, uniform products:     p50 $sql_p50 ms, p99 $sql_p99 ms"
worst=$(printf '%s\n%s\n' "$ab_p99" "$hot_p99" | sort -n | tail -1)
echo "also_bought p99 (the worse of the two): $worst ms (target <= 1 ms);" \
     "$(ratio "$sql_p99" "$ab_p99")x faster than plain SQL at p99"
