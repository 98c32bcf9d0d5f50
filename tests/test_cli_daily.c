// SPDX-License-Identifier: MIT
/*
 * The daily loop of the `dmm` command (issue 16), run through the built
 * binary (env DMM_EXE) as a user would: traces that can be read (Self left
 * out, --select, --format), warnings instead of silent mistakes, option
 * suggestions, and neuron types loaded from plugins.
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

extern char **environ;

typedef struct env {
    char dir[64]; /* scratch directory of this program */
    const char *exe;
    pid_t serve; /* a dmm serve not yet stopped (killed by teardown) */
} env;

typedef tu_proc proc;

static void proc_free(proc *p)
{
    tu_proc_free(p);
}

static char *scratch(const env *e, const char *name)
{
    return tu_path_in(e->dir, name);
}

static char *write_scratch(const env *e, const char *name, const char *text)
{
    return tu_write_in(e->dir, name, text);
}

/* Run dmm with args; stdin is the file in (NULL: /dev/null). */
static void run_in(const env *e, proc *p, const char *in,
                   const char *const *args)
{
    tu_run_in(e->exe, e->dir, p, in, args);
}

static void run_dmm(const env *e, proc *p, const char *const *args)
{
    run_in(e, p, NULL, args);
}

static void expect_code(const proc *p, int code)
{
    tu_expect_code(p, code);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* new: the JSON documents of text, one after another, as an array. */
static json_t *parse_all(const char *text)
{
    json_t *a = json_array();
    size_t off = 0, len = strlen(text);
    while (off < len) {
        while (off < len && (text[off] == '\n' || text[off] == ' '))
            off++;
        if (off == len)
            break;
        json_error_t jerr;
        json_t *j =
            json_loadb(text + off, len - off, JSON_DISABLE_EOF_CHECK, &jerr);
        if (!j)
            fail_msg("bad JSON at byte %zu: %s", off, jerr.text);
        json_array_append_new(a, j);
        off += jerr.position;
    }
    return a;
}

/* ---- traces -------------------------------------------------------------- */

/* A trace leaves Self (W) out unless asked; its lines are short. */
static void test_trace_leaves_self_out(void **state)
{
    env *e = *state;
    char *net = tu_path("networks/wave.json");
    proc p, q;
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "12", "--trace", NULL});
    expect_code(&p, 0);
    run_dmm(e, &q,
            (const char *[]){"run", net, "--steps", "12", "--trace", "--self",
                             NULL});
    expect_code(&q, 0);
    json_t *a = parse_all(p.out), *b = parse_all(q.out);
    assert_int_equal(json_array_size(a), 12);
    assert_int_equal(json_array_size(b), 12);
    for (size_t t = 0; t < 12; t++) {
        json_t *ya = json_object_get(json_array_get(a, t), "outputs");
        json_t *yb = json_object_get(json_array_get(b, t), "outputs");
        /* The full form has Self; the default has exactly the rest. */
        assert_non_null(json_object_get(json_object_get(yb, "accum"), "self"));
        assert_null(json_object_get(ya, "accum"));
        json_object_del(yb, "accum");
        assert_true(json_equal(ya, yb));
    }
    /* Each default line is shorter than the full one. */
    assert_true(strlen(p.out) < strlen(q.out));
    json_decref(a);
    json_decref(b);
    proc_free(&p);
    proc_free(&q);
    free(net);
}

/* --select with `*`, and the flat format: "STEP PATH VALUE" lines that say
 * the same as the JSON trace. For the wave: which update neuron feeds Self's
 * delta each cycle. */
