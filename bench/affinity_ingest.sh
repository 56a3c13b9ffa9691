#!/usr/bin/env bash
# Ingest with affinity maintenance: the ingest benchmark's page views
# (bench/ingest_track.sql: 10,000 sessions, 20,000 products, an event id)
# with the affinity update (the default) against the plain INSERT of the same
# rows into a bare table (bench/ingest_plain.sql), and against the same calls
# with personalisation.affinity_tracking off, which is what the foundation
# alone costs.  synchronous_commit on and off, pgbench with 2 clients.  The
# three workloads run in turn, ROUNDS times, so that the machine's drifts hit
# them alike; the median of the rounds is reported, with the WAL each event
# wrote.  Targets: >= 0.90x plain INSERT with synchronous_commit on, >= 0.75x
# with it off.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-2}
PLAIN=$(dirname "$0")/ingest_plain.sql
TRACK=$(dirname "$0")/ingest_track.sql

bench_start
psql -q -X -d bench -c "CREATE TABLE bench_plain_events (LIKE personalisation.events)"
# warm up: create the 10,000 sessions and their affinity rows
"$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t 10000 -f "$TRACK" bench >/dev/null 2>&1

# run SCRIPT SYNC AFFINITY prints the transactions per second and the WAL bytes per transaction.
run() {
    local before tps
    before=$(psql -qXAt -d bench -c 'SELECT pg_current_wal_lsn()')
    tps=$(pgbench_tps "$1" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=$2 -c personalisation.affinity_tracking=$3")
    psql -qXAt -d bench -c "SELECT '$tps ' || round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$before') / ($tps * $SECONDS_PER_RUN))"
}

echo "track_page_view with and without affinity vs plain INSERT, $CLIENTS clients, $ROUNDS rounds of ${SECONDS_PER_RUN}s, median tps"
for sync in on off; do
    declare -A tps=() wal=()
    for round in $(seq "$ROUNDS"); do
        for workload in plain without with; do
            case $workload in
                plain) read -r t w < <(run "$PLAIN" $sync on) ;;
                without) read -r t w < <(run "$TRACK" $sync off) ;;
                with) read -r t w < <(run "$TRACK" $sync on) ;;
            esac
            tps[$workload]+="$t "
            wal[$workload]+="$w "
        done
    done
    plain=$(echo ${tps[plain]} | median)
    without=$(echo ${tps[without]} | median)
    with=$(echo ${tps[with]} | median)
    echo "synchronous_commit=$sync"
    printf '  plain INSERT             %8.0f tps  %6.0f WAL bytes/event\n' "$plain" "$(echo ${wal[plain]} | median)"
    printf '  track without affinity   %8.0f tps  %6.0f WAL bytes/event  %sx plain\n' "$without" "$(echo ${wal[without]} | median)" "$(ratio "$without" "$plain")"
    printf '  track with affinity      %8.0f tps  %6.0f WAL bytes/event  %sx plain (target %s), %sx without affinity\n' \
        "$with" "$(echo ${wal[with]} | median)" "$(ratio "$with" "$plain")" "$([ $sync = on ] && echo 0.90 || echo 0.75)" "$(ratio "$with" "$without")"
    echo "  rounds (tps): plain ${tps[plain]}| without ${tps[without]}| with ${tps[with]}"
    unset tps wal
done
