#!/usr/bin/env bash
# Run the confab server (release build): embedded SQLite store under ./data/,
# listening on 127.0.0.1:8080 by default. Extra arguments go to `confab serve`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME:-}/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
exec cargo run --release -- serve "$@"
