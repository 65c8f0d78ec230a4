# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Optional peer gateways for bench/run.sh (BENCH_PEERS=1); sourced by it.
# supergateway (stdio -> Streamable HTTP, --stateful) and mcp-proxy (--server
# stream) are started on the same tk-echo-server upstream and measured with
# the same wrk script at BENCH_CONNS, right after Tumiki in scenario (a).
# They come from bench/peers/package-lock.json (npm ci, only in this mode);
# loopback.cjs keeps their listeners on 127.0.0.1. If npm or the registry is
# unavailable, the peers are skipped with a message.

PEERS_DIR="$ROOT/bench/peers"

peers_install() {
    [[ -x $PEERS_DIR/node_modules/.bin/supergateway && -x $PEERS_DIR/node_modules/.bin/mcp-proxy ]] &&
        return 0
    command -v npm >/dev/null || { note "peers: npm is not installed; skipped"; return 1; }
    note "peers: npm ci in bench/peers ..."
    if ! (cd "$PEERS_DIR" && timeout 300 npm ci --no-audit --no-fund) >"$TMP/npm.log" 2>&1; then
        note "peers: npm ci failed (registry unreachable?); skipped: $(tail -n 2 "$TMP/npm.log")"
        return 1
    fi
}

free_port() { # a port that was free a moment ago on 127.0.0.1
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# peer_start NAME PORT CMD...: starts a peer; waits (bounded) until initialize works.
peer_start() {
    local name=$1 port=$2 i
    shift 2
    NODE_OPTIONS="--require $PEERS_DIR/loopback.cjs" "$@" </dev/null >"$TMP/$name.log" 2>&1 &
    PEER_PID=$!
    PIDS+=("$PEER_PID")
    for ((i = 0; i < 300; i++)); do
        kill -0 "$PEER_PID" 2>/dev/null || { note "peers: $name exited: $(tail -n 3 "$TMP/$name.log")"; return 1; }
        if curl -s --noproxy '*' --max-time 1 -o /dev/null "http://127.0.0.1:$port/mcp" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    note "peers: $name did not answer within 30 s"
    return 1
}

# peer_measure NAME URL: one MCP session, then wrk at every BENCH_CONNS.
# Its baseline column is Tumiki's req/s at the same connections (PEER_BASE).
peer_measure() {
    local name=$1 url=$2 sid c
    sid=$(AUTH_TOKEN="" mcp_session "$url") || return 1
    AUTH_TOKEN="" smoke_call "$url" "$sid" echo
    for c in $CONNS; do
        run_wrk "$PEER_PID" "$url" "$c" BENCH_SESSION="$sid" BENCH_TOOL=echo
        record a "$name conns=$c" "$M_LINE" "$M_CPU" "$M_HWM" "${PEER_BASE[$c]:--}" \
            "$( ((c == ${CONNS%% *})) && echo "ratio: $name / Tumiki")"
    done
}

peers_a() {
    peers_install || return 0
    command -v node >/dev/null || { note "peers: node is not installed; skipped"; return 0; }
    local port bin=$PEERS_DIR/node_modules/.bin
    printf -- '-- peers on the same upstream (base req/s = Tumiki at the same connections)\n'
    port=$(free_port)
    if peer_start supergateway "$port" "$bin/supergateway" --stdio "$ECHO_BIN --name echo" \
        --outputTransport streamableHttp --stateful --port "$port" --logLevel none; then
        peer_measure supergateway "http://127.0.0.1:$port/mcp" || note "peers: supergateway failed"
    fi
    stop_all
    port=$(free_port)
    if peer_start mcp-proxy "$port" "$bin/mcp-proxy" --host 127.0.0.1 --port "$port" \
        --server stream --no-eventStore -- "$ECHO_BIN" --name echo; then
        peer_measure mcp-proxy "http://127.0.0.1:$port/mcp" || note "peers: mcp-proxy failed"
    fi
    stop_all
}
