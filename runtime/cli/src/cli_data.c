// SPDX-License-Identifier: MIT
/*
 * Where the `dmm` command finds its data files (bundled networks, plot
 * scripts) by their path in the source tree ("networks/hysteresis.json",
 * "tools/plot_hysteresis.py"): installed, they are under share/dmm/ with the
 * same relative paths. The library never looks for files; only the command
 * does, here.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int try_path(char *out, size_t size, const char *dir, const char *rel)
{
    if (!dir || !*dir)
        return 0;
    int n = snprintf(out, size, "%s/%s", dir, rel);
    return n > 0 && (size_t)n < size && access(out, R_OK) == 0;
}

/* The folder of the running executable (Linux), "" when unknown. */
static void exe_dir(char *dir, size_t size)
{
    dir[0] = '\0';
    if (size < 2)
        return;
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    if (n <= 0) {
        dir[0] = '\0';
        return;
    }
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        dir[0] = '\0';
}

int dmm__data_file(const char *rel, char *out, size_t size)
{
    /* 1. As given, from the working directory (a source checkout). */
    int n = snprintf(out, size, "%s", rel);
    if (n > 0 && (size_t)n < size && access(out, R_OK) == 0)
        return 1;
    /* 2. $DMM_DATA_DIR, for a relocated data folder. */
    if (try_path(out, size, getenv("DMM_DATA_DIR"), rel))
        return 1;
    /* 3. Beside an installed executable: <prefix>/bin/dmm ->
     *    <prefix>/share/dmm, so a staged or moved install finds its own. */
    char dir[PATH_MAX], share[PATH_MAX + 32];
    exe_dir(dir, sizeof dir);
    if (dir[0]) {
        snprintf(share, sizeof share, "%s/../share/dmm", dir);
        if (try_path(out, size, share, rel))
            return 1;
    }
    /* 4. The data folder this build installs to, then the source tree it
     *    was built from (a dmm run from its build folder). */
    return try_path(out, size, DMM_DATADIR, rel) ||
           try_path(out, size, DMM_SOURCE_DIR, rel);
}
