#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The project's test command (README, CI): npm test peers, normal build and
# its ctest suite (unit + integration), the same under ASan+UBSan, then the
# MCP conformance suite against the normal build. Every stage runs even when
# an earlier one failed (unless it needs that one's build); the exit status is
# non-zero if any stage failed, and the failed stages are listed at the end.
# Env: JOBS (parallel build jobs, default nproc), SKIP_ASAN=1, SKIP_CONFORMANCE=1,
# SKIP_FUZZ=1, SKIP_SCAN=1, FUZZ_SECONDS (per fuzz target, default 15).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS="${JOBS:-$(nproc)}"
failed=()
passed=0

step() { printf '\n==== %s ====\n' "$*"; }
# stage NAME CMD...: run CMD, record NAME if it fails; returns CMD's status.
stage() {
  local name=$1
  shift
  step "$name"
  local rc=0
  "$@" || rc=$?
  if ((rc != 0)); then
    echo "---- $name: FAILED (exit $rc)"
    failed+=("$name")
  else
    passed=$((passed + 1))
  fi
  return $rc
}

# 1. Debian packages (installed as root when missing) and the npm packages
#    (real MCP peers) from the lockfile: scripts/install-deps.sh.
stage "dependencies" bash scripts/install-deps.sh || exit 1

build() { # dir, cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j"$JOBS"
}

# 2. normal build + tests (unit + integration)
built=0
if stage "build (build/)" build build; then
  built=1
  stage "ctest (build/)" ctest --test-dir build --output-on-failure || true
fi

# 3. ASan + UBSan build + tests
if [[ "${SKIP_ASAN:-0}" != 1 ]]; then
  if stage "build (build-asan/, TK_SANITIZE=ON)" build build-asan -DTK_SANITIZE=ON; then
    stage "ctest (build-asan/)" env ASAN_OPTIONS="detect_leaks=1" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      ctest --test-dir build-asan --output-on-failure || true
  fi
fi

# 4. MCP conformance: server-everything and the conformance fixture server,
#    each directly and through the gateway (tests/conformance/run.sh)
if [[ "${SKIP_CONFORMANCE:-0}" != 1 && $built == 1 ]]; then
  stage "MCP conformance suite" env TUMIKI_BIN="$ROOT/build/tumiki" bash tests/conformance/run.sh || true
fi

# 5. Fuzzing: build the libFuzzer harnesses (clang, ASan+UBSan), replay the
#    seed corpora and saved regressions, then fuzz each target for a bounded
#    time (FUZZ_SECONDS per target, default 15 here).
if [[ "${SKIP_FUZZ:-0}" != 1 ]]; then
  build_fuzz() {
    cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DTK_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-fuzz -j"$JOBS"
  }
  if stage "build (build-fuzz/, clang + libFuzzer)" build_fuzz; then
    stage "fuzz corpus replay" ctest --test-dir build-fuzz -L fuzz --output-on-failure || true
    stage "fuzzing (${FUZZ_SECONDS:-15} s per target)" env FUZZ_SECONDS="${FUZZ_SECONDS:-15}" \
      BUILD_DIR=build-fuzz bash scripts/fuzz.sh || true
  fi
fi

# 6. Static analysis, secret scan, dependency inventory (reports/): fails on
#    any HIGH finding (scripts/security-scan.sh).
if [[ "${SKIP_SCAN:-0}" != 1 ]]; then
  stage "security scan" bash scripts/security-scan.sh || true
fi

if ((${#failed[@]})); then
  step "FAILED: ${failed[*]}"
  echo "stages: $passed passed, ${#failed[@]} failed"
  exit 1
fi
step "all stages passed"
echo "stages: $passed passed, 0 failed"
