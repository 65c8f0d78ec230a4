#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the libFuzzer harnesses (tests/fuzz/) in build-fuzz/ with clang,
# ASan and UBSan, then fuzz each target for a bounded time. New interesting
# inputs go to build-fuzz/fuzz-work/<target>/ (not merged back into the seed
# corpus); a crash, leak or timeout is copied to tests/fuzz/regressions/<target>/
# where the ctest test fuzz_<target>_replay replays it from then on.
#
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh jsonrpc config  only these targets
#   FUZZ_SECONDS=300 FUZZ_JOBS=2 scripts/fuzz.sh http_request
#
# Environment: FUZZ_SECONDS (per target), FUZZ_JOBS (parallel fuzzing
# processes per target, default 1), FUZZ_ARGS (extra libFuzzer flags),
# BUILD_DIR (default build-fuzz), CC (default clang). Exit status: 0 when no
# target crashed, 1 otherwise; a summary line per target goes to stdout and
# to build-fuzz/fuzz-summary.txt.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
all_targets=(jsonrpc config names http_host http_request log ratelimit ssrf auth sse audit admin login)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

cmake -S . -B "$build" -DCMAKE_C_COMPILER="${CC:-clang}" -DTK_FUZZ=ON >/dev/null
build_targets=()
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
cmake --build "$build" -j"$(nproc)" --target "${build_targets[@]}"

work="$build/fuzz-work"
summary="$build/fuzz-summary.txt"
mkdir -p "$work"
: >"$summary"
failed=0
for t in "${targets[@]}"; do
    exe="$build/tests/fuzz/fuzz_$t"
    [ -x "$exe" ] || { echo "no such fuzz target: $t" >&2; exit 2; }
    mkdir -p "$work/$t" "$work/$t-artifacts" "tests/fuzz/regressions/$t"
    extra=()
    [ -f "tests/fuzz/dict/$t.dict" ] && extra+=("-dict=tests/fuzz/dict/$t.dict")
    # -jobs=1 would still fork a child that logs to a file: only for real parallelism
    [ "$jobs" -gt 1 ] && extra+=("-jobs=$jobs" "-workers=$jobs")
    log="$work/$t.log"
    echo "== fuzz_$t: ${seconds}s" >&2
    rc=0
    # the first directory receives new inputs; the seeds and regressions are read only
    # shellcheck disable=SC2086
    "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$work/$t-artifacts/" "${extra[@]}" ${FUZZ_ARGS:-} \
        "$work/$t" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$log" 2>&1 || rc=$?
    # with -jobs, libFuzzer writes per-job logs (fuzz-N.log) in the cwd
    if [ "$jobs" -gt 1 ]; then
        cat fuzz-*.log >>"$log" 2>/dev/null || true
        rm -f fuzz-*.log
    fi
    execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
    cov=$(grep -h -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 |
          sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/cov=\1 ft=\2/p')
    found=0
    for a in "$work/$t-artifacts"/{crash,leak,timeout,oom}-*; do
        [ -f "$a" ] || continue
        found=$((found + 1))
        cp "$a" "tests/fuzz/regressions/$t/"
        echo "  saved $(basename "$a") -> tests/fuzz/regressions/$t/" >&2
        rm -f "$a"
    done
    line="fuzz_$t: rc=$rc seconds=$seconds execs=$execs ${cov:-} artifacts=$found"
    echo "$line" | tee -a "$summary"
    if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
        failed=1
        echo "  fuzz_$t failed; log: $log" >&2
        grep -E -m 5 'ERROR|SUMMARY|invariant failed' "$log" >&2 || true
    fi
done
exit "$failed"
