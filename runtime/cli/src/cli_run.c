// SPDX-License-Identifier: MIT
/*
 * `dmm run` and `dmm check`: argument parsing, loading, the run loop that
 * applies script events between cycles, output lines, state files and
 * statistics. Step numbers are absolute cycle numbers everywhere (a resumed
 * run continues the count of the run that saved the state).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "dmm_script.h"

typedef struct run_opts {
    const char *net;
    const char *resume;
    const char *script;
    const char *save;
    uint64_t steps;
    bool have_steps;
    bool trace;
    bool stats;
    bool help;
    int max_depth;       /* 0: the library's default */
    uint64_t threads;    /* 0: not given (one thread) */
    const char **select; /* --select paths (argv strings), nselect of them */
    size_t nselect;
    bool self;            /* --self: keep Self's output in a trace */
    const char **plugins; /* --plugin files (argv strings) */
    size_t nplugins;
    dmm__format format;
} run_opts;

static int parse_max_depth(const char *cmd, const char *v, int *out)
{
    uint64_t d;
    if (!dmm__parse_count(v, 0, UINT64_MAX, &d) || d < 1 || d > INT_MAX)
        return dmm__usage_error(cmd,
                                "--max-depth: expected a positive integer, "
                                "got \"%s\"",
                                v);
    *out = (int)d;
    return 0;
}

static int parse_run_args(int argc, char **argv, run_opts *o)
{
    const char *cmd = "run";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        int m;
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) {
                if (o->net)
                    return dmm__usage_error(cmd, "unexpected argument \"%s\"",
                                            argv[i]);
                o->net = argv[i];
            }
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (o->net)
                return dmm__usage_error(cmd, "unexpected argument \"%s\"", a);
            o->net = a;
            continue;
        }
        if (!strcmp(a, "--trace")) {
            o->trace = true;
        } else if (!strcmp(a, "--stats")) {
            o->stats = true;
        } else if (!strcmp(a, "--self")) {
            o->self = true;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--plugin", &v)) != 0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--plugin needs a file name");
            o->plugins[o->nplugins++] = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--select", &v)) != 0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--select needs a path");
            o->select[o->nselect++] = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--format", &v)) != 0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--format needs a value");
            if (!strcmp(v, "json"))
                o->format = DMM__FORMAT_JSON;
            else if (!strcmp(v, "pretty"))
                o->format = DMM__FORMAT_PRETTY;
            else if (!strcmp(v, "flat"))
                o->format = DMM__FORMAT_FLAT;
            else
                return dmm__usage_error(cmd,
                                        "--format: expected json, pretty or "
                                        "flat, got \"%s\"",
                                        v);
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = true;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--steps", &v)) != 0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--steps needs a value");
            if (!dmm__parse_count(v, 0, UINT64_MAX, &o->steps))
                return dmm__usage_error(cmd,
                                        "--steps: expected a non-negative "
                                        "integer, got \"%s\"",
                                        v);
            o->have_steps = true;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--script", &v)) != 0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--script needs a file name");
            o->script = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--save", &v)) != 0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--save needs a file name");
            o->save = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--resume", &v)) != 0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--resume needs a file name");
            o->resume = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--max-depth", &v)) !=
                   0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--max-depth needs a value");
            int rc = parse_max_depth(cmd, v, &o->max_depth);
            if (rc)
                return rc;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--threads", &v)) != 0) {
            if (m < 0)
                return dmm__usage_error(cmd, "--threads needs a value");
            if (!dmm__parse_count(v, 0, UINT64_MAX, &o->threads) ||
                o->threads < 1 || o->threads > 64)
                return dmm__usage_error(cmd,
                                        "--threads: expected an integer from "
                                        "1 to 64, got \"%s\"",
                                        v);
        } else {
            return dmm__unknown_option(cmd, a);
        }
    }
    if (o->help)
        return 0;
    if (o->net && o->resume)
        return dmm__usage_error(cmd, "give either NET.json or --resume "
                                     "STATE.json, not both");
    if (!o->net && !o->resume)
        return dmm__usage_error(cmd, "missing NET.json (or --resume "
                                     "STATE.json)");
    if (!o->have_steps)
        return dmm__usage_error(cmd, "missing --steps N");
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What one step prints: by default the line {"step": t, "outputs": Y_t};
 * tr selects and formats (cli_trace.c). */
