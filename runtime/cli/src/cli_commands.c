// SPDX-License-Identifier: MIT
/*
 * The `dmm` command's vocabulary: one table of subcommands, {name, run,
 * summary, synopsis, help}, that drives dispatch, `dmm help`, the manual page
 * (`dmm help --man`, installed as dmm.1) and shell completion (`dmm
 * completion bash`). Adding a command means adding one row; the options a
 * completion offers are the --words of its synopsis and help.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const dmm__command dmm__commands[] = {
    {"run", dmm__cmd_run, "run a network for N cycles and print its outputs",
     "dmm run (NET.json | --resume STATE.json) --steps N [--trace] "
     "[--select PATH]... [--format json|pretty|flat] [--self] "
     "[--plugin FILE.so]... "
     "[--script FILE.jsonl] [--save FILE] [--stats] [--max-depth N] "
     "[--threads N]",
     "Run a network for N cycles and print the output map Y_t as one JSON\n"
     "line {\"step\": t, \"outputs\": Y_t} (after the last cycle, or after\n"
     "every cycle with --trace). Step numbers are absolute cycle numbers.\n"
     "\n"
     "  --steps N          cycles to run (N >= 0; 0 prints the start state)\n"
     "  --trace            print one line per cycle instead of the last "
     "only;\n"
     "                     Self's output (W) is left out unless --self\n"
     "  --select PATH      print only the values under PATH, a prefix such\n"
     "                     as identity/update-1 or identity/*/single (`*`\n"
     "                     matches one level); repeatable\n"
     "  --format F         json (one line per step, the default), pretty\n"
     "                     (indented) or flat (\"STEP PATH VALUE\" lines)\n"
     "  --self             keep Self's output (the matrix W) in a trace\n"
     "  --plugin FILE.so   load neuron types from a plugin (repeatable;\n"
     "                     docs/extending.md)\n"
     "  --script FILE      JSON Lines of events, checked before the run:\n"
     "                     {\"step\": t, \"op\": \"edit\", \"delta\": "
     "W-delta}\n"
     "                     {\"step\": t, \"op\": \"feed\", \"neuron\": "
     "\"input/NAME\",\n"
     "                      \"outputs\": {...}}\n"
     "                     and the field events modulate, position and\n"
     "                     fields (docs/fields.md), as dmm serve --log\n"
     "                     writes them;\n"
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
    {"check", dmm__cmd_check,
     "validate network files and scripts without running them",
     "dmm check [--script FILE.jsonl] [--max-depth N] [--plugin FILE.so]... "
     "NET.json...",
     "Validate network files (and a script) without running them. Prints\n"
     "\"NET.json: ok (N neurons, M weights)\" for each good file, and\n"
     "\"file:line:column: /json/path: message\" on stderr for a bad one.\n"
     "\n"
     "  --script FILE      also validate a script file\n"
     "  --plugin FILE.so   load neuron types from a plugin (repeatable)\n"
     "  --max-depth N      deepest nesting allowed in any value\n"
     "\n"
     "Exit: 0 all good, 1 something is bad, 2 bad usage.\n"},
    {"serve", dmm__cmd_serve, "run a network live, edited over a socket",
     "dmm serve (NET.json | --resume STATE.json) [--listen HOST:PORT | "
     "--socket PATH] [--http HOST:PORT] [--rate HZ|max] [--paused] "
     "[--log FILE.jsonl] "
     "[--token T | --token-file FILE] [--dir DIR] [--history N] "
     "[--idle-timeout SECONDS] [--save-on-exit FILE] [--max-clients N] "
     "[--max-per-address N] [--max-message BYTES] [--max-backlog BYTES] "
     "[--max-buffered BYTES] [--plugin FILE.so]...",
     "Run a network live and serve the NDJSON protocol of docs/protocol.md:\n"
     "clients watch values, change weights, feed inputs, pause, step, save.\n"
     "Edits are applied between cycles. The address (HOST:PORT, or the\n"
     "socket path) is printed as the first line on stdout; with --http,\n"
     "the page's address http://HOST:PORT/ is the second.\n"
     "\n"
     "  --listen HOST:PORT  TCP address (default 127.0.0.1:0; port 0 picks "
     "one)\n"
     "  --socket PATH       a Unix socket instead, created with mode 0600\n"
     "  --http HOST:PORT    also serve the browser view at / and the protocol\n"
     "                      over WebSocket at /ws (port 0 picks one); a\n"
     "                      non-loopback address needs a token\n"
     "  --rate HZ|max       cycles per second (default 10)\n"
     "  --paused            start paused (run cycles with step or resume)\n"
     "  --plugin FILE.so    load neuron types from a plugin (repeatable)\n"
     "  --log FILE          write every applied edit and feed as a script\n"
     "                      for dmm run --script\n"
     "  --token T           every connection must first send hello with T\n"
     "  --token-file FILE   the token from the first line of FILE (or set\n"
     "                      DMM_TOKEN), so that ps does not show it; a\n"
     "                      non-loopback --listen needs a token\n"
     "  --dir DIR           the folder save and load may use (default: the\n"
     "                      working directory); no absolute paths, no ..\n"
     "  --history N         changes undo can revert (default 64)\n"
     "  --idle-timeout S    close a client idle this long (default 60, 0 "
     "never)\n"
     "  --save-on-exit FILE write the state when stopping\n"
     "  --max-clients N     connections at once (default 256)\n"
     "  --max-per-address N connections from one address (default 3/4 of\n"
     "                      --max-clients)\n"
     "  --max-message B     longest request line (default 1048576)\n"
     "  --max-backlog B     bytes waiting for a client before it is dropped\n"
     "                      (default 1048576)\n"
     "  --max-buffered B    unfinished request lines of all clients together\n"
     "                      (default 64 MiB)\n"
     "\n"
     "SIGINT or SIGTERM stops after the current cycle. Exit: 0 ok, 1 bad\n"
     "input or I/O error, 2 bad usage.\n"},
    {"ctl", dmm__cmd_ctl, "talk to a running dmm serve",
     "dmm ctl (--connect HOST:PORT | --socket PATH) [--token T | --token-file "
     "FILE] [OP [ARGS]]",
     "Send one request to a dmm serve and print the reply; without OP, read\n"
     "commands in the same words from stdin, one per line (history and line\n"
     "editing on a terminal), printing replies and watched values as they\n"
     "come. Shortcuts:\n"
     "\n"
     "  status | pause | resume | snapshot | shutdown\n"
     "  undo                      revert the last edit, set, load,\n"
     "                            modulate or position\n"
     "  step [N]                  run N cycles of a paused network\n"
     "  rate HZ|max\n"
     "  get PATH                  print the value at PATH in the outputs\n"
     "  set PATH VALUE            one weight, PATH = type/name/input/type/"
     "name/output,\n"
     "                            or Self's output path before it, as get\n"
     "                            reads the weight (accum/self/single/...)\n"
     "  edit DELTA                add a W fragment (JSON)\n"
     "  feed input/NAME OUTPUTS   queue an output map (JSON)\n"
     "  modulate add|change MOD   add a modulation, or replace the one of\n"
     "                            its name (JSON, docs/fields.md)\n"
     "  modulate remove NAME      remove the modulation NAME\n"
     "  position NEURON X [Y]     place neuron type/name in the field plane\n"
     "  position NEURON none      remove its position\n"
     "  save FILE                 the server writes its state to FILE\n"
     "  load FILE                 send a network (or state) file to run\n"
     "  watch PATH...             print \"STEP PATH VALUE\" when a value\n"
     "                            changes (--every K, --count N to stop)\n"
     "  '{\"op\": ...}'            a raw JSON request\n"
     "\n"
     "The token may also come from --token-file FILE (its first line) or the\n"
     "environment variable DMM_TOKEN, which ps does not show.\n"
     "Exit: 0 ok, 1 error reply or connection failure, 2 bad usage.\n"},
    {"experiment", dmm__cmd_experiment,
     "run an interference or mean-field experiment",
     "dmm experiment (mnist-fewshot --data DIR | double-slit | hysteresis) "
     "[--seed S] [--variant faithful|corrected] [--engine direct|network] "
     "[--plot FILE.png] [--friend X] [--foe X] [--eta-friend X] "
     "[--eta-stranger X] [--eta-foe X] [--horizon H] [--network FILE] "
     "[--predictions FILE] [mnist options] [hysteresis options]",
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
     "    --geometry corners|sides  where the four targets sit: outside\n"
     "                     the corners of the 9 x 9 grid (default), or\n"
     "                     outside the middle of each side\n"
     "    --distance manhattan|euclidean|chebyshev  time steps from a\n"
     "                     patch to a target: along grid lines (default), a\n"
     "                     straight line rounded up, or with diagonal steps\n"
     "    --ties first|peak which class wins when the top scores tie: the\n"
     "                     first (default, the published rule), or the one\n"
     "                     whose energy peaked highest before the floor at 0\n"
     "  double-slit        in-phase / out-of-phase sources, 5 shots, 200 "
     "trials\n"
     "    --noise per-sample|per-step  one phase noise per sample and\n"
     "                     source (default), or a new one at every time step\n"
     "                     as the published code draws it\n"
     "  hysteresis         the mean-field neurons of networks/hysteresis.json\n"
     "                     under a slow field sweep: where mu jumps, against\n"
     "                     h_c(K) (only --steps, --network and --plot)\n"
     "    --steps N        cycles to run (default 5000, one and a quarter\n"
     "                     periods of the sweep)\n"
     "    --network FILE   another network with mean-field neurons\n"
     "  learning options of mnist-fewshot and double-slit (defaults: the\n"
     "  published values, 0.7 -0.7 1 -0.5 -0.8 and 0.8 -0.8 0.1 -0.01 -0.1):\n"
     "    --friend X       similarity from which a source is a friend\n"
     "    --foe X          similarity up to which a source is a foe\n"
     "    --eta-friend X   learning rate of friends\n"
     "    --eta-stranger X learning rate of strangers\n"
     "    --eta-foe X      learning rate of foes (none may be 0 with\n"
     "                     --engine network: a parameter 0 reads as its\n"
     "                     default)\n"
     "    --horizon H      time steps t and travel durations 0..H-1, 1-64\n"
     "                     (defaults 25 and 60, the published values)\n"
     "  --seed S           random seed (default 1)\n"
     "  --variant V        faithful (the published code's quirks, default)\n"
     "                     or corrected\n"
     "  --engine E         direct (native C, default) or network: the\n"
     "                     bundled networks/mnist-learners.json or\n"
     "                     networks/double-slit.json run by the engine\n"
     "  --network FILE     mnist-fewshot, double-slit: run your own network\n"
     "                     (networks/mnist-interference.json: MNIST through\n"
     "                     delay lines, every arrival a weight of W;\n"
     "                     implies --engine network; it must follow the\n"
     "                     contract of docs/experiments.md)\n"
     "  --predictions FILE write one CSV line per test sample: its index,\n"
     "                     true class, predicted class and the scores\n"
     "  --plot FILE.png    also draw the results (needs /usr/bin/python3 with\n"
     "                     matplotlib)\n"
     "\n"
     "Exit: 0 ok, 1 bad data or plot failure, 2 bad usage.\n"},
    {"render", dmm__cmd_render,
     "run a network and write one of its outputs as pictures",
     "dmm render NET.json --path TYPE/NAME/OUTPUT --steps N [--skip K] "
     "[--out DIR] "
     "[--animate FILE.gif|FILE.png] [--range fixed|frame|LO:HI] [--scale K] "
     "[--delay MS] [--colours N] [--image input/NAME=FILE.png] "
     "[--script FILE]",
     "Run a network for N cycles and draw the value at --path after each\n"
     "cycle: DIR/frame-000001.png, ... (one PNG per cycle) and/or one\n"
     "looping animation (GIF or APNG). A matrix {row: {column: x}} is an\n"
     "image (rows down, columns across, labels in natural order); channels\n"
     "{\"0\": R, \"1\": G, \"2\": B} of matrices are RGB; W (Self's output)\n"
     "is rows = type/name/input, columns = type/name/output. Non-negative\n"
     "values are grey (0 black), signed ones blue-white-red (0 white).\n"
     "Nothing is written unless every frame is a good matrix. On a terminal,\n"
     "a progress bar on stderr counts the cycles.\n"
     "\n"
     "  --path P           the output to draw, TYPE/NAME/OUTPUT[/MORE]\n"
     "  --steps N          cycles to draw, one frame each (1-10000)\n"
     "  --skip K           run K cycles first without drawing them (a\n"
     "                     pipeline's first cycles are often empty)\n"
     "  --out DIR          write DIR/frame-NNNNNN.png (the cycle number)\n"
     "  --animate FILE     write an animation: FILE.gif a GIF (256 colours\n"
     "                     at most), FILE.png an animated PNG (APNG)\n"
     "  --range R          fixed: one range for the film (default); frame:\n"
     "                     each frame its own; LO:HI as given\n"
     "  --scale K          K x K pixels per entry (1-64, default 1)\n"
     "  --delay MS         between GIF frames (10-10000, default 100)\n"
     "  --colours N        at most N colours in the GIF (8-256, default\n"
     "                     256): fewer posterise and make smaller files\n"
     "  --image input/NAME=FILE.png\n"
     "                     feed the PNG to an input neuron every cycle as\n"
     "                     {\"image\": picture}: grey gives a matrix, colour\n"
     "                     the channels 0, 1, 2, values byte/255\n"
     "  --script FILE      apply a script's events (feed, edit, modulate,\n"
     "                     position) before the cycle of their step, as\n"
     "                     dmm run --script does (the skipped cycles too)\n"
     "\n"
     "Exit: 0 ok, 1 bad input (network, path, value, file), 2 bad usage,\n"
     "3 NaN or infinity in a cycle.\n"},
    {"sweep", dmm__cmd_sweep,
     "run a population of networks or experiments, on cores or MPI ranks",
     "dmm sweep SWEEP.json [--jobs N] [--plot FILE.png] "
     "[--checkpoint FILE] [--verbose]",
     "Run every member of a sweep file (docs/sweep.md): variants x grid x\n"
     "seeds of a network or of dmm experiment, or an evolutionary search.\n"
     "Prints one JSON line per member as it finishes,\n"
     "{\"member\": {...}, \"result\": {...}, \"seconds\": s} (or \"error\"\n"
     "for a member that failed), then one {\"summary\": ...} line per group\n"
     "(mean, sd, min, max of each numeric result). Under\n"
     "`mpirun -np N dmm sweep ...` rank 0 hands members to all ranks and\n"
     "prints the same lines. On a terminal, a progress bar on stderr counts\n"
     "the members (generations of an evolve) done.\n"
     "\n"
     "  --jobs N           members at once on this machine (threads, 1-256)\n"
     "  --plot FILE.png    draw the results (tools/plot_sweep.py, matplotlib)\n"
     "  --checkpoint FILE  evolve: state after every generation; an existing\n"
     "                     checkpoint of the same search is resumed\n"
     "  --verbose          evolve: print every member line too\n"
     "\n"
     "Exit: 0 ok, 1 bad sweep file or a member failed, 2 bad usage.\n"},
    {"plot", dmm__cmd_plot, "draw selected values of a trace over time",
     "dmm plot (TRACE.jsonl | -) --select PATH... --out FILE.png "
     "[--title TEXT]",
     "Draw the values under each --select PATH of a trace written by\n"
     "dmm run --trace (JSON lines; - reads stdin) into a PNG: one panel per\n"
     "path, a line per value over the steps, labelled axes and a legend; a\n"
     "path whose values are a matrix (the last two labels numbers) is drawn\n"
     "as an image strip, the matrix at a few steps. Needs /usr/bin/python3\n"
     "with matplotlib (Debian's python3-matplotlib).\n"
     "\n"
     "  --select PATH      what to draw, as in dmm run --select (`*` matches\n"
     "                     one level); repeatable, one panel each\n"
     "  --out FILE.png     the picture to write\n"
     "  --title TEXT       its title (default: the trace's file name)\n"
     "\n"
     "Exit: 0 ok, 1 bad trace or plot failure, 2 bad usage.\n"},
    {"neurons", dmm__cmd_neurons, "list the neuron types",
     "dmm neurons [--markdown] [--plugin FILE.so]...",
     "List the registered neuron types: name, inputs, outputs, summary.\n"
     "\n"
     "  --markdown         print the catalogue as Markdown "
     "(docs/neurons.md)\n"
     "  --plugin FILE.so   also list the types of a plugin\n"},
    {"help", dmm__cmd_help, "show help for dmm or one command",
     "dmm help [--man | COMMAND]",
     "Show the list of commands, or the help of one command.\n"
     "\n"
     "  --man              print the manual page dmm(1) in troff\n"},
    {"completion", dmm__cmd_completion, "print a shell completion script",
     "dmm completion bash",
     "Print a bash completion script for dmm (commands and their options):\n"
     "\n"
     "  source <(dmm completion bash)\n"},
};

