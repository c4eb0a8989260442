#!/usr/bin/env bash
# The turn phase of scripts/test.sh: a client behind a firewall that drops all UDP joins voice
# through TURN over TCP, or over ICE-TCP on the media port. Builds a network namespace (veth to the host; nftables in it drops every
# UDP datagram), starts Debian's coturn on the host's end of the veth with TURN REST auth
# (static-auth-secret), and two servers of target/debug/confab (CONFAB_BIN overrides) there: one
# with [turn] pointing at coturn, one without. An aiortc speaker on the host plays a tone; an aiortc
# listener inside the namespace must hear it over a relayed pair, and, against the server without
# TURN, be told media_unreachable instead of hanging (aiortc has no ICE-TCP); Chromium in the same
# namespace, against that server, joins over ICE-TCP. Needs root (namespaces, nftables).
set -euo pipefail
[[ -n "${CONFAB_BIN:-}" ]] && CONFAB_BIN=$(realpath "$CONFAB_BIN")
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(realpath ../..)
((EUID == 0)) || { echo "turn: needs root for network namespaces" >&2; exit 1; }
for tool in ip nft turnserver chromium node; do
    command -v "$tool" >/dev/null || { echo "turn: $tool not found (scripts/setup.sh installs it)" >&2; exit 1; }
done
# shellcheck source=tests/aiortc/venv.sh
. ./venv.sh
BIN=${CONFAB_BIN:-$ROOT/target/debug/confab}
PY="$VENV/bin/python"

# Names and a subnet of this run's own, so two runs on one machine do not meet.
ID=$$
NS="confab-turn-$ID"
HOST_IF="ct${ID}h" NS_IF="ct${ID}n"
NET="10.$((100 + ID % 100)).$((ID / 100 % 250)).0"
HOST_IP="${NET%.0}.1" NS_IP="${NET%.0}.2"
DATA=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$HOST_IF" 2>/dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT

ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
ip addr add "$HOST_IP/24" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip addr add "$NS_IP/24" dev "$NS_IF"
ip netns exec "$NS" ip link set "$NS_IF" up
ip netns exec "$NS" ip link set lo up
# The firewall: no UDP leaves the namespace (not to the media port, not to TURN over UDP).
ip netns exec "$NS" nft -f - <<EOF
table inet firewall {
    chain out {
        type filter hook output priority 0; policy accept;
        meta l4proto udp drop
    }
}
EOF

SECRET=$(head -c 18 /dev/urandom | base64)
TURN_PORT=$((20000 + ID % 20000))
turnserver -n --listening-ip="$HOST_IP" --listening-port="$TURN_PORT" --relay-ip="$HOST_IP" \
    --min-port=40000 --max-port=40999 --use-auth-secret --static-auth-secret="$SECRET" \
    --realm=confab.test --no-tls --no-dtls --no-cli --no-stun-backward-compatibility \
    --log-file=stdout --simple-log >"$DATA/coturn.log" 2>&1 &
PIDS+=($!)

# serve NAME [TOML]: a confab on the host's end of the veth; sets BASE to its HTTP address.
serve() {
    local name=$1 toml=${2:-}
    printf '%s\n' "$toml" >"$DATA/$name.toml"
    CONFAB_LIVE_RTMP_BIND= CONFAB_MEDIA_PEER_TIMEOUT_SECS=4 "$BIN" --config "$DATA/$name.toml" serve \
        --listen "$HOST_IP:0" --media-bind "$HOST_IP:0" --database-url "sqlite:$DATA/$name.db" \
        2>"$DATA/$name.log" &
    PIDS+=($!)
    BASE=""
    for _ in $(seq 1 300); do
        BASE=$(grep -o 'listening on http://[0-9.:]*' "$DATA/$name.log" | head -1 | sed 's/listening on //') || true
        [[ -n "$BASE" ]] && break
        sleep 0.1
    done
    [[ -n "$BASE" ]] || { echo "turn: $name did not start:" >&2; cat "$DATA/$name.log" >&2; exit 1; }
}

fail() {
    echo "turn: FAILED: $*" >&2
    for f in "$DATA"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done
    echo "turn: 0 passed, 1 failed"
    exit 1
}

serve relayed "[turn]
urls = [\"turn:$HOST_IP:$TURN_PORT?transport=tcp\"]
secret = \"$SECRET\""
"$PY" turn.py setup "$BASE" "$DATA/relayed.json"
"$PY" turn.py speak "$BASE" "$DATA/relayed.json" >"$DATA/speaker.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS" timeout 90 "$PY" turn.py listen "$BASE" "$DATA/relayed.json" || fail "no audio through TURN"

serve direct ""
"$PY" turn.py setup "$BASE" "$DATA/direct.json"
ip netns exec "$NS" timeout 60 "$PY" turn.py unreachable "$BASE" "$DATA/direct.json" || fail "no clear error without TURN"

# Chromium in the namespace (playwright-core drives it through a pipe, which crosses namespaces).
(cd ../browser && { [[ -f node_modules/.package-lock.json ]] || npm ci --no-audit --no-fund >/dev/null; })
printf '#!/bin/sh\nexec ip netns exec %s /usr/bin/chromium "$@"\n' "$NS" >"$DATA/chromium-ns"
chmod +x "$DATA/chromium-ns"
"$PY" turn.py speak "$BASE" "$DATA/direct.json" >"$DATA/speaker2.log" 2>&1 &
PIDS+=($!)
CHROMIUM="$DATA/chromium-ns" timeout 90 node ../browser/ice-tcp.mjs "$BASE" "$DATA/direct.json" \
    || fail "Chromium did not join over ICE-TCP"
echo "turn: 3 passed, 0 failed"
