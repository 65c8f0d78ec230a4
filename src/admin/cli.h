/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line administration (`tumiki user ...`, `tumiki endpoint ...`)
 * over the same store functions as the admin API. Each returns a process
 * exit status: 0 done, 1 failed, 2 usage error; messages go to stderr and
 * never carry a secret.
 */
#ifndef TK_ADMIN_CLI_H
#define TK_ADMIN_CLI_H

#include "config/config.h"
#include "core/cliopt.h"
#include "store/store.h"

/* Load config FILE and open its store (data_dir/tumiki.db, created with the
 * data dir if missing); 0, or 1 with the reason printed. */
int tk_cli_open_store(const char *config, tk_config_t **cfg, tk_store_t **st);

/* argv[0] is the subcommand ("add", "list"). */
int tk_cli_user(int argc, char **argv);
/* argv[0] is the subcommand ("list", "show", "tools", "create", "delete"). */
int tk_cli_endpoint(int argc, char **argv);

/* `tumiki server add|list|show|remove` (argv[0] the subcommand). */
int tk_cli_server(int argc, char **argv);
/* `tumiki endpoint create|delete`: endpoints kept in the store. */
int tk_cli_endpoint_change(int argc, char **argv);

#endif
