// SPDX-License-Identifier: MIT
/*
 * `dmm render`: run a network and turn one of its outputs, after each
 * cycle, into a picture (docs/cli.md#dmm-render). Every frame is collected
 * first and laid out by the render library, so a bad value (a ragged
 * matrix, a depth that is no matrix) is refused before any file is written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dmm_render.h"
#include "dmm_script.h"

enum { MAX_IMAGES = 8, MAX_STEPS = 10000 };

typedef struct render_opts {
    const char *net, *path, *out, *animate, *script;
    const char *image[MAX_IMAGES]; /* "input/NAME=FILE.png" */
    int nimages;
    uint64_t steps, skip;
    bool have_steps, help;
    dmm_render_opts ro;
} render_opts;

static int parse_range(const char *v, dmm_render_opts *ro)
{
    if (!strcmp(v, "fixed")) {
        ro->range = DMM_RANGE_FIXED;
        return 0;
    }
    if (!strcmp(v, "frame")) {
        ro->range = DMM_RANGE_FRAME;
        return 0;
    }
    char *end;
    errno = 0;
    ro->lo = strtod(v, &end);
    if (end == v || *end != ':' || errno)
        return -1;
    const char *h = end + 1;
    ro->hi = strtod(h, &end);
    if (end == h || *end || errno || !(ro->lo < ro->hi))
        return -1;
    ro->range = DMM_RANGE_GIVEN;
    return 0;
}

static int parse_render_args(int argc, char **argv, render_opts *o)
{
    const char *cmd = "render";
    o->ro = (dmm_render_opts){.scale = 1, .delay_ms = 100};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        uint64_t n;
        if (a[0] != '-' || a[1] == '\0') {
            if (o->net)
                return dmm__usage_error(cmd, "unexpected argument \"%s\"", a);
            o->net = a;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = true;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--path", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--path needs TYPE/NAME/OUTPUT");
            o->path = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--steps", &v))) {
            if (m < 0 || !dmm__parse_count(v, 1, MAX_STEPS, &o->steps))
                return dmm__usage_error(cmd,
                                        "--steps: expected an integer from 1 "
                                        "to %d, got \"%s\"",
                                        MAX_STEPS, m < 0 ? "" : v);
            o->have_steps = true;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--skip", &v))) {
            if (m < 0 || !dmm__parse_count(v, 0, MAX_STEPS, &o->skip))
                return dmm__usage_error(cmd,
                                        "--skip: expected an integer from 0 "
                                        "to %d, got \"%s\"",
                                        MAX_STEPS, m < 0 ? "" : v);
        } else if ((m = dmm__opt_value(argc, argv, &i, "--out", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--out needs a folder");
            o->out = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--animate", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--animate needs FILE.gif");
            o->animate = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--range", &v))) {
            if (m < 0 || parse_range(v, &o->ro))
                return dmm__usage_error(cmd,
                                        "--range: expected fixed, frame or "
                                        "LO:HI with LO < HI, got \"%s\"",
                                        m < 0 ? "" : v);
        } else if ((m = dmm__opt_value(argc, argv, &i, "--scale", &v))) {
            if (m < 0 || !dmm__parse_count(v, 1, 64, &n))
                return dmm__usage_error(cmd,
                                        "--scale: expected an integer from 1 "
                                        "to 64, got \"%s\"",
                                        m < 0 ? "" : v);
            o->ro.scale = (unsigned)n;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--delay", &v))) {
            if (m < 0 || !dmm__parse_count(v, 10, 10000, &n))
                return dmm__usage_error(cmd,
                                        "--delay: expected milliseconds from "
                                        "10 to 10000, got \"%s\"",
                                        m < 0 ? "" : v);
            o->ro.delay_ms = (unsigned)n;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--colours", &v))) {
            if (m < 0 || !dmm__parse_count(v, 8, 256, &n))
                return dmm__usage_error(cmd,
                                        "--colours: expected an integer from "
                                        "8 to 256, got \"%s\"",
                                        m < 0 ? "" : v);
            o->ro.colours = (unsigned)n;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--script", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--script needs a file name");
            o->script = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--image", &v))) {
            if (m < 0 || !strchr(v, '='))
                return dmm__usage_error(cmd,
                                        "--image: expected "
                                        "input/NAME=FILE.png, got \"%s\"",
                                        m < 0 ? "" : v);
            if (o->nimages == MAX_IMAGES)
                return dmm__usage_error(cmd, "at most %d --image options",
                                        MAX_IMAGES);
            o->image[o->nimages++] = v;
        } else {
            return dmm__usage_error(cmd, "unknown option \"%s\"", a);
        }
    }
    if (o->help)
        return 0;
    if (!o->net)
        return dmm__usage_error(cmd, "missing NET.json");
    if (!o->path)
        return dmm__usage_error(cmd, "missing --path TYPE/NAME/OUTPUT");
    if (!o->have_steps)
        return dmm__usage_error(cmd, "missing --steps N");
    if (!o->out && !o->animate)
        return dmm__usage_error(cmd, "nothing to write: give --out DIR, "
                                     "--animate FILE.gif or both");
    if (o->animate) {
        size_t n = strlen(o->animate);
        if (n < 4 || (strcmp(o->animate + n - 4, ".gif") &&
                      strcmp(o->animate + n - 4, ".png")))
            return dmm__usage_error(cmd,
                                    "--animate %s: the name must end in "
                                    ".gif (GIF) or .png (animated PNG)",
                                    o->animate);
    }
    return 0;
}

