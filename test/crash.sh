#!/usr/bin/env bash
# test/crash.sh: crash recovery, run by the test command after pg_prove
# against its instance (PGHOST, PGPORT and PGUSER in the environment).
# With the background worker turned on, it kills a backend with SIGKILL in
# the middle of run_due, of claim_messages and of a purchase, each held at
# a known point by a lock another session holds.  After each kill the
# postmaster resets every backend and recovers from the WAL; the script then
# checks that no message is duplicated or lost, that no database sequence is
# behind its table and no journey run stuck, and that the worker is back.
set -euo pipefail
DB=personalisation_crash
FAILURES=0

# sql [psql args]: runs SQL in the crash database, quietly, printing bare values.
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# check NAME QUERY: the boolean query must be true.
check() {
    local answer
    answer=$(sql -c "$2" 2>&1 || true)
    if [ "$answer" = "t" ]; then echo "ok - $1"; else echo "not ok - $1 ($answer)"; FAILURES=$((FAILURES + 1)); fi
}

# wait_for QUERY [SECONDS]: polls a boolean query until it is true.
wait_for() {
    local deadline=$((SECONDS + ${2:-30}))
    until [ "$(sql -c "$1" 2>/dev/null || true)" = "t" ]; do
        [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $1"; return 1; }
        sleep 0.1
    done
}

# kill_in_the_middle NAME CALL: runs CALL in a backend of its own, waits until
# it is blocked on a lock, kills that backend with SIGKILL and waits for the
# postmaster to finish crash recovery.
kill_in_the_middle() {
    local name=$1 call=$2 pid
    psql -X -q -d "$DB" -c "SET application_name = 'crash-victim'" -c "$call" >/dev/null 2>&1 &
    local client=$!
    wait_for "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'crash-victim'
                                AND wait_event_type = 'Lock')"
    pid=$(sql -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'crash-victim'")
    echo "# killing backend $pid with SIGKILL in the middle of $name"
    kill -9 "$pid"
    wait "$client" || true
    wait "$HOLDER" || true
    # the postmaster resets every backend, then recovers
    wait_for "SELECT NOT pg_is_in_recovery()" 60
}

# hold LOCK_STATEMENT: a session that takes a lock and keeps it (until the crash).
hold() {
    psql -X -q -d "$DB" -c "BEGIN" -c "SET application_name = 'crash-holder'" -c "$1" -c "SELECT pg_sleep(600)" \
        >/dev/null 2>&1 &
    HOLDER=$!
    wait_for "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'crash-holder'
                                AND query LIKE '%pg_sleep%')"
}

echo "== crash recovery"
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
sql <<SQL
CREATE EXTENSION personalisation;
ALTER DATABASE $DB SET personalisation.journey_holdout_percent = 0;
ALTER DATABASE $DB SET personalisation.frequency_cap = 0;
INSERT INTO personalisation.categories VALUES ('cr-cat', NULL, 'Crash');
INSERT INTO personalisation.products (product_id, category_id, name, price)
SELECT 'cr-p' || i, 'cr-cat', 'Product ' || i, 10 + i FROM generate_series(1, 20) i;
SQL
# 300 carts abandoned 40 minutes ago, each on a browser that accepts push
sql -c "SET personalisation.journey_holdout_percent = 0" -c "
SELECT count(personalisation.set_consent('cr-s' || i, 'push', true, now() - interval '41 minutes')),
       count(personalisation.track_cart_add('cr-s' || i, 'cr-p' || (i % 20 + 1), 1, now() - interval '40 minutes'))
  FROM generate_series(1, 300) i" >/dev/null

# 1. run_due, blocked writing its first message
hold "LOCK TABLE personalisation.outbox IN SHARE MODE"
psql -X -q -d postgres -c "ALTER SYSTEM SET personalisation.worker_enabled = on" -c "SELECT pg_reload_conf()" >/dev/null
kill_in_the_middle "run_due" "SELECT personalisation.run_due()"
check "what run_due had written died with it: no half-done step" \
      "SELECT NOT EXISTS (SELECT FROM personalisation.outbox o WHERE NOT EXISTS (
                           SELECT FROM personalisation.journey_run_steps s
                            WHERE s.profile_id = o.profile_id AND s.message_id = o.message_id))"
sql -c "SELECT personalisation.start_worker()" >/dev/null
wait_for "SELECT count(*) = 300 FROM personalisation.outbox" 60 || true
sql -c "SELECT personalisation.run_due()" >/dev/null
check "after recovery every abandoned cart has one run and one push message" \
      "SELECT (SELECT count(*) FROM personalisation.journey_runs) = 300
          AND (SELECT count(*) FROM personalisation.outbox WHERE step = 1 AND status = 'pending') = 300"

WORKER_QUERY="SELECT pid FROM pg_stat_activity WHERE backend_type = 'personalisation worker' AND datname = current_database()"
wait_for "SELECT EXISTS ($WORKER_QUERY)" 30
WORKER_BEFORE=$(sql -c "$WORKER_QUERY")
echo "# the worker runs (pid $WORKER_BEFORE) while the next backends are killed"

# 2. claim_messages, holding the messages it picked, blocked settling them
hold "LOCK TABLE personalisation.profiles IN ACCESS EXCLUSIVE MODE"
kill_in_the_middle "claim_messages" "SELECT count(*) FROM personalisation.claim_messages('crash-consumer', 1000)"
check "the killed claim handed out nothing: every message is pending, none attempted" \
      "SELECT bool_and(status = 'pending' AND attempts = 0 AND claimed_by IS NULL) FROM personalisation.outbox"
