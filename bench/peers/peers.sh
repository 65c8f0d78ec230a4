# SPDX-License-Identifier: Apache-2.0
# Optional peer gateways for bench/run.sh (BENCH_PEERS=1); sourced.
peers_a() {
    note "peers: not implemented yet"
}
