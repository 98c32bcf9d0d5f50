// SPDX-License-Identifier: MIT
/*
 * Reading documents: a network description (spec dmm.md §4), and the frame
 * that network and state documents share (size limit, strict parse, error
 * positions). Every error names a JSON Pointer; positions come from
 * vv_json_locate afterwards. A load either returns a complete network or
 * nothing.
 */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "dmm_rng.h"
#include "net_internal.h"

/* ---- the network description -------------------------------------------- */

static const dmm__doc_kind network_doc = {
    "a network description",
    {"dmm", "matrix", "outputs", "self", "links", "params", "seed", "positions",
     "modulations", NULL},
    "missing member \"dmm\" (the format version, 1)",
    "format"};

int dmm__read_file(vv_ctx *vc, const char *filename, char **text, size_t *len,
                   dmm_error *err)
{
    FILE *fp = fopen(filename, "rb");
    if (!fp) {
        int rc = dmm_error_set(err, DMM_E_IO, "", "cannot open: %s",
                               strerror(errno));
        dmm_error_set_source(err, filename);
        return rc;
    }
    struct stat st;
    int rc = 0;
    char *buf = NULL;
    if (fstat(fileno(fp), &st) != 0) {
        rc = dmm_error_set(err, DMM_E_IO, "", "cannot stat: %s",
                           strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        rc = dmm_error_set(err, DMM_E_IO, "", "is a directory, not a file");
    } else if ((uint64_t)st.st_size > DMM__MAX_FILE_SIZE) {
        rc = dmm_error_set(err, DMM_E_LIMIT, "", "file larger than %zu bytes",
                           DMM__MAX_FILE_SIZE);
    } else if (!(buf = dmm__alloc(vc, (size_t)st.st_size + 1))) {
        rc = dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                           dmm_strerror(DMM_E_NOMEM));
    } else {
        size_t n = fread(buf, 1, (size_t)st.st_size, fp);
        if (n != (size_t)st.st_size || ferror(fp)) {
            rc = dmm_error_set(err, DMM_E_IO, "", "read error");
        } else {
            buf[n] = '\0';
            *text = buf;
            *len = n;
            buf = NULL;
        }
    }
    dmm__free(vc, buf, (size_t)st.st_size + 1);
    fclose(fp);
    if (rc)
        dmm_error_set_source(err, filename);
    return rc;
}

/* A located refusal: dmm_error_set with DMM_E_INVAL (it formats as printf). */
#define bad(err, path, ...)                                                    \
    dmm_error_set((err), DMM_E_INVAL, (path), __VA_ARGS__)

/* A path string member at ptr: parsed into min to max labels. what says what
 * the parts are, for the message. scalar as for dmm_path_parse: NULL where
 * the path names a neuron's input or output, not part of a value. */
static int read_path(dmm_net *net, const json_t *j, const char *path,
                     size_t min, size_t max, vv_label *out, size_t *n,
                     bool *scalar, const char *what, dmm_error *err)
{
    if (!json_is_string(j))
        return bad(err, path, "expected a string \"%s\"", what);
    size_t count = 0;
    int rc =
        dmm_path_parse(net->vc, json_string_value(j), json_string_length(j),
                       out, max, &count, scalar, err);
    if (rc) {
        /* Keep the parser's sentence, add where. */
        char text[sizeof err->text];
        snprintf(text, sizeof text, "%s", err ? err->text : "");
        return dmm_error_set(err, rc, path, "%s", text);
    }
    if (count < min)
        return bad(err, path, "expected \"%s\"", what);
    *n = count;
    return 0;
}

static int read_self(dmm_net *net, const json_t *j, dmm_error *err)
{
    size_t n;
    int rc = read_path(net, j, "/self", 3, 3, net->self, &n, NULL,
                       "type/name/output", err);
    if (rc)
        return rc;
    if (!dmm__self_resolve(net))
        return bad(err, "/self", "unknown neuron type \"%s\"",
                   dmm__lstr(net, net->self[0]));
    return 0;
}

