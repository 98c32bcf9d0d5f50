// SPDX-License-Identifier: MIT
/*
 * The `dmm` command's entry: dispatch through the command table
 * (cli_commands.c), `dmm neurons`, and the option parsing and error printing
 * shared by the subcommands. Exit codes: 0 success,
 * 1 bad input, 2 bad usage, 3 numeric fault (docs/cli.md).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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

char *dmm__read_token_file(const char *cmd, const char *file)
{
    FILE *fp = fopen(file, "r");
    if (!fp) {
        fprintf(stderr, "dmm %s: --token-file %s: %s\n", cmd, file,
                strerror(errno));
        return NULL;
    }
    char buf[1024];
    char *line = fgets(buf, sizeof buf, fp);
    fclose(fp);
    size_t n = line ? strcspn(buf, "\r\n") : 0;
    if (n == 0) {
        fprintf(stderr, "dmm %s: --token-file %s: no token on its first line\n",
                cmd, file);
        return NULL;
    }
    buf[n] = '\0';
    char *t = strdup(buf);
    if (!t)
        fprintf(stderr, "dmm %s: out of memory\n", cmd);
    return t;
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

int dmm__cmd_neurons(int argc, char **argv)
{
    bool markdown = false;
    const char **plugins = calloc((size_t)argc, sizeof *plugins);
    size_t nplugins = 0;
    if (!plugins)
        return DMM_EXIT_INPUT;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m;
        if (!strcmp(argv[i], "--markdown"))
            markdown = true;
        else if ((m = dmm__opt_value(argc, argv, &i, "--plugin", &v)) != 0) {
            if (m < 0) {
                free(plugins);
                return dmm__usage_error("neurons", "--plugin needs a file");
            }
            plugins[nplugins++] = v;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            free(plugins);
            dmm__print_help(stdout, "neurons");
            return DMM_EXIT_OK;
        } else {
            free(plugins);
            return argv[i][0] == '-' ? dmm__unknown_option("neurons", argv[i])
                                     : dmm__usage_error("neurons",
                                                        "unexpected argument "
                                                        "\"%s\"",
                                                        argv[i]);
        }
    }
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
    int rc = reg ? dmm_registry_add_builtins(reg) : DMM_E_NOMEM;
    dmm__plugins pl = {NULL, 0};
    if (rc == 0) {
        int st = dmm__plugins_load("neurons", reg, plugins, nplugins, &pl);
        if (st) {
            free(plugins);
            dmm_registry_free(reg);
            dmm__plugins_close(&pl);
            vv_ctx_free(vc);
            return st;
        }
    }
    free(plugins);
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
    dmm__plugins_close(&pl);
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
        dmm__print_main_help(stderr);
        return DMM_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        dmm__print_main_help(stdout);
        return DMM_EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("dmm %s\n", DMM_VERSION);
        return DMM_EXIT_OK;
    }
    const dmm__command *c = dmm__command_find(cmd);
    if (c)
        return c->run(argc - 1, argv + 1);
    return dmm__unknown_command(cmd);
}
