// SPDX-License-Identifier: MIT
/*
 * Sweep files: read, checked and expanded into members (docs/sweep.md). Owns
 * struct dmm_sweep. Every error found after parsing names the JSON path of
 * the bad value and gets its line and column from vv_json_locate, so a bad
 * sweep file reads like a bad network file. A loaded sweep is never changed,
 * which is what lets threads evaluate its members at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"
#include "sweep_internal.h"

enum { MAX_MEMBERS = 1000000, MAX_FILE = 16 << 20 };

/* A located refusal: dmm_error_set with DMM_E_INVAL (it formats as printf). */
#define bad(err, path, ...)                                                    \
    dmm_error_set((err), DMM_E_INVAL, (path), __VA_ARGS__)

/* path + "/" + token, JSON Pointer escaped, into out. */
static void sub(char *out, size_t size, const char *path, const char *token)
{
    snprintf(out, size, "%s", path);
    dmm_json_pointer_push(out, size, token, strlen(token));
}

static void subi(char *out, size_t size, const char *path, size_t i)
{
    char t[32];
    snprintf(t, sizeof t, "%zu", i);
    sub(out, size, path, t);
}

/* Only the members in allowed (NULL-terminated) may appear in o. */
static int only(const json_t *o, const char *path, const char *const *allowed,
                dmm_error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(k, allowed[i]);
        if (!ok) {
            char p[512];
            sub(p, sizeof p, path, k);
            return bad(err, p, "unknown member \"%s\"", k);
        }
    }
    return 0;
}

/* A whole number in [lo, hi]. */
static int get_int(const json_t *v, const char *path, double lo, double hi,
                   uint64_t *out, dmm_error *err)
{
    if (!json_is_number(v))
        return bad(err, path, "expected a number");
    double x = json_number_value(v);
    if (x != floor(x) || x < lo || x > hi)
        return bad(err, path, "expected a whole number from %.0f to %.0f", lo,
                   hi);
    *out = (uint64_t)x;
    return 0;
}

int dmm__sweep_key_ok(const dmm_sweep *s, const char *key)
{
    if (s->kind == DMM__SWEEP_EXPERIMENT) {
        /* "variant" is dmm experiment's --variant unless the sweep has
         * variants of its own, whose names members carry under that key */
        if (!*key || !strcmp(key, "plot") || !strcmp(key, "index") ||
            (!strcmp(key, "variant") && s->variants) || !strcmp(key, "id"))
            return 0;
        for (const char *p = key; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                  *p == '-'))
                return 0;
        return 1;
    }
    if (!strcmp(key, "seed"))
        return 1;
    size_t parts = 1;
    for (const char *p = key; *p; p++)
        parts += *p == '/' && (p == key || p[-1] != '\\');
    if (!strncmp(key, "params/", 7))
        return parts == 4;
    if (!strncmp(key, "w/", 2))
        return parts == 7;
    return 0;
}

static int check_key(const dmm_sweep *s, const char *key, const char *path,
                     dmm_error *err)
{
    if (dmm__sweep_key_ok(s, key))
        return 0;
    if (s->kind == DMM__SWEEP_EXPERIMENT)
        return bad(err, path,
                   "\"%s\" is not an option of dmm experiment (a word of "
                   "a-z, 0-9 and '-', not plot)",
                   key);
    return bad(err, path,
               "\"%s\" is not a network key (seed, params/TYPE/NAME/PARAM or "
               "w/TYPE/NAME/INPUT/TYPE/NAME/OUTPUT)",
               key);
}

/* A value a member key may take: a number (network), or a number or string
 * (experiment option). */
static int check_value(const dmm_sweep *s, const char *key, const json_t *v,
                       const char *path, dmm_error *err)
{
    if (json_is_number(v) && isfinite(json_number_value(v)))
        return 0;
    if (json_is_string(v) && s->kind == DMM__SWEEP_EXPERIMENT)
        return 0;
    if (!strcmp(key, "seed") || s->kind == DMM__SWEEP_NETWORK)
        return bad(err, path, "expected a number");
    return bad(err, path, "expected a number or a string");
}

