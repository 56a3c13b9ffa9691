#!/usr/bin/env bash
# What SECURITY DEFINER with SET search_path costs a tracked page view.
# The extension's track_page_view runs as its owner with search_path pinned
# (sql/install/security.sql); the baseline, measured in the same run, is the same C
# function declared without either, called by the superuser.  pgbench, 2
# clients, prepared statements, ROUNDS alternating rounds of
# SECONDS_PER_RUN each, over 10,000 warm sessions and 20,000 products.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
CLIENTS=${CLIENTS:-2}
ROUNDS=${ROUNDS:-3}

bench_start
psql -q -X -d bench -v ON_ERROR_STOP=1 <<'SQL'
CREATE FUNCTION public.track_page_view_invoker(
    session_id text, category_id text DEFAULT NULL, product_id text DEFAULT NULL,
    occurred_at timestamptz DEFAULT pg_catalog.now(), event_id text DEFAULT NULL)
RETURNS void LANGUAGE c VOLATILE AS '$libdir/personalisation', 'track_page_view';
SQL
"$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t 10000 \
    -f "$(dirname "$0")/ingest_track.sql" bench >/dev/null 2>&1

echo "track_page_view: SECURITY DEFINER + SET search_path against the same function without, $CLIENTS clients, ${SECONDS_PER_RUN}s per run"
printf '%-6s %14s %14s %8s\n' round invoker_tps definer_tps ratio
invoker_sum=0; definer_sum=0
for round in $(seq 1 "$ROUNDS"); do
    invoker=$(pgbench_tps "$(dirname "$0")/security_track_invoker.sql" "$SECONDS_PER_RUN" "$CLIENTS")
    definer=$(pgbench_tps "$(dirname "$0")/ingest_track.sql" "$SECONDS_PER_RUN" "$CLIENTS")
    printf '%-6s %14.0f %14.0f %8s\n' "$round" "$invoker" "$definer" "$(ratio "$definer" "$invoker")"
    invoker_sum=$(awk -v a="$invoker_sum" -v b="$invoker" 'BEGIN { print a + b }')
    definer_sum=$(awk -v a="$definer_sum" -v b="$definer" 'BEGIN { print a + b }')
done
printf '%-6s %14.0f %14.0f %8s\n' mean "$(awk -v a="$invoker_sum" -v n="$ROUNDS" 'BEGIN { print a / n }')" \
    "$(awk -v a="$definer_sum" -v n="$ROUNDS" 'BEGIN { print a / n }')" "$(ratio "$definer_sum" "$invoker_sum")"
