// SPDX-License-Identifier: MIT
/*
 * The `dmm` command as a user sees it: runs the built binary (env DMM_EXE)
 * with posix_spawn, capturing stdout, stderr and the exit code. Checks the
 * reference vectors cycle by cycle, the bundled networks, script validation
 * messages, usage errors, numeric faults and save/resume.
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

extern char **environ;

typedef struct cli_env {
    char dir[64]; /* scratch directory for this program */
    const char *exe;
    vv_ctx *vc;
} cli_env;

typedef tu_proc proc;

static void proc_free(proc *p)
{
    tu_proc_free(p);
}

static char *scratch(const cli_env *e, const char *name)
{
    return tu_path_in(e->dir, name);
}

static char *write_scratch(const cli_env *e, const char *name, const char *text)
{
    return tu_write_in(e->dir, name, text);
}

/* Run dmm with args (NULL-terminated, without the program name). */
static void run_dmm(const cli_env *e, proc *p, const char *const *args)
{
    tu_run_in(e->exe, e->dir, p, NULL, args);
}

static void expect_code(const proc *p, int code)
{
    tu_expect_code(p, code);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* new: a parsed vector file, from tests/data/vectors or the shared spec. */
static json_t *load_vector(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "tests/data/vectors/%s.json", name);
    char *p = tu_path(rel);
    json_error_t jerr;
    json_t *j = json_load_file(p, 0, &jerr);
    free(p);
    if (!j) {
        char alt[1024];
        const char *spec = getenv("DMM_SHARED_SPEC");
        if (spec)
            snprintf(alt, sizeof alt, "%s/vectors/%s.json", spec, name);
        else
            snprintf(alt, sizeof alt, "%s/../shared/spec/vectors/%s.json",
                     tu_source_root(), name);
        j = json_load_file(alt, 0, &jerr);
    }
    if (!j)
        fail_msg("cannot load vector %s: %s", name, jerr.text);
    return j;
}

/* Write the vector's network and script to scratch files. */
static void vector_files(const cli_env *e, json_t *vec, char **net,
                         char **script)
{
    char *text = json_dumps(json_object_get(vec, "network"), JSON_INDENT(1));
    assert_non_null(text);
    *net = write_scratch(e, "vector.json", text);
    free(text);
    char *sp = scratch(e, "vector.script.jsonl");
    FILE *f = fopen(sp, "wb");
    assert_non_null(f);
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(vec, "script"), i, ev)
    {
        char *line = json_dumps(ev, JSON_COMPACT);
        assert_non_null(line);
        fprintf(f, "%s\n", line);
        free(line);
    }
    assert_int_equal(fclose(f), 0);
    *script = sp;
}

/*
 * Check stdout of a --trace run against the vector's expect list: one line
 * per cycle, each exactly {"step": t, "outputs": canonical Y_t}, Y_t close to
 * the expected map.
 */
static void check_trace(const cli_env *e, const char *out, json_t *vec)
{
    json_t *expect = json_object_get(vec, "expect");
    size_t steps = (size_t)json_integer_value(json_object_get(vec, "steps"));
    assert_int_equal(json_array_size(expect), steps);
    const char *line = out;
    for (size_t t = 1; t <= steps; t++) {
        const char *nl = strchr(line, '\n');
        if (!nl)
            fail_msg("missing output line for step %zu", t);
        json_error_t jerr;
        json_t *got = json_loadb(line, (size_t)(nl - line), 0, &jerr);
        if (!got)
            fail_msg("step %zu: bad JSON line: %s", t, jerr.text);
        assert_int_equal(json_integer_value(json_object_get(got, "step")), t);
        dmm_error err;
        vv g, w;
        assert_int_equal(
            vv_from_json(e->vc, json_object_get(got, "outputs"), "", &g, &err),
            0);
        json_t *want = json_array_get(expect, t - 1);
        assert_int_equal(json_integer_value(json_object_get(want, "step")), t);
        assert_int_equal(
            vv_from_json(e->vc, json_object_get(want, "outputs"), "", &w, &err),
            0);
        tu_assert_vv_close(e->vc, g, w, 1e-12);
        /* The line is exactly the canonical form, in the documented shape. */
        char *canon = vv_to_string(e->vc, g);
        assert_non_null(canon);
        char head[64];
        int hn =
            snprintf(head, sizeof head, "{\"step\": %zu, \"outputs\": ", t);
        assert_true(starts_with(line, head));
        assert_int_equal((size_t)(nl - line), hn + strlen(canon) + 1);
        assert_memory_equal(line + hn, canon, strlen(canon));
        assert_int_equal(line[hn + strlen(canon)], '}');
        free(canon);
        vv_free(e->vc, g);
        vv_free(e->vc, w);
        json_decref(got);
        line = nl + 1;
    }
    assert_string_equal(line, "");
}

static void run_vector(void **state, const char *name)
{
    cli_env *e = *state;
    json_t *vec = load_vector(name);
    char *net, *script, steps[32];
    vector_files(e, vec, &net, &script);
    snprintf(steps, sizeof steps, "%lld",
             (long long)json_integer_value(json_object_get(vec, "steps")));
    proc p;
    run_dmm(e, &p,
            (const char *[]){"run", "--trace", "--self", "--steps", steps,
                             "--script", script, net, NULL});
    expect_code(&p, 0);
    assert_string_equal(p.err, "");
    check_trace(e, p.out, vec);
    proc_free(&p);
    free(net);
    free(script);
    json_decref(vec);
}

static void test_vector_wave(void **state)
{
    run_vector(state, "wave");
}
static void test_vector_reader_accum(void **state)
{
    run_vector(state, "reader-accum");
}
static void test_vector_char_count(void **state)
{
    run_vector(state, "char-count");
}

/* The committed networks/ files are the vectors' networks and scripts and
 * give the same trace. */
