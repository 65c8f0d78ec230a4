/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the audit record codec and the chain verifier (src/audit/), which
 * read files an attacker may have edited. The input is treated both as one
 * line for the decoder and as a whole segment for the verifier. Checks: a
 * line that decodes re-encodes to exactly the same bytes (the canonical
 * form is unique) and its MAC check is stable; a record sealed after
 * decoding verifies; the verifier never reports more records than lines and,
 * when it fails, names a line inside the input. The writer's own encoder of
 * a detail (tk_audit_buf_detail) writes what jansson writes, or declines.
 */
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "fuzz.h"

static const unsigned char KEY[32] = "fuzz-key-fuzz-key-fuzz-key-fuzz!";

static void one_line(const char *data, size_t size)
{
    tk_audit_record_t r;
    const char *why = NULL;
    if (tk_audit_record_decode(data, size, &r, &why) != TK_OK) {
        FUZZ_CHECK(why != NULL);
        return;
    }
    if (r.detail != NULL) {
        char *want = json_dumps(r.detail, JSON_COMPACT | JSON_SORT_KEYS);
        tk_audit_buf_t b = {0};
        if (tk_audit_buf_detail(&b, r.detail) == TK_OK)
            FUZZ_CHECK(want != NULL && strcmp(b.p, want) == 0);
        tk_audit_buf_free(&b);
        free(want);
    }
    size_t n;
    char *again = tk_audit_record_encode(&r, &n);
    FUZZ_CHECK(n == size && memcmp(again, data, size) == 0);
    free(again);
    int ok1 = tk_audit_record_mac_ok(&r, KEY, sizeof(KEY));
    FUZZ_CHECK(ok1 == tk_audit_record_mac_ok(&r, KEY, sizeof(KEY)));
    tk_audit_record_seal(&r, KEY, sizeof(KEY));
    FUZZ_CHECK(tk_audit_record_mac_ok(&r, KEY, sizeof(KEY)));
    tk_audit_record_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4 * TK_AUDIT_LINE_MAX)
        return 0;
    one_line((const char *)data, size);
    tk_audit_verify_t v;
    tk_audit_verify_buf("fuzz", (const char *)data, size, KEY, sizeof(KEY), &v);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    FUZZ_CHECK(v.records <= lines);
    if (!v.ok)
        FUZZ_CHECK(v.bad_line >= 1 && v.bad_line <= lines);
    return 0;
}
