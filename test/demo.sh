#!/usr/bin/env bash
# The demo command (make demo): installs what is missing, builds, installs,
# starts a throw-away cluster in $DEMO_DIR, loads the deterministic sample
# shop, prints a walk-through of what the extension holds, and leaves the
# cluster running for you to explore, with the background worker and
# pg_cron's jobs on, as in a real installation.  `make demo-stop` stops it.
#
# The sample shop and the walk-through replay traffic of the past weeks on
# a simulated clock (run_due at explicit instants, in order).  The worker
# and pg_cron's run-due job act at the real time, ahead of that clock, so
# they are paused while the replay runs and switched on when it is done:
# from then on they handle the carts and messages of the present.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"
DEMO_DIR=${DEMO_DIR:-/tmp/personalisation-demo}
DEMO_PORT=${DEMO_PORT:-55433}

if [ "${1:-}" = "stop" ]; then
    if [ -d "$DEMO_DIR/data" ]; then
        CLUSTER_DIR=$DEMO_DIR
        if [ "$(id -u)" -eq 0 ]; then SERVER_USER=postgres; else SERVER_USER=$(id -un); fi
        stop_cluster
        rm -rf "$DEMO_DIR"
        echo "demo cluster stopped and removed"
    else
        echo "no demo cluster in $DEMO_DIR"
    fi
    exit 0
fi

install_dependencies
build_and_install
"$0" stop >/dev/null
start_cluster "$DEMO_DIR" "$DEMO_PORT" shop
createdb shop
psql -q -X -d shop -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION pg_cron;
CREATE EXTENSION personalisation;
SQL
echo "== loading the sample shop"
psql -q -X -d shop -v ON_ERROR_STOP=1 -f "$REPO_DIR/test/demo/shop.sql" >/dev/null
psql -q -X -d shop -c 'SELECT job_name, schedule FROM personalisation.schedule_jobs()'
psql -q -X -d shop -At -v ON_ERROR_STOP=1 >/dev/null \
     -c "SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE jobname = 'personalisation:run-due'"
REPORT="$DEMO_DIR/uplift_report.html"
for part in "$REPO_DIR"/test/demo/[0-9]*.sql; do
    psql -X -q -d shop -v report="$REPORT" -f "$part"
done

echo "== the replay is done: the worker and pg_cron's run-due job take over at the real time"
psql -q -X -d shop -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
ALTER SYSTEM SET personalisation.worker_enabled = on;
SELECT pg_reload_conf();
SELECT cron.alter_job(jobid, active => true) FROM cron.job WHERE jobname = 'personalisation:run-due';
SQL
# the reload reaches every backend within moments; start_worker reads the setting in the worker
for _ in $(seq 50); do
    psql -q -X -At -d shop -c 'SELECT personalisation.start_worker()' >/dev/null
    [ "$(psql -q -X -At -d shop -c 'SELECT count(*) FROM personalisation.worker_status() WHERE pid IS NOT NULL')" -gt 0 ] && break
    sleep 0.2
done
psql -X -d shop -P footer=off -c "SELECT pid, started_at::timestamp(0), runs, actions, errors FROM personalisation.worker_status()" \
     -c "SELECT jobname, schedule, active FROM cron.job WHERE jobname LIKE 'personalisation:%' ORDER BY jobname"

cat <<EOT

The demo shop is running.
  connect:  psql -h $DEMO_DIR -p $DEMO_PORT -U $PGUSER shop
  report:   $REPORT (open it in a browser)
  stop:     make demo-stop
EOT
