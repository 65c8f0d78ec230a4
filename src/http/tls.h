/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS: the server-side OpenSSL context. TLS 1.2 and 1.3 only, forward-secret
 * AEAD cipher suites only, no compression or renegotiation, server cipher
 * preference. A context is immutable once loaded; reloading (SIGHUP) builds a
 * new one and swaps it in: connections keep the context they started with
 * (SSL objects hold a reference), so nothing is dropped.
 */
#ifndef TK_HTTP_TLS_H
#define TK_HTTP_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "core/core.h"

/* TLS 1.2 suites (TLS 1.3 uses OpenSSL's defaults: all AEAD). */
#define TK_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

/* Load cert (a PEM chain) and key into a new context. On failure returns a
 * negative TK_E* and err says which file and why (OpenSSL's queue drained). */
int tk_tls_ctx_load(const char *cert_file, const char *key_file, SSL_CTX **out, char *err,
                    size_t errlen) TK_WUR;

#endif
