#!/usr/bin/env bash
# The browser phase of scripts/test.sh: the web client end to end in Debian's headless Chromium,
# driven by playwright-core (npm), against target/debug/confab (CONFAB_BIN overrides).
# Screenshots go to target/browser/.
set -euo pipefail
# CONFAB_BIN is relative to where we were called from.
[[ -n "${CONFAB_BIN:-}" ]] && CONFAB_BIN=$(realpath "$CONFAB_BIN")
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v chromium >/dev/null 2>&1 || { echo "browser: chromium missing (scripts/setup.sh installs it)" >&2; exit 1; }
# npm ci only when node_modules is missing or older than the lockfile: it deletes and refetches.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund
fi
# The web client is embedded in the binary: build it unless told which one to test (test.sh has
# just built the workspace, and a `-p confab` build there could differ in features and rebuild).
if [[ -z "${CONFAB_BIN:-}" ]]; then
    (cd ../.. && cargo build -p confab)
    CONFAB_BIN=$(realpath ../../target/debug/confab)
fi
export CONFAB_BIN
exec node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs
