#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tumiki benchmark suite (run by hand; not a test). One command builds a
# Release gateway, the fixtures and the drivers into build-bench/ and runs
# the scenarios on 127.0.0.1, each bounded in time:
#   a  tools/call through the gateway to the stdio echo upstream at
#      BENCH_CONNS connections, against a direct pipe client (tk-bench-direct)
#   b  the same to a Streamable HTTP upstream (tk-http-echo-server), against
#      wrk straight to that upstream
#   c  tools/list over 50 servers x 50 tools: the first (cold) call, then wrk
#      on the cached catalogue
#   d  BENCH_SESSIONS idle sessions with open GET SSE streams: memory each
#   e  start-up time (spawn to ready file) and idle RSS
#   f  API key + rate limits (+ audit where the gateway has it) vs the bare
#      path (bootstrap token, no limits), alternated, as a ratio
# Every point prints req/s, p50/p99/p99.9, errors, the peak RSS and CPU
# seconds of the process under test and, where one exists, the baseline and
# the ratio; the same rows go to reports/bench/<time>.tsv (and latest.tsv).
#
# usage: bash bench/run.sh [a|b|c|d|e|f|all ...]     (default: all)
# Environment: BENCH_DURATION (seconds per point, default 5), BENCH_CONNS
# (default "1 16 64 256"), BENCH_SESSIONS (default 10000), BENCH_STARTUP_RUNS
# (default 21), BENCH_SECURE_CONNS (default 64), BENCH_PAIRS (scenario f,
# default 2), BENCH_THREADS (N or auto: the gateway's event-loop threads,
# written as "server": {"threads": N} or "threads": N, whichever this
# gateway accepts; ignored with a note if neither), BENCH_AUDIT_JSON (the
# member that turns the audit trail on in (f), default
# '"audit": { "enabled": true }'; the other configs get "enabled": false,
# each only if this gateway's check-config accepts it),
# BENCH_PEERS=1 (also measure supergateway and mcp-proxy in scenario a),
# BENCH_BUILD_DIR (default build-bench; relative to the repository or
# absolute), BENCH_NO_BUILD=1, BENCH_VERBOSE=1, BENCH_REPORT_DIR (default
# reports/bench), BENCH_STRICT=1 (exit 1 if any point had errors: the
# bench_smoke ctest). See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

