#!/usr/bin/env bash
# The demo command (make demo): installs what is missing, builds, installs,
# starts a throw-away cluster in $DEMO_DIR, loads the deterministic sample
# shop, prints a walk-through of what the extension holds, and leaves the
# cluster running for you to explore.  `make demo-stop` stops it.
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
REPORT="$DEMO_DIR/uplift_report.html"
for part in "$REPO_DIR"/test/demo/[0-9]*.sql; do
    psql -X -q -d shop -v report="$REPORT" -f "$part"
done

cat <<EOT

The demo shop is running.
  connect:  psql -h $DEMO_DIR -p $DEMO_PORT -U $PGUSER shop
  report:   $REPORT (open it in a browser)
  stop:     make demo-stop
EOT
