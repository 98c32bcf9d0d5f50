// SPDX-License-Identifier: MIT
/*
 * `dmm sweep` as a user runs it (DMM_EXE, spawned): members of a network
 * sweep computed right, the same lines on one thread, on several and under
 * `mpirun -np 2` and `-np 3` (when the build has MPI: DMM_MPIRUN), failed
 * members reported while the sweep goes on, located errors for bad sweep
 * files, experiment members (an mnist-fewshot sweep over --ties on
 * synthetic digits among them), the evolutionary search resumed from its
 * checkpoint exactly as if it had not stopped, and the search for a wave of
 * period 5 (networks/sweeps/wave-period5.json) checked with `dmm run`.
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

extern char **environ;

typedef struct env {
    char dir[64];
    const char *exe;
    const char *mpirun; /* NULL: built without MPI */
} env;

typedef struct proc {
    int code;
    char *out, *err;
} proc;

static char *path_in(const env *e, const char *name)
{
    char *p = malloc(strlen(e->dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", e->dir, name);
    return p;
}

static char *write_file(const env *e, const char *name, const char *text)
{
    char *p = path_in(e, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return p;
}

/* Run argv (NULL-terminated, argv[0] the program). */
static void run(const env *e, proc *p, const char *const *argv)
{
    char *out = path_in(e, "stdout"), *err = path_in(e, "stderr");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid;
    assert_int_equal(
        posix_spawnp(&pid, argv[0], &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    p->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    p->out = tu_read_file(out, NULL);
    p->err = tu_read_file(err, NULL);
    assert_non_null(p->out);
    assert_non_null(p->err);
    free(out);
    free(err);
}

static void proc_free(proc *p)
{
    free(p->out);
    free(p->err);
}

static void expect_code(const proc *p, int code)
{
    if (p->code != code)
        print_error("exit %d, expected %d; stderr:\n%s\nstdout:\n%s\n", p->code,
                    code, p->err, p->out);
    assert_int_equal(p->code, code);
}

/* `dmm sweep FILE args...` (jobs NULL: default), or under mpirun -np n. */
static void sweep(const env *e, proc *p, const char *file, int np,
                  const char *jobs)
{
    const char *argv[24];
    size_t n = 0;
    char nps[16];
    if (np > 0) {
        snprintf(nps, sizeof nps, "%d", np);
        argv[n++] = e->mpirun;
        argv[n++] = "--oversubscribe";
        if (getuid() == 0)
            argv[n++] = "--allow-run-as-root";
        argv[n++] = "-np";
        argv[n++] = nps;
    }
    argv[n++] = e->exe;
    argv[n++] = "sweep";
    argv[n++] = file;
    if (jobs) {
        argv[n++] = "--jobs";
        argv[n++] = jobs;
    }
    argv[n] = NULL;
    run(e, p, argv);
}

/* new: the member lines of out, "seconds" cut off, sorted; summaries kept
 * (they come last, in group order) as the tail. */
static char *normalise(const char *out)
{
    size_t cap = strlen(out) + 1, nlines = 0;
    char *copy = strdup(out), **lines = calloc(cap, sizeof *lines);
    assert_non_null(copy);
    for (char *l = strtok(copy, "\n"); l; l = strtok(NULL, "\n")) {
        char *s = strstr(l, ", \"seconds\": ");
        if (s && !strncmp(l, "{\"member\"", 9))
            strcpy(s, "}");
        lines[nlines++] = l;
    }
    size_t members = 0;
    while (members < nlines && !strncmp(lines[members], "{\"member\"", 9))
        members++;
    for (size_t i = 1; i < members; i++)
        for (size_t j = i; j > 0 && strcmp(lines[j], lines[j - 1]) < 0; j--) {
            char *t = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    char *res = calloc(cap + nlines + 1, 1);
    assert_non_null(res);
    for (size_t i = 0; i < nlines; i++) {
        strcat(res, lines[i]);
        strcat(res, "\n");
    }
    free(lines);
    free(copy);
    return res;
}

static const char grid_sweep[] =
    "{\n"
    "  \"sweep\": 1,\n"
    "  \"base\": {\"network\": \"NET\"},\n"
    "  \"grid\": {\"w/accum/sum/delta/identity/const/single\": [0.5, 1, 2]},"
    "\n"
    "  \"seeds\": {\"from\": 7, \"count\": 4},\n"
    "  \"variants\": [{\"name\": \"plain\"},\n"
    "    {\"name\": \"plus-one\", \"delta\": {\"accum\": {\"sum\": {\"delta\": "
    "{\"identity\": {\"const\": {\"single\": 1}}}}}}}],\n"
    "  \"measure\": {\"steps\": 10, \"paths\": [\"accum/sum/single\"]}\n"
    "}\n";

/* new: the grid sweep, its base the bundled accumulator. */
static char *grid_file(const env *e, const char *name, const char *text)
{
    char *net = tu_path("networks/accumulator.json");
    const char *at = strstr(text, "NET");
    if (!at) {
        free(net);
        return write_file(e, name, text);
    }
    char *full = malloc(strlen(text) + strlen(net) + 1);
    assert_non_null(full);
    sprintf(full, "%.*s%s%s", (int)(at - text), text, net, at + 3);
    char *p = write_file(e, name, full);
    free(full);
    free(net);
    return p;
}

/* The members are variants x grid x seeds, each with the right numbers:
 * 10 cycles of the accumulator add (w + the variant's delta) x {1, 0.5}. */
static void test_grid_members(void **state)
{
    env *e = *state;
    char *file = grid_file(e, "grid.json", grid_sweep);
    proc p;
    sweep(e, &p, file, 0, NULL);
    expect_code(&p, 0);
    size_t members = 0, summaries = 0;
    char *copy = strdup(p.out);
    for (char *l = strtok(copy, "\n"); l; l = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *j = json_loads(l, 0, &je);
        assert_non_null(j);
        json_t *m = json_object_get(j, "member");
        if (m) {
            double w = json_number_value(
                json_object_get(m, "w/accum/sum/delta/identity/const/single"));
            int plus = !strcmp(json_string_value(json_object_get(m, "variant")),
                               "plus-one");
            json_t *r = json_object_get(json_object_get(j, "result"),
                                        "accum/sum/single");
            assert_true(fabs(json_number_value(json_object_get(r, "apples")) -
                             10 * (w + plus)) < 1e-12);
            assert_true(fabs(json_number_value(json_object_get(r, "pears")) -
                             5 * (w + plus)) < 1e-12);
            json_int_t seed = json_integer_value(json_object_get(m, "seed"));
            assert_true(seed >= 7 && seed <= 10);
            assert_int_equal(json_integer_value(json_object_get(m, "index")),
                             members);
            members++;
        } else {
            json_t *s = json_object_get(j, "summary");
            assert_non_null(s);
            assert_int_equal(json_integer_value(json_object_get(s, "members")),
                             4);
            json_t *a =
                json_object_get(json_object_get(json_object_get(s, "fields"),
                                                "accum/sum/single/apples"),
                                "sd");
            assert_true(json_number_value(a) == 0); /* seeds do not matter */
            summaries++;
        }
        json_decref(j);
    }
    free(copy);
    assert_int_equal(members, 2 * 3 * 4);
    assert_int_equal(summaries, 2 * 3);
    proc_free(&p);
    free(file);
}

/* One thread, three threads, two and three MPI ranks: the same lines. */
static void test_same_lines_everywhere(void **state)
{
    env *e = *state;
    char *file = grid_file(e, "grid.json", grid_sweep);
    proc p;
    sweep(e, &p, file, 0, NULL);
    expect_code(&p, 0);
    char *one = normalise(p.out);
    proc_free(&p);
    sweep(e, &p, file, 0, "3");
    expect_code(&p, 0);
    char *three = normalise(p.out);
    assert_string_equal(one, three);
    proc_free(&p);
    free(three);
    if (!e->mpirun) {
        print_message("built without MPI: mpirun runs skipped\n");
    } else {
        for (int np = 2; np <= 3; np++) {
            sweep(e, &p, file, np, NULL);
            expect_code(&p, 0);
            char *m = normalise(p.out);
            assert_string_equal(one, m);
            free(m);
            proc_free(&p);
        }
    }
    free(one);
    free(file);
}

/* A member whose network does not load (a retype to an unknown type) and
 * one whose cycle faults are reported; the others still run; exit 1. */
static void test_failed_member(void **state)
{
    env *e = *state;
    char *file =
        grid_file(e, "fail.json",
                  "{\"sweep\": 1, \"base\": {\"network\": \"NET\"},\n"
                  " \"variants\": [{\"name\": \"ok\"},\n"
                  "   {\"name\": \"bad-type\", \"retype\": {\"accum/sum\": "
                  "\"no-such-type\"}},\n"
                  "   {\"name\": \"overflow\", \"params\": "
                  "{\"w/accum/sum/accum/accum/sum/single\": 1e300, "
                  "\"w/accum/sum/delta/identity/const/single\": 1e300}}],\n"
                  " \"measure\": {\"steps\": 3, \"score\": "
                  "\"accum/sum/single/apples\"}}\n");
    for (int np = 0; np <= (e->mpirun ? 2 : 0); np += 2) {
        proc p;
        sweep(e, &p, file, np, np ? NULL : "2");
        expect_code(&p, 1);
        assert_non_null(strstr(p.out, "\"variant\": \"ok\"}, \"result\": "
                                      "{\"score\": 3}"));
        assert_non_null(strstr(p.out, "\"variant\": \"bad-type\"}, "
                                      "\"error\": \"the member's network: "));
        assert_non_null(strstr(p.out, "no-such-type"));
        assert_non_null(strstr(p.out, "\"variant\": \"overflow\"}, "
                                      "\"error\": \"cycle "));
        assert_non_null(strstr(p.out, "\"failed\": 1"));
        proc_free(&p);
    }
    free(file);
}

/* Bad sweep files: file:line:column: /json/path: message, exit 1. */
static void test_bad_files(void **state)
{
    env *e = *state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"sweep\": 1,\n \"base\": {\"experiment\": \"double-slit\"},\n"
         " \"seeds\": [1, -2]}\n",
         ":3:15: /seeds/1: expected a whole number"},
        {"{\"sweep\": 1,\n \"base\": {\"experiment\": \"double-slit\"},\n"
         " \"grid\": {\"plot\": [\"a.png\"]}}\n",
         ":3:19: /grid/plot: \"plot\" is not an option of dmm experiment"},
        {"{\"sweep\": 2, \"base\": {\"experiment\": \"x\"}}\n",
         ":1:11: /sweep: this dmm reads sweep format 1"},
        {"{\"sweep\": 1,\n \"base\": {\"experiment\": \"double-slit\"},\n"
         " \"variants\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}\n",
         ":3:39: /variants/1/name: variant \"a\" appears twice"},
        {"{\"sweep\": 1, \"base\": {\"experiment\": \"double-slit\"}, "
         "\"grid\": {\"seed\": [1,]}}\n",
         ":1:"},
        {"{\"sweep\": 1,\n \"base\": {\"network\": \"NET\"},\n"
         " \"measure\": {\"steps\": 3, \"paths\": [\"a/b\"]},\n"
         " \"grid\": {\"w/accum/sum\": [1]}}\n",
         ":4:26: /grid/w~1accum~1sum: \"w/accum/sum\" is not a network key"},
        {"{\"sweep\": 1,\n \"base\": {\"network\": \"NET\"},\n"
         " \"grid\": {\"seed\": [1]}}\n",
         ": a network sweep needs \"measure\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *file = grid_file(e, "bad.json", cases[i].text);
        proc p;
        sweep(e, &p, file, 0, NULL);
        expect_code(&p, 1);
        if (!strstr(p.err, cases[i].want) || strncmp(p.err, file, strlen(file)))
            fail_msg("case %zu: stderr %s, expected %s%s", i, p.err, file,
                     cases[i].want);
        assert_string_equal(p.out, "");
        proc_free(&p);
        free(file);
    }
}

/* Experiment members: `dmm experiment double-slit` per member, its line
 * (timings cut) as the result; a bad option value is a failed member. */
static void test_experiment_members(void **state)
{
    env *e = *state;
    char *file = write_file(
        e, "ds.json",
        "{\"sweep\": 1, \"base\": {\"experiment\": \"double-slit\"},\n"
        " \"grid\": {\"variant\": [\"corrected\", \"sideways\"]},\n"
        " \"seeds\": [1, 2]}\n");
    proc p;
    sweep(e, &p, file, 0, "2");
    expect_code(&p, 1);
    char *n = normalise(p.out);
    /* the corrected variant separates the classes on every seed */
    assert_non_null(strstr(n,
                           "{\"member\": {\"index\": 0, \"variant\": "
                           "\"corrected\", \"seed\": 1}, \"result\": "
                           "{\"experiment\": \"double-slit\", \"engine\": "
                           "\"direct\", \"seed\": 1, \"variant\": "
                           "\"corrected\", \"noise\": \"per-sample\", "
                           "\"horizon\": 60, \"friend\": 0.8, \"foe\": -0.8, "
                           "\"eta_friend\": 0.1, \"eta_stranger\": -0.01, "
                           "\"eta_foe\": -0.1, \"accuracy\": 1, "));
    assert_null(strstr(n, "elapsed_seconds"));
    assert_non_null(strstr(n, "{\"member\": {\"index\": 3, \"variant\": "
                              "\"sideways\", \"seed\": 2}, \"error\": \"dmm "
                              "experiment exited with 2: "));
    assert_non_null(strstr(n, "\"group\": {\"variant\": \"corrected\"}, "
                              "\"members\": 2, \"failed\": 0, \"fields\": "
                              "{\"seed\": {\"mean\": 1.5, "));
    free(n);
    proc_free(&p);
    free(file);
}

/* Write an IDX file dir/name: magic 0x0803 (images, n x 28 x 28) or 0x0801
 * (labels), then the bytes. */
static void write_idx(const char *dir, const char *name, int images,
                      const uint8_t *bytes, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint8_t head[16] = {0, 0, 8, images ? 3 : 1};
    for (int k = 0; k < 4; k++)
        head[4 + k] = (uint8_t)(n >> (24 - 8 * k));
    head[11] = head[15] = images ? 28 : 0;
    assert_int_equal(fwrite(head, 1, images ? 16 : 8, f), images ? 16 : 8);
    size_t len = images ? n * 784 : n;
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Synthetic digits in the MNIST layout: labels cycle 0..4, a bright 9 x 9
 * block whose corner depends on the digit, shifted by up to 2 pixels. */
static void write_digits(const char *dir, const char *prefix, size_t n,
                         unsigned seed)
{
    uint8_t *img = calloc(n, 784), *lab = malloc(n);
    assert_non_null(img);
    assert_non_null(lab);
    static const int at[5][2] = {{3, 3}, {3, 15}, {15, 15}, {9, 9}, {15, 3}};
    for (size_t i = 0; i < n; i++) {
        int d = (int)(i % 5);
        lab[i] = (uint8_t)d;
        seed = seed * 1103515245u + 12345u;
        int y0 = at[d][0] + (int)((seed >> 16) % 5) - 2;
        seed = seed * 1103515245u + 12345u;
        int x0 = at[d][1] + (int)((seed >> 16) % 5) - 2;
        for (int y = y0; y < y0 + 9; y++)
            for (int x = x0; x < x0 + 9; x++)
                img[i * 784 + (size_t)y * 28 + (size_t)x] = 220;
    }
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    write_idx(dir, name, 1, img, n);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    write_idx(dir, name, 0, lab, n);
    free(img);
    free(lab);
}

/* `ties` is a key of an mnist-fewshot sweep like any option of dmm
 * experiment: each member runs with --ties, its result line says which
 * rule it ran under, and the members group by it. */
static void test_experiment_ties(void **state)
{
    env *e = *state;
    char *dir = path_in(e, "digits");
    mkdir(dir, 0755);
    write_digits(dir, "train", 5020, 7);
    write_digits(dir, "t10k", 4900, 8);
    char *text = malloc(strlen(dir) + 256);
    assert_non_null(text);
    sprintf(text,
            "{\"sweep\": 1, \"base\": {\"experiment\": \"mnist-fewshot\", "
            "\"options\": {\"data\": \"%s\", \"shots\": 1}},\n"
            " \"grid\": {\"ties\": [\"first\", \"peak\"]}, \"seeds\": [3]}\n",
            dir);
    char *file = write_file(e, "ties.json", text);
    proc p;
    sweep(e, &p, file, 0, "2");
    expect_code(&p, 0);
    char *n = normalise(p.out);
    static const char *const rule[2] = {"first", "peak"};
    for (int k = 0; k < 2; k++) {
        char want[256];
        snprintf(want, sizeof want,
                 "{\"member\": {\"index\": %d, \"ties\": \"%s\", \"seed\": "
                 "3}, \"result\": {\"experiment\": \"mnist-fewshot\", ",
                 k, rule[k]);
        assert_non_null(strstr(n, want));
        snprintf(want, sizeof want,
                 "\"horizon\": 25, \"ties\": \"%s\", \"friend\": 0.7, ",
                 rule[k]);
        assert_non_null(strstr(n, want));
        snprintf(want, sizeof want,
                 "{\"summary\": {\"group\": {\"ties\": \"%s\"}, "
                 "\"members\": 1, \"failed\": 0, ",
                 rule[k]);
        assert_non_null(strstr(n, want));
    }
    free(n);
    proc_free(&p);
    free(file);
    free(text);
    static const char *const names[] = {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int k = 0; k < 4; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        unlink(path);
    }
    rmdir(dir);
    free(dir);
}

/* The search: the accumulator's weight is evolved until 10 cycles give
 * apples = 25 (w = 2.5). Three generations with a checkpoint, then six from
 * it, end exactly where six uninterrupted generations end. */
static void test_evolve_resume(void **state)
{
    env *e = *state;
    static const char text[] =
        "{\"sweep\": 1, \"base\": {\"network\": \"NET\"},\n"
        " \"measure\": {\"steps\": 10, \"score\": "
        "\"accum/sum/single/apples\"},\n"
        " \"evolve\": {\"generations\": GEN, \"population\": 8, \"keep\": 2,\n"
        "   \"seed\": 3, \"score\": \"score\", \"goal\": {\"target\": 25},\n"
        "   \"genes\": {\"w/accum/sum/delta/identity/const/single\": "
        "{\"min\": 0, \"max\": 4, \"start\": 0.5, \"sigma\": 0.5}}}}\n";
    char *t6 = strdup(text), *t3 = strdup(text);
    memcpy(strstr(t6, "GEN"), "  6", 3);
    memcpy(strstr(t3, "GEN"), "  3", 3);
    char *f6 = grid_file(e, "evo6.json", t6),
         *f3 = grid_file(e, "evo3.json", t3);
    char *ck = path_in(e, "evo.checkpoint");
    unlink(ck);
    proc full, a, b;
    sweep(e, &full, f6, 0, "2");
    expect_code(&full, 0);
    const char *argv3[] = {e->exe, "sweep", f3, "--checkpoint", ck, NULL};
    run(e, &a, argv3);
    expect_code(&a, 0);
    const char *argv6[] = {e->exe, "sweep", f6, "--checkpoint", ck, NULL};
    run(e, &b, argv6);
    expect_code(&b, 0);
    /* the last line is {"best": ...}: the same, and better than the start */
    const char *bf = strstr(full.out, "{\"best\": "),
               *bb = strstr(b.out, "{\"best\": ");
    assert_non_null(bf);
    assert_non_null(bb);
    assert_string_equal(bf, bb);
    json_error_t je;
    json_t *j = json_loads(bf, 0, &je);
    assert_non_null(j);
    double score =
        json_number_value(json_object_get(json_object_get(j, "best"), "score"));
    assert_true(fabs(score - 25) < 20.0); /* start: w 0.5, apples 5 */
    assert_true(json_array_size(json_object_get(json_object_get(j, "best"),
                                                "lineage")) > 0);
    json_decref(j);
    /* the resumed run printed generations 3..5 only */
    assert_null(strstr(b.out, "{\"generation\": 2,"));
    assert_non_null(strstr(b.out, "{\"generation\": 5,"));
    proc_free(&full);
    proc_free(&a);
    proc_free(&b);
    unlink(ck);
    free(ck);
    free(f6);
    free(f3);
    free(t6);
    free(t3);
}

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    if (!e || !(e->exe = getenv("DMM_EXE")))
        return -1;
    e->mpirun = getenv("DMM_MPIRUN");
    if (e->mpirun && !*e->mpirun)
        e->mpirun = NULL;
    if (e->mpirun) {
        /* Under sanitizers Open MPI's own allocations kept until exit are
         * suppressed (tests/lsan-mpi.supp names only its libraries; full
         * unwinding so that the frames inside them are seen). The children
         * of mpirun inherit this environment; the runs without mpirun
         * check leaks as before, with nothing suppressed that is dmm's. */
        char *supp = tu_path("tests/lsan-mpi.supp");
        char opt[1200];
        snprintf(opt, sizeof opt, "suppressions=%s", supp);
        free(supp);
        setenv("LSAN_OPTIONS", opt, 1);
        const char *asan = getenv("ASAN_OPTIONS");
        snprintf(opt, sizeof opt, "%s%sfast_unwind_on_malloc=0",
                 asan ? asan : "", asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opt, 1);
        setenv("OMPI_MCA_mca_base_component_disable_dlclose", "1", 1);
    }
    snprintf(e->dir, sizeof e->dir, "/tmp/dmm-test-sweep-XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    DIR *d = opendir(e->dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", e->dir, de->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(e->dir);
    free(e);
    return 0;
}

/* The smallest p with which the lines of out (one per cycle, as `dmm run
 * --trace` prints them, the step number cut off) repeat over the second
 * half; 0 if none. */
static int trace_period(const char *out)
{
    enum { MAXL = 256 };
    char *copy = strdup(out), *line[MAXL];
    assert_non_null(copy);
    int n = 0;
    for (char *l = strtok(copy, "\n"); l && n < MAXL; l = strtok(NULL, "\n")) {
        char *o = strstr(l, "\"outputs\": ");
        assert_non_null(o);
        line[n++] = o;
    }
    int found = 0;
    for (int p = 1; p <= n / 2 && !found; p++) {
        int ok = 1;
        for (int t = n / 2; t < n && ok; t++)
            ok = !strcmp(line[t], line[t - p]);
        if (ok)
            found = p;
    }
    free(copy);
    return found;
}

/* The period of networks/wave-rings.json's wave (the delta row of W) over
 * 40 cycles of `dmm run`, with W_0's links into Self's delta set from the
 * genes of an evolve's best (NULL: the file's). */
static int wave_period(const env *e, json_t *genes)
{
    char *netpath = tu_path("networks/wave-rings.json");
    json_error_t je;
    json_t *net = json_load_file(netpath, 0, &je);
    assert_non_null(net);
    json_t *row = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(net, "matrix"), "accum"),
                "self"),
            "delta"),
        "identity");
    assert_non_null(row);
    const char *key;
    json_t *v;
    json_object_foreach(genes, key, v)
    {
        /* w/accum/self/delta/identity/NAME/single */
        const char *pre = "w/accum/self/delta/identity/";
        assert_int_equal(strncmp(key, pre, strlen(pre)), 0);
        char name[64];
        snprintf(name, sizeof name, "%s", key + strlen(pre));
        char *slash = strchr(name, '/');
        assert_non_null(slash);
        assert_string_equal(slash, "/single");
        *slash = 0;
        double w = json_number_value(v);
        json_object_del(row, name);
        if (w != 0)
            json_object_set_new(row, name, json_pack("{s:f}", "single", w));
    }
    char *file = path_in(e, "wave-found.json");
    assert_int_equal(json_dump_file(net, file, JSON_INDENT(1)), 0);
    json_decref(net);
    proc p;
    const char *argv[] = {
        e->exe,    "run",      file,
        "--steps", "40",       "--trace",
        "--self",  "--select", "accum/self/single/accum/self/delta",
        NULL};
    run(e, &p, argv);
    expect_code(&p, 0);
    int period = trace_period(p.out);
    proc_free(&p);
    unlink(file);
    free(file);
    free(netpath);
    return period;
}

/*
 * networks/sweeps/wave-period5.json: an evolutionary search over which
 * update neurons W_0 links into Self's delta in networks/wave-rings.json
 * (rings of 2, 3, 4 and 5), for a wave of period 5. The file's W_0 (the
 * link at ring2-1, as wave.json's at update-1) has period 2; the search
 * (seed 1) reaches 5, and the W it reports, run by `dmm run`, repeats with
 * period 5 and no shorter one.
 */
static void test_evolve_wave_period5(void **state)
{
    env *e = *state;
    char *file = tu_path("networks/sweeps/wave-period5.json");
    proc p;
    sweep(e, &p, file, 0, "2");
    expect_code(&p, 0);
    const char *bl = strstr(p.out, "{\"best\": ");
    assert_non_null(bl);
    json_error_t je;
    json_t *j = json_loads(bl, 0, &je);
    assert_non_null(j);
    json_t *best = json_object_get(j, "best");
    assert_true(json_number_value(json_object_get(best, "score")) == 5);
    /* the start is not already the answer */
    assert_null(strstr(p.out, "{\"generation\": 0, \"best\": {\"id\": "
                              "\"g0.0\""));
    json_t *none = json_object();
    assert_int_equal(wave_period(e, none), 2);
    json_decref(none);
    assert_int_equal(wave_period(e, json_object_get(best, "genes")), 5);
    json_decref(j);
    proc_free(&p);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_members),
        cmocka_unit_test(test_same_lines_everywhere),
        cmocka_unit_test(test_failed_member),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_experiment_members),
        cmocka_unit_test(test_experiment_ties),
        cmocka_unit_test(test_evolve_resume),
        cmocka_unit_test(test_evolve_wave_period5),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