static void test_trace_select_flat(void **state)
{
    env *e = *state;
    char *net = tu_path("networks/wave.json");
    const char *prefix = "accum/self/single/accum/self/delta/identity";
    proc p, q;
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "6", "--trace", "--format",
                             "flat", "--select", prefix, NULL});
    expect_code(&p, 0);
    run_dmm(e, &q,
            (const char *[]){"run", net, "--steps", "6", "--trace", "--self",
                             NULL});
    expect_code(&q, 0);
    json_t *full = parse_all(q.out);
    assert_int_equal(count_lines(p.out), 6);
    const char *line = p.out;
    char prev[64] = "";
    for (size_t t = 1; t <= 6; t++) {
        unsigned long long step;
        char path[256];
        double x;
        assert_int_equal(sscanf(line, "%llu %255s %lf", &step, path, &x), 3);
        assert_int_equal(step, t);
        assert_memory_equal(path, prefix, strlen(prefix));
        /* path = prefix/update-K/single: check it against the JSON form */
        char name[64];
        assert_int_equal(sscanf(path + strlen(prefix), "/%63[^/]/single", name),
                         1);
        json_t *row = json_object_get(json_array_get(full, t - 1), "outputs");
        const char *keys[] = {"accum", "self",  "single",  "accum",
                              "self",  "delta", "identity"};
        for (size_t k = 0; k < 7; k++)
            row = json_object_get(row, keys[k]);
        assert_int_equal(json_object_size(row), 1);
        double want = json_number_value(
            json_object_get(json_object_get(row, name), "single"));
        assert_true(want == x);
        /* the wave moves: a different neuron every cycle */
        assert_string_not_equal(name, prev);
        snprintf(prev, sizeof prev, "%s", name);
        line = strchr(line, '\n') + 1;
    }
    json_decref(full);
    proc_free(&p);
    proc_free(&q);

    /* `*` matches one level; several --select are a union */
    char *acc = tu_path("networks/accumulator.json");
    run_dmm(e, &p,
            (const char *[]){"run", acc, "--steps", "3", "--format", "flat",
                             "--select", "identity/*/single", "--select",
                             "accum/sum", NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, "3 accum/sum/single/apples 3\n"
                               "3 accum/sum/single/pears 1.5\n"
                               "3 identity/const/single/apples 1\n"
                               "3 identity/const/single/pears 0.5\n");
    proc_free(&p);
    /* selecting reads labels, never interns them: the saved state (label
     * table included) is the same with and without --select */
    char *s1 = scratch(e, "s1.json"), *s2 = scratch(e, "s2.json");
    run_dmm(e, &p,
            (const char *[]){"run", acc, "--steps", "2", "--save", s1, NULL});
    expect_code(&p, 0);
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"run", acc, "--steps", "2", "--trace", "--select",
                             "new-type/*/never-seen", "--save", s2, NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, "{\"step\": 1, \"outputs\": {}}\n"
                               "{\"step\": 2, \"outputs\": {}}\n");
    proc_free(&p);
    char *t1 = tu_read_file(s1, NULL), *t2 = tu_read_file(s2, NULL);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
    free(s1);
    free(s2);
    /* a prefix that names nothing prints an empty map */
    run_dmm(e, &p,
            (const char *[]){"run", acc, "--steps", "1", "--select", "nothing",
                             NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, "{\"step\": 1, \"outputs\": {}}\n");
    proc_free(&p);
    free(acc);
    free(net);
}

