// SPDX-License-Identifier: MIT
/*
 * `dmm plot TRACE.jsonl --select PATH... --out FILE.png`: the selected
 * values of a `dmm run --trace` over time. The selection is the one of
 * `dmm run --select` (cli_trace.c), applied here to each line; the values go
 * as "K STEP PATH VALUE" lines (K: which --select) to tools/plot_trace.py,
 * which draws them with Debian's matplotlib as the experiment plots do.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Draw data (the K STEP PATH VALUE file) into png; 0 or an exit code. */
static int draw(const char *data, const char *png, const char *title,
                const char *const *select, size_t nselect)
{
    char script[PATH_MAX];
    if (!dmm__data_file("tools/plot_trace.py", script, sizeof script)) {
        fprintf(stderr, "dmm plot: cannot find tools/plot_trace.py\n");
        return DMM_EXIT_INPUT;
    }
    char **args = calloc(nselect + 5, sizeof *args);
    if (!args)
        return DMM_EXIT_INPUT;
    size_t na = 0;
    args[na++] = script;
    args[na++] = (char *)data;
    args[na++] = (char *)png;
    args[na++] = (char *)title;
    for (size_t k = 0; k < nselect; k++)
        args[na++] = (char *)select[k];
    args[na] = NULL;
    int rc = dmm__run_python("plot", args);
    free(args);
    return rc;
}

/* Read the trace in (named src), write each selection's values to out.
 * 0 or an exit code; *points gets the number of values written. */
static int extract(FILE *in, const char *src, FILE *out, vv_ctx *vc,
                   dmm__trace *tr, size_t nselect, size_t *points)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, status = 0;
    vv_buf b = {0};
    *points = 0;
    while (status == 0 && (n = getline(&line, &cap, in)) > 0) {
        lineno++;
        if (n == 1 && line[0] == '\n')
            continue;
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)n, 0, &je);
        json_t *jo = j ? json_object_get(j, "outputs") : NULL;
        json_t *js = j ? json_object_get(j, "step") : NULL;
        if (!jo || !json_is_integer(js) || json_integer_value(js) < 0) {
            fprintf(stderr,
                    "%s:%d: not a trace line {\"step\": t, \"outputs\": "
                    "{...}} (write one with dmm run --trace)%s%s\n",
                    src, lineno, j ? "" : ": ", j ? "" : je.text);
            json_decref(j);
            status = DMM_EXIT_INPUT;
            break;
        }
        dmm_error err;
        dmm_error_clear(&err);
        vv y;
        if (vv_from_json(vc, jo, "/outputs", &y, &err) < 0) {
            fprintf(stderr, "%s:%d: %s: %s\n", src, lineno, err.path, err.text);
            json_decref(j);
            status = DMM_EXIT_INPUT;
            break;
        }
        for (size_t k = 0; k < nselect && status == 0; k++) {
            b.len = 0;
            if (dmm__trace_write(&tr[k], (uint64_t)json_integer_value(js), y,
                                 &b) < 0) {
                status = DMM_EXIT_INPUT;
                break;
            }
            /* each flat line gets its selection's number in front */
            for (size_t i = 0; i < b.len;) {
                char *nl = memchr(b.data + i, '\n', b.len - i);
                size_t len = nl ? (size_t)(nl - (b.data + i)) + 1 : b.len - i;
                fprintf(out, "%zu %.*s", k, (int)len, b.data + i);
                i += len;
                ++*points;
            }
        }
        vv_free(vc, y);
        json_decref(j);
    }
    free(b.data);
    free(line);
    if (status == 0 && ferror(in)) {
        fprintf(stderr, "%s: read error\n", src);
        status = DMM_EXIT_INPUT;
    }
    return status;
}