static void check_bundled(void **state, const char *name, bool has_script)
{
    cli_env *e = *state;
    json_t *vec = load_vector(name);
    char rel[128];
    snprintf(rel, sizeof rel, "networks/%s.json", name);
    char *net = tu_path(rel);
    json_error_t jerr;
    json_t *file = json_load_file(net, 0, &jerr);
    if (!file)
        fail_msg("%s: %s", net, jerr.text);
    assert_true(json_equal(file, json_object_get(vec, "network")));
    json_decref(file);

    char steps[32];
    snprintf(steps, sizeof steps, "%lld",
             (long long)json_integer_value(json_object_get(vec, "steps")));
    char *script = NULL;
    proc p;
    if (has_script) {
        snprintf(rel, sizeof rel, "networks/%s.script.jsonl", name);
        script = tu_path(rel);
        run_dmm(e, &p,
                (const char *[]){"run", net, "--steps", steps, "--trace",
                                 "--self", "--script", script, NULL});
    } else {
        run_dmm(e, &p,
                (const char *[]){"run", net, "--steps", steps, "--trace",
                                 "--self", NULL});
    }
    expect_code(&p, 0);
    assert_string_equal(p.err, "");
    check_trace(e, p.out, vec);
    proc_free(&p);
    free(net);
    free(script);
    json_decref(vec);
}

static void test_bundled_networks(void **state)
{
    check_bundled(state, "wave", false);
    check_bundled(state, "reader-accum", true);
    check_bundled(state, "char-count", true);
}

/* new: the subtree of a JSON output line at a slash-separated path of
 * labels (no escapes needed in these tests). */
static vv line_get(cli_env *e, const char *line, const char *path)
{
    json_error_t jerr;
    json_t *j = json_loads(line, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!j)
        fail_msg("bad output line: %s", jerr.text);
    dmm_error err;
    vv v, r;
    assert_int_equal(
        vv_from_json(e->vc, json_object_get(j, "outputs"), "", &v, &err), 0);
    json_decref(j);
    vv_label labels[16];
    size_t n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = strtok(buf, "/"); s; s = strtok(NULL, "/"))
        labels[n++] = tu_label(e->vc, s);
    r = vv_ref(vv_get(v, labels, n));
    vv_free(e->vc, v);
    return r;
}

static void expect_at(cli_env *e, const char *line, const char *path,
                      const char *json)
{
    vv got = line_get(e, line, path), want = tu_vv(e->vc, json);
    tu_assert_vv_close(e->vc, got, want, 1e-12);
    vv_free(e->vc, got);
    vv_free(e->vc, want);
}

/* The delta row of W rotates update-2, update-3, update-1, ... */
static void test_wave_period(void **state)
{
    cli_env *e = *state;
    char *net = tu_path("networks/wave.json");
    proc p;
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "12", "--trace", "--self",
                             NULL});
    expect_code(&p, 0);
    const char *line = p.out;
    for (int t = 1; t <= 12; t++) {
        char want[128];
        snprintf(want, sizeof want,
                 "{\"identity\": {\"update-%d\": "
                 "{\"single\": 1}}}",
                 t % 3 + 1);
        expect_at(e, line, "accum/self/single/accum/self/delta", want);
        line = strchr(line, '\n') + 1;
    }
    proc_free(&p);
    free(net);
}

static void test_example_networks(void **state)
{
    cli_env *e = *state;
    proc p;
    char *net = tu_path("networks/accumulator.json");
    run_dmm(e, &p, (const char *[]){"run", net, "--steps", "10", NULL});
    expect_code(&p, 0);
    assert_true(starts_with(p.out, "{\"step\": 10, "));
    expect_at(e, p.out, "accum/sum/single", "{\"apples\": 10, \"pears\": 5}");
    proc_free(&p);
    free(net);

    net = tu_path("networks/cons-list.json");
    char *script = tu_path("networks/cons-list.script.jsonl");
    run_dmm(
        e, &p,
        (const char *[]){"run", net, "--steps", "5", "--script", script, NULL});
    expect_code(&p, 0);
    expect_at(e, p.out, "cons/list/self",
              "{\"this\": {\"m\": 1}, \"rest\": {\"this\": {\"m\": 1}, "
              "\"rest\": {\"this\": {\"d\": 1}}}}");
    proc_free(&p);
    free(net);
    free(script);

    /* grow: the counter exists from cycle 2 on and counts t - 1; the grower
     * removed itself. */
    net = tu_path("networks/grow.json");
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "5", "--trace", NULL});
    expect_code(&p, 0);
    const char *line = p.out;
    expect_at(e, line, "accum/counter", "{}");
    for (int t = 2; t <= 5; t++) {
        line = strchr(line, '\n') + 1;
        char want[32];
        snprintf(want, sizeof want, "%d", t - 1);
        expect_at(e, line, "accum/counter/single", want);
        expect_at(e, line, "identity/grower", "{}");
        expect_at(e, line, "accum/self/single/accum/self/delta", "{}");
    }
    proc_free(&p);
    free(net);
}

