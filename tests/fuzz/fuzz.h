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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
