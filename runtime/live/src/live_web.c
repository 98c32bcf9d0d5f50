// SPDX-License-Identifier: MIT
/*
 * The browser view's transport: a libwebsockets context adopted onto the
 * server's libuv loop (a foreign loop), so HTTP, WebSockets and the engine's
 * cycles share one thread and edits still apply only at the cycle boundary.
 * lws parses HTTP and frames WebSockets; this file routes: "/" and the
 * page's files from the binary, "/ws" upgraded only from the page's own
 * origin, and each text message handed whole to the client that
 * live_server.c keeps for the connection. Every WebSocket owns a queue of
 * outgoing messages, written one per writable callback.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dmm_live.h"
#include "live_web.h"

enum {
    RX_CHUNK = 65536,  /* bytes of a message lws hands over at once */
    HTTP_CHUNK = 8192, /* bytes of a file written at once */
    MAX_ORIGINS = 4,
};

typedef struct wsmsg {
    struct wsmsg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes for lws, then len bytes */
} wsmsg;

/* The per-connection data lws allocates (and frees after closing): an HTTP
 * transfer of one file, or a WebSocket. */
struct dmm__live_ws {
    struct lws *wsi;
    dmm__live_web *web;
    dmm__live_client *c; /* NULL for HTTP, and once the client is gone */
    wsmsg *head, *tail;
    size_t queued;
    bool ending; /* close once the queue is sent */
    bool inmsg;  /* inside a message (more fragments follow) */
    const dmm__live_asset *asset;
    size_t off;
};

struct dmm__live_web {
    struct lws_context *ctx;
    dmm__live_server *srv;
    uv_loop_t *loop;
    char origins[MAX_ORIGINS][300];
    size_t norigins;
    bool wildcard;
    bool stopped; /* the first lws_context_destroy has been called */
    struct lws_vhost *vh;
    int fd;         /* the listening socket, or -1 */
    uv_poll_t poll; /* readable: connections to accept */
    bool polling;
};

/* ---- pure helpers ------------------------------------------------------- */

const unsigned char *dmm__live_web_asset(const char *uri, size_t *len,
                                         const char **mime)
{
    if (!strcmp(uri, "/"))
        uri = "/index.html";
    for (size_t i = 0; i < dmm__live_nassets; i++)
        if (!strcmp(dmm__live_assets[i].uri, uri)) {
            *len = dmm__live_assets[i].len;
            *mime = dmm__live_assets[i].mime;
            return dmm__live_assets[i].data;
        }
    return NULL;
}

bool dmm__live_web_origin_ok(const char *const *allowed, size_t n,
                             bool wildcard, const char *origin,
                             const char *host)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(allowed[i], origin))
            return true;
    if (!wildcard || !host || !*host || strncasecmp(origin, "http://", 7))
        return false;
    return !strcasecmp(origin + 7, host);
}

/* ---- the send queue ----------------------------------------------------- */

int dmm__live_ws_send(dmm__live_ws *ws, const char *data, size_t len)
{
    wsmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return DMM_E_NOMEM;
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, data, len);
    if (ws->tail)
        ws->tail->next = m;
    else
        ws->head = m;
    ws->tail = m;
    ws->queued += len;
    lws_callback_on_writable(ws->wsi);
    return 0;
}

size_t dmm__live_ws_backlog(const dmm__live_ws *ws)
{
    return ws->queued;
}

size_t dmm__live_ws_backlog_but_largest(const dmm__live_ws *ws)
{
    size_t big = 0;
    for (const wsmsg *m = ws->head; m; m = m->next)
        if (m->len > big)
            big = m->len;
    return ws->queued - big;
}

void dmm__live_ws_end(dmm__live_ws *ws)
{
    ws->ending = true;
    lws_callback_on_writable(ws->wsi);
}

