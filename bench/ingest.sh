#!/usr/bin/env bash
# Ingest benchmark: track_page_view against a plain INSERT of the same event
# rows into a bare table, same clients, same run, with synchronous_commit on
# and off.  Targets: >= 0.90x with synchronous_commit on, >= 0.75x off.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
CLIENTS=${CLIENTS:-2}

bench_start
psql -q -X -d bench -c "CREATE TABLE bench_plain_events (LIKE personalisation.events)"
# warm up: create the 10,000 sessions so both sides measure steady state
"$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t 10000 \
    -f "$(dirname "$0")/ingest_track.sql" bench >/dev/null 2>&1

echo "track_page_view vs plain INSERT, $CLIENTS clients, ${SECONDS_PER_RUN}s per run"
printf '%-20s %12s %12s %8s\n' synchronous_commit plain_tps track_tps ratio
for mode in on off; do
    plain=$(pgbench_tps "$(dirname "$0")/ingest_plain.sql" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=$mode")
    track=$(pgbench_tps "$(dirname "$0")/ingest_track.sql" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=$mode")
    printf '%-20s %12.0f %12.0f %8s\n' "$mode" "$plain" "$track" "$(ratio "$track" "$plain")"
done
