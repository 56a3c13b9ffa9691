#!/usr/bin/env bash
# test/report_page.sh: the report page in a browser, run by the test command
# against its instance (PGHOST, PGPORT and PGUSER in the environment).  It
# fills a database with a planted effect for every experiment
# (test/report_page.sql), checks that uplift_summary() finds each of them
# inside its interval, writes uplift_report_html() to a file and renders it
# in headless Chromium (test/report_page.js): the page must load with no
# console or script error and no request but itself, show every claim, and
# draw every SVG at a nonzero size.  REPORT_PAGE_SCREENSHOT=FILE keeps a
# PNG of the rendered page.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"
DB=personalisation_report_page
WORK=$(mktemp -d /tmp/personalisation-report-page.XXXXXX)
chmod 755 "$WORK"
source "$REPO_DIR/test/checks.sh"
FAILURES=0

echo "== report page"
PGOPTIONS="-c client_min_messages=warning" dropdb --if-exists "$DB"
createdb "$DB"
sql "$DB" -c 'CREATE EXTENSION personalisation'
sql "$DB" -f "$REPO_DIR/test/report_page.sql" >/dev/null

# every experiment reports its planted effect inside its interval
check "uplift_summary() has the five experiments, each with its planted effect inside its interval" "$DB" "
SELECT count(*) = 5 AND bool_and(s.significant AND s.uplift_low < p.planted AND p.planted < s.uplift_high)
  FROM personalisation.uplift_summary() s
  JOIN (VALUES ('ranking', 'conversion', 1.5), ('abandoned_cart', 'recovery', 3.0),
               ('post_purchase', 'repeat orders', 3.0), ('subscription_offer', 'uptake', 4.0),
               ('subscription_offer', '12-month retention', 4.0)) AS p(experiment, metric, planted)
    USING (experiment, metric)"

sql "$DB" -c 'SELECT claim FROM personalisation.uplift_summary()' >"$WORK/claims"
sql "$DB" -c 'SELECT personalisation.uplift_report_html()' >"$WORK/uplift_report.html"
node "$REPO_DIR/test/report_page.js" "$WORK/uplift_report.html" "$WORK/claims" \
     "${REPORT_PAGE_SCREENSHOT:-}" || FAILURES=$((FAILURES + 1))

dropdb "$DB"
if [ "$FAILURES" -ne 0 ]; then
    echo "report page: $FAILURES failed (files kept in $WORK)"
    exit 1
fi
rm -rf "$WORK"