/* Add each [to, from, weight] of links into *w. */
static int read_links(dmm_net *net, const json_t *links, vv *w, dmm_error *err)
{
    enum { MAXP = 256 };
    vv_label path[MAXP];
    char at[64];
    if (!json_is_array(links))
        return bad(err, "/links",
                   "links must be an array of [to, from, "
                   "weight]");
    for (size_t k = 0; k < json_array_size(links); k++) {
        const json_t *e = json_array_get(links, k);
        snprintf(at, sizeof at, "/links/%zu", k);
        if (!json_is_array(e) || json_array_size(e) != 3 ||
            !json_is_number(json_array_get(e, 2)))
            return bad(err, at,
                       "a link must be [\"type/name/input\", "
                       "\"type/name/output\", weight]");
        size_t nto, nfrom;
        int rc;
        snprintf(at, sizeof at, "/links/%zu/0", k);
        if ((rc = read_path(net, json_array_get(e, 0), at, 3, 3, path, &nto,
                            NULL, "type/name/input", err)))
            return rc;
        const dmm_type_info *info = dmm_registry_find(net->reg, path[0]);
        if (!info)
            return bad(err, at, "unknown neuron type \"%s\"",
                       dmm__lstr(net, path[0]));
        if (!dmm_type_accepts_input(info, path[2]))
            return bad(err, at, "neuron type \"%s\" has no input \"%s\"",
                       dmm__lstr(net, path[0]), dmm__lstr(net, path[2]));
        /* The weight is stored at to/from in W, always as a scalar part:
         * "max-norm/m/:number" is the place that "max-norm/m" names, as
         * {"max-norm": {"m": {":number": w}}} is {"max-norm": {"m": w}}. */
        bool scalar;
        snprintf(at, sizeof at, "/links/%zu/1", k);
        if ((rc =
                 read_path(net, json_array_get(e, 1), at, 1, MAXP - 3, path + 3,
                           &nfrom, &scalar, "type/name/output", err)))
            return rc;
        if (!dmm_registry_find(net->reg, path[3]))
            return bad(err, at, "unknown neuron type \"%s\"",
                       dmm__lstr(net, path[3]));
        double x = json_number_value(json_array_get(e, 2));
        snprintf(at, sizeof at, "/links/%zu/2", k);
        if (!isfinite(x))
            return bad(err, at, "a weight must be a finite number");
        vv term, sum;
        if ((rc = vv_set(net->vc, VV_ZERO, path, 3 + nfrom, vv_number(x),
                         &term)))
            return dmm_error_set(err, rc, at, "%s", dmm_strerror(rc));
        rc = vv_add(net->vc, *w, term, &sum);
        vv_free(net->vc, term);
        if (rc)
            return dmm_error_set(err, rc, at, "%s", dmm_strerror(rc));
        vv_free(net->vc, *w);
        *w = sum;
    }
    return 0;
}

static int read_seed(dmm_net *net, const json_t *j, dmm_error *err)
{
    double x = json_is_number(j) ? json_number_value(j) : -1;
    if (!(x >= 0 && x <= VV_MAX_EXACT_INT && x == floor(x)))
        return bad(err, "/seed",
                   "seed must be an integer from 0 to 2^53 - 1 "
                   "(9007199254740991; larger ones are not exact in JSON)");
    dmm_rng_seed(net->rng, (uint64_t)x);
    return 0;
}

/* ---- file parameters ----------------------------------------------------
 *
 * A parameter of kind DMM_PARAM_FILE is a string in "params": a file name
 * relative to the network file's folder. It is taken out before the numbers
 * are read, the file is read here (the engine is the layer that knows
 * files) and given to the type's file function, whose value becomes the
 * neuron's state under the parameter's name. The name must stay inside the
 * folder: no absolute name, no ".." above it, no symbolic link out of it.
 */

typedef struct file_param {
    vv_label type, name, param;
    size_t k;
    const dmm_type_info *info;
    const char *text; /* borrowed from the document */
    char at[600];     /* its JSON Pointer */
} file_param;

