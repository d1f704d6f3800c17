# shellcheck shell=bash
# Throwaway PostgreSQL cluster for scripts/demo.sh and bench/run.sh.
# Source it, then:
#
#     cluster_start <name> <first port> <last port> [postgresql.conf lines...]
#
# initdb's a fresh cluster in a new temp dir (mktemp -d /tmp/queue-<name>.XXXXXX,
# owned by the server's user), on the first free port of the range, with its
# unix socket in that dir and no TCP listener, and starts it.  It exports
# PGHOST, PGPORT, PGUSER and PGDATABASE so psql and pgbench reach it, and sets
# CLUSTER_DIR and CLUSTER_PORT.  cluster_stop stops it and removes the dir;
# the caller arranges for that on exit (trap).
#
# PostgreSQL refuses to run as root: as root the server runs as $PG_USER
# (default postgres) through runuser; as anyone else it runs as that user.
# Clients connect as the database superuser "postgres" over the socket,
# which only the server's user and root can reach (the dir is mode 700).

PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_USER=${PG_USER:-postgres}
export PATH="$PG_BIN:$PATH"

CLUSTER_DIR=
CLUSTER_PORT=

if [ "$(id -u)" = 0 ]; then
    as_server_user() { runuser -u "$PG_USER" -- "$@"; }
else
    as_server_user() { "$@"; }
fi

# Succeeds when nothing answers on the port, over TCP or the usual sockets.
port_is_free() {
    local port=$1 host rc
    for host in 127.0.0.1 /var/run/postgresql /tmp; do
        rc=0
        pg_isready -q -h "$host" -p "$port" -t 1 >/dev/null 2>&1 || rc=$?
        [ "$rc" -eq 2 ] || return 1
    done
    return 0
}

cluster_start() {
    local name=$1 first=$2 last=$3 port
    shift 3
    for ((port = first; port <= last; port++)); do
        port_is_free "$port" && break
    done
    if [ "$port" -gt "$last" ]; then
        echo "no free port in $first-$last (pg_isready answered on each)" >&2
        return 1
    fi
    CLUSTER_PORT=$port
    CLUSTER_DIR=$(mktemp -d "/tmp/queue-$name.XXXXXX")
    [ "$(id -u)" = 0 ] && chown "$PG_USER" "$CLUSTER_DIR"

    as_server_user initdb -D "$CLUSTER_DIR/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C >"$CLUSTER_DIR/initdb.log" 2>&1 ||
        { cat "$CLUSTER_DIR/initdb.log" >&2; return 1; }
    {
        echo "# added by scripts/lib/cluster.sh"
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$CLUSTER_DIR'"
        echo "shared_preload_libraries = 'queue'"
        local line
        for line in "$@"; do echo "$line"; done
    } | as_server_user tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
    as_server_user pg_ctl -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -t 60 \
        start >/dev/null ||
        { tail -20 "$CLUSTER_DIR/server.log" >&2; return 1; }

    export PGHOST=$CLUSTER_DIR PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

cluster_stop() {
    [ -n "$CLUSTER_DIR" ] || return 0
    if [ -f "$CLUSTER_DIR/data/postmaster.pid" ]; then
        as_server_user pg_ctl -D "$CLUSTER_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_server_user pg_ctl -D "$CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$CLUSTER_DIR"
    CLUSTER_DIR=
}
