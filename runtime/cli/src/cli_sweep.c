// SPDX-License-Identifier: MIT
/*
 * `dmm sweep`: a population of networks or experiment runs (docs/sweep.md).
 * Prints one JSON line per member as it finishes, then one summary line per
 * group; under mpirun only rank 0 prints and the other ranks evaluate what
 * it hands them. --plot draws the lines with tools/plot_sweep.py.
 */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dmm_sweep.h"

#define CMD "sweep"

typedef struct sweep_out {
    json_t *lines; /* every member line, parsed, for the summary and plot */
    size_t failed;
    int quiet_members; /* evolve: member lines only with --verbose */
    /* on a terminal: members done of all (a plain sweep) or generations
     * done (evolve), erased before each line printed and drawn again */
    dmm__progress bar;
    uint64_t done;
    int per_generation;
} sweep_out;

/* Print a result line on stdout without mixing it into the bar. */
static void put_line(sweep_out *o, const char *line)
{
    dmm__progress_end(&o->bar);
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void on_line(void *ud, const char *line)
{
    sweep_out *o = ud;
    if (!o->quiet_members)
        put_line(o, line);
    if (!o->per_generation)
        dmm__progress_tick(&o->bar, ++o->done);
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    if (!j || !json_object_get(j, "result"))
        o->failed++;
    if (j)
        json_array_append_new(o->lines, j);
}

static void on_generation(void *ud, const char *line)
{
    sweep_out *o = ud;
    put_line(o, line);
    /* {"generation": g, ...}: g + 1 generations done (a resumed search
     * starts past 0) */
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    json_t *g = j ? json_object_get(j, "generation") : NULL;
    if (json_is_integer(g) && json_integer_value(g) >= 0)
        o->done = (uint64_t)json_integer_value(g) + 1;
    json_decref(j);
    dmm__progress_tick(&o->bar, o->done);
}

/* Draw the lines: their data file goes to tools/plot_sweep.py. */
static int plot(const json_t *lines, const json_t *summary, const char *png)
{
    char script[PATH_MAX];
    if (!dmm__data_file("tools/plot_sweep.py", script, sizeof script)) {
        fprintf(stderr, "dmm sweep: cannot find tools/plot_sweep.py\n");
        return DMM_EXIT_INPUT;
    }
    const char *dir = getenv("TMPDIR");
    char data[PATH_MAX];
    snprintf(data, sizeof data, "%s/dmm-sweep-XXXXXX",
             dir && *dir ? dir : "/tmp");
    int fd = mkstemp(data);
    if (fd < 0) {
        fprintf(stderr, "dmm sweep: cannot write plot data: %s\n",
                strerror(errno));
        return DMM_EXIT_INPUT;
    }
    FILE *f = fdopen(fd, "w");
    json_t *doc = json_pack("{s:O, s:O}", "lines", lines, "summary", summary);
    int bad = !f || !doc || json_dumpf(doc, f, JSON_COMPACT) != 0;
    json_decref(doc);
    if (f ? fclose(f) != 0 : close(fd) != 0)
        bad = 1;
    int rc = DMM_EXIT_INPUT;
    if (bad) {
        fprintf(stderr, "dmm sweep: cannot write plot data\n");
    } else {
        char *args[] = {script, data, (char *)png, NULL};
        rc = dmm__run_python("sweep", args);
    }
    unlink(data);
    return rc;
}

static int print_summary(const json_t *lines, const char *png)
{
    json_t *summary = dmm_sweep_summary(lines);
    if (!summary) {
        fprintf(stderr, "dmm sweep: out of memory\n");
        return DMM_EXIT_INPUT;
    }
    size_t i;
    json_t *g;
    json_array_foreach(summary, i, g)
    {
        json_t *wrap = json_pack("{s:O}", "summary", g);
        char *text = wrap ? dmm_sweep_json_text(wrap) : NULL;
        if (text)
            puts(text);
        free(text);
        json_decref(wrap);
    }
    int rc = fflush(stdout) ? DMM_EXIT_INPUT : 0;
    if (!rc && png)
        rc = plot(lines, summary, png);
    json_decref(summary);
    return rc;
}

int dmm__cmd_sweep(int argc, char **argv)
{
    const char *file = NULL, *png = NULL, *checkpoint = NULL, *val;
    uint64_t jobs = 1;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        int m;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            dmm__print_help(stdout, CMD);
            return DMM_EXIT_OK;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--jobs", &val))) {
            if (m < 0 || !dmm__parse_count(val, 1, 256, &jobs))
                return dmm__usage_error(CMD, "--jobs needs a number 1-256");
        } else if ((m = dmm__opt_value(argc, argv, &i, "--plot", &val))) {
            if (m < 0)
                return dmm__usage_error(CMD, "--plot needs a file name");
            png = val;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--checkpoint", &val))) {
            if (m < 0)
                return dmm__usage_error(CMD, "--checkpoint needs a file name");
            checkpoint = val;
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return dmm__usage_error(CMD, "unknown option \"%s\"", argv[i]);
        } else if (file) {
            return dmm__usage_error(CMD, "one sweep file at a time");
        } else {
            file = argv[i];
        }
    }
    if (!file)
        return dmm__usage_error(CMD, "which sweep file?");

    int mpi = dmm_sweep_mpi_init(NULL, NULL);
    if (mpi < 0) {
        fprintf(stderr, "dmm sweep: %s\n",
                mpi == -2 ? "started by mpirun, but this dmm was built "
                            "without MPI (meson setup -Dmpi=enabled)"
                          : "MPI_Init_thread failed");
        return DMM_EXIT_USAGE;
    }
    char exe[PATH_MAX];
    if (!realpath("/proc/self/exe", exe))
        snprintf(exe, sizeof exe, "%s", argv[0]);
    dmm_sweep *s = NULL;
    dmm_sweep_runner *r = NULL;
    dmm_error err;
    dmm_error_clear(&err);
    int rc = DMM_EXIT_OK, rank = dmm_sweep_mpi_rank();
    if (dmm_sweep_load_file(file, &s, &err) ||
        dmm_sweep_runner_new(s, exe, (unsigned)jobs, mpi, &r, &err)) {
        /* every rank read the same file: rank 0 says why */
        if (rank == 0)
            dmm__print_error(&err);
        dmm_sweep_free(s);
        if (mpi)
            dmm_sweep_mpi_finalize();
        return DMM_EXIT_INPUT;
    }
    rank = dmm_sweep_runner_rank(r);
    if (rank != 0) {
        if (dmm_sweep_runner_serve(r, &err)) {
            dmm__print_error(&err);
            rc = DMM_EXIT_INPUT;
        }
    } else {
        sweep_out o = {.lines = json_array()};
        if (!o.lines) {
            fprintf(stderr, "dmm sweep: out of memory\n");
            rc = DMM_EXIT_INPUT;
        } else if (dmm_sweep_evolve_spec(s)) {
            json_t *best = NULL;
            json_t *gens =
                json_object_get(dmm_sweep_evolve_spec(s), "generations");
            o.quiet_members = !verbose;
            o.per_generation = 1;
            dmm__progress_begin(&o.bar,
                                json_is_integer(gens) &&
                                        json_integer_value(gens) > 0
                                    ? (uint64_t)json_integer_value(gens)
                                    : 0,
                                "generations");
            if (dmm_sweep_evolve(s, r, checkpoint, on_line, on_generation, &o,
                                 &best, &err)) {
                dmm__print_error(&err);
                rc = DMM_EXIT_INPUT;
            } else {
                json_t *wrap = json_pack("{s:O}", "best", best);
                char *text = wrap ? dmm_sweep_json_text(wrap) : NULL;
                if (text)
                    puts(text);
                free(text);
                json_decref(wrap);
                json_t *none = json_array();
                if (png)
                    rc = plot(o.lines, none, png);
                json_decref(none);
            }
            dmm__progress_end(&o.bar);
            json_decref(best);
        } else {
            dmm__progress_begin(&o.bar, json_array_size(dmm_sweep_members(s)),
                                "members");
            int bad = dmm_sweep_runner_run(r, dmm_sweep_members(s), on_line, &o,
                                           &err);
            dmm__progress_end(&o.bar);
            if (bad) {
                dmm__print_error(&err);
                rc = DMM_EXIT_INPUT;
            } else {
                rc = print_summary(o.lines, png);
                if (!rc && o.failed)
                    rc = DMM_EXIT_INPUT;
            }
        }
        json_decref(o.lines);
    }
    dmm_sweep_runner_free(r);
    dmm_sweep_free(s);
    if (mpi)
        dmm_sweep_mpi_finalize();
    return rc;
}
