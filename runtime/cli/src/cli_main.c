// SPDX-License-Identifier: MIT
/*
 * The `dmm` command: subcommand dispatch, help and version, `dmm neurons`,
 * and the error printing shared by the subcommands. Exit codes: 0 success,
 * 1 bad input, 2 bad usage, 3 numeric fault (docs/cli.md).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef DMM_VERSION
#define DMM_VERSION "unknown"
#endif

typedef struct command_doc {
    const char *name;
    const char *synopsis;
    const char *help;
} command_doc;

static const command_doc commands[] = {
    {"run",
     "dmm run (NET.json | --resume STATE.json) --steps N [--trace] "
     "[--script FILE.jsonl] [--save FILE] [--stats] [--max-depth N] "
     "[--threads N]",
     "Run a network for N cycles and print the output map Y_t as one JSON\n"
     "line {\"step\": t, \"outputs\": Y_t} (after the last cycle, or after\n"
     "every cycle with --trace). Step numbers are absolute cycle numbers.\n"
     "\n"
     "  --steps N          cycles to run (N >= 0; 0 prints the start state)\n"
     "  --trace            print one line per cycle instead of the last only\n"
     "  --script FILE      JSON Lines of events, checked before the run:\n"
     "                     {\"step\": t, \"op\": \"edit\", \"delta\": "
     "W-delta}\n"
     "                     {\"step\": t, \"op\": \"feed\", \"neuron\": "
     "\"input/NAME\",\n"
     "                      \"outputs\": {...}}\n"
     "                     applied just before cycle t (absolute; events at\n"
     "                     or before a resumed state's cycle are skipped)\n"
     "  --save FILE        write the final state (after a fault: the last\n"
     "                     good state)\n"
     "  --resume FILE      start from a saved state instead of NET.json\n"
     "  --stats            cycles per second, time per cycle and peak memory\n"
     "                     on stderr\n"
     "  --max-depth N      deepest nesting allowed in any value\n"
     "  --threads N        run each cycle on N threads (1-64); the results "
     "are\n"
     "                     the same bit for bit as on one\n"
     "\n"
     "Exit: 0 ok, 1 bad input, 2 bad usage, 3 NaN or infinity in a cycle.\n"},
    {"check", "dmm check [--script FILE.jsonl] [--max-depth N] NET.json...",
     "Validate network files (and a script) without running them. Prints\n"
     "\"NET.json: ok (N neurons, M weights)\" for each good file, and\n"
     "\"file:line:column: /json/path: message\" on stderr for a bad one.\n"
     "\n"
     "  --script FILE      also validate a script file\n"
     "  --max-depth N      deepest nesting allowed in any value\n"
     "\n"
     "Exit: 0 all good, 1 something is bad, 2 bad usage.\n"},
    {"serve",
     "dmm serve (NET.json | --resume STATE.json) [--listen HOST:PORT | "
     "--socket PATH] [--rate HZ|max] [--paused] [--log FILE.jsonl] "
     "[--token T] [--save-on-exit FILE] [--max-clients N] "
     "[--max-message BYTES] [--max-backlog BYTES]",
     "Run a network live and serve the NDJSON protocol of docs/protocol.md:\n"
     "clients watch values, change weights, feed inputs, pause, step, save.\n"
     "Edits are applied between cycles. The address (HOST:PORT, or the\n"
     "socket path) is printed as the first line on stdout.\n"
     "\n"
     "  --listen HOST:PORT  TCP address (default 127.0.0.1:0; port 0 picks "
     "one)\n"
     "  --socket PATH       a Unix socket instead, created with mode 0600\n"
     "  --rate HZ|max       cycles per second (default 10)\n"
     "  --paused            start paused (run cycles with step or resume)\n"
     "  --log FILE          write every applied edit and feed as a script\n"
     "                      for dmm run --script\n"
     "  --token T           every connection must first send hello with T\n"
     "  --save-on-exit FILE write the state when stopping\n"
     "  --max-clients N     connections at once (default 256)\n"
     "  --max-message B     longest request line (default 1048576)\n"
     "  --max-backlog B     bytes waiting for a client before it is dropped\n"
     "                      (default 1048576)\n"
     "\n"
     "SIGINT or SIGTERM stops after the current cycle. Exit: 0 ok, 1 bad\n"
     "input or I/O error, 2 bad usage.\n"},
    {"ctl",
     "dmm ctl (--connect HOST:PORT | --socket PATH) [--token T] OP [ARGS]",
     "Send one request to a dmm serve and print the reply. Shortcuts:\n"
     "\n"
     "  status | pause | resume | snapshot | shutdown\n"
     "  step [N]                  run N cycles of a paused network\n"
     "  rate HZ|max\n"
     "  get PATH                  print the value at PATH in the outputs\n"
     "  set PATH VALUE            one weight, PATH = type/name/input/type/"
     "name/output\n"
     "  edit DELTA                add a W fragment (JSON)\n"
     "  feed input/NAME OUTPUTS   queue an output map (JSON)\n"
     "  save FILE                 the server writes its state to FILE\n"
     "  load FILE                 send a network (or state) file to run\n"
     "  watch PATH...             print \"STEP PATH VALUE\" when a value\n"
     "                            changes (--every K, --count N to stop)\n"
     "  '{\"op\": ...}'            a raw JSON request\n"
     "\n"
     "Exit: 0 ok, 1 error reply or connection failure, 2 bad usage.\n"},
    {"experiment",
     "dmm experiment (mnist-fewshot --data DIR | double-slit | hysteresis) "
     "[--seed S] [--variant faithful|corrected] [--engine direct|network] "
     "[--plot FILE.png] [mnist options] [hysteresis options]",
     "Run an experiment of the induced interference paper (arXiv 2008.11111,\n"
     "docs/experiments.md) and print one JSON object with accuracy, correct,\n"
     "total, the options used and the elapsed seconds.\n"
     "\n"
     "  mnist-fewshot      few-shot MNIST digits 0, 1, 2, 4 (needs --data DIR\n"
     "                     with the IDX files, see tools/fetch-mnist.sh)\n"
     "    --shots K        training images per class (default 5)\n"
     "    --epochs E       passes over them (default 1)\n"
     "    --init random|uniform     route table start (default random)\n"
     "    --pick random|first       which K images (default random)\n"
     "    --order sequential|mixed  class order or shuffled (default\n"
     "                     sequential)\n"
     "  double-slit        in-phase / out-of-phase sources, 5 shots, 200 "
     "trials\n"
     "  hysteresis         the mean-field neurons of networks/hysteresis.json\n"
     "                     under a slow field sweep: where mu jumps, against\n"
     "                     h_c(K) (only --steps, --network and --plot)\n"
     "    --steps N        cycles to run (default 5000, one and a quarter\n"
     "                     periods of the sweep)\n"
     "    --network FILE   another network with mean-field neurons\n"
     "  --seed S           random seed (default 1)\n"
     "  --variant V        faithful (the published code's quirks, default)\n"
     "                     or corrected\n"
     "  --engine E         direct (native C, default) or network\n"
     "  --plot FILE.png    also draw the results (needs /usr/bin/python3 with\n"
     "                     matplotlib)\n"
     "\n"
     "Exit: 0 ok, 1 bad data or plot failure, 2 bad usage.\n"},
    {"neurons", "dmm neurons [--markdown]",
     "List the registered neuron types: name, inputs, outputs, summary.\n"
     "\n"
     "  --markdown         print the catalogue as Markdown "
     "(docs/neurons.md)\n"},
    {"help", "dmm help [COMMAND]",
     "Show the list of commands, or the help of one command.\n"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const command_doc *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

int dmm__opt_value(int argc, char **argv, int *i, const char *name,
                   const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

bool dmm__parse_count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

const char *dmm__synopsis(const char *cmd)
{
    const command_doc *d = find_command(cmd);
    return d ? d->synopsis : NULL;
}

int dmm__print_help(FILE *f, const char *cmd)
{
    const command_doc *d = find_command(cmd);
    if (!d)
        return 0;
    fprintf(f, "usage: %s\n\n%s", d->synopsis, d->help);
    return 1;
}

static void print_main_help(FILE *f)
{
    fprintf(f, "dmm %s: run dataflow matrix machines\n\nusage:\n", DMM_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %s\n", commands[i].synopsis);
    fprintf(f, "  dmm --version\n\n"
               "See 'dmm help COMMAND' for one command, docs/cli.md for "
               "examples.\n");
}

void dmm__print_error(const dmm_error *err)
{
    char buf[2048];
    if (err->line > 0 && err->column == 0 && err->source[0]) {
        /* A line without a column (script events): "source:line: rest". */
        dmm_error e = *err;
        e.source[0] = '\0';
        e.line = 0;
        dmm_error_format(&e, buf, sizeof buf);
        fprintf(stderr, "%s:%d: %s\n", err->source, err->line, buf);
        return;
    }
    dmm_error_format(err, buf, sizeof buf);
    fprintf(stderr, "%s\n", buf);
}

