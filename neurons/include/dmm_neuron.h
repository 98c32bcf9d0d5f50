// SPDX-License-Identifier: MIT
/*
 * Neuron types and the registry that holds them (spec dmm.md §3).
 * A neuron type is a static const descriptor: name, one-line summary, input
 * and output names (or variadic), parameters, whether it keeps state, and its
 * activation function. The registry is an object, never a global: it interns
 * each type's names once, so the engine resolves types and input names when a
 * network is loaded and never compares strings while it runs.
 */
#ifndef DMM_NEURON_H
#define DMM_NEURON_H

#include <stdbool.h>
#include <stdint.h>

#include "vv.h"

typedef struct dmm_type_info dmm_type_info;

/*
 * An input given as its terms instead of their sum (dmm_fire.terms): the
 * input is Σ w[i]·v[i] for i < n. The terms are the row's terms whose value
 * is not zero, in the row's label order (source type, name, output); w and v
 * are borrowed for the call.
 */
typedef struct dmm_terms {
    bool given; /* false: the input is in dmm_fire.input as usual */
    size_t n;
    const double *w;
    const vv *v;
} dmm_terms;

/*
 * One firing of one neuron in the up movement. The engine fills the inputs;
 * the function sets `output` (new) and, for stateful types, `new_state` (new).
 * Every vv the engine passes in is borrowed for the duration of the call.
 * The function returns 0 or a DMM_E_* code; on DMM_E_NONFINITE or any other
 * error the engine discards whatever the function had set and stops the cycle.
 */
typedef struct dmm_fire {
    vv_ctx *vc;
    const dmm_type_info *type; /* the resolved type: interned labels */
    vv_label name;             /* the neuron's name */
    vv input;                  /* {input-name: V}, zero when no input */
    vv params;                 /* this neuron's parameters, zero if none */
    vv state;                  /* state from the last firing, zero at first */
    vv feed;                   /* `input` neurons: map queued for this cycle */
    uint64_t step;             /* the cycle being computed (1 for the first) */
    uint64_t *rng;  /* the network's random state (xoshiro256**, 4 words) */
    vv output;      /* out, new: the neuron's whole output map */
    vv new_state;   /* out, new: stateful types only */
    dmm_error *err; /* where to say what went wrong */
    /* NULL, or one entry per declared input (by descriptor index): an entry
     * given holds that input as its terms, and `input` lacks it. Only for
     * inputs the type lists in dmm_neuron_type.terms, and the engine may
     * give any of those summed instead (a row that is not a list of terms,
     * a modulated neuron), so fn must take both and give the same result. */
    const dmm_terms *terms;
} dmm_fire;

typedef int (*dmm_neuron_fn)(dmm_fire *f);

/*
 * The optional dense form of a type whose output is elementwise over one
 * shape (docs/extending.md). The engine calls it on arrays instead of fn when
 * every input stream is a bare number or a flat map of numbers and they share
 * one shape: len values each, 0.0 standing for an absent leaf. Variadic types
 * (inputs NULL): called once per input stream with nin 1, output stream named
 * like the input. Fixed inputs with one output: called once with nin the
 * number of inputs, in[k] NULL when input k is zero. out[i] must be the leaf
 * fn would give at i (0.0 for absent), and inputs all absent at i must give
 * 0.0. Inputs are finite. Returns 0, or a DMM_E_* code — DMM_E_NONFINITE
 * whenever a value of out is not finite (debug builds assert it) — and on a
 * code the engine calls fn instead, which says what went wrong.
 */
typedef int (*dmm_dense_fn)(const double *const *in, size_t nin, double *out,
                            size_t len);

/* What a parameter's value is. */
typedef enum dmm_param_kind {
    DMM_PARAM_NUMBER, /* a number in the file's params (the zero default) */
    /* A file name: a string in the network file's params, relative to the
     * file's folder and inside it. The engine reads the file when the
     * network is loaded and gives its bytes to the type's `file` function,
     * whose value becomes the neuron's first state under the parameter's
     * name; the name itself is not kept, and dmm_fire_param reads 0. Not an
     * input stream. Only for stateful types with a `file` function. */
    DMM_PARAM_FILE,
} dmm_param_kind;

