# common.sh: sourced by the benchmarks.  Starts a throw-away instance (via
# test/cluster.sh) with a database `bench` holding the extension and a
# catalogue of $BENCH_PRODUCTS products (catalogue.sql), and offers a pgbench runner
# and psql helpers.
source "$(dirname "${BASH_SOURCE[0]}")/../test/cluster.sh"

BENCH_PRODUCTS=${BENCH_PRODUCTS:-20000}

# bench_start brings up the instance, on port $BENCH_PORT (default: the first
# free port from 55532, so that benchmarks run side by side do not collide),
# and the catalogue.
bench_start() {
    install_dependencies
    build_and_install
    BENCH_WORK=$(mktemp -d /tmp/personalisation-bench.XXXXXX)
    chmod 755 "$BENCH_WORK"
    start_cluster "$BENCH_WORK/cluster" "${BENCH_PORT:-$(free_port 55532)}" bench
    trap 'stop_cluster; rm -rf "$BENCH_WORK"' EXIT
    createdb bench
    psql -q -X -d bench -v ON_ERROR_STOP=1 -v products="$BENCH_PRODUCTS" -c "CREATE EXTENSION personalisation" \
        -f "$(dirname "${BASH_SOURCE[0]}")/catalogue.sql" -c "ANALYZE"
}

# pgbench_tps SCRIPT SECONDS CLIENTS [PGOPTIONS] prints the transactions per
# second pgbench reaches running SCRIPT (prepared statements, no vacuum).
pgbench_tps() {
    local script=$1 seconds=$2 clients=$3 options=${4:-}
    PGOPTIONS="$options" "$PG_BINDIR/pgbench" -n -M prepared -c "$clients" -j "$clients" \
        -T "$seconds" -f "$script" bench 2>&1 | awk '/^tps/ { print $3; exit }'
}

# sql ARGS... runs psql on the bench database quietly, stopping at the first error.
sql() {
    psql -q -X -At -v ON_ERROR_STOP=1 -d bench "$@"
}

# seconds SQL prints how long the statement (or psql meta-command) takes, in seconds.
seconds() {
    local start end
    start=$(date +%s.%N)
    sql -c "$1" >/dev/null
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }'
}

# ratio A B prints A / B with two decimals.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
}

# median prints the median of the numbers on stdin.
median() {
    tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
