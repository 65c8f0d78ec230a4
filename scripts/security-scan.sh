#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Static security scan of the tree: cppcheck, clang-tidy (cert-*, bugprone-*,
# clang-analyzer-security.*), scan-build over a fresh build, flawfinder (if
# installed), a secret scan of the tracked files and a dependency report
# (Debian packages the build links, npm test peers). Everything goes to
# reports/ (gitignored); reports/summary.txt has the counts per tool. The exit
# status is 1 when any HIGH finding remains after the baseline suppressions
# below, 0 otherwise (2 if a required tool is missing).
#
# HIGH = cppcheck severity "error"; clang-tidy clang-analyzer-* or cert-*
# warnings (and clang-tidy compile errors, since the file went unanalysed);
# any scan-build bug; any secret-scan hit.
#
# Suppressions: src/ carries no inline markers, so every false positive is
# suppressed here, as narrowly as the tool allows (a symbol, or a check plus
# a file plus the text of the flagged source line, or a function plus a bug
# type), each with the reason it is not a bug. Suppressed findings are still
# listed in reports/*-suppressed.txt. A real finding is never suppressed.
#
#   scripts/security-scan.sh            full scan
#   REPORTS_DIR=/tmp/r scripts/security-scan.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${REPORTS_DIR:-reports}
mkdir -p "$out"
out=$(cd "$out" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
summary="$out/summary.txt"
: >"$summary"
high=0

say() { echo "$*" | tee -a "$summary"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "security-scan: $1 is required" >&2; exit 2; }; }
need cppcheck
need clang-tidy
need git
scan_build=$(command -v scan-build || command -v scan-build-14 || true)
[ -n "$scan_build" ] || { echo "security-scan: scan-build (clang-tools) is required" >&2; exit 2; }

say "Tumiki security scan $(date -u +%Y-%m-%dT%H:%M:%SZ) at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
say "reports: $out"
say ""

# ============================================================================
# Baseline suppressions (reviewed false positives; see docs/security-testing.md)
# ============================================================================

# cppcheck: id|file-glob|reason|regex over the message (the regex comes last
# and may itself contain '|')
CPPCHECK_SUPPRESS=(
  # sys/queue.h (TAILQ_HEAD, LIST_HEAD) declares these members and only its
  # macros use them; cppcheck does not count uses that come from macros.
  "unusedStructMember|*|sys/queue.h head member, used by the TAILQ_*/LIST_* macros|^struct member '[^']*::(tqh_first|tqh_last|lh_first)' is never used"
)

