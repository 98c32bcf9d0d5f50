// SPDX-License-Identifier: MIT
/*
 * What the benchmarks of `dmm serve` (bench_serve, bench_web) share: the
 * server started as a child whose stdout the benchmark reads (the lines with
 * its addresses), and a TCP connection to a printed HOST:PORT. The callers
 * report failures their own way (bench_web also kills the server).
 */
#ifndef BENCH_CHILD_H
#define BENCH_CHILD_H

#include <errno.h>
#include <netdb.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

/* Starts exe with argv (NULL-terminated) and this environment, its stdout a
 * pipe: the pipe's read end (close it when done), or -1 with errno set. */
static inline int bench_spawn_reading(pid_t *pid, const char *exe,
                                      char *const argv[])
{
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    int rc = posix_spawn(pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        errno = rc;
        return -1;
    }
    return pfd[0];
}

/* One line of fd into out, without its '\n', cut to size - 1 bytes: 0, or
 * -1 when fd ends (or fails) before the '\n'. */
static inline int bench_read_line(int fd, char *out, size_t size)
{
    size_t k = 0;
    for (;;) {
        char ch;
        if (read(fd, &ch, 1) != 1)
            return -1;
        if (ch == '\n')
            break;
        if (k + 1 < size)
            out[k++] = ch;
    }
    out[k] = '\0';
    return 0;
}

/* A TCP connection to addr ("HOST:PORT"): the socket, or -1 with *why set
 * to what failed. */
static inline int bench_connect(const char *addr, const char **why)
{
    char host[256];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon) {
        *why = "the server printed no HOST:PORT";
        return -1;
    }
    *colon = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        *why = "cannot resolve the server's address";
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        *why = "cannot connect";
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

#endif
