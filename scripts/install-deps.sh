#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install the Debian packages Tumiki builds and tests with (a quick no-op
# when they are present), then the pinned npm packages (MCP servers and
# clients used by the demo and the tests) from package-lock.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PKGS=(build-essential cmake pkg-config libevent-dev libjansson-dev libssl-dev
      libcurl4-openssl-dev libcmocka-dev libsqlite3-dev libcrypt-dev libjwt-dev
      libpcre2-dev libcjose-dev
      sqlite3 wrk curl openssl sslscan prometheus chromium
      clang libclang-rt-14-dev cppcheck clang-tidy clang-tools-14)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm: any install will do (a nodejs package that bundles npm
# conflicts with Debian's separate npm package, so look for the commands).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: not root; install these Debian packages first: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${missing[@]}"
fi

stamp=node_modules/.tumiki-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