/* --format pretty is the same document as the JSON line, indented. */
static void test_trace_pretty(void **state)
{
    env *e = *state;
    char *net = tu_path("networks/char-count.json");
    char *script = tu_path("networks/char-count.script.jsonl");
    proc p, q;
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "5", "--trace", "--script",
                             script, "--format", "pretty", NULL});
    expect_code(&p, 0);
    run_dmm(e, &q,
            (const char *[]){"run", net, "--steps", "5", "--trace", "--script",
                             script, NULL});
    expect_code(&q, 0);
    assert_true(count_lines(p.out) > 2 * count_lines(q.out));
    assert_non_null(strstr(p.out, "\n  \"outputs\": {\n    \""));
    json_t *a = parse_all(p.out), *b = parse_all(q.out);
    assert_int_equal(json_array_size(a), 5);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    proc_free(&p);
    proc_free(&q);

    run_dmm(
        e, &p,
        (const char *[]){"run", net, "--steps", "1", "--format", "yaml", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--format: expected json, pretty or flat"));
    proc_free(&p);
    free(net);
    free(script);
}

/* ---- silent mistakes ------------------------------------------------------
 */

/* A misspelt source neuron passes the load (the term reads zero) but check
 * warns, naming the weight and the closest real neuron; the bundled
 * networks get no warning. */
static void test_check_unproduced_source(void **state)
{
    env *e = *state;
    char *good = tu_path("networks/accumulator.json");
    char *text = tu_read_file(good, NULL);
    assert_non_null(text);
    char *at = strstr(text, "\"delta\": {\"identity\": {\"const\"");
    assert_non_null(at);
    memcpy(strstr(at, "const"), "cosnt", 5);
    char *bad = write_scratch(e, "typo.json", text);
    proc p;
    run_dmm(e, &p, (const char *[]){"check", bad, NULL});
    expect_code(&p, 0);
    assert_non_null(strstr(p.out, "typo.json: ok"));
    assert_non_null(strstr(p.err, "typo.json: warning: "
                                  "/matrix/accum/sum/delta/identity/cosnt: "
                                  "no neuron produces \"identity/cosnt\""));
    assert_non_null(strstr(p.err, "did you mean \"identity/const\"?"));
    assert_int_equal(count_lines(p.err), 1);
    proc_free(&p);

    /* the run shows why: the sum stays empty */
    run_dmm(e, &p,
            (const char *[]){"run", bad, "--steps", "3", "--select",
                             "accum/sum", NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, "{\"step\": 3, \"outputs\": {}}\n");
    proc_free(&p);

    /* mnist-learners: its routes name delay lines no neuron is, on inputs
     * the learner never computes, so they are no terms to warn of */
    const char *nets[] = {
        "accumulator", "attention",      "char-count",        "cons-list",
        "grow",        "hysteresis",     "reader-accum",      "wave",
        "double-slit", "mnist-learners", "mnist-interference"};
    for (size_t k = 0; k < sizeof nets / sizeof *nets; k++) {
        char rel[96];
        snprintf(rel, sizeof rel, "networks/%s.json", nets[k]);
        char *net = tu_path(rel);
        run_dmm(e, &p, (const char *[]){"check", net, NULL});
        expect_code(&p, 0);
        assert_string_equal(p.err, "");
        proc_free(&p);
        free(net);
    }
    free(text);
    free(bad);
    free(good);
}

/* A mistyped option or command gets the closest one from the command
 * table; a word far from every option gets none. */
static void test_option_suggestions(void **state)
{
    env *e = *state;
    static const struct {
        const char *args[4];
        const char *want;
    } cases[] = {
        {{"run", "--stpes", "3"},
         "dmm run: unknown option \"--stpes\" "
         "(did you mean \"--steps\"?)\n"},
        {{"run", "--selct=a"}, "(did you mean \"--select\"?)"},
        {{"run", "--trcae"}, "(did you mean \"--trace\"?)"},
        {{"check", "--scirpt", "x"}, "(did you mean \"--script\"?)"},
        {{"serve", "--rat", "3"}, "(did you mean \"--rate\"?)"},
        {{"serve", "--max-client", "3"}, "(did you mean \"--max-clients\"?)"},
        {{"experiment", "double-slit", "--sede"}, "(did you mean \"--seed\"?)"},
        {{"rnu"}, "dmm: unknown command \"rnu\" (did you mean \"run\"?)"},
        {{"run", "--frobnicate"},
         "dmm run: unknown option "
         "\"--frobnicate\"\nusage:"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const char *args[5] = {0};
        for (size_t j = 0; j < 4 && cases[k].args[j]; j++)
            args[j] = cases[k].args[j];
        proc p;
        run_dmm(e, &p, args);
        expect_code(&p, 2);
        if (!strstr(p.err, cases[k].want))
            fail_msg("case %zu: stderr\n%s\nlacks\n%s", k, p.err,
                     cases[k].want);
        proc_free(&p);
    }
}

/* Spawn `dmm serve NET --paused --socket PATH` and wait for its address
 * line; returns the pid. */
static pid_t serve_start(const env *e, const char *net, const char *sock,
                         const char *plugin)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    char *log = scratch(e, "serve.err");
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    free(log);
    const char *argv[] = {e->exe, "serve",    net,    "--paused", "--socket",
                          sock,   "--plugin", plugin, NULL};
    if (!plugin)
        argv[6] = NULL;
    pid_t pid;
    assert_int_equal(
        posix_spawn(&pid, e->exe, &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    ((env *)e)->serve = pid;
    char ch;
    while (read(pfd[0], &ch, 1) == 1 && ch != '\n')
        ;
    close(pfd[0]);
    return pid;
}

static void serve_stop(const env *e, pid_t pid, const char *sock)
{
    proc p;
    run_dmm(e, &p, (const char *[]){"ctl", "--socket", sock, "shutdown", NULL});
    proc_free(&p);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    ((env *)e)->serve = 0;
}

/* ctl get of a path that names nothing is an error, not "{}" and exit 0. */
static void test_ctl_get_nothing(void **state)
{
    env *e = *state;
    char *net = tu_path("networks/accumulator.json");
    char *sock = scratch(e, "get.sock");
    pid_t pid = serve_start(e, net, sock, NULL);
    proc p;
    run_dmm(e, &p,
            (const char *[]){"ctl", "--socket", sock, "step", "2", NULL});
    expect_code(&p, 0);
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"ctl", "--socket", sock, "get", "accum/sum/single",
                             NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, "{\"apples\":2,\"pears\":1}\n");
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"ctl", "--socket", sock, "get", "accum/sum/singel",
                             NULL});
    expect_code(&p, 1);
    assert_string_equal(p.out, "");
    assert_non_null(strstr(p.err, "nothing is stored under "
                                  "\"accum/sum/singel\""));
    proc_free(&p);
    serve_stop(e, pid, sock);
    free(sock);
    free(net);
}

/* ---- plugins ---------------------------------------------------------------
 */

static double num_at(json_t *j, const char *const *keys)
{
    for (; *keys; keys++)
        j = json_object_get(j, *keys);
    return json_number_value(j);
}

/* examples/custom_neuron.so registers `clip`; dmm run loads it and runs
 * examples/clip.json, whose clip neuron limits a ramp to +-2.5: each step's
 * clip output is the ramp of the step before, limited. */
static void test_plugin_run(void **state)
{
    env *e = *state;
    const char *so = getenv("DMM_PLUGIN_CLIP");
    assert_non_null(so);
    char *net = tu_path("examples/clip.json");
    proc p;
    run_dmm(e, &p,
            (const char *[]){"run", "--plugin", so, net, "--steps", "8",
                             "--trace", NULL});
    expect_code(&p, 0);
    json_t *tr = parse_all(p.out);
    assert_int_equal(json_array_size(tr), 8);
    int clipped = 0;
    for (size_t t = 1; t < 8; t++) {
        json_t *prev = json_object_get(json_array_get(tr, t - 1), "outputs");
        json_t *cur = json_object_get(json_array_get(tr, t), "outputs");
        const char *dirs[] = {"up", "down"};
        for (int k = 0; k < 2; k++) {
            double ramp =
                num_at(prev, (const char *[]){"accum", "ramp", "single",
                                              dirs[k], NULL});
            double got = num_at(
                cur, (const char *[]){"clip", "limited", "x", dirs[k], NULL});
            double want = ramp > 2.5 ? 2.5 : ramp < -2.5 ? -2.5 : ramp;
            clipped += want != ramp;
            if (got != want)
                fail_msg("step %zu %s: clip %g, want %g", t + 1, dirs[k], got,
                         want);
        }
    }
    assert_true(clipped >= 4); /* the limit was reached, both ways */
    json_decref(tr);
    proc_free(&p);

    /* check and neurons know the type too */
    run_dmm(e, &p, (const char *[]){"check", "--plugin", so, net, NULL});
    expect_code(&p, 0);
    assert_string_equal(p.err, "");
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"neurons", "--plugin", so, NULL});
    expect_code(&p, 0);
    assert_non_null(strstr(p.out, "\nclip "));
    proc_free(&p);

    /* without the plugin the type is unknown */
    run_dmm(e, &p, (const char *[]){"run", net, "--steps", "1", NULL});
    expect_code(&p, 1);
    assert_non_null(strstr(p.err, "unknown neuron type \"clip\""));
    proc_free(&p);
    free(net);
}