int dmm__cmd_plot(int argc, char **argv)
{
    const char *cmd = "plot";
    const char *trace = NULL, *png = NULL, *title = NULL;
    const char **select = calloc((size_t)argc, sizeof *select);
    size_t nselect = 0;
    if (!select)
        return DMM_EXIT_INPUT;
    int status = 0;
    for (int i = 1; i < argc && status == 0; i++) {
        const char *a = argv[i], *v;
        int m;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            free(select);
            dmm__print_help(stdout, cmd);
            return DMM_EXIT_OK;
        } else if (a[0] != '-' || !strcmp(a, "-")) {
            if (trace)
                status = dmm__usage_error(cmd, "unexpected argument \"%s\"", a);
            trace = a;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--select", &v))) {
            if (m < 0)
                status = dmm__usage_error(cmd, "--select needs a path");
            else
                select[nselect++] = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--out", &v))) {
            if (m < 0)
                status = dmm__usage_error(cmd, "--out needs a file name");
            png = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--title", &v))) {
            if (m < 0)
                status = dmm__usage_error(cmd, "--title needs a value");
            title = v;
        } else {
            status = dmm__unknown_option(cmd, a);
        }
    }
    if (status == 0 && !trace)
        status = dmm__usage_error(cmd, "missing TRACE.jsonl (or - for stdin)");
    else if (status == 0 && !nselect)
        status = dmm__usage_error(cmd, "missing --select PATH (what to plot)");
    else if (status == 0 && !png)
        status = dmm__usage_error(cmd, "missing --out FILE.png");
    else if (status == 0 && nselect > DMM__MAX_SELECT)
        status =
            dmm__usage_error(cmd, "at most %d --select paths", DMM__MAX_SELECT);
    if (status) {
        free(select);
        return status;
    }

    FILE *in = strcmp(trace, "-") ? fopen(trace, "r") : stdin;
    if (!in) {
        fprintf(stderr, "%s: cannot open: %s\n", trace, strerror(errno));
        free(select);
        return DMM_EXIT_INPUT;
    }
    char data[PATH_MAX];
    const char *dir = getenv("TMPDIR");
    snprintf(data, sizeof data, "%s/dmm-plot-XXXXXX",
             dir && *dir ? dir : "/tmp");
    int fd = mkstemp(data);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm__trace *tr = calloc(nselect, sizeof *tr);
    if (!out || !vc || !tr) {
        fprintf(stderr, "dmm plot: cannot create the plot data: %s\n",
                strerror(errno));
        status = DMM_EXIT_INPUT;
    }
    /* Labels that a trace line brings are interned while reading it, so a
     * selection is set up again once the first line has been read: the
     * simplest is to intern the selection's labels first. */
    for (size_t k = 0; status == 0 && k < nselect; k++) {
        dmm_error err;
        vv_label tmp[DMM__MAX_SELECT_DEPTH];
        size_t np;
        if (dmm_path_parse(vc, select[k], strlen(select[k]), tmp,
                           DMM__MAX_SELECT_DEPTH, &np, NULL, &err) < 0) {
            status = dmm__usage_error(cmd, "--select \"%s\": %s", select[k],
                                      err.text);
            break;
        }
        status = dmm__trace_init(&tr[k], vc, NULL, &select[k], 1, true, false,
                                 DMM__FORMAT_FLAT);
    }
    size_t points = 0;
    if (status == 0)
        status = extract(in, strcmp(trace, "-") ? trace : "<stdin>", out, vc,
                         tr, nselect, &points);
    if (out && fclose(out) != 0 && status == 0) {
        fprintf(stderr, "dmm plot: cannot write the plot data\n");
        status = DMM_EXIT_INPUT;
    } else if (!out && fd >= 0)
        close(fd);
    if (status == 0 && points == 0) {
        fprintf(stderr,
                "dmm plot: %s: nothing under the selected paths in "
                "any line\n",
                trace);
        status = DMM_EXIT_INPUT;
    }
    if (status == 0)
        status = draw(data, png,
                      title                ? title
                      : strcmp(trace, "-") ? trace
                                           : "trace from stdin",
                      select, nselect);
    if (fd >= 0)
        unlink(data);
    if (in != stdin)
        fclose(in);
    free(tr);
    if (vc)
        vv_ctx_free(vc);
    free(select);
    return status;
}
