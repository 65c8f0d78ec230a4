#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tumiki throughput/latency benchmark (run by hand; not a test). Builds a
# Release gateway and the C echo fixture into build-bench/, starts
# `tumiki serve` on 127.0.0.1 (ephemeral port) with the echo fixture as its
# only upstream, opens one MCP session with curl, then drives tools/call echo
# through it with wrk at 1, 16 and 64 connections, and prints req/s, latency
# percentiles, errors, and the gateway's idle and peak RSS. All traffic stays
# on 127.0.0.1; every wait is bounded; the gateway and temp files are cleaned
# up on exit. See bench/README.md.
#
# Environment: BENCH_DURATION (seconds per run, default 10), BENCH_CONNS
# (default "1 16 64"), BENCH_TOOL (default echo__echo), BENCH_BUILD_DIR
# (default build-bench), BENCH_NO_BUILD=1 (use the binaries already there),
# BENCH_VERBOSE=1 (show wrk's own output too), BENCH_THREADS (server.threads,
# default 1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-"1 16 64"}
TOOL=${BENCH_TOOL:-echo__echo}
BUILD=${BENCH_BUILD_DIR:-build-bench}
GW_THREADS=${BENCH_THREADS:-1}
READY_TIMEOUT_S=20
PROTOCOL_VERSION=2025-11-25

die() {
    echo "bench: $*" >&2
    exit 1
}

[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION >= 1 && DURATION <= 3600)) ||
    die "BENCH_DURATION must be a whole number of seconds in [1, 3600]"
for c in $CONNS; do
    [[ $c =~ ^[0-9]+$ ]] && ((c >= 1 && c <= 10000)) || die "bad connection count in BENCH_CONNS: $c"
done
[[ $TOOL =~ ^[A-Za-z0-9_.-]+$ ]] || die "BENCH_TOOL may only use [A-Za-z0-9_.-]"
[[ $GW_THREADS =~ ^[0-9]+$ ]] && ((GW_THREADS >= 1 && GW_THREADS <= 64)) ||
    die "BENCH_THREADS must be a whole number in [1, 64]"
for cmd in cmake make curl wrk od timeout; do
    command -v "$cmd" >/dev/null || die "$cmd is not installed"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tumiki-bench.XXXXXX")
GW_PID=""
WRK_PID=""

stop_gateway() {
    local i
    [[ -n $GW_PID ]] || return 0
    if kill -0 "$GW_PID" 2>/dev/null; then
        kill -TERM "$GW_PID" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do # up to 10 s
            kill -0 "$GW_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$GW_PID" 2>/dev/null; then
            echo "bench: gateway ignored SIGTERM for 10 s; sending SIGKILL" >&2
            kill -KILL "$GW_PID" 2>/dev/null || true
        fi
    fi
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
}

