# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash disable=SC2034 # globals are read by run.sh
# Helpers for bench/run.sh (sourced, not run): process bookkeeping and
# cleanup, gateway and fixture start-up with bounded waits, MCP sessions
# with curl, wrk runs with the gateway's CPU and peak memory around them, and
# the result table/TSV. Everything listens on and talks to 127.0.0.1 only.
# Expects ROOT, BUILD, TMP, DURATION, RESULTS and REPORT_DIR to be set by
# the caller.

READY_TIMEOUT_S=20
PROTOCOL_VERSION=2025-11-25
CLK_TCK=$(getconf CLK_TCK)
PIDS=()    # every background process this script started
FAILED=()  # points with errors (BENCH_STRICT=1 turns them into exit 1)
GW_WRAP=() # a command prefix for the gateway (bench/profile.sh: valgrind)

die() {
    echo "bench: $*" >&2
    exit 1
}

note() {
    echo "bench: $*" >&2
}

# stop_pid PID: SIGTERM, then SIGKILL after 10 s; reaps it.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            note "process $pid ignored SIGTERM for 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    PIDS=()
}

json_str() { # a JSON string literal for $1
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# wait_ready FILE PID WHAT: waits for FILE to hold a complete line; prints it.
wait_ready() {
    local file=$1 pid=$2 what=$3 i
    for ((i = 0; i < READY_TIMEOUT_S * 100; i++)); do
        kill -0 "$pid" 2>/dev/null || die "$what exited before it was ready (log: ${file%.ready}.log)"
        if [[ -s $file && $(tail -c 1 "$file" | od -An -tx1) == *0a* ]]; then
            head -n 1 "$file"
            return 0
        fi
        sleep 0.01
    done
    die "$what: no ready file after $READY_TIMEOUT_S s"
}

# gw_start NAME CONFIG: starts the gateway; sets GW_PID and GW_URL (base URL).
# The bearer token is $TOKEN (bootstrap token, via TUMIKI_TOKEN).
gw_start() {
    local name=$1 cfg=$2
    rm -f "$TMP/$name.ready"
    TUMIKI_TOKEN=$TOKEN "${GW_WRAP[@]}" "$GW_BIN" serve --config "$cfg" --ready-file "$TMP/$name.ready" \
        </dev/null >"$TMP/$name.out" 2>"$TMP/$name.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    GW_URL=$(wait_ready "$TMP/$name.ready" "$GW_PID" "gateway $name") || exit 1
    GW_URL=${GW_URL%/}
    [[ $GW_URL =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected ready-file content: $GW_URL"
}

# http_echo_start NAME [ARGS...]: starts tk-http-echo-server; sets HE_PID, HE_URL.
http_echo_start() {
    local name=$1
    shift
    rm -f "$TMP/$name.ready"
    "$HTTP_ECHO_BIN" --ready-file "$TMP/$name.ready" "$@" </dev/null >/dev/null \
        2>"$TMP/$name.log" &
    HE_PID=$!
    PIDS+=("$HE_PID")
    HE_URL=$(wait_ready "$TMP/$name.ready" "$HE_PID" "tk-http-echo-server") || exit 1
}

# write_config FILE SERVERS_JSON [EXTRA_MEMBERS [AUDIT_MEMBER]]: a config
# with THREADS_JSON and AUDIT_MEMBER (default AUDIT_OFF_JSON) where set.
write_config() {
    local file=$1 servers=$2 extra=${3:-} audit=${4-$AUDIT_OFF_JSON}
    cat >"$file" <<EOF
{
  "listen": "127.0.0.1:0",
  "data_dir": $(json_str "$TMP/data-$(basename "$file" .json)"),
  "log_level": "warn",
  ${THREADS_JSON:+$THREADS_JSON,}
  ${audit:+$audit,}
  ${extra:+$extra,}
  "mcpServers": { $servers }
}
EOF
    "$GW_BIN" check-config "$file" >/dev/null 2>"$TMP/check.err" ||
        die "bench config $file rejected: $(head -c 500 "$TMP/check.err")"
}

# accepts_key MEMBERS: whether check-config takes a config with these extra members.
accepts_key() {
    local f="$TMP/probe.json"
    cat >"$f" <<EOF
{ "listen": "127.0.0.1:0", "data_dir": $(json_str "$TMP/data-probe"), $1, "mcpServers": {} }
EOF
    "$GW_BIN" check-config "$f" >/dev/null 2>&1
}

# mcp_post URL NAME BODY [SESSION]: POST BODY with the bearer $AUTH_TOKEN (if
# set); headers in $TMP/NAME.h, body in $TMP/NAME.b; prints the HTTP status.
mcp_post() {
    local url=$1 name=$2 body=$3 session=${4:-} rc=0 code
    local -a hdr=(-H "Content-Type: application/json"
        -H "Accept: application/json, text/event-stream")
    if [[ -n ${AUTH_TOKEN:-} ]]; then
        # the token goes to curl in a file (in the 0700 temp dir), not on its command line
        printf 'Authorization: Bearer %s\n' "$AUTH_TOKEN" >"$TMP/auth.h"
        hdr+=(-H "@$TMP/auth.h")
    fi
    if [[ -n $session ]]; then
        hdr+=(-H "Mcp-Session-Id: $session" -H "MCP-Protocol-Version: $PROTOCOL_VERSION")
    fi
    code=$(curl -sS --noproxy '*' --max-time 30 -o "$TMP/$name.b" -D "$TMP/$name.h" \
        -w '%{http_code} %{time_total}' "${hdr[@]}" --data-binary "$body" "$url") || rc=$?
    ((rc == 0)) || code="000 0"
    echo "$code"
}

# mcp_session URL: initialize + notifications/initialized; prints the session id.
mcp_session() {
    local url=$1 code sid
    code=$(mcp_post "$url" init '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"'"$PROTOCOL_VERSION"'","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}')
    [[ $code == 200\ * ]] || die "initialize on $url: HTTP ${code% *}: $(head -c 500 "$TMP/init.b" 2>/dev/null)"
    sid=$(awk 'tolower($1) == "mcp-session-id:" { v = $2 } END { print v }' "$TMP/init.h" | tr -d '\r')
    [[ $sid =~ ^[!-~]*$ ]] || die "initialize on $url: odd Mcp-Session-Id"
    code=$(mcp_post "$url" initialized '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$sid")
    [[ $code == 202\ * || $code == 200\ * ]] || die "notifications/initialized on $url: HTTP ${code% *}"
    echo "$sid"
}

# smoke_call URL SESSION TOOL: one tools/call by hand, so a wrong tool name
# fails loudly instead of as a table of errors.
smoke_call() {
    local code
    code=$(mcp_post "$1" smoke '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"'"$3"'","arguments":{"text":"hello"}}}' "$2")
    if [[ $code != 200\ * ]] || ! grep -q hello "$TMP/smoke.b"; then
        head -c 1000 "$TMP/smoke.b" >&2 || true
        die "tools/call $3 on $1: HTTP ${code% *} or no \"hello\" in the response"
    fi
}

# thread_snap PID: one line per thread: tid, name, CPU ns (utime + stime,
# clock-tick resolution), voluntary and involuntary context switches so far.
thread_snap() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s %s %s\n' "${t##*/}" "$(tr -c 'A-Za-z0-9_\n' _ <"$t/comm" 2>/dev/null)" \
            "$(awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.0f", ($12 + $13) * 1e9 / t }' "$t/stat" 2>/dev/null)" \
            "$(awk '$1 == "voluntary_ctxt_switches:" { print $2 }' "$t/status" 2>/dev/null)" \
            "$(awk '$1 == "nonvoluntary_ctxt_switches:" { print $2 }' "$t/status" 2>/dev/null)"
    done
}
# thread_report BEFORE AFTER CALLS: per thread of the measured process, CPU
# microseconds and context switches per call (BENCH_THREAD_CPU=1); threads
# that used under 0.05 us per call are summed as "others".
thread_report() {
    awk -v calls="$3" 'NR == FNR { c[$1] = $3; v[$1] = $4; n[$1] = $5; next }
        ($1 in c) && calls > 0 {
            us = ($3 - c[$1]) / 1000 / calls; cs = ($4 - v[$1] + $5 - n[$1]) / calls
            tot += us; tcs += cs
            if (us >= 0.05) printf "    thread %s (%s): %.2f us/call, %.3f switches/call\n", $1, $2, us, cs
            else { ous += us; ocs += cs }
        }
        END { if (calls > 0) printf "    others: %.2f us/call, %.3f switches/call; all threads %.2f us/call, %.3f switches/call\n", ous, ocs, tot, tcs }' "$1" "$2"
}

# proc_cpu PID: utime+stime in seconds; proc_kb PID FIELD: VmRSS/VmHWM in kB.
proc_cpu() {
    awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
proc_kb() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo -1
}
# reset_hwm PID: restarts the peak-RSS counter (VmHWM) of a process we own.
reset_hwm() {
    echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true
}

# measure PID CMD...: runs CMD (bounded) with the VAR=VALUE pairs of the
# MEASURE_ENV array in its environment (not on a command line, where other
# users could read a token), with PID's CPU and peak RSS around it; sets
# M_LINE (its BENCH_RESULT line), M_CPU (CPU s) and M_HWM (peak kB).
MEASURE_ENV=()
measure() {
    local pid=$1 cpu0 rc=0 out="$TMP/measure.out"
    shift
    [[ -n $pid ]] && reset_hwm "$pid"
    [[ -n $pid ]] && cpu0=$(proc_cpu "$pid")
    [[ -n $pid && ${BENCH_THREAD_CPU:-0} == 1 ]] && thread_snap "$pid" >"$TMP/threads.0"
    (
        ((${#MEASURE_ENV[@]} == 0)) || export "${MEASURE_ENV[@]}"
        exec timeout --signal=INT --kill-after=10 $((DURATION + 60)) "$@"
    ) >"$out" 2>&1 &
    local mpid=$!
    PIDS+=("$mpid")
    [[ -n ${BENCH_PROFILE:-} && -n ${PROF:-} && -n $pid ]] && profile_start "$pid"
    wait "$mpid" || rc=$?
    [[ -n ${BENCH_PROFILE:-} && -n ${PROF:-} && -n $pid ]] && profile_stop "$pid"
    [[ ${VERBOSE:-0} == 1 ]] && cat "$out" >&2
    M_LINE=$(grep '^BENCH_RESULT ' "$out" | tail -n 1 || true)
    if ((rc != 0)) || [[ -z $M_LINE ]]; then
        cat "$out" >&2
        die "$(basename "$1") failed (exit $rc; its output is above)"
    fi
    if [[ -n ${BENCH_PROFILE:-} && -n ${PROF:-} && -n $pid ]]; then
        awk -v d="$DURATION" '{ printf "# requests in this run: %.0f (%s req/s x %s s)\n", $2 * d, $2, d }' \
            <<<"$M_LINE" >>"$REPORT_DIR/profile-$PROF.txt"
    fi
    M_CPU="-" M_HWM="-"
    if [[ -n $pid ]]; then
        kill -0 "$pid" 2>/dev/null || die "process $pid (measured) exited during the run"
        M_CPU=$(awk -v a="$cpu0" -v b="$(proc_cpu "$pid")" 'BEGIN { printf "%.2f", b - a }')
        M_HWM=$(proc_kb "$pid" VmHWM)
        if [[ ${BENCH_THREAD_CPU:-0} == 1 ]]; then
            thread_snap "$pid" >"$TMP/threads.1"
            thread_report "$TMP/threads.0" "$TMP/threads.1" \
                "$(awk -v d="$DURATION" '{ printf "%.0f", $2 * d }' <<<"$M_LINE")" >&2
        fi
    fi
}

# ---- profiling (BENCH_PROFILE=perf|perfstat|callgrind; points named by PROF) ---------
# perf: `perf record -g` attached to the process for the run; perfstat:
# `perf stat --per-thread` (system calls, context switches, migrations, CPU
# time) attached for the run. callgrind: the
# gateway runs under valgrind with instrumentation off (GW_WRAP, set by
# run.sh); it is switched on for the run and dumped after it. Reports go to
# reports/bench/profile-<PROF>.txt (callgrind: the raw dump to
# reports/bench/callgrind-<PROF>.out as well).
PROF_PID=""
profile_start() {
    case ${BENCH_PROFILE:-} in
    perf)
        perf record -q -F 999 -g -p "$1" -o "$TMP/perf.data" -- sleep "$DURATION" \
            >"$TMP/perf.log" 2>&1 &
        PROF_PID=$!
        PIDS+=("$PROF_PID")
        ;;
    perfstat)
        perf stat --per-thread -e raw_syscalls:sys_enter,context-switches,cpu-migrations,task-clock \
            -p "$1" -o "$REPORT_DIR/profile-$PROF.txt" -- sleep "$DURATION" >"$TMP/perf.log" 2>&1 &
        PROF_PID=$!
        PIDS+=("$PROF_PID")
        ;;
    callgrind) callgrind_control -i on "$1" >/dev/null ;;
    esac
}
profile_stop() {
    local rep="$REPORT_DIR/profile-$PROF.txt"
    case ${BENCH_PROFILE:-} in
    perf)
        wait "$PROF_PID" || note "perf record failed: $(tail -n 3 "$TMP/perf.log")"
        perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol \
            --percent-limit 0.7 -g none 2>/dev/null | grep -v '^$' | head -n 80 >"$rep" || true
        ;;
    perfstat) wait "$PROF_PID" || note "perf stat failed: $(tail -n 3 "$TMP/perf.log")" ;;
    callgrind)
        callgrind_control -i off "$1" >/dev/null
        callgrind_control -d "$PROF" "$1" >/dev/null
        local dump
        if [[ ${BENCH_CALLGRIND_THREADS:-0} == 1 ]]; then # every thread's dump, then cleared
            for dump in "$TMP/callgrind.out.$1".*; do
                [[ -f $dump ]] && mv "$dump" "$REPORT_DIR/callgrind-$PROF-${dump##*-}.out"
            done
            note "profile: $REPORT_DIR/callgrind-$PROF-*.out (one per thread)"
            return 0
        fi
        dump=$(ls -t "$TMP/callgrind.out.$1".* 2>/dev/null | head -n 1) || true
        [[ -n $dump ]] || { note "callgrind wrote no dump for $PROF"; return 0; }
        cp "$dump" "$REPORT_DIR/callgrind-$PROF.out" # for callgrind_annotate/kcachegrind
        { callgrind_annotate --inclusive=no "$dump" 2>/dev/null | head -n 60 >"$rep"; } || true
        { callgrind_annotate --inclusive=yes "$dump" 2>/dev/null |
            sed -n '/^Ir/,$p' | head -n 50 >>"$rep"; } || true
        ;;
    esac
    note "profile: ${rep#"$ROOT"/}"
}

