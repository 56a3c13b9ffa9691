#!/usr/bin/env bash
# The background worker (src/worker.c), on a throw-away instance of its own
# port, with nothing but the worker advancing the journeys: pg_cron's run_due
# job is not registered and nobody calls run_due.
#  1. Latency: CARTS (default 1,000) carts, each in a browser session that
#     granted push consent, created one transaction each over about SPREAD
#     (default 10) seconds, with personalisation.abandon_after at its minimum
#     of 1 minute, the default naptime (1 s) and no holdout.  For each cart,
#     the time from its abandonment threshold passing (last activity +
#     abandon_after, the run's abandoned_at) to its push message being in
#     personalisation.outbox: to the commit of the worker's transaction that
#     wrote it (track_commit_timestamp), when the message becomes visible,
#     and to the outbox row's created_at, the instant that transaction's
#     RunDue started (a lower bound).  p50, p95, p99 and max.  Target: p99 of
#     the commit <= 2 s.
#  2. Ingest with the worker on against off, same run: pgbench, CLIENTS
#     (default 2) clients, page views (bench/ingest_track.sql) and cart adds
#     (bench/worker_cart.sql: each commit wakes the worker), ROUNDS (default
#     4) rounds of SECONDS_PER_RUN (default 8) seconds, the two modes
#     alternating (off first in odd rounds, on first in even ones), median
#     tps.  The worker is switched with ALTER SYSTEM and a reload, and seen
#     started or gone in pg_stat_activity before each measurement.
#     abandon_after is back at its default (30 min) here, so no cart is
#     abandoned during the rounds: what is measured is what the worker's
#     wake-ups and runs cost ingest.  synchronous_commit is INGEST_SYNC
#     (default off): with it on, the disk's flush latency makes single rounds
#     vary by up to 2x and hides a 5% difference; off, the rounds are
#     CPU-bound, which is where the worker's own work would show.
#     Target: >= 0.95x.
set -euo pipefail
source "$(dirname "$0")/common.sh"
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
CARTS=${CARTS:-1000}
SPREAD=${SPREAD:-10}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
ROUNDS=${ROUNDS:-4}
INGEST_SYNC=${INGEST_SYNC:-off}
CLIENTS=${CLIENTS:-2}
BENCH_PORT=${BENCH_PORT:-$(free_port 55542)}

# worker_pid prints the pid of the bench database's worker, or nothing.
worker_pid() {
    sql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'personalisation worker' AND datname = 'bench'"
}

# worker_runs prints how many runs the bench database's worker has done.
worker_runs() {
    sql -c "SELECT coalesce(sum(runs), 0) FROM personalisation.worker_status()
             WHERE database_id = (SELECT oid FROM pg_database WHERE datname = 'bench')"
}

# set_worker on|off sets personalisation.worker_enabled with a reload and
# waits until the worker runs (starting it) or has exited.
set_worker() {
    sql -c "ALTER SYSTEM SET personalisation.worker_enabled = $1" -c "SELECT pg_reload_conf()" >/dev/null
    for i in $(seq 200); do
        if [ "$1" = on ]; then
            [ -n "$(worker_pid)" ] && return 0
            # a worker forked before the postmaster reread the file exits at once: ask again
            if [ $((i % 10)) -eq 1 ]; then sql -c "SELECT personalisation.start_worker()" >/dev/null; fi
        else
            [ -z "$(worker_pid)" ] && return 0
        fi
        sleep 0.1
    done
    echo "the worker did not turn $1 within 20 s" >&2
    exit 1
}

bench_start
echo "== instance on port $PGPORT"
# commit timestamps tell when each message became visible; track_functions
# counts any call of run_due()
sql -c "ALTER SYSTEM SET track_commit_timestamp = on" -c "ALTER SYSTEM SET track_functions = 'all'" \
    -c "ALTER SYSTEM SET personalisation.abandon_after = '1min'" \
    -c "ALTER SYSTEM SET personalisation.journey_holdout_percent = 0" \
    -c "ALTER SYSTEM SET personalisation.worker_enabled = on"
as_server "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
jobs=$(sql -c "SELECT CASE WHEN to_regclass('cron.job') IS NULL THEN 0 END" )
if [ -z "$jobs" ]; then
    jobs=$(sql -c "SELECT count(*) FROM cron.job WHERE command LIKE '%run_due%'")
fi
if [ "$jobs" != 0 ]; then
    echo "pg_cron has a run_due job: the worker would not be alone" >&2
    exit 1
fi
set_worker on

# 1. Latency
sql -v carts="$CARTS" -v spread="$SPREAD" >/dev/null <<'SQL'
SELECT set_config('bench.carts', :'carts', false), set_config('bench.spread', :'spread', false);
-- one cart per session, each in its own transaction, a random pause between them
DO $$
DECLARE
  carts int := current_setting('bench.carts')::int;
  pause float8 := current_setting('bench.spread')::float8 / carts;
