#!/usr/bin/env bash
# bench/journeys.sh: the journeys and the outbox on a throw-away instance.
#  1. run_due over CARTS (default 100,000) abandoned carts: messages per second
#     for the push round (which also declares every cart), the first-email
#     round and the social-proof round, against a plain INSERT ... SELECT of
#     the push round's messages (with their items) measured in the same run.
#  2. claim-and-ack throughput of the outbox with 1 and 4 consumers and
#     batches of 1 and 100, against raw DELETE ... FOR UPDATE SKIP LOCKED on a
#     bare table holding the same payloads, measured in the same run: with
#     leases (claim and ack in two transactions, delivering in between) and
#     holding the transaction open as the raw consumer does (one transaction);
#     and the obvious hand-written lease queue on the same table (claim with a
#     lease in one transaction, mark delivered in a second, no exit-rule or
#     consent check): what any queue with durable leases pays.
set -euo pipefail
source "$(dirname "$0")/../test/cluster.sh"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
CARTS=${CARTS:-100000}

install_dependencies
build_and_install
WORK=$(mktemp -d /tmp/personalisation-bench.XXXXXX)
chmod 755 "$WORK"
DB=bench
start_cluster "$WORK/cluster" "$(free_port 55532)" "$DB"
trap 'stop_cluster; rm -rf "$WORK"' EXIT
createdb "$DB"
export PGDATABASE=$DB
psql -q -X -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION personalisation'

# seconds runs a psql command and prints how long it took, in seconds.
seconds() {
    local start end
    start=$(date +%s.%N)
    psql -q -X -v ON_ERROR_STOP=1 "$@" >/dev/null
    end=$(date +%s.%N)
    awk -v a="$end" -v b="$start" 'BEGIN { print a - b }'
}

# rate COUNT SECONDS prints COUNT / SECONDS as a whole number.
rate() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a / b }'; }

# ratio A B prints A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

T0=$(psql -AtX -c "SELECT date_trunc('minute', now() - interval '4 days')")
echo "== setup: $CARTS carts with two products each, at $T0"
echo "   $(seconds -v carts="$CARTS" -v t0="$T0" -f "$BENCH_DIR/journeys_setup.sql") s"

echo "== run_due over $CARTS abandoned carts"
messages() { psql -AtX -c "SELECT count(*) FROM personalisation.outbox"; }
before=0
for round in "push (declares every cart):30 minutes" "first email:60 minutes" "social-proof email:24 hours"; do
    name=${round%%:*}; offset=${round#*:}
    secs=$(seconds -c "SELECT personalisation.run_due(timestamptz '$T0' + interval '$offset')")
    after=$(messages)
    written=$((after - before)); before=$after
    echo "   $name: $written messages in $(printf '%.2f' "$secs") s = $(rate "$written" "$secs") messages/s"
    if [ "$offset" = "30 minutes" ]; then push_rate=$(rate "$written" "$secs"); fi
done
secs=$(seconds -v t1="$(psql -AtX -c "SELECT timestamptz '$T0' + interval '30 minutes'")" -f "$BENCH_DIR/journeys_baseline.sql")
plain=$(psql -AtX -c "SELECT count(*) FROM bench_plain_outbox")
plain_rate=$(rate "$plain" "$secs")
echo "   baseline, plain INSERT ... SELECT of the push messages: $plain rows in $(printf '%.2f' "$secs") s = $(rate "$plain" "$secs") rows/s"
echo "   ratio run_due push round / plain insert: $(ratio "$push_rate" "$plain_rate")"

echo "== outbox: claim-and-ack against raw DELETE ... FOR UPDATE SKIP LOCKED"
psql -q -X -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE bench_bare_queue (id bigserial PRIMARY KEY, payload jsonb NOT NULL);
INSERT INTO bench_bare_queue (payload) SELECT payload FROM personalisation.outbox ORDER BY message_id;
VACUUM ANALYZE;
SQL
# drain CLIENTS BATCH MESSAGES SCRIPT prints messages per second for one pgbench run.
drain() {
    local clients=$1 batch=$2 total=$3 script=$4 tps
    tps=$(pgbench -n -c "$clients" -j "$clients" -t $((total / clients / batch)) -D batch="$batch" \
          -f "$BENCH_DIR/$script" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
    awk -v a="$tps" -v b="$batch" 'BEGIN { print a * b }'
}
for clients in 1 4; do
    for batch in 1 100; do
        if [ "$batch" -eq 1 ]; then total=4000; else total=40000; fi
        raw=$(drain "$clients" "$batch" "$total" queue_raw_delete.sql)
        leased=$(drain "$clients" "$batch" "$total" queue_claim_ack.sql)
        held=$(drain "$clients" "$batch" "$total" queue_claim_ack_tx.sql)
        by_hand=$(drain "$clients" "$batch" "$total" queue_lease_sql.sql)
        printf '   %d consumer(s), batch %3d: raw DELETE %6.0f msg/s | claim, ack in 2 transactions %6.0f msg/s, ratio %s | in 1 transaction %6.0f msg/s, ratio %s | hand-written lease SQL %6.0f msg/s, ratio %s\n' \
            "$clients" "$batch" "$raw" "$leased" "$(ratio "$leased" "$raw")" "$held" "$(ratio "$held" "$raw")" \
            "$by_hand" "$(ratio "$by_hand" "$raw")"
    done
done
psql -AtX -c "SELECT '   outbox after the run: ' || string_agg(status || ' ' || n, ', ' ORDER BY status)
                FROM (SELECT status, count(*) AS n FROM personalisation.outbox GROUP BY status) s"