int dmm__usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "dmm %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    const char *syn = dmm__synopsis(cmd);
    if (syn)
        fprintf(stderr, "\nusage: %s (see 'dmm help %s')\n", syn, cmd);
    else
        fprintf(stderr, "\nusage: see 'dmm --help'\n");
    return DMM_EXIT_USAGE;
}

/* "a, b, c", or the alternative when names is NULL (variadic). */
static void join_names(char *buf, size_t size, const char *const *names,
                       const char *variadic)
{
    size_t n = 0;
    buf[0] = '\0';
    if (!names) {
        snprintf(buf, size, "%s", variadic);
        return;
    }
    for (size_t i = 0; names[i] && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "",
                              names[i]);
    if (!names[0])
        snprintf(buf, size, "(none)");
}

static int cmd_neurons(int argc, char **argv)
{
    bool markdown = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--markdown"))
            markdown = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            dmm__print_help(stdout, "neurons");
            return DMM_EXIT_OK;
        } else
            return dmm__usage_error("neurons", "unexpected argument \"%s\"",
                                    argv[i]);
    }
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
    int rc = reg ? dmm_registry_add_builtins(reg) : DMM_E_NOMEM;
    if (rc == 0 && markdown) {
        vv_buf b = {0};
        rc = dmm_registry_markdown(reg, &b);
        if (rc == 0 && fwrite(b.data, 1, b.len, stdout) != b.len)
            rc = DMM_E_IO;
        free(b.data);
    } else if (rc == 0) {
        /* name  in: ...  out: ...
         *       summary */
        size_t n = dmm_registry_count(reg);
        size_t wname = 4, win = 0;
        char in[256], out[256];
        for (size_t i = 0; i < n; i++) {
            const dmm_neuron_type *d = dmm_registry_at(reg, i)->desc;
            join_names(in, sizeof in, d->inputs, "any");
            wname = strlen(d->name) > wname ? strlen(d->name) : wname;
            win = strlen(in) > win ? strlen(in) : win;
        }
        for (size_t i = 0; i < n; i++) {
            const dmm_neuron_type *d = dmm_registry_at(reg, i)->desc;
            join_names(in, sizeof in, d->inputs, "any");
            join_names(out, sizeof out, d->outputs,
                       d->outputs_doc ? d->outputs_doc : "any");
            printf("%-*s  in: %-*s  out: %s%s\n%-*s  %s\n", (int)wname, d->name,
                   (int)win, in, out, d->stateful ? "  (keeps state)" : "",
                   (int)wname, "", d->summary ? d->summary : "");
        }
    }
    if (reg)
        dmm_registry_free(reg);
    if (vc)
        vv_ctx_free(vc);
    if (rc == 0 && fflush(stdout) != 0)
        rc = DMM_E_IO;
    if (rc < 0) {
        fprintf(stderr, "dmm neurons: %s\n", dmm_strerror(rc));
        return DMM_EXIT_INPUT;
    }
    return DMM_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stderr);
        return DMM_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        print_main_help(stdout);
        return DMM_EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("dmm %s\n", DMM_VERSION);
        return DMM_EXIT_OK;
    }
    if (!strcmp(cmd, "help")) {
        if (argc == 2) {
            print_main_help(stdout);
            return DMM_EXIT_OK;
        }
        if (argc > 3)
            return dmm__usage_error("help", "too many arguments");
        if (!dmm__print_help(stdout, argv[2]))
            return dmm__usage_error("help", "unknown command \"%s\"", argv[2]);
        return DMM_EXIT_OK;
    }
    if (!strcmp(cmd, "run"))
        return dmm__cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return dmm__cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return dmm__cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "ctl"))
        return dmm__cmd_ctl(argc - 1, argv + 1);
    if (!strcmp(cmd, "experiment"))
        return dmm__cmd_experiment(argc - 1, argv + 1);
    if (!strcmp(cmd, "neurons"))
        return cmd_neurons(argc - 1, argv + 1);
    fprintf(stderr, "dmm: unknown command \"%s\"\nusage: see 'dmm --help'\n",
            cmd);
    return DMM_EXIT_USAGE;
}
