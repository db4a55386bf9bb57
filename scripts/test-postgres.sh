#!/usr/bin/env bash
# A private PostgreSQL for the test suite that checks passwords (scram-sha-256), as every
# real deployment does; CI's .ci/run uses it, and so may a developer:
#
#   eval "$(scripts/test-postgres.sh start)"    # exports SWEEPSCOPE_TEST_POSTGRES
#   make test
#   scripts/test-postgres.sh stop "$SWEEPSCOPE_TEST_POSTGRES_DIR"
#
# `start [--owner PID]` runs initdb with a random superuser password (read from a file, never
# on a command line), starts the server on a free port of 127.0.0.1 (sockets in its own
# directory: the machine's server on 5432 is never touched) and prints the two export lines.
# The server stops and its directory goes when PID (default: the calling shell) exits, however
# it exits, even SIGKILL: a watcher checks every 2 s. `stop DIR` stops it at once. As root, the
# server runs as the `postgres` user (initdb refuses root).
set -euo pipefail

usage() {
    echo "usage: $0 start [--owner PID] | stop DIR" >&2
    exit 2
}

pg_bin() {
    local newest
    newest=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
    newest=${newest%/initdb}
    if [ -x "$newest/initdb" ]; then
        echo "$newest"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    else
        echo "$0: PostgreSQL's server programs (initdb, pg_ctl) are not installed:" \
            "apt-get install postgresql" >&2
        exit 1
    fi
}

as_owner() { # run a PostgreSQL program as the user that owns the data (postgres when root)
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
    local dir=$1
    [ -f "$dir/bin" ] || { echo "$0: $dir is not a test server's directory" >&2; exit 2; }
    as_owner "$(cat "$dir/bin")/pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1 || true
    rm -rf "$dir"
}

start() {
    local owner=$PPID
    if [ "${1:-}" = "--owner" ]; then owner=${2:?--owner needs a PID}; fi
    local bin dir port password
    bin=$(pg_bin)
    dir=$(mktemp -d /tmp/sweepscope-test-pg.XXXXXX)
    echo "$bin" >"$dir/bin"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    chmod 700 "$dir"
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s\n' "$password" >"$dir/pwfile")
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir/pwfile"; fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 \
        --pwfile="$dir/pwfile" --encoding=UTF8 --locale=C --no-sync --no-instructions \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    rm -f "$dir/pwfile"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >>"$dir/data/postgresql.conf" <<CONF
# scripts/test-postgres.sh: loopback only, sockets in its directory, no fsync (tests only)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
    if ! as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t 60 >/dev/null; then
        cat "$dir/server.log" >&2
        rm -rf "$dir"
        exit 1
    fi
    # The watcher: stop the server once the owner is gone, even if it was killed.
    # shellcheck disable=SC2016 # $1..$3 are the watcher's own arguments
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; exec "$2" stop "$3"' \
        watcher "$owner" "$(readlink -f "$0")" "$dir" </dev/null >/dev/null 2>&1 &
    echo "export SWEEPSCOPE_TEST_POSTGRES='postgresql+psycopg://postgres:$password@127.0.0.1:$port/postgres'"
    echo "export SWEEPSCOPE_TEST_POSTGRES_DIR='$dir'"
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) [ $# = 2 ] || usage; stop "$2" ;;
*) usage ;;
esac
