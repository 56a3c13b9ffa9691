# cluster.sh: sourced by the test, demo and bench commands.
# Installs what the extension needs, builds and installs it, and runs a
# throw-away PostgreSQL instance as an unprivileged user (PostgreSQL refuses
# to run as root).  After start_cluster, psql and friends reach it through
# PGHOST, PGPORT and PGUSER.

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BINDIR=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
REQUIRED_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap pgtap chromium nodejs python3-psycopg python3-aiosmtpd)

# as_root runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# install_dependencies installs whichever of REQUIRED_PACKAGES is missing.
install_dependencies() {
    local missing=()
    for pkg in "${REQUIRED_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    PG_BINDIR=$(pg_config --bindir)
}

# build_and_install compiles the extension and installs it into the server's directories.
build_and_install() {
    echo "== building and installing personalisation"
    make -C "$REPO_DIR" -s >/dev/null
    as_root make -C "$REPO_DIR" -s install >/dev/null
}

# start_cluster DIR PORT DATABASE starts a fresh instance with its data and
# socket in DIR, preloading pg_cron and personalisation, with pg_cron's
# database set to DATABASE.
start_cluster() {
    CLUSTER_DIR=$1 CLUSTER_PORT=$2 CLUSTER_DB=$3
    if [ "$(id -u)" -eq 0 ]; then SERVER_USER=postgres; else SERVER_USER=$(id -un); fi
    mkdir -p "$CLUSTER_DIR"
    [ "$(id -u)" -eq 0 ] && chown "$SERVER_USER" "$CLUSTER_DIR"
    as_server "$PG_BINDIR/initdb" -D "$CLUSTER_DIR/data" -U "$SERVER_USER" --auth=trust \
        --no-instructions -E UTF8 --locale=C.UTF-8 >"$CLUSTER_DIR/initdb.log" 2>&1 \
        || { cat "$CLUSTER_DIR/initdb.log"; return 1; }
    {
        cat "$REPO_DIR/test/personalisation.conf"
        echo "port = $CLUSTER_PORT"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$CLUSTER_DIR'"
        echo "cron.database_name = '$CLUSTER_DB'"
    } | as_server tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
    as_server "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null \
        || { cat "$CLUSTER_DIR/server.log"; return 1; }
    export PGHOST=$CLUSTER_DIR PGPORT=$CLUSTER_PORT PGUSER=$SERVER_USER
}

# stop_cluster stops the instance started by start_cluster.
stop_cluster() {
    as_server "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}

# as_server runs a command as the unprivileged user that owns the cluster.
as_server() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u "$SERVER_USER" -- "$@"; else "$@"; fi
}

# free_port prints a port number no local socket is using, from $1 upward: no
# TCP listener, and no PostgreSQL Unix socket for it in any directory (the
# throw-away instances keep theirs in their own directories).
free_port() {
    local port=$1
    while [ -e "/tmp/.s.PGSQL.$port" ] || (ss -ltn 2>/dev/null | grep -q ":$port ") \
        || (ss -lxn 2>/dev/null | grep -q "/\.s\.PGSQL\.$port "); do port=$((port + 1)); done
    echo "$port"
}
