#!/usr/bin/env bash
# Offline evaluation of the ranking (docs/ranking.md#evaluation): visitors
# with a planted interest category whose first view is a stray one, and
# visitors whose interest changes within the session, on a generated shop
# of 600 products in 20 categories with a popularity skew
# (ranking_eval_data.sql; ranking_eval.sql says what is measured).  Prints
# precision@10 of the planted category after 1, 2, 3 and 5 views against
# "the session's most-viewed category first", and the median number of
# views a change of interest takes to show, for each pass of PASSES
# ("label:session_half_life:session_shrinkage ...", default the build's
# settings, without the shrinkage, and with a 10-minute session half-life).
# A minute or two on two cores.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
source "$BENCH_DIR/common.sh"
BENCH_PRODUCTS=0
BENCH_PORT=${BENCH_PORT:-$(free_port 56200)}
VISITORS=${VISITORS:-300}
CROWD=${CROWD:-6000}
GAP=${GAP:-2min}
SEED=${SEED:-0.42}
PASSES=${PASSES:-"defaults:default:default no-shrinkage:default:0 half-life-10min:10min:default"}

bench_start
start=$(sql -c "SELECT date_trunc('hour', now()) - interval '6 hours'")
sql -c "CREATE SCHEMA eval" -c "CREATE SCHEMA evalres" \
    -c "CREATE TABLE evalres.precision (pass text, method text, views int, visitors bigint, mean float8, sd float8, stray float8)" \
    -c "CREATE TABLE evalres.shift (pass text, method text, visitor int, views int)"
sql -v seed="$SEED" -v crowd="$CROWD" -v start="$start" -f "$BENCH_DIR/ranking_eval_data.sql" >/dev/null
echo "== $VISITORS visitors per scenario and pass, views $GAP apart, $CROWD crowd views for the prior"
for pass in $PASSES; do
    IFS=: read -r label half_life shrinkage <<<"$pass"
    sql -v label="$label" -v half_life="$half_life" -v shrinkage="$shrinkage" -v visitors="$VISITORS" \
        -v seed="$SEED" -v start="$start" -v gap="$GAP" -f "$BENCH_DIR/ranking_eval.sql" >/dev/null
done
psql -X -q -d bench -P pager=off -f "$BENCH_DIR/ranking_eval_report.sql"