DURATION=${BENCH_DURATION:-5}
CONNS=${BENCH_CONNS:-"1 16 64 256"}
NSESSIONS=${BENCH_SESSIONS:-10000}
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-21}
SECURE_CONNS=${BENCH_SECURE_CONNS:-64}
PAIRS=${BENCH_PAIRS:-2}
BUILD=${BENCH_BUILD_DIR:-build-bench}
VERBOSE=${BENCH_VERBOSE:-0}
REPORT_DIR=${BENCH_REPORT_DIR:-$ROOT/reports/bench}
[[ $BUILD == /* ]] || BUILD="$ROOT/$BUILD"

num_in() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2 && $1 <= $3)); }
num_in "$DURATION" 1 3600 || die "BENCH_DURATION must be whole seconds in [1, 3600]"
for c in $CONNS; do num_in "$c" 1 10000 || die "bad connection count in BENCH_CONNS: $c"; done
num_in "$NSESSIONS" 1 100000 || die "BENCH_SESSIONS must be in [1, 100000]"
num_in "$STARTUP_RUNS" 2 1000 || die "BENCH_STARTUP_RUNS must be in [2, 1000]"
num_in "$SECURE_CONNS" 1 10000 || die "BENCH_SECURE_CONNS must be in [1, 10000]"
num_in "$PAIRS" 1 20 || die "BENCH_PAIRS must be in [1, 20]"
for cmd in cmake make curl wrk od timeout awk getconf; do
    command -v "$cmd" >/dev/null || die "$cmd is not installed"
done

SCENARIOS=()
for s in "${@:-all}"; do
    case $s in
    all) SCENARIOS+=(a b c d e f) ;;
    a | b | c | d | e | f) SCENARIOS+=("$s") ;;
    *) die "unknown scenario '$s' (a, b, c, d, e, f or all)" ;;
    esac
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tumiki-bench.XXXXXX")
cleanup() {
    stop_all
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build -------------------------------------------------------------------
TARGETS=(tumiki tk-echo-server tk-http-echo-server tk-bench-direct tk-bench-sessions tk-bench-startup)
if [[ ${BENCH_NO_BUILD:-0} == 1 ]]; then
    note "BENCH_NO_BUILD=1: using the binaries already in $BUILD"
else
    note "building $BUILD (Release) ..."
    if ! { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
        make -C "$BUILD" -j2 "${TARGETS[@]}"; } >"$TMP/build.log" 2>&1; then
        tail -n 40 "$TMP/build.log" >&2
        die "build failed (last 40 lines of the log above)"
    fi
fi
GW_BIN="$BUILD/tumiki"
ECHO_BIN="$BUILD/tk-echo-server"
HTTP_ECHO_BIN="$BUILD/tk-http-echo-server"
DIRECT_BIN="$BUILD/tk-bench-direct"
SESSIONS_BIN="$BUILD/tk-bench-sessions"
STARTUP_BIN="$BUILD/tk-bench-startup"
for t in "${TARGETS[@]}"; do [[ -x $BUILD/$t ]] || die "no $BUILD/$t after the build"; done

TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
[[ ${#TOKEN} -eq 48 ]] || die "could not make a random token"

# ---- options that depend on what this gateway supports ----------------------
THREADS_JSON=""
if [[ -n ${BENCH_THREADS:-} ]]; then
    t=$BENCH_THREADS
    if [[ $t == auto ]]; then
        t='"auto"'
    else
        num_in "$t" 1 1024 || die "BENCH_THREADS must be auto or in [1, 1024]"
    fi
    for member in "\"server\": { \"threads\": $t }" "\"threads\": $t"; do
        if accepts_key "$member"; then
            THREADS_JSON=$member
            break
        fi
    done
    [[ -n $THREADS_JSON ]] || note "BENCH_THREADS ignored: this gateway has no threads option (yet)"
fi
# the audit trail: on in (f)'s secure path, off everywhere else (when the
# gateway has one; it may be on by default)
AUDIT_JSON=${BENCH_AUDIT_JSON:-'"audit": { "enabled": true }'}
accepts_key "$AUDIT_JSON" || AUDIT_JSON=""
AUDIT_OFF_JSON='"audit": { "enabled": false }'
accepts_key "$AUDIT_OFF_JSON" || AUDIT_OFF_JSON=""
NOLIMIT='"rate_limits": { "per_key": "off" }'
echo_server() { # echo_server NAME [ARGS...]: an mcpServers member for tk-echo-server
    local name=$1 args="" a
    shift
    for a in --name "$name" "$@"; do args+="${args:+, }$(json_str "$a")"; done
    printf '"%s": { "command": %s, "args": [%s] }' "$name" "$(json_str "$ECHO_BIN")" "$args"
}

case ${BENCH_PROFILE:-} in
"") ;;
perf | perfstat) command -v perf >/dev/null || die "BENCH_PROFILE=$BENCH_PROFILE: perf is not installed" ;;
callgrind)
    command -v valgrind >/dev/null || die "BENCH_PROFILE=callgrind: valgrind is not installed"
    GW_WRAP=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$TMP/callgrind.out.%p")
    # BENCH_CALLGRIND_THREADS=1: one dump per thread (callgrind-<point>-<n>.out)
    [[ ${BENCH_CALLGRIND_THREADS:-0} == 1 ]] && GW_WRAP+=(--separate-threads=yes)
    READY_TIMEOUT_S=120
    ;;
*) die "BENCH_PROFILE must be perf, perfstat or callgrind" ;;
esac

mkdir -p "$REPORT_DIR"
RESULTS="$REPORT_DIR/$(date -u +%Y%m%dT%H%M%SZ).tsv"
{
    printf '# tumiki bench %s commit %s\n' "$(date -u +%FT%TZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    printf '# machine: %s CPUs, %s; load %s\n' "$(nproc)" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '# duration %s s per point; threads: %s; audit in (f): %s; elsewhere: %s\n' "$DURATION" \
        "${THREADS_JSON:-default}" "${AUDIT_JSON:-n/a}" "${AUDIT_OFF_JSON:-n/a}"
    echo "$TSV_HEADER"
} >"$RESULTS"
head -n 3 "$RESULTS"

declare -A PEER_BASE=() # Tumiki's req/s in (a) by connections, for the peers

# ---- (a) stdio upstream ------------------------------------------------------
scenario_a() {
    table_header "(a) tools/call -> stdio echo upstream; baseline: tk-bench-direct over pipes (depth = conns)"
    write_config "$TMP/a.json" "$(echo_server echo)" "$NOLIMIT"
    gw_start a "$TMP/a.json"
    local url="$GW_URL/mcp/default" sid c base p50_gw1="" p50_dir1=""
    sid=$(AUTH_TOKEN=$TOKEN mcp_session "$url")
    AUTH_TOKEN=$TOKEN smoke_call "$url" "$sid" echo__echo
    for c in $CONNS; do
        measure "" "$DIRECT_BIN" --depth "$c" --duration "$DURATION" -- "$ECHO_BIN"
        base=$(field 2 "$M_LINE")
        record a "direct depth=$c" "$M_LINE" - -
        ((c == 1)) && p50_dir1=$(field 3 "$M_LINE")
        PROF=a-conns$c run_wrk "$GW_PID" "$url" "$c" TUMIKI_TOKEN="$TOKEN" BENCH_SESSION="$sid" \
            BENCH_TOOL=echo__echo
        record a "gateway conns=$c" "$M_LINE" "$M_CPU" "$M_HWM" "$base"
        PEER_BASE[$c]=$(field 2 "$M_LINE")
        ((c == 1)) && p50_gw1=$(field 3 "$M_LINE")
    done
    if [[ -n $p50_gw1 && -n $p50_dir1 ]]; then
        local us
        us=$(awk -v g="$p50_gw1" -v d="$p50_dir1" 'BEGIN { printf "%.0f", (g - d) * 1000 }')
        printf 'gateway overhead at p50 (1 connection vs 1 in flight): %s us (target <= 100)\n' "$us"
        printf 'a\toverhead_p50_us\t-\t%s\t-\t-\t-\t-\t-\t-\t-\t-\tp50(gateway,1) - p50(direct,1)\n' \
            "$us" >>"$RESULTS"
    fi
    stop_all
    [[ ${BENCH_PEERS:-0} == 1 ]] && peers_a
    return 0
}

# ---- (b) Streamable HTTP upstream -------------------------------------------
scenario_b() {
    table_header "(b) tools/call -> Streamable HTTP echo upstream; baseline: wrk straight to it"
    http_echo_start hecho
    local up_url=$HE_URL up_pid=$HE_PID up_sid c base
    write_config "$TMP/b.json" "\"echo\": { \"type\": \"http\", \"url\": $(json_str "$up_url") }" \
        "$NOLIMIT, \"outbound\": { \"allow_cidrs\": [\"127.0.0.0/8\"] }"
    gw_start b "$TMP/b.json"
    local url="$GW_URL/mcp/default" sid
    sid=$(AUTH_TOKEN=$TOKEN mcp_session "$url")
    AUTH_TOKEN=$TOKEN smoke_call "$url" "$sid" echo__echo
    up_sid=$(AUTH_TOKEN="" mcp_session "$up_url")
    for c in $CONNS; do
        run_wrk "$up_pid" "$up_url" "$c" BENCH_SESSION="$up_sid" BENCH_TOOL=echo
        base=$(field 2 "$M_LINE")
        record b "direct conns=$c" "$M_LINE" "$M_CPU" "$M_HWM"
        PROF=b-conns$c run_wrk "$GW_PID" "$url" "$c" TUMIKI_TOKEN="$TOKEN" BENCH_SESSION="$sid" \
            BENCH_TOOL=echo__echo
        record b "gateway conns=$c" "$M_LINE" "$M_CPU" "$M_HWM" "$base"
    done
    stop_all
}

# ---- (c) catalogue of 50 servers x 50 tools ------------------------------------
scenario_c() {
    local nsrv=50 extra=42 servers="" i # 8 built-in tools + 42 copies = 50 each
    table_header "(c) tools/list over $nsrv servers x 50 tools (cold: first call after start; cached: wrk)"
    for ((i = 0; i < nsrv; i++)); do
        servers+="${servers:+, }$(echo_server "s$i" --tools "$extra")"
    done
    write_config "$TMP/c.json" "$servers" "$NOLIMIT"
    gw_start c "$TMP/c.json"
    local url="$GW_URL/mcp/default" sid code secs ntools last="s$((nsrv - 1))__tool_$((extra - 1))" what
    sid=$(AUTH_TOKEN=$TOKEN mcp_session "$url")
    for what in cold second; do
        code=$(AUTH_TOKEN=$TOKEN mcp_post "$url" list '{"jsonrpc":"2.0","id":3,"method":"tools/list"}' "$sid")
        secs=${code#* }
        ntools=$(grep -o '"name":"s[0-9]*__[A-Za-z0-9_]*"' "$TMP/list.b" | wc -l)
        if [[ ${code% *} != 200 ]] || ! grep -q "$last" "$TMP/list.b"; then
            die "tools/list: HTTP ${code% *} or no $last in the response"
        fi
        local ms
        ms=$(awk -v s="$secs" 'BEGIN { printf "%.3f", s * 1000 }')
        record c "$what call (curl)" "BENCH_RESULT - $ms $ms $ms 0" - "$(proc_kb "$GW_PID" VmHWM)" - \
            "$ntools tools, $(wc -c <"$TMP/list.b") bytes"
    done
    for c in 1 16; do
        PROF=c-cached-conns$c run_wrk "$GW_PID" "$url" "$c" TUMIKI_TOKEN="$TOKEN" BENCH_SESSION="$sid" \
            BENCH_METHOD=tools/list BENCH_EXPECT="$last"
        record c "cached conns=$c" "$M_LINE" "$M_CPU" "$M_HWM"
    done
    stop_all
}

# ---- (d) idle sessions with open GET streams -----------------------------------
scenario_d() {
    local n=$NSESSIONS hard
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=1048576
    ulimit -n "$hard" 2>/dev/null || true
    if ((n + 200 > hard)); then
        note "open-file limit $hard: only $((hard - 200)) sessions instead of $n"
        n=$((hard - 200))
    fi
    printf '\n== (d) %s idle sessions, each with an open GET SSE stream\n' "$n"
    write_config "$TMP/d.json" "$(echo_server echo)" \
        "$NOLIMIT, \"limits\": { \"max_sessions\": $((n + 100)), \"max_connections\": $((n + 1000)) }"
    gw_start d "$TMP/d.json"
    AUTH_TOKEN=$TOKEN mcp_session "$GW_URL/mcp/default" >/dev/null # warm-up
    sleep 0.5
    local port=${GW_URL##*:} out="$TMP/sessions.out" rc=0
    TUMIKI_TOKEN=$TOKEN timeout --kill-after=10 200 "$SESSIONS_BIN" --port "$port" --pid "$GW_PID" \
        --sessions "$n" --parallel 64 --hold-ms 2000 --timeout 150 >"$out" 2>&1 || rc=$?
    local line
    line=$(grep '^BENCH_SESSIONS ' "$out" || true)
    [[ -n $line ]] || { cat "$out" >&2; die "tk-bench-sessions failed (exit $rc)"; }
    read -r _ opened failed setup before after per hwm cpu <<<"$line"
    printf '%-34s %s\n' "sessions opened / failed" "$opened / $failed" \
        "set-up time (all)" "$setup s" "gateway RSS before / after" "$before / $after kB" \
        "memory per idle session" "$per bytes (target <= 16384)" \
        "gateway peak RSS / CPU during set-up" "$hwm kB / $cpu s"
    ((failed == 0)) || FAILED+=("d: $failed of $n sessions failed")
    printf 'd\tsessions=%s\t-\t-\t-\t-\t%s\t%s\t%s\t-\t-\t-\t%s bytes/session; RSS %s -> %s kB; set-up %s s\n' \
        "$opened" "$failed" "$hwm" "$cpu" "$per" "$before" "$after" "$setup" >>"$RESULTS"
    stop_all
}

# ---- (e) start-up time and idle RSS ---------------------------------------------
scenario_e() {
    printf '\n== (e) start-up: spawn to ready file, %s runs; idle RSS 500 ms after ready\n' "$STARTUP_RUNS"
    write_config "$TMP/e.json" "$(echo_server echo)" "$NOLIMIT"
    local out="$TMP/startup.out" line rc=0
    TUMIKI_TOKEN=$TOKEN timeout --kill-after=10 300 "$STARTUP_BIN" --runs "$STARTUP_RUNS" \
        --settle-ms 500 --ready-file "$TMP/e.ready" -- \
        "$GW_BIN" serve --config "$TMP/e.json" --ready-file "$TMP/e.ready" >"$out" 2>&1 || rc=$?
    line=$(grep '^BENCH_STARTUP ' "$out" || true)
    [[ -n $line ]] || { cat "$out" >&2; die "tk-bench-startup failed (exit $rc)"; }
    read -r _ first median min max rss <<<"$line"
    printf '%-34s %s\n' "first start (creates the store)" "$first ms" \
        "median of the others" "$median ms (min $min, max $max; target <= 50)" \
        "idle RSS" "$rss kB (target <= 15360)"
    printf 'e\tstartup\t-\t%s\t-\t-\t0\t%s\t-\t-\t-\t-\tmedian ms; first %s ms, min %s, max %s; idle RSS kB\n' \
        "$median" "$rss" "$first" "$min" "$max" >>"$RESULTS"
}

# ---- (f) security path vs bare path ---------------------------------------------
scenario_f() {
    local c=$SECURE_CONNS limits='"per_key": "1000000/s", "max_keys": 100000'
    table_header "(f) tools/call at $c connections: API key + rate limits + audit (${AUDIT_JSON:-audit: n/a}) vs bare"
    write_config "$TMP/f-bare.json" "$(echo_server echo)" "$NOLIMIT"
    write_config "$TMP/f-secure.json" "$(echo_server echo)" \
        "\"rate_limits\": { $limits }, \"endpoints\": { \"default\": { \"rate_limit\": \"1000000/s\" } }" \
        "$AUDIT_JSON"
    gw_start f-bare "$TMP/f-bare.json"
    local bare_pid=$GW_PID bare_url="$GW_URL/mcp/default" bare_sid
    gw_start f-secure "$TMP/f-secure.json"
    local sec_pid=$GW_PID sec_url="$GW_URL/mcp/default" sec_sid key
    key=$("$GW_BIN" key create --config "$TMP/f-secure.json" --endpoint default 2>"$TMP/key.err") ||
        die "tumiki key create failed: $(head -c 300 "$TMP/key.err")"
    bare_sid=$(AUTH_TOKEN=$TOKEN mcp_session "$bare_url")
    sec_sid=$(AUTH_TOKEN=$key mcp_session "$sec_url")
    AUTH_TOKEN=$key smoke_call "$sec_url" "$sec_sid" echo__echo
    local i rps sums="0 0 0 0" # bare req/s, bare CPU s per s, secure ..., summed over pairs
    add_pair() { # add_pair OFFSET: adds this run's req/s and CPU share to $sums
        sums=$(awk -v o="$1" -v r="$(field 2 "$M_LINE")" -v c="$M_CPU" -v d="$DURATION" \
            '{ $(o + 1) += r; $(o + 2) += c / d; print }' <<<"$sums")
    }
    for ((i = 1; i <= PAIRS; i++)); do
        PROF=f-bare-$i run_wrk "$bare_pid" "$bare_url" "$c" TUMIKI_TOKEN="$TOKEN" BENCH_SESSION="$bare_sid"
        rps=$(field 2 "$M_LINE")
        add_pair 0
        record f "bare #$i" "$M_LINE" "$M_CPU" "$M_HWM"
        PROF=f-secure-$i run_wrk "$sec_pid" "$sec_url" "$c" TUMIKI_TOKEN="$key" BENCH_SESSION="$sec_sid"
        add_pair 2
        record f "secure #$i" "$M_LINE" "$M_CPU" "$M_HWM" "$rps"
    done
    # throughput ratio, and gateway CPU per call (less sensitive to a busy machine)
    local summary
    summary=$(awk '{ printf "%.3f %.1f %.1f %.3f", $3 / $1, $2 / $1 * 1e6, $4 / $3 * 1e6, ($4 / $3) / ($2 / $1) }' <<<"$sums")
    read -r ratio cpu_bare cpu_sec cpu_ratio <<<"$summary"
    printf 'secure / bare throughput over %s pairs: %s (target >= 0.90)\n' "$PAIRS" "$ratio"
    printf 'gateway CPU per call: bare %s us, secure %s us (secure / bare %s)\n' "$cpu_bare" "$cpu_sec" "$cpu_ratio"
    printf 'f\tsecure/bare\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\tCPU/call %s vs %s us (x%s); audit: %s\n' "$ratio" \
        "$cpu_sec" "$cpu_bare" "$cpu_ratio" "${AUDIT_JSON:-n/a}" >>"$RESULTS"
    stop_all
}

# ---- optional peers (BENCH_PEERS=1) ---------------------------------------------
# shellcheck source=bench/peers/peers.sh
source "$ROOT/bench/peers/peers.sh"

for s in "${SCENARIOS[@]}"; do
    "scenario_$s"
done
cp "$RESULTS" "$REPORT_DIR/latest.tsv"
printf '\nresults: %s\n' "${RESULTS#"$ROOT"/}"
if [[ ${BENCH_STRICT:-0} == 1 ]] && ((${#FAILED[@]} > 0)); then
    printf 'bench: %s\n' "${FAILED[@]}" >&2
    die "${#FAILED[@]} point(s) had errors (BENCH_STRICT=1)"
fi