BEGIN
  FOR i IN 1..carts LOOP
    PERFORM personalisation.set_consent('wk' || i, 'push', true, clock_timestamp());
    PERFORM personalisation.track_cart_add('wk' || i, 'p' || (1 + i * 7919 % 20000), 1, clock_timestamp());
    COMMIT;
    PERFORM pg_sleep(random() * 2 * pause);
  END LOOP;
END $$;
SQL
read -r created_over last_due < <(sql -F ' ' -c "
    SELECT round(extract(epoch FROM max(last_activity_at) - min(last_activity_at))::numeric, 1),
           extract(epoch FROM max(last_activity_at) + current_setting('personalisation.abandon_after')::interval - clock_timestamp())
      FROM personalisation.carts WHERE session_id LIKE 'wk%'")
echo "== $CARTS carts created over ${created_over}s; the last threshold passes in $(printf '%.0f' "$last_due")s"
deadline=$(( $(date +%s) + ${last_due%.*} + 30 ))
until [ "$(sql -c "SELECT count(*) FROM personalisation.outbox WHERE session_id LIKE 'wk%' AND step = 1")" -ge "$CARTS" ]; do
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "only $(sql -c "SELECT count(*) FROM personalisation.outbox WHERE session_id LIKE 'wk%' AND step = 1") of $CARTS push messages 30 s after the last threshold" >&2
        exit 1
    fi
    sleep 1
done
run_due_calls=$(sql -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'run_due'")

echo "Latency from a cart's abandonment threshold to its push message in the outbox,"
echo "$CARTS carts over ${created_over}s, abandon_after 1min, worker_naptime $(sql -c "SHOW personalisation.worker_naptime"), run_due called $run_due_calls times"
printf '%-34s %7s %7s %7s %7s\n' "" p50 p95 p99 max
sql -F ' ' -c "
    WITH l AS (
        SELECT extract(epoch FROM pg_xact_commit_timestamp(o.xmin) - r.abandoned_at) AS committed,
               extract(epoch FROM o.created_at - r.abandoned_at) AS created
          FROM personalisation.outbox o
          JOIN personalisation.journey_runs r USING (profile_id, run_id)
         WHERE o.session_id LIKE 'wk%' AND o.step = 1)
    SELECT 'committed_(visible)', percentile_cont(0.5) WITHIN GROUP (ORDER BY committed),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY committed),
           percentile_cont(0.99) WITHIN GROUP (ORDER BY committed), max(committed) FROM l
    UNION ALL
    SELECT 'created_at_(its_run_started)', percentile_cont(0.5) WITHIN GROUP (ORDER BY created),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY created),
           percentile_cont(0.99) WITHIN GROUP (ORDER BY created), max(created) FROM l" |
    while read -r what p50 p95 p99 max; do
        printf '%-34s %6.3fs %6.3fs %6.3fs %6.3fs\n' "${what//_/ }" "$p50" "$p95" "$p99" "$max"
    done
echo "target: p99 committed <= 2 s"

# 2. Ingest, worker on and off
sql -c "ALTER SYSTEM RESET personalisation.abandon_after" -c "ALTER SYSTEM RESET track_functions" \
    -c "SELECT pg_reload_conf()" >/dev/null
# warm up: create the page-view and cart sessions
"$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t 10000 -f "$BENCH_DIR/ingest_track.sql" bench >/dev/null 2>&1
"$PG_BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -t 5000 -f "$BENCH_DIR/worker_cart.sql" bench >/dev/null 2>&1

declare -A tps=()
cart_runs=""
for round in $(seq "$ROUNDS"); do
    modes="off on"
    [ $((round % 2)) -eq 0 ] && modes="on off"
    for mode in $modes; do
        set_worker "$mode"
        tps[page-$mode]+="$(pgbench_tps "$BENCH_DIR/ingest_track.sql" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=$INGEST_SYNC") "
        runs=$(worker_runs)
        tps[cart-$mode]+="$(pgbench_tps "$BENCH_DIR/worker_cart.sql" "$SECONDS_PER_RUN" "$CLIENTS" "-c synchronous_commit=$INGEST_SYNC") "
        if [ "$mode" = on ]; then
            [ -n "$(worker_pid)" ] || { echo "the worker stopped during the round" >&2; exit 1; }
            cart_runs+="$(( ($(worker_runs) - runs) / SECONDS_PER_RUN )) "
        fi
    done
done
set_worker off

echo "Ingest with the worker on vs off, $CLIENTS clients, synchronous_commit $INGEST_SYNC, $ROUNDS alternated rounds of ${SECONDS_PER_RUN}s, median tps"
printf '%-30s %10s %10s %8s\n' workload off_tps on_tps ratio
for workload in page cart; do
    off=$(echo ${tps[$workload-off]} | median)
    on=$(echo ${tps[$workload-on]} | median)
    case $workload in
        page) name="track_page_view" ;;
        cart) name="track_cart_add" ;;
    esac
    printf '%-30s %10.0f %10.0f %8s\n' "$name" "$off" "$on" "$(ratio "$on" "$off")"
    echo "  rounds (tps): off ${tps[$workload-off]}| on ${tps[$workload-on]}"
done
echo "target: >= 0.95x; worker runs per second during the cart rounds: $cart_runs"