cleanup() {
    if [[ -n $WRK_PID ]]; then
        kill -TERM "$WRK_PID" 2>/dev/null || true
        wait "$WRK_PID" 2>/dev/null || true
    fi
    stop_gateway
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_gateway_log() {
    echo "--- gateway stderr (last 40 lines) ---" >&2
    tail -n 40 "$TMP/gateway.log" >&2 || true
}

# ---- build ---------------------------------------------------------------
if [[ ${BENCH_NO_BUILD:-0} == 1 ]]; then
    echo "bench: BENCH_NO_BUILD=1: using the binaries already in $BUILD" >&2
else
    echo "bench: building $BUILD (Release) ..." >&2
    if ! { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
        make -C "$BUILD" -j2 tumiki tk-echo-server; } >"$TMP/build.log" 2>&1; then
        tail -n 40 "$TMP/build.log" >&2
        die "build failed (last 40 lines of the log above)"
    fi
fi
GW_BIN="$ROOT/$BUILD/tumiki"
ECHO_BIN="$ROOT/$BUILD/tk-echo-server"
[[ -x $GW_BIN && -x $ECHO_BIN ]] || die "build produced no $GW_BIN or $ECHO_BIN"

# ---- config and start ----------------------------------------------------
json_str() { # a JSON string literal for $1
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

CFG="$TMP/tumiki.json"
READY="$TMP/ready"
cat >"$CFG" <<EOF
{
  "listen": "127.0.0.1:0",
  "data_dir": $(json_str "$TMP/data"),
  "rate_limits": { "per_key": "off" },
  "server": { "threads": $GW_THREADS },
  "mcpServers": {
    "echo": { "command": $(json_str "$ECHO_BIN"), "args": ["--name", "echo", "--fast"] }
  }
}
EOF

TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
[[ ${#TOKEN} -eq 48 ]] || die "could not make a random token"

TUMIKI_TOKEN=$TOKEN "$GW_BIN" serve --config "$CFG" --ready-file "$READY" \
    </dev/null >"$TMP/gateway.out" 2>"$TMP/gateway.log" &
GW_PID=$!

URL=""
for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
    if ! kill -0 "$GW_PID" 2>/dev/null; then
        show_gateway_log
        die "gateway exited before it was ready"
    fi
    # complete once it ends in a newline
    if [[ -s $READY && $(tail -c 1 "$READY" | od -An -tx1) == *0a* ]]; then
        URL=$(head -n 1 "$READY")
        break
    fi
    sleep 0.1
done
[[ -n $URL ]] || {
    show_gateway_log
    die "no ready file after $READY_TIMEOUT_S s"
}
URL=${URL%/}
[[ $URL =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected ready-file content: $URL"
MCP_URL="$URL/mcp/default"

cpu_ticks() { # user+system clock ticks the gateway has used so far
    awk '{ print $14 + $15 }' "/proc/$GW_PID/stat" 2>/dev/null || echo 0
}

rss_kb() { # rss_kb FIELD: VmRSS or VmHWM of the gateway, in kB
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$GW_PID/status" 2>/dev/null || echo "?"
}
IDLE_RSS=$(rss_kb VmRSS)
IDLE_HWM=$(rss_kb VmHWM)

# BENCH_AUTH=apikey: authenticate with an API key made by `tumiki key create`
# (verified once with bcrypt off the loop, then from the in-memory cache)
# instead of the bootstrap token.
if [[ ${BENCH_AUTH:-bootstrap} == apikey ]]; then
    TOKEN=$("$GW_BIN" key create --config "$CFG" --endpoint default 2>/dev/null) ||
        die "tumiki key create failed"
fi

# ---- MCP session -----------------------------------------------------------
# the token goes to curl in a file (in the 0700 temp dir), not on its command line
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$TMP/auth.h"

# mcp_post NAME BODY [SESSION]: POST BODY; headers in $TMP/NAME.h, body in
# $TMP/NAME.b; prints the HTTP status. A response that stays open (SSE) is
# cut after 10 s.
mcp_post() {
    local name=$1 body=$2 session=${3:-} rc=0 code
    local -a hdr=(-H "@$TMP/auth.h" -H "Content-Type: application/json"
        -H "Accept: application/json, text/event-stream")
    if [[ -n $session ]]; then
        hdr+=(-H "Mcp-Session-Id: $session" -H "MCP-Protocol-Version: $PROTOCOL_VERSION")
    fi
    code=$(curl -sS --noproxy '*' --max-time 10 -o "$TMP/$name.b" -D "$TMP/$name.h" \
        -w '%{http_code}' "${hdr[@]}" --data-binary "$body" "$MCP_URL") || rc=$?
    if ((rc != 0 && rc != 28)); then
        echo "bench: curl failed on $name (exit $rc)" >&2
        code=000
    fi
    echo "${code:-000}"
}

code=$(mcp_post init '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"'"$PROTOCOL_VERSION"'","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}')
if [[ $code != 200 ]]; then
    cat "$TMP/init.b" >&2 2>/dev/null || true
    show_gateway_log
    die "initialize: HTTP $code"
fi
SESSION=$(awk 'tolower($1) == "mcp-session-id:" { v = $2 } END { print v }' "$TMP/init.h" | tr -d '\r')
[[ -n $SESSION ]] || die "initialize: no Mcp-Session-Id header"
[[ $SESSION =~ ^[!-~]+$ ]] || die "initialize: odd Mcp-Session-Id"

code=$(mcp_post initialized '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$SESSION")
[[ $code == 202 ]] || die "notifications/initialized: HTTP $code (expected 202)"

# one call by hand first, so a wrong tool name fails loudly instead of as 100% errors
code=$(mcp_post smoke '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"'"$TOOL"'","arguments":{"text":"hello"}}}' "$SESSION")
if [[ $code != 200 ]] || ! grep -q hello "$TMP/smoke.b"; then
    head -c 2000 "$TMP/smoke.b" >&2 || true
    echo >&2
    show_gateway_log
    die "tools/call $TOOL: HTTP $code or no \"hello\" in the response"
fi

# ---- load ------------------------------------------------------------------
printf 'tumiki bench: tools/call %s via %s, %s s per run, %s CPUs\n' \
    "$TOOL" "$MCP_URL" "$DURATION" "$(nproc 2>/dev/null || echo '?')"
printf '%6s %11s %9s %9s %10s %8s\n' conns "req/s" "p50 ms" "p99 ms" "p99.9 ms" errors
for c in $CONNS; do
    threads=$((c < 2 ? c : 2))
    out="$TMP/wrk-$c.out"
    rc=0
    ticks0=$(cpu_ticks)
    # in the background so that a signal to this script runs its trap at once
    TUMIKI_TOKEN=$TOKEN BENCH_SESSION=$SESSION BENCH_TOOL=$TOOL \
        timeout --signal=INT --kill-after=10 $((DURATION + 30)) \
        wrk -t "$threads" -c "$c" -d "${DURATION}s" --timeout 10s \
        -s "$ROOT/bench/tools_call.lua" "$MCP_URL" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || rc=$?
    WRK_PID=""
    [[ ${BENCH_VERBOSE:-0} == 1 ]] && cat "$out" >&2
    line=$(grep '^BENCH_RESULT ' "$out" | tail -n 1 || true)
    if ((rc != 0)) || [[ -z $line ]]; then
        cat "$out" >&2
        die "wrk failed at $c connections (exit $rc)"
    fi
    read -r _ rps p50 p99 p999 errs _ <<<"$line"
    printf '%6s %11s %9s %9s %10s %8s\n' "$c" "$rps" "$p50" "$p99" "$p999" "$errs"
    # CPU per call is steadier than req/s on a shared machine
    awk -v t="$(($(cpu_ticks) - ticks0))" -v hz="$(getconf CLK_TCK)" -v r="$rps" -v d="$DURATION" \
        'BEGIN { if (r > 0) printf "       gateway CPU: %.1f us per call (%.2f cores busy)\n", t / hz * 1e6 / (r * d), t / hz / d }'
    if ! kill -0 "$GW_PID" 2>/dev/null; then
        rc=0
        wait "$GW_PID" || rc=$?
        GW_PID=""
        show_gateway_log
        die "gateway exited (status $rc) during the run at $c connections"
    fi
done

PEAK_HWM=$(rss_kb VmHWM)
PEAK_RSS=$(rss_kb VmRSS)
printf 'gateway RSS idle: %s kB (VmRSS after start; VmHWM %s kB)\n' "$IDLE_RSS" "$IDLE_HWM"
printf 'gateway RSS peak: %s kB (VmHWM after the runs; VmRSS now %s kB)\n' "$PEAK_HWM" "$PEAK_RSS"

stop_gateway