typedef struct dmm_param_spec {
    const char *name;
    double default_value;
    const char *summary;
    /* The values allowed, checked wherever parameters are read (a network
     * file, a state file), so a bad one is refused there with its location
     * and never first found by the neuron in a cycle: min <= x <= max, and a
     * whole number when integer. min == max (the zeros a descriptor that
     * says nothing leaves) allows any finite number. */
    double min, max;
    bool integer;
    dmm_param_kind kind;
} dmm_param_spec;

/* True when the spec allows x (see dmm_param_spec). */
bool dmm_param_allows(const dmm_param_spec *p, double x);

/*
 * Reads file parameter k's contents (data, len bytes, borrowed) into *out
 * (new): the value the neuron starts from, its state under the
 * parameter's name. Called by the engine when a network is loaded, once per
 * file parameter given. Returns 0, or a DMM_E_* code with one sentence in
 * err's text (the engine adds the file, the network and the place).
 */
typedef int (*dmm_file_fn)(vv_ctx *vc, size_t k, const void *data, size_t len,
                           vv *out, dmm_error *err);

typedef struct dmm_neuron_type {
    const char *name;    /* e.g. "accum" */
    const char *summary; /* one line, for `dmm neurons` and docs */
    /* NULL-terminated input names; NULL means variadic (any names). */
    const char *const *inputs;
    /* NULL-terminated output names; NULL means variadic, see outputs_doc. */
    const char *const *outputs;
    const char *outputs_doc; /* e.g. "same names as inputs"; NULL if fixed */
    const dmm_param_spec *params; /* terminated by {NULL}; NULL if none */
    bool stateful;
    dmm_neuron_fn fn;
    dmm_dense_fn dense; /* NULL: none; only for stateless types */
    /* NULL-terminated names among inputs that fn never reads (NULL: none).
     * Rows there stay in W, for neurons that read W through Self; the down
     * movement does not compute them and `input` lacks them. */
    const char *const *unread;
    /* NULL-terminated names among inputs that fn can take as their terms
     * (dmm_terms; NULL: none), which spares the engine their sum when the
     * type only walks the terms. At most the first 32 inputs. */
    const char *const *terms;
    /* NULL, or how the type reads its file parameters (DMM_PARAM_FILE). */
    dmm_file_fn file;
} dmm_neuron_type;

/* A registered type with its names interned. Indexes match the descriptor. */
struct dmm_type_info {
    const dmm_neuron_type *desc; /* borrowed from the registrant */
    vv_label name;
    size_t n_inputs; /* 0 with in == NULL for variadic */
    size_t n_outputs;
    const vv_label *in;
    const vv_label *out;
    size_t n_params;
    const vv_label *param;
    /* Bit k: input k is in desc->unread, or in desc->terms. */
    uint32_t unread, terms;
};

/* The input by descriptor index k (borrowed, zero when absent). */
static inline vv dmm_fire_in(const dmm_fire *f, size_t k)
{
    return vv_child(f->input, f->type->in[k]);
}

/* A parameter by descriptor index k: for a fixed-input type, the scalar part
 * of the input stream named like the parameter when it is non-zero (so one
 * neuron can modulate another's parameter); else the neuron's value from the
 * file's params if given, else the descriptor's default. */
double dmm_fire_param(const dmm_fire *f, size_t k);

typedef struct dmm_registry dmm_registry;

/* new: an empty registry interning in vc; NULL when out of memory. */
dmm_registry *dmm_registry_new(vv_ctx *vc);
void dmm_registry_free(dmm_registry *r);
/* Register t (borrowed: it must outlive r, normally static const).
 * DMM_E_INVAL for a duplicate name, a descriptor without name or fn, or a
 * file parameter on a type that is not stateful or has no file function. */
int dmm_registry_add(dmm_registry *r, const dmm_neuron_type *t);
/* Register every built-in type (the table in docs/neurons.md). */
int dmm_registry_add_builtins(dmm_registry *r);
/* borrowed: the type named by label, NULL when unknown. */
const dmm_type_info *dmm_registry_find(const dmm_registry *r, vv_label name);
/* Types in registration order, for listings. */
size_t dmm_registry_count(const dmm_registry *r);
const dmm_type_info *dmm_registry_at(const dmm_registry *r, size_t i);
vv_ctx *dmm_registry_vctx(const dmm_registry *r);
/* True if a fixed-arity type has an input or a numeric parameter called
 * label (such a parameter may arrive as an input stream, see
 * dmm_fire_param); always true for a variadic type. */
