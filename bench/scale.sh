#!/usr/bin/env bash
# Cost as the shop grows (issue 19, item 3).  The same workloads over shops
# of SIZES profiles (default 10^4 and 10^5; BENCH_FULL adds 10^6), each in a
# fresh database of one instance:
#   - the shop: N profiles, each with one session ('v' || id) and 10 page
#     views in the last day (10 N events), its affinity rebuilt from them;
#     20,000 products (200,000 from 10^6 profiles) in 200 categories; the
#     popularity prior; N / 10 orders of 1-8 lines (bench/complement_data.sql)
#     and the complementarity rebuilt from them; the first N / 2 profiles
#     known customers ('c' || id).
#   - page views per second: track_page_view of a random session and product,
#     2 clients, synchronous_commit off (with it on, the WAL flush of every
#     commit hides what the size costs);
#   - rank_products of 100 candidates (one category's first 100 products) for
#     a random session, p50 and p99 (pgbench's per-transaction log), and the
#     p99 again with 1 client, which leaves a core to the rest of the machine;
#   - also_bought of a random product (10 partners), p99;
#   - identify: an anonymous session of the second half logging in as a
#     customer of the first, a real merge of two profiles each with 10
#     events, p99;
#   - run_due: the push round over CARTS abandoned carts (N / 10; with
#     BENCH_FULL, N up to 10^5; bench/journeys_setup.sql), messages per second.
# Latencies: 2 clients driven by one pgbench thread, SECONDS_PER_RUN
# (default 5) seconds on new connections; p50 and p99 leave out each
# connection's first WARM_CALLS (default 1,000) calls, which fill its
# backend's caches and are reported apart (the p99 of the first 200: a
# cold connection).  Targets: rank_products p99
# <= 1 ms at every size, page views at the largest size >= 0.8x the smallest.
set -euo pipefail
source "$(dirname "$0")/common.sh"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
if [ "${BENCH_FULL:-0}" = 1 ]; then SIZES=${SIZES:-10000 100000 1000000}; else SIZES=${SIZES:-10000 100000}; fi
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CLIENTS=2

bench_start
WORK=$BENCH_WORK
sql -c "ALTER SYSTEM SET personalisation.ranking_holdout_percent = 0" -c "SELECT pg_reload_conf()" >/dev/null

# load_shop N PRODUCTS makes the database bench a shop of N profiles and PRODUCTS products.
load_shop() {
    local n=$1 products=$2
    dropdb --if-exists --force bench && createdb bench
    sql -c "CREATE EXTENSION personalisation" -v products="$products" -f "$BENCH_DIR/catalogue.sql"
    sql -v n="$n" -v products="$products" >/dev/null <<'SQL'
INSERT INTO personalisation.profiles (profile_id, created_at, customer_id)
SELECT i, now() - interval '1 day', CASE WHEN i <= :n / 2 THEN 'c' || i END FROM generate_series(1, :n) i;
SELECT setval('personalisation.profile_id_seq', :n);
INSERT INTO personalisation.sessions (session_id, profile_id, started_at, last_seen_at)
SELECT 'v' || i, i, now() - interval '1 day', now() - interval '1 hour' FROM generate_series(1, :n) i;
SELECT personalisation.maintain_partitions(now() - interval '1 day');
INSERT INTO personalisation.events (kind, occurred_at, profile_id, session_id, category_id, product_id)
SELECT 'page_view', now() - interval '1 hour' - ((i * 10 + j) % 1380) * interval '1 minute', i, 'v' || i,
       'c' || (v.product % 200 + 1), 'p' || v.product
  FROM generate_series(1, :n) i, generate_series(0, 9) j,
       LATERAL (SELECT 1 + (i::bigint * (7919 + 104729 * j)) % :products AS product) v;
ANALYZE personalisation.events;
SELECT personalisation.rebuild_affinity();
SELECT personalisation.refresh_popularity();
CREATE TABLE bench_lists (list_id int PRIMARY KEY, candidates text[]);
INSERT INTO bench_lists
SELECT k, (array_agg('p' || i ORDER BY i))[1:100]
  FROM generate_series(1, :products) i, LATERAL (SELECT i % 200 + 1 AS k) c GROUP BY k;
CREATE SEQUENCE bench_logins;
SQL
    sql -v first=1 -v last=$((n / 10)) -f "$BENCH_DIR/complement_data.sql"
    sql -c "SELECT personalisation.rebuild_complementarity()" -c "VACUUM ANALYZE" >/dev/null
}

# latency SCRIPT [TRANSACTIONS] runs SCRIPT (for SECONDS_PER_RUN seconds, or
# TRANSACTIONS per client) on new connections and prints "calls/s p50_ms
# p99_ms cold_p99_ms" from pgbench's per-transaction log: p50 and p99 over
# each connection's calls after its first WARM_CALLS (default 1,000; all of
# them when TRANSACTIONS is given), as a pooled connection serves them, and
# the p99 of each connection's first 200 calls, when its backend's caches
# (the product facts, the category tree, plans) are still filling.
latency() {
    local script=$1 limit="-T $SECONDS_PER_RUN" warm=${WARM_CALLS:-1000}
    [ -n "${2:-}" ] && limit="-t $2" warm=0
    rm -f "$WORK"/log.*
    (cd "$WORK" && "$PG_BINDIR/pgbench" -n -M prepared -c $CLIENTS -j 1 $limit -l --log-prefix=log \
        -f "$script" bench >"$WORK/pgbench.out" 2>&1) || { cat "$WORK/pgbench.out" >&2; exit 1; }
    local tps
    tps=$(awk '/^tps/ { print $3; exit }' "$WORK/pgbench.out")
    cat "$WORK"/log.* | awk -v warm="$warm" '$2 >= warm { print $3 }' | sort -n >"$WORK/warm"
    cat "$WORK"/log.* | awk '$2 < 200 { print $3 }' | sort -n >"$WORK/cold"
    printf '%.0f %s %s %s\n' "$tps" "$(percentile 0.50 <"$WORK/warm")" "$(percentile 0.99 <"$WORK/warm")" \
        "$(percentile 0.99 <"$WORK/cold")"
}

