/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line flags (see cliopt.h). */
#include "core/cliopt.h"

#include <stdio.h>
#include <string.h>

int tk_cli_positional(const char *cmd, const char *a, const char **slot)
{
    if (slot != NULL && *slot == NULL && a[0] != '-') {
        *slot = a;
        return 0;
    }
    (void)fprintf(stderr, "tumiki %s: unknown or incomplete option \"%s\"\n", cmd, a);
    return 2;
}

int tk_cli_need_config(const char *cmd, const char *config)
{
    if (config != NULL)
        return 0;
    (void)fprintf(stderr, "tumiki %s: --config FILE is required\n", cmd);
    return 2;
}

int tk_cli_flags(const char *cmd, int argc, char **argv, const tk_cli_flag_t *flags, size_t n,
                 const char **operand)
{
    for (int i = 0; i < argc; i++) {
        size_t f = 0;
        while (f < n && strcmp(argv[i], flags[f].name) != 0)
            f++;
        if (f < n && flags[f].value == NULL) {
            *flags[f].on = 1;
        } else if (f < n && i + 1 < argc) {
            *flags[f].value = argv[++i];
        } else if (tk_cli_positional(cmd, argv[i], operand) != 0) {
            return 2;
        }
    }
    return 0;
}
