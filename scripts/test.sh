#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The project's test command (README, CI): npm test peers, normal build and
# its ctest suite (unit + integration), the same under ASan+UBSan, then the
# MCP conformance suite against the normal build.
# Env: JOBS (parallel build jobs, default nproc), SKIP_ASAN=1, SKIP_CONFORMANCE=1.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS="${JOBS:-$(nproc)}"

step() { printf '\n==== %s ====\n' "$*"; }

# 1. npm packages (real MCP peers), from the lockfile; skipped when installed
#    from the current lockfile already.
stamp=node_modules/.tumiki-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  step "npm ci"
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi

# 2. normal build + tests
step "build (build/)"
cmake -S . -B build
cmake --build build -j"$JOBS"
step "ctest (build/)"
ctest --test-dir build --output-on-failure

# 3. ASan + UBSan build + tests
if [[ "${SKIP_ASAN:-0}" != 1 ]]; then
  step "build (build-asan/, TK_SANITIZE=ON)"
  cmake -S . -B build-asan -DTK_SANITIZE=ON
  cmake --build build-asan -j"$JOBS"
  step "ctest (build-asan/)"
  ASAN_OPTIONS="detect_leaks=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure
fi

# 4. MCP conformance: server-everything directly vs. through the gateway
if [[ "${SKIP_CONFORMANCE:-0}" != 1 ]]; then
  step "MCP conformance suite"
  TUMIKI_BIN="$ROOT/build/tumiki" bash tests/conformance/run.sh
fi
step "all tests passed"
