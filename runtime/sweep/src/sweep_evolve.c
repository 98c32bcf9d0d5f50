// SPDX-License-Identifier: MIT
/*
 * The evolutionary search of a sweep's "evolve": a population of individuals
 * (values for the genes, which are member keys), each evaluated on the
 * sweep's seeds and scored by the mean of one result field; the best `keep`
 * survive unchanged (their scores are not recomputed: members are
 * deterministic) and the rest of the next generation are their mutated
 * children. Generation g's random numbers come from (seed, g) alone, so a run
 * resumed from its checkpoint goes on exactly as the uninterrupted run would.
 * Every individual remembers its lineage (the ids of its ancestors).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_rng.h"
#include "sweep_internal.h"

typedef struct evo {
    const dmm_sweep *s;
    const json_t *spec, *genes, *seeds;
    const char *field;
    int goal; /* +1 max, -1 min, 0 target */
    double target, rate;
    uint64_t seed, generations, population, keep;
    json_t *pop;     /* [{"id", "lineage", "genes", "score"}] */
    json_t *history; /* per generation */
    json_t *best;
    json_int_t next_index, gen;
    /* the batch being collected: id -> [values], id -> failed */
    json_t *scores;
    dmm_sweep_line_fn fn;
    void *ud;
} evo;

static double fitness(const evo *e, const json_t *ind)
{
    const json_t *sc = json_object_get(ind, "score");
    if (!json_is_number(sc))
        return -INFINITY;
    double x = json_number_value(sc);
    return e->goal > 0 ? x : e->goal < 0 ? -x : -fabs(x - e->target);
}

static double gauss(uint64_t st[4])
{
    double u = dmm_rng_uniform(st), v = dmm_rng_uniform(st);
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

/* new: g's value for gene spec, mutated. */
static json_t *mutate_gene(const json_t *spec, const json_t *val,
                           uint64_t st[4])
{
    const json_t *ch = json_object_get(spec, "choices");
    if (ch) {
        size_t n = json_array_size(ch);
        if (n < 2)
            return json_incref((json_t *)val);
        size_t k = (size_t)dmm_rng_below(st, n - 1), at = 0;
        for (size_t i = 0; i < n; i++)
            if (json_equal(json_array_get(ch, i), (json_t *)val))
                at = i;
        return json_incref(json_array_get(ch, k >= at ? k + 1 : k));
    }
    double lo = json_number_value(json_object_get(spec, "min"));
    double hi = json_number_value(json_object_get(spec, "max"));
    const json_t *sg = json_object_get(spec, "sigma");
    double sigma = sg ? json_number_value(sg) : (hi - lo) / 10.0;
    int integer = json_is_true(json_object_get(spec, "integer"));
    double x = json_number_value(val) + sigma * gauss(st);
    if (integer) {
        x = round(x);
        if (x == json_number_value(val)) /* an integer gene must move */
            x += dmm_rng_below(st, 2) ? 1 : -1;
    }
    x = x < lo ? lo : x > hi ? hi : x;
    return integer ? json_integer((json_int_t)x) : json_real(x);
}

static json_t *individual(json_int_t gen, size_t k, json_t *lineage,
                          json_t *genes)
{
    char id[64];
    snprintf(id, sizeof id, "g%lld.%zu", (long long)gen, k);
    return json_pack("{s:s, s:o, s:o, s:n}", "id", id, "lineage", lineage,
                     "genes", genes, "score");
}

/* new: genes of parent, mutated: one gene always, each other with rate. */
static json_t *child_genes(const evo *e, const json_t *parent, uint64_t st[4])
{
    json_t *g = json_deep_copy(json_object_get(parent, "genes"));
    size_t n = json_object_size(e->genes), must = (size_t)dmm_rng_below(st, n);
    size_t i = 0;
    const char *k;
    json_t *spec;
    json_object_foreach((json_t *)e->genes, k, spec)
    {
        double u = dmm_rng_uniform(st);
        if (i++ == must || u < e->rate)
            json_object_set_new(g, k,
                                mutate_gene(spec, json_object_get(g, k), st));
    }
    return g;
}

/* The next generation from the scored population (sorted best first). */
static int breed(evo *e)
{
    uint64_t st[4];
    dmm_rng_seed(st, e->seed * 0x9E3779B97F4A7C15u + (uint64_t)e->gen);
    json_t *next = json_array();
    if (!next)
        return -1;
    for (size_t i = 0; i < e->keep && i < json_array_size(e->pop); i++)
        json_array_append(next, json_array_get(e->pop, i));
    size_t nkeep = json_array_size(next);
    for (size_t c = nkeep; c < e->population; c++) {
        const json_t *par = json_array_get(e->pop, (c - nkeep) % nkeep);
        json_t *lin = json_deep_copy(json_object_get(par, "lineage"));
        json_array_append(lin, json_object_get(par, "id"));
        json_t *ind = individual(e->gen + 1, c, lin, child_genes(e, par, st));
        if (!ind || json_array_append_new(next, ind)) {
            json_decref(next);
            return -1;
        }
    }
    json_decref(e->pop);
    e->pop = next;
    e->gen++;
    return 0;
}

static void on_member(void *ud, const char *line)
{
    evo *e = ud;
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    const char *id =
        json_string_value(json_object_get(json_object_get(j, "member"), "id"));
    double x;
    if (id) {
        json_t *list = json_object_get(e->scores, id);
        if (!list) {
            list = json_array();
            json_object_set_new(e->scores, id, list);
        }
        if (dmm__sweep_field(json_object_get(j, "result"), e->field, &x) == 0)
            json_array_append_new(list, json_real(x));
        else
            json_array_append_new(list, json_null()); /* failed */
    }
    json_decref(j);
    e->fn(e->ud, line);
}

static int by_fitness_evo(const evo *e, json_t *pop)
{
    /* stable insertion sort: population sizes are small */
    size_t n = json_array_size(pop);
    json_t **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(pop, i));
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && fitness(e, v[j]) > fitness(e, v[j - 1]);
             j--) {
            json_t *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++)
        json_array_set_new(pop, i, v[i]);
    free(v);
    return 0;
}

