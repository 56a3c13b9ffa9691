#!/usr/bin/env bash
# Post-purchase journey benchmarks, each against a baseline measured in the
# same run, on the throw-away instance of common.sh (about four minutes on
# two cores).  The catalogue's every tenth product is subscribable (30 days);
# complementarity counts 250,000 orders of history (complement_data.sql).
#
#  1. ingest: track_purchase with the post-purchase journeys enabled (every
#     order enrols its buyer, or joins the buyer's running cross-sell run and
#     offers) against the same purchases with them disabled; baskets of 1-8
#     lines (complement_purchase.sql), 2 pgbench clients, five rounds each,
#     alternated.
#  2. run_due: the day-3 cross-sell round over RUNS orders of known,
#     consenting customers (each email with up to 4 recommendations) against
#     a plain INSERT ... SELECT writing the same messages, with the order's
#     items but no recommendations, to a bare table.
set -euo pipefail
source "$(dirname "$0")/common.sh"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
INGEST_SECONDS=${INGEST_SECONDS:-12}
RUNS=${RUNS:-10000}

bench_start

# journeys on|off switches the post-purchase journeys.
journeys() {
    sql -c "UPDATE personalisation.journeys SET enabled = $([ "$1" = on ] && echo true || echo false)
             WHERE trigger <> 'cart_abandoned'"
}

echo "== setup: every tenth product subscribable, 250,000 orders of history counted"
sql -c "UPDATE personalisation.products SET subscribable = true, replenish_days = 30
         WHERE substr(product_id, 2)::int % 10 = 0"
sql -v first=1 -v last=250000 -f "$BENCH_DIR/complement_data.sql"
sql -c "SELECT * FROM personalisation.rebuild_complementarity()" >/dev/null
sql -c "ALTER DATABASE bench SET personalisation.journey_holdout_percent = 0" \
    -c "ALTER DATABASE bench SET personalisation.frequency_cap = 0" \
    -c "CREATE SEQUENCE bench_order_ids" -c "CHECKPOINT"

echo "== 1. purchase ingest, post-purchase journeys on against off (2 clients, ${INGEST_SECONDS} s rounds)"
journeys on
pgbench_tps "$BENCH_DIR/complement_purchase.sql" "$INGEST_SECONDS" 2 >/dev/null   # warm-up, not counted
on_total=0; off_total=0
for round in 1 2 3 4 5; do
    journeys off
    off=$(pgbench_tps "$BENCH_DIR/complement_purchase.sql" "$INGEST_SECONDS" 2)
    journeys on
    on=$(pgbench_tps "$BENCH_DIR/complement_purchase.sql" "$INGEST_SECONDS" 2)
    echo "   round $round: journeys off $off tps, on $on tps, ratio $(ratio "$on" "$off")"
    on_total=$(awk -v a="$on_total" -v b="$on" 'BEGIN { print a + b }')
    off_total=$(awk -v a="$off_total" -v b="$off" 'BEGIN { print a + b }')
done
echo "   mean: ratio $(ratio "$on_total" "$off_total")"
sql -c "SELECT '   runs started: ' || count(*) FILTER (WHERE journey = 'post_purchase') || ' cross-sell, '
               || count(*) FILTER (WHERE journey = 'subscription_offer') || ' offers, for '
               || (SELECT count(*) FROM personalisation.orders WHERE order_id LIKE 'bench-o%') || ' orders'
          FROM personalisation.journey_runs"

echo "== 2. run_due: the day-3 cross-sell round over $RUNS orders"
T0=$(sql -c "SELECT date_trunc('minute', now() - interval '1 hour')")
sql -c "TRUNCATE personalisation.journey_runs, personalisation.journey_run_steps, personalisation.outbox"
# the orders go in batches of 500 transactions: each holds an advisory lock per order
sql -v runs="$RUNS" -v t0="$T0" <<'SQL'
SELECT set_config('bench.t0', :'t0', false), set_config('bench.runs', :'runs', false) \g /dev/null
DO $$
BEGIN
    FOR i IN 1 .. current_setting('bench.runs')::int LOOP
        PERFORM personalisation.track_purchase('pp-b' || i, 'pp-o' || i,
                  (SELECT jsonb_agg(jsonb_build_object('product_id', 'p' || (1 + (i * 37 + 11 * j) % 20000),
                                                       'quantity', 1, 'unit_price', 10))
                     FROM generate_series(0, i % 3) AS j),
                  current_setting('bench.t0')::timestamptz);
        IF i % 500 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$$;
UPDATE personalisation.profiles p
   SET customer_id = 'c-' || s.session_id, email = s.session_id || '@example.test', email_consent = true
  FROM personalisation.sessions s WHERE s.session_id LIKE 'pp-b%' AND s.profile_id = p.profile_id;
VACUUM ANALYZE;
SQL
secs=$(seconds "SELECT personalisation.run_due(timestamptz '$T0' + interval '3 days')")
sent=$(sql -c "SELECT count(*) FROM personalisation.outbox WHERE journey = 'post_purchase'")
sql -c "SELECT '   ' || count(*) FILTER (WHERE jsonb_array_length(payload -> 'recommendations') = 4) || ' of '
               || count(*) || ' emails carry 4 recommendations; '
               || round(avg((SELECT count(*) FROM jsonb_array_elements(payload -> 'recommendations') e
                              WHERE e ->> 'reason' = 'also_bought')), 2) || ' complements and '
               || round(avg((SELECT count(*) FROM jsonb_array_elements(payload -> 'recommendations') e
                              WHERE e ->> 'reason' = 'popular_in_category')), 2) || ' popular on average'
          FROM personalisation.outbox WHERE journey = 'post_purchase'"
base=$(seconds "CREATE TABLE bench_plain_outbox AS
  SELECT r.profile_id, r.run_id, timestamptz '$T0' + interval '3 days' AS created_at,
         jsonb_build_object('order_id', r.order_id, 'items',
           (SELECT jsonb_agg(jsonb_build_object('product_id', l.product_id, 'name', p.name,
                     'quantity', l.quantity, 'unit_price', l.unit_price, 'url', p.url, 'image_url', p.image_url)
                     ORDER BY l.product_id)
              FROM personalisation.order_lines l JOIN personalisation.products p USING (product_id)
             WHERE l.order_id = r.order_id)) AS payload
    FROM personalisation.journey_runs r WHERE r.journey = 'post_purchase'")
rate=$(awk -v a="$sent" -v b="$secs" 'BEGIN { printf "%.0f", a / b }')
base_rate=$(awk -v a="$RUNS" -v b="$base" 'BEGIN { printf "%.0f", a / b }')
echo "   run_due: $sent emails in $secs s = $rate messages/s"
echo "   baseline, plain INSERT ... SELECT of the messages without recommendations: $RUNS rows in $base s = $base_rate rows/s"
echo "   ratio run_due / plain insert: $(ratio "$rate" "$base_rate")"