/* A plugin built for another ABI, a file that is no shared object, and a
 * shared object that is no plugin are refused with a message, exit 1. */
static void test_plugin_refused(void **state)
{
    env *e = *state;
    const char *bad = getenv("DMM_PLUGIN_BAD_ABI");
    assert_non_null(bad);
    char *net = tu_path("networks/accumulator.json");
    char *text = write_scratch(e, "not-a-plugin.so", "hello\n");
    proc p;
    run_dmm(
        e, &p,
        (const char *[]){"run", "--plugin", bad, net, "--steps", "1", NULL});
    expect_code(&p, 1);
    assert_non_null(
        strstr(p.err, "built for plugin ABI 4, this dmm has ABI 3"));
    assert_string_equal(p.out, "");
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"serve", "--plugin", text, net, NULL});
    expect_code(&p, 1);
    assert_non_null(strstr(p.err, "cannot load"));
    proc_free(&p);
    /* libdmm's own neighbour, the clip example, is a plugin; libc is not */
    run_dmm(e, &p,
            (const char *[]){"check", "--plugin",
                             "/lib/x86_64-linux-gnu/libm.so.6", net, NULL});
    expect_code(&p, 1);
    assert_non_null(strstr(p.err, "not a dmm plugin"));
    proc_free(&p);
    free(text);
    free(net);
}

/* dmm serve --plugin runs a network with the plugin's type. */
static void test_plugin_serve(void **state)
{
    env *e = *state;
    const char *so = getenv("DMM_PLUGIN_CLIP");
    char *net = tu_path("examples/clip.json");
    char *sock = scratch(e, "plugin.sock");
    pid_t pid = serve_start(e, net, sock, so);
    proc p;
    run_dmm(e, &p,
            (const char *[]){"ctl", "--socket", sock, "step", "6", NULL});
    expect_code(&p, 0);
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"ctl", "--socket", sock, "get", "clip/limited/x",
                             NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, "{\"down\":-2.5,\"up\":2.5}\n");
    proc_free(&p);
    serve_stop(e, pid, sock);
    free(sock);
    free(net);
}

/* ---- plots and progress
 * ------------------------------------------------------ */

static bool is_png(const char *path, size_t min_size)
{
    size_t n = 0;
    char *d = tu_read_file(path, &n);
    bool ok = d && n >= min_size && !memcmp(d, "\x89PNG\r\n\x1a\n", 8);
    free(d);
    return ok;
}

/* dmm plot draws the selected values of a trace (a file or stdin); what
 * selects nothing, a line that is not a trace line and a missing --out are
 * refused. */
