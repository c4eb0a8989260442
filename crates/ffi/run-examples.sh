#!/usr/bin/env bash
# Builds the C ABI (libconfab_ffi) and the testbed CLI, then compiles and runs the C example and
# runs the Python (ctypes) example against them. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

target=$(realpath "${CARGO_TARGET_DIR:-target}")/debug
# The same flags as the test command's build phase: features unify the same way, so after that phase
# this is a no-op instead of a partial rebuild (building `-p ffi` alone resolves features differently).
cargo build --workspace --all-targets
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
echo "run-examples: === C (embed.c)"
if cc -std=c11 -Wall -Wextra -Werror -I crates/ffi/include crates/ffi/examples/embed.c -o "$work/embed" \
    -L "$target" -lconfab_ffi -Wl,-rpath,"$target" -lpthread -ldl -lm; then
    CONFAB_TESTBED="$target/confab-testbed" "$work/embed" || status=1
else
    status=1
fi

echo "run-examples: === Python (embed.py)"
CONFAB_LIB="$target/libconfab_ffi.so" CONFAB_TESTBED="$target/confab-testbed" \
    python3 crates/ffi/examples/embed.py || status=1

echo "run-examples: $( ((status == 0)) && echo "all passed" || echo FAILED)"
exit "$status"
