#!/usr/bin/env bash
# Ranking latency: rank_products of 100 candidates (a category page) for a
# random one of 1,000,000 visitors with affinity, 20,000 products (a
# category page: its 100 products in the shop's order), 2
# concurrent clients, against the obvious hand-written SQL over a normalised
# affinity table (profile, dimension, key) that joins it and sorts, in the
# same run.  Target: p99 <= 2 ms and no slower than the SQL.
set -euo pipefail
source "$(dirname "$0")/common.sh"

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-5}
CLIENTS=2

bench_start
WORK=$BENCH_WORK
echo "== loading 1,000,000 visitors' affinity"
psql -qX -d bench -v ON_ERROR_STOP=1 -f "$(dirname "$0")/ranking_data.sql"

cat >"$WORK/rank_products.sql" <<'SQL'
\set s random(1, 1000000)
\set l random(1, 200)
SELECT * FROM personalisation.rank_products('v' || :s, (SELECT candidates FROM bench_lists WHERE list_id = :l));
SQL
# the same blend, less the session scope and the category ancestors
cat >"$WORK/hand_written_sql.sql" <<'SQL'
\set s random(1, 1000000)
\set l random(1, 200)
WITH visitor AS (SELECT profile_id FROM personalisation.sessions WHERE session_id = 'v' || :s),
scored AS (
  SELECT c.id, c.ord,
         CASE WHEN p.product_id IS NULL THEN 2 WHEN NOT p.in_stock THEN 1 ELSE 0 END AS tier,
         coalesce(ap.score * 2 ^ (-extract(epoch FROM now() - ap.updated_at) / 1209600), 0)
         + coalesce(ac.score * 2 ^ (-extract(epoch FROM now() - ac.updated_at) / 1209600), 0)
         + 0.5 * coalesce(ab.score * 2 ^ (-extract(epoch FROM now() - ab.updated_at) / 1209600), 0)
         + coalesce(pop.score, 0) AS score
    FROM bench_lists l
   CROSS JOIN unnest(l.candidates) WITH ORDINALITY AS c (id, ord)
    LEFT JOIN personalisation.products p ON p.product_id = c.id
    LEFT JOIN personalisation.product_popularity pop ON pop.product_id = c.id
    LEFT JOIN bench_affinity ap ON ap.profile_id = (SELECT profile_id FROM visitor) AND ap.dimension = 'product' AND ap.key = c.id
    LEFT JOIN bench_affinity ac ON ac.profile_id = (SELECT profile_id FROM visitor) AND ac.dimension = 'category' AND ac.key = p.category_id
    LEFT JOIN bench_affinity ab ON ab.profile_id = (SELECT profile_id FROM visitor) AND ab.dimension = 'brand' AND ab.key = p.brand
   WHERE l.list_id = :l)
SELECT id AS product_id, score, row_number() OVER (ORDER BY tier, score DESC, ord) AS position
  FROM scored ORDER BY position;
SQL

# run WORKLOAD prints "tps mean_ms p50_ms p99_ms" from pgbench's per-transaction log.
# One pgbench thread drives both clients, so that on a 2-core machine the
# driver does not take a core of its own from the two backends measured.
run() {
    rm -f "$WORK"/log.*
    (cd "$WORK" && PGOPTIONS="-c personalisation.ranking_holdout_percent=0" "$PG_BINDIR/pgbench" -n -M prepared -c $CLIENTS -j 1 \
        -T "$SECONDS_PER_RUN" -l --log-prefix=log -f "$WORK/$1.sql" bench >"$WORK/pgbench.out" 2>&1)
    cat "$WORK"/log.* | awk '{print $3}' | sort -n | awk -v secs="$SECONDS_PER_RUN" '
        {v[NR] = $1; sum += $1}
        END {printf "%.0f %.3f %.3f %.3f\n", NR / secs, sum / NR / 1000, v[int(NR * 0.50)] / 1000, v[int(NR * 0.99)] / 1000}'
}

echo "== rank_products, 100 candidates, $CLIENTS clients, $ROUNDS rounds of ${SECONDS_PER_RUN}s each"
declare -A p99s=() means=()
for round in $(seq "$ROUNDS"); do
    for workload in rank_products hand_written_sql; do
        read -r tps mean p50 p99 < <(run $workload)
        printf '%-17s round %d: %6s calls/s  mean %s ms  p50 %s ms  p99 %s ms\n' $workload $round "$tps" "$mean" "$p50" "$p99"
        p99s[$workload]+="$p99 "
        means[$workload]+="$mean "
    done
done
ours=$(echo ${p99s[rank_products]} | median)
theirs=$(echo ${p99s[hand_written_sql]} | median)
printf 'median p99: rank_products %.3f ms (target <= 2 ms), hand-written SQL %.3f ms: %sx its latency\n' \
    "$ours" "$theirs" "$(ratio "$ours" "$theirs")"
printf 'median mean: rank_products %.3f ms, hand-written SQL %.3f ms\n' \
    "$(echo ${means[rank_products]} | median)" "$(echo ${means[hand_written_sql]} | median)"