static void test_plot(void **state)
{
    env *e = *state;
    char *net = tu_path("networks/hysteresis.json");
    proc p;
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "400", "--trace", NULL});
    expect_code(&p, 0);
    char *trace = write_scratch(e, "h.jsonl", p.out);
    proc_free(&p);
    char *png = scratch(e, "h.png");
    run_dmm(e, &p,
            (const char *[]){"plot", trace, "--select", "mean-field/*/mu",
                             "--select", "accum", "--out", png, NULL});
    expect_code(&p, 0);
    assert_true(is_png(png, 10000));
    proc_free(&p);
    unlink(png);

    /* from stdin, a matrix-valued path (a decaying sum of a 2x3 matrix)
     * as an image strip */
    char *mnet = write_scratch(
        e, "m.json",
        "{\"dmm\": 1, \"matrix\": {\"accum\": {"
        "\"self\": {\"accum\": {\"accum\": {\"self\": {\"single\": 1}}}},"
        "\"m\": {\"accum\": {\"accum\": {\"m\": {\"single\": 0.9}}},"
        "\"delta\": {\"identity\": {\"c\": {\"single\": 1}}}}},"
        "\"identity\": {\"c\": {\"single\": {\"identity\": {\"c\": "
        "{\"single\": 1}}}}}},"
        "\"outputs\": {\"identity\": {\"c\": {\"single\": {\"0\": {\"0\": "
        "1, \"1\": -1, \"2\": 0.2}, \"1\": {\"0\": 0.5, \"2\": 2}}}}}}");
    run_dmm(e, &p,
            (const char *[]){"run", mnet, "--steps", "30", "--trace", NULL});
    expect_code(&p, 0);
    char *mtrace = write_scratch(e, "m.jsonl", p.out);
    proc_free(&p);
    run_in(e, &p, mtrace,
           (const char *[]){"plot", "-", "--select", "accum/m/single", "--out",
                            png, "--title", "t", NULL});
    expect_code(&p, 0);
    assert_true(is_png(png, 5000));
    proc_free(&p);
    free(mnet);
    free(mtrace);

    run_dmm(e, &p,
            (const char *[]){"plot", trace, "--select", "no/such", "--out", png,
                             NULL});
    expect_code(&p, 1);
    assert_non_null(strstr(p.err, "nothing under the selected paths"));
    proc_free(&p);
    char *bad = write_scratch(e, "bad.jsonl",
                              "{\"step\": 1, \"outputs\": {}}\n{\"x\": 1}\n");
    run_dmm(e, &p,
            (const char *[]){"plot", bad, "--select", "a", "--out", png, NULL});
    expect_code(&p, 1);
    assert_non_null(strstr(p.err, "bad.jsonl:2: not a trace line"));
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"plot", trace, "--select", "a", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "missing --out"));
    proc_free(&p);
    free(bad);
    free(png);
    free(trace);
    free(net);
}

/* A run draws a bar with the rate and the time left on stderr, erased at
 * the end; not when stderr is a file (piped). DMM_PROGRESS=now draws from
 * the first cycle, as a terminal shows it after a second, so the test does
 * not depend on the machine's speed. */
static void test_progress(void **state)
{
    env *e = *state;
    char *net = tu_path("networks/wave.json");
    proc p;
    setenv("DMM_PROGRESS", "now", 1);
    run_dmm(e, &p, (const char *[]){"run", net, "--steps", "3000", NULL});
    unsetenv("DMM_PROGRESS");
    expect_code(&p, 0);
    assert_non_null(strstr(p.err, "/3000 cycles, "));
    assert_non_null(strstr(p.err, " cycles/s, "));
    assert_non_null(strstr(p.err, " s left"));
    size_t n = strlen(p.err);
    assert_true(n > 4 && !strcmp(p.err + n - 4, "\r\033[K"));
    assert_non_null(strstr(p.out, "{\"step\": 3000,"));
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"run", net, "--steps", "3000", NULL});
    expect_code(&p, 0);
    assert_string_equal(p.err, "");
    proc_free(&p);
    free(net);
}

/* dmm render and dmm sweep draw the same bar (cycles, members), erased at
 * the end, and nothing when stderr is not a terminal. */
static void test_progress_render_sweep(void **state)
{
    env *e = *state;
    char *net = tu_path("networks/visual/wave-ring.json");
    char *dir = scratch(e, "frames");
    const char *render[] = {"render",  net,  "--path", "accum/self/single",
                            "--steps", "40", "--out",  dir,
                            NULL};
    proc p;
    setenv("DMM_PROGRESS", "now", 1);
    run_dmm(e, &p, render);
    unsetenv("DMM_PROGRESS");
    expect_code(&p, 0);
    assert_non_null(strstr(p.err, "/40 cycles, "));
    assert_non_null(strstr(p.err, " cycles/s, "));
    size_t n = strlen(p.err);
    assert_true(n > 4 && !strcmp(p.err + n - 4, "\r\033[K"));
    proc_free(&p);
    run_dmm(e, &p, render);
    expect_code(&p, 0);
    assert_string_equal(p.err, "");
    proc_free(&p);
    for (int k = 1; k <= 40; k++) { /* teardown removes files only */
        char f[600];
        snprintf(f, sizeof f, "%s/frame-%06d.png", dir, k);
        assert_int_equal(unlink(f), 0);
    }
    assert_int_equal(rmdir(dir), 0);

    char *acc = tu_path("networks/accumulator.json");
    char text[1024];
    snprintf(
        text, sizeof text,
        "{\"sweep\": 1, \"base\": {\"network\": \"%s\"},\n"
        " \"grid\": {\"w/accum/sum/delta/identity/const/single\": "
        "[0.5, 1, 2]},\n"
        " \"seeds\": {\"from\": 1, \"count\": 2},\n"
        " \"measure\": {\"steps\": 5, \"paths\": [\"accum/sum/single\"]}}\n",
        acc);
    char *sw = write_scratch(e, "progress-sweep.json", text);
    setenv("DMM_PROGRESS", "now", 1);
    run_dmm(e, &p, (const char *[]){"sweep", sw, NULL});
    unsetenv("DMM_PROGRESS");
    expect_code(&p, 0);
    /* drawn again after each member line, with the count so far */
    assert_non_null(strstr(p.err, "] 1/6 members, "));
    assert_non_null(strstr(p.err, "] 6/6 members, "));
    assert_non_null(strstr(p.err, " members/s, "));
    n = strlen(p.err);
    assert_true(n > 4 && !strcmp(p.err + n - 4, "\r\033[K"));
    assert_int_equal(count_lines(p.out), 6 + 3); /* members, summaries */
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"sweep", sw, NULL});
    expect_code(&p, 0);
    assert_string_equal(p.err, "");
    proc_free(&p);
    unlink(sw);
    free(sw);
    free(acc);
    free(dir);
    free(net);
}

