// SPDX-License-Identifier: MIT
/*
 * The project's one list of error codes and the error record that every reader
 * of outside input fills. It lives in the bottom layer because every layer
 * reports through it; the names carry the project prefix, not the layer's.
 * Library calls return 0 or a negative DMM_E_* code and never print.
 */
#ifndef DMM_ERROR_H
#define DMM_ERROR_H

#include <stddef.h>

/* X(name, value, message): the single source of codes, names and messages. */
#define DMM_ERRORS(X)                                                          \
    X(NOMEM, -1, "out of memory")                                              \
    X(INVAL, -2, "invalid input")                                              \
    X(PARSE, -3, "malformed JSON")                                             \
    X(DEPTH, -4, "nesting too deep")                                           \
    X(LIMIT, -5, "size limit exceeded")                                        \
    X(NONFINITE, -6, "NaN or infinity produced")                               \
    X(NOTFOUND, -7, "not found")                                               \
    X(IO, -8, "input/output error")                                            \
    X(STATE, -9, "operation not valid in this state")                          \
    X(USAGE, -10, "bad usage")

enum {
    DMM_OK = 0,
#define DMM__ERROR_ENUM(name, value, msg) DMM_E_##name = (value),
    DMM_ERRORS(DMM__ERROR_ENUM)
#undef DMM__ERROR_ENUM
};

/* A static message for a code ("unknown error" for an unknown code). */
const char *dmm_strerror(int code);
/* The code's name without prefix, e.g. "NOMEM" (static). */
const char *dmm_errname(int code);

/*
 * What went wrong with a piece of outside input. Fixed size, caller-owned,
 * like Jansson's json_error_t. line and column are 1-based, 0 when unknown;
 * path is a JSON Pointer (RFC 6901) into the document, "" for the whole of it.
 * Text longer than a field ends in "..." rather than being cut silently.
 */
typedef struct dmm_error {
    int code;
    int line;
    int column;
    char source[256];
    char path[512];
    char text[512];
} dmm_error;

/* Clear err (NULL is allowed everywhere an error pointer is taken). */
void dmm_error_clear(dmm_error *err);
/* Fill err with code, path and a printf-style sentence; returns code. */
int dmm_error_set(dmm_error *err, int code, const char *path, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
/* Set source (a file name or "<string>"), keeping the rest. */
void dmm_error_set_source(dmm_error *err, const char *source);
/*
 * Write "source:line:column: path: text" into buf (parts that are unknown are
 * left out). Returns the length snprintf would have written.
 */
int dmm_error_format(const dmm_error *err, char *buf, size_t size);

/* Append an RFC 6901 token (escaping '~' and '/') to a JSON Pointer buffer.
 * Returns 0, or DMM_E_LIMIT when the pointer would not fit (buf then ends in
 * "..."). */
int dmm_json_pointer_push(char *buf, size_t size, const char *token,
                          size_t len);

/*
 * A broken invariant is a bug, not an error code: dmm_assert(cond) aborts
 * with "file:line: invariant failed: cond" on stderr when cond is false, in
 * every build (NDEBUG does not remove it). For conditions that guard data;
 * outside input is checked and reported through dmm_error instead.
 */
#define dmm_assert(cond)                                                       \
    ((cond) ? (void)0 : dmm__assert_fail(__FILE__, __LINE__, #cond))
_Noreturn void dmm__assert_fail(const char *file, int line, const char *expr);

#endif