/* new: the seeds, from [s...] or {"from": a, "count": n}. */
static json_t *read_seeds(const json_t *v, const char *path, dmm_error *err)
{
    json_t *out = json_array();
    char p[512];
    if (!out) {
        dmm_error_set(err, DMM_E_NOMEM, path, "out of memory");
        return NULL;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        if (json_array_size(v) == 0) {
            bad(err, path, "no seeds");
            goto fail;
        }
        json_array_foreach(v, i, x)
        {
            uint64_t s = 0; /* set by get_int when it succeeds */
            subi(p, sizeof p, path, i);
            if (get_int(x, p, 0, 9007199254740992.0, &s, err))
                goto fail;
            json_array_append_new(out, json_integer((json_int_t)s));
        }
        return out;
    }
    if (json_is_object(v)) {
        static const char *const allowed[] = {"from", "count", NULL};
        uint64_t from = 0, count = 0; /* set by get_int when it succeeds */
        if (only(v, path, allowed, err))
            goto fail;
        sub(p, sizeof p, path, "from");
        if (!json_object_get(v, "from")) {
            bad(err, path, "seeds need \"from\"");
            goto fail;
        }
        if (get_int(json_object_get(v, "from"), p, 0, 9007199254740992.0, &from,
                    err))
            goto fail;
        sub(p, sizeof p, path, "count");
        if (!json_object_get(v, "count")) {
            bad(err, path, "seeds need \"count\"");
            goto fail;
        }
        if (get_int(json_object_get(v, "count"), p, 1, MAX_MEMBERS, &count,
                    err))
            goto fail;
        for (uint64_t i = 0; i < count; i++)
            json_array_append_new(out, json_integer((json_int_t)(from + i)));
        return out;
    }
    bad(err, path,
        "seeds are a list of integers or {\"from\": S, "
        "\"count\": N}");
fail:
    json_decref(out);
    return NULL;
}

