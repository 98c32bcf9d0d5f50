// SPDX-License-Identifier: MIT
/*
 * A progress bar on stderr for commands that run for a while: shown only
 * when stderr is a terminal (or DMM_PROGRESS=1; DMM_PROGRESS=0 silences
 * it), only once the work has taken a second, redrawn at most five times a
 * second, and erased at the end so the terminal keeps only the results.
 * DMM_PROGRESS=now draws from the first tick on, on every tick, so that a
 * test can see the bar without depending on how fast the machine is.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dmm__progress_begin(dmm__progress *p, uint64_t total, const char *unit)
{
    memset(p, 0, sizeof *p);
    const char *env = getenv("DMM_PROGRESS");
    p->on = env && *env ? strcmp(env, "0") != 0 : isatty(STDERR_FILENO);
    bool now_ = env && !strcmp(env, "now");
    p->after = now_ ? 0 : 1.0;
    p->every = now_ ? 0 : 0.2;
    p->total = total;
    p->unit = unit;
    p->start = now();
    p->last = p->start;
}

void dmm__progress_tick(dmm__progress *p, uint64_t done)
{
    if (!p->on || p->total == 0)
        return;
    double t = now();
    if (t - p->start < p->after || (p->shown && t - p->last < p->every))
        return;
    p->last = t;
    double rate = (double)done / (t - p->start);
    double left = rate > 0 ? (double)(p->total - done) / rate : 0;
    int width = 30,
        fill = (int)((double)width * (double)done / (double)p->total);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %llu/%llu %s, %.0f %s/s, %.0f s left  ", bar,
            (unsigned long long)done, (unsigned long long)p->total, p->unit,
            rate, p->unit, left);
    fflush(stderr);
    p->shown = true;
}

void dmm__progress_end(dmm__progress *p)
{
    if (p->shown)
        fputs("\r\033[K", stderr);
    p->shown = false;
}
