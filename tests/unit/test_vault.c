/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the secret vault (src/vault): a sealed value opens to the
 * same bytes under the same key and AAD; altering any byte of the
 * ciphertext, the nonce or the tag, or opening under another AAD, another
 * key or another key id is refused; two seals of one value differ (fresh
 * nonce); the key file is made once with mode 0600 and reused; a short key
 * (file or config) is refused; the vault section of the config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/mask.h"
#include "vault/vault.h"

#include "db_dir.h"

static const unsigned char key_a[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char key_b[32] = "fedcba9876543210fedcba9876543210";
#define AAD "server:s1:env:API_KEY"
#define VALUE "sk-live-very-secret-value"

static tk_vault_t *vault(const unsigned char *key)
{
    tk_vault_t *v = NULL;
    assert_int_equal(tk_vault_create(key, 32, &v), TK_OK);
    return v;
}

static void round_trip(void **state)
{
    (void)state;
    tk_vault_t *v = vault(key_a);
    tk_sealed_t s, s2;
    assert_int_equal(tk_vault_seal(v, AAD, VALUE, strlen(VALUE), &s), TK_OK);
    assert_int_equal(s.ctlen, strlen(VALUE) + TK_VAULT_TAG_LEN);
    assert_null(memmem(s.ct, s.ctlen, VALUE, strlen(VALUE)));
    assert_string_equal(s.key_id, tk_vault_key_id(v));
    assert_int_equal(strlen(s.key_id), TK_VAULT_KEY_ID_LEN);
    char *plain;
    size_t len;
    assert_int_equal(tk_vault_open(v, AAD, &s, &plain, &len), TK_OK);
    assert_int_equal(len, strlen(VALUE));
    assert_string_equal(plain, VALUE);
    tk_vault_free_plain(plain);
    /* a second seal of the same value uses another nonce */
    assert_int_equal(tk_vault_seal(v, AAD, VALUE, strlen(VALUE), &s2), TK_OK);
    assert_memory_not_equal(s.nonce, s2.nonce, TK_VAULT_NONCE_LEN);
    assert_memory_not_equal(s.ct, s2.ct, s.ctlen);
    /* the empty value seals too */
    tk_sealed_clear(&s2);
    assert_int_equal(tk_vault_seal(v, AAD, "", 0, &s2), TK_OK);
    assert_int_equal(tk_vault_open(v, AAD, &s2, &plain, &len), TK_OK);
    assert_int_equal(len, 0);
    assert_string_equal(plain, "");
    tk_vault_free_plain(plain);
    tk_sealed_clear(&s2);
    tk_sealed_clear(&s);
    tk_vault_destroy(v);
}

static void expect_refused(const tk_vault_t *v, const char *aad, const tk_sealed_t *s, int want)
{
    char *plain = (char *)"untouched";
    size_t len = 99;
    assert_int_equal(tk_vault_open(v, aad, s, &plain, &len), want);
    assert_null(plain);
    assert_int_equal(len, 0);
}

static void tamper_refused(void **state)
{
    (void)state;
    tk_vault_t *v = vault(key_a), *w = vault(key_b);
    tk_sealed_t s;
    assert_int_equal(tk_vault_seal(v, AAD, VALUE, strlen(VALUE), &s), TK_OK);
    for (size_t i = 0; i < s.ctlen; i++) { /* ciphertext bytes, then tag bytes */
        s.ct[i] ^= 0x01;
        expect_refused(v, AAD, &s, TK_EINVAL);
        s.ct[i] ^= 0x01;
    }
    for (size_t i = 0; i < TK_VAULT_NONCE_LEN; i++) {
        s.nonce[i] ^= 0x80;
        expect_refused(v, AAD, &s, TK_EINVAL);
        s.nonce[i] ^= 0x80;
    }
    expect_refused(v, "server:s2:env:API_KEY", &s, TK_EINVAL); /* moved to another row */
    expect_refused(v, "server:s1:header:API_KEY", &s, TK_EINVAL);
    expect_refused(v, "", &s, TK_EINVAL);
    size_t n = s.ctlen; /* truncated: no tag */
    s.ctlen = TK_VAULT_TAG_LEN - 1;
    expect_refused(v, AAD, &s, TK_EINVAL);
    s.ctlen = n;
    /* another key: its key id differs; with the id forged, GCM refuses */
    assert_string_not_equal(tk_vault_key_id(v), tk_vault_key_id(w));
    expect_refused(w, AAD, &s, TK_ENOENT);
    memcpy(s.key_id, tk_vault_key_id(w), sizeof(s.key_id));
    expect_refused(w, AAD, &s, TK_EINVAL);
    memcpy(s.key_id, tk_vault_key_id(v), sizeof(s.key_id));
    char *plain;
    assert_int_equal(tk_vault_open(v, AAD, &s, &plain, &n), TK_OK); /* intact again */
    tk_vault_free_plain(plain);
    tk_sealed_clear(&s);
    tk_vault_destroy(v);
    tk_vault_destroy(w);
}

static void bad_keys_and_sizes(void **state)
{
    (void)state;
    tk_vault_t *v = NULL;
    assert_int_equal(tk_vault_create(key_a, 31, &v), TK_EINVAL);
    assert_null(v);
    assert_int_equal(tk_vault_create(NULL, 32, &v), TK_EINVAL);
    v = vault(key_a);
    tk_sealed_t s;
    char *big = calloc(1, TK_VAULT_VALUE_MAX + 1);
    assert_int_equal(tk_vault_seal(v, AAD, big, TK_VAULT_VALUE_MAX + 1, &s), TK_ELIMIT);
    assert_null(s.ct);
    free(big);
    char *aad = tk_vault_server_aad("s9", "header", "Authorization");
    assert_string_equal(aad, "server:s9:header:Authorization");
    free(aad);
    tk_vault_destroy(v);
}

static tk_config_t *config_in(const char *dir, const char *extra)
{
    char json[512], err[512];
    tk_config_t *cfg = NULL;
    tk_snprintf(json, sizeof(json), "{\"data_dir\": \"%s\"%s}", dir, extra);
    int rc = tk_config_load_string(json, "test.json", &cfg, err, sizeof(err));
    if (rc != TK_OK)
        print_error("config: %s\n", err);
    return cfg;
}

static void key_file_made_once(void **state)
{
    (void)state;
    db_dir_t d;
    assert_int_equal(db_dir_make(&d, "tkvault"), 0);
    tk_config_t *cfg = config_in(d.dir, "");
    assert_non_null(cfg);
    char err[256], path[256];
    tk_vault_t *v = NULL, *v2 = NULL;
    assert_int_equal(tk_vault_open_config(cfg, 0, &v, err, sizeof(err)), TK_ENOENT);
    assert_int_equal(tk_vault_open_config(cfg, 1, &v, err, sizeof(err)), TK_OK);
    tk_snprintf(path, sizeof(path), "%s/vault.key", d.dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    tk_sealed_t s;
    assert_int_equal(tk_vault_seal(v, AAD, VALUE, strlen(VALUE), &s), TK_OK);
    /* reopened: the same key opens what the first sealed */
    assert_int_equal(tk_vault_open_config(cfg, 0, &v2, err, sizeof(err)), TK_OK);
    assert_string_equal(tk_vault_key_id(v), tk_vault_key_id(v2));
    char *plain;
    size_t len;
    assert_int_equal(tk_vault_open(v2, AAD, &s, &plain, &len), TK_OK);
    assert_string_equal(plain, VALUE);
    tk_vault_free_plain(plain);
    tk_sealed_clear(&s);
    tk_vault_destroy(v);
    tk_vault_destroy(v2);
    /* a short key file is refused, naming the file */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("short", f);
    fclose(f);
    assert_int_equal(tk_vault_open_config(cfg, 1, &v, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "shorter than 32 bytes"));
    assert_null(v);
    tk_config_destroy(cfg);
    db_dir_remove(&d);
}

static void config_vault_key(void **state)
{
    (void)state;
    db_dir_t d;
    assert_int_equal(db_dir_make(&d, "tkvault"), 0);
    setenv("TK_TEST_VAULT_KEY", "a-vault-master-key-of-at-least-32-bytes!", 1);
    setenv("TK_TEST_VAULT_SHORT", "too-short", 1);
    tk_config_t *cfg = config_in(d.dir, ", \"vault\": {\"key_env\": \"TK_TEST_VAULT_KEY\"}");
    assert_non_null(cfg);
    assert_int_equal(cfg->vault_keylen, 40);
    char err[256];
    tk_vault_t *v = NULL;
    assert_int_equal(tk_vault_open_config(cfg, 1, &v, err, sizeof(err)), TK_OK);
    char path[256];
    tk_snprintf(path, sizeof(path), "%s/vault.key", d.dir);
    assert_int_not_equal(access(path, F_OK), 0); /* no key file with a configured key */
    tk_vault_destroy(v);
    /* the configured key is registered with the masking module */
    assert_int_equal(tk_config_register_masks(cfg, err, sizeof(err)), TK_OK);
    tk_config_destroy(cfg);
    char *m = tk_mask_str("key a-vault-master-key-of-at-least-32-bytes! here");
    assert_null(strstr(m, "master-key"));
    free(m);
    tk_mask_reset();
    char json[512];
    tk_snprintf(json, sizeof(json),
                "{\"data_dir\": \"%s\", \"vault\": {\"key_env\": \"TK_TEST_VAULT_SHORT\"}}", d.dir);
    assert_int_equal(tk_config_load_string(json, "t.json", &cfg, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "vault.key_env: the vault key must be 32 to 256 bytes"));
    assert_null(strstr(err, "too-short"));
    tk_snprintf(json, sizeof(json),
                "{\"vault\": {\"key_env\": \"TK_TEST_VAULT_KEY\", \"key_file\": \"/x\"}}");
    assert_int_equal(tk_config_load_string(json, "t.json", &cfg, err, sizeof(err)), TK_EINVAL);
    tk_snprintf(json, sizeof(json), "{\"vault\": {\"key\": \"x\"}}");
    assert_int_equal(tk_config_load_string(json, "t.json", &cfg, err, sizeof(err)), TK_EINVAL);
    assert_non_null(strstr(err, "vault: unknown key \"key\""));
    db_dir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),         cmocka_unit_test(tamper_refused),
        cmocka_unit_test(bad_keys_and_sizes), cmocka_unit_test(key_file_made_once),
        cmocka_unit_test(config_vault_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
