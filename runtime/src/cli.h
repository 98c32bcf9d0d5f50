// SPDX-License-Identifier: MIT
/*
 * Internal interface of the `dmm` command: the subcommands, the script reader
 * and the few printing helpers they share. Only the CLI prints and chooses
 * exit codes; everything below it returns DMM_E_* codes and a dmm_error.
 * Script events are validated in full before a run starts.
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

enum dmm__event_op { DMM__EV_EDIT, DMM__EV_FEED };

/* One script event: applied just before cycle `step` (absolute numbering). */
typedef struct dmm__event {
    uint64_t step;
    int line; /* 1-based line in the script file */
    enum dmm__event_op op;
    vv_label name; /* feed: the input neuron's name */
    vv value;      /* owned: edit delta or feed output map */
} dmm__event;

/* A validated script, events sorted by (step, line). */
typedef struct dmm__script {
    char source[256];
    dmm__event *ev;
    size_t n;
} dmm__script;

/*
 * Parse and validate a whole script (len bytes of JSON Lines). On success
 * *out owns its events (release with dmm__script_free). On error nothing is
 * kept and err names source, line and JSON path. Blank lines are skipped.
 */
int dmm__script_parse(vv_ctx *vc, const char *text, size_t len,
                      const char *source, dmm__script *out, dmm_error *err);
/* Read a file and parse it as above. */
int dmm__script_load(vv_ctx *vc, const char *filename, dmm__script *out,
                     dmm_error *err);
void dmm__script_free(vv_ctx *vc, dmm__script *s);

/*
 * Read the neuron of a feed, "input/NAME" (s, len bytes) in the syntax of
 * dmm_path_parse: two parts, the first "input", no ":number" (a neuron has
 * no scalar part). Interns NAME into *name, and nothing unless the whole text
 * is right. DMM_E_INVAL (or DMM_E_NOMEM, DMM_E_LIMIT) with a message at JSON
 * path `path` in err.
 */
int dmm__feed_neuron(vv_ctx *vc, const char *s, size_t len, const char *path,
                     vv_label *name, dmm_error *err);

/* Subcommands: argv[0] is the subcommand's name. Return an exit code. */
int dmm__cmd_run(int argc, char **argv);
int dmm__cmd_check(int argc, char **argv);
int dmm__cmd_experiment(int argc, char **argv);
int dmm__cmd_serve(int argc, char **argv);
int dmm__cmd_ctl(int argc, char **argv);

/* Option helpers of the subcommands (cli_main.c). Match argv[*i] against an
 * option with a value, "--name VALUE" or "--name=VALUE": 1 matched (*val
 * set, *i advanced), 0 not this option, -1 value missing. */
int dmm__opt_value(int argc, char **argv, int *i, const char *name,
                   const char **val);
/* Digits only, no sign, in [lo, hi]. */
bool dmm__parse_count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

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