/* An image to feed: the input neuron's name and the picture as a value. */
typedef struct feed_image {
    vv_label name;
    vv value; /* {"image": picture} */
} feed_image;

/* Read "input/NAME=FILE.png" into fi; prints and returns an exit code. */
static int load_image(vv_ctx *vc, const char *spec, feed_image *fi)
{
    const char *eq = strchr(spec, '=');
    vv_label name, image;
    dmm_error err;
    dmm_error_clear(&err);
    if (!eq ||
        dmm_feed_neuron(vc, spec, (size_t)(eq - spec), "", &name, &err) < 0) {
        fprintf(stderr,
                "dmm render: --image %s: expected input/NAME=FILE.png (an "
                "input neuron)\n",
                spec);
        return DMM_EXIT_USAGE;
    }
    vv pic;
    if (dmm_png_read(vc, eq + 1, &pic, &err) < 0) {
        fprintf(stderr, "dmm render: --image: ");
        dmm__print_error(&err);
        return DMM_EXIT_INPUT;
    }
    int rc = vv_intern_cstr(vc, "image", &image);
    if (!rc)
        rc = vv_from_pairs(vc, 0.0, 1, &image, &pic, &fi->value);
    if (rc) {
        fprintf(stderr, "dmm render: %s\n", dmm_strerror(rc));
        return DMM_EXIT_INPUT;
    }
    fi->name = name;
    return 0;
}

/* Check --path against the network; prints and returns an exit code. */
static int resolve_path(dmm_net *net, const render_opts *o, vv_label *path,
                        size_t *n)
{
    vv_ctx *vc = dmm_net_vctx(net);
    dmm_error err;
    dmm_error_clear(&err);
    enum { MAXP = 16 };
    if (dmm_path_parse(vc, o->path, strlen(o->path), path, MAXP, n, NULL,
                       &err) < 0 ||
        *n < 3) {
        fprintf(
            stderr,
            "dmm render: --path %s: expected TYPE/NAME/OUTPUT[/MORE] (%s)\n",
            o->path, err.text[0] ? err.text : "fewer than three parts");
        return DMM_EXIT_USAGE;
    }
    vv_label self[3];
    dmm_net_self(net, self);
    bool is_self = path[0] == self[0] && path[1] == self[1];
    if (!is_self && vv_is_zero(vv_get(dmm_net_matrix(net), path, 2))) {
        fprintf(stderr,
                "%s: --path %s: the network has no neuron %s/%s (W has no "
                "row for it, so it never fires)\n",
                o->net, o->path, vv_label_str(vc, path[0], NULL),
                vv_label_str(vc, path[1], NULL));
        return DMM_EXIT_INPUT;
    }
    return 0;
}

static int write_frames(const render_opts *o, const dmm_frames *fr, uint64_t t0)
{
    dmm_error err;
    dmm_error_clear(&err);
    if (o->out) {
        if (mkdir(o->out, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "dmm render: --out %s: %s\n", o->out,
                    strerror(errno));
            return DMM_EXIT_INPUT;
        }
        size_t n = strlen(o->out) + 32;
        char *name = malloc(n);
        if (!name)
            return DMM_EXIT_INPUT;
        for (size_t k = 0; k < fr->n; k++) {
            snprintf(name, n, "%s/frame-%06llu.png", o->out,
                     (unsigned long long)(t0 + k + 1));
            if (dmm_frames_write_png(fr, k, &o->ro, name, &err) < 0) {
                dmm__print_error(&err);
                free(name);
                return DMM_EXIT_INPUT;
            }
        }
        free(name);
    }
    size_t n = o->animate ? strlen(o->animate) : 0;
    bool apng = n >= 4 && !strcmp(o->animate + n - 4, ".png");
    if (o->animate &&
        (apng ? dmm_frames_write_apng(fr, &o->ro, o->animate, &err)
              : dmm_frames_write_gif(fr, &o->ro, o->animate, &err)) < 0) {
        dmm__print_error(&err);
        return DMM_EXIT_INPUT;
    }
    return DMM_EXIT_OK;
}

