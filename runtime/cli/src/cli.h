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
int dmm__cmd_plot(int argc, char **argv);
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

/* Run args[0], a Python script, with the rest of args (NULL-terminated) by
 * $DMM_PYTHON or Debian's /usr/bin/python3 (the one with matplotlib), and
 * wait: 0, or DMM_EXIT_INPUT after printing why as "dmm CMD: ..." (the
 * plots of experiment, plot and sweep; cli_data.c). */
int dmm__run_python(const char *cmd, char *const *args);

/* Print err as "source:line:column: path: message" on stderr. */
void dmm__print_error(const dmm_error *err);
/* Print "dmm CMD: message" and the command's one-line usage on stderr;
 * returns DMM_EXIT_USAGE. */
int dmm__usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The one-line synopsis of a subcommand (static), NULL if unknown. */
const char *dmm__synopsis(const char *cmd);
/* Suggestions (cli_commands.c), driven by the command table: print "dmm
 * CMD: unknown option "--stpes" (did you mean "--steps"?)" and the usage,
 * the options being those of CMD's synopsis and help; return
 * DMM_EXIT_USAGE. */
int dmm__unknown_option(const char *cmd, const char *opt);
/* The same for a command name after `dmm`. */
int dmm__unknown_command(const char *name);
/* Edits (insert, delete, change, swap two neighbours) from a to b;
 * SIZE_MAX for words over 255 bytes. */
size_t dmm__edit_distance(const char *a, const char *b);
/* Whether cand, d edits from word, is close enough to suggest. */
bool dmm__close_enough(const char *word, const char *cand, size_t d);
/* Plugins (cli_plugin.c): load each of files (n, borrowed) and let it
 * register its neuron types in reg. 0, or an exit code after printing the
 * reason (a file that cannot be loaded, is no plugin, has another ABI, or
 * fails to register). Close them only after reg is freed; out is to be
 * closed on failure too. */
typedef struct dmm__plugins {
    void **handles;
    size_t n;
} dmm__plugins;
int dmm__plugins_load(const char *cmd, dmm_registry *reg,
                      const char *const *files, size_t n, dmm__plugins *out);
void dmm__plugins_close(dmm__plugins *p);
/* A context (deepest nesting max_depth, 0 for the default) and a registry
 * with the built-in types and those of the plugins (files, n; cli_run.c).
 * 0, or an exit code after printing why; on failure nothing is left to
 * free. */
int dmm__make_env(const char *cmd, int max_depth, const char *const *files,
                  size_t n, vv_ctx **vc, dmm_registry **reg, dmm__plugins *pl);
/* Script events between cycles (cli_run.c), the one path for `run` and
 * `render --script`. dmm__script_start: the index of the first event after
 * cycle t0, after warning on stderr about events after cycle t0 + steps
 * (not applied). dmm__script_apply_due: apply the events for the cycle
 * about to run (s->ev[*next..] with that step), advancing *next; an error
 * is located at the event's line. */
struct dmm_script;
size_t dmm__script_start(const struct dmm_script *s, uint64_t t0,
                         uint64_t steps);
int dmm__script_apply_due(dmm_net *net, const struct dmm_script *s,
                          size_t *next, dmm_error *err);
/* A progress bar on stderr (cli_progress.c): on a terminal only (or with
 * DMM_PROGRESS=1), after the first second, erased by end. */
typedef struct dmm__progress {
    bool on, shown;
    uint64_t total;
    const char *unit; /* "cycles", "samples" */
    double start, last;
    double after, every; /* seconds before the first draw, between draws */
} dmm__progress;
void dmm__progress_begin(dmm__progress *p, uint64_t total, const char *unit);
void dmm__progress_tick(dmm__progress *p, uint64_t done);
void dmm__progress_end(dmm__progress *p);
/* Print the full help of a subcommand to f; false if unknown. */
int dmm__print_help(FILE *f, const char *cmd);

/* ---- what `dmm run` prints (cli_trace.c) -------------------------------- */

typedef enum dmm__format {
    DMM__FORMAT_JSON,   /* {"step": t, "outputs": Y} on one line */
    DMM__FORMAT_PRETTY, /* the same, indented */
    DMM__FORMAT_FLAT,   /* one "STEP PATH VALUE" line per stored scalar */
} dmm__format;

enum { DMM__MAX_SELECT = 64, DMM__MAX_SELECT_DEPTH = 16 };
#define DMM__NO_LABEL UINT32_MAX /* matches no label */

typedef struct dmm__select {
    vv_label path[DMM__MAX_SELECT_DEPTH];
    size_t n;
    uint32_t stars; /* bit d: part d is "*", which matches any label */
} dmm__select;

typedef struct dmm__trace {
    vv_ctx *vc; /* borrowed */
    dmm__format format;
    dmm__select sel[DMM__MAX_SELECT]; /* none: everything */
    size_t nsel;
    vv_label self_type, self_name;
    bool drop_self; /* leave Self's output out */
} dmm__trace;

/* Set t up for net's outputs (net NULL: outputs read from a trace, where
 * Self is not known and so never dropped): select holds nselect path prefixes
 * (text, borrowed); Self is left out when drop_self, unless self is set or a
 * path names it. 0, or an exit code after printing the message. */
int dmm__trace_init(dmm__trace *t, vv_ctx *vc, const dmm_net *net,
                    const char *const *select, size_t nselect, bool self,
                    bool drop_self, dmm__format format);
/* new in *out: the selected part of outputs (borrowed). */
int dmm__trace_select(const dmm__trace *t, vv outputs, vv *out);
/* Append the selected part of outputs at step, in t's format, to b. */
int dmm__trace_write(const dmm__trace *t, uint64_t step, vv outputs, vv_buf *b);

#endif