/* ---- dmm ctl, interactive ---------------------------------------------------
 */

/* Without OP, ctl reads commands from stdin in the words of its command line
 * and prints every reply and watched change as it comes; it waits for the
 * replies due when the input ends; a failed command makes the exit code 1. */
static void test_ctl_interactive(void **state)
{
    env *e = *state;
    char *net = tu_path("networks/accumulator.json");
    char *sock = scratch(e, "i.sock");
    pid_t pid = serve_start(e, net, sock, NULL);
    char *in =
        write_scratch(e, "cmds.txt",
                      "# comments and blank lines are skipped\n"
                      "\n"
                      "step 2\n"
                      "get accum/sum/single\n"
                      "watch accum/sum/single\n"
                      "set 'accum/sum/delta/identity/const/single' -0.5\n"
                      "step 2\n"
                      "{\"op\": \"status\", \"id\": 77}\n"
                      "get accum/sum/single\n");
    proc p;
    run_in(e, &p, in, (const char *[]){"ctl", "--socket", sock, NULL});
    expect_code(&p, 0);
    /* replies in order, the watch lines between */
    const char *want[] = {
        "{\"id\": 1, \"ok\": true, \"step\": 2}\n",
        "{\"apples\":2,\"pears\":1}\n",
        "3 accum/sum/single {\"apples\":1.5,\"pears\":0.75}\n",
        "4 accum/sum/single {\"apples\":1,\"pears\":0.5}\n",
        "{\"id\": 77, \"ok\": true, \"step\": 4,",
        "\n{\"apples\":1,\"pears\":0.5}\n",
    };
    const char *at = p.out;
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        const char *f = strstr(at, want[k]);
        if (!f)
            fail_msg("missing, in order: %s\nstdout:\n%s", want[k], p.out);
        at = f + strlen(want[k]);
    }
    assert_string_equal(p.err, "");
    proc_free(&p);

    /* errors are reported and the session goes on; exit 1 at the end */
    char *in2 = write_scratch(e, "cmds2.txt",
                              "get accum/sum/singel\n"
                              "set accum/sum/single notanumber\n"
                              "frobnicate\n"
                              "get accum/sum/single\n"
                              "quit\n"
                              "get accum/sum/single\n");
    run_in(e, &p, in2, (const char *[]){"ctl", "--socket", sock, NULL});
    expect_code(&p, 1);
    assert_non_null(strstr(p.err, "nothing is stored under "
                                  "\"accum/sum/singel\""));
    assert_non_null(strstr(p.err, "is not a number"));
    assert_non_null(strstr(p.err, "\"frobnicate\""));
    /* one get answered before quit, none after */
    assert_string_equal(p.out, "{\"apples\":1,\"pears\":0.5}\n");
    proc_free(&p);
    serve_stop(e, pid, sock);
    free(in);
    free(in2);
    free(sock);
    free(net);
}

/* ---- experiments ----------------------------------------------------------
 */

/* The double slit's noise reading is an option: per sample (default) keeps
 * the corrected variant perfect; per step, the published code's reading,
 * misclassifies some trials of seed 6 (docs/experiments.md). */
