#!/usr/bin/env bash
# Ingest with affinity maintenance: track_page_view throughput with the
# affinity update (the default) against a plain INSERT of the same event
# rows into a bare table, and against track_page_view with
# personalisation.affinity_tracking off (what the foundation alone costs),
# with synchronous_commit on and off.  100,000 visitors (each its own
# session and anonymous profile, so 200,000 affinity rows) view random
# products of 20,000.  pgbench, 2 clients, rounds
# interleaved so that drifts of the machine hit every workload alike; the
# median of the rounds is reported.  Targets: >= 0.90x plain INSERT with
# synchronous_commit on, >= 0.75x with it off.
set -euo pipefail
source "$(dirname "$0")/../test/cluster.sh"

SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
ROUNDS=${ROUNDS:-5}
CLIENTS=2
SESSIONS=${SESSIONS:-100000}

build_and_install
WORK=$(mktemp -d /tmp/personalisation-bench.XXXXXX)
chmod 755 "$WORK"
start_cluster "$WORK/cluster" "$(free_port 55500)" bench
trap 'stop_cluster; rm -rf "$WORK"' EXIT
createdb bench
psql -qX -d bench -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION personalisation' \
     -f "$REPO_DIR/bench/affinity_catalogue.sql" \
     -c 'CREATE TABLE bare_events (LIKE personalisation.events)'

# The same page view three ways: a random visitor (of SESSIONS) views a random product.
cat >"$WORK/plain.sql" <<SQL
\set s random(1, $SESSIONS)
\set p random(1, 20000)
INSERT INTO bare_events VALUES (NULL, 'page_view', now(), :s, 'v' || :s,
  'c' || (:p % 10 + 1) || '-' || (:p / 10 % 10 + 1) || '-' || (:p / 100 % 10 + 1), 'p' || :p, NULL, NULL, NULL);
SQL
cat >"$WORK/track.sql" <<SQL
\set s random(1, $SESSIONS)
\set p random(1, 20000)
SELECT personalisation.track_page_view('v' || :s, NULL, 'p' || :p);
SQL
cp "$WORK/track.sql" "$WORK/track_without_affinity.sql"

lsn() { psql -qXAt -d bench -c 'SELECT pg_current_wal_lsn()'; }

# run WORKLOAD SYNC prints the workload's transactions per second and WAL bytes per transaction.
run() {
    local options="-c synchronous_commit=$2" before out
    [ "$1" = track_without_affinity ] && options="$options -c personalisation.affinity_tracking=off"
    before=$(lsn)
    out=$(PGOPTIONS="$options" pgbench -n -M prepared -c $CLIENTS -j $CLIENTS -T "$SECONDS_PER_RUN" \
        -f "$WORK/$1.sql" bench 2>&1)
    psql -qXAt -d bench -c "SELECT $(echo "$out" | awk '/^tps/ {print $3}') || ' ' ||
        round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$before') / $(echo "$out" | awk '/actually processed/ {print $NF}'))"
}

# median of the numbers on stdin
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# every session exists before measuring, so that no run pays for creating them
psql -qX -d bench -c "SELECT personalisation.track_page_view('v' || s, NULL, 'p' || (s % 20000 + 1)) FROM generate_series(1, $SESSIONS) s" >/dev/null

echo "== ingest with affinity: pgbench, $CLIENTS clients, $ROUNDS rounds of ${SECONDS_PER_RUN}s, median tps"
for sync in on off; do
    declare -A results=() wal=()
    for round in $(seq "$ROUNDS"); do
        for workload in plain track_without_affinity track; do
            read -r tps bytes < <(run $workload $sync)
            results[$workload]+="$tps "
            wal[$workload]=$bytes
        done
    done
    plain=$(echo ${results[plain]} | tr ' ' '\n' | median)
    bare=$(echo ${results[track_without_affinity]} | tr ' ' '\n' | median)
    track=$(echo ${results[track]} | tr ' ' '\n' | median)
    target=$([ $sync = on ] && echo 0.90 || echo 0.75)
    printf 'synchronous_commit=%-3s plain INSERT %8.0f tps | track_page_view without affinity %8.0f tps (%.2fx) | with affinity %8.0f tps (%.2fx plain, target %s; %.2fx without affinity)\n' \
        $sync "$plain" "$bare" "$(echo "$bare / $plain" | bc -l)" "$track" \
        "$(echo "$track / $plain" | bc -l)" $target "$(echo "$track / $bare" | bc -l)"
    echo "    rounds (tps): plain ${results[plain]}| without affinity ${results[track_without_affinity]}| with affinity ${results[track]}"
    echo "    WAL per event (last round): plain INSERT ${wal[plain]} B, without affinity ${wal[track_without_affinity]} B, with affinity ${wal[track]} B"
    unset results wal
done
