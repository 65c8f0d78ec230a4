#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fresh machine to running gateway: install dependencies, build, and serve
# the demo config (examples/demo.json: server-everything and
# server-filesystem behind one endpoint, 127.0.0.1:8080, data in ./data).
# The bearer token is generated on first start into ./data/bootstrap-token.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "demo: endpoint http://127.0.0.1:8080/mcp/default"
echo "demo: token    \$(cat data/bootstrap-token)   (or set TUMIKI_TOKEN)"
exec ./build/tumiki serve --config "${1:-examples/demo.json}"