# clang-tidy: check|file-glob|reason|regex over the flagged source line
TIDY_SUPPRESS=(
  # Annex K (memcpy_s ...) does not exist in glibc; the project's rule is bounded
  # copies with explicit lengths, which ASan/UBSan fuzzing checks.
  "clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling|*|asks for C11 Annex K *_s functions, which glibc does not provide; every flagged call has an explicit bound|."
  # cert-err33-c: results ignored on purpose where nothing can be done or nothing is lost
  "cert-err33-c|*/src/config/config.c|fclose of a stream opened read-only: a close error cannot lose data (errno is kept for the caller)|^[[:space:]]*fclose\\(f\\);"
  "cert-err33-c|*/src/core/core.c|the logger's final flush of stderr: there is nowhere to report a failure (the fwrite result is checked)|^[[:space:]]*fflush\\(stderr\\);"
  "cert-err33-c|*/src/main.c|usage and error text to stderr: nothing to do if it fails|^[[:space:]]*fputs\\(\"(usage|tumiki)"
  "cert-err33-c|*/src/main.c|fclose of the bootstrap token file opened read-only|^[[:space:]]*fclose\\(f\\);"
  "cert-err33-c|*/src/main.c|signal() cannot fail for a valid signal number and SIG_IGN|^[[:space:]]*signal\\(SIGPIPE, SIG_IGN\\);"
  "cert-err33-c|*/src/upstream/upstream.c|child before exec resets every signal 1..NSIG; EINVAL for SIGKILL/SIGSTOP is expected|^[[:space:]]*signal\\(s, SIG_DFL\\);"
  "cert-err33-c|*/src/main.c|strftime cannot run out of room: 32 bytes hold the ISO time of any int64 millisecond value (year <= 292277026: at most 26 characters)|^[[:space:]]*strftime\\(buf, sizeof\\(buf\\), \"%Y-%m-%dT%H:%M:%SZ\", &tm\\);"
  "cert-err33-c|*/src/metrics/alerts.c|strftime into 32 bytes: an ISO UTC time of a current timestamp is 20 characters|^[[:space:]]*strftime\\(when, sizeof\\(when\\), \"%Y-%m-%dT%H:%M:%SZ\", &tm\\);"
  # cert-err34-c: sscanf/fscanf where every conversion is checked another way
  "cert-err34-c|*/src/audit/cli.c|fixed-width date fields: the input length and %n are checked, then each value is range-checked|sscanf\\(s, \"%4d-%2d-%2d"
  "cert-err34-c|*/src/audit/cli.c|timestamps of records the decoder already accepted in canonical form (digits only, fixed width)|sscanf\\(ts, \"%4d-%2d-%2dT"
  "cert-err34-c|*/src/metrics/metrics.c|kernel-formatted /proc/self/stat and statm counters; the scanf result count is checked and a miss reads as 0|fscanf\\(f, \""
  # bugprone (not HIGH, but noise hides real findings)
  "bugprone-sizeof-expression|*|array of pointers: sizeof(*p) with p a T** is sizeof(T*), the element size|tk_calloc\\(.*sizeof\\(\\*[a-z_]+\\)\\)"
  "bugprone-suspicious-string-compare|*|project idiom: strcmp(a, b) used as a truth value meaning 'differs' in a chain of &&, reviewed|strcmp\\("
  "bugprone-not-null-terminated-result|*/src/core/core.c|JSON log line assembled with an explicit length (pos) and written with fwrite(pos)|memcpy\\((dst|line) \\+ pos"
  "bugprone-narrowing-conversions|*|byte already range-checked (ASCII) before the narrowing|\\(char\\)"
  "bugprone-implicit-widening-of-multiplication-result|*|product of small constants, far below INT_MAX|(MAX_HEADERS_BYTES|% 1000\\) \\* 1000|[^A-Za-z_][0-9]+ \\* [A-Z][A-Z0-9_]*\\b)"
)

# scan-build: file|function|bug type|reason
SCANBUILD_SUPPRESS=(
  # TAILQ_REMOVE/LIST_REMOVE write the head through elm->field.*_prev; the
  # analyzer does not connect that pointer to the head, so it believes the
  # "while ((x = TAILQ_FIRST(h))) free-and-remove(x)" loop sees x again.
  "gateway.c|session_destroy|Use-after-free|drain loop over a TAILQ: call_free() TAILQ_REMOVEs the call, so TAILQ_FIRST moves on (analyzer does not model tqe_prev == &tqh_first)"
  "remote.c|tk_remote_reset|Use-after-free|drain loop over a LIST: xfer_free() LIST_REMOVEs the transfer (same sys/queue.h modelling gap)"
  # Doubly linked LRU: the analyzer assumes a freed bucket can still be a
  # neighbour of the tail after lru_unlink() relinked around it.
  "ratelimit.c|lru_unlink|Use-after-free|evict() unlinks before free and sweep() keeps the saved prev; fuzz_ratelimit runs eviction under ASan without a report"
  "config.c|tk_config_import_claude|Uninitialized argument value|read_input() fails with fail(), which returns its non-zero rc; len is only read after success"
  "server.c|listen_on|Result of operation is garbage or undefined|ss is read only when getsockname() returned 0, which fills it (not modelled)"
  # Two references (the HTTP loop's and the core's) are dropped in turn; a
  # final op carries the core's, so the owner's unref before it never frees.
  "hreq.c|tk_hreq_run_op|Use-after-free|refcount of 2 (owner + core): a final op holds the core's reference, so the owner's unref cannot reach 0 before the core's (not modelled); threads.test.mjs and integration_threads2 run this under ASan"
)

