// SPDX-License-Identifier: MIT
/*
 * `dmm serve`: command-line parsing for the live server (live_server.c),
 * and the option helpers that `dmm ctl` shares with it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dmm_live.h"

/* "max" or a number of cycles per second in (0, 1e9]; max is 0. */
static bool parse_rate(const char *s, double *out)
{
    if (!strcmp(s, "max")) {
        *out = 0;
        return true;
    }
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > 1e9)
        return false;
    *out = v;
    return true;
}

/* The serve options as given on the command line. */
typedef struct serve_cli {
    const char *net_file, *resume, *token_file;
    int per_address;
    const char **plugins;
    size_t nplugins;
} serve_cli;

static int serve_args(int argc, char **argv, dmm_serve_opts *op, serve_cli *c);

int dmm__cmd_serve(int argc, char **argv)
{
    const char *cmd = "serve";
    dmm_serve_opts o = {.rate = 10,
                        .max_clients = 256,
                        .max_message = 1 << 20,
                        .max_backlog = 1 << 20,
                        .max_buffered = (size_t)64 << 20,
                        .idle_timeout_ms = 60000,
                        .history = 64};
    serve_cli c = {.plugins = calloc((size_t)argc, sizeof *c.plugins)};
    if (!c.plugins)
        return DMM_EXIT_INPUT;
    int rc = serve_args(argc, argv, &o, &c);
    if (rc) {
        free(c.plugins);
        return rc < 0 ? DMM_EXIT_OK : rc;
    }
    /* One address keeps a quarter of the slots free for the others. */
    o.max_per_address =
        c.per_address ? c.per_address : o.max_clients - o.max_clients / 4;
    if (o.max_buffered < o.max_message)
        o.max_buffered = o.max_message;
    char *token = NULL;
    if (c.token_file && !(token = dmm__read_token_file(cmd, c.token_file))) {
        free(c.plugins);
        return DMM_EXIT_INPUT;
    }
    if (!o.token && !token && getenv("DMM_TOKEN") && *getenv("DMM_TOKEN"))
        token = strdup(getenv("DMM_TOKEN"));
    if (token)
        o.token = token;

    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
    if (!reg || dmm_registry_add_builtins(reg) < 0) {
        fprintf(stderr, "dmm serve: cannot set up the neuron registry\n");
        if (reg)
            dmm_registry_free(reg);
        vv_ctx_free(vc);
        free(c.plugins);
        free(token);
        return DMM_EXIT_INPUT;
    }
    dmm__plugins pl;
    rc = dmm__plugins_load(cmd, reg, c.plugins, c.nplugins, &pl);
    free(c.plugins);
    if (rc) {
        dmm_registry_free(reg);
        dmm__plugins_close(&pl);
        vv_ctx_free(vc);
        free(token);
        return rc;
    }
    dmm_error err;
    dmm_error_clear(&err);
    dmm_net *net = NULL;
    rc = c.resume ? dmm_net_restore_file(vc, reg, c.resume, &net, &err)
                  : dmm_net_load_file(vc, reg, c.net_file, &net, &err);
    if (rc == 0)
        rc = dmm_live_serve(vc, reg, net, &o, stdout, &err);
    if (rc < 0) {
        if (err.text[0])
            dmm__print_error(&err);
        else
            fprintf(stderr, "dmm serve: %s\n", dmm_strerror(rc));
    }
    dmm_registry_free(reg);
    dmm__plugins_close(&pl);
    vv_ctx_free(vc);
    free(token);
    return rc < 0 ? DMM_EXIT_INPUT : DMM_EXIT_OK;
}

/* The options of serve into op and c; 0, -1 after --help, or an exit
 * code. */