static const char accum_net[] =
    "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": {\"accum\": "
    "{\"self\": {\"single\": 1}}}}, \"sum\": {\"accum\": {\"accum\": {\"sum\": "
    "{\"single\": 1}}}, \"delta\": {\"identity\": {\"c\": {\"single\": 1}}}}},"
    " \"identity\": {\"c\": {\"single\": {\"identity\": {\"c\": {\"single\": "
    "1}}}}}, \"input\": {\"a/b\": {\"dummy\": {\"accum\": {\"self\": "
    "{\"single\": 1}}}}}}, \"outputs\": {\"identity\": {\"c\": {\"single\": "
    "{\"x\": 1}}}}}\n";

/* Runs accum_net with a script; expects exit code and exact stderr
 * (with "%s" standing for the script path), and nothing on stdout. */
static void script_case(cli_env *e, const char *lines, int code,
                        const char *err_fmt, bool prefix_only)
{
    char *net = write_scratch(e, "net.json", accum_net);
    char *script = write_scratch(e, "s.jsonl", lines);
    char want[1024];
    snprintf(want, sizeof want, err_fmt, script);
    proc p;
    run_dmm(
        e, &p,
        (const char *[]){"run", net, "--steps", "3", "--script", script, NULL});
    expect_code(&p, code);
    if (prefix_only) {
        if (!starts_with(p.err, want))
            fail_msg("stderr \"%s\" does not start with \"%s\"", p.err, want);
        assert_non_null(strchr(p.err, '\n'));
        assert_string_equal(strchr(p.err, '\n'), "\n");
    } else {
        assert_string_equal(p.err, want);
    }
    if (code != 0)
        assert_string_equal(p.out, "");
    proc_free(&p);
    free(net);
    free(script);
}

static void test_script_errors(void **state)
{
    cli_env *e = *state;
    script_case(e, "{\"step\": 1, \"op\": \"poke\"}\n", 1,
                "%s:1: /op: unknown op \"poke\" (expected edit, feed, "
                "modulate, position or fields)\n",
                false);
    /* Field events (docs/fields.md): their syntax is checked before the
     * run, the rest when applied, located at the event's members. */
    script_case(e,
                "{\"step\": 1, \"op\": \"position\", \"neuron\": "
                "\"identity/c\", \"at\": [\"x\"]}\n",
                1,
                "%s:1: /at: a position must be an array of one or two "
                "finite numbers ([x] or [x, y])\n",
                false);
    script_case(e,
                "{\"step\": 1, \"op\": \"modulate\", \"action\": \"add\", "
                "\"modulation\": {\"name\": \"m\", \"field\": "
                "\"identity/c/single\", \"target\": \"input\", \"neurons\": "
                "\"embedded\", \"mode\": \"divide\"}}\n",
                1,
                "%s:1: /modulation/mode: mode must be multiply, add or "
                "replace (not \"divide\")\n",
                false);
    script_case(e,
                "{\"step\": 2, \"op\": \"modulate\", \"action\": \"add\", "
                "\"modulation\": {\"name\": \"m\", \"field\": "
                "\"identity/none/single\", \"target\": \"input\", "
                "\"neurons\": \"embedded\", \"mode\": \"add\"}}\n",
                1,
                "%s:1: /modulation/field: modulation \"m\": field "
                "identity/none/single is not produced: identity/none has no "
                "row\n",
                true);
    script_case(e, "\n{\"op\": \"edit\", \"delta\": {}}\n", 1,
                "%s:2: /step: missing field\n", false);
    script_case(e, "{\"step\": 1, \"delta\": {}}\n", 1,
                "%s:1: /op: missing field\n", false);
    script_case(e, "{\"step\": 1, \"op\": \"edit\"}\n", 1,
                "%s:1: /delta: missing field\n", false);
    script_case(e,
                "{\"step\": 1, \"op\": \"feed\", \"neuron\": \"input/a\\\\/b\"}"
                "\n",
                1, "%s:1: /outputs: missing field\n", false);
    script_case(e,
                "{\"step\": 1, \"op\": \"edit\", \"delta\": {}, \"neuron\": "
                "\"input/x\"}\n",
                1, "%s:1: /neuron: unknown field for op \"edit\"\n", false);
    const char *bad_steps[] = {"0", "-2", "1.5", "\"1\"", "null"};
    for (size_t i = 0; i < sizeof bad_steps / sizeof *bad_steps; i++) {
        char line[128];
        snprintf(line, sizeof line,
                 "{\"step\": 1, \"op\": \"edit\", \"delta\": {}}\n"
                 "{\"step\": %s, \"op\": \"edit\", \"delta\": {}}\n",
                 bad_steps[i]);
        script_case(e, line, 1,
                    "%s:2: /step: must be a positive integer (a cycle "
                    "number)\n",
                    false);
    }
    script_case(e,
                "{\"step\": 1, \"op\": \"feed\", \"neuron\": \"identity/c\", "
                "\"outputs\": {}}\n",
                1,
                "%s:1: /neuron: \"identity/c\" is not an input neuron (feed "
                "takes \"input/NAME\")\n",
                false);
    script_case(e,
                "{\"step\": 1, \"op\": \"feed\", \"neuron\": \"input/a\\\\q\", "
                "\"outputs\": {}}\n",
                1,
                "%s:1: /neuron: bad escape in path \"input/a\\q\" (a backslash "
                "escapes only '/' and backslash)\n",
                false);
    script_case(e,
                "{\"step\": 1, \"op\": \"feed\", \"neuron\": \"input/a/b\", "
                "\"outputs\": {}}\n",
                1,
                "%s:1: /neuron: too many parts in path \"input/a/b\" (at most "
                "2)\n",
                false);
    script_case(e,
                "{\"step\": 1, \"op\": \"feed\", \"neuron\": \"input\", "
                "\"outputs\": {}}\n",
                1, "%s:1: /neuron: \"input\": expected TYPE/NAME\n", false);
    /* A neuron has no scalar part: the path scanner refuses ":number" here
     * as in every path that names a neuron, an input or an output. */
    script_case(e,
                "{\"step\": 1, \"op\": \"feed\", \"neuron\": "
                "\"input/:number\", \"outputs\": {}}\n",
                1,
                "%s:1: /neuron: \":number\" (a scalar part) cannot end path "
                "\"input/:number\": it must name a neuron, an input or an "
                "output\n",
                false);
    script_case(e,
                "{\"step\": 2, \"op\": \"feed\", \"neuron\": \"input/a\\\\/b\","
                " \"outputs\": {}}\n"
                "{\"step\": 1, \"op\": \"edit\", \"delta\": {}}\n"
                "{\"step\": 2, \"op\": \"feed\", \"neuron\": \"input/a\\\\/b\","
                " \"outputs\": {\"x\": 1}}\n",
                1,
                "%s:3: /neuron: input/a/b is already fed at step 2 (line 1)\n",
                false);
    /* V-value errors carry the JSON path inside the event. */
    script_case(e,
                "{\"step\": 1, \"op\": \"edit\", \"delta\": {}}\n"
                "\n"
                "{\"step\": 2, \"op\": \"edit\", \"delta\": {\"accum\": "
                "{\"c\": \"x\"}}}\n",
                1, "%s:3: /delta/accum/c: ", true);
    script_case(e,
                "{\"step\": 1, \"op\": \"feed\", \"neuron\": \"input/a\\\\/b\","
                " \"outputs\": {\"a\": [1]}}\n",
                1, "%s:1: /outputs/a: ", true);
    script_case(e,
                "{\"step\": 1, \"op\": \"edit\", \"delta\": {}}\n{\"step\":", 1,
                "%s:2:", true);
    script_case(e, "[1, 2]\n", 1, "%s:1: an event must be a JSON object\n",
                false);
    script_case(e,
                "{\"step\": 1, \"op\": \"edit\", \"delta\": {}, \"step\": 2}\n",
                1, "%s:1:", true);
    /* Events after the last cycle: a warning, the run goes on. */
    script_case(e,
                "{\"step\": 9, \"op\": \"edit\", \"delta\": {}}\n"
                "{\"step\": 5, \"op\": \"edit\", \"delta\": {}}\n",
                0,
                "%s:2: warning: step 5 is after the last cycle (3); 2 events "
                "are not applied\n",
                false);
    /* A syntactically valid edit the engine refuses (an unknown type). */
    script_case(e,
                "{\"step\": 2, \"op\": \"edit\", \"delta\": {\"no-such-type\": "
                "{\"n\": {\"x\": {\"identity\": {\"c\": {\"single\": 1}}}}}}}"
                "\n",
                1, "%s:1: /delta/no-such-type: ", true);
}

/* Edits and feeds land just before their cycle. */
static void test_script_events(void **state)
{
    cli_env *e = *state;
    char *net = write_scratch(e, "net.json", accum_net);
    /* Cycle 3 runs without sum's delta row: sum stays at 2x. The feed for
     * the input named "a/b" appears in Y_2 only. */
    char *script = write_scratch(
        e, "s.jsonl",
        "{\"step\": 3, \"op\": \"edit\", \"delta\": {\"accum\": {\"sum\": "
        "{\"delta\": {\"identity\": {\"c\": {\"single\": -1}}}}}}}\r\n"
        "{\"step\": 2, \"op\": \"feed\", \"neuron\": \"input/a\\\\/b\", "
        "\"outputs\": {\"y\": 7}}\n");
    proc p;
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "5", "--trace", "--script",
                             script, NULL});
    expect_code(&p, 0);
    assert_string_equal(p.err, "");
    const char *l[5];
    l[0] = p.out;
    for (int i = 1; i < 5; i++)
        l[i] = strchr(l[i - 1], '\n') + 1;
    const char *sums[5] = {"{\"x\": 1}", "{\"x\": 2}", "{\"x\": 2}",
                           "{\"x\": 2}", "{\"x\": 2}"};
    for (int i = 0; i < 5; i++) {
        expect_at(e, l[i], "accum/sum/single", sums[i]);
        vv in = line_get(e, l[i], "input");
        char *s = vv_to_string(e->vc, in);
        assert_string_equal(s, i == 1 ? "{\"a/b\":{\"y\":7}}" : "{}");
        free(s);
        vv_free(e->vc, in);
    }
    proc_free(&p);
    free(net);
    free(script);
}

