/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared bits of the libFuzzer harnesses: the entry points libFuzzer calls
 * (declared here so the project's -Wmissing-prototypes holds) and FUZZ_CHECK,
 * an invariant check that aborts even when NDEBUG is defined (the release
 * build types define it), so that a broken property is a crash the fuzzer
 * records rather than a silently ignored assert().
 */
#ifndef TK_FUZZ_H
#define TK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Copy data into a fresh NUL-terminated heap buffer (returned; free it) and
 * cut it at its first n-1 newlines into n C strings in parts (missing parts
 * are ""). */
static inline char *fuzz_split(const uint8_t *data, size_t size, const char **parts, int n)
{
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);
    buf[size] = '\0';
    parts[0] = buf;
    for (int i = 1; i < n; i++)
        parts[i] = "";
    char *p = buf;
    for (int i = 1; i < n; i++) {
        char *nl = memchr(p, '\n', size - (size_t)(p - buf));
        if (nl == NULL)
            break;
        *nl = '\0';
        parts[i] = p = nl + 1;
    }
    return buf;
}

#endif
