#!/usr/bin/env bash
# The long mode of the property tests that fuzz every parser facing the network (the test
# command runs each with 256 cases). Each target runs for FUZZ_MINUTES (default 60) in rounds of
# CONFAB_FUZZ_CASES cases (default 20000), every round with fresh random seeds; a failing round
# stops that target, and proptest keeps its minimal input in the target's *.proptest-regressions
# file (commit it: it is replayed first from then on).
#
#   scripts/fuzz.sh                      # every target, an hour each, release build
#   FUZZ_MINUTES=5 scripts/fuzz.sh fuzz_sdp fuzz_udp
#
# The test binaries are built once, then run directly: editing the tree while it runs is fine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ALL=(fuzz_rtmp fuzz_hls fuzz_gateway fuzz_api fuzz_voice_gateway fuzz_sdp fuzz_udp)
targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")
minutes=${FUZZ_MINUTES:-60}
cases=${CONFAB_FUZZ_CASES:-20000}
log=$(realpath -m "${FUZZ_LOG:-target/fuzz.log}")

args=()
for t in "${targets[@]}"; do args+=(--test "$t"); done
# Each target's binary, by name (cargo prints one JSON line per artifact built).
declare -A bin
while IFS=' ' read -r name exe; do bin[$name]=$exe; done < <(
    cargo test --release --workspace "${args[@]}" --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])')

failed=0
for t in "${targets[@]}"; do
    exe=${bin[$t]:-}
    [[ -n "$exe" ]] || { echo "fuzz: no test binary for $t" >&2; exit 2; }
    # Run from the crate's directory, as cargo test does (regression files are found there).
    dir=$(dirname "$(dirname "$(find crates -path "*/tests/$t.rs" | head -1)")")
    end=$((SECONDS + minutes * 60)) rounds=0 start=$SECONDS status=ok
    while ((SECONDS < end)); do
        if ! (cd "$dir" && CONFAB_FUZZ_CASES=$cases "$exe" --test-threads 1 >>"$log" 2>&1); then
            status=FAILED
            break
        fi
        rounds=$((rounds + 1))
    done
    line="fuzz: $t: $status after $rounds rounds of $cases cases per property in $(((SECONDS - start) / 60)) min"
    echo "$line" | tee -a "$log"
    [[ $status == ok ]] || failed=1
done
exit "$failed"