static int print_line(dmm_net *net, const dmm__trace *tr, vv_buf *b)
{
    b->len = 0;
    int rc = dmm_net_outputs_build(net, NULL);
    if (rc == 0)
        rc = dmm__trace_write(tr, dmm_net_step_count(net), dmm_net_outputs(net),
                              b);
    if (rc < 0)
        return rc;
    if (fwrite(b->data, 1, b->len, stdout) != b->len)
        return DMM_E_IO;
    return 0;
}

/* Apply one script event to net, with an error located at its line. The
 * one path for `run` and `check --script`, so both refuse the same events
 * with the same message. */
static int apply_event(dmm_net *net, const dmm_script *s, const dmm_event *ev,
                       dmm_error *err)
{
    int rc = ev->op == DMM_EV_EDIT ? dmm_net_edit(net, ev->value, err)
             : ev->op == DMM_EV_FEED
                 ? dmm_net_feed(net, ev->name, ev->value, err)
                 : dmm_event_apply_fields(net, ev, err);
    if (rc < 0) {
        dmm_error_set_source(err, s->source);
        if (err) {
            err->line = ev->line;
            err->column = 0;
            /* The engine's path is inside the delta; make it a path
             * inside the event, as for errors found up front. */
            size_t n = strlen(err->path);
            if (ev->op == DMM_EV_EDIT && err->path[0] == '/' &&
                strncmp(err->path, "/delta/", 7) != 0 &&
                n + 7 <= sizeof err->path) {
                memmove(err->path + 6, err->path, n + 1);
                memcpy(err->path, "/delta", 6);
            }
        }
    }
    return rc;
}

/* Apply the script's events for the next cycle (events[*next..] with
 * step == the cycle about to run). */
int dmm__script_apply_due(dmm_net *net, const dmm_script *s, size_t *next,
                          dmm_error *err)
{
    uint64_t t = dmm_net_step_count(net) + 1;
    while (*next < s->n && s->ev[*next].step == t) {
        int rc = apply_event(net, s, &s->ev[*next], err);
        if (rc < 0)
            return rc;
        ++*next;
    }
    return 0;
}

/* Events before the starting cycle t0 belong to the run that saved the
 * state; events after the last cycle (t0 + steps) are reported, not
 * applied. */
size_t dmm__script_start(const dmm_script *s, uint64_t t0, uint64_t steps)
{
    uint64_t last = steps > UINT64_MAX - t0 ? UINT64_MAX : t0 + steps;
    size_t next = 0;
    while (next < s->n && s->ev[next].step <= t0)
        next++;
    size_t late = 0;
    for (size_t i = next; i < s->n; i++)
        if (s->ev[i].step > last) {
            if (!late)
                fprintf(stderr,
                        "%s:%d: warning: step %llu is after the last cycle "
                        "(%llu)",
                        s->source, s->ev[i].line,
                        (unsigned long long)s->ev[i].step,
                        (unsigned long long)last);
            late++;
        }
    if (late > 1)
        fprintf(stderr, "; %zu events are not applied\n", late);
    else if (late == 1)
        fprintf(stderr, "; the event is not applied\n");
    return next;
}

/* check --script: every event applied in order to net, as run would apply
 * it (without the cycles between them, which only a run can know). */
