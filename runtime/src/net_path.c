// SPDX-License-Identifier: MIT
/*
 * Path lookup without interning: the same text form as dmm_path_parse
 * (labels joined by '/', a backslash escaping '/' or a backslash), checked
 * by the same rules, but labels are only found, never added. For readers
 * of outside input that must not grow the context's label table.
 */
#include <stdlib.h>

#include "dmm.h"

int dmm_path_lookup(vv_ctx *vc, const char *s, size_t len, vv_label *out,
                    size_t max, size_t *n, dmm_error *err)
{
    char *part = malloc(len + 1);
    if (!part)
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                             dmm_strerror(DMM_E_NOMEM));
    size_t count = 0, plen = 0;
    bool missing = false;
    int rc = 0;
    for (size_t k = 0; k <= len && !rc; k++) {
        if (k == len || s[k] == '/') {
            if (plen == 0)
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "empty part in path \"%.*s\"", (int)len, s);
            else if (count == max)
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "too many parts in path \"%.*s\" (at "
                                   "most %zu)",
                                   (int)len, s, max);
            else if (vv_label_find(vc, part, plen, &out[count]) < 0)
                missing = true; /* the syntax is still checked to the end */
            count++;
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
    free(part);
    if (rc)
        return rc;
    *n = count;
    return missing ? DMM_E_NOTFOUND : 0;
}