static void test_usage_errors(void **state)
{
    cli_env *e = *state;
    char *net = write_scratch(e, "net.json", accum_net);
    const char *syn = "usage: dmm run (NET.json | --resume STATE.json) "
                      "--steps N ";
    struct {
        const char *args[8];
        const char *first;
    } cases[] = {
        {{"run", net, "--steps", "-1", NULL},
         "dmm run: --steps: expected a non-negative integer, got \"-1\"\n"},
        {{"run", net, "--steps", "abc", NULL},
         "dmm run: --steps: expected a non-negative integer, got \"abc\"\n"},
        {{"run", net, "--steps=99999999999999999999999", NULL},
         "dmm run: --steps: expected a non-negative integer, got "
         "\"99999999999999999999999\"\n"},
        {{"run", net, "--steps", NULL}, "dmm run: --steps needs a value\n"},
        {{"run", net, "--steps", "3", "--frob", NULL},
         "dmm run: unknown option \"--frob\"\n"},
        {{"run", "--steps", "3", NULL},
         "dmm run: missing NET.json (or --resume STATE.json)\n"},
        {{"run", net, NULL}, "dmm run: missing --steps N\n"},
        {{"run", net, net, "--steps", "1", NULL}, NULL /* filled below */},
        {{"run", net, "--steps", "1", "--max-depth", "0", NULL},
         "dmm run: --max-depth: expected a positive integer, got \"0\"\n"},
    };
    char two[512];
    snprintf(two, sizeof two, "dmm run: unexpected argument \"%s\"\n", net);
    cases[7].first = two;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        proc p;
        run_dmm(e, &p, cases[i].args);
        expect_code(&p, 2);
        assert_true(starts_with(p.err, cases[i].first));
        const char *second = p.err + strlen(cases[i].first);
        assert_true(starts_with(second, syn));
        assert_string_equal(strchr(second, '\n'), "\n");
        assert_string_equal(p.out, "");
        proc_free(&p);
    }
    proc p;
    run_dmm(e, &p, (const char *[]){"frobnicate", NULL});
    expect_code(&p, 2);
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){NULL});
    expect_code(&p, 2);
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"help", "frobnicate", NULL});
    expect_code(&p, 2);
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"check", NULL});
    expect_code(&p, 2);
    proc_free(&p);
    free(net);
}

static void test_missing_files(void **state)
{
    cli_env *e = *state;
    char *nope = scratch(e, "nope.json");
    proc p;
    run_dmm(e, &p, (const char *[]){"run", nope, "--steps", "1", NULL});
    expect_code(&p, 1);
    assert_true(starts_with(p.err, nope));
    assert_string_equal(p.out, "");
    proc_free(&p);

    run_dmm(e, &p,
            (const char *[]){"run", "--resume", nope, "--steps", "1", NULL});
    expect_code(&p, 1);
    assert_true(starts_with(p.err, nope));
    proc_free(&p);

    char *net = write_scratch(e, "net.json", accum_net);
    char want[512];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory\n",
             nope);
    run_dmm(
        e, &p,
        (const char *[]){"run", net, "--steps", "1", "--script", nope, NULL});
    expect_code(&p, 1);
    assert_string_equal(p.err, want);
    assert_string_equal(p.out, "");
    proc_free(&p);
    free(net);
    free(nope);
}

/* identity/big grows tenfold per cycle: 1e307, 1e308, then infinity in
 * cycle 3. */