static char *read_text(const char *filename, size_t *len, dmm_error *err)
{
    FILE *f = fopen(filename, "rb");
    if (!f) {
        dmm_error_set(err, DMM_E_IO, "", "cannot open: %s", strerror(errno));
        dmm_error_set_source(err, filename);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = cap <= MAX_FILE ? realloc(buf, cap + 1) : NULL;
            if (!nb) {
                free(buf);
                fclose(f);
                dmm_error_set(err, cap > MAX_FILE ? DMM_E_LIMIT : DMM_E_NOMEM,
                              "", "file too large or out of memory");
                dmm_error_set_source(err, filename);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int rd = ferror(f);
    fclose(f);
    if (rd) {
        free(buf);
        dmm_error_set(err, DMM_E_IO, "", "read error");
        dmm_error_set_source(err, filename);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int read_base(dmm_sweep *s, const json_t *base, const char *base_dir,
                     dmm_error *err)
{
    if (!json_is_object(base))
        return bad(err, "/base",
                   "base is {\"network\": FILE} or {\"experiment\": NAME, "
                   "\"options\": {...}}");
    const json_t *net = json_object_get(base, "network");
    const json_t *x = json_object_get(base, "experiment");
    if (net && !x) {
        static const char *const allowed[] = {"network", NULL};
        if (only(base, "/base", allowed, err))
            return err->code;
        if (!json_is_string(net) || !*json_string_value(net))
            return bad(err, "/base/network", "expected a file name");
        const char *f = json_string_value(net);
        size_t n = strlen(base_dir) + strlen(f) + 2;
        s->network = malloc(n);
        if (!s->network)
            return dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
        if (f[0] == '/' || !*base_dir)
            snprintf(s->network, n, "%s", f);
        else
            snprintf(s->network, n, "%s/%s", base_dir, f);
        dmm_error e2;
        dmm_error_clear(&e2);
        s->net_text = read_text(s->network, &s->net_len, &e2);
        if (!s->net_text)
            return bad(err, "/base/network", "cannot read %s: %s", s->network,
                       e2.text);
        s->kind = DMM__SWEEP_NETWORK;
        return 0;
    }
    if (x && !net) {
        static const char *const allowed[] = {"experiment", "options", NULL};
        if (only(base, "/base", allowed, err))
            return err->code;
        if (!json_is_string(x) || !*json_string_value(x))
            return bad(err, "/base/experiment", "expected an experiment name");
        s->experiment = json_string_value(x);
        s->kind = DMM__SWEEP_EXPERIMENT;
        s->options = json_object_get(base, "options");
        if (s->options) {
            if (!json_is_object(s->options))
                return bad(err, "/base/options", "expected an object");
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)s->options, k, v)
            {
                char p[512];
                sub(p, sizeof p, "/base/options", k);
                if (check_key(s, k, p, err) || check_value(s, k, v, p, err))
                    return err->code;
            }
        }
        return 0;
    }
    return bad(err, "/base",
               "base names either \"network\" or \"experiment\", once");
}

/* A network member's measure: steps and one of paths, score, period. */
static int read_measure(dmm_sweep *s, const json_t *m, dmm_error *err)
{
    static const char *const allowed[] = {"steps", "paths", "score", "period",
                                          NULL};
    if (s->kind == DMM__SWEEP_EXPERIMENT) {
        if (m)
            return bad(err, "/measure",
                       "an experiment measures itself: its JSON line is the "
                       "result");
        return 0;
    }
    if (!m)
        return bad(err, "", "a network sweep needs \"measure\"");
    if (!json_is_object(m))
        return bad(err, "/measure", "expected an object");
    if (only(m, "/measure", allowed, err))
        return err->code;
    const json_t *st = json_object_get(m, "steps");
    if (!st)
        return bad(err, "/measure", "measure needs \"steps\"");
    if (get_int(st, "/measure/steps", 0, 1e9, &s->steps, err))
        return err->code;
    const json_t *p = json_object_get(m, "paths"),
                 *sc = json_object_get(m, "score"),
                 *pe = json_object_get(m, "period");
    if (!!p + !!sc + !!pe != 1)
        return bad(err, "/measure",
                   "measure has one of \"paths\", \"score\" or \"period\"");
    if (p) {
        size_t i;
        json_t *v;
        if (!json_is_array(p) || json_array_size(p) == 0)
            return bad(err, "/measure/paths", "expected a list of paths");
        json_array_foreach(p, i, v)
        {
            if (!json_is_string(v) || !*json_string_value(v)) {
                char q[512];
                subi(q, sizeof q, "/measure/paths", i);
                return bad(err, q, "expected a path type/name/output...");
            }
        }
        s->measure = DMM__MEASURE_PATHS;
        s->paths = p;
    } else {
        const json_t *one = sc ? sc : pe;
        if (!json_is_string(one) || !*json_string_value(one))
            return bad(err, sc ? "/measure/score" : "/measure/period",
                       "expected a path type/name/output...");
        s->measure = sc ? DMM__MEASURE_SCORE : DMM__MEASURE_PERIOD;
        s->paths = one;
    }
    return 0;
}

static int read_variants(dmm_sweep *s, const json_t *v, dmm_error *err)
{
    static const char *const allowed[] = {"name", "delta", "params", "retype",
                                          NULL};
    size_t i;
    json_t *x;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return bad(err, "/variants", "expected a non-empty list of variants");
    json_array_foreach(v, i, x)
    {
        char p[512], q[512];
        subi(p, sizeof p, "/variants", i);
        if (!json_is_object(x))
            return bad(err, p, "a variant is an object with a \"name\"");
        if (only(x, p, allowed, err))
            return err->code;
        const json_t *name = json_object_get(x, "name");
        sub(q, sizeof q, p, "name");
        if (!json_is_string(name) || !*json_string_value(name))
            return bad(err, name ? q : p, "a variant needs a \"name\"");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(json_string_value(
                            json_object_get(json_array_get(v, j), "name")),
                        json_string_value(name)))
                return bad(err, q, "variant \"%s\" appears twice",
                           json_string_value(name));
        const json_t *params = json_object_get(x, "params");
        if (params) {
            const char *k;
            json_t *pv;
            sub(q, sizeof q, p, "params");
            if (!json_is_object(params))
                return bad(err, q, "expected an object {KEY: value}");
            json_object_foreach((json_t *)params, k, pv)
            {
                char r[512];
                sub(r, sizeof r, q, k);
                if (check_key(s, k, r, err) || check_value(s, k, pv, r, err))
                    return err->code;
            }
        }
        const json_t *delta = json_object_get(x, "delta"),
                     *retype = json_object_get(x, "retype");
        if ((delta || retype) && s->kind == DMM__SWEEP_EXPERIMENT) {
            sub(q, sizeof q, p, delta ? "delta" : "retype");
            return bad(err, q, "only a network base takes %s",
                       delta ? "a W delta" : "retype");
        }
        if (delta && !json_is_object(delta)) {
            sub(q, sizeof q, p, "delta");
            return bad(err, q, "a delta is a W fragment (an object)");
        }
        if (retype) {
            const char *k;
            json_t *rv;
            sub(q, sizeof q, p, "retype");
            if (!json_is_object(retype))
                return bad(err, q, "expected {\"type/name\": \"newtype\"}");
            json_object_foreach((json_t *)retype, k, rv)
            {
                char r[512];
                sub(r, sizeof r, q, k);
                const char *sl = strchr(k, '/');
                if (!sl || sl == k || !sl[1] || strchr(sl + 1, '/'))
                    return bad(err, r, "\"%s\" is not type/name", k);
                if (!json_is_string(rv) || !*json_string_value(rv) ||
                    strchr(json_string_value(rv), '/'))
                    return bad(err, r, "expected a neuron type");
            }
        }
    }
    s->variants = v;
    return 0;
}

/* Expand variants x grid x seeds into s->members. */
static int expand(dmm_sweep *s, const json_t *grid, const json_t *seeds,
                  dmm_error *err)
{
    size_t nkeys = grid ? json_object_size(grid) : 0;
    const char **keys = calloc(nkeys + 1, sizeof *keys);
    const json_t **vals = calloc(nkeys + 1, sizeof *vals);
    size_t *at = calloc(nkeys + 1, sizeof *at);
    int rc = 0;
    if (!keys || !vals || !at) {
        rc = dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
        goto done;
    }
    double total = 1;
    size_t k = 0;
    const char *key;
    json_t *v;
    if (grid)
        json_object_foreach((json_t *)grid, key, v)
        {
            keys[k] = key;
            vals[k++] = v;
            total *= (double)json_array_size(v);
        }
    size_t nv = s->variants ? json_array_size(s->variants) : 1;
    size_t ns = seeds ? json_array_size(seeds) : 1;
    total *= (double)nv * (double)ns;
    if (total > MAX_MEMBERS) {
        rc = bad(err, "", "%.0f members, more than the %d a sweep may have",
                 total, MAX_MEMBERS);
        goto done;
    }
    size_t index = 0;
    for (size_t iv = 0; iv < nv; iv++) {
        memset(at, 0, (nkeys + 1) * sizeof *at);
        for (;;) {
            for (size_t is = 0; is < ns; is++) {
                json_t *m = json_object();
                if (!m || json_array_append_new(s->members, m)) {
                    rc = dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
                    goto done;
                }
                json_object_set_new(m, "index",
                                    json_integer((json_int_t)index++));
                if (s->variants)
                    json_object_set(
                        m, "variant",
                        json_object_get(json_array_get(s->variants, iv),
                                        "name"));
                for (size_t j = 0; j < nkeys; j++)
                    json_object_set(m, keys[j], json_array_get(vals[j], at[j]));
                if (seeds)
                    json_object_set(m, "seed", json_array_get(seeds, is));
            }
            /* next grid point, last key fastest */
            size_t j = nkeys;
            while (j > 0) {
                j--;
                if (++at[j] < json_array_size(vals[j]))
                    break;
                at[j] = 0;
                if (j == 0) {
                    j = SIZE_MAX;
                    break;
                }
            }
            if (nkeys == 0 || j == SIZE_MAX)
                break;
        }
    }
done:
    free(keys);
    free(vals);
    free(at);
    return rc;
}

static int read_grid(dmm_sweep *s, const json_t *grid, const json_t *seeds,
                     dmm_error *err)
{
    if (!json_is_object(grid))
        return bad(err, "/grid", "expected {KEY: [values...]}");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)grid, k, v)
    {
        char p[512];
        sub(p, sizeof p, "/grid", k);
        if (check_key(s, k, p, err))
            return err->code;
        if (!strcmp(k, "seed") && seeds)
            return bad(err, p, "seed is both a grid key and \"seeds\"");
        if (!json_is_array(v) || json_array_size(v) == 0)
            return bad(err, p, "expected a non-empty list of values");
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            char q[512];
            subi(q, sizeof q, p, i);
            if (check_value(s, k, x, q, err))
                return err->code;
        }
    }
    return 0;
}

