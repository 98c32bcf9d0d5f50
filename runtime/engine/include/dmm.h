// SPDX-License-Identifier: MIT
/*
 * The DMM engine (spec dmm.md §2, §4, §6): a network loaded from JSON, run one
 * two-stroke cycle at a time. The network owns its state: the output map Y_t
 * (Self's output is the matrix W_t), the state of stateful neurons, the input
 * queues, the cycle number and the random state. Edits and feeds are applied
 * between cycles only. A cycle that fails (a NaN, an unknown type made by a
 * self-edit, out of memory) leaves the network exactly as it was.
 */
#ifndef DMM_H
#define DMM_H

#include <stdint.h>

#include "dmm_neuron.h"
#include "vv.h"

typedef struct dmm_net dmm_net;

/* Load a network description from a file or from text. vc and reg are
 * borrowed and must outlive the network. Errors read
 * "file:line:column: /json/path: message". */
int dmm_net_load_file(vv_ctx *vc, const dmm_registry *reg, const char *filename,
                      dmm_net **out, dmm_error *err);
int dmm_net_load_text(vv_ctx *vc, const dmm_registry *reg, const char *text,
                      size_t len, const char *source, dmm_net **out,
                      dmm_error *err);
void dmm_net_free(dmm_net *net);

/* Run one cycle: down movement, then up movement. */
int dmm_net_step(dmm_net *net, dmm_error *err);
/* t: the number of cycles run, so outputs are Y_t. */
uint64_t dmm_net_step_count(const dmm_net *net);
/* borrowed: Y_t, Self included (valid until the next step, edit or free).
 * The tree may be built here, from the neurons' outputs; when the host read
 * Y before the last step, that step built it already. Out of memory while
 * building it here aborts, since this call cannot report it: programs that
 * must survive that call dmm_net_outputs_build first. */
vv dmm_net_outputs(const dmm_net *net);
/* Build Y_t's tree now if it is not built, so that dmm_net_outputs returns
 * it without allocating until the next step or edit. DMM_E_NOMEM (err says
 * so) leaves the network as it was; the call can be repeated. */
int dmm_net_outputs_build(dmm_net *net, dmm_error *err);
/* borrowed: W_t. */
vv dmm_net_matrix(const dmm_net *net);

/* W += delta before the next cycle (a six-level fragment). Rejected, with the
 * network unchanged, if the result would not be a valid network. */
int dmm_net_edit(dmm_net *net, vv delta, dmm_error *err);

/* Fields (docs/fields.md). Each is checked like a loaded file and changes
 * nothing when refused (DMM_E_INVAL, err located in the request).
 * Add, remove or change (action) the modulation given as JSON text (for
 * remove, its name as a JSON string or an object with "name"). */
int dmm_net_modulate(dmm_net *net, const char *action, const char *json,
                     size_t len, dmm_error *err);
/* Set neuron "type/name"'s position to xy (n = 1 or 2 finite numbers), or
 * remove it (xy NULL). */
int dmm_net_position(dmm_net *net, const char *neuron, const double *xy,
                     size_t n, dmm_error *err);
/* The same with the position as JSON text (len bytes): null removes it,
 * [x] or [x, y] sets it, read as a network file's "positions" are (errors
 * at "/neuron" and "/at"); what the live `position` request and the script
 * event of that name call. */
int dmm_net_position_json(dmm_net *net, const char *neuron, const char *at,
                          size_t len, dmm_error *err);
/* Each modulation's field, a line each appended to b: its name and its
 * field (type/name/output) as JSON strings and the kind ("induced",
 * "external" or "mixed", docs/fields.md "Kinds of field"), tab-separated. */
int dmm_net_field_kinds(const dmm_net *net, vv_buf *b);
/* How many neurons have positions and how many modulations there are. */
void dmm_net_fields_count(const dmm_net *net, size_t *positions,
                          size_t *modulations);
/* The positions and modulations as a JSON document (appended to b), and
 * back: restore replaces them all (for undo). */
int dmm_net_fields_save(const dmm_net *net, vv_buf *b);
int dmm_net_fields_restore(dmm_net *net, const char *json, size_t len,
                           dmm_error *err);