static const char big_net[] =
    "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": {\"accum\": "
    "{\"self\": {\"single\": 1}}}}}, \"identity\": {\"big\": {\"single\": "
    "{\"identity\": {\"big\": {\"single\": 10}}}}}}, \"outputs\": "
    "{\"identity\": {\"big\": {\"single\": 1e306}}}}\n";

static void test_numeric_fault(void **state)
{
    cli_env *e = *state;
    char *net = write_scratch(e, "big.json", big_net);
    char *save = scratch(e, "big.state.json");
    proc p;
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "5", "--trace", "--save",
                             save, NULL});
    expect_code(&p, 3);
    /* Two good cycles were printed, then one message naming the neuron. */
    const char *l2 = strchr(p.out, '\n') + 1;
    assert_true(starts_with(p.out, "{\"step\": 1, "));
    assert_true(starts_with(l2, "{\"step\": 2, "));
    assert_string_equal(strchr(l2, '\n'), "\n");
    assert_non_null(strstr(p.err, "identity/big"));
    assert_string_equal(strchr(p.err, '\n'), "\n");
    proc_free(&p);

    /* The saved state is the last good one, Y_2. */
    run_dmm(e, &p,
            (const char *[]){"run", "--resume", save, "--steps", "0", NULL});
    expect_code(&p, 0);
    assert_true(starts_with(p.out, "{\"step\": 2, "));
    expect_at(e, p.out, "identity/big/single", "1e308");
    proc_free(&p);
    free(net);
    free(save);
}

