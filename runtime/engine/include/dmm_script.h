// SPDX-License-Identifier: MIT
/*
 * Scripts of edits and feeds (docs/cli.md "Scripts"): JSON Lines, one event a
 * line, each applied just before a given cycle. `dmm run --script` reads them
 * and the live server writes them as its --log, so a live session replays
 * exactly. A script is parsed and checked whole before it is used, so a run
 * never stops half-way on a malformed event.
 */
#ifndef DMM_SCRIPT_H
#define DMM_SCRIPT_H

#include <stdint.h>

#include "dmm.h"

/* edit, feed, and the field events (docs/fields.md "Live changes"):
 * modulate, position, and fields (the whole set of positions and
 * modulations, which is how the live server logs an undo of one of them). */
enum dmm_event_op {
    DMM_EV_EDIT,
    DMM_EV_FEED,
    DMM_EV_MODULATE,
    DMM_EV_POSITION,
    DMM_EV_FIELDS
};

/* One script event: applied just before cycle `step` (absolute numbering). */
typedef struct dmm_event {
    uint64_t step;
    int line; /* 1-based line in the script file */
    enum dmm_event_op op;
    vv_label name;  /* feed: the input neuron's name */
    vv value;       /* owned: edit delta or feed output map */
    char action[8]; /* modulate: "add", "remove" or "change" */
    char *neuron;   /* position: "type/name" (owned, NUL-terminated) */
    char *json;     /* owned, compact JSON text: modulate: the modulation;
                       position: "at"; fields: the document */
} dmm_event;

/* Apply a field event (modulate, position or fields) to net through the
 * engine's checks (dmm_net_modulate, dmm_net_position_json,
 * dmm_net_fields_restore); errors as those give them. */
int dmm_event_apply_fields(dmm_net *net, const dmm_event *ev, dmm_error *err);

/* A validated script, events sorted by (step, line). */
typedef struct dmm_script {
    char source[256];
    dmm_event *ev;
    size_t n;
} dmm_script;

/*
 * Parse and validate a whole script (len bytes of JSON Lines). On success
 * *out owns its events (release with dmm_script_free). On error nothing is
 * kept and err names source, line and JSON path. Blank lines are skipped.
 */
int dmm_script_parse(vv_ctx *vc, const char *text, size_t len,
                     const char *source, dmm_script *out, dmm_error *err);
/* Read a file and parse it as above. */
int dmm_script_load(vv_ctx *vc, const char *filename, dmm_script *out,
                    dmm_error *err);
void dmm_script_free(vv_ctx *vc, dmm_script *s);

/*
 * Read the neuron of a feed, "input/NAME" (s, len bytes) in the syntax of
 * dmm_path_parse: two parts, the first "input", no ":number" (a neuron has
 * no scalar part). Interns NAME into *name, and nothing unless the whole text
 * is right. DMM_E_INVAL (or DMM_E_NOMEM, DMM_E_LIMIT) with a message at JSON
 * path `path` in err.
 */
int dmm_feed_neuron(vv_ctx *vc, const char *s, size_t len, const char *path,
                    vv_label *name, dmm_error *err);

#endif
