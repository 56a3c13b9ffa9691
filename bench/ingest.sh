#!/usr/bin/env bash
# Ingest benchmark: track_page_view against a plain INSERT of the same event
# rows into a bare table, same clients, same run, with synchronous_commit on
# and off.  A third workload, the same writes in SQL, writes the rows a
# tracked view must write (idempotency key, event, two affinity rows) in one
# hand-written statement without any computation: the floor for any
# implementation of the contract, printed with its own ratio.  The two workloads alternate for ROUNDS rounds, so that the
# machine's drifts (a shared disk's flush latency above all) hit both alike;
# the medians are compared.  Targets: >= 0.90x with synchronous_commit on,
# >= 0.75x off.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-2}
PLAIN=$(dirname "$0")/ingest_plain.sql
TRACK=$(dirname "$0")/ingest_track.sql
SAME_WRITES=$(dirname "$0")/ingest_same_writes.sql

bench_start
psql -q -X -d bench -c "CREATE TABLE bench_plain_events (LIKE personalisation.events)"
# warm up: create the 10,000 sessions so both sides measure steady state
"$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t 10000 -f "$TRACK" bench >/dev/null 2>&1

echo "track_page_view vs plain INSERT, $CLIENTS clients, $ROUNDS alternated rounds of ${SECONDS_PER_RUN}s, median tps"
printf '%-20s %10s %10s %6s %12s %6s   %s\n' synchronous_commit plain_tps track_tps ratio same_writes ratio \
    'rounds (plain/track/same writes)'
for mode in on off; do
    plain_runs='' track_runs='' same_runs='' rounds=''
    for round in $(seq "$ROUNDS"); do
        plain=$(pgbench_tps "$PLAIN" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=$mode")
        track=$(pgbench_tps "$TRACK" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=$mode")
        same=$(pgbench_tps "$SAME_WRITES" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=$mode")
        plain_runs+="$plain " track_runs+="$track " same_runs+="$same "
        rounds+=$(printf '%.0f/%.0f/%.0f ' "$plain" "$track" "$same")
    done
    plain=$(echo "$plain_runs" | median)
    track=$(echo "$track_runs" | median)
    same=$(echo "$same_runs" | median)
    printf '%-20s %10.0f %10.0f %6s %12.0f %6s   %s\n' "$mode" "$plain" "$track" "$(ratio "$track" "$plain")" \
        "$same" "$(ratio "$same" "$plain")" "$rounds"
done
