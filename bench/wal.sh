#!/usr/bin/env bash
# WAL per tracked page view (issue 19, item 1).  On warm sessions and
# affinity rows (WARM_SESSIONS, default 1,000 sessions, each seen about ten
# times first), CALLS (default 10,000) track_page_view calls without an event
# id, one per transaction from 2 pgbench clients, against the same number of
# plain INSERTs of the same event row into a bare table with the events'
# columns and no index; the WAL each writes is read from
# pg_current_wal_insert_lsn() before and after.  Target: <= 4x.
# Where the bytes go: the tracked calls' WAL broken down by relation and
# record type (pg_walinspect).  A checkpoint precedes the warm-up, and
# autovacuum is off while measuring, so that the windows hold no full-page
# images of pages the warm-up has not already touched and nobody else's
# records.
# Then throughput: the same two workloads with synchronous_commit off,
# ROUNDS (default 3) alternated rounds of SECONDS_PER_RUN (default 5)
# seconds, medians.  Target: >= 0.6x.
set -euo pipefail
source "$(dirname "$0")/common.sh"
CALLS=${CALLS:-10000}
WARM_SESSIONS=${WARM_SESSIONS:-1000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
ROUNDS=${ROUNDS:-3}
CLIENTS=2

bench_start
WORK=$BENCH_WORK
sql -c "CREATE EXTENSION pg_walinspect" -c "CREATE TABLE bench_plain_events (LIKE personalisation.events)" \
    -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
cat >"$WORK/track.sql" <<SQL
\set session random(1, $WARM_SESSIONS)
\set product random(1, $BENCH_PRODUCTS)
SELECT personalisation.track_page_view('s' || :session, NULL, 'p' || :product, now());
SQL
cat >"$WORK/plain.sql" <<SQL
\set session random(1, $WARM_SESSIONS)
\set product random(1, $BENCH_PRODUCTS)
INSERT INTO bench_plain_events (kind, occurred_at, profile_id, session_id, category_id, product_id)
VALUES ('page_view', now(), :session, 's' || :session, NULL, 'p' || :product);
SQL

# calls SCRIPT COUNT runs COUNT transactions of SCRIPT over the clients.
calls() {
    "$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t $(($2 / CLIENTS)) -f "$1" bench >/dev/null 2>&1
}

sql -c CHECKPOINT
calls "$WORK/track.sql" $((WARM_SESSIONS * 10))
calls "$WORK/plain.sql" $((WARM_SESSIONS * 10))
sql -c VACUUM

# wal SCRIPT prints the WAL insert position before and after CALLS transactions of SCRIPT.
wal() {
    local before after
    before=$(sql -c "SELECT pg_current_wal_insert_lsn()")
    calls "$1" "$CALLS"
    after=$(sql -c "SELECT pg_current_wal_insert_lsn()")
    echo "$before $after"
}
read -r track_from track_to < <(wal "$WORK/track.sql")
read -r plain_from plain_to < <(wal "$WORK/plain.sql")
track_bytes=$(sql -c "SELECT round(pg_wal_lsn_diff('$track_to', '$track_from') / $CALLS)")
plain_bytes=$(sql -c "SELECT round(pg_wal_lsn_diff('$plain_to', '$plain_from') / $CALLS)")

echo "== where a tracked page view's WAL goes (bytes per call; fpi: full-page images)"
sql -F $'\t' <<SQL | awk -F'\t' '{ printf "   %-52s %-18s %5s records/call %7s B/call %5s fpi %5s%%\n", $1, $2, $3, $4, $5, $6 }'
WITH records AS (
    SELECT coalesce(pg_catalog.pg_filenode_relation(0,
                        (regexp_match(block_ref, 'rel [0-9]+/[0-9]+/([0-9]+)'))[1]::oid)::text,
                    '(no relation)') AS relation,
           resource_manager || '/' || record_type AS record, record_length, fpi_length
      FROM pg_get_wal_records_info('$track_from', '$track_to'))
SELECT relation, record, round(count(*)::numeric / $CALLS, 2), round(sum(record_length)::numeric / $CALLS),
       round(sum(fpi_length)::numeric / $CALLS),
       round(100.0 * sum(record_length) / sum(sum(record_length)) OVER (), 1)
  FROM records GROUP BY relation, record ORDER BY sum(record_length) DESC LIMIT 15
SQL
echo "== the plain INSERT's WAL"
sql -F $'\t' <<SQL | awk -F'\t' '{ printf "   %-34s %7s records/call %7s B/call\n", $1, $2, $3 }'
SELECT resource_manager || '/' || record_type, round(count(*)::numeric / $CALLS, 2),
       round(sum(record_length)::numeric / $CALLS)
  FROM pg_get_wal_records_info('$plain_from', '$plain_to') GROUP BY 1 ORDER BY sum(record_length) DESC
SQL
sql -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null

echo "== throughput, synchronous_commit off, $CLIENTS clients, $ROUNDS alternated rounds of ${SECONDS_PER_RUN}s, median tps"
plain_runs='' track_runs='' rounds=''
for round in $(seq "$ROUNDS"); do
    plain=$(pgbench_tps "$WORK/plain.sql" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=off")
    track=$(pgbench_tps "$WORK/track.sql" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=off")
    plain_runs+="$plain " track_runs+="$track "
    rounds+=$(printf '%.0f/%.0f ' "$plain" "$track")
done
plain=$(echo "$plain_runs" | median)
track=$(echo "$track_runs" | median)
echo "   rounds (plain/track): $rounds"
printf 'WAL per page view: track_page_view %s B, plain INSERT %s B: %sx (target <= 4x)\n' \
    "$track_bytes" "$plain_bytes" "$(ratio "$track_bytes" "$plain_bytes")"
printf 'throughput, synchronous_commit off: track_page_view %.0f tps, plain INSERT %.0f tps: %sx (target >= 0.6x)\n' \
    "$track" "$plain" "$(ratio "$track" "$plain")"
