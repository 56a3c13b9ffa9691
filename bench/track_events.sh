#!/usr/bin/env bash
# Bulk ingestion benchmark: events per second through track_events (batches
# of 100 page views of 100 sessions, bench/track_events_batch.sql) against
# the same page views through single calls, one track_page_view per
# statement and transaction as a shop's requests make them
# (bench/ingest_track.sql), and against 100 track_page_view calls in one
# statement (bench/track_events_typed.sql).  Same clients, same run, rounds
# alternated so that the machine's drifts hit all alike; the medians are
# compared.  Every event carries an event id.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-2}
SINGLE=$(dirname "$0")/ingest_track.sql
BATCH=$(dirname "$0")/track_events_batch.sql
TYPED=$(dirname "$0")/track_events_typed.sql

bench_start
# warm up: create the 10,000 sessions so that every workload measures steady state
"$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t 10000 -f "$SINGLE" bench >/dev/null 2>&1

echo "page views per second, $CLIENTS clients, $ROUNDS alternated rounds of ${SECONDS_PER_RUN}s, median"
single_runs='' batch_runs='' typed_runs='' rounds=''
for round in $(seq "$ROUNDS"); do
    single=$(pgbench_tps "$SINGLE" "$SECONDS_PER_RUN" "$CLIENTS")
    batch=$(awk -v t="$(pgbench_tps "$BATCH" "$SECONDS_PER_RUN" "$CLIENTS")" 'BEGIN { print t * 100 }')
    typed=$(awk -v t="$(pgbench_tps "$TYPED" "$SECONDS_PER_RUN" "$CLIENTS")" 'BEGIN { print t * 100 }')
    single_runs+="$single " batch_runs+="$batch " typed_runs+="$typed "
    rounds+=$(printf '%.0f/%.0f/%.0f ' "$single" "$batch" "$typed")
done
single=$(echo "$single_runs" | median)
batch=$(echo "$batch_runs" | median)
typed=$(echo "$typed_runs" | median)
printf '%-44s %10s %6s\n' workload 'events/s' ratio
printf '%-44s %10.0f %6s\n' 'track_page_view, one call per statement' "$single" 1.00
printf '%-44s %10.0f %6s\n' 'track_events, 100 events per call' "$batch" "$(ratio "$batch" "$single")"
printf '%-44s %10.0f %6s\n' 'track_page_view, 100 calls in one statement' "$typed" "$(ratio "$typed" "$single")"
echo "rounds (single/track_events/typed in one statement): $rounds"
printf 'track_events, 100 events per call: %sx the events per second of single track_page_view calls (target >= 3x)\n' \
    "$(ratio "$batch" "$single")"