static int save(const evo *e, const char *checkpoint, dmm_error *err)
{
    json_t *doc =
        json_pack("{s:i, s:O, s:I, s:I, s:O, s:O, s:O}", "dmm-sweep-checkpoint",
                  1, "evolve", e->spec, "generation", (json_int_t)e->gen,
                  "next_index", e->next_index, "population", e->pop, "history",
                  e->history, "best", e->best ? e->best : json_null());
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", checkpoint);
    int rc =
        !doc ||
        json_dump_file(doc, tmp, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) ||
        rename(tmp, checkpoint);
    json_decref(doc);
    if (rc)
        return dmm_error_set(err, DMM_E_IO, "", "cannot write checkpoint %s",
                             checkpoint);
    return 0;
}

static int load(evo *e, const char *checkpoint, dmm_error *err)
{
    json_error_t je;
    FILE *f = fopen(checkpoint, "rb");
    if (!f)
        return 1; /* none yet: start */
    json_t *doc = json_loadf(f, 0, &je);
    fclose(f);
    dmm_error_clear(err);
    if (!doc) {
        dmm_error_set(err, DMM_E_PARSE, "", "%s", je.text);
        err->line = je.line;
        err->column = je.column;
        dmm_error_set_source(err, checkpoint);
        return -1;
    }
    /* the same search, perhaps with more generations */
    json_t *a = json_deep_copy(json_object_get(doc, "evolve"));
    json_t *b = json_deep_copy(e->spec);
    json_object_del(a, "generations");
    json_object_del(b, "generations");
    int same = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (!same || !json_is_integer(json_object_get(doc, "generation")) ||
        !json_is_array(json_object_get(doc, "population")) ||
        !json_is_array(json_object_get(doc, "history"))) {
        json_decref(doc);
        dmm_error_set(err, DMM_E_INVAL, "/evolve",
                      "this checkpoint belongs to another search (its "
                      "\"evolve\" differs): remove it to start again");
        dmm_error_set_source(err, checkpoint);
        return -1;
    }
    e->gen = json_integer_value(json_object_get(doc, "generation"));
    e->next_index = json_integer_value(json_object_get(doc, "next_index"));
    json_decref(e->pop);
    json_decref(e->history);
    e->pop = json_incref(json_object_get(doc, "population"));
    e->history = json_incref(json_object_get(doc, "history"));
    const json_t *bv = json_object_get(doc, "best");
    e->best = json_is_object(bv) ? json_incref((json_t *)bv) : NULL;
    json_decref(doc);
    return 0;
}

