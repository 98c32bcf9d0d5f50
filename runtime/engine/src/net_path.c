// SPDX-License-Identifier: MIT
/*
 * Paths written as text (labels joined by '/', a backslash escaping '/' or a
 * backslash): parsing with interning (for writers: links, edits, feeds),
 * lookup without it (for readers of outside input, which must not grow the
 * context's label table), and writing. One scanner holds the syntax rules,
 * so the two readers cannot disagree on what a path is. That includes
 * VV_NUMBER_KEY: never a label (vv_intern refuses it), as the last part it
 * names the scalar part of the node before it, and anywhere else it is an
 * error, so every reader of a path treats ":number" alike.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

enum scan_mode {
    SCAN_CHECK,  /* syntax only: nothing is looked up or interned */
    SCAN_FIND,   /* labels found, never added */
    SCAN_INTERN, /* labels interned */
};

static bool is_number_key(const char *part, size_t plen)
{
    return plen == sizeof VV_NUMBER_KEY - 1 &&
           !memcmp(part, VV_NUMBER_KEY, plen);
}

/* Scan s (len bytes) into at most max labels. A last part ":number" is not a
 * label: *scalar says whether it was there, and with scalar NULL it is an
 * error. SCAN_FIND returns DMM_E_NOTFOUND, after checking the whole syntax,
 * when some label was never interned. */
static int path_scan(vv_ctx *vc, const char *s, size_t len, enum scan_mode mode,
                     vv_label *out, size_t max, size_t *n, bool *scalar,
                     dmm_error *err)
{
    char *part = dmm__alloc(vc, len + 1);
    if (!part)
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                             dmm_strerror(DMM_E_NOMEM));
    size_t count = 0, plen = 0;
    bool missing = false, number = false;
    int rc = 0;
    for (size_t k = 0; k <= len && !rc; k++) {
        if (k == len || s[k] == '/') {
            if (plen == 0)
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "empty part in path \"%.*s\"", (int)len, s);
            else if (number)
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "\":number\" in the middle of path "
                                   "\"%.*s\" (it names a node's scalar part, "
                                   "which has no parts below it)",
                                   (int)len, s);
            else if ((number = is_number_key(part, plen)) && count == 0)
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "\":number\" at the start of path "
                                   "\"%.*s\" (it names the scalar part of the "
                                   "node named before it)",
                                   (int)len, s);
            else if (number && !scalar && k == len)
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "\":number\" (a scalar part) cannot end "
                                   "path \"%.*s\": it must name a neuron, an "
                                   "input or an output",
                                   (int)len, s);
            else if (number)
                ; /* not a label; an error if anything follows */
            else if (count == max)
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "too many parts in path \"%.*s\" (at "
                                   "most %zu)",
                                   (int)len, s, max);
            else if (mode == SCAN_FIND)
                missing |= vv_label_find(vc, part, plen, &out[count]) < 0;
            else if (mode == SCAN_INTERN &&
                     (rc = vv_intern(vc, part, plen, &out[count])))
                dmm_error_set(err, rc, "", "bad label in path: %s",
                              dmm_strerror(rc));
            count += !number;
            plen = 0;
        } else if (s[k] == '\\') {
            if (k + 1 < len && (s[k + 1] == '/' || s[k + 1] == '\\'))
                part[plen++] = s[++k];
            else
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "bad escape in path \"%.*s\" (a "
                                   "backslash escapes only '/' and "
                                   "backslash)",
                                   (int)len, s);
        } else if (s[k] == '\0') {
            rc = dmm_error_set(err, DMM_E_INVAL, "", "NUL byte in path");
        } else {
            part[plen++] = s[k];
        }
    }
    dmm__free(vc, part, len + 1);
    if (rc)
        return rc;
    *n = count;
    if (scalar)
        *scalar = number;
    return missing ? DMM_E_NOTFOUND : 0;
}

int dmm_path_parse(vv_ctx *vc, const char *s, size_t len, vv_label *out,
                   size_t max, size_t *n, bool *scalar, dmm_error *err)
{
    /* Check the syntax first, so a bad path interns none of its parts. */
    int rc = path_scan(vc, s, len, SCAN_CHECK, out, max, n, scalar, err);
    return rc ? rc
              : path_scan(vc, s, len, SCAN_INTERN, out, max, n, scalar, err);
}

int dmm_path_lookup(vv_ctx *vc, const char *s, size_t len, vv_label *out,
                    size_t max, size_t *n, bool *scalar, dmm_error *err)
{
    return path_scan(vc, s, len, SCAN_FIND, out, max, n, scalar, err);
}

int dmm_path_write(const vv_ctx *vc, const vv_label *path, size_t n, vv_buf *b)
{
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        size_t len;
        const char *s = vv_label_str(vc, path[k], &len);
        if (k > 0)
            rc = vv_buf_append(b, "/", 1);
        size_t start = 0;
        for (size_t j = 0; j < len && !rc; j++) {
            if (s[j] == '/' || s[j] == '\\') {
                if (!(rc = vv_buf_append(b, s + start, j - start)))
                    rc = vv_buf_append(b, "\\", 1);
                start = j;
            }
        }
        if (!rc)
            rc = vv_buf_append(b, s + start, len - start);
    }
    return rc;
}