# percentile P prints the P-quantile of the sorted microseconds on stdin, in milliseconds.
percentile() {
    awk -v p="$1" '{ v[NR] = $1 } END { printf "%.3f", (NR ? v[int(NR * p) + (int(NR * p) < NR)] : 0) / 1000 }'
}

declare -A result=()
for n in $SIZES; do
    if [ "$n" -ge 1000000 ]; then products=200000; else products=20000; fi
    if [ "${BENCH_FULL:-0}" = 1 ]; then carts=$((n < 100000 ? n : 100000)); else carts=$((n / 10)); fi
    echo "== $n profiles, $((n * 10)) events, $products products: loading"
    start=$(date +%s)
    load_shop "$n" "$products"
    echo "   loaded in $(($(date +%s) - start)) s"

    cat >"$WORK/track.sql" <<SQL
\set s random(1, $n)
\set p random(1, $products)
SELECT personalisation.track_page_view('v' || :s, NULL, 'p' || :p, now());
SQL
    cat >"$WORK/rank.sql" <<SQL
\set s random(1, $n)
\set l random(1, 200)
SELECT * FROM personalisation.rank_products('v' || :s, (SELECT candidates FROM bench_lists WHERE list_id = :l));
SQL
    cat >"$WORK/also_bought.sql" <<SQL
\set p random(1, $products)
SELECT * FROM personalisation.also_bought('p' || :p, 10);
SQL
    cat >"$WORK/identify.sql" <<SQL
SELECT nextval('bench_logins') AS i \\gset
SELECT personalisation.identify('v' || ($n / 2 + :i), 'c' || :i);
SQL
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r track_tps _ _ _ < <(PGOPTIONS="-c synchronous_commit=off" latency "$WORK/track.sql")
    read -r _ rank_p50 rank_p99 rank_cold < <(latency "$WORK/rank.sql")
    read -r _ _ rank_one _ < <(CLIENTS=1 latency "$WORK/rank.sql")
    read -r _ _ also_p99 _ < <(latency "$WORK/also_bought.sql")
    logins=$((n / 2 / CLIENTS < 2000 ? n / 2 / CLIENTS : 2000))
    read -r _ _ identify_p99 _ < <(latency "$WORK/identify.sql" "$logins")

    T0=$(sql -c "SELECT date_trunc('minute', now() - interval '4 days')")
    sql -v carts="$carts" -v t0="$T0" -f "$BENCH_DIR/journeys_setup.sql" >/dev/null
    before=$(sql -c "SELECT count(*) FROM personalisation.outbox")
    secs=$(seconds "SELECT personalisation.run_due(timestamptz '$T0' + interval '30 minutes')")
    written=$(($(sql -c "SELECT count(*) FROM personalisation.outbox") - before))
    run_due=$(awk -v m="$written" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')

    result[$n]="$track_tps $rank_p50 $rank_p99 $rank_cold $rank_one $also_p99 $identify_p99 $carts $run_due"
    printf '   page views %s/s, rank_products p50 %s ms p99 %s ms (first 200 calls of a connection: p99 %s ms; 1 client: p99 %s ms), also_bought p99 %s ms, identify p99 %s ms, run_due %s messages/s over %s carts; load average %s at the start\n' \
        "$track_tps" "$rank_p50" "$rank_p99" "$rank_cold" "$rank_one" "$also_p99" "$identify_p99" "$run_due" "$carts" "$load"
done

echo "== cost as the shop grows ($CLIENTS clients, ${SECONDS_PER_RUN}s per workload)"
printf '%10s %12s %10s %10s %10s %10s %10s %12s %8s %12s\n' profiles 'views/s' 'rank p50' 'rank p99' 'cold p99' '1-client' 'also p99' \
    'identify p99' carts 'run_due/s'
worst_rank=0 first='' last=''
for n in $SIZES; do
    read -r track_tps rank_p50 rank_p99 rank_cold rank_one also_p99 identify_p99 carts run_due <<<"${result[$n]}"
    printf '%10s %12s %10s %10s %10s %10s %10s %12s %8s %12s\n' "$n" "$track_tps" "$rank_p50" "$rank_p99" "$rank_cold" "$rank_one" \
        "$also_p99" "$identify_p99" "$carts" "$run_due"
    worst_rank=$(awk -v a="$rank_p99" -v b="$worst_rank" 'BEGIN { print (a > b ? a : b) }')
    [ -z "$first" ] && first=$track_tps
    last=$track_tps
done
printf 'rank_products p99: at most %s ms over the sizes (target <= 1 ms); page views at the largest size: %sx the smallest (target >= 0.8x)\n' \
    "$worst_rank" "$(ratio "$last" "$first")"
