#!/usr/bin/env bash
# A confab cluster on this machine, for trying it out: NATS (JetStream), a throwaway Postgres and
# N nodes on loopback, every node serving every role.
#
#     scripts/cluster.sh up [N]     # N nodes (default 3): HTTP on 127.0.0.1:8081.., media UDP
#                                   # on 50001.., RTMP on 1936..; prints their URLs
#     scripts/cluster.sh down       # stops the nodes, NATS and Postgres, removes their state
#
# Env: CONFAB_BIN (default: target/release/confab, built if missing), CLUSTER_DIR (state and
# logs, default target/cluster), NATS_PORT (default 4222).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${CLUSTER_DIR:-target/cluster}
bin=${CONFAB_BIN:-target/release/confab}
nats_port=${NATS_PORT:-4222}

log() { echo "cluster: $*" >&2; }

up() {
    local n=${1:-3}
    [[ -e "$dir/pids" ]] && { log "already up (scripts/cluster.sh down first)"; exit 1; }
    command -v nats-server >/dev/null || { log "nats-server missing: apt-get install nats-server"; exit 1; }
    [[ -x "$bin" ]] || cargo build --release
    mkdir -p "$dir/nats"
    : >"$dir/pids"
    nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
    echo $! >>"$dir/pids"
    # shellcheck source=scripts/pg-throwaway.sh
    . scripts/pg-throwaway.sh
    pg_throwaway_start
    echo "$PG_THROWAWAY_DIR" >"$dir/pg"
    local db="${CONFAB_TEST_POSTGRES_URL%/*}/confab"
    psql -q "$CONFAB_TEST_POSTGRES_URL" -c "CREATE DATABASE confab"
    for ((i = 1; i <= n; i++)); do
        CONFAB_CLUSTER_NATS_URL="nats://127.0.0.1:$nats_port" CONFAB_CLUSTER_NODE_ID="node$i" \
            CONFAB_LIVE_RTMP_BIND="127.0.0.1:$((1935 + i))" \
            "$bin" serve --listen "127.0.0.1:$((8080 + i))" --media-bind "127.0.0.1:$((50000 + i))" \
            --database-url "$db" >"$dir/node$i.log" 2>&1 &
        echo $! >>"$dir/pids"
    done
    for ((i = 1; i <= n; i++)); do
        for _ in $(seq 100); do
            grep -q "listening on" "$dir/node$i.log" && break
            sleep 0.1
        done
        grep -q "listening on" "$dir/node$i.log" || { log "node$i did not start: $dir/node$i.log"; down; exit 1; }
        echo "node$i: http://127.0.0.1:$((8080 + i))  (log: $dir/node$i.log)"
    done
    echo "nats: nats://127.0.0.1:$nats_port  postgres: $db"
}

down() {
    if [[ -f "$dir/pids" ]]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$dir/pids"
        rm -f "$dir/pids"
    fi
    if [[ -f "$dir/pg" ]]; then
        scripts/pg-throwaway.sh stop "$(cat "$dir/pg")" || true
        rm -f "$dir/pg"
    fi
    rm -rf "$dir/nats"
    log "down"
}

case "${1:-}" in
    up) up "${2:-3}" ;;
    down) down ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
