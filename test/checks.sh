# checks.sh: sourced by the shell tests (test/upgrade.sh, test/backup.sh):
# TAP-style checks against databases of the test instance, counted in
# FAILURES.  The sourcing script sets WORK, a directory for its files, and
# SAME_LABELS, the names of the two sides `same` compares.
FAILURES=0

# sql DB [psql args]: runs SQL in DB, quietly, printing bare values.
sql() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

# check NAME DB QUERY: the boolean query must be true in DB.
check() {
    local answer
    answer=$(sql "$2" -c "$3" 2>&1 || true)
    if [ "$answer" = "t" ]; then echo "ok - $1"; else echo "not ok - $1 ($answer)"; FAILURES=$((FAILURES + 1)); fi
}

# same NAME FILE_A FILE_B [LABEL_A LABEL_B]: the two files must be equal;
# prints their unified diff if not (labels default to SAME_LABELS).
same() {
    if diff -u --label "${4:-${SAME_LABELS[0]}}" --label "${5:-${SAME_LABELS[1]}}" "$2" "$3" >"$WORK/diff"; then
        echo "ok - $1"
    else
        echo "not ok - $1"; sed 's/^/#   /' "$WORK/diff"; FAILURES=$((FAILURES + 1))
    fi
}