/* The file parameters in params (a JSON object), at most max, into fp. */
static int find_file_params(dmm_net *net, const json_t *params, file_param *fp,
                            size_t max, size_t *n, dmm_error *err)
{
    const char *tk, *nk;
    json_t *tv, *nv;
    *n = 0;
    json_object_foreach((json_t *)params, tk, tv)
    {
        vv_label tl;
        const dmm_type_info *info =
            vv_label_find(net->vc, tk, strlen(tk), &tl) == 0
                ? dmm_registry_find(net->reg, tl)
                : NULL;
        if (!info || !json_is_object(tv))
            continue; /* vv_from_json and the checks say what is wrong */
        json_object_foreach(tv, nk, nv)
        {
            for (size_t k = 0; k < info->n_params && json_is_object(nv); k++) {
                const dmm_param_spec *ps = &info->desc->params[k];
                const json_t *x = json_object_get(nv, ps->name);
                if (ps->kind != DMM_PARAM_FILE || !x)
                    continue;
                char at[600] = "/params";
                (void)dmm_json_pointer_push(at, sizeof at, tk, strlen(tk));
                (void)dmm_json_pointer_push(at, sizeof at, nk, strlen(nk));
                (void)dmm_json_pointer_push(at, sizeof at, ps->name,
                                            strlen(ps->name));
                if (!json_is_string(x))
                    return bad(err, at,
                               "parameter \"%s\" is a file name (a string, "
                               "relative to the network file's folder)",
                               ps->name);
                if (*n == max)
                    return bad(err, at, "more than %zu file parameters", max);
                file_param *f = &fp[(*n)++];
                int rc = vv_intern_cstr(net->vc, nk, &f->name);
                if (rc)
                    return dmm_error_set(err, rc, at, "%s", dmm_strerror(rc));
                f->type = tl;
                f->param = info->param[k];
                f->k = k;
                f->info = info;
                f->text = json_string_value(x);
                snprintf(f->at, sizeof f->at, "%s", at);
            }
        }
    }
    return 0;
}

/* new (dmm__free(vc, p, *size)): the file named name beside source, checked
 * to be inside source's folder; NULL with err set (at the parameter) when it
 * is not. */
static char *file_beside(vv_ctx *vc, const char *source, const char *name,
                         const char *at, size_t *size, dmm_error *err)
{
    if (!source || source[0] == '<') {
        bad(err, at,
            "\"%s\": a network read from text has no folder to read files "
            "from; load it from its file",
            name);
        return NULL;
    }
    if (name[0] == '\0' || name[0] == '/') {
        bad(err, at,
            "\"%s\": a file name must be relative to the network file's "
            "folder",
            name);
        return NULL;
    }
    long depth = 0;
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            depth--;
        else if (n > 0 && !(n == 1 && p[0] == '.'))
            depth++;
        if (depth < 0) {
            bad(err, at, "\"%s\" leads outside the network file's folder",
                name);
            return NULL;
        }
        p += n + (p[n] == '/');
    }
    const char *slash = strrchr(source, '/');
    int dn = slash ? (int)(slash - source) : 1;
    const char *dir = slash ? source : ".";
    if (slash && dn == 0)
        dn = 1; /* "/net.json": the folder is "/" */
    size_t len = (size_t)dn + 1 + strlen(name) + 1;
    char *full = dmm__alloc(vc, len);
    char *rdir = NULL, *rfull = NULL;
    if (!full) {
        dmm_error_set(err, DMM_E_NOMEM, at, "%s", dmm_strerror(DMM_E_NOMEM));
        return NULL;
    }
    snprintf(full, len, "%.*s/%s", dn, dir, name);
    /* A symbolic link inside may point outside: compare the real paths. */
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%.*s", dn, dir);
    rdir = realpath(dirs, NULL);
    rfull = rdir ? realpath(full, NULL) : NULL;
    size_t rn = rdir ? strlen(rdir) : 0;
    if (!rfull) {
        dmm_error_set(err, DMM_E_IO, at, "\"%s\": cannot open %s: %s", name,
                      full, strerror(errno));
        dmm__free(vc, full, len);
        full = NULL;
    } else if (strncmp(rfull, rdir, rn) != 0 ||
               (rfull[rn] != '/' && !(rn == 1 && rdir[0] == '/'))) {
        bad(err, at,
            "\"%s\" leads outside the network file's folder (through a "
            "symbolic link)",
            name);
        dmm__free(vc, full, len);
        full = NULL;
    }
    free(rdir); /* realpath's, from malloc */
    free(rfull);
    *size = len;
    return full;
}

