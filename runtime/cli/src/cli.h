// SPDX-License-Identifier: MIT
/*
 * Internal interface of the `dmm` command: the subcommands and the few
 * printing helpers they share. Only the CLI prints and chooses
 * exit codes; everything below it returns DMM_E_* codes and a dmm_error.
 */
#ifndef DMM_CLI_H
#define DMM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dmm.h"

/* Exit codes of the command (docs/cli.md). */
enum {
    DMM_EXIT_OK = 0,
    DMM_EXIT_INPUT = 1, /* bad input: files, scripts, networks */
    DMM_EXIT_USAGE = 2, /* bad command line */
    DMM_EXIT_FAULT = 3, /* numeric fault (NaN or infinity) during a run */
};

#ifndef DMM_VERSION
#define DMM_VERSION "unknown"
#endif

/* Subcommands: argv[0] is the subcommand's name. Return an exit code. */
typedef int (*dmm__command_fn)(int argc, char **argv);
int dmm__cmd_run(int argc, char **argv);
int dmm__cmd_check(int argc, char **argv);
int dmm__cmd_experiment(int argc, char **argv);
int dmm__cmd_serve(int argc, char **argv);
int dmm__cmd_ctl(int argc, char **argv);
int dmm__cmd_neurons(int argc, char **argv);
int dmm__cmd_help(int argc, char **argv);
int dmm__cmd_completion(int argc, char **argv);
int dmm__cmd_render(int argc, char **argv);
int dmm__cmd_sweep(int argc, char **argv); /* cli_sweep.c */

/* The command table (cli_commands.c): one row per subcommand. */
typedef struct dmm__command {
    const char *name;
    dmm__command_fn run;
    const char *summary;  /* one line, for the manual's list */
    const char *synopsis; /* "dmm NAME ...", options as --words */
    const char *help;     /* what `dmm help NAME` prints after the usage */
} dmm__command;
extern const dmm__command dmm__commands[];
extern const size_t dmm__ncommands;
/* The row of name, NULL if none. */
const dmm__command *dmm__command_find(const char *name);
/* The list of commands (dmm --help). */
void dmm__print_main_help(FILE *f);

/* Option helpers of the subcommands (cli_main.c). Match argv[*i] against an
 * option with a value, "--name VALUE" or "--name=VALUE": 1 matched (*val
 * set, *i advanced), 0 not this option, -1 value missing. */
int dmm__opt_value(int argc, char **argv, int *i, const char *name,
                   const char **val);
/* Digits only, no sign, in [lo, hi]. */
bool dmm__parse_count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* Find a bundled data file by its path in the source tree (rel, e.g.
 * "networks/hysteresis.json"): from the working directory, $DMM_DATA_DIR,
 * <bindir>/../share/dmm, the configured data folder, then the source tree
 * of this build (cli_data.c). 1 when found (out holds the path), else 0. */
int dmm__data_file(const char *rel, char *out, size_t size);

/* new (free()): the token on the first line of file, so that ps does not
 * show it (--token-file of serve and ctl); NULL after printing why. */
char *dmm__read_token_file(const char *cmd, const char *file);
/* A context (deepest nesting max_depth, 0 for the default) and a registry
 * with the built-in types; a negative code, after printing why, on failure
 * (cli_run.c). */
int dmm__make_env(int max_depth, vv_ctx **vc, dmm_registry **reg);

/* Print err as "source:line:column: path: message" on stderr. */
void dmm__print_error(const dmm_error *err);
/* Print "dmm CMD: message" and the command's one-line usage on stderr;
 * returns DMM_EXIT_USAGE. */
int dmm__usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The one-line synopsis of a subcommand (static), NULL if unknown. */
const char *dmm__synopsis(const char *cmd);
/* Print the full help of a subcommand to f; false if unknown. */
int dmm__print_help(FILE *f, const char *cmd);

#endif
