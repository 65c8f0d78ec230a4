/* SPDX-License-Identifier: Apache-2.0 */
/* Server TLS context: protocol floor, cipher policy, certificate and key. */
#include "http/tls.h"

#include <openssl/err.h>

/* Drain OpenSSL's error queue into err (the last error wins) and the log. */
static void drain_errors(const char *what, char *err, size_t errlen)
{
    unsigned long e;
    char buf[256] = "unknown error";
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        tk_debug("tls", "%s: %s", what, buf);
    }
    tk_snprintf(err, errlen, "%s: %s", what, buf);
}

int tk_tls_ctx_load(const char *cert_file, const char *key_file, SSL_CTX **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        drain_errors("cannot create a TLS context", err, errlen);
        return TK_EIO;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, TK_TLS12_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        drain_errors("cannot set the cipher policy", err, errlen);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        char what[300];
        tk_snprintf(what, sizeof(what), "cannot load certificate %s", cert_file);
        drain_errors(what, err, errlen);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        char what[300];
        tk_snprintf(what, sizeof(what), "cannot load private key %s", key_file);
        drain_errors(what, err, errlen);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        drain_errors("certificate and private key do not match", err, errlen);
        goto fail;
    }
    *out = ctx;
    return TK_OK;
fail:
    SSL_CTX_free(ctx);
    return TK_EINVAL;
}