static int render(const render_opts *o, vv_ctx *vc, const dmm_registry *reg)
{
    dmm_error err;
    dmm_error_clear(&err);
    dmm_net *net = NULL;
    dmm_script script = {.ev = NULL, .n = 0};
    feed_image img[MAX_IMAGES];
    vv *frames = calloc(o->steps, sizeof *frames);
    int status = DMM_EXIT_OK, nimg = 0;
    size_t nframes = 0;
    if (!frames)
        return DMM_EXIT_INPUT;
    if (dmm_net_load_file(vc, reg, o->net, &net, &err) < 0) {
        dmm__print_error(&err);
        free(frames);
        return DMM_EXIT_INPUT;
    }
    vv_label path[16];
    size_t np = 0;
    if ((status = resolve_path(net, o, path, &np)))
        goto done;
    for (; nimg < o->nimages; nimg++)
        if ((status = load_image(vc, o->image[nimg], &img[nimg])))
            goto done;
    if (o->script && dmm_script_load(vc, o->script, &script, &err) < 0) {
        dmm__print_error(&err);
        status = DMM_EXIT_INPUT;
        goto done;
    }
    /* the events as `dmm run` applies them: before the cycle of their step,
     * the first skip cycles included */
    size_t next =
        dmm__script_start(&script, dmm_net_step_count(net), o->skip + o->steps);
    uint64_t t0 = dmm_net_step_count(net) + o->skip;
    dmm__progress bar;
    dmm__progress_begin(&bar, o->skip + o->steps, "cycles");
    for (uint64_t k = 0; k < o->skip + o->steps; k++) {
        dmm__progress_tick(&bar, k);
        if (dmm__script_apply_due(net, &script, &next, &err) < 0) {
            dmm__progress_end(&bar);
            dmm__print_error(&err);
            status = DMM_EXIT_INPUT;
            goto done;
        }
        for (int q = 0; q < nimg; q++)
            if (dmm_net_feed(net, img[q].name, img[q].value, &err) < 0) {
                dmm__progress_end(&bar);
                dmm__print_error(&err);
                status = DMM_EXIT_INPUT;
                goto done;
            }
        int rc = dmm_net_step(net, &err);
        if (rc == 0)
            rc = dmm_net_outputs_build(net, &err);
        if (rc < 0) {
            dmm__progress_end(&bar);
            dmm__print_error(&err);
            status = rc == DMM_E_NONFINITE ? DMM_EXIT_FAULT : DMM_EXIT_INPUT;
            goto done;
        }
        if (k >= o->skip)
            frames[nframes++] = vv_ref(vv_get(dmm_net_outputs(net), path, np));
    }
    dmm__progress_end(&bar);
    char what[600];
    snprintf(what, sizeof what, "--path %s", o->path);
    dmm_frames fr;
    if (dmm_frames_build(vc, frames, nframes, what, &fr, &err) < 0) {
        dmm_error_set_source(&err, o->net);
        dmm__print_error(&err);
        status = DMM_EXIT_INPUT;
        goto done;
    }
    status = write_frames(o, &fr, t0);
    dmm_frames_free(&fr);
done:
    for (size_t k = 0; k < nframes; k++)
        vv_free(vc, frames[k]);
    for (int q = 0; q < nimg; q++)
        vv_free(vc, img[q].value);
    dmm_script_free(vc, &script);
    free(frames);
    dmm_net_free(net);
    return status;
}

int dmm__cmd_render(int argc, char **argv)
{
    render_opts o = {0};
    int rc = parse_render_args(argc, argv, &o);
    if (rc)
        return rc;
    if (o.help) {
        dmm__print_help(stdout, "render");
        return DMM_EXIT_OK;
    }
    vv_ctx *vc;
    dmm_registry *reg;
    dmm__plugins pl;
    int status = dmm__make_env("render", 0, NULL, 0, &vc, &reg, &pl);
    if (status)
        return status;
    status = render(&o, vc, reg);
    dmm_registry_free(reg);
    dmm__plugins_close(&pl);
    vv_ctx_free(vc);
    return status;
}