# Secret scan: tracked paths not scanned (fixtures with fake credentials by design)
SECRET_EXCLUDE_PATHS=(
  "node_modules/*|third-party packages (not tracked; listed for completeness)"
  "package-lock.json|npm integrity hashes and registry URLs, not credentials"
  "tests/fuzz/corpus/*|fuzz seeds: fake tokens and keys by design"
  "tests/fuzz/dict/*|fuzz dictionaries: the harness's fake bearer token"
  "scripts/security-scan.sh|this scanner: its rules and allowlist patterns quote what they match"
)
# Secret scan: path|rule|reason|regex over the line
SECRET_ALLOW=(
  "tests/integration/remote.test.mjs|generic-secret|fake key the test's local MCP server expects; never a real credential|API_KEY = 'sk-remote-secret-"
  "tests/integration/isolation.test.mjs|generic-secret|canary value the isolation test checks never leaks; not a credential|GATEWAY_ONLY_SECRET: 'do-not-leak-"
  "tests/integration/isolation.test.mjs|generic-secret|canary value the isolation test passes to a child; not a credential|API_KEY: 'configured-value'"
  "tests/unit/test_mask.c|private-key|truncated fake PEM headers the masking test must hide; no key material|-----BEGIN (RSA )?PRIVATE KEY-----\\\\nMIIEv"
  "tests/unit/test_audit.c|generic-secret|canary value the test checks never reaches an audit file; not a credential|const char \\*secret = \"Zq9-very-distinct-secret-"
  "tests/unit/test_mask.c|generic-secret|fake config secrets the masking test registers and expects masked|(bootstrap-token-0123456789abcdef|ghp_secretvalue123)"
  "tests/browser/dashboard.test.mjs|generic-secret|the test account's password on a throwaway local gateway|PASSWORD = '"
  "tests/integration/login.test.mjs|generic-secret|the test account's password on a throwaway local gateway|PASSWORD = '"
)

# ============================================================================
# cppcheck
# ============================================================================
run_cppcheck() {
    # sys/queue.h is force-included so that cppcheck sees the real TAILQ/LIST
    # macros (without it, TAILQ_FOREACH reads as a call and yields uninitvar).
    local queue_h
    queue_h=$(echo '#include <sys/queue.h>' | cpp -H -o /dev/null 2>&1 | awk '/queue\.h/ {print $2; exit}')
    # shellcheck disable=SC2054 # the commas belong to cppcheck's --enable list
    local args=(--enable=warning,style,performance,portability --inline-suppr --std=c11
        -D_GNU_SOURCE '-DTK_VERSION="scan"' -I src ${queue_h:+"--include=$queue_h"}
        --suppress=missingIncludeSystem -j "$jobs")
    cppcheck "${args[@]}" --xml --xml-version=2 src 2>"$out/cppcheck.xml" >/dev/null
    cppcheck "${args[@]}" -q --template='{file}:{line}: {severity}: {message} [{id}]' src \
        2>"$out/cppcheck-all.txt" >/dev/null
    local findings="$out/cppcheck.txt" supp="$out/cppcheck-suppressed.txt" l entry
    local id glob reason re f_id f_file f_msg hit
    : >"$findings"
    : >"$supp"
    while IFS= read -r l; do
        [[ $l =~ ^([^:]+):([0-9]+):\ ([a-z]+):\ (.*)\ \[([A-Za-z0-9_]+)\]$ ]] || continue
        f_file=${BASH_REMATCH[1]} f_msg=${BASH_REMATCH[4]} f_id=${BASH_REMATCH[5]}
        hit=""
        for entry in "${CPPCHECK_SUPPRESS[@]}"; do
            IFS='|' read -r id glob reason re <<<"$entry"
            # shellcheck disable=SC2053
            if [ "$id" = "$f_id" ] && [[ $f_file == $glob ]] && grep -qE -- "$re" <<<"$f_msg"; then
                hit=$reason
                break
            fi
        done
        if [ -n "$hit" ]; then
            echo "$l -- suppressed: $hit" >>"$supp"
        else
            echo "$l" >>"$findings"
        fi
    done <"$out/cppcheck-all.txt"
    local sev n errors=0 line=""
    for sev in error warning style performance portability information; do
        n=$(grep -c ": $sev: " "$findings" || true)
        line+="$sev=$n "
        [ "$sev" = error ] && errors=$n
    done
    say "cppcheck:    ${line}suppressed=$(wc -l <"$supp")  HIGH=$errors"
    grep ": error: " "$findings" | sed 's/^/  HIGH /' | tee -a "$summary" || true
    high=$((high + errors))
}

