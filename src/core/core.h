/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Core: error codes, checked allocation, the logger and small string helpers
 * shared by every module. The log sink is the only mutable global. Log lines
 * are structured JSON; callers never pass secrets (tokens, env values) to the
 * logger, and the logger itself replaces bearer tokens it recognises.
 */
#ifndef TK_CORE_H
#define TK_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define TK_WUR __attribute__((warn_unused_result))
#define TK_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Errors: 0 is success; failures are negative TK_E* values. */
enum {
    TK_OK = 0,
    TK_ENOMEM = -1,  /* allocation failed */
    TK_EINVAL = -2,  /* invalid argument or input */
    TK_EIO = -3,     /* system call failed; errno kept */
    TK_ENOENT = -4,  /* no such object */
    TK_ELIMIT = -5,  /* a configured size or count limit was exceeded */
    TK_ESTATE = -6,  /* object is in the wrong state for this operation */
    TK_ETIMEOUT = -7, /* deadline passed */
    TK_EBUSY = -8     /* temporarily refusing work (circuit open, overloaded) */
};

const char *tk_strerror(int err);

/* Allocation: abort on out-of-memory (a gateway that cannot allocate cannot
 * answer anyway, and this keeps every caller's cleanup path honest). */
void *tk_malloc(size_t n);
void *tk_calloc(size_t n, size_t size);
void *tk_realloc(void *p, size_t n);
char *tk_strdup(const char *s);
char *tk_strndup(const char *s, size_t n);

/* Bounded formatting: always NUL-terminates; returns the length it wanted. */
int tk_snprintf(char *buf, size_t len, const char *fmt, ...) TK_PRINTF(3, 4);
/* Heap formatting; never returns NULL. */
char *tk_asprintf(const char *fmt, ...) TK_PRINTF(1, 2);

/* Parse a decimal unsigned integer in [min,max]; the whole string must match. */
int tk_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out) TK_WUR;

/* Constant-time comparison of two byte strings (lengths may differ). */
int tk_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Fill buf with n cryptographically random bytes. */
int tk_random_bytes(void *buf, size_t n) TK_WUR;
/* Write 2*n hex digits plus NUL into out (out must hold 2*n+1 bytes). */
void tk_hex_encode(const unsigned char *in, size_t n, char *out);

/* Monotonic clock in milliseconds. */
uint64_t tk_now_ms(void);
/* Wall-clock time (CLOCK_REALTIME) in milliseconds since the epoch. */
int64_t tk_wall_ms(void);

/* Logging. */
typedef enum {
    TK_LOG_DEBUG = 0,
    TK_LOG_INFO = 1,
    TK_LOG_WARN = 2,
    TK_LOG_ERROR = 3
} tk_log_level_t;

extern int tk_log_level; /* the one mutable global besides signal flags */

void tk_log_set_level(tk_log_level_t level);
int tk_log_parse_level(const char *s, tk_log_level_t *out) TK_WUR;
void tk_log_write(tk_log_level_t level, const char *module, const char *fmt, ...)
    TK_PRINTF(3, 4);
void tk_log_vwrite(tk_log_level_t level, const char *module, const char *fmt, va_list ap)
    TK_PRINTF(3, 0);

#define tk_log(level, module, ...)                                                              \
    do {                                                                                        \
        if ((int)(level) >= tk_log_level)                                                       \
            tk_log_write((level), (module), __VA_ARGS__);                                       \
    } while (0)
#define tk_debug(m, ...) tk_log(TK_LOG_DEBUG, m, __VA_ARGS__)
#define tk_info(m, ...) tk_log(TK_LOG_INFO, m, __VA_ARGS__)
#define tk_warn(m, ...) tk_log(TK_LOG_WARN, m, __VA_ARGS__)
#define tk_error(m, ...) tk_log(TK_LOG_ERROR, m, __VA_ARGS__)

#endif