/* Queue an output map for the input neuron (input, name): it emits one queued
 * map per cycle, {} when its queue is empty. */
int dmm_net_feed(dmm_net *net, vv_label name, vv outputs, dmm_error *err);

/* Whole state as JSON (a state file), and back. Restoring into a fresh
 * context continues bit-identically. Writing a file is atomic. */
int dmm_net_save_buf(const dmm_net *net, vv_buf *b);
int dmm_net_save_file(const dmm_net *net, const char *filename, dmm_error *err);
int dmm_net_restore_file(vv_ctx *vc, const dmm_registry *reg,
                         const char *filename, dmm_net **out, dmm_error *err);

/* ---- additions: restore from memory, inspection, paths ------------------ */

/* Restore from a state document in memory (source names it in err). */
int dmm_net_restore_text(vv_ctx *vc, const dmm_registry *reg, const char *text,
                         size_t len, const char *source, dmm_net **out,
                         dmm_error *err);

/* Neurons that fire in the next cycle: those with a row in W_t, plus Self. */
size_t dmm_net_active_count(const dmm_net *net);
/* Weights in W_t (its stored scalars). */
size_t dmm_net_weight_count(const dmm_net *net);
/* Self's type, name and output labels (out: 3 labels). */
void dmm_net_self(const dmm_net *net, vv_label *out);
/* borrowed: the parameters, {type: {name: {param: x}}}. */
vv dmm_net_params(const dmm_net *net);
/* borrowed: the context and registry the network was loaded with. */
vv_ctx *dmm_net_vctx(const dmm_net *net);
const dmm_registry *dmm_net_registry(const dmm_net *net);
/* Maps queued for the input neuron (input, name) and not yet emitted. */
size_t dmm_net_queue_len(const dmm_net *net, vv_label name);

/*
 * Run the cycles of net on n threads (1 to 64; 1, the default, runs them on
 * the caller's thread). The neurons of the down movement and the firings of
 * the up movement are split across the threads, each writing only its own
 * neurons, so every result is identical bit for bit to one thread's. The
 * workers start here and live until the network is freed or n changes;
 * neuron functions of registered types must then be safe to call from
 * several threads at once (the built-ins are). DMM_E_INVAL for n out of
 * range, DMM_E_NOMEM when a thread cannot be started (net then runs on one).
 */
int dmm_net_set_threads(dmm_net *net, unsigned n, dmm_error *err);
unsigned dmm_net_threads(const dmm_net *net);

/*
 * Paths written as text, as in "links", "self" and feed scripts: labels
 * joined by '/'; a backslash escapes a '/' or a backslash inside a label
 * (the text a\/b/c is the two labels "a/b" and "c"). Parse s (len bytes) into
 * at most max interned labels, *n of them (at least one); no part may be
 * empty. A last part ":number" (VV_NUMBER_KEY, never a label) names the
 * scalar part of the node the labels reach, as the member ":number" does in
 * JSON: it is not stored in out and sets *scalar (false without it). A
 * reader whose path names a neuron, an input or an output, which have no
 * scalar part to name, passes scalar NULL and ":number" is then refused.
 * DMM_E_INVAL (with a message in err, path "") on a bad escape, an empty
 * part, too many parts or a ":number" that is first, not last, or not
 * allowed; a bad path interns none of its parts.
 */
int dmm_path_parse(vv_ctx *vc, const char *s, size_t len, vv_label *out,
                   size_t max, size_t *n, bool *scalar, dmm_error *err);
/*
 * The same, but labels are only looked up, never interned: reading a path
 * from outside input does not grow vc's label table. Syntax errors as for
 * dmm_path_parse. DMM_E_NOTFOUND (err untouched) when the text is well formed
 * but some label was never interned, so nothing can be stored under it; *n
 * and *scalar are still set and the labels that were found are in out.
 */
int dmm_path_lookup(vv_ctx *vc, const char *s, size_t len, vv_label *out,
                    size_t max, size_t *n, bool *scalar, dmm_error *err);
/* Append n labels in that form to b. */
int dmm_path_write(const vv_ctx *vc, const vv_label *path, size_t n, vv_buf *b);

#endif
