#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The project's test command (README, CI): npm test peers, normal build and
# its ctest suite (unit + integration), the same under ASan+UBSan, then the
# MCP conformance suite against the normal build. Every stage runs even when
# an earlier one failed (unless it needs that one's build); the exit status is
# non-zero if any stage failed, and the failed stages are listed at the end.
# Env: JOBS (parallel build jobs, default nproc), SKIP_ASAN=1, SKIP_CONFORMANCE=1.
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

if ((${#failed[@]})); then
  step "FAILED: ${failed[*]}"
  echo "stages: $passed passed, ${#failed[@]} failed"
  exit 1
fi
step "all stages passed"
echo "stages: $passed passed, 0 failed"