static int read_evolve(dmm_sweep *s, const json_t *e, const json_t *seeds,
                       dmm_error *err)
{
    static const char *const allowed[] = {"generations", "population", "keep",
                                          "seed",        "score",      "goal",
                                          "genes",       "rate",       NULL};
    static const char *const gene_allowed[] = {
        "min", "max", "sigma", "integer", "start", "choices", NULL};
    uint64_t u = 0; /* set by get_int when it succeeds */
    if (!json_is_object(e))
        return bad(err, "/evolve", "expected an object");
    if (only(e, "/evolve", allowed, err))
        return err->code;
    static const char *const need[] = {"generations", "population", "keep",
                                       "score",       "genes",      NULL};
    for (size_t i = 0; need[i]; i++)
        if (!json_object_get(e, need[i]))
            return bad(err, "/evolve", "evolve needs \"%s\"", need[i]);
    if (get_int(json_object_get(e, "generations"), "/evolve/generations", 1,
                1e5, &u, err) ||
        get_int(json_object_get(e, "population"), "/evolve/population", 1, 1e5,
                &u, err))
        return err->code;
    uint64_t pop = u, keep;
    if (get_int(json_object_get(e, "keep"), "/evolve/keep", 1, (double)pop,
                &keep, err))
        return err->code;
    if (json_object_get(e, "seed") &&
        get_int(json_object_get(e, "seed"), "/evolve/seed", 0,
                9007199254740992.0, &u, err))
        return err->code;
    const json_t *rate = json_object_get(e, "rate");
    if (rate && (!json_is_number(rate) || json_number_value(rate) < 0 ||
                 json_number_value(rate) > 1))
        return bad(err, "/evolve/rate", "expected a number from 0 to 1");
    const json_t *sc = json_object_get(e, "score");
    if (!json_is_string(sc) || !*json_string_value(sc))
        return bad(err, "/evolve/score",
                   "expected a result field (e.g. accuracy)");
    const json_t *goal = json_object_get(e, "goal");
    if (goal &&
        !(json_is_string(goal) && (!strcmp(json_string_value(goal), "max") ||
                                   !strcmp(json_string_value(goal), "min"))) &&
        !(json_is_object(goal) && json_object_size(goal) == 1 &&
          json_is_number(json_object_get(goal, "target"))))
        return bad(err, "/evolve/goal",
                   "goal is \"max\", \"min\" or {\"target\": x}");
    const json_t *genes = json_object_get(e, "genes");
    if (!json_is_object(genes) || json_object_size(genes) == 0)
        return bad(err, "/evolve/genes", "expected {KEY: {...}}, one or more");
    const char *k;
    json_t *g;
    json_object_foreach((json_t *)genes, k, g)
    {
        char p[512], q[512];
        sub(p, sizeof p, "/evolve/genes", k);
        if (check_key(s, k, p, err))
            return err->code;
        if (!strcmp(k, "seed"))
            return bad(err, p, "seed is not a gene: give \"seeds\"");
        if (!json_is_object(g))
            return bad(err, p,
                       "a gene is {\"min\", \"max\", \"start\"[, \"sigma\", "
                       "\"integer\"]} or {\"choices\": [...], \"start\"}");
        if (only(g, p, gene_allowed, err))
            return err->code;
        const json_t *ch = json_object_get(g, "choices");
        const json_t *st = json_object_get(g, "start");
        sub(q, sizeof q, p, "start");
        if (!st)
            return bad(err, p, "a gene needs \"start\"");
        if (check_value(s, k, st, q, err))
            return err->code;
        if (ch) {
            size_t i;
            json_t *x;
            int found = 0;
            sub(q, sizeof q, p, "choices");
            if (!json_is_array(ch) || json_array_size(ch) == 0)
                return bad(err, q, "expected a non-empty list");
            json_array_foreach(ch, i, x)
            {
                char r[512];
                subi(r, sizeof r, q, i);
                if (check_value(s, k, x, r, err))
                    return err->code;
                found |= json_equal(x, (json_t *)st);
            }
            sub(q, sizeof q, p, "start");
            if (!found)
                return bad(err, q, "start is not one of the choices");
            if (json_object_get(g, "min") || json_object_get(g, "max"))
                return bad(err, p, "a gene has choices or min and max");
            continue;
        }
        const json_t *lo = json_object_get(g, "min"),
                     *hi = json_object_get(g, "max"),
                     *sg = json_object_get(g, "sigma");
        if (!json_is_number(lo) || !json_is_number(hi) ||
            json_number_value(lo) > json_number_value(hi))
            return bad(err, p, "a numeric gene needs \"min\" <= \"max\"");
        if (!json_is_number(st) ||
            json_number_value(st) < json_number_value(lo) ||
            json_number_value(st) > json_number_value(hi))
            return bad(err, q, "start must be a number from min to max");
        sub(q, sizeof q, p, "sigma");
        if (sg && (!json_is_number(sg) || !(json_number_value(sg) > 0)))
            return bad(err, q, "sigma must be a positive number");
        const json_t *in = json_object_get(g, "integer");
        sub(q, sizeof q, p, "integer");
        if (in && !json_is_boolean(in))
            return bad(err, q, "expected true or false");
    }
    s->evolve = e;
    s->evolve_seeds = seeds ? json_incref((json_t *)seeds) : NULL;
    return 0;
}