/* Read file parameter f into *out (new) through its type's file function. */
static int read_file_param(dmm_net *net, const file_param *f,
                           const char *source, vv *out, dmm_error *err)
{
    size_t size = 0;
    char *full = file_beside(net->vc, source, f->text, f->at, &size, err);
    if (!full)
        return err ? err->code : DMM_E_INVAL;
    dmm_error e;
    dmm_error_clear(&e);
    char *data;
    size_t len;
    int rc = dmm__read_file(net->vc, full, &data, &len, &e);
    dmm__free(net->vc, full, size);
    if (rc)
        return dmm_error_set(err, rc, f->at, "\"%s\": %s", f->text, e.text);
    rc = f->info->desc->file(net->vc, f->k, data, len, out, &e);
    dmm__free(net->vc, data, len + 1);
    if (rc)
        dmm_error_set(err, rc, f->at, "\"%s\": %s", f->text,
                      e.text[0] ? e.text : dmm_strerror(rc));
    return rc;
}

/* Every neuron of W whose type has file parameters has them all given. */
static int check_files_given(dmm_net *net, vv w, const file_param *fp, size_t n,
                             dmm_error *err)
{
    vv_iter it, jt;
    vv_label t, nm;
    vv wt, wn;
    vv_iter_init(&it, w);
    while (vv_iter_next(&it, &t, &wt)) {
        const dmm_type_info *info = dmm_registry_find(net->reg, t);
        for (size_t k = 0; info && k < info->n_params; k++) {
            if (info->desc->params[k].kind != DMM_PARAM_FILE)
                continue;
            vv_iter_init(&jt, wt);
            while (vv_iter_next(&jt, &nm, &wn)) {
                size_t q = 0;
                while (q < n &&
                       !(fp[q].type == t && fp[q].name == nm && fp[q].k == k))
                    q++;
                if (q < n)
                    continue;
                dmm__ptr p = {"/matrix"};
                dmm__ptr_push(net->vc, &p, t);
                dmm__ptr_push(net->vc, &p, nm);
                return bad(err, p.s,
                           "neuron %s/%s has no %s: give it in params, "
                           "{\"%s\": {\"%s\": {\"%s\": \"FILE\"}}}",
                           dmm__lstr(net, t), dmm__lstr(net, nm),
                           info->desc->params[k].name, dmm__lstr(net, t),
                           dmm__lstr(net, nm), info->desc->params[k].name);
            }
        }
    }
    return 0;
}

/* "params" (j; NULL when absent): the numbers into net->params, the files
 * read into net->states. w is the matrix loaded. */
