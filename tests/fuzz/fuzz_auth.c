/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the parsers every presented credential goes through before any
 * secret is compared (src/auth/apikey.c, src/auth/jwt.c): tk_apikey_parse
 * (exact "tk_<16 hex>_<64 hex>" format or nothing), tk_jwt_looks_like and
 * tk_jwt_verify with a fixed 256-bit key (libjwt decoding, the pinned HS256
 * check and every claim check). Checks: a parsed key round-trips to the
 * input; verification never accepts input unless it carries a valid HS256
 * signature made with the key, which random input cannot, so any success is
 * a failure; and nothing reads past the input (ASan).
 */
#include <string.h>

#include "auth/apikey.h"
#include "auth/jwt.h"
#include "fuzz.h"

static const unsigned char KEY[] = "fuzzing-key-0123456789abcdefghijklmnop";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TK_JWT_MAX_LEN + 16)
        return 0;
    char *tok = malloc(size + 1);
    FUZZ_CHECK(tok != NULL);
    memcpy(tok, data, size);
    tok[size] = '\0';

    char id[TK_APIKEY_ID_LEN + 1], secret[TK_APIKEY_SECRET_LEN + 1];
    if (tk_apikey_parse(tok, size, id, secret) == TK_OK) {
        char back[TK_APIKEY_LEN + 1];
        FUZZ_CHECK(size == TK_APIKEY_LEN);
        snprintf(back, sizeof(back), "tk_%s_%s", id, secret);
        FUZZ_CHECK(memcmp(back, tok, TK_APIKEY_LEN) == 0);
    }

    tk_jwt_keys_t keys = {KEY, sizeof(KEY) - 1, "tumiki", "tumiki-mcp"};
    tk_jwt_claims_t c;
    const char *why = NULL;
    int looks = tk_jwt_looks_like(tok, size);
    int rc = tk_jwt_verify(&keys, tok, size, 1800000000, &c, &why);
    FUZZ_CHECK(rc == TK_EINVAL); /* no forged token may pass */
    FUZZ_CHECK(why != NULL);
    (void)looks;
    free(tok);
    return 0;
}