# ============================================================================
# clang-tidy
# ============================================================================
tidy_suppressed() { # file line check -> prints the reason when suppressed
    local file=$1 lineno=$2 check=$3 entry c glob re reason src
    src=$(sed -n "${lineno}p" "$file" 2>/dev/null || true)
    for entry in "${TIDY_SUPPRESS[@]}"; do
        IFS='|' read -r c glob reason re <<<"$entry"
        [ "$c" = "$check" ] || continue
        # shellcheck disable=SC2053
        [[ $file == $glob ]] || continue
        if printf '%s\n' "$src" | grep -Eq -- "$re"; then
            echo "$reason"
            return 0
        fi
    done
    return 1
}

run_clang_tidy() {
    local db=build/compile_commands.json
    local sources=(src/*/*.c src/main.c) missing=0 f
    if [ ! -f "$db" ]; then
        cmake -S . -B build >/dev/null
    else
        for f in "${sources[@]}"; do
            grep -q "\"file\": \"$root/$f\"" "$db" || missing=1
        done
        [ "$missing" -eq 0 ] || cmake -S . -B build >/dev/null # new files: refresh the list
    fi
    local checks='-*,cert-*,bugprone-*,clang-analyzer-security.*,-bugprone-easily-swappable-parameters'
    local raw="$out/clang-tidy.txt" tmpd
    tmpd=$(mktemp -d)
    # shellcheck disable=SC2016 # expanded by the inner sh, from its arguments
    printf '%s\n' "${sources[@]}" | xargs -P "$jobs" -I{} sh -c \
        'clang-tidy -p build --quiet --checks="$1" --header-filter="^$2/src/" "$3" >"$4/$(echo "$3" | tr / _).txt" 2>&1 || true' \
        _ "$checks" "$root" {} "$tmpd"
    cat "$tmpd"/*.txt >"$raw"
    rm -rf "$tmpd"
    local findings="$out/clang-tidy-findings.txt" supp="$out/clang-tidy-suppressed.txt"
    : >"$findings"
    : >"$supp"
    local file lineno kind msg check reason n_high=0
    # one line per diagnostic: file:line:col: warning|error: message [check]
    while IFS= read -r l; do
        [[ $l =~ ^(/[^:]+):([0-9]+):([0-9]+):\ (warning|error):\ (.*)\ \[([^]]+)\]$ ]] || continue
        file=${BASH_REMATCH[1]} lineno=${BASH_REMATCH[2]} kind=${BASH_REMATCH[4]}
        msg=${BASH_REMATCH[5]} check=${BASH_REMATCH[6]}
        if reason=$(tidy_suppressed "$file" "$lineno" "$check"); then
            echo "${file#"$root"/}:$lineno: $check: $msg -- suppressed: $reason" >>"$supp"
        else
            echo "${file#"$root"/}:$lineno: $kind: $msg [$check]" >>"$findings"
        fi
    done < <(grep -E '^/.*:[0-9]+:[0-9]+: (warning|error): ' "$raw" | sort -u)
    n_high=$(grep -cE '\[(clang-analyzer-[^]]*|cert-[^]]*|clang-diagnostic-error)\]$' "$findings" || true)
    local total supn
    total=$(wc -l <"$findings")
    supn=$(wc -l <"$supp")
    say "clang-tidy:  findings=$total suppressed=$supn  HIGH=$n_high  (by check: $(sed -E 's/.*\[([^]]+)\]$/\1/' "$findings" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}'))"
    grep -E '\[(clang-analyzer-[^]]*|cert-[^]]*|clang-diagnostic-error)\]$' "$findings" |
        sed 's/^/  HIGH /' | tee -a "$summary" || true
    high=$((high + n_high))
}

# ============================================================================
# scan-build
# ============================================================================
sb_meta() { # field report.html -> the value of its <!-- FIELD value --> comment
    sed -n "s/^<!-- $1 \\(.*\\) -->\$/\\1/p" "$2" | head -n 1
}

run_scan_build() {
    local bdir=build-scan sbout="$out/scan-build"
    rm -rf "$bdir" "$sbout"
    mkdir -p "$sbout"
    "$scan_build" cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Debug >"$out/scan-build-configure.log" 2>&1
    "$scan_build" -o "$sbout" cmake --build "$bdir" -j "$jobs" --target tumiki_core tumiki \
        >"$out/scan-build.log" 2>&1 || {
        echo "scan-build: the build failed, see $out/scan-build.log" >&2
        say "scan-build:  BUILD FAILED (see scan-build.log)  HIGH=1"
        high=$((high + 1))
        return 0
    }
    local findings="$out/scan-build-findings.txt" supp="$out/scan-build-suppressed.txt"
    : >"$findings"
    : >"$supp"
    local r fname func btype bfile bline desc entry sf sfn sbt reason hit
    for r in "$sbout"/*/report-*.html; do
        [ -f "$r" ] || continue
        fname=$(sb_meta FILENAME "$r") func=$(sb_meta FUNCTIONNAME "$r")
        btype=$(sb_meta BUGTYPE "$r") bfile=$(sb_meta BUGFILE "$r")
        bline=$(sb_meta BUGLINE "$r") desc=$(sb_meta BUGDESC "$r")
        hit=""
        for entry in "${SCANBUILD_SUPPRESS[@]}"; do
            IFS='|' read -r sf sfn sbt reason <<<"$entry"
            if [ "$sf" = "$fname" ] && [ "$sfn" = "$func" ] && [ "$sbt" = "$btype" ]; then
                hit=$reason
                break
            fi
        done
        if [ -n "$hit" ]; then
            echo "${bfile#"$root"/}:$bline: $btype in $func(): $desc -- suppressed: $hit" >>"$supp"
        else
            echo "${bfile#"$root"/}:$bline: $btype in $func(): $desc ($(basename "$r"))" >>"$findings"
        fi
    done
    local n supn
    n=$(wc -l <"$findings")
    supn=$(wc -l <"$supp")
    say "scan-build:  bugs=$n suppressed=$supn  HIGH=$n  (html: $sbout)"
    sed 's/^/  HIGH /' "$findings" | tee -a "$summary"
    high=$((high + n))
}

# ============================================================================
# flawfinder (informational: lexical hits, no HIGH)
# ============================================================================
run_flawfinder() {
    if ! command -v flawfinder >/dev/null 2>&1; then
        echo "flawfinder not installed (apt-get install flawfinder); skipped" >"$out/flawfinder.txt"
        say "flawfinder:  not installed, skipped"
        return 0
    fi
    flawfinder --minlevel=1 --columns --context src >"$out/flawfinder.txt" 2>&1 || true
    flawfinder --minlevel=1 --csv src >"$out/flawfinder.csv" 2>/dev/null || true
    local counts
    counts=$(awk -F, 'NR > 1 && $5 ~ /^[0-9]$/ {n[$5]++} END {for (l = 5; l >= 1; l--) printf "level%d=%d ", l, n[l] + 0}' "$out/flawfinder.csv")
    say "flawfinder:  ${counts} (informational; lexical matches, reviewed in docs/security-testing.md)"
}

# ============================================================================
# secret scan (tracked files)
# ============================================================================
SECRET_RULES=(
  "private-key|-----BEGIN[ A-Z0-9]*PRIVATE KEY( BLOCK)?-----"
  "aws-access-key-id|(^|[^A-Z0-9])(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}([^A-Z0-9]|\$)"
  "aws-secret-access-key|[Aa][Ww][Ss].{0,20}[Ss][Ee][Cc][Rr][Ee][Tt].{0,20}[\"'][A-Za-z0-9/+]{40}[\"']"
  "github-token|(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})"
  "bearer-token|[Bb][Ee][Aa][Rr][Ee][Rr][[:space:]]+[A-Za-z0-9._~+/=-]{20,}"
  "generic-secret|([Aa][Pp][Ii][_-]?[Kk][Ee][Yy]|[Ss][Ee][Cc][Rr][Ee][Tt]|[Tt][Oo][Kk][Ee][Nn]|[Pp][Aa][Ss][Ss][Ww]([Oo][Rr])?[Dd]|[Aa][Cc][Cc][Ee][Ss][Ss][_-]?[Kk][Ee][Yy])[A-Za-z0-9_]*[\\\\\"']{0,2}[[:space:]]*[:=][[:space:]]*[\\\\\"']{1,2}[^\\\\\"' ]{16,}[\\\\\"']"
)

# Shannon entropy (bits per character) of each input line
entropy() {
    awk '{ n = length($0); delete c; for (i = 1; i <= n; i++) c[substr($0, i, 1)]++;
           h = 0; for (k in c) { p = c[k] / n; h -= p * log(p) / log(2) } printf "%.2f\n", h }'
}

