#!/usr/bin/env bash
# recommend_for_cart latency on the evaluation's dense generated shop (4,000
# products in 40 categories, 30,000 orders; recommend_eval_data.sql), carts of
# up to 3 products of 200 customers, one prepared pgbench client for
# LATENCY_SECONDS: p50 and p99 from pgbench's per-transaction log, client round
# trip included.  Baseline, measured in the same run: the same statement
# picking the session without calling recommend_for_cart.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/common.sh"
BENCH_PRODUCTS=0
BENCH_PORT=${BENCH_PORT:-$(free_port 56500)}
LATENCY_SECONDS=${LATENCY_SECONDS:-10}

bench_start
sql -c "CREATE SCHEMA eval" -c "CREATE SCHEMA evalres" \
    -c "CREATE TABLE evalres.results (level text, method text, case_id bigint, targets int, recommended text[], ranks int[])" \
    -c "CREATE TABLE evalres.catalogue (level text, products bigint)" \
    -c "CREATE TABLE eval.lines (order_id text, customer_id text, occurred_at timestamptz, product_id text, category_id text)"
sql -v products=4000 -v customers=3000 -v orders=30000 -v seed=0.21 -f "$BENCH_DIR/recommend_eval_data.sql" >/dev/null
sql -v level=dense -v test_share=0.2 -v max_cases=10 -f "$BENCH_DIR/recommend_eval.sql" >/dev/null
sql -c "INSERT INTO personalisation.cart_lines (profile_id, product_id, quantity, session_id, added_at, updated_at)
        SELECT c.profile_id, l.product_id, 1, 'eval-' || c.customer_id, now(), now()
          FROM (SELECT * FROM eval.customers ORDER BY customer_id LIMIT 200) c
          CROSS JOIN LATERAL (SELECT DISTINCT product_id FROM eval.lines l
                               WHERE l.customer_id = c.customer_id LIMIT 3) l"
SESSION="(SELECT 'eval-' || customer_id FROM eval.customers ORDER BY customer_id OFFSET :c - 1 LIMIT 1)"
printf '\\set c random(1, 200)\nSELECT count(*) FROM %s x;\n' "$SESSION" >"$BENCH_WORK/baseline.sql"
printf '\\set c random(1, 200)\nSELECT count(*) FROM personalisation.recommend_for_cart(%s, 10);\n' "$SESSION" >"$BENCH_WORK/recommend.sql"
for script in baseline recommend; do
    "$PG_BINDIR/pgbench" -n -M prepared -c 1 -T "$LATENCY_SECONDS" -f "$BENCH_WORK/$script.sql" \
        -l --log-prefix="$BENCH_WORK/$script" bench >/dev/null 2>&1
    cat "$BENCH_WORK/$script".[0-9]* | awk '{ print $3 / 1000 }' | sort -g |
        awk -v name="$script" '{ v[NR] = $1 } END { printf "%-10s %6d calls  p50 %.3f ms  p99 %.3f ms\n", name, NR, v[int(NR * 0.5)], v[int(NR * 0.99)] }'
done