static int load_doc(dmm_sweep *s, const char *base_dir, dmm_error *err)
{
    static const char *const allowed[] = {"sweep",  "base",     "grid",
                                          "seeds",  "variants", "measure",
                                          "evolve", NULL};
    const json_t *d = s->doc;
    if (!json_is_object(d))
        return bad(err, "", "a sweep file is a JSON object");
    if (only(d, "", allowed, err))
        return err->code;
    const json_t *ver = json_object_get(d, "sweep");
    if (!ver)
        return bad(err, "", "missing \"sweep\": 1");
    if (!json_is_number(ver) || json_number_value(ver) != 1)
        return bad(err, "/sweep", "this dmm reads sweep format 1");
    if (!json_object_get(d, "base"))
        return bad(err, "", "missing \"base\"");
    if (read_base(s, json_object_get(d, "base"), base_dir, err))
        return err->code;
    if (read_measure(s, json_object_get(d, "measure"), err))
        return err->code;
    json_t *seeds = NULL;
    if (json_object_get(d, "seeds") &&
        !(seeds = read_seeds(json_object_get(d, "seeds"), "/seeds", err)))
        return err->code;
    int rc = 0;
    const json_t *grid = json_object_get(d, "grid");
    const json_t *variants = json_object_get(d, "variants");
    const json_t *evolve = json_object_get(d, "evolve");
    if (evolve && (grid || variants))
        rc = bad(err, grid ? "/grid" : "/variants",
                 "an evolve sweep has genes, not a grid or variants");
    if (!rc && variants)
        rc = read_variants(s, variants, err);
    if (!rc && grid)
        rc = read_grid(s, grid, seeds, err);
    if (!rc && evolve)
        rc = read_evolve(s, evolve, seeds, err);
    if (!rc && !(s->members = json_array()))
        rc = dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
    if (!rc && !evolve)
        rc = expand(s, grid, seeds, err);
    json_decref(seeds);
    return rc;
}