static void test_double_slit_noise(void **state)
{
    env *e = *state;
    double acc[2];
    const char *noise[] = {"per-sample", "per-step"};
    for (int k = 0; k < 2; k++) {
        proc p;
        run_dmm(e, &p,
                (const char *[]){"experiment", "double-slit", "--seed", "6",
                                 "--variant", "corrected", "--noise", noise[k],
                                 NULL});
        expect_code(&p, 0);
        json_error_t je;
        json_t *j = json_loads(p.out, 0, &je);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "noise")),
                            noise[k]);
        assert_string_equal(json_string_value(json_object_get(j, "variant")),
                            "corrected");
        assert_int_equal(json_integer_value(json_object_get(j, "total")), 200);
        acc[k] = json_number_value(json_object_get(j, "accuracy"));
        json_decref(j);
        proc_free(&p);
    }
    assert_true(acc[0] == 1.0);
    assert_true(acc[1] < 1.0 && acc[1] > 0.5);
    proc p;
    run_dmm(e, &p,
            (const char *[]){"experiment", "double-slit", "--noise",
                             "sometimes", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--noise must be per-sample|per-step"));
    proc_free(&p);
}

/* Run dmm experiment args (NULL-terminated after the experiment's name),
 * expect exit 0 and return its JSON (new). */
static json_t *experiment_json(const env *e, const char *const *args)
{
    proc p;
    run_dmm(e, &p, args);
    expect_code(&p, 0);
    json_error_t je;
    json_t *j = json_loads(p.out, 0, &je);
    if (!j)
        fail_msg("not JSON: %s", p.out);
    proc_free(&p);
    return j;
}

static double jnum(const json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    assert_non_null(v);
    return json_number_value(v);
}

/* The thresholds and learning rates are options of both engines: they are
 * printed, they change the result, both engines agree on a non-default
 * setting, and 0 is refused by the network engine with the reason. */
static void test_experiment_learning_options(void **state)
{
    env *e = *state;
    const char *eng[2] = {"direct", "network"};
    json_t *def = experiment_json(
        e, (const char *[]){"experiment", "double-slit", "--seed", "3", NULL});
    assert_true(jnum(def, "friend") == 0.8);
    assert_true(jnum(def, "eta_stranger") == -0.01);
    json_t *j[2];
    for (int k = 0; k < 2; k++) {
        j[k] = experiment_json(
            e, (const char *[]){"experiment", "double-slit", "--seed", "3",
                                "--engine", eng[k], "--eta-friend", "0.2",
                                "--foe", "-0.9", NULL});
        assert_true(jnum(j[k], "eta_friend") == 0.2);
        assert_true(jnum(j[k], "foe") == -0.9);
        assert_true(jnum(j[k], "eta_foe") == -0.1);
    }
    assert_true(json_equal(json_object_get(j[0], "confusion"),
                           json_object_get(j[1], "confusion")));
    assert_false(json_equal(json_object_get(j[0], "confusion"),
                            json_object_get(def, "confusion")));
    json_decref(j[0]);
    json_decref(j[1]);
    json_decref(def);
    proc p;
    run_dmm(e, &p,
            (const char *[]){"experiment", "double-slit", "--engine", "network",
                             "--eta-stranger", "0", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--eta-stranger 0 cannot be run with "
                                  "--engine network"));
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"experiment", "double-slit", "--friend", "high",
                             NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--friend must be a finite number"));
    proc_free(&p);
    run_dmm(
        e, &p,
        (const char *[]){"experiment", "double-slit", "--eta-fo", "1", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "(did you mean \"--eta-foe\"?)"));
    proc_free(&p);
}

/* --horizon is an option of both engines: printed, the same predictions
 * from both on a non-default value, refused above 64 with the reason;
 * --geometry and --distance are mnist-fewshot's, refused for the double
 * slit with the reason, and checked by word. */
static void test_experiment_geometry_options(void **state)
{
    env *e = *state;
    char *f[2] = {scratch(e, "h-direct.csv"), scratch(e, "h-net.csv")};
    const char *eng[2] = {"direct", "network"};
    json_t *def = experiment_json(
        e, (const char *[]){"experiment", "double-slit", "--seed", "1", NULL});
    assert_true(jnum(def, "horizon") == 60);
    json_t *j[2];
    for (int k = 0; k < 2; k++) {
        j[k] = experiment_json(
            e, (const char *[]){"experiment", "double-slit", "--seed", "1",
                                "--engine", eng[k], "--horizon", "40",
                                "--predictions", f[k], NULL});
        assert_true(jnum(j[k], "horizon") == 40);
    }
    assert_true(json_equal(json_object_get(j[0], "confusion"),
                           json_object_get(j[1], "confusion")));
    /* seed 1 faithful: 0.89 at 60 steps, every trial right at 40 */
    assert_true(jnum(def, "accuracy") < 0.95);
    assert_true(jnum(j[0], "accuracy") == 1);
    char *a = tu_read_file(f[0], NULL), *b = tu_read_file(f[1], NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(j[0]);
    json_decref(j[1]);
    json_decref(def);
    proc p;
    run_dmm(
        e, &p,
        (const char *[]){"experiment", "double-slit", "--horizon", "65", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--horizon must be 1..64, not 65: 64 is "
                                  "the longest delay line"));
    proc_free(&p);
    run_dmm(
        e, &p,
        (const char *[]){"experiment", "double-slit", "--horizon", "0", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--horizon must be 1..64, not 0"));
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"experiment", "double-slit", "--geometry", "sides",
                             NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--geometry is for mnist-fewshot: the "
                                  "double slit's sources"));
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"experiment", "mnist-fewshot", "--data", "none",
                             "--distance", "taxicab", NULL});
    expect_code(&p, 2);
    assert_non_null(
        strstr(p.err, "--distance must be manhattan|euclidean|chebyshev, not "
                      "\"taxicab\""));
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"experiment", "mnist-fewshot", "--data", "none",
                             "--geometry", "ring", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--geometry must be corners|sides"));
    proc_free(&p);
    /* --ties is mnist-fewshot's: checked by word, refused for the double
     * slit with the reason */
    run_dmm(e, &p,
            (const char *[]){"experiment", "mnist-fewshot", "--data", "none",
                             "--ties", "last", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--ties must be first|peak, not \"last\""));
    proc_free(&p);
    run_dmm(
        e, &p,
        (const char *[]){"experiment", "double-slit", "--ties", "peak", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--ties is for mnist-fewshot: the double "
                                  "slit's scores are time-means"));
    proc_free(&p);
    unlink(f[0]);
    unlink(f[1]);
    free(f[0]);
    free(f[1]);
}

