#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Audit append cost (ns/record): builds bench/audit_append.c against the
# library in build/ and runs it. Usage: bench/audit.sh [RECORDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
out="$build/audit_append"
cc -O2 -std=gnu17 -D_GNU_SOURCE -I "$root/src" "$root/bench/audit_append.c" \
    "$build/libtumiki_core.a" \
    $(pkg-config --cflags --libs jansson libcrypto libpcre2-8 libevent) -lpthread -o "$out"
dirs=$("$out" "${1:-100000}" | tee /dev/stderr | sed -n 's/^(files left in \(.*\))$/\1/p' | sed 's/ and / /g')
for d in $dirs; do rm -rf -- "$d"; done
