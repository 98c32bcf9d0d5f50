// SPDX-License-Identifier: MIT
/*
 * Where the `dmm` command finds its data files (bundled networks, plot
 * scripts) by their path in the source tree ("networks/hysteresis.json",
 * "tools/plot_hysteresis.py"): installed, they are under share/dmm/ with the
 * same relative paths. The library never looks for files; only the command
 * does, here. The order is documented in docs/cli.md ("Data files").
 */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
    /* 4. The data folder this build installs to. */
    if (try_path(out, size, DMM_DATADIR, rel))
        return 1;
    /* 5. The source tree, only for the dmm of the build folder itself: an
     *    installed copy must not depend on where it was built. */
    char real_exe[PATH_MAX], real_build[PATH_MAX];
    return dir[0] && realpath(dir, real_exe) &&
           realpath(DMM_BUILD_EXE_DIR, real_build) &&
           !strcmp(real_exe, real_build) &&
           try_path(out, size, DMM_SOURCE_DIR, rel);
}

extern char **environ;

int dmm__run_python(const char *cmd, char *const *args)
{
    const char *py = getenv("DMM_PYTHON");
    if (!py || !*py)
        py = "/usr/bin/python3";
    size_t n = 0;
    while (args[n])
        n++;
    char **argv = calloc(n + 2, sizeof *argv);
    if (!argv) {
        fprintf(stderr, "dmm %s: out of memory\n", cmd);
        return DMM_EXIT_INPUT;
    }
    argv[0] = (char *)py;
    memcpy(argv + 1, args, n * sizeof *argv);
    pid_t pid;
    int rc = posix_spawn(&pid, py, NULL, NULL, argv, environ);
    free(argv);
    if (rc) {
        fprintf(stderr, "dmm %s: cannot run %s: %s\n", cmd, py, strerror(rc));
        return DMM_EXIT_INPUT;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return DMM_EXIT_INPUT;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr,
                "dmm %s: %s %s failed (matplotlib missing? install "
                "python3-matplotlib)\n",
                cmd, py, args[0]);
        return DMM_EXIT_INPUT;
    }
    return 0;
}