static int serve_args(int argc, char **argv, dmm_serve_opts *op, serve_cli *c)
{
    const char *cmd = "serve";
    dmm_serve_opts o = *op;
    const char *net_file = NULL, *resume = NULL;
    const char **token_file = &c->token_file, **plugins = c->plugins;
    size_t *nplugins = &c->nplugins;
    int *per_address = &c->per_address;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        uint64_t u;
        int m;
        if (a[0] != '-' || a[1] == '\0') {
            if (net_file)
                return dmm__usage_error(cmd, "unexpected argument \"%s\"", a);
            net_file = a;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            dmm__print_help(stdout, cmd);
            return -1;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--plugin", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--plugin needs a file name");
            plugins[(*nplugins)++] = v;
        } else if (!strcmp(a, "--paused")) {
            o.paused = true;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--listen", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--listen needs HOST:PORT");
            o.listen = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--http", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--http needs HOST:PORT");
            o.http = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--socket", &v))) {
            if (m < 0 || !*v)
                return dmm__usage_error(cmd, "--socket needs a path");
            o.socket = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--rate", &v))) {
            if (m < 0 || !parse_rate(v, &o.rate))
                return dmm__usage_error(cmd,
                                        "--rate: expected cycles per second "
                                        "(above 0, at most 1e9) or max");
        } else if ((m = dmm__opt_value(argc, argv, &i, "--log", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--log needs a file name");
            o.log = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--token", &v))) {
            if (m < 0 || !*v)
                return dmm__usage_error(cmd, "--token needs a value");
            o.token = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--token-file", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--token-file needs a file");
            *token_file = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--dir", &v))) {
            if (m < 0 || !*v)
                return dmm__usage_error(cmd, "--dir needs a directory");
            o.dir = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--history", &v))) {
            if (m < 0 || !dmm__parse_count(v, 0, 1000000, &u))
                return dmm__usage_error(cmd, "--history: expected 0 to "
                                             "1000000 changes");
            o.history = (size_t)u;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--idle-timeout", &v))) {
            if (m < 0 || !dmm__parse_count(v, 0, 86400, &u))
                return dmm__usage_error(cmd, "--idle-timeout: expected 0 to "
                                             "86400 seconds");
            o.idle_timeout_ms = u * 1000;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--max-buffered", &v))) {
            if (m < 0 || !dmm__parse_count(v, 1024, (uint64_t)1 << 40, &u))
                return dmm__usage_error(cmd, "--max-buffered: expected 1024 "
                                             "to 1099511627776 bytes");
            o.max_buffered = (size_t)u;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--max-per-address",
                                       &v))) {
            if (m < 0 || !dmm__parse_count(v, 1, 100000, &u))
                return dmm__usage_error(cmd, "--max-per-address: expected 1 "
                                             "to 100000");
            *per_address = (int)u;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--save-on-exit", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--save-on-exit needs a file");
            o.save_on_exit = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--resume", &v))) {
            if (m < 0)
                return dmm__usage_error(cmd, "--resume needs a file name");
            resume = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--max-clients", &v))) {
            if (m < 0 || !dmm__parse_count(v, 1, 100000, &u))
                return dmm__usage_error(cmd, "--max-clients: expected 1 to "
                                             "100000");
            o.max_clients = (int)u;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--max-message", &v))) {
            if (m < 0 || !dmm__parse_count(v, 64, (uint64_t)1 << 30, &u))
                return dmm__usage_error(cmd, "--max-message: expected 64 to "
                                             "1073741824 bytes");
            o.max_message = (size_t)u;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--max-backlog", &v))) {
            if (m < 0 || !dmm__parse_count(v, 1024, (uint64_t)1 << 34, &u))
                return dmm__usage_error(cmd, "--max-backlog: expected 1024 "
                                             "to 17179869184 bytes");
            o.max_backlog = (size_t)u;
        } else {
            return dmm__unknown_option(cmd, a);
        }
    }
    if (!net_file == !resume)
        return dmm__usage_error(cmd, "give NET.json or --resume STATE.json");
    if (o.listen && o.socket)
        return dmm__usage_error(cmd, "give --listen or --socket, not both");
    if ((o.token != NULL) + (c->token_file != NULL) > 1)
        return dmm__usage_error(cmd, "give --token or --token-file, not both");
    *op = o;
    c->net_file = net_file;
    c->resume = resume;
    return 0;
}
