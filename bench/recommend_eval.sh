#!/usr/bin/env bash
# Offline evaluation of the recommendations (docs/recommendations.md#evaluation):
# for each history, the older orders become the extension's history and the
# newer ones (TEST_SHARE of them, by time) are replayed as test cases; the
# table gives hit@5, hit@10, nDCG@10 and answered with 95% intervals, and
# catalogue coverage, for recommend_for_cart, also_bought, the post-purchase
# cross-sell and popularity, side by side (recommend_eval.sql says how).
#
# By default it runs on a generated shop (recommend_eval_data.sql) at three
# sparsity levels, LEVELS="name:orders ..." over the same 4,000 products and
# 3,000 customers; a few minutes on two cores.  A shop evaluates on its own
# orders with ORDERS_CSV=path: a CSV file with a header and the columns
# order_id, customer_id, occurred_at, product_id[, category_id], one row per
# order line.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/common.sh"
BENCH_PRODUCTS=0
BENCH_PORT=${BENCH_PORT:-$(free_port 56100)}
LEVELS=${LEVELS:-"sparse:2000 medium:8000 dense:30000"}
EVAL_PRODUCTS=${EVAL_PRODUCTS:-4000}
EVAL_CUSTOMERS=${EVAL_CUSTOMERS:-3000}
TEST_SHARE=${TEST_SHARE:-0.2}
MAX_CASES=${MAX_CASES:-1500}
SEED=${SEED:-0.21}

bench_start
sql -c "CREATE SCHEMA evalres" \
    -c "CREATE TABLE evalres.results (level text, method text, case_id bigint, targets int, recommended text[], ranks int[])" \
    -c "CREATE TABLE evalres.catalogue (level text, products bigint)"

# fresh_shop empties the extension's data and creates eval.lines for one history.
fresh_shop() {
    sql -c "DROP EXTENSION personalisation CASCADE" -c "CREATE EXTENSION personalisation" \
        -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS eval CASCADE" -c "CREATE SCHEMA eval" \
        -c "CREATE TABLE eval.lines (order_id text, customer_id text, occurred_at timestamptz, product_id text, category_id text)"
}

# evaluate LEVEL runs every method on the history in eval.lines.
evaluate() {
    echo "== $1: $(sql -c "SELECT count(DISTINCT order_id) || ' orders, ' || count(*) || ' lines, ' || count(DISTINCT product_id) || ' products' FROM eval.lines")"
    sql -v level="$1" -v test_share="$TEST_SHARE" -v max_cases="$MAX_CASES" -f "$BENCH_DIR/recommend_eval.sql" >/dev/null
}

if [ -n "${ORDERS_CSV:-}" ]; then
    fresh_shop
    header=$(head -1 "$ORDERS_CSV" | tr -d '\r')
    sql -c "\\copy eval.lines ($header) FROM '$ORDERS_CSV' WITH (FORMAT csv, HEADER true)" \
        -c "UPDATE eval.lines SET category_id = 'uncategorised' WHERE category_id IS NULL"
    evaluate shop
else
    for level in $LEVELS; do
        fresh_shop
        sql -v products="$EVAL_PRODUCTS" -v customers="$EVAL_CUSTOMERS" -v orders="${level#*:}" -v seed="$SEED" \
            -f "$BENCH_DIR/recommend_eval_data.sql" >/dev/null
        evaluate "${level%%:*}"
    done
fi
psql -X -q -d bench -P pager=off -f "$BENCH_DIR/recommend_eval_report.sql"
