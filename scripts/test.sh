#!/usr/bin/env bash
# Run every test: setup, throwaway Postgres, build, unit/integration tests, doc tests.
# With CI=true, tests that need Postgres fail instead of skipping when it is absent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

summary=()
failed=0
# phase NAME CMD...: run CMD, print and record its elapsed time; a failure is recorded, not fatal.
phase() {
    local name=$1 start status=0
    shift
    echo "test: === $name: $*"
    start=$(date +%s.%N)
    "$@" || status=$?
    local took
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if ((status == 0)); then
        summary+=("$(printf '%-12s ok     %7ss' "$name" "$took")")
    else
        summary+=("$(printf '%-12s FAILED %7ss (exit %d)' "$name" "$took" "$status")")
        failed=1
    fi
    echo "test: === $name: ${took}s, exit $status"
    return "$status"
}
report() {
    echo "test: --- summary ---"
    printf 'test: %s\n' "${summary[@]}"
    # Closing line: totals of every cargo `test result:` line and of node's test runner (browser).
    [[ -f "$results" ]] && awk '/^test result:/ { for (i = 1; i < NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
        /^ℹ pass [0-9]+$/ { p += $3 } /^ℹ fail [0-9]+$/ { f += $3 } /^ℹ (skipped|todo) [0-9]+$/ { s += $3 }
        /^(aiortc|turn): [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
        END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$results"
    rm -f "$results"
}
# cargo test, its output also kept for the totals (called through `phase`).
# --no-fail-fast: one failing test binary must not hide what the others would report.
# shellcheck disable=SC2317
cargo_test() { cargo test --no-fail-fast "$@" | tee -a "$results"; }
# The web client in headless Chromium against the binary just built (see tests/browser/run.sh).
# shellcheck disable=SC2317
aiortc_test() { CONFAB_BIN="${CARGO_TARGET_DIR:-target}/debug/confab" tests/aiortc/run.sh | tee -a "$results"; }
# shellcheck disable=SC2317
turn_test() { CONFAB_BIN="${CARGO_TARGET_DIR:-target}/debug/confab" tests/aiortc/turn.sh | tee -a "$results"; }
# shellcheck disable=SC2317
browser_test() { CONFAB_BIN="${CARGO_TARGET_DIR:-target}/debug/confab" tests/browser/run.sh | tee -a "$results"; }
results=$(mktemp)

phase setup scripts/setup.sh || { report; exit 1; }
if ! command -v cargo >/dev/null 2>&1 && [[ -f "${HOME:-}/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi

# Throwaway Postgres for the store suite, stopped on any exit.
# shellcheck source=scripts/pg-throwaway.sh
. scripts/pg-throwaway.sh
trap 'pg_throwaway_stop; report' EXIT
trap 'exit 130' INT TERM
if [[ "${CI:-}" == "true" ]]; then
    export CONFAB_REQUIRE_POSTGRES=1
    # A clean clone builds once: incremental caches would only cost disk (~1 GB).
    export CARGO_INCREMENTAL=0
fi
echo "test: disk free where the build goes: $(df -h --output=avail . | tail -1 | tr -d ' ')"
if ! phase postgres pg_throwaway_start; then
    [[ "${CI:-}" == "true" ]] && exit 1
    echo "test: warning: no Postgres; its tests will be skipped" >&2
fi

# Build first, so compile time is not counted as test time; nothing to test if it fails.
phase build cargo build --workspace --all-targets || exit 1
phase lint bash -c 'cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings' || true
phase tests cargo_test --workspace --all-targets || true
phase doctests cargo_test --workspace --doc || true
# The C ABI from C and Python: each example prints "OK" and exits 0 only if every step happened.
phase c-examples crates/ffi/run-examples.sh || true

# Load-test smoke: one tiny step per kind (media in each mode, chat) against the binary just
# built; the tool checks the report's figures are sane (non-zero, loss < 1%), not their speed.
phase bench-smoke "${CARGO_TARGET_DIR:-target}/debug/confab-testbed" bench crates/testbed/scenarios/smoke.toml \
    --out "${CARGO_TARGET_DIR:-target}/bench-smoke" || true

# The Janus comparison's smoke run: one room of light peers on confab, then on Janus, checked
# for sane figures only (crates/testbed/scenarios/forward-smoke.toml).
phase forward-smoke "${CARGO_TARGET_DIR:-target}/debug/confab-testbed" forward crates/testbed/scenarios/forward-smoke.toml \
    --out "${CARGO_TARGET_DIR:-target}/forward-smoke" || true

# --- More test phases go here (later issues) -------------------------------------------
phase browser browser_test || true
# An independent WebRTC stack: stock aiortc (Python, from PyPI) joins a room and hears a peer.
phase aiortc aiortc_test || true
# A client whose network drops all UDP joins voice through coturn over TCP (network namespace).
phase turn turn_test || true
# ---------------------------------------------------------------------------------------

exit "$failed"
