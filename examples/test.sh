#!/usr/bin/env bash
# examples/test.sh: the delivery worker's test, run by the test command
# against its instance (PGHOST, PGPORT and PGUSER in the environment).
#
# In a fresh database it abandons two carts 73 hours ago and runs run_due at
# the times the abandoned_cart journey's emails fall due (60 minutes, 24 and
# 72 hours), so that each cart has three emails queued, the last with its
# coupon.  It starts the SMTP sink on loopback and runs the worker once, as a
# login role granted only personalisation_sender, and checks that
#   - ann's three emails arrive, to her address, with the abandoned item, and
#     the incentive email with the coupon code the outbox row carries,
#   - they are acknowledged (delivered), and
#   - bob's, whose address the SMTP server refuses, are failed with the
#     server's answer and wait for their retry.
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO_DIR/test/cluster.sh"
PYTHON=/usr/bin/python3
DB=personalisation_example_worker
ROLE=personalisation_example_mailer
WORK=$(mktemp -d /tmp/personalisation-example.XXXXXX)
SINK_PID=
cleanup() {
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    dropdb --if-exists "$DB" >/dev/null 2>&1 || true
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
echo "== delivery worker example"

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
psql -X -q -d "$DB" -v ON_ERROR_STOP=1 <<SQL >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION personalisation;
DROP ROLE IF EXISTS $ROLE;
CREATE ROLE $ROLE LOGIN;
GRANT personalisation_sender TO $ROLE;
INSERT INTO personalisation.categories VALUES ('ex-outdoor', NULL, 'Outdoor');
INSERT INTO personalisation.products (product_id, category_id, name, price) VALUES
  ('ex-tent', 'ex-outdoor', 'Two-person tent', 249.00);
SET personalisation.journey_holdout_percent = 0;
SELECT personalisation.identify('ex-ann-s', 'ex-ann', 'ann@example.com', now() - interval '73 hours');
SELECT personalisation.identify('ex-bob-s', 'ex-bob', 'refuse-bob@example.com', now() - interval '73 hours');
SELECT personalisation.set_consent(s, 'email', true, now() - interval '73 hours') FROM unnest(ARRAY['ex-ann-s', 'ex-bob-s']) s;
SELECT personalisation.track_cart_add(s, 'ex-tent', 1, now() - interval '73 hours') FROM unnest(ARRAY['ex-ann-s', 'ex-bob-s']) s;
SELECT personalisation.run_due(now() - interval '73 hours' + d)
  FROM unnest(ARRAY[interval '61 minutes', interval '24 hours 1 minute', interval '72 hours 1 minute']) d;
SQL
queued=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM personalisation.outbox WHERE status = 'pending' AND channel = 'email'")
[ "$queued" = 6 ] || { echo "not ok - expected 6 queued emails, found $queued"; exit 1; }
coupon=$(psql -X -At -d "$DB" -c "SELECT o.payload -> 'incentive' ->> 'code' FROM personalisation.outbox o
                                   WHERE o.session_id = 'ex-ann-s' AND o.template = 'cart_incentive'")

PORT=$(free_port 2525)
mkdir -p "$WORK/mail"
"$PYTHON" "$REPO_DIR/examples/smtp_sink.py" "$PORT" "$WORK/mail" &
SINK_PID=$!
for _ in $(seq 50); do [ -e "$WORK/mail/ready" ] && break; sleep 0.1; done
[ -e "$WORK/mail/ready" ] || { echo "not ok - the SMTP sink did not start"; exit 1; }

"$PYTHON" "$REPO_DIR/examples/delivery_worker.py" --once --consumer example-mailer \
    --dsn "host=$PGHOST port=$PGPORT user=$ROLE dbname=$DB" \
    --smtp-host 127.0.0.1 --smtp-port "$PORT" --from shop@example.com 2>"$WORK/worker.err"

status=0
check() {
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected $3, got $2"; status=1; fi
}
check "three emails arrive at the SMTP server" "$(ls "$WORK/mail"/*.eml 2>/dev/null | wc -l)" 3
check "all to ann" "$(grep -l '^To: ann@example.com' "$WORK/mail"/*.eml | wc -l)" 3
check "each with the abandoned item" "$(grep -l '1 x Two-person tent at 249.00' "$WORK/mail"/*.eml | wc -l)" 3
check "the incentive email carries the outbox row's coupon" \
      "$(grep -l "Use coupon $coupon for 10% off" "$WORK/mail"/*.eml | wc -l)" 1
check "under the incentive subject" "$(grep -l '^Subject: A little something to complete your order' "$WORK/mail"/*.eml | wc -l)" 1
check "ann's messages are acknowledged" \
      "$(psql -X -At -d "$DB" -c "SELECT string_agg(status, ',' ORDER BY step) FROM personalisation.outbox WHERE session_id = 'ex-ann-s' AND channel = 'email'")" \
      "delivered,delivered,delivered"
check "bob's, refused by the server, are failed with its answer and wait for a retry" \
      "$(psql -X -At -d "$DB" -c "SELECT string_agg(status || '/' || attempts || '/' || (last_error LIKE '%550%mailbox unavailable%'), ',' ORDER BY step)
                                    FROM personalisation.outbox WHERE session_id = 'ex-bob-s' AND channel = 'email'")" \
      "pending/1/true,pending/1/true,pending/1/true"
[ $status -eq 0 ] || cat "$WORK/worker.err"
exit $status