void dmm__live_ws_kill(dmm__live_ws *ws)
{
    ws->ending = true;
    lws_set_timeout(ws->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

void dmm__live_ws_read(dmm__live_ws *ws, bool on)
{
    lws_rx_flow_control(ws->wsi, on ? 1 : 0);
}

bool dmm__live_ws_peer(const dmm__live_ws *ws, struct sockaddr_storage *addr)
{
    socklen_t len = sizeof *addr;
    int fd = lws_get_socket_fd(ws->wsi);
    return fd >= 0 && getpeername(fd, (struct sockaddr *)addr, &len) == 0;
}

static void queue_free(dmm__live_ws *ws)
{
    while (ws->head) {
        wsmsg *m = ws->head;
        ws->head = m->next;
        free(m);
    }
    ws->tail = NULL;
    ws->queued = 0;
}

/* ---- HTTP --------------------------------------------------------------- */

/* Security headers: the page runs only its own script, talks only to its
 * own server, and is never framed by another site. */
static const char CSP[] = "default-src 'self'; connect-src 'self'; "
                          "img-src 'self' data: blob:; frame-ancestors 'none'";

static int http_begin(struct lws *wsi, dmm__live_ws *pss, const char *uri)
{
    size_t len;
    const char *mime;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        lws_return_http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return -1;
    }
    const unsigned char *data = dmm__live_web_asset(uri, &len, &mime);
    if (!data) {
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
        return -1;
    }
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start;
    unsigned char *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, mime, len, &p, end) ||
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"content-security-policy:",
            (const unsigned char *)CSP, (int)sizeof CSP - 1, &p, end) ||
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"x-content-type-options:",
            (const unsigned char *)"nosniff", 7, &p, end) ||
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"cache-control:",
            (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    pss->asset = NULL;
    for (size_t i = 0; i < dmm__live_nassets; i++)
        if (dmm__live_assets[i].data == data)
            pss->asset = &dmm__live_assets[i];
    pss->off = 0;
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_write(struct lws *wsi, dmm__live_ws *pss)
{
    const dmm__live_asset *a = pss->asset;
    if (!a)
        return 0;
    unsigned char buf[LWS_PRE + HTTP_CHUNK];
    size_t n = a->len - pss->off;
    if (n > HTTP_CHUNK)
        n = HTTP_CHUNK;
    bool final = pss->off + n == a->len;
    memcpy(buf + LWS_PRE, a->data + pss->off, n);
    if (lws_write(wsi, buf + LWS_PRE, n,
                  final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
        return -1;
    pss->off += n;
    if (final) {
        pss->asset = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

/* An upgrade is allowed only on /ws, only to a WebSocket, and only from
 * the page's own origin (or from a client that sends no Origin, which no
 * browser does): a page from elsewhere must not drive the network. */
static int confirm_upgrade(struct lws *wsi, dmm__live_web *w, const char *to)
{
    char uri[16], origin[300], host[300];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, "/ws") != 0) {
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
        return 1;
    }
    if (!to || strcmp(to, "websocket") != 0)
        return -1;
    int olen = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (olen <= 0)
        return 0;
    const char *allowed[MAX_ORIGINS];
    for (size_t i = 0; i < w->norigins; i++)
        allowed[i] = w->origins[i];
    host[0] = '\0';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) < (int)sizeof host)
        lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST);
    if (olen >= (int)sizeof origin ||
        lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0 ||
        !dmm__live_web_origin_ok(allowed, w->norigins, w->wildcard, origin,
                                 host)) {
        lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN,
                               "a WebSocket from another origin is refused");
        return 1;
    }
    return 0;
}

/* ---- the one protocol: the page's files and /ws ------------------------ */

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                  void *in, size_t len)
{
    dmm__live_ws *pss = user;
    struct lws_context *ctx = lws_get_context(wsi);
    dmm__live_web *w = ctx ? lws_context_user(ctx) : NULL;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return http_begin(wsi, pss, in ? (const char *)in : "");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return http_write(wsi, pss);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(wsi, w, in);
    case LWS_CALLBACK_ESTABLISHED:
        memset(pss, 0, sizeof *pss);
        pss->wsi = wsi;
        pss->web = w;
        pss->c = dmm__live_client_ws_open(w->srv, pss);
        return pss->c ? 0 : -1;
    case LWS_CALLBACK_RECEIVE: {
        if (!pss->c || pss->ending)
            return 0;
        bool first = !pss->inmsg;
        bool final = lws_is_final_fragment(wsi) &&
                     lws_remaining_packet_payload(wsi) == 0;
        pss->inmsg = !final;
        dmm__live_client_ws_data(pss->c, in, len, first, final,
                                 lws_frame_is_binary(wsi) != 0);
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        wsmsg *m = pss->head;
        if (!m)
            return pss->ending ? -1 : 0;
        pss->head = m->next;
        if (!pss->head)
            pss->tail = NULL;
        pss->queued -= m->len;
        int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
        free(m);
        if (n < 0)
            return -1;
        if (pss->head || pss->ending)
            lws_callback_on_writable(wsi);
        else if (pss->c)
            dmm__live_client_ws_written(pss->c); /* may queue more */
        return 0;
    }
    case LWS_CALLBACK_CLOSED: {
        dmm__live_client *c = pss->c;
        pss->c = NULL;
        queue_free(pss);
        if (c)
            dmm__live_client_ws_gone(c);
        return 0;
    }
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"dmm", on_lws, sizeof(dmm__live_ws), RX_CHUNK, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- start and stop ----------------------------------------------------- */

/* The listening socket is the server's (bound before lws starts, so a bad
 * address is refused before anything is on the loop); each connection it
 * accepts is handed to lws, which speaks HTTP on it. */
static void on_accept(uv_poll_t *h, int status, int events)
{
    dmm__live_web *w = h->data;
    if (status < 0 || w->stopped)
        return;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an error for that connection only */
        lws_adopt_socket_vhost(w->vh, fd); /* closes fd on failure */
    }
}

