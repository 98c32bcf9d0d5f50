// SPDX-License-Identifier: MIT
/*
 * --plugin FILE.so: load shared objects that register neuron types
 * (dmm_neuron.h, DMM_PLUGIN). The dmm executable exports its symbols, so a
 * plugin's calls to dmm_registry_add, vv_apply and the rest resolve to the
 * very code that runs the network. Handles stay open until the registry
 * that borrows the plugins' descriptors is freed.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int dmm__plugins_load(const char *cmd, dmm_registry *reg,
                      const char *const *files, size_t n, dmm__plugins *out)
{
    out->handles = n ? calloc(n, sizeof *out->handles) : NULL;
    out->n = 0;
    if (n && !out->handles)
        return DMM_EXIT_INPUT;
    for (size_t k = 0; k < n; k++) {
        const char *f = files[k];
        /* A bare name would be searched in the library path, not here. */
        char path[4096];
        snprintf(path, sizeof path, "%s%s", strchr(f, '/') ? "" : "./", f);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "dmm %s: --plugin %s: cannot load: %s\n", cmd, f,
                    dlerror());
            return DMM_EXIT_INPUT;
        }
        out->handles[out->n++] = h;
        const dmm_plugin *p = dlsym(h, "dmm_plugin_entry");
        if (!p) {
            fprintf(stderr,
                    "dmm %s: --plugin %s: not a dmm plugin (it exports no "
                    "dmm_plugin_entry; see docs/extending.md)\n",
                    cmd, f);
            return DMM_EXIT_INPUT;
        }
        if (p->abi != DMM_PLUGIN_ABI) {
            fprintf(stderr,
                    "dmm %s: --plugin %s: built for plugin ABI %d, this dmm "
                    "has ABI %d; rebuild it against this dmm's headers\n",
                    cmd, f, p->abi, DMM_PLUGIN_ABI);
            return DMM_EXIT_INPUT;
        }
        size_t before = dmm_registry_count(reg);
        int rc = p->register_types ? p->register_types(reg) : DMM_E_INVAL;
        if (rc < 0) {
            fprintf(stderr,
                    "dmm %s: --plugin %s: registering its neuron types "
                    "failed: %s (a name already registered?)\n",
                    cmd, f, dmm_strerror(rc));
            return DMM_EXIT_INPUT;
        }
        if (dmm_registry_count(reg) == before)
            fprintf(stderr,
                    "dmm %s: --plugin %s: warning: it registered no neuron "
                    "type\n",
                    cmd, f);
    }
    return 0;
}

void dmm__plugins_close(dmm__plugins *p)
{
    for (size_t k = p->n; k-- > 0;)
        dlclose(p->handles[k]);
    free(p->handles);
    p->handles = NULL;
    p->n = 0;
}