bool dmm_type_accepts_input(const dmm_type_info *t, vv_label label);
/* The descriptor index of t's input called label; -1 when t declares none
 * so (a variadic type declares none). */
int dmm_type_input_index(const dmm_type_info *t, vv_label label);
/* True if t declares its input label unread (dmm_neuron_type.unread): the
 * rows of that input are W's store, never computed. */
bool dmm_type_input_unread(const dmm_type_info *t, vv_label label);
/* Append the catalogue as Markdown (what docs/neurons.md holds). */
int dmm_registry_markdown(const dmm_registry *r, vv_buf *b);

/* ---- the built-in delay line ------------------------------------------------
 *
 * The engine runs neurons of the built-in `delay` type without the general
 * firing (docs/cycle.md, "Delay lines"): it calls the step below, which is
 * what the type's function calls too, so both make the same values.
 */
/* The longest delay line: its outputs are the ages "0" .. "63". */
#define DMM_DELAY_MAX 64

/* Is t the built-in `delay` type (of any registry)? */
bool dmm_type_is_delay(const dmm_type_info *t);
/* borrowed: the labels "0" .. "63" (DMM_DELAY_MAX of them), interned by
 * t's registry; t must be the built-in delay (dmm_type_is_delay). */
const vv_label *dmm_delay_ages(const dmm_type_info *t);
/* A delay line's `length` parameter as a step's n_age: len when it is an
 * integer 1 .. DMM_DELAY_MAX, else 0 (the type's function refuses it). */
int dmm_delay_length(double len);
/*
 * One step of a delay line n_age long (1 .. DMM_DELAY_MAX), age its
 * dmm_delay_ages: from its input X (borrowed, the neuron's whole input map)
 * and state {a: X_a} (borrowed), *new_state = {0: X, a + 1: X_a for a + 1 <
 * n_age} without the zero X, and *output = {a: {a: X_a}} over that state
 * (both new). Returns 0; 1 when state is not a map of age labels (a number,
 * another label: the type's function says which); or a DMM_E_* code of the
 * V-value operations. On a non-zero return both are zero.
 */
int dmm_delay_step(vv_ctx *vc, const vv_label *age, int n_age, vv input,
                   vv state, vv *output, vv *new_state);
/*
 * dmm_delay_step, its output written over *spare (taken; zero after) when
 * that fits instead of made: an output of this line's that no one else
 * holds any more (the engine keeps a line's output of the cycle before
 * last), one age {a: {a: X}} as the usual step makes, reused by vv_rewrap
 * when the step makes one age too. A spare that does not fit is freed.
 * The same values, and the same returns, as dmm_delay_step.
 */
int dmm_delay_step_reuse(vv_ctx *vc, const vv_label *age, int n_age, vv input,
                         vv state, vv *spare, vv *output, vv *new_state);

/* ---- plugins: neuron types in a shared object ------------------------------
 *
 * `dmm run --plugin FILE.so` (and check, serve, neurons) loads a shared
 * object that exports one dmm_plugin named `dmm_plugin_entry`, made with
 * DMM_PLUGIN. Its register function adds its types through dmm_registry_add
 * and returns 0 or a negative DMM_E_* code. The loader refuses a plugin
 * whose abi is not DMM_PLUGIN_ABI: the dmm_fire, dmm_neuron_type and
 * dmm_param_spec layouts it was compiled against may differ. Bump
 * DMM_PLUGIN_ABI whenever one of these structures or the meaning of a
 * registry call changes (3: file parameters, dmm_neuron_type.file).
 */
#define DMM_PLUGIN_ABI 3

typedef struct dmm_plugin {
    int abi;          /* DMM_PLUGIN_ABI of the headers it was built with */
    const char *name; /* for messages */
    int (*register_types)(dmm_registry *r);
} dmm_plugin;

#define DMM_PLUGIN(name_, fn_)                                                 \
    __attribute__((visibility("default")))                                     \
    const dmm_plugin dmm_plugin_entry = {DMM_PLUGIN_ABI, (name_), (fn_)}

#endif
