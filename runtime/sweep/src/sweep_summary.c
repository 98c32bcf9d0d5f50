// SPDX-License-Identifier: MIT
/*
 * The summary of a sweep: members grouped by everything but their index and
 * seed, and for each numeric result field its mean, sample standard
 * deviation, minimum and maximum. Lines are taken in member-index order, so
 * the sums are added in one order however the lines arrived.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sweep_internal.h"

static json_int_t index_of(const json_t *line)
{
    const json_t *i = json_object_get(json_object_get(line, "member"), "index");
    return json_is_integer(i) ? json_integer_value(i) : -1;
}

static int by_index(const void *a, const void *b)
{
    json_int_t x = index_of(*(json_t *const *)a),
               y = index_of(*(json_t *const *)b);
    return (x > y) - (x < y);
}

void dmm_sweep_sort_lines(json_t *lines)
{
    size_t n = json_array_size(lines);
    json_t **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(lines, i));
    qsort(v, n, sizeof *v, by_index);
    for (size_t i = 0; i < n; i++)
        json_array_set_new(lines, i, v[i]);
    free(v);
}

int dmm__sweep_field(const json_t *result, const char *field, double *out)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", field);
    const json_t *o = result;
    for (char *p = strtok(buf, "/"); p && o; p = strtok(NULL, "/"))
        o = json_object_get(o, p);
    if (!json_is_number(o))
        return -1;
    *out = json_number_value(o);
    return 0;
}

/* Append every numeric leaf of r (prefix: its path so far) to the field
 * lists of acc {field: [values]}. */
static int collect(json_t *acc, const json_t *r, const char *prefix, int depth)
{
    const char *k;
    json_t *v;
    if (depth > 8)
        return 0;
    json_object_foreach((json_t *)r, k, v)
    {
        /* the path as long as the keys make it: no field is cut short */
        size_t n = strlen(prefix) + 1 + strlen(k) + 1;
        char *path = malloc(n);
        if (!path)
            return -1;
        snprintf(path, n, "%s%s%s", prefix, *prefix ? "/" : "", k);
        int rc = 0;
        if (json_is_object(v)) {
            rc = collect(acc, v, path, depth + 1);
        } else if (json_is_number(v)) {
            json_t *list = json_object_get(acc, path);
            if (!list) {
                list = json_array();
                rc = json_object_set_new(acc, path, list);
            }
            if (!rc)
                rc = json_array_append_new(list,
                                           json_real(json_number_value(v)));
        }
        free(path);
        if (rc)
            return -1;
    }
    return 0;
}

json_t *dmm_sweep_summary(const json_t *lines_in)
{
    json_t *lines = json_copy((json_t *)lines_in);
    json_t *out = json_array(), *keys = json_object();
    if (!lines || !out || !keys)
        goto oom;
    dmm_sweep_sort_lines(lines);
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line)
    {
        json_t *m = json_deep_copy(json_object_get(line, "member"));
        if (!json_is_object(m)) {
            json_decref(m);
            m = json_object();
        }
        json_object_del(m, "index");
        json_object_del(m, "seed");
        vv_buf b = {0};
        if (dmm__sweep_write(&b, m) || vv_buf_append(&b, "", 1)) {
            free(b.data);
            json_decref(m);
            goto oom;
        }
        json_t *g = json_object_get(keys, b.data);
        if (!g) {
            g = json_pack("{s:o, s:i, s:i, s:{}}", "group", json_incref(m),
                          "members", 0, "failed", 0, "fields");
            if (!g || json_array_append_new(out, g) ||
                json_object_set(keys, b.data, g)) {
                free(b.data);
                json_decref(m);
                goto oom;
            }
        }
        free(b.data);
        json_decref(m);
        json_object_set_new(
            g, "members",
            json_integer(json_integer_value(json_object_get(g, "members")) +
                         1));
        const json_t *r = json_object_get(line, "result");
        if (!json_is_object(r))
            json_object_set_new(
                g, "failed",
                json_integer(json_integer_value(json_object_get(g, "failed")) +
                             1));
        else if (collect(json_object_get(g, "fields"), r, "", 0))
            goto oom;
    }
    /* value lists -> mean, sd, min, max */
    json_array_foreach(out, i, line)
    {
        json_t *fields = json_object_get(line, "fields");
        const char *k;
        json_t *list;
        json_object_foreach(fields, k, list)
        {
            size_t n = json_array_size(list), j;
            json_t *x;
            double sum = 0, lo = INFINITY, hi = -INFINITY, ss = 0;
            json_array_foreach(list, j, x)
            {
                double v = json_real_value(x);
                sum += v;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            double mean = sum / (double)n;
            json_array_foreach(list, j, x)
            {
                double d = json_real_value(x) - mean;
                ss += d * d;
            }
            double sd = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
            json_t *st = json_pack("{s:f, s:f, s:f, s:f}", "mean", mean, "sd",
                                   sd, "min", lo, "max", hi);
            if (!st || json_object_set_new(fields, k, st))
                goto oom;
        }
    }
    json_decref(keys);
    json_decref(lines);
    return out;
oom:
    json_decref(keys);
    json_decref(lines);
    json_decref(out);
    return NULL;
}