const size_t dmm__ncommands = sizeof dmm__commands / sizeof dmm__commands[0];

const dmm__command *dmm__command_find(const char *name)
{
    for (size_t i = 0; i < dmm__ncommands; i++)
        if (!strcmp(dmm__commands[i].name, name))
            return &dmm__commands[i];
    return NULL;
}

const char *dmm__synopsis(const char *cmd)
{
    const dmm__command *d = dmm__command_find(cmd);
    return d ? d->synopsis : NULL;
}

int dmm__print_help(FILE *f, const char *cmd)
{
    const dmm__command *d = dmm__command_find(cmd);
    if (!d)
        return 0;
    fprintf(f, "usage: %s\n\n%s", d->synopsis, d->help);
    return 1;
}

void dmm__print_main_help(FILE *f)
{
    fprintf(f, "dmm %s: run dataflow matrix machines\n\nusage:\n", DMM_VERSION);
    for (size_t i = 0; i < dmm__ncommands; i++)
        fprintf(f, "  %s\n", dmm__commands[i].synopsis);
    fprintf(f, "  dmm --version\n\n"
               "See 'dmm help COMMAND' for one command, docs/cli.md for "
               "examples.\n");
}

/* ---- the manual page ---------------------------------------------------- */

/* s as troff text: backslashes and hyphens escaped, and a line that would
 * start with a control character guarded. */