static void test_check(void **state)
{
    cli_env *e = *state;
    char *net = tu_path("networks/wave.json");
    char want[1024];
    snprintf(want, sizeof want, "%s: ok (4 neurons, 5 weights)\n", net);
    proc p;
    run_dmm(e, &p, (const char *[]){"check", net, NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, want);
    assert_string_equal(p.err, "");
    proc_free(&p);

    char *bad = write_scratch(e, "bad.json",
                              "{\n"
                              "  \"dmm\": 1,\n"
                              "  \"matrix\": {\"accum\": {\"self\": {\"accum\":"
                              " {\"accum\": {\"self\": {\"single\": \"one\"}}}"
                              "}}}\n"
                              "}\n");
    run_dmm(e, &p, (const char *[]){"check", bad, NULL});
    expect_code(&p, 1);
    assert_string_equal(p.out, "");
    /* file:line:column: path: message, on one line */
    snprintf(want, sizeof want, "%s:3:", bad);
    if (!starts_with(p.err, want))
        fail_msg("stderr \"%s\" does not start with \"%s\"", p.err, want);
    const char *s = p.err + strlen(want);
    assert_true(*s >= '1' && *s <= '9');
    while (*s >= '0' && *s <= '9')
        s++;
    assert_true(
        starts_with(s, ": /matrix/accum/self/accum/accum/self/single: "));
    assert_string_equal(strchr(s, '\n'), "\n");
    proc_free(&p);

    /* A script can be checked too. */
    char *script = write_scratch(e, "ok.jsonl",
                                 "{\"step\": 1, \"op\": \"edit\", "
                                 "\"delta\": {}}\n");
    snprintf(want, sizeof want, "%s: ok (1 event)\n", script);
    run_dmm(e, &p, (const char *[]){"check", "--script", script, NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, want);
    proc_free(&p);
    free(script);
    free(bad);
    free(net);
}

/* dmm check names each field's kind (docs/fields.md "Kinds of field"):
 * a ring's own activity (induced), an input neuron (external), a relay of
 * an input only (external), and an input added to the ring (mixed). Then
 * the same network with the input read through the ring instead: the
 * relay's field becomes mixed, so the kinds follow W, not the names. */
static void test_check_field_kinds(void **state)
{
    cli_env *e = *state;
    char *net = tu_path("tests/data/fields/kinds.json");
    char want[4096];
    snprintf(want, sizeof want,
             "%s: ok (6 neurons, 7 weights)\n"
             "%s: field \"tanh/a/single\" of modulation \"ind\" is induced\n"
             "%s: field \"input/drive/signal\" of modulation \"ext\" is "
             "external\n"
             "%s: field \"identity/relay/single\" of modulation \"relay\" is "
             "external\n"
             "%s: field \"identity/both/single\" of modulation \"mix\" is "
             "mixed\n",
             net, net, net, net, net);
    proc p;
    run_dmm(e, &p, (const char *[]){"check", net, NULL});
    expect_code(&p, 0);
    assert_string_equal(p.out, want);
    proc_free(&p);

    json_t *j = json_load_file(net, 0, NULL);
    assert_non_null(j);
    json_t *relay = json_object_get(
        json_object_get(
            json_object_get(json_object_get(j, "matrix"), "identity"), "relay"),
        "single");
    json_object_set_new(relay, "tanh",
                        json_pack("{s{s:f}}", "b", "single", 0.5));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char *net2 = write_scratch(e, "kinds2.json", text);
    free(text);
    run_dmm(e, &p, (const char *[]){"check", net2, NULL});
    expect_code(&p, 0);
    snprintf(want, sizeof want,
             "%s: field \"identity/relay/single\" of modulation \"relay\" is "
             "mixed\n",
             net2);
    if (!strstr(p.out, want))
        fail_msg("no \"%s\" in \"%s\"", want, p.out);
    proc_free(&p);

    /* A network without modulations says nothing of fields. */
    char *plain = tu_path("networks/wave.json");
    run_dmm(e, &p, (const char *[]){"check", plain, NULL});
    expect_code(&p, 0);
    assert_null(strstr(p.out, "field"));
    proc_free(&p);
    free(plain);
    free(net2);
    free(net);
}

/* new (free): s with every from replaced by to. */
static char *subst(const char *s, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), n = 1;
    for (const char *q = s; (q = strstr(q, from)); q += lf)
        n++;
    char *out = malloc(strlen(s) + n * lt + 1), *o = out;
    assert_non_null(out);
    for (const char *q; (q = strstr(s, from)); s = q + lf) {
        memcpy(o, s, (size_t)(q - s));
        o += q - s;
        memcpy(o, to, lt);
        o += lt;
    }
    strcpy(o, s);
    return out;
}

/* new (free): the body of the first block of doc opened by fence (```json
 * or ```) whose first line starts with head. */
static char *doc_block(const char *doc, const char *fence, const char *head)
{
    char open[128];
    snprintf(open, sizeof open, "%s\n%s", fence, head);
    const char *b = strstr(doc, open);
    if (!b)
        fail_msg("docs/fields.md has no %s block starting %s", fence, head);
    b += strlen(fence) + 1;
    const char *e = strstr(b, "\n```");
    assert_non_null(e);
    return strndup(b, (size_t)(e - b));
}

/* new (free): s with every run of white space one blank. */
static char *squeeze(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    assert_non_null(out);
    for (; *s; s++)
        if (!(strchr(" \n", *s) && o > out && o[-1] == ' '))
            *o++ = *s == '\n' ? ' ' : *s;
    *o = '\0';
    return out;
}

/*
 * The examples of docs/fields.md run: its "positions" and "modulations"
 * blocks load into a network that has the neurons they name (dmm check
 * accepts it and names each field's kind); the two messages of "Bad
 * input" for a parameter the type does not declare are the ones dmm check
 * prints for those blocks with the parameter misspelt or put on tanh; the
 * script events of "Live changes" pass check --script and run; and every
 * "$ dmm check networks/fields/..." of "Explorations" prints what the page
 * shows.
 */
static void test_fields_doc_examples(void **state)
{
    cli_env *e = *state;
    char *doc_path = tu_path("docs/fields.md");
    char *doc = tu_read_file(doc_path, NULL);
    assert_non_null(doc);
    char *flat = squeeze(doc);
    char *pos = doc_block(doc, "```json", "\"positions\""),
         *mods = doc_block(doc, "```json", "\"modulations\"");
    char *text = malloc(strlen(pos) + strlen(mods) + 1024);
    assert_non_null(text);
    sprintf(
        text,
        "{\"dmm\": 1, \"matrix\": {"
        "\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "
        "{\"single\": 1}}}}},"
        "\"tanh\": {\"a\": {\"single\": {\"tanh\": {\"b\": {\"single\": "
        "1}}}}, \"b\": {\"single\": {\"tanh\": {\"a\": {\"single\": 1}}}},"
        " \"field\": {\"single\": {\"tanh\": {\"a\": {\"single\": 1}}}}},"
        "\"input\": {\"sweep\": {\"x\": {\"accum\": {\"self\": {\"single\": "
        "1}}}}},"
        "\"output\": {\"map\": {\"single\": {\"tanh\": {\"b\": {\"single\": "
        "1}}}}},"
        "\"softmax-rows\": {\"attn\": {\"matrix\": {\"tanh\": {\"a\": "
        "{\"single\": 1}}}}}},\n%s,\n%s}",
        pos, mods);
    char *net = write_scratch(e, "doc-fields.json", text);
    proc p;
    run_dmm(e, &p, (const char *[]){"check", net, NULL});
    expect_code(&p, 0);
    if (!strstr(p.out, "field \"input/sweep/single\" of modulation "
                       "\"sharpness\" is external"))
        fail_msg("%s", p.out);
    proc_free(&p);

    struct {
        const char *from, *to, *message;
    } bad[] = {
        {"\"param\": \"temperature\"", "\"param\": \"temprature\"",
         "softmax-rows has no parameter \"temprature\" (it has: "
         "temperature)"},
        {"\"param\": \"temperature\", \"neurons\": [\"softmax-rows/attn\"]",
         "\"param\": \"gain\", \"neurons\": [\"tanh/a\"]",
         "tanh has no parameter \"gain\" (it has none)"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        if (!strstr(text, bad[k].from))
            fail_msg("the modulations block has no %s", bad[k].from);
        char *t2 = subst(text, bad[k].from, bad[k].to);
        char *net2 = write_scratch(e, "doc-fields-bad.json", t2);
        run_dmm(e, &p, (const char *[]){"check", net2, NULL});
        expect_code(&p, 1);
        if (!strstr(p.err, bad[k].message))
            fail_msg("\"%s\" lacks \"%s\"", p.err, bad[k].message);
        if (!strstr(flat, bad[k].message))
            fail_msg("docs/fields.md does not show \"%s\"", bad[k].message);
        proc_free(&p);
        free(net2);
        free(t2);
    }

    /* Live changes: the logged events, on a network with their neurons */
    char *events = doc_block(doc, "```", "{\"step\": 1, \"op\": \"modulate\"");
    size_t nev = strlen(events);
    events = realloc(events, nev + 2);
    assert_non_null(events);
    memcpy(events + nev, "\n", 2);
    char *script = write_scratch(e, "doc-fields.jsonl", events);
    char *live = write_scratch(
        e, "doc-fields-live.json",
        "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
        "{\"accum\": {\"self\": {\"single\": 1}}}}}}, \"links\": ["
        "[\"identity/field/single\", \"identity/field/single\", 1],"
        "[\"tanh/a/single\", \"identity/field/single\", 1],"
        "[\"tanh/b/single\", \"tanh/a/single\", 1]],"
        "\"outputs\": {\"identity\": {\"field\": {\"single\": 0.5}}}}");
    run_dmm(e, &p, (const char *[]){"check", live, "--script", script, NULL});
    expect_code(&p, 0);
    if (!strstr(p.out, "ok (3 events)"))
        fail_msg("%s", p.out);
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"run", live, "--script", script, "--steps", "6",
                             NULL});
    expect_code(&p, 0);
    proc_free(&p);
    free(live);
    free(script);
    free(events);

    /* Explorations: "$ dmm check networks/fields/X.json" and its lines */
    char *root = tu_path("networks/fields/");
    int checks = 0;
    const char *cmd = "$ dmm check networks/fields/";
    for (const char *c = strstr(doc, cmd); c; c = strstr(c + 1, cmd)) {
        const char *file = c + strlen("$ dmm check ");
        const char *nl = strchr(file, '\n'), *end = strstr(nl, "\n```");
        assert_non_null(end);
        char *rel = strndup(file, (size_t)(nl - file));
        char *want_rel = strndup(nl + 1, (size_t)(end - nl));
        char *want = subst(want_rel, "networks/fields/", root);
        char *abs = subst(rel, "networks/fields/", root);
        run_dmm(e, &p, (const char *[]){"check", abs, NULL});
        expect_code(&p, 0);
        assert_string_equal(p.out, want);
        proc_free(&p);
        free(abs);
        free(want);
        free(want_rel);
        free(rel);
        checks++;
    }
    assert_int_equal(checks, 3);
    free(root);
    free(net);
    free(text);
    free(mods);
    free(pos);
    free(flat);
    free(doc);
    free(doc_path);
}

/* check --script refuses every edit that run refuses, with the same located
 * message: unknown type, unknown input, a weight at depth 2, an edit that
 * removes Self's row. Both also agree on a good script. */
