#!/usr/bin/env bash
# Throwaway PostgreSQL on loopback, for tests. Takes ~1 s, lives in a temp dir.
#
# Sourced (the functions keep the caller's shell options as they are):
#     . scripts/pg-throwaway.sh
#     pg_throwaway_start            # sets PG_THROWAWAY_DIR, PG_THROWAWAY_PORT, CONFAB_TEST_POSTGRES_URL
#     trap pg_throwaway_stop EXIT
#     pg_throwaway_stop             # pg_ctl stop -m immediate, removes the dir
#
# Executed:
#     eval "$(scripts/pg-throwaway.sh start)"   # prints export lines, progress goes to stderr
#     scripts/pg-throwaway.sh stop [DIR]         # DIR defaults to $PG_THROWAWAY_DIR
#     scripts/pg-throwaway.sh run CMD [ARGS...]  # start, run CMD with the URL exported, stop
#
# Env: PG_BIN (bin dir with initdb/pg_ctl; default: newest /usr/lib/postgresql/*/bin),
#      PG_THROWAWAY_BASE_PORT (first port tried, default 54330),
#      PG_THROWAWAY_FSYNC (off by default, fast for tests; `on` for durable-write benchmarks).
# Postgres refuses to run as root, so as root it runs as the `postgres` user via runuser.

_pgt_log() { echo "pg-throwaway: $*" >&2; }

# Print the directory holding initdb and pg_ctl.
_pgt_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        [[ -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]] || { _pgt_log "no initdb/pg_ctl in PG_BIN=$PG_BIN"; return 1; }
        echo "$PG_BIN"
        return 0
    fi
    local v
    v=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n1) || true
    if [[ -n "$v" && -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]]; then
        echo "/usr/lib/postgresql/$v/bin"
        return 0
    fi
    if command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    _pgt_log "no PostgreSQL server binaries found (apt-get install postgresql, or set PG_BIN)"
    return 1
}

# Run a command as the user that owns the cluster: `postgres` when we are root, else ourselves.
_pgt_as_owner() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
_pgt_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_throwaway_start() {
    local bin dir port tries url
    bin=$(_pgt_bin) || return 1
    dir=$(mktemp -d "${TMPDIR:-/tmp}/confab-pg.XXXXXX") || return 1
    if ((EUID == 0)); then
        chown postgres "$dir" || { rm -rf "$dir"; return 1; }
    fi
    if ! _pgt_as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync \
        >"$dir/initdb.log" 2>&1; then
        _pgt_log "initdb failed:"
        cat "$dir/initdb.log" >&2 || true
        rm -rf "$dir"
        return 1
    fi

    # Pick a free port; if another process grabs it first, Postgres fails to bind: try the next.
    port=${PG_THROWAWAY_BASE_PORT:-54330}
    for ((tries = 0; tries < 50; tries++, port++)); do
        _pgt_port_busy "$port" && continue
        if _pgt_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${PG_THROWAWAY_FSYNC:-off}" start \
            >"$dir/pg_ctl.log" 2>&1; then
            url="postgres://postgres@127.0.0.1:$port/postgres"
            export PG_THROWAWAY_DIR="$dir" PG_THROWAWAY_PORT="$port" CONFAB_TEST_POSTGRES_URL="$url"
            _pgt_log "started $url (dir $dir)"
            return 0
        fi
        if grep -qs 'could not bind\|could not create any TCP/IP sockets\|Address already in use' "$dir/log"; then
            _pgt_log "port $port taken, trying $((port + 1))"
            : >"$dir/log"
            continue
        fi
        break
    done
    _pgt_log "PostgreSQL failed to start; pg_ctl said:"
    cat "$dir/pg_ctl.log" >&2 || true
    _pgt_log "server log ($dir/log):"
    cat "$dir/log" >&2 || true
    _pgt_as_owner "$bin/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$dir"
    return 1
}

# Stop the cluster in ${1:-$PG_THROWAWAY_DIR} and remove its dir. Safe to call twice.
pg_throwaway_stop() {
    local dir=${1:-${PG_THROWAWAY_DIR:-}} bin
    [[ -n "$dir" && -d "$dir" ]] || return 0
    if [[ ! -d "$dir/data" && ! -f "$dir/initdb.log" ]]; then
        _pgt_log "refusing to remove $dir: not a throwaway cluster dir"
        return 1
    fi
    if [[ -f "$dir/data/postmaster.pid" ]] && bin=$(_pgt_bin); then
        _pgt_as_owner "$bin/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 \
            || _pgt_log "pg_ctl stop failed (server already gone?)"
    fi
    rm -rf "$dir"
    if [[ "$dir" == "${PG_THROWAWAY_DIR:-}" ]]; then
        unset PG_THROWAWAY_DIR PG_THROWAWAY_PORT CONFAB_TEST_POSTGRES_URL
    fi
    _pgt_log "stopped, removed $dir"
}

# Executed rather than sourced.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-start}" in
        start)
            pg_throwaway_start
            printf 'export PG_THROWAWAY_DIR=%q\n' "$PG_THROWAWAY_DIR"
            printf 'export PG_THROWAWAY_PORT=%q\n' "$PG_THROWAWAY_PORT"
            printf 'export CONFAB_TEST_POSTGRES_URL=%q\n' "$CONFAB_TEST_POSTGRES_URL"
            ;;
        stop)
            pg_throwaway_stop "${2:-}"
            ;;
        run)
            shift
            (($# > 0)) || { _pgt_log "usage: $0 run CMD [ARGS...]"; exit 2; }
            pg_throwaway_start
            trap pg_throwaway_stop EXIT
            trap 'exit 130' INT TERM
            "$@"
            ;;
        *)
            echo "usage: $0 [start | stop [DIR] | run CMD [ARGS...]]" >&2
            exit 2
            ;;
    esac
fi