/* A network base must load, so that a typo there is reported once, at the
 * start, with the network file's own position. */
static int check_network(const dmm_sweep *s, dmm_error *err)
{
    if (s->kind != DMM__SWEEP_NETWORK)
        return 0;
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
    dmm_net *net = NULL;
    int rc = !reg || dmm_registry_add_builtins(reg)
                 ? dmm_error_set(err, DMM_E_NOMEM, "", "out of memory")
                 : dmm_net_load_text(vc, reg, s->net_text, s->net_len,
                                     s->network, &net, err);
    dmm_net_free(net);
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    return rc;
}

int dmm_sweep_load_text(const char *text, size_t len, const char *source,
                        const char *base_dir, dmm_sweep **out, dmm_error *err)
{
    *out = NULL;
    dmm_error_clear(err);
    dmm_sweep *s = calloc(1, sizeof *s);
    if (!s)
        return dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
    snprintf(s->source, sizeof s->source, "%s", source ? source : "<string>");
    s->doc = vv_json_load(text, len, s->source, err);
    if (!s->doc) {
        dmm_sweep_free(s);
        return err && err->code ? err->code : DMM_E_PARSE;
    }
    int rc = load_doc(s, base_dir ? base_dir : "", err);
    if (rc) {
        dmm_error_set_source(err, s->source);
        if (err && err->line == 0)
            vv_json_locate(text, len, err);
    } else {
        rc = check_network(s, err);
    }
    if (rc) {
        dmm_sweep_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int dmm_sweep_load_file(const char *filename, dmm_sweep **out, dmm_error *err)
{
    size_t len;
    *out = NULL;
    dmm_error_clear(err);
    char *text = read_text(filename, &len, err);
    if (!text)
        return err ? err->code : DMM_E_IO;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", filename);
    char *sl = strrchr(dir, '/');
    if (sl)
        *sl = '\0';
    else
        dir[0] = '\0';
    int rc = dmm_sweep_load_text(text, len, filename, dir, out, err);
    free(text);
    return rc;
}

void dmm_sweep_free(dmm_sweep *s)
{
    if (!s)
        return;
    json_decref(s->members);
    json_decref(s->evolve_seeds);
    json_decref(s->doc);
    free(s->network);
    free(s->net_text);
    free(s);
}

const json_t *dmm_sweep_members(const dmm_sweep *s)
{
    return s->members;
}

const json_t *dmm_sweep_evolve_spec(const dmm_sweep *s)
{
    return s->evolve;
}