int dmm_sweep_evolve(const dmm_sweep *s, dmm_sweep_runner *r,
                     const char *checkpoint, dmm_sweep_line_fn fn,
                     dmm_sweep_line_fn gen_fn, void *ud, json_t **best,
                     dmm_error *err)
{
    const json_t *sp = s->evolve;
    evo e = {.s = s,
             .spec = sp,
             .genes = json_object_get(sp, "genes"),
             .seeds = s->evolve_seeds,
             .fn = fn,
             .ud = ud,
             .rate = 0.2,
             .seed = 1};
    e.field = json_string_value(json_object_get(sp, "score"));
    e.generations =
        (uint64_t)json_integer_value(json_object_get(sp, "generations"));
    e.population =
        (uint64_t)json_number_value(json_object_get(sp, "population"));
    e.keep = (uint64_t)json_number_value(json_object_get(sp, "keep"));
    e.generations =
        (uint64_t)json_number_value(json_object_get(sp, "generations"));
    if (json_object_get(sp, "seed"))
        e.seed = (uint64_t)json_number_value(json_object_get(sp, "seed"));
    if (json_object_get(sp, "rate"))
        e.rate = json_number_value(json_object_get(sp, "rate"));
    const json_t *goal = json_object_get(sp, "goal");
    e.goal = !goal || (json_is_string(goal) &&
                       !strcmp(json_string_value(goal), "max"))
                 ? 1
             : json_is_string(goal) ? -1
                                    : 0;
    if (e.goal == 0)
        e.target = json_number_value(json_object_get(goal, "target"));
    if (best)
        *best = NULL;
    int rc = 0;
    e.history = json_array();
    /* generation 0: the start and mutations of it */
    json_t *start = json_object();
    const char *k;
    json_t *spec;
    json_object_foreach((json_t *)e.genes, k, spec)
        json_object_set(start, k, json_object_get(spec, "start"));
    e.pop = json_array();
    json_array_append_new(e.pop, individual(0, 0, json_array(), start));
    {
        uint64_t st[4];
        dmm_rng_seed(st, e.seed * 0x9E3779B97F4A7C15u + 0x51u);
        for (size_t c = 1; c < e.population; c++)
            json_array_append_new(
                e.pop,
                individual(0, c, json_array(),
                           child_genes(&e, json_array_get(e.pop, 0), st)));
    }
    if (checkpoint) {
        int l = load(&e, checkpoint, err);
        if (l < 0) {
            rc = err->code;
            goto done;
        }
    }
    while ((uint64_t)e.gen < e.generations) {
        /* members: the individuals without a score, on every seed */
        json_t *members = json_array();
        e.scores = json_object();
        size_t i;
        json_t *ind;
        json_array_foreach(e.pop, i, ind)
        {
            if (!json_is_null(json_object_get(ind, "score")) ||
                json_is_true(json_object_get(ind, "evaluated")))
                continue;
            size_t ns = e.seeds ? json_array_size(e.seeds) : 1;
            for (size_t j = 0; j < ns; j++) {
                json_t *m = json_pack("{s:I, s:O}", "index", e.next_index++,
                                      "id", json_object_get(ind, "id"));
                json_object_update(m, json_object_get(ind, "genes"));
                if (e.seeds)
                    json_object_set(m, "seed", json_array_get(e.seeds, j));
                json_array_append_new(members, m);
            }
        }
        rc = dmm_sweep_runner_run(r, members, on_member, &e, err);
        json_decref(members);
        if (rc) {
            json_decref(e.scores);
            goto done;
        }
        json_array_foreach(e.pop, i, ind)
        {
            json_t *list = json_object_get(
                e.scores, json_string_value(json_object_get(ind, "id")));
            if (!list)
                continue;
            size_t j, n = json_array_size(list);
            json_t *x;
            double sum = 0;
            int failed = 0;
            json_array_foreach(list, j, x)
            {
                failed |= !json_is_number(x);
                sum += json_is_number(x) ? json_number_value(x) : 0;
            }
            json_object_set_new(ind, "evaluated", json_true());
            json_object_set_new(ind, "score",
                                failed || !n ? json_null()
                                             : json_real(sum / (double)n));
        }
        json_decref(e.scores);
        e.scores = NULL;
        by_fitness_evo(&e, e.pop);
        json_t *top = json_array_get(e.pop, 0);
        if (!e.best || fitness(&e, top) > fitness(&e, e.best)) {
            json_decref(e.best);
            e.best = json_deep_copy(top);
        }
        json_t *line = json_pack("{s:I, s:O, s:O}", "generation", e.gen, "best",
                                 top, "best_so_far", e.best);
        json_array_append_new(
            e.history, json_pack("{s:I, s:O, s:O}", "generation", e.gen, "id",
                                 json_object_get(top, "id"), "score",
                                 json_object_get(top, "score")));
        char *text = dmm_sweep_json_text(line);
        json_decref(line);
        if (text)
            gen_fn(ud, text);
        free(text);
        /* always breed: the checkpoint holds the generation to run next,
         * so a longer run resumed from it goes on as if never stopped */
        if (breed(&e)) {
            rc = dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
            goto done;
        }
        if (checkpoint && (rc = save(&e, checkpoint, err)))
            goto done;
    }
    if (best && e.best)
        *best = json_incref(e.best);
done:
    json_decref(e.pop);
    json_decref(e.history);
    json_decref(e.best);
    return rc;
}
