#!/usr/bin/env bash
# bench/identify.sh: how identify() and unmerge() scale.  A session with 100
# events merges into a customer with 100 events (the baseline) and into one
# with 10,000 events: the ratio should stay near 1, since a merge touches only
# the anonymous side's rows.  A session with 1,000 events shows the cost
# growing with the anonymous side instead.  ROUNDS (default 30) sets how many
# merges each case times; the cases are interleaved round by round.
set -euo pipefail
source "$(dirname "$0")/common.sh"
BENCH_PRODUCTS=${BENCH_PRODUCTS:-1000}

bench_start
psql -X -q -v ON_ERROR_STOP=1 -d bench -v rounds="${ROUNDS:-30}" -f "$(dirname "$0")/identify.sql"