static void test_check_script_like_run(void **state)
{
    cli_env *e = *state;
    char *net = tu_path("networks/accumulator.json");
    static const char *const deltas[] = {
        "{\"nosuch\": {\"x\": {\"in\": {\"identity\": {\"const\": "
        "{\"single\": 1}}}}}}",
        "{\"accum\": {\"sum\": {\"nosuch\": {\"identity\": {\"const\": "
        "{\"single\": 1}}}}}}",
        "{\"accum\": {\"sum\": 2}}",
        "{\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "
        "{\"single\": -1}}}}}}",
        NULL};
    for (int k = 0; deltas[k]; k++) {
        char line[512];
        snprintf(line, sizeof line,
                 "{\"step\": 1, \"op\": \"edit\", \"delta\": {}}\n"
                 "{\"step\": 2, \"op\": \"edit\", \"delta\": %s}\n",
                 deltas[k]);
        char *script = write_scratch(e, "bad.jsonl", line);
        proc c, r;
        run_dmm(e, &c,
                (const char *[]){"check", "--script", script, net, NULL});
        run_dmm(e, &r,
                (const char *[]){"run", net, "--steps", "3", "--script", script,
                                 NULL});
        expect_code(&c, 1);
        expect_code(&r, 1);
        /* The message names the script's second line, inside the delta. */
        char where[600];
        snprintf(where, sizeof where, "%s:2: /delta", script);
        assert_true(starts_with(c.err, where));
        assert_string_equal(c.err, r.err);
        proc_free(&c);
        proc_free(&r);
        free(script);
    }
    char *good = write_scratch(
        e, "good.jsonl",
        "{\"step\": 2, \"op\": \"edit\", \"delta\": {\"accum\": {\"sum\": "
        "{\"delta\": {\"identity\": {\"const\": {\"single\": 1}}}}}}}\n");
    proc c;
    run_dmm(e, &c, (const char *[]){"check", "--script", good, net, NULL});
    expect_code(&c, 0);
    proc_free(&c);
    free(good);
    free(net);
}

/* Saving after k cycles and resuming for the rest gives the same final line
 * as one straight run; script steps stay absolute. */
static void resume_case(cli_env *e, const char *net, const char *script,
                        const char *total, const char *first, const char *rest)
{
    char *save = scratch(e, "resume.state.json");
    proc straight, a, b;
    const char *args1[10] = {"run", net, "--steps", total};
    const char *args2[10] = {"run", net, "--steps", first, "--save", save};
    const char *args3[10] = {"run", "--resume", save, "--steps", rest};
    if (script) {
        args1[4] = args2[6] = args3[5] = "--script";
        args1[5] = args2[7] = args3[6] = script;
    }
    run_dmm(e, &straight, args1);
    expect_code(&straight, 0);
    run_dmm(e, &a, args2);
    expect_code(&a, 0);
    run_dmm(e, &b, args3);
    expect_code(&b, 0);
    assert_string_equal(b.out, straight.out);
    assert_string_not_equal(a.out, straight.out);
    proc_free(&straight);
    proc_free(&a);
    proc_free(&b);
    free(save);
}

static void test_save_resume(void **state)
{
    cli_env *e = *state;
    char *net = tu_path("networks/wave.json");
    resume_case(e, net, NULL, "12", "5", "7");
    free(net);
    net = tu_path("networks/reader-accum.json");
    char *script = tu_path("networks/reader-accum.script.jsonl");
    resume_case(e, net, script, "10", "4", "6");
    free(net);
    free(script);

    /* Issue 18: a link from "max-norm/m/:number" is the weight the matrix
     * spells {"max-norm": {"m": {":number": 1}}}. Straight and resumed
     * runs agree, and both agree with the matrix spelling. */
    net = write_scratch(
        e, "scalar-link.json",
        "{\"dmm\":1,\"matrix\":{\"accum\":{\"self\":{\"accum\":{\"accum\":"
        "{\"self\":{\"single\":1}}}}}},\n"
        " \"outputs\":{\"identity\":{\"c\":{\"v\":{\"a\":3}}}},\n"
        " \"links\":[[\"identity/c/v\",\"identity/c/v\",1],"
        "[\"max-norm/m/in\",\"identity/c/v\",1],\n"
        "          [\"output/viaLink/x\",\"max-norm/m/:number\",1]]}\n");
    resume_case(e, net, NULL, "6", "4", "2");
    char *by_matrix = write_scratch(
        e, "scalar-matrix.json",
        "{\"dmm\":1,\"matrix\":{\"accum\":{\"self\":{\"accum\":{\"accum\":"
        "{\"self\":{\"single\":1}}}}},\n"
        " \"identity\":{\"c\":{\"v\":{\"identity\":{\"c\":{\"v\":1}}}}},\n"
        " \"max-norm\":{\"m\":{\"in\":{\"identity\":{\"c\":{\"v\":1}}}}},\n"
        " \"output\":{\"viaLink\":{\"x\":{\"max-norm\":{\"m\":{\":number\":1}}}"
        "}}"
        "},\n"
        " \"outputs\":{\"identity\":{\"c\":{\"v\":{\"a\":3}}}}}\n");
    proc a, b;
    run_dmm(e, &a, (const char *[]){"run", net, "--steps", "6", NULL});
    expect_code(&a, 0);
    run_dmm(e, &b, (const char *[]){"run", by_matrix, "--steps", "6", NULL});
    expect_code(&b, 0);
    assert_string_equal(a.out, b.out);
    /* The neuron the link feeds has a value: the max-norm of {"a": 3}. */
    assert_non_null(strstr(a.out, "\"output\":{\"viaLink\":{\"x\":3}}"));
    proc_free(&a);
    proc_free(&b);
    free(by_matrix);
    free(net);
}

