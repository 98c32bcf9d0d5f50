// SPDX-License-Identifier: MIT
/*
 * A plugin that claims another plugin ABI, as one built against older or
 * newer headers would: dmm must refuse to load it, before calling it.
 */
#include "dmm_neuron.h"

static int register_types(dmm_registry *r)
{
    (void)r;
    return -1; /* never called */
}

__attribute__((visibility("default"))) const dmm_plugin dmm_plugin_entry = {
    DMM_PLUGIN_ABI + 1, "bad-abi", register_types};
