#!/usr/bin/env bash
# The aiortc phase of scripts/test.sh: stock aiortc (Python, an independent WebRTC stack) joins a
# voice room of target/debug/confab (CONFAB_BIN overrides). The venv lives in target/aiortc-venv
# and is rebuilt only when requirements.txt changes.
set -euo pipefail
[[ -n "${CONFAB_BIN:-}" ]] && CONFAB_BIN=$(realpath "$CONFAB_BIN")
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(realpath ../..)
# shellcheck source=tests/aiortc/venv.sh
. ./venv.sh
BIN=${CONFAB_BIN:-$ROOT/target/debug/confab}
DATA=$(mktemp -d)
LOG="$DATA/server.log"
CONFAB_LIVE_RTMP_BIND=127.0.0.1:0 "$BIN" serve --listen 127.0.0.1:0 --media-bind 127.0.0.1:0 --database-url "sqlite:$DATA/a.db" 2>"$LOG" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$DATA"' EXIT
BASE=""
for _ in $(seq 1 300); do
    BASE=$(grep -o 'listening on http://[0-9.:]*' "$LOG" | head -1 | sed 's/listening on //') || true
    grep -q "media engine ready" "$LOG" && [[ -n "$BASE" ]] && break
    sleep 0.1
done
[[ -n "$BASE" ]] || { echo "aiortc: the server did not start:" >&2; cat "$LOG" >&2; exit 1; }
"$VENV/bin/python" join.py "$BASE"
