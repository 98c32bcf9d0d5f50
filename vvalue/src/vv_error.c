// SPDX-License-Identifier: MIT
/*
 * The error list's messages and the dmm_error record. Nothing here allocates:
 * an error can always be reported, even when memory has run out.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_error.h"

const char *dmm_strerror(int code)
{
    switch (code) {
    case DMM_OK:
        return "success";
#define DMM__ERROR_MSG(name, value, msg)                                       \
    case DMM_E_##name:                                                         \
        return msg;
        DMM_ERRORS(DMM__ERROR_MSG)
#undef DMM__ERROR_MSG
    }
    return "unknown error";
}

const char *dmm_errname(int code)
{
    switch (code) {
    case DMM_OK:
        return "OK";
#define DMM__ERROR_NAME(name, value, msg)                                      \
    case DMM_E_##name:                                                         \
        return #name;
        DMM_ERRORS(DMM__ERROR_NAME)
#undef DMM__ERROR_NAME
    }
    return "UNKNOWN";
}

void dmm_error_clear(dmm_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

/* Copy with a visible "..." instead of a silent cut. */
static void copy_marked(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n < size) {
        memcpy(dst, src, n + 1);
        return;
    }
    memcpy(dst, src, size - 4);
    memcpy(dst + size - 4, "...", 4);
}

int dmm_error_set(dmm_error *err, int code, const char *path, const char *fmt,
                  ...)
{
    if (!err)
        return code;
    err->code = code;
    copy_marked(err->path, sizeof err->path, path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof err->text)
        memcpy(err->text + sizeof err->text - 4, "...", 4);
    return code;
}

void dmm_error_set_source(dmm_error *err, const char *source)
{
    if (err)
        copy_marked(err->source, sizeof err->source, source ? source : "");
}

int dmm_error_format(const dmm_error *err, char *buf, size_t size)
{
    char pos[64] = "";
    if (err->line > 0 && err->column > 0)
        snprintf(pos, sizeof pos, ":%d:%d", err->line, err->column);
    else if (err->line > 0)
        snprintf(pos, sizeof pos, ":%d", err->line);
    const char *text = err->text[0] ? err->text : dmm_strerror(err->code);
    if (err->source[0] && err->path[0])
        return snprintf(buf, size, "%s%s: %s: %s", err->source, pos, err->path,
                        text);
    if (err->source[0])
        return snprintf(buf, size, "%s%s: %s", err->source, pos, text);
    if (err->path[0])
        return snprintf(buf, size, "%s: %s", err->path, text);
    return snprintf(buf, size, "%s", text);
}

int dmm_json_pointer_push(char *buf, size_t size, const char *token, size_t len)
{
    size_t n = strlen(buf);
    if (n + 2 > size)
        return DMM_E_LIMIT;
    buf[n++] = '/';
    for (size_t i = 0; i < len; i++) {
        const char *esc = token[i] == '~'   ? "~0"
                          : token[i] == '/' ? "~1"
                                            : NULL;
        size_t need = esc ? 2 : 1;
        if (n + need + 1 > size) {
            if (size >= 4)
                memcpy(buf + size - 4, "...", 4);
            return DMM_E_LIMIT;
        }
        if (esc) {
            buf[n++] = esc[0];
            buf[n++] = esc[1];
        } else {
            buf[n++] = token[i];
        }
    }
    buf[n] = '\0';
    return 0;
}

/* The one place the libraries write to stderr: a bug found, just before the
 * abort (dmm_assert). */
_Noreturn void dmm__assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}