check "after recovery a claim hands out every message exactly once" \
      "SELECT count(*) = 300 AND count(DISTINCT message_id) = 300
         FROM personalisation.claim_messages('crash-consumer-2', 1000)"
check "and acknowledging them delivers each once" \
      "SELECT personalisation.ack_messages(array_agg(message_id)) = 300 FROM personalisation.outbox"
check "a second claim finds nothing left" \
      "SELECT count(*) = 0 FROM personalisation.claim_messages('crash-consumer-2', 1000)"

# 3. a purchase, blocked updating the cart summary after recording its order
#    and cancelling the buyer's queued message
sql -c "SELECT personalisation.set_consent('cr-buyer', 'push', true, now() - interval '41 minutes'),
               personalisation.track_cart_add('cr-buyer', 'cr-p1', 2, now() - interval '40 minutes')" >/dev/null
wait_for "SELECT EXISTS (SELECT FROM personalisation.outbox o JOIN personalisation.sessions s USING (session_id)
                          WHERE s.session_id = 'cr-buyer' AND o.status = 'pending')" 30
hold "LOCK TABLE personalisation.carts IN SHARE MODE"
kill_in_the_middle "track_purchase" \
    "SELECT personalisation.track_purchase('cr-buyer', 'cr-order', '[{\"product_id\": \"cr-p1\", \"quantity\": 2, \"unit_price\": 11}]')"
check "the killed purchase left nothing: no order, the cart and the queued message intact" \
      "SELECT NOT EXISTS (SELECT FROM personalisation.orders WHERE order_id = 'cr-order')
          AND NOT EXISTS (SELECT FROM personalisation.events WHERE order_id = 'cr-order')
          AND EXISTS (SELECT FROM personalisation.cart_lines WHERE session_id = 'cr-buyer' AND quantity = 2)
          AND EXISTS (SELECT FROM personalisation.outbox WHERE session_id = 'cr-buyer' AND status = 'pending')"
sql -c "SELECT personalisation.track_purchase('cr-buyer', 'cr-order', '[{\"product_id\": \"cr-p1\", \"quantity\": 2, \"unit_price\": 11}]')" >/dev/null
check "retried after recovery, the purchase is recorded once and ends the sequence" \
      "SELECT (SELECT count(*) FROM personalisation.orders WHERE order_id = 'cr-order') = 1
          AND NOT EXISTS (SELECT FROM personalisation.cart_lines WHERE session_id = 'cr-buyer')
          AND (SELECT status FROM personalisation.outbox
                WHERE session_id = 'cr-buyer' AND journey = 'abandoned_cart') = 'cancelled'
          AND (SELECT end_reason FROM personalisation.journey_runs
                WHERE session_id = 'cr-buyer' AND journey = 'abandoned_cart') = 'purchased'"

# After the three crashes.
check "no message is duplicated: one per (run, step), and each sent step has its message" \
      "SELECT (SELECT count(*) = count(DISTINCT (profile_id, run_id, step)) FROM personalisation.outbox)
          AND NOT EXISTS (SELECT FROM personalisation.journey_run_steps s WHERE s.outcome = 'sent'
                           AND NOT EXISTS (SELECT FROM personalisation.outbox o
                                            WHERE o.message_id = s.message_id AND o.profile_id = s.profile_id))"
check "no message is lost: every run did its push, each delivered, or cancelled by the purchase" \
      "SELECT bool_and(o.status IN ('delivered', 'cancelled')) AND count(*) = 301
         FROM personalisation.journey_runs r JOIN personalisation.outbox o USING (profile_id, run_id)"
check "no database sequence is behind its column (found from the catalog)" "
CREATE FUNCTION pg_temp.sequences_ahead() RETURNS boolean LANGUAGE plpgsql AS \$\$
DECLARE
  d record;
  top bigint;
  ahead boolean := true;
BEGIN
  FOR d IN SELECT dep.objid::regclass AS seq, dep.refobjid::regclass AS rel, a.attname
             FROM pg_depend dep JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
             JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
            WHERE s.relnamespace = 'personalisation'::regnamespace AND dep.deptype IN ('a', 'i') LOOP
    EXECUTE format('SELECT max(%I) FROM %s', d.attname, d.rel) INTO top;
    ahead := ahead AND coalesce(pg_sequence_last_value(d.seq), 0) >= coalesce(top, 0);
  END LOOP;
  RETURN ahead;
END \$\$;
SELECT pg_temp.sequences_ahead()"
sql -c "SELECT personalisation.track_cart_add('cr-after', 'cr-p2', 1)" >/dev/null
sql -c "SELECT personalisation.run_due(now() + interval '2 hours')" >/dev/null
check "no journey run is stuck: nothing due is left undone" \
      "SELECT NOT EXISTS (SELECT FROM personalisation.journey_runs
                           WHERE status = 'active' AND next_due_at <= now() + interval '2 hours')"
wait_for "SELECT EXISTS ($WORKER_QUERY)" 30 || true
check "the worker is back after the crashes: a new process, and it has run" \
      "SELECT ($WORKER_QUERY) <> $WORKER_BEFORE
          AND (SELECT runs > 0 FROM personalisation.worker_status() WHERE database_id =
                 (SELECT oid FROM pg_database WHERE datname = current_database()))"
check "and so is pg_cron's scheduler" \
      "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher')"

psql -X -q -d postgres -c "ALTER SYSTEM RESET personalisation.worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null
wait_for "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'personalisation worker')" 30 || true
psql -X -q -d postgres -c "DROP DATABASE $DB" >/dev/null
if [ $FAILURES -gt 0 ]; then echo "crash recovery: $FAILURES check(s) failed"; exit 1; fi
echo "crash recovery: all checks passed"
