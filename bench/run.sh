#!/usr/bin/env bash
# make bench: runs the benchmarks named in BENCHES (default: every bench/*.sh
# but this one and common.sh, the recommendation evaluation first), one after
# another, each on its own throw-away instance.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
if [ -z "${BENCHES:-}" ]; then
    BENCHES="recommend_eval $(cd "$BENCH_DIR" && ls *.sh | sed 's/\.sh$//' | grep -vx 'run\|common\|recommend_eval' | tr '\n' ' ')"
fi
for bench in $BENCHES; do
    echo "=== bench/$bench.sh"
    bash "$BENCH_DIR/$bench.sh"
done