static int listen_on(const char *spec, const char *host, int port, bool v4,
                     const void *addr, int *fdp, int *bound, dmm_error *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (v4) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        memcpy(&a->sin_addr, addr, sizeof a->sin_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        memcpy(&a->sin6_addr, addr, sizeof a->sin6_addr);
        sl = sizeof *a;
    }
    int one = 1;
    int fd =
        socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        (!v4 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
        bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return dmm_error_set(err, DMM_E_IO, "",
                             "cannot listen on --http %s: %s", spec,
                             strerror(e));
    }
    *fdp = fd;
    *bound = ntohs(v4 ? ((struct sockaddr_in *)&ss)->sin_port
                      : ((struct sockaddr_in6 *)&ss)->sin6_port);
    (void)host;
    return 0;
}

int dmm__live_web_start(dmm__live_server *srv, uv_loop_t *loop,
                        const char *spec, bool has_token, FILE *announce,
                        dmm__live_web **out, dmm_error *err)
{
    char host[256];
    int port;
    dmm_error e;
    *out = NULL;
    if (dmm_live_hostport(spec, host, sizeof host, &port, &e) < 0)
        return dmm_error_set(err, DMM_E_INVAL, "", "--http %s", e.text);
    struct in_addr a4;
    struct in6_addr a6;
    bool v4 = inet_pton(AF_INET, host, &a4) == 1;
    if (!v4 && inet_pton(AF_INET6, host, &a6) != 1)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "--http %s: \"%s\" is not a numeric IPv4 or "
                             "IPv6 address",
                             spec, host);
    bool loopback = v4 ? (ntohl(a4.s_addr) >> 24) == 127
                       : !memcmp(&a6, &in6addr_loopback, sizeof a6);
    bool wildcard = v4 ? a4.s_addr == htonl(INADDR_ANY)
                       : !memcmp(&a6, &in6addr_any, sizeof a6);
    if (!loopback && !has_token)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "--http %s: a page reachable from other "
                             "machines needs a token (--token-file FILE or "
                             "DMM_TOKEN)",
                             spec);
    int fd = -1, bound = 0; /* set by listen_on when it succeeds */
    int rc = listen_on(spec, host, port, v4, v4 ? (const void *)&a4 : &a6, &fd,
                       &bound, err);
    if (rc < 0)
        return rc;
    dmm__live_web *w = calloc(1, sizeof *w);
    if (!w) {
        close(fd);
        return dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
    }
    w->srv = srv;
    w->loop = loop;
    w->fd = fd;
    w->wildcard = wildcard;

    /* lws reports its own trouble on stderr (this is the server, which
     * talks to its operator); notices and below stay quiet. */
    lws_set_log_level(LLL_ERR, NULL);
    void *loops[1] = {loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols;
    info.options =
        LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
        LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    info.foreign_loops = loops;
    info.user = w;
    info.uid = -1;
    info.gid = -1;
    info.max_http_header_data = 4096;
    info.timeout_secs = 20;
    info.server_string = "dmm";
    w->ctx = lws_create_context(&info);
    w->vh = w->ctx ? lws_get_vhost_by_name(w->ctx, "default") : NULL;
    *out = w;
    if (!w->vh) {
        /* A half-made context is closed on the loop like a whole one. */
        dmm__live_web_stop(w);
        return dmm_error_set(err, DMM_E_IO, "",
                             "--http %s: cannot start libwebsockets", spec);
    }
    uv_poll_init_socket(loop, &w->poll, fd);
    w->poll.data = w;
    w->polling = uv_poll_start(&w->poll, UV_READABLE, on_accept) == 0;
    char shown[280];
    snprintf(shown, sizeof shown, v4 ? "%s:%d" : "[%s]:%d", host, bound);
    snprintf(w->origins[w->norigins++], sizeof w->origins[0], "http://%s",
             shown);
    if (loopback) {
        snprintf(w->origins[w->norigins++], sizeof w->origins[0],
                 "http://localhost:%d", bound);
        snprintf(w->origins[w->norigins++], sizeof w->origins[0],
                 v4 ? "http://[::1]:%d" : "http://127.0.0.1:%d", bound);
    }
    fprintf(announce, "http://%s/\n", shown);
    fflush(announce);
    return 0;
}

static void on_poll_closed(uv_handle_t *h)
{
    dmm__live_web *w = h->data;
    close(w->fd);
    w->fd = -1;
}

/* With libuv, lws closes its handles asynchronously: the first destroy
 * starts it, the loop then runs until they are closed, and the second
 * destroy (in dmm__live_web_free) frees what is left. */
void dmm__live_web_stop(dmm__live_web *w)
{
    if (!w || w->stopped)
        return;
    w->stopped = true;
    if (w->polling)
        uv_close((uv_handle_t *)&w->poll, on_poll_closed);
    else if (w->fd >= 0)
        close(w->fd);
    w->polling = false;
    w->fd = -1;
    if (w->ctx)
        lws_context_destroy(w->ctx);
}

void dmm__live_web_free(dmm__live_web *w)
{
    if (!w)
        return;
    if (w->ctx)
        lws_context_destroy(w->ctx);
    free(w);
}
