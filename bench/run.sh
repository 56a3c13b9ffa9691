#!/usr/bin/env bash
# make bench: runs the benchmark drivers one after the other, each on a
# throw-away instance of its own, and prints each driver's ratio line and a
# summary at the end.
#   BENCH_ONLY=name,...  the drivers to run (bench/NAME.sh); default: those of
#                        the performance targets (wal, queue_peers, scale,
#                        track_events) and the recommendation evaluation
#                        (recommend_eval); BENCH_ONLY=all runs every driver in bench/.
#   BENCH_FULL=1         the issue's sizes and durations instead of the quick
#                        ones (the quick run takes a few minutes in all).
# A driver that fails is reported and the others still run; the exit status
# says whether all of them passed.
set -uo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
DEFAULT_DRIVERS=wal,queue_peers,scale,track_events,recommend_eval,ranking_eval

if [ "${BENCH_ONLY:-}" = all ]; then
    drivers=$(cd "$BENCH_DIR" && ls ./*.sh | sed 's|^\./||; s|\.sh$||' | grep -vx 'common\|run')
else
    drivers=$(echo "${BENCH_ONLY:-$DEFAULT_DRIVERS}" | tr ',' '\n' | grep .)
fi
for driver in $drivers; do
    [ -f "$BENCH_DIR/$driver.sh" ] || { echo "no benchmark driver bench/$driver.sh" >&2; exit 2; }
done

# Quick sizes unless BENCH_FULL: short rounds, small shops.  Drivers read
# these defaults only when the caller has not set them.
if [ "${BENCH_FULL:-0}" != 1 ]; then
    export SECONDS_PER_RUN=${SECONDS_PER_RUN:-3} ROUNDS=${ROUNDS:-3}
fi

summary=() failed=0
for driver in $drivers; do
    echo "######## bench/$driver.sh"
    out=$(mktemp)
    start=$(date +%s)
    bash "$BENCH_DIR/$driver.sh" 2>&1 | tee "$out"
    status=${PIPESTATUS[0]}
    elapsed=$(($(date +%s) - start))
    if [ "$status" -eq 0 ]; then
        # the driver's ratio lines: those naming their target, pgmq's comparison
        # or a skip; the last line for drivers that print none
        lines=$(grep -E 'target|^ours/|^SKIP' "$out" | grep -v '^ *rounds')
        summary+=("$driver (${elapsed}s): ${lines:-$(tail -n 1 "$out")}")
    else
        summary+=("$driver (${elapsed}s): FAILED, exit status $status")
        failed=1
    fi
    rm -f "$out"
done

echo "######## summary"
for line in "${summary[@]}"; do printf '%s\n\n' "$line"; done
exit $failed