redact() { # keep 4 characters and the length
    local s=$1
    printf '%s...(%d chars)' "${s:0:4}" "${#s}"
}

run_secret_scan() {
    local hits="$out/secrets.txt" allowed="$out/secrets-allowed.txt" excl="$out/secrets-excluded.txt"
    : >"$hits"
    : >"$allowed"
    : >"$excl"
    local entry glob reason f files=()
    while IFS= read -r -d '' f; do
        local skip=""
        for entry in "${SECRET_EXCLUDE_PATHS[@]}"; do
            IFS='|' read -r glob reason <<<"$entry"
            # shellcheck disable=SC2053
            if [[ $f == $glob ]]; then skip=$reason; break; fi
        done
        if [ -n "$skip" ]; then
            echo "$f -- $skip" >>"$excl"
        else
            files+=("$f")
        fi
    done < <(git ls-files -z)
    local rule re m path lineno text value allow a_path a_rule a_re a_reason
    for entry in "${SECRET_RULES[@]}"; do
        rule=${entry%%|*}
        re=${entry#*|}
        [ "${#files[@]}" -gt 0 ] || break
        while IFS= read -r m; do
            path=${m%%:*}
            m=${m#*:}
            lineno=${m%%:*}
            text=${m#*:}
            grep -q 'secret-scan:allow' <<<"$text" && continue
            value=$(grep -oE -- "$re" <<<"$text" | head -n 1)
            if [ "$rule" = generic-secret ]; then
                # the quoted value itself: long, not an environment variable name, high entropy
                value=$(sed -E "s/^[^:=]*[:=][[:space:]]*[\\\\\"']{1,2}//; s/[\\\\\"']+\$//" <<<"$value")
                [[ $value =~ ^[A-Z][A-Z0-9_]*$ ]] && continue
                # shellcheck disable=SC2016 # a literal "${", as in templates
                [[ $value == *'${'* || $value == *'<'* ]] && continue
                awk -v h="$(entropy <<<"$value")" 'BEGIN { exit !(h >= 3.5) }' || continue
            fi
            allow=""
            for a in "${SECRET_ALLOW[@]}"; do
                IFS='|' read -r a_path a_rule a_reason a_re <<<"$a"
                if [ "$a_path" = "$path" ] && [ "$a_rule" = "$rule" ] && grep -qE -- "$a_re" <<<"$text"; then
                    allow=$a_reason
                    break
                fi
            done
            if [ -n "$allow" ]; then
                echo "$path:$lineno: $rule: $(redact "$value") -- allowed: $allow" >>"$allowed"
            else
                echo "$path:$lineno: $rule: $(redact "$value")" >>"$hits"
            fi
        done < <(grep -InE -- "$re" "${files[@]}" 2>/dev/null || true)
    done
    local n nallow nexcl
    n=$(wc -l <"$hits")
    nallow=$(wc -l <"$allowed")
    nexcl=$(wc -l <"$excl")
    say "secrets:     hits=$n allowed=$nallow files-scanned=${#files[@]} files-excluded=$nexcl  HIGH=$n"
    say "             excluded paths: $(printf '%s; ' "${SECRET_EXCLUDE_PATHS[@]%%|*}")"
    sed 's/^/  HIGH /' "$hits" | tee -a "$summary"
    high=$((high + n))
}

# ============================================================================
# dependency report (informational)
# ============================================================================
run_deps() {
    local rep="$out/dependencies.txt" p
    local pkgs=(libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7 libevent-openssl-2.1-7
        libevent-pthreads-2.1-7 libevent-dev libjansson4 libjansson-dev libssl3 libssl-dev
        libcurl4 libcurl4-openssl-dev libsqlite3-0 libsqlite3-dev libcrypt1 libcrypt-dev
        libjwt0 libjwt-dev libcjose0 libcjose-dev libpq5 libpq-dev libhiredis0.14 libhiredis-dev
        libpcre2-8-0 libpcre2-dev libcmocka0 libcmocka-dev bubblewrap nodejs npm)
    {
        echo "# Debian packages (dpkg-query): package version status"
        for p in "${pkgs[@]}"; do
            dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' "$p" 2>/dev/null ||
                echo "$p - not-installed"
        done
        echo
        echo "# Shared libraries the built binary links (ldd), with their packages"
        local bin=""
        for b in build/tumiki build-scan/tumiki; do [ -x "$b" ] && { bin=$b; break; }; done
        if [ -n "$bin" ]; then
            echo "binary: $bin (direct: a library it names itself; the rest come through those)"
            local direct
            direct=" $(readelf -d "$bin" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
            ldd "$bin" | awk '/=> \// {print $1, $3}' | while read -r soname path; do
                local owner
                owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1 ||
                        dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1 || true)
                [ -n "$owner" ] || owner=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1 || true)
                local ver=""
                [ -n "$owner" ] && ver=$(dpkg-query -W -f='${Version}' "$owner" 2>/dev/null || true)
                local how=indirect
                [[ $direct == *" $soname "* ]] && how=direct
                echo "$soname $path ${owner:-?} ${ver:-?} $how"
            done
        else
            echo "(no built binary found)"
        fi
    } >"$rep"
    local missing
    missing=$(grep -c ' - not-installed$' "$rep" || true)
    say "deps:        debian-packages=${#pkgs[@]} not-installed=$missing (see dependencies.txt)"

    if [ -f package.json ] && command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
        npm ls --all --json >"$out/npm-ls.json" 2>"$out/npm-ls.err" || true
        node -e '
          const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
          const seen = new Map(); const problems = t.problems || [];
          (function walk(deps) {
            for (const [name, d] of Object.entries(deps || {})) {
              const k = name + "@" + (d.version || "?");
              if (!seen.has(k)) { seen.set(k, 1); walk(d.dependencies); }
            }
          })(t.dependencies);
          const top = Object.entries(t.dependencies || {}).map(([n, d]) => n + "@" + (d.version || "MISSING"));
          console.log("npm: top-level " + top.length + ", unique packages " + seen.size + ", problems " + problems.length);
          for (const s of top) console.log("  " + s);
          for (const p of problems) console.log("  PROBLEM " + p);
        ' "$out/npm-ls.json" >"$out/npm-summary.txt" 2>&1 || echo "npm ls output not parseable" >"$out/npm-summary.txt"
        say "             $(head -n 1 "$out/npm-summary.txt") (see npm-summary.txt; no online audit: offline by design)"
    else
        say "             npm: package.json or npm/node missing, skipped"
    fi
}

run_cppcheck
run_clang_tidy
run_scan_build
run_flawfinder
run_secret_scan
run_deps
say ""
if [ "$high" -gt 0 ]; then
    say "RESULT: $high HIGH finding(s)"
    exit 1
fi
say "RESULT: no HIGH findings"
exit 0