static int check_script_on(dmm_net *net, const dmm_script *s, dmm_error *err)
{
    for (size_t k = 0; k < s->n; k++) {
        int rc = apply_event(net, s, &s->ev[k], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void print_stats(uint64_t cycles, double secs, vv_ctx *vc)
{
    struct rusage ru;
    long peak_kib = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        peak_kib = ru.ru_maxrss; /* KiB on Linux */
    double per = cycles ? secs / (double)cycles : 0.0;
    double rate = secs > 0 ? (double)cycles / secs : 0.0;
    fprintf(stderr,
            "stats: %llu cycles in %.6f s: %.0f cycles/s, %.3f us/cycle; "
            "peak memory %ld KiB (values %zu bytes now)\n",
            (unsigned long long)cycles, secs, rate, per * 1e6, peak_kib,
            vv_ctx_bytes(vc));
}

static int run(const run_opts *o, vv_ctx *vc, const dmm_registry *reg)
{
    dmm_error err;
    dmm_error_clear(&err);
    dmm_net *net = NULL;
    dmm_script script = {.ev = NULL, .n = 0};
    vv_buf out = {0};
    int status = DMM_EXIT_OK;
    int rc = o->resume ? dmm_net_restore_file(vc, reg, o->resume, &net, &err)
                       : dmm_net_load_file(vc, reg, o->net, &net, &err);
    if (rc < 0) {
        dmm__print_error(&err);
        return DMM_EXIT_INPUT;
    }
    if (o->threads > 1 &&
        dmm_net_set_threads(net, (unsigned)o->threads, &err) < 0) {
        dmm__print_error(&err);
        dmm_net_free(net);
        return DMM_EXIT_INPUT;
    }
    dmm__trace tr;
    rc = dmm__trace_init(&tr, vc, net, o->select, o->nselect, o->self, o->trace,
                         o->format);
    if (rc) {
        dmm_net_free(net);
        return rc;
    }
    if (o->script) {
        rc = dmm_script_load(vc, o->script, &script, &err);
        if (rc < 0) {
            dmm__print_error(&err);
            dmm_net_free(net);
            return DMM_EXIT_INPUT;
        }
    }

    size_t next = dmm__script_start(&script, dmm_net_step_count(net), o->steps);
    double secs = 0;
    uint64_t done = 0;
    dmm__progress bar;
    dmm__progress_begin(&bar, o->steps, "cycles");
    for (uint64_t k = 0; k < o->steps; k++) {
        dmm__progress_tick(&bar, k);
        rc = dmm__script_apply_due(net, &script, &next, &err);
        if (rc < 0) {
            dmm__print_error(&err);
            status = DMM_EXIT_INPUT;
            break;
        }
        double t = o->stats ? now_seconds() : 0;
        rc = dmm_net_step(net, &err);
        if (o->stats)
            secs += now_seconds() - t;
        if (rc < 0) {
            dmm__print_error(&err);
            status = rc == DMM_E_NONFINITE ? DMM_EXIT_FAULT : DMM_EXIT_INPUT;
            break;
        }
        done++;
        if (o->trace && (rc = print_line(net, &tr, &out)) < 0)
            break;
    }
    dmm__progress_end(&bar);
    if (rc == 0 && status == DMM_EXIT_OK && !o->trace)
        rc = print_line(net, &tr, &out);
    if (rc < 0 && status == DMM_EXIT_OK) {
        fprintf(stderr, "dmm: cannot write the output: %s\n",
                rc == DMM_E_IO ? strerror(errno) : dmm_strerror(rc));
        status = DMM_EXIT_INPUT;
    }
    if (fflush(stdout) != 0 && status == DMM_EXIT_OK) {
        fprintf(stderr, "dmm: cannot write the output: %s\n", strerror(errno));
        status = DMM_EXIT_INPUT;
    }
    /* A failed cycle leaves the network as it was: the state saved after a
     * fault is the last good one. */
    if (o->save) {
        dmm_error_clear(&err);
        if (dmm_net_save_file(net, o->save, &err) < 0) {
            dmm__print_error(&err);
            if (status == DMM_EXIT_OK)
                status = DMM_EXIT_INPUT;
        }
    }
    if (o->stats)
        print_stats(done, secs, vc);
    free(out.data);
    dmm_script_free(vc, &script);
    dmm_net_free(net);
    return status;
}

/* A context and a registry with the built-in types and those of the plugins
 * (files, n). 0, or an exit code after printing why; on failure nothing is
 * left to free. */
int dmm__make_env(const char *cmd, int max_depth, const char *const *files,
                  size_t n, vv_ctx **vc, dmm_registry **reg, dmm__plugins *pl)
{
    vv_options vo = {.max_depth = max_depth};
    *vc = vv_ctx_new(&vo);
    *reg = *vc ? dmm_registry_new(*vc) : NULL;
    int rc = *reg ? dmm_registry_add_builtins(*reg) : DMM_E_NOMEM;
    int status = 0;
    if (rc < 0) {
        fprintf(stderr, "dmm: cannot set up the neuron registry: %s\n",
                dmm_strerror(rc));
        status = DMM_EXIT_INPUT;
        pl->handles = NULL;
        pl->n = 0;
    } else {
        status = dmm__plugins_load(cmd, *reg, files, n, pl);
    }
    if (status) {
        if (*reg)
            dmm_registry_free(*reg);
        dmm__plugins_close(pl);
        if (*vc)
            vv_ctx_free(*vc);
    }
    return status;
}

int dmm__cmd_run(int argc, char **argv)
{
    run_opts o = {0};
    o.select = calloc((size_t)argc, sizeof *o.select);
    o.plugins = calloc((size_t)argc, sizeof *o.plugins);
    if (!o.select || !o.plugins) {
        free(o.select);
        free(o.plugins);
        return DMM_EXIT_INPUT;
    }
    int rc = parse_run_args(argc, argv, &o);
    if (rc || o.help) {
        if (o.help && !rc)
            dmm__print_help(stdout, "run");
        free(o.select);
        free(o.plugins);
        return rc;
    }
    vv_ctx *vc;
    dmm_registry *reg;
    dmm__plugins pl;
    int status = dmm__make_env("run", o.max_depth, o.plugins, o.nplugins, &vc,
                               &reg, &pl);
    if (status == 0) {
        status = run(&o, vc, reg);
        dmm_registry_free(reg);
        dmm__plugins_close(&pl);
        vv_ctx_free(vc);
    }
    free(o.select);
    free(o.plugins);
    return status;
}

/* Active neurons (those with a row in W) and stored weights. */
static void count_matrix(vv w, size_t *neurons, size_t *weights)
{
    vv_iter it;
    vv_label l;
    vv type;
    *neurons = 0;
    vv_iter_init(&it, w);
    while (vv_iter_next(&it, &l, &type))
        *neurons += vv_nchildren(type);
    vv_stats st;
    vv_measure(w, &st);
    *weights = st.leaves;
}

/* RFC 6901 escaping of a label into b ("~" is "~0", "/" is "~1"). */
static int pointer_part(const vv_ctx *vc, vv_label l, vv_buf *b)
{
    size_t n;
    const char *s = vv_label_str(vc, l, &n);
    int rc = vv_buf_append(b, "/", 1);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s[i] == '~'   ? vv_buf_append(b, "~0", 2)
             : s[i] == '/' ? vv_buf_append(b, "~1", 2)
                           : vv_buf_append(b, &s[i], 1);
    return rc;
}

/* Whether the neuron (g, ng) ever emits something: it has a row in W (so it
 * fires), an output at the start, is Self, or is an input neuron (fed from
 * outside). */
static bool produced(vv w, vv y0, vv_label g, vv_label ng, const vv_label *self,
                     vv_label input)
{
    return g == input || (g == self[0] && ng == self[1]) ||
           !vv_is_zero(vv_child(vv_child(w, g), ng)) ||
           !vv_is_zero(vv_child(vv_child(y0, g), ng));
}

/* Into best: the "type/name" of the neuron of w or y0 closest to g/ng. */
static bool closest_neuron(const vv_ctx *vc, vv w, vv y0, const char *want,
                           char *best, size_t size)
{
    size_t bd = SIZE_MAX;
    vv maps[2] = {w, y0};
    for (int k = 0; k < 2; k++) {
        vv_iter ti, ni;
        vv_label t, nm;
        vv tv, nv;
        vv_iter_init(&ti, maps[k]);
        while (vv_iter_next(&ti, &t, &tv)) {
            vv_iter_init(&ni, tv);
            while (vv_iter_next(&ni, &nm, &nv)) {
                char cand[512];
                snprintf(cand, sizeof cand, "%s/%s", vv_label_str(vc, t, NULL),
                         vv_label_str(vc, nm, NULL));
                size_t d = dmm__edit_distance(want, cand);
                if (d < bd && dmm__close_enough(want, cand, d)) {
                    bd = d;
                    snprintf(best, size, "%s", cand);
                }
            }
        }
    }
    return bd != SIZE_MAX;
}

/*
 * Warn (on stderr, as "FILE: warning: /matrix/...: ...") about each source
 * of W that no neuron produces: such a term always reads zero, which is
 * almost always a misspelt name. Returns the number of warnings.
 */
/* "FILE: field F of modulation M is induced|external|mixed", a line per
 * modulation (docs/fields.md "Kinds of field"). */
static void print_field_kinds(const char *file, const dmm_net *net)
{
    vv_buf b = {0};
    if (dmm_net_field_kinds(net, &b) == 0 && vv_buf_append(&b, "", 1) == 0) {
        for (char *line = b.data, *nl; line && *line; line = nl + 1) {
            nl = strchr(line, '\n');
            *nl = '\0';
            /* "NAME" "FIELD" KIND, tab-separated (JSON strings escape
             * theirs) */
            char *field = strchr(line, '\t');
            *field = '\0';
            char *kind = strchr(field + 1, '\t');
            *kind = '\0';
            printf("%s: field %s of modulation %s is %s\n", file, field + 1,
                   line, kind + 1);
        }
    }
    free(b.data);
    fflush(stdout);
}

/* Is input in of type f one the type never reads (its rows are W's store,
 * as the learner's routes are)? */
static bool input_unread(const dmm_net *net, vv_label f, vv_label in)
{
    const dmm_type_info *t = dmm_registry_find(dmm_net_registry(net), f);
    return t && dmm_type_input_unread(t, in);
}

static size_t warn_unproduced(const char *file, dmm_net *net)
{
    vv_ctx *vc = dmm_net_vctx(net);
    vv w = dmm_net_matrix(net);
    if (dmm_net_outputs_build(net, NULL) < 0)
        return 0;
    vv y0 = dmm_net_outputs(net);
    vv_label self[3], input;
    dmm_net_self(net, self);
    if (vv_label_find(vc, "input", 5, &input) < 0)
        input = DMM__NO_LABEL; /* no input neuron anywhere */
    size_t count = 0;
    vv_buf b = {0};
    vv_iter i1, i2, i3, i4, i5;
    vv_label f, nf, in, g, ng;
    vv v1, v2, v3, v4, v5;
    vv_iter_init(&i1, w);
    while (vv_iter_next(&i1, &f, &v1)) {
        vv_iter_init(&i2, v1);
        while (vv_iter_next(&i2, &nf, &v2)) {
            vv_iter_init(&i3, v2);
            while (vv_iter_next(&i3, &in, &v3)) {
                if (input_unread(net, f, in))
                    continue; /* never computed: no term to be zero */
                vv_iter_init(&i4, v3);
                while (vv_iter_next(&i4, &g, &v4)) {
                    vv_iter_init(&i5, v4);
                    while (vv_iter_next(&i5, &ng, &v5)) {
                        if (produced(w, y0, g, ng, self, input))
                            continue;
                        vv_label parts[5] = {f, nf, in, g, ng};
                        b.len = 0;
                        int rc = vv_buf_append(&b, "/matrix", 7);
                        for (int k = 0; k < 5 && rc == 0; k++)
                            rc = pointer_part(vc, parts[k], &b);
                        if (rc == 0)
                            rc = vv_buf_append(&b, "", 1);
                        if (rc < 0)
                            continue;
                        char name[512], best[512];
                        snprintf(name, sizeof name, "%s/%s",
                                 vv_label_str(vc, g, NULL),
                                 vv_label_str(vc, ng, NULL));
                        fprintf(stderr,
                                "%s: warning: %s: no neuron produces \"%s\" "
                                "(it has no row in W and no starting output), "
                                "so this term is always zero",
                                file, b.data, name);
                        if (closest_neuron(vc, w, y0, name, best, sizeof best))
                            fprintf(stderr, "; did you mean \"%s\"?", best);
                        fputc('\n', stderr);
                        count++;
                    }
                }
            }
        }
    }
    free(b.data);
    return count;
}

int dmm__cmd_check(int argc, char **argv)
{
    const char *cmd = "check";
    const char *script = NULL;
    int max_depth = 0, first = 0, nfiles = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    const char **plugins = calloc((size_t)argc, sizeof *plugins);
    size_t nplugins = 0;
    if (!files || !plugins) {
        free(files);
        free(plugins);
        return DMM_EXIT_INPUT;
    }
    int status = DMM_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        int m;
        if (first || a[0] != '-' || a[1] == '\0') {
            files[nfiles++] = argv[i];
        } else if (!strcmp(a, "--")) {
            first = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            free(files);
            free(plugins);
            dmm__print_help(stdout, cmd);
            return DMM_EXIT_OK;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--script", &v)) != 0) {
            if (m < 0) {
                free(files);
                free(plugins);
                return dmm__usage_error(cmd, "--script needs a file name");
            }
            script = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--plugin", &v)) != 0) {
            if (m < 0) {
                free(files);
                free(plugins);
                return dmm__usage_error(cmd, "--plugin needs a file name");
            }
            plugins[nplugins++] = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--max-depth", &v)) !=
                   0) {
            int rc = m < 0 ? dmm__usage_error(cmd, "--max-depth needs a value")
                           : parse_max_depth(cmd, v, &max_depth);
            if (rc) {
                free(files);
                free(plugins);
                return rc;
            }
        } else {
            free(files);
            free(plugins);
            return dmm__unknown_option(cmd, a);
        }
    }
    if (nfiles == 0 && !script) {
        free(files);
        free(plugins);
        return dmm__usage_error(cmd, "missing NET.json");
    }
    vv_ctx *vc;
    dmm_registry *reg;
    dmm__plugins pl;
    status = dmm__make_env(cmd, max_depth, plugins, nplugins, &vc, &reg, &pl);
    free(plugins);
    if (status) {
        free(files);
        return status;
    }
    dmm_error err;
    for (int k = 0; k < nfiles; k++) {
        dmm_net *net = NULL;
        dmm_error_clear(&err);
        if (dmm_net_load_file(vc, reg, files[k], &net, &err) < 0) {
            dmm__print_error(&err);
            status = DMM_EXIT_INPUT;
            continue;
        }
        size_t neurons, weights;
        count_matrix(dmm_net_matrix(net), &neurons, &weights);
        printf("%s: ok (%zu neuron%s, %zu weight%s)\n", files[k], neurons,
               neurons == 1 ? "" : "s", weights, weights == 1 ? "" : "s");
        fflush(stdout);
        warn_unproduced(files[k], net);
        print_field_kinds(files[k], net);
        dmm_net_free(net);
    }
    if (script) {
        dmm_script s;
        dmm_error_clear(&err);
        if (dmm_script_load(vc, script, &s, &err) < 0) {
            dmm__print_error(&err);
            status = DMM_EXIT_INPUT;
        } else {
            /* Its events against each network given (or one holding only
             * Self), through the engine's own edit and feed. */
            static const char only_self[] =
                "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
                "{\"accum\": {\"self\": {\"single\": 1}}}}}}}";
            int bad = 0;
            for (int k = 0; k < (nfiles ? nfiles : 1) && !bad; k++) {
                dmm_net *net = NULL;
                int rc = nfiles
                             ? dmm_net_load_file(vc, reg, files[k], &net, &err)
                             : dmm_net_load_text(vc, reg, only_self,
                                                 sizeof only_self - 1,
                                                 "<only Self>", &net, &err);
                if (rc == 0 && check_script_on(net, &s, &err) < 0) {
                    dmm__print_error(&err);
                    bad = 1;
                }
                dmm_net_free(net);
            }
            if (bad)
                status = DMM_EXIT_INPUT;
            else
                printf("%s: ok (%zu event%s)\n", script, s.n,
                       s.n == 1 ? "" : "s");
            dmm_script_free(vc, &s);
        }
    }
    fflush(stdout);
    dmm_registry_free(reg);
    dmm__plugins_close(&pl);
    vv_ctx_free(vc);
    free(files);
    return status;
}
