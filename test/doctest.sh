#!/usr/bin/env bash
# test/doctest.sh: the doc test, run by the test command against its instance
# (PGHOST, PGPORT and PGUSER in the environment).  Every ```sql block of
# README.md and docs/*.md runs, in order, in a fresh database of its own file
# (ON_ERROR_STOP; the extension created first unless the file creates it),
# so an example that no longer works fails the test.  A block
# opened with ```sql norun is shown but not run (kept for what a throw-away
# database lacks, such as pg_cron in it).
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d /tmp/personalisation-doctest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
status=0
echo "== doc test"
for doc in "$REPO_DIR/README.md" "$REPO_DIR"/docs/*.md; do
    name=$(basename "$doc" .md)
    script="$WORK/$name.sql"
    # the sql blocks of the file, each preceded by a comment naming its line
    awk -v file="$(basename "$doc")" '
        /^```sql norun/ { skip = 1; next }
        /^```sql[[:space:]]*$/ { inside = 1; print "\\echo " file ":" NR; next }
        /^```/ { inside = 0; skip = 0; next }
        inside { print }
    ' "$doc" >"$script"
    blocks=$(grep -c '^\\echo ' "$script" || true)
    [ "$blocks" -eq 0 ] && continue
    # a file that does not create the extension is run where it exists
    grep -q 'CREATE EXTENSION' "$script" || sed -i '1i CREATE EXTENSION personalisation;' "$script"
    db="doctest_$name"
    dropdb --if-exists "$db" >/dev/null 2>&1
    createdb "$db"
    if psql -X -q -d "$db" -v ON_ERROR_STOP=1 -f "$script" >"$WORK/$name.out" 2>&1; then
        echo "ok - the $blocks sql blocks of $(basename "$doc") run in a fresh database"
    else
        status=1
        echo "not ok - an sql block of $(basename "$doc") fails; the block that failed starts after the last line below:"
        grep -E '^[a-z_]+\.md:[0-9]+$|ERROR|HINT|DETAIL' "$WORK/$name.out" | tail -n 6
    fi
    dropdb "$db"
done
exit $status
