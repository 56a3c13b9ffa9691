#!/usr/bin/env bash
# The outbox against a real peer (issue 19, item 2): pgmq, installed on the
# same server from its SQL install script, whose path is PGMQ_SQL (pgmq is
# not part of this repository; without it the script says SKIP and stops).
# The messages: MESSAGES (default 20,000; 100,000 with BENCH_FULL) push
# messages run_due writes for as many abandoned carts
# (bench/journeys_setup.sql), and the same payloads sent to a pgmq queue.
# Drained by pgbench, CLIENTS 1 and 4 consumers, batches of 1 (a tenth of the
# messages) and 100 (all of them), every call its own transaction:
#   ours          claim_messages (consent and exit rules checked at claim),
#                 then ack_messages (the message stays, delivered: its history)
#   pgmq delete   pgmq.read, then pgmq.delete
#   pgmq archive  pgmq.read, then pgmq.archive (the message moves to the archive)
# Each drain starts from a full, vacuumed queue; ROUNDS (default 3) rounds,
# the order of the three rotating from round to round; median messages per
# second.  Target: ours >= 1.0x pgmq's delete at every batch size and
# consumer count.  The last line is `ours/pgmq: batch 1 X.XX, batch 100 Y.YY`,
# each the lower of the 1- and 4-consumer ratios against pgmq's delete.
set -euo pipefail
if [ -z "${PGMQ_SQL:-}" ] || [ ! -r "${PGMQ_SQL:-}" ]; then
    echo "SKIP: PGMQ_SQL not set / missing (the path of pgmq's SQL install script, pgmq.sql)"
    exit 0
fi
BENCH_PRODUCTS=${BENCH_PRODUCTS:-100}
source "$(dirname "$0")/common.sh"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
if [ "${BENCH_FULL:-0}" = 1 ]; then MESSAGES=${MESSAGES:-100000}; else MESSAGES=${MESSAGES:-20000}; fi
ROUNDS=${ROUNDS:-3}

bench_start
WORK=$BENCH_WORK
psql -q -X -d bench -v ON_ERROR_STOP=1 -f "$PGMQ_SQL" >/dev/null
T0=$(sql -c "SELECT date_trunc('minute', now() - interval '4 days')")
sql -v carts="$MESSAGES" -v t0="$T0" -f "$BENCH_DIR/journeys_setup.sql" >/dev/null
sql -c "SELECT personalisation.run_due(timestamptz '$T0' + interval '30 minutes')" >/dev/null
sql -c "SELECT pgmq.create('bench')" >/dev/null
echo "== $(sql -c "SELECT count(*) || ' messages of ' || round(avg(pg_column_size(payload))) || ' B payload (jsonb) each'
                  FROM personalisation.outbox")"

cat >"$WORK/ours.sql" <<'SQL'
SELECT '{' || coalesce(string_agg(message_id::text, ','), '') || '}' AS ids
  FROM personalisation.claim_messages('bench-' || :client_id, :batch, '5 minutes') \gset
SELECT personalisation.ack_messages(:ids::bigint[], now(), 'bench-' || :client_id);
SQL
for verb in delete archive; do
    cat >"$WORK/pgmq_$verb.sql" <<SQL
SELECT '{' || coalesce(string_agg(msg_id::text, ','), '') || '}' AS ids FROM pgmq.read('bench', 300, :batch) \gset
SELECT count(*) FROM pgmq.$verb('bench', :ids::bigint[]);
SQL
done

# refill SIDE puts every message back in SIDE's queue, vacuumed.
refill() {
    if [ "$1" = ours ]; then
        sql -c "UPDATE personalisation.outbox SET status = 'pending', attempts = 0, claimed_by = NULL,
                       lease_until = NULL, finished_at = NULL" -c "VACUUM ANALYZE personalisation.outbox"
    else
        sql -c "TRUNCATE pgmq.q_bench, pgmq.a_bench" \
            -c "SELECT count(*) FROM pgmq.send_batch('bench', (SELECT array_agg(payload ORDER BY message_id) FROM personalisation.outbox))" \
            -c "VACUUM ANALYZE pgmq.q_bench" >/dev/null
    fi
}

# drain SIDE CLIENTS BATCH COUNT prints the messages per second CLIENTS
# consumers drain COUNT messages from a full queue at, BATCH per call.
drain() {
    local side=$1 clients=$2 batch=$3 count=$4 tps
    refill "${side%%_*}" >/dev/null
    "$PG_BINDIR/pgbench" -n -M prepared -c "$clients" -j "$clients" -t $((count / clients / batch)) \
        -D batch="$batch" -f "$WORK/$side.sql" bench >"$WORK/pgbench.out" 2>&1 || { cat "$WORK/pgbench.out" >&2; exit 1; }
    tps=$(awk '/^tps/ { print $3; exit }' "$WORK/pgbench.out")
    awk -v t="$tps" -v b="$batch" 'BEGIN { printf "%.0f", t * b }'
}

echo "== messages per second, $ROUNDS rounds, median (rounds ours/pgmq delete/pgmq archive)"
printf '%-10s %6s %10s %12s %13s %12s %14s   %s\n' consumers batch ours pgmq_delete 'ours/delete' pgmq_archive 'ours/archive' rounds
declare -A worst=()
sides=(ours pgmq_delete pgmq_archive)
for batch in 1 100; do
    if [ "$batch" -eq 1 ]; then count=$((MESSAGES / 10)); else count=$MESSAGES; fi
    for clients in 1 4; do
        declare -A runs=([ours]='' [pgmq_delete]='' [pgmq_archive]='')
        rounds=''
        for round in $(seq "$ROUNDS"); do
            declare -A got=()
            for i in 0 1 2; do
                side=${sides[$(((i + round) % 3))]}
                got[$side]=$(drain "$side" "$clients" "$batch" "$count")
                runs[$side]+="${got[$side]} "
            done
            rounds+="${got[ours]}/${got[pgmq_delete]}/${got[pgmq_archive]} "
        done
        ours=$(echo "${runs[ours]}" | median)
        delete=$(echo "${runs[pgmq_delete]}" | median)
        archive=$(echo "${runs[pgmq_archive]}" | median)
        r=$(ratio "$ours" "$delete")
        printf '%-10s %6s %10.0f %12.0f %13s %12.0f %14s   %s\n' "$clients" "$batch" "$ours" "$delete" "$r" \
            "$archive" "$(ratio "$ours" "$archive")" "$rounds"
        if [ -z "${worst[$batch]:-}" ] || awk -v a="$r" -v b="${worst[$batch]}" 'BEGIN { exit !(a < b) }'; then
            worst[$batch]=$r
        fi
    done
done
echo "target: ours/pgmq delete >= 1.00 at every batch size and consumer count"
echo "ours/pgmq: batch 1 ${worst[1]}, batch 100 ${worst[100]}"