/* --predictions writes one line per trial, the same file for both engines;
 * the network engine draws progress on a terminal (DMM_PROGRESS=now); and
 * --network FILE runs a given network, refusing one that breaks the
 * contract with its file and JSON path. */
static void test_experiment_predictions_network(void **state)
{
    env *e = *state;
    char *f[2] = {scratch(e, "pred-direct.csv"), scratch(e, "pred-net.csv")};
    char *net = tu_path("networks/double-slit.json");
    proc p;
    run_dmm(e, &p,
            (const char *[]){"experiment", "double-slit", "--seed", "6",
                             "--noise", "per-step", "--predictions", f[0],
                             NULL});
    expect_code(&p, 0);
    proc_free(&p);
    setenv("DMM_PROGRESS", "now", 1);
    run_dmm(e, &p,
            (const char *[]){"experiment", "double-slit", "--seed", "6",
                             "--noise", "per-step", "--network", net,
                             "--predictions", f[1], NULL});
    unsetenv("DMM_PROGRESS");
    expect_code(&p, 0);
    assert_non_null(strstr(p.out, "\"engine\": \"network\""));
    assert_non_null(strstr(p.err, "/210 episodes, "));
    proc_free(&p);
    char *a = tu_read_file(f[0], NULL), *b = tu_read_file(f[1], NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    assert_int_equal(count_lines(a), 1 + 200);
    assert_true(!strncmp(a,
                         "trial,class,predicted,mean_J_minus_2,"
                         "mean_J_plus_2\n0,",
                         strlen("trial,class,predicted,mean_J_minus_2,"
                                "mean_J_plus_2\n0,")));
    /* seed 6 per step misclassifies some trials: a wrong line exists */
    assert_true(strstr(a, ",in-phase,out-of-phase,") ||
                strstr(a, ",out-of-phase,in-phase,"));
    free(a);
    free(b);
    /* a network without input/control is refused, located */
    json_error_t je;
    json_t *j = json_load_file(net, 0, &je);
    assert_non_null(j);
    json_object_del(json_object_get(json_object_get(j, "matrix"), "input"),
                    "control");
    char *bad = scratch(e, "bad.json");
    assert_int_equal(json_dump_file(j, bad, 0), 0);
    json_decref(j);
    run_dmm(e, &p,
            (const char *[]){"experiment", "double-slit", "--network", net,
                             "--engine", "direct", NULL});
    expect_code(&p, 2);
    assert_non_null(strstr(p.err, "--network FILE needs --engine network"));
    proc_free(&p);
    unlink(bad);
    unlink(f[0]);
    unlink(f[1]);
    free(bad);
    free(f[0]);
    free(f[1]);
    free(net);
}

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->exe = getenv("DMM_EXE");
    if (!e->exe) {
        fprintf(stderr, "DMM_EXE is not set\n");
        free(e);
        return -1;
    }
    snprintf(e->dir, sizeof e->dir, "/tmp/dmm-test-daily-XXXXXX");
    if (!mkdtemp(e->dir)) {
        free(e);
        return -1;
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    if (e->serve > 0) { /* a test failed before stopping its server */
        kill(e->serve, SIGKILL);
        waitpid(e->serve, NULL, 0);
    }
    DIR *d = opendir(e->dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", e->dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(e->dir);
    free(e);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_leaves_self_out),
        cmocka_unit_test(test_trace_select_flat),
        cmocka_unit_test(test_trace_pretty),
        cmocka_unit_test(test_check_unproduced_source),
        cmocka_unit_test(test_option_suggestions),
        cmocka_unit_test(test_ctl_get_nothing),
        cmocka_unit_test(test_plugin_run),
        cmocka_unit_test(test_plugin_refused),
        cmocka_unit_test(test_plugin_serve),
        cmocka_unit_test(test_ctl_interactive),
        cmocka_unit_test(test_plot),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_progress_render_sweep),
        cmocka_unit_test(test_double_slit_noise),
        cmocka_unit_test(test_experiment_learning_options),
        cmocka_unit_test(test_experiment_geometry_options),
        cmocka_unit_test(test_experiment_predictions_network),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