# run_wrk PID URL CONNS [VAR=VALUE...]: wrk with mcp_request.lua for DURATION
# seconds at CONNS connections, measured on PID (the server under test).
run_wrk() {
    local pid=$1 url=$2 conns=$3
    shift 3
    local threads=$((conns < 2 ? conns : 2))
    MEASURE_ENV=("$@")
    measure "$pid" wrk -t "$threads" -c "$conns" -d "${DURATION}s" --timeout 10s \
        -s "$ROOT/bench/mcp_request.lua" "$url"
    MEASURE_ENV=()
}

# ---- results ---------------------------------------------------------------

TSV_HEADER="scenario	point	req_s	p50_ms	p99_ms	p999_ms	errors	peak_rss_kb	cpu_s	cpu_us_per_call	baseline_req_s	ratio	note"

table_header() { # table_header TITLE
    printf '\n== %s\n' "$1"
    printf '%-26s %10s %8s %8s %9s %6s %10s %7s %7s %10s %7s\n' point "req/s" "p50 ms" "p99 ms" \
        "p99.9 ms" errors "peak kB" "CPU s" "us/call" "base req/s" ratio
}

# record SCENARIO POINT BENCH_RESULT-LINE CPU HWM BASE_RPS NOTE: one table row + TSV line.
record() {
    local scen=$1 point=$2 line=$3 cpu=$4 hwm=$5 base=${6:--} note=${7:-} ratio="-" percall="-"
    local rps p50 p99 p999 errs
    read -r _ rps p50 p99 p999 errs _ <<<"$line"
    if [[ $cpu != - && $rps != - ]]; then # CPU per call: steadier than req/s on a busy machine
        percall=$(awk -v c="$cpu" -v r="$rps" -v d="$DURATION" 'BEGIN { printf (r > 0 ? "%.1f" : "-"), c / (r * d) * 1e6 }')
    fi
    if [[ $base != - ]]; then
        ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN { printf (b > 0 ? "%.3f" : "-"), a / b }')
    fi
    printf '%-26s %10s %8s %8s %9s %6s %10s %7s %7s %10s %7s\n' "$point" "$rps" "$p50" "$p99" \
        "$p999" "$errs" "$hwm" "$cpu" "$percall" "$base" "$ratio"
    [[ -n $note ]] && printf '    %s\n' "$note"
    [[ $errs == 0 ]] || FAILED+=("$scen $point: $errs errors")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$point" "$rps" "$p50" \
        "$p99" "$p999" "$errs" "$hwm" "$cpu" "$percall" "$base" "$ratio" "$note" >>"$RESULTS"
}

# field N LINE: the Nth whitespace-separated field of LINE (1 = the tag).
field() {
    awk -v n="$1" '{ print $n }' <<<"$2"
}
