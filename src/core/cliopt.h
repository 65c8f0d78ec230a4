/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line flags for the `tumiki` subcommands: a table of "--name"
 * entries, each filling a string slot (a flag that takes the next argument)
 * or setting an int (a switch), plus at most one operand. A usage error is
 * said on stderr as "tumiki <cmd>: ..." and returned as 2 (the exit status
 * of a usage error); nothing is printed on success.
 */
#ifndef TK_CORE_CLIOPT_H
#define TK_CORE_CLIOPT_H

#include <stddef.h>

typedef struct tk_cli_flag {
    const char *name;   /* "--config", "-o" */
    const char **value; /* the next argument goes here; NULL for a switch */
    int *on;            /* a switch sets *on to 1 */
} tk_cli_flag_t;

/* How many entries a flag table (an array, not a pointer) has. */
#define TK_CLI_NFLAGS(flags) (sizeof(flags) / sizeof((flags)[0]))

/* Parse argv[0..argc) against flags[0..n). operand: where the one word
 * that is not an option goes (NULL: none is allowed). 0 or 2. */
int tk_cli_flags(const char *cmd, int argc, char **argv, const tk_cli_flag_t *flags, size_t n,
                 const char **operand);

/* Take word a as the one operand (*slot still NULL, not an option) or
 * report it as unknown; 0 or 2. */
int tk_cli_positional(const char *cmd, const char *a, const char **slot);

/* 0 if config (--config FILE) was given, else 2 with the reason printed. */
int tk_cli_need_config(const char *cmd, const char *config);

#endif
