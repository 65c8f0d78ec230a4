#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tools/call throughput with the bootstrap token (a constant-time compare)
# and with an API key (SHA-256 of the key and a cache lookup per request,
# bcrypt once off the loop), back to back on one build, and their ratio.
# Env: BENCH_DURATION (default 10), BENCH_CONNS (default 64).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BENCH_DURATION=${BENCH_DURATION:-10} BENCH_CONNS=${BENCH_CONNS:-64}
bash bench/run.sh >/dev/null # build once
rps() { awk -v c="$BENCH_CONNS" '$1 == c { print $2 }' <<<"$1"; }
a=$(BENCH_NO_BUILD=1 BENCH_AUTH=bootstrap bash bench/run.sh)
b=$(BENCH_NO_BUILD=1 BENCH_AUTH=apikey bash bench/run.sh)
echo "== bootstrap token"; echo "$a"
echo "== API key"; echo "$b"
ra=$(rps "$a"); rb=$(rps "$b")
awk -v a="$ra" -v b="$rb" 'BEGIN { printf "API key / bootstrap throughput: %.3f (%.0f vs %.0f req/s)\n", b / a, b, a }'