static int read_params(dmm_net *net, const json_t *j, const char *source, vv w,
                       dmm_error *err)
{
    enum { MAXF = 64 };
    file_param *fp = NULL;
    size_t n = 0;
    json_t *nums = NULL;
    int rc = 0;
    if (json_is_object(j)) {
        if (!(fp = dmm__alloc(net->vc, MAXF * sizeof *fp)))
            return dmm_error_set(err, DMM_E_NOMEM, "/params", "%s",
                                 dmm_strerror(DMM_E_NOMEM));
        if ((rc = find_file_params(net, j, fp, MAXF, &n, err)))
            goto done;
    }
    if (n) { /* the numbers: a copy without the file names */
        if (!(nums = json_deep_copy(j))) {
            rc = dmm_error_set(err, DMM_E_NOMEM, "/params", "%s",
                               dmm_strerror(DMM_E_NOMEM));
            goto done;
        }
        for (size_t q = 0; q < n; q++) {
            json_t *nv = json_object_get(
                json_object_get(nums, dmm__lstr(net, fp[q].type)),
                dmm__lstr(net, fp[q].name));
            json_object_del(nv, dmm__lstr(net, fp[q].param));
            if (json_object_size(nv) == 0) /* {} is zero: no params */
                json_object_del(
                    json_object_get(nums, dmm__lstr(net, fp[q].type)),
                    dmm__lstr(net, fp[q].name));
        }
    }
    if (j && ((rc = vv_from_json(net->vc, nums ? nums : j, "/params",
                                 &net->params, err)) ||
              (rc = dmm__check_params(net, net->params, "/params", err))))
        goto done;
    if ((rc = check_files_given(net, w, fp, n, err)))
        goto done;
    for (size_t q = 0; q < n && !rc; q++) {
        vv v = VV_ZERO, st;
        vv_label path[3] = {fp[q].type, fp[q].name, fp[q].param};
        if ((rc = read_file_param(net, &fp[q], source, &v, err)))
            break;
        rc = vv_set(net->vc, net->states, path, 3, v, &st);
        vv_free(net->vc, v);
        if (rc) {
            dmm_error_set(err, rc, fp[q].at, "%s", dmm_strerror(rc));
            break;
        }
        vv_free(net->vc, net->states);
        net->states = st;
    }
done:
    json_decref(nums);
    dmm__free(net->vc, fp, MAXF * sizeof *fp);
    return rc;
}

int dmm__check_header(const json_t *root, const dmm__doc_kind *kind,
                      dmm_error *err)
{
    const char *what = kind->what;
    const char *const *members = kind->members;
    if (!json_is_object(root))
        return bad(err, "", "%s must be a JSON object", what);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)root, key, val)
    {
        size_t k = 0;
        while (members[k] && strcmp(members[k], key) != 0)
            k++;
        if (members[k])
            continue;
        dmm__ptr p = {""};
        (void)dmm_json_pointer_push(p.s, sizeof p.s, key, strlen(key));
        char expected[256] = "";
        for (k = 0; members[k]; k++)
            snprintf(expected + strlen(expected),
                     sizeof expected - strlen(expected), "%s%s", k ? ", " : "",
                     members[k]);
        return bad(err, p.s, "unknown member \"%s\" (expected %s)", key,
                   expected);
    }
    const json_t *j = json_object_get(root, members[0]);
    if (!j)
        return bad(err, "", "%s", kind->missing);
    if (!json_is_number(j) || json_number_value(j) != 1) {
        char path[64];
        snprintf(path, sizeof path, "/%s", members[0]);
        return bad(err, path, "unsupported %s version (expected 1)",
                   kind->version);
    }
    return 0;
}