static void troff_put(FILE *f, const char *s)
{
    bool bol = true;
    for (; *s; s++) {
        if (bol && (*s == '.' || *s == '\''))
            fputs("\\&", f);
        bol = *s == '\n';
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

static void print_man(FILE *f)
{
    fprintf(f, ".TH DMM 1 \"\" \"dmm %s\" \"User Commands\"\n", DMM_VERSION);
    fputs(".SH NAME\ndmm \\- run dataflow matrix machines\n"
          ".SH SYNOPSIS\n.B dmm\n.I command\n[\\fIoptions\\fR]\n.br\n"
          ".B dmm \\-\\-version\n"
          ".SH DESCRIPTION\n"
          "A dataflow matrix machine is a recurrent network whose streams "
          "carry V\\-values (sparse nested dictionaries with numeric leaves) "
          "and whose matrix W is itself the output of a neuron, Self, so the "
          "network can edit its own weights while it runs.\n"
          ".B dmm\nloads networks from JSON files, runs them, serves them "
          "live for editing, and runs the experiments of its documentation.\n"
          ".SH COMMANDS\n",
          f);
    for (size_t i = 0; i < dmm__ncommands; i++) {
        const dmm__command *c = &dmm__commands[i];
        fprintf(f, ".SS %s\n", c->name);
        troff_put(f, c->summary);
        fputs(".\n.PP\n.nf\n", f);
        troff_put(f, c->synopsis);
        fputs("\n.fi\n.PP\n.nf\n", f);
        troff_put(f, c->help);
        fputs(".fi\n", f);
    }
    fputs(".SH EXIT STATUS\n0 success, 1 bad input (files, scripts, "
          "networks) or I/O error, 2 bad usage, 3 a numeric fault (NaN or "
          "infinity) during a run.\n"
          ".SH FILES\nThe bundled networks and plot scripts are installed "
          "under\n.IR share/dmm/ ;\nset\n.B DMM_DATA_DIR\nto use another "
          "folder.\n"
          ".SH SEE ALSO\nThe documents under docs/ in the source: cli.md, "
          "network\\-format.md, protocol.md, embedding.md.\n",
          f);
}

/* ---- shell completion ---------------------------------------------------- */

/* Append to buf (size) the --options of s not in buf yet, space-separated. */
static void collect_options(char *buf, size_t size, const char *s)
{
    for (const char *p = s; (p = strstr(p, "--"));) {
        const char *q = p + 2;
        if (!islower((unsigned char)*q) ||
            (p > s && isalnum((unsigned char)p[-1]))) {
            p = q;
            continue;
        }
        while (islower((unsigned char)*q) || isdigit((unsigned char)*q) ||
               *q == '-')
            q++;
        char opt[64];
        size_t n = (size_t)(q - p);
        if (n < sizeof opt) {
            memcpy(opt, p, n);
            opt[n] = '\0';
            /* whole-word search in buf */
            bool seen = false;
            for (const char *b = buf; (b = strstr(b, opt)); b += n)
                if ((b == buf || b[-1] == ' ') && (b[n] == ' ' || !b[n]))
                    seen = true;
            size_t len = strlen(buf);
            if (!seen && len + n + 2 < size)
                snprintf(buf + len, size - len, "%s%s", len ? " " : "", opt);
        }
        p = q;
    }
}

/* The same for the option lines of a help text (a line whose first word is
 * an --option), so that options of other commands it mentions are not
 * offered. */
static void collect_help_options(char *buf, size_t size, const char *help)
{
    for (const char *l = help; *l;) {
        while (*l == ' ')
            l++;
        size_t n = strcspn(l, " \n");
        if (n > 2 && n < 64 && l[0] == '-' && l[1] == '-') {
            char word[64];
            memcpy(word, l, n);
            word[n] = '\0';
            collect_options(buf, size, word);
        }
        l = strchr(l, '\n');
        if (!l)
            break;
        l++;
    }
}

static void print_bash_completion(FILE *f)
{
    fputs("# bash completion for dmm (generated by 'dmm completion bash')\n"
          "_dmm() {\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} opts=\n"
          "    if [[ $COMP_CWORD -eq 1 ]]; then\n"
          "        COMPREPLY=($(compgen -W \"",
          f);
    for (size_t i = 0; i < dmm__ncommands; i++)
        fprintf(f, "%s ", dmm__commands[i].name);
    fputs("--help --version\" -- \"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    case ${COMP_WORDS[1]} in\n",
          f);
    for (size_t i = 0; i < dmm__ncommands; i++) {
        char opts[2048] = "";
        collect_options(opts, sizeof opts, dmm__commands[i].synopsis);
        collect_help_options(opts, sizeof opts, dmm__commands[i].help);
        fprintf(f, "    %s) opts=\"%s%s--help\" ;;\n", dmm__commands[i].name,
                opts, opts[0] ? " " : "");
    }
    fputs("    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
          "    else\n"
          "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "    fi\n"
          "}\n"
          "complete -o filenames -F _dmm dmm\n",
          f);
}

/* ---- suggestions --------------------------------------------------------- */

size_t dmm__edit_distance(const char *a, const char *b)
{
    /* Optimal string alignment: insertions, deletions, substitutions and
     * swaps of two neighbours each cost 1; three rows of the table. */
    size_t n = strlen(a), m = strlen(b);
    if (n > 255 || m > 255)
        return SIZE_MAX;
    size_t rows[3][256];
    size_t *pp = rows[0], *p = rows[1], *c = rows[2];
    for (size_t j = 0; j <= m; j++)
        p[j] = j;
    for (size_t i = 1; i <= n; i++) {
        c[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = p[j - 1] + cost;
            if (p[j] + 1 < d)
                d = p[j] + 1;
            if (c[j - 1] + 1 < d)
                d = c[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && pp[j - 2] + 1 < d)
                d = pp[j - 2] + 1;
            c[j] = d;
        }
        size_t *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[m];
}

bool dmm__close_enough(const char *word, const char *cand, size_t d)
{
    size_t n = strlen(word);
    return d > 0 && d <= (n < 6 ? 1 : n < 12 ? 2 : 3) && d < strlen(cand);
}

/* The closest word of the space-separated list words to w, into out; false
 * when none is close enough. */
static bool closest_word(const char *words, const char *w, char *out,
                         size_t size)
{
    size_t best = SIZE_MAX;
    for (const char *p = words; *p;) {
        size_t n = strcspn(p, " ");
        char cand[64];
        if (n > 0 && n < sizeof cand) {
            memcpy(cand, p, n);
            cand[n] = '\0';
            size_t d = dmm__edit_distance(w, cand);
            if (d < best && dmm__close_enough(w, cand, d)) {
                best = d;
                snprintf(out, size, "%s", cand);
            }
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    return best != SIZE_MAX;
}

int dmm__unknown_option(const char *cmd, const char *opt)
{
    const dmm__command *d = dmm__command_find(cmd);
    char opts[2048] = "", name[64], best[64];
    if (d) {
        collect_options(opts, sizeof opts, d->synopsis);
        collect_help_options(opts, sizeof opts, d->help);
    }
    size_t n = strcspn(opt, "=");
    snprintf(name, sizeof name, "%.*s", (int)(n < 63 ? n : 63), opt);
    if (opts[0] && closest_word(opts, name, best, sizeof best))
        return dmm__usage_error(cmd,
                                "unknown option \"%s\" (did you mean "
                                "\"%s\"?)",
                                opt, best);
    return dmm__usage_error(cmd, "unknown option \"%s\"", opt);
}

int dmm__unknown_command(const char *name)
{
    char all[1024] = "", best[64];
    for (size_t i = 0; i < dmm__ncommands; i++) {
        size_t len = strlen(all);
        snprintf(all + len, sizeof all - len, "%s ", dmm__commands[i].name);
    }
    if (closest_word(all, name, best, sizeof best))
        fprintf(stderr,
                "dmm: unknown command \"%s\" (did you mean \"%s\"?)\n"
                "usage: see 'dmm --help'\n",
                name, best);
    else
        fprintf(stderr,
                "dmm: unknown command \"%s\"\nusage: see 'dmm "
                "--help'\n",
                name);
    return DMM_EXIT_USAGE;
}

/* ---- the commands of this file ------------------------------------------ */

int dmm__cmd_help(int argc, char **argv)
{
    if (argc == 1) {
        dmm__print_main_help(stdout);
        return DMM_EXIT_OK;
    }
    if (argc > 2)
        return dmm__usage_error("help", "too many arguments");
    if (!strcmp(argv[1], "--man")) {
        print_man(stdout);
        return fflush(stdout) ? DMM_EXIT_INPUT : DMM_EXIT_OK;
    }
    if (!dmm__print_help(stdout, argv[1]))
        return dmm__usage_error("help", "unknown command \"%s\"", argv[1]);
    return DMM_EXIT_OK;
}

int dmm__cmd_completion(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "bash"))
        return dmm__usage_error("completion", "expected the shell: bash");
    print_bash_completion(stdout);
    return fflush(stdout) ? DMM_EXIT_INPUT : DMM_EXIT_OK;
}