static void test_help_version_neurons(void **state)
{
    cli_env *e = *state;
    proc p;
    run_dmm(e, &p, (const char *[]){"--version", NULL});
    expect_code(&p, 0);
    assert_true(starts_with(p.out, "dmm "));
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"--help", NULL});
    expect_code(&p, 0);
    assert_non_null(strstr(p.out, "dmm run"));
    proc_free(&p);
    const char *cmds[] = {"run", "check", "neurons", "help"};
    for (size_t i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: dmm %s", cmds[i]);
        run_dmm(e, &p, (const char *[]){"help", cmds[i], NULL});
        expect_code(&p, 0);
        assert_true(starts_with(p.out, want));
        proc_free(&p);
    }
    run_dmm(e, &p, (const char *[]){"neurons", NULL});
    expect_code(&p, 0);
    const char *builtin[] = {
        "accum",    "identity", "max-norm", "less-or-equal", "mult-mask",
        "lin-comb", "dot",      "input",    "output",        "cons"};
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n%s ", builtin[i]);
        if (!strstr(p.out, want) && !starts_with(p.out, want + 1))
            fail_msg("dmm neurons does not list %s", builtin[i]);
    }
    proc_free(&p);
    run_dmm(e, &p, (const char *[]){"neurons", "--markdown", NULL});
    expect_code(&p, 0);
    assert_non_null(strstr(p.out, "less-or-equal"));
    /* docs/neurons.md is this output, regenerated with every type change */
    char *doc_path = tu_path("docs/neurons.md");
    char *doc = tu_read_file(doc_path, NULL);
    if (strcmp(p.out, doc))
        fail_msg("docs/neurons.md is not `dmm neurons --markdown`: regenerate "
                 "it (dmm neurons --markdown > docs/neurons.md)");
    free(doc);
    free(doc_path);
    proc_free(&p);
}

static void test_stats_and_depth(void **state)
{
    cli_env *e = *state;
    char *net = tu_path("networks/wave.json");
    proc p;
    run_dmm(e, &p,
            (const char *[]){"run", net, "--steps", "3", "--stats",
                             "--max-depth", "50", NULL});
    expect_code(&p, 0);
    assert_true(starts_with(p.err, "stats: 3 cycles in "));
    assert_non_null(strstr(p.err, "cycles/s"));
    assert_non_null(strstr(p.err, "us/cycle"));
    assert_non_null(strstr(p.err, "peak memory"));
    assert_true(starts_with(p.out, "{\"step\": 3, "));
    proc_free(&p);
    /* W alone is six levels deep: a limit of 4 refuses the network. */
    run_dmm(
        e, &p,
        (const char *[]){"run", net, "--steps", "3", "--max-depth", "4", NULL});
    expect_code(&p, 1);
    assert_true(starts_with(p.err, net));
    assert_string_equal(p.out, "");
    proc_free(&p);
    free(net);
}

static int setup(void **state)
{
    cli_env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->exe = getenv("DMM_EXE");
    if (!e->exe) {
        fprintf(stderr, "DMM_EXE is not set\n");
        free(e);
        return -1;
    }
    snprintf(e->dir, sizeof e->dir, "/tmp/dmm-test-cli-XXXXXX");
    if (!mkdtemp(e->dir) || !(e->vc = vv_ctx_new(NULL))) {
        free(e);
        return -1;
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    cli_env *e = *state;
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
    vv_ctx_free(e->vc);
    free(e);
    return 0;
}

/* `dmm experiment hysteresis`: each mean-field neuron of the bundled sweep
 * (K = 1.5 and 2) jumps exactly twice, down at -h_c then up at +h_c, in the
 * first cycle past h_c and within 0.01 of it (issue 6); bad usage exits 2
 * and a network without mean-field neurons exits 1. */
static void test_experiment_hysteresis(void **state)
{
    cli_env *e = *state;
    char *net = tu_path("networks/hysteresis.json");
    proc p;
    run_dmm(
        e, &p,
        (const char *[]){"experiment", "hysteresis", "--network", net, NULL});
    expect_code(&p, 0);
    json_error_t jerr;
    json_t *r = json_loads(p.out, 0, &jerr);
    assert_non_null(r);
    json_t *ns = json_object_get(r, "neurons");
    assert_int_equal(json_array_size(ns), 2);
    const double ks[2] = {1.5, 2.0};
    for (size_t i = 0; i < 2; i++) {
        json_t *n = json_array_get(ns, i);
        double k = json_real_value(json_object_get(n, "K"));
        if (json_is_integer(json_object_get(n, "K")))
            k = (double)json_integer_value(json_object_get(n, "K"));
        assert_true(k == ks[i]);
        double hc = json_real_value(json_object_get(n, "h_c"));
        assert_true(hc > 0.2 && hc < 0.6);
        json_t *jumps = json_object_get(n, "jumps");
        assert_int_equal(json_array_size(jumps), 2);
        for (size_t j = 0; j < 2; j++) {
            json_t *jp = json_array_get(jumps, j);
            double h = json_real_value(json_object_get(jp, "h"));
            double before = json_real_value(json_object_get(jp, "h_before"));
            assert_true(j == 0 ? h < 0 : h > 0); /* down first, then up */
            assert_true(fabs(h) >= hc && fabs(h) - hc < 0.01);
            assert_true(fabs(before) <= hc); /* the first cycle past h_c */
        }
    }
    json_decref(r);
    proc_free(&p);

    run_dmm(e, &p,
            (const char *[]){"experiment", "hysteresis", "--seed", "1", NULL});
    expect_code(&p, 2);
    proc_free(&p);
    run_dmm(e, &p,
            (const char *[]){"experiment", "hysteresis", "--steps", "0", NULL});
    expect_code(&p, 2);
    proc_free(&p);
    char *wave = tu_path("networks/wave.json");
    run_dmm(e, &p,
            (const char *[]){"experiment", "hysteresis", "--network", wave,
                             "--steps", "3", NULL});
    expect_code(&p, 1);
    assert_non_null(strstr(p.err, "no mean-field neuron"));
    proc_free(&p);
    free(wave);
    free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_wave),
        cmocka_unit_test(test_vector_reader_accum),
        cmocka_unit_test(test_vector_char_count),
        cmocka_unit_test(test_bundled_networks),
        cmocka_unit_test(test_wave_period),
        cmocka_unit_test(test_example_networks),
        cmocka_unit_test(test_script_errors),
        cmocka_unit_test(test_script_events),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_numeric_fault),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_check_field_kinds),
        cmocka_unit_test(test_check_script_like_run),
        cmocka_unit_test(test_fields_doc_examples),
        cmocka_unit_test(test_save_resume),
        cmocka_unit_test(test_help_version_neurons),
        cmocka_unit_test(test_stats_and_depth),
        cmocka_unit_test(test_experiment_hysteresis),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