static int load_root(dmm_net *net, const json_t *root, const char *source,
                     dmm_error *err)
{
    int rc = dmm__check_header(root, &network_doc, err);
    if (rc)
        return rc;
    const json_t *j;

    if ((j = json_object_get(root, "self")) && (rc = read_self(net, j, err)))
        return rc;
    if (!net->self_info)
        return bad(err, "", "Self's type \"%s\" is not registered",
                   dmm__lstr(net, net->self[0]));

    if (!(j = json_object_get(root, "matrix")))
        return bad(err, "", "missing member \"matrix\" (the network matrix)");
    vv w = VV_ZERO, outputs = VV_ZERO;
    if ((rc = vv_from_json(net->vc, j, "/matrix", &w, err)) ||
        (rc = dmm__check_matrix(net, w, VV_ZERO, "/matrix", err)))
        goto done;
    if ((j = json_object_get(root, "links")) &&
        (rc = read_links(net, j, &w, err)))
        goto done;
    if (vv_is_zero(vv_get(w, net->self, 2))) {
        vv_buf b = {0};
        rc = dmm_path_write(net->vc, net->self, 2, &b);
        if (!rc)
            rc = bad(err, "/matrix", "matrix has no row for Self (%.*s)",
                     (int)b.len, b.data);
        free(b.data);
        goto done;
    }

    if ((j = json_object_get(root, "outputs"))) {
        if ((rc = vv_from_json(net->vc, j, "/outputs", &outputs, err)) ||
            (rc = dmm__check_neuron_map(net, outputs, "/outputs", "outputs",
                                        err)))
            goto done;
        if (!vv_is_zero(vv_get(outputs, net->self, 2))) {
            dmm__ptr p = {"/outputs"};
            dmm__ptr_push(net->vc, &p, net->self[0]);
            dmm__ptr_push(net->vc, &p, net->self[1]);
            rc = bad(err, p.s,
                     "Self's output is the matrix: give it in \"matrix\", "
                     "not in \"outputs\"");
            goto done;
        }
    }
    if ((rc =
             read_params(net, json_object_get(root, "params"), source, w, err)))
        goto done;
    if ((j = json_object_get(root, "seed")) && (rc = read_seed(net, j, err)))
        goto done;
    if ((rc = dmm__fields_read(net, json_object_get(root, "positions"),
                               json_object_get(root, "modulations"), w, err)))
        goto done; /* fields (net_fields.c) */
    if ((rc = vv_set(net->vc, outputs, net->self, 3, w, &net->y)))
        dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
done:
    vv_free(net->vc, w);
    vv_free(net->vc, outputs);
    return rc;
}

/* A network from a description's root (dmm__root_fn). */
static int load_doc_root(vv_ctx *vc, const dmm_registry *reg,
                         const json_t *root, const char *source, dmm_net **out,
                         dmm_error *err)
{
    dmm_net *net = dmm__net_new(vc, reg);
    if (!net)
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                             dmm_strerror(DMM_E_NOMEM));
    int rc = load_root(net, root, source, err);
    if (rc) {
        dmm_net_free(net);
        return rc;
    }
    *out = net;
    return 0;
}

int dmm__doc_text(vv_ctx *vc, const dmm_registry *reg, const char *text,
                  size_t len, const char *source, const char *what,
                  dmm__root_fn fn, dmm_net **out, dmm_error *err)
{
    dmm_error local;
    if (!err)
        err = &local;
    dmm_error_clear(err);
    *out = NULL;
    if (!source)
        source = "<string>";
    if (len > DMM__MAX_FILE_SIZE) {
        dmm_error_set(err, DMM_E_LIMIT, "", "%s larger than %zu bytes", what,
                      DMM__MAX_FILE_SIZE);
        dmm_error_set_source(err, source);
        return DMM_E_LIMIT;
    }
    json_t *root = vv_json_load(text, len, source, err);
    if (!root)
        return err->code;
    int rc = fn(vc, reg, root, source, out, err);
    json_decref(root);
    if (rc) {
        dmm_error_set_source(err, source);
        if (err->line == 0)
            vv_json_locate(text, len, err);
    }
    return rc;
}

int dmm__doc_file(vv_ctx *vc, const dmm_registry *reg, const char *filename,
                  const char *what, dmm__root_fn fn, dmm_net **out,
                  dmm_error *err)
{
    dmm_error_clear(err);
    *out = NULL;
    char *text;
    size_t len;
    int rc = dmm__read_file(vc, filename, &text, &len, err);
    if (rc)
        return rc;
    rc = dmm__doc_text(vc, reg, text, len, filename, what, fn, out, err);
    dmm__free(vc, text, len + 1);
    return rc;
}

int dmm_net_load_text(vv_ctx *vc, const dmm_registry *reg, const char *text,
                      size_t len, const char *source, dmm_net **out,
                      dmm_error *err)
{
    return dmm__doc_text(vc, reg, text, len, source, "network description",
                         load_doc_root, out, err);
}

int dmm_net_load_file(vv_ctx *vc, const dmm_registry *reg, const char *filename,
                      dmm_net **out, dmm_error *err)
{
    return dmm__doc_file(vc, reg, filename, "network description",
                         load_doc_root, out, err);
}
