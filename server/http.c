#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "er_log.h"
#include "er_util.h"

/* Where a connection stands in its current request, for the deadlines the
 * reaper thread enforces.  libmicrohttpd's own timeout is an idle timeout
 * (any byte resets it), so alone it cannot bound a head or a body dribbled
 * a byte at a time. */
enum {
    PH_HEAD,   /* a head is being received: --head-timeout, then 408 */
    PH_IDLE,   /* keep-alive, between requests: --conn-timeout, then closed */
    PH_BODY,   /* a body is being received: --body-timeout + bytes / --body-min-rate */
    PH_BUSY,   /* the request is complete: dispatch, compute, reply */
    PH_KILLED, /* answered by the reaper (or refused mid-body) and shut down */
};

/* One per connection (libmicrohttpd's socket context), listed in
 * srv_http.conns from its start notification to its close notification.
 * The close notification comes before libmicrohttpd closes the socket, so a
 * listed fd is open while srv_http.mu is held. */
typedef struct conn_track {
    struct conn_track *prev, *next; /* under srv_http.mu */
    int fd;
    _Atomic int phase;             /* a PH_ value; PH_KILLED is final */
    _Atomic uint64_t since;        /* when the phase began, er_now_ns */
    _Atomic uint64_t body_bytes;   /* of the current body */
} conn_track;

struct srv_http {
    struct MHD_Daemon *d;
    srv_app *app;
    size_t max_body;
    MHD_socket listen; /* returned by quiesce; closed after stop */
    uint64_t head_ns, idle_ns, body_ns, body_rate; /* the deadlines; rate 0 = none for bodies */
    int head_s, body_s;
    pthread_mutex_t mu; /* conns, stopping */
    pthread_cond_t cv;
    conn_track *conns;
    bool stopping, reaper_started;
    pthread_t reaper;
};

/* Per-request state, freed in the completed callback. */
typedef struct {
    srv_http *h;
    struct MHD_Connection *conn;
    conn_track *t; /* NULL when it could not be allocated (no deadlines) */
    int fd;
    char *body;
    size_t len, cap;
    bool too_large;
    bool close; /* answered before the body was read: Connection: close */
    srv_call *call;
    pthread_mutex_t mu;
    bool ready, suspended;
} conn_state;

/* ---- connection phases and the reaper ---- */

static conn_track *track_of(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Moves t to phase `to` (its clock restarted when restart); false once the
 * reaper has killed the connection. */
static bool track_enter(conn_track *t, int to, bool restart) {
    if (!t) return true;
    if (restart) atomic_store(&t->since, er_now_ns());
    int cur = atomic_load(&t->phase);
    do {
        if (cur == PH_KILLED) return false;
    } while (!atomic_compare_exchange_weak(&t->phase, &cur, to));
    return true;
}

static bool track_killed(const conn_track *t) { return t && atomic_load(&t->phase) == PH_KILLED; }

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    srv_http *h = cls;
    conn_track *t = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        t = ci ? calloc(1, sizeof *t) : NULL;
        *socket_context = t;
        if (!t) return; /* no deadlines for this one; libmicrohttpd's timeout stays */
        t->fd = ci->connect_fd;
        atomic_init(&t->phase, PH_HEAD);
        atomic_init(&t->since, er_now_ns());
        atomic_init(&t->body_bytes, 0);
        pthread_mutex_lock(&h->mu);
        t->next = h->conns;
        if (h->conns) h->conns->prev = t;
        h->conns = t;
        pthread_mutex_unlock(&h->mu);
        return;
    }
    if (!t) return;
    pthread_mutex_lock(&h->mu);
    if (t->prev) t->prev->next = t->next;
    else h->conns = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&h->mu);
    free(t);
    *socket_context = NULL;
}

/* The request line of a keep-alive connection's next request has arrived:
 * its head deadline starts now. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn) {
    (void)cls;
    (void)uri;
    conn_track *t = track_of(conn);
    int idle = PH_IDLE; /* a fresh connection is in PH_HEAD: its clock runs from accept */
    if (t && atomic_load(&t->phase) == PH_IDLE) { /* only the reaper moves it meanwhile */
        atomic_store(&t->since, er_now_ns());
        atomic_compare_exchange_strong(&t->phase, &idle, PH_HEAD);
    }
    return NULL; /* the request's state is made by on_request */
}

/* Calls add(u, name, value) for every header of a reply. */
static void each_header(const srv_response *rp, bool close,
                        void (*add)(void *u, const char *k, const char *v), void *u) {
    char buf[64];
    add(u, "Content-Type", rp->content_type ? rp->content_type : "application/json");
    add(u, "X-Request-Id", rp->request_id);
    const struct {
        const char *name;
        double ms;
    } times[] = {{"X-Total-Time", rp->total_ms},
                 {"X-Queue-Time", rp->queue_ms},
                 {"X-Compute-Time", rp->compute_ms},
                 {"X-Tokenization-Time", rp->tokenize_ms}};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        snprintf(buf, sizeof buf, "%.3f", times[i].ms);
        add(u, times[i].name, buf);
    }
    if (rp->retry_after > 0) {
        snprintf(buf, sizeof buf, "%d", rp->retry_after);
        add(u, "Retry-After", buf);
    }
    if (rp->allow) add(u, "Allow", rp->allow);
    if (rp->cors_origin[0]) {
        add(u, "Access-Control-Allow-Origin", rp->cors_origin);
        if (strcmp(rp->cors_origin, "*") != 0) add(u, "Vary", "Origin");
        add(u, "Access-Control-Expose-Headers",
            "X-Request-Id, X-Total-Time, X-Queue-Time, X-Compute-Time, X-Tokenization-Time");
    }
    if (rp->cors_methods) {
        add(u, "Access-Control-Allow-Methods", rp->cors_methods);
        add(u, "Access-Control-Allow-Headers", "Content-Type, Authorization, X-Request-Id");
        add(u, "Access-Control-Max-Age", "600");
    }
    if (close) add(u, "Connection", "close");
}

typedef struct {
    char buf[1024];
    size_t len;
} raw_head;

static void raw_add(void *u, const char *k, const char *v) {
    raw_head *rh = u;
    if (rh->len < sizeof rh->buf)
        rh->len += (size_t)snprintf(rh->buf + rh->len, sizeof rh->buf - rh->len, "%s: %s\r\n", k, v);
}

/* Writes a whole reply straight to the socket, for the moments libmicrohttpd
 * cannot queue one (no head yet, or in the middle of a body); the
 * connection is closed right after.  Best effort: one non-blocking send. */
static void write_raw(int fd, const srv_response *rp) {
    raw_head rh;
    const char *reason = MHD_get_reason_phrase_for((unsigned)rp->status);
    rh.len = (size_t)snprintf(rh.buf, sizeof rh.buf, "HTTP/1.1 %d %s\r\n", rp->status,
                              reason && *reason ? reason : "Error");
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", rp->body ? rp->body_len : 0);
    raw_add(&rh, "Content-Length", cl);
    each_header(rp, true, raw_add, &rh);
    if (rh.len + 2 > sizeof rh.buf) return;
    memcpy(rh.buf + rh.len, "\r\n", 2);
    rh.len += 2;
    struct iovec iov[2] = {{rh.buf, rh.len}, {rp->body, rp->body ? rp->body_len : 0}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    if (sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* the client is gone: nothing to do */
    }
}

/* Answers t with 408 (or, idle between requests, nothing) and shuts its
 * socket down: libmicrohttpd then reads end-of-file and closes it.
 * Called with h->mu held, which keeps t->fd open. */
static void reap(srv_http *h, conn_track *t, uint64_t now) {
    int ph = atomic_load(&t->phase);
    uint64_t since = atomic_load(&t->since), limit;
    if (ph == PH_HEAD) limit = h->head_ns;
    else if (ph == PH_IDLE) limit = h->idle_ns;
    else if (ph == PH_BODY && h->body_rate)
        limit = h->body_ns + atomic_load(&t->body_bytes) * 1000000000ull / h->body_rate;
    else return;
    if (now <= since || now - since <= limit) return;
    if (!atomic_compare_exchange_strong(&t->phase, &ph, PH_KILLED)) return; /* moved on */
    if (ph != PH_IDLE) {
        srv_request rq = {.method = "-", .path = ""};
        srv_call *c = srv_call_new(h->app, &rq, NULL, NULL, NULL);
        if (c) {
            char msg[160];
            if (ph == PH_HEAD)
                snprintf(msg, sizeof msg, "request head not complete within %d s (--head-timeout)",
                         h->head_s);
            else
                snprintf(msg, sizeof msg,
                         "request body slower than %llu bytes/s after %d s "
                         "(--body-min-rate, --body-timeout)",
                         (unsigned long long)h->body_rate, h->body_s);
            srv_call_reject(c, 408, msg);
            write_raw(t->fd, srv_call_response(c));
            srv_call_free(c);
        }
    }
    shutdown(t->fd, SHUT_RDWR);
}

#define REAP_EVERY_NS (200 * 1000 * 1000ull)

static void *reaper_main(void *u) {
    srv_http *h = u;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t at = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + REAP_EVERY_NS;
        ts.tv_sec = (time_t)(at / 1000000000ull);
        ts.tv_nsec = (long)(at % 1000000000ull);
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        uint64_t now = er_now_ns();
        for (conn_track *t = h->conns; t && !h->stopping; t = t->next) reap(h, t, now);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* A peer that closed its end reads as EOF; peeking never consumes
 * pipelined bytes. */
static bool alive(void *u) {
    conn_state *cs = u;
    char ch;
    ssize_t n = recv(cs->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR));
}

/* Called once by the worker that answered.  cs may be freed by the MHD
 * thread as soon as the connection is resumed, so it is not touched after. */
static void resume(void *u) {
    conn_state *cs = u;
    struct MHD_Connection *conn = cs->conn;
    pthread_mutex_lock(&cs->mu);
    cs->ready = true;
    bool was_suspended = cs->suspended;
    cs->suspended = false;
    pthread_mutex_unlock(&cs->mu);
    if (was_suspended) MHD_resume_connection(conn);
}

/* libmicrohttpd's own messages, one log line each (they end in '\n'). */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    er_log(ER_LOG_WARN, "libmicrohttpd: %s", line);
}

static void mhd_add(void *u, const char *k, const char *v) {
    MHD_add_response_header(u, k, v);
}

static enum MHD_Result send_reply(conn_state *cs) {
    srv_response *rp = srv_call_response(cs->call);
    struct MHD_Response *r;
    if (rp->body) {
        r = MHD_create_response_from_buffer(rp->body_len, rp->body, MHD_RESPMEM_MUST_FREE);
        if (r) rp->body = NULL; /* MHD owns it now */
    } else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    each_header(rp, cs->close, mhd_add, r);
    enum MHD_Result ret = MHD_queue_response(cs->conn, (unsigned)rp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- request framing (RFC 9112 section 6.3) ---- */

typedef struct {
    int n_length, n_coding, n_host;
    const char *coding;   /* the last Transfer-Encoding value */
    const char *bad_name; /* a header name with whitespace before its colon */
} head_scan;

static enum MHD_Result scan_header(void *u, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    head_scan *s = u;
    if (!key) return MHD_YES;
    if (!s->bad_name && key[strcspn(key, " \t")]) s->bad_name = key;
    if (!strcasecmp(key, "Content-Length")) s->n_length++;
    else if (!strcasecmp(key, "Transfer-Encoding")) {
        s->n_coding++;
        s->coding = value ? value : "";
    } else if (!strcasecmp(key, "Host")) s->n_host++;
    return MHD_YES;
}

/* The head's framing, checked on the raw header lines before any body byte
 * is read: libmicrohttpd 0.9.75 lets Transfer-Encoding win over
 * Content-Length, takes the first of two Content-Lengths, keeps
 * "Transfer-Encoding " (space before the colon) as another header, and
 * reads a body of an unknown coding until the connection closes.  Each of
 * those would let two parsers disagree on where a request ends.  Returns
 * false with why set (a 400, the connection is then closed). */
static bool framing_ok(struct MHD_Connection *conn, const char *version, char *why, size_t n) {
    head_scan s = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header, &s);
    bool http10 = version && !strcmp(version, MHD_HTTP_VERSION_1_0);
    if (s.bad_name)
        snprintf(why, n, "whitespace in the header name `%.64s` (none may precede the colon)",
                 s.bad_name);
    else if (s.n_host > 1) snprintf(why, n, "more than one Host header");
    else if (s.n_host == 0 && !http10) snprintf(why, n, "HTTP/1.1 request without a Host header");
    else if (s.n_length > 1) snprintf(why, n, "more than one Content-Length header");
    else if (s.n_coding && s.n_length)
        snprintf(why, n, "both Content-Length and Transfer-Encoding");
    else if (s.n_coding && http10) snprintf(why, n, "Transfer-Encoding in an HTTP/1.0 request");
    else if (s.n_coding > 1 || (s.n_coding && strcasecmp(s.coding, "chunked") != 0))
        snprintf(why, n, "Transfer-Encoding `%.64s`: only `chunked` is supported", s.coding);
    else return true;
    return false;
}

/* ---- one request ---- */

/* The first callback of a request: its state, and whether its declared
 * Content-Length is over max_body. */
static conn_state *new_state(srv_http *h, struct MHD_Connection *conn) {
    conn_state *cs = calloc(1, sizeof *cs);
    if (!cs) return NULL;
    cs->h = h;
    cs->conn = conn;
    cs->t = track_of(conn);
    pthread_mutex_init(&cs->mu, NULL);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    cs->fd = ci ? ci->connect_fd : -1;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > h->max_body) cs->too_large = true;
    return cs;
}

static srv_request request_of(conn_state *cs, const char *url, const char *method) {
    struct MHD_Connection *conn = cs->conn;
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return (srv_request){
        .method = method,
        .path = url,
        .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
        .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
        .request_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"),
        .origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
        .cors_method = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Method"),
        .body = cs->body,
        .body_len = cs->len,
        .body_too_large = cs->too_large,
        .client_addr = peer ? peer->client_addr : NULL,
    };
}

/* The whole request is in (or it is refused before its body): runs it, and
 * replies now or suspends until the worker that answers resumes the
 * connection. */
static enum MHD_Result start_call(conn_state *cs, const char *url, const char *method) {
    if (!track_enter(cs->t, PH_BUSY, false)) return MHD_NO;
    struct MHD_Connection *conn = cs->conn;
    srv_request rq = request_of(cs, url, method);
    cs->call = srv_call_new(cs->h->app, &rq, cs->fd >= 0 ? alive : NULL, resume, cs);
    if (!cs->call) return MHD_NO;
    if (srv_call_run(cs->call)) return send_reply(cs);
    pthread_mutex_lock(&cs->mu);
    if (cs->ready) {
        pthread_mutex_unlock(&cs->mu);
        return send_reply(cs);
    }
    cs->suspended = true;
    MHD_suspend_connection(conn);
    pthread_mutex_unlock(&cs->mu);
    return MHD_YES;
}

/* A head that cannot be framed safely: 400 before any body byte, then close. */
static enum MHD_Result refuse_head(conn_state *cs, const char *url, const char *method,
                                   const char *why) {
    if (!track_enter(cs->t, PH_BUSY, false)) return MHD_NO;
    srv_request rq = request_of(cs, url, method);
    cs->call = srv_call_new(cs->h->app, &rq, NULL, resume, cs);
    if (!cs->call) return MHD_NO;
    cs->close = true;
    srv_call_reject(cs->call, 400, why);
    return send_reply(cs);
}

/* A chunked body went past max_body.  libmicrohttpd 0.9.75 can queue a
 * reply only before the body or after all of it, so the 413 (routed like
 * any: body_too_large is answered at once, app.h) is written to the socket
 * here and the connection closed instead of reading the rest. */
static enum MHD_Result refuse_mid_body(conn_state *cs, const char *url, const char *method) {
    if (!track_enter(cs->t, PH_KILLED, false)) return MHD_NO; /* the reaper answered */
    cs->too_large = true;
    srv_request rq = request_of(cs, url, method);
    cs->call = srv_call_new(cs->h->app, &rq, NULL, resume, cs);
    if (cs->call && srv_call_run(cs->call) && cs->fd >= 0)
        write_raw(cs->fd, srv_call_response(cs->call));
    return MHD_NO;
}

/* Appends one piece of the body: 1, or 0 past max_body, or -1 out of memory. */
static int take_upload(conn_state *cs, const char *data, size_t n) {
    size_t max_body = cs->h->max_body;
    if (cs->t) atomic_fetch_add(&cs->t->body_bytes, n);
    if (cs->len + n > max_body) return 0;
    if (cs->len + n + 1 > cs->cap) {
        size_t cap = cs->cap ? cs->cap : 4096;
        while (cap < cs->len + n + 1) cap *= 2;
        if (cap > max_body + 1) cap = max_body + 1;
        char *b = realloc(cs->body, cap);
        if (!b) return -1;
        cs->body = b;
        cs->cap = cap;
    }
    memcpy(cs->body + cs->len, data, n);
    cs->len += n;
    return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    conn_state *cs = *con_cls;
    if (!cs) { /* the head is in */
        cs = new_state(cls, conn);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        if (cs->t) atomic_store(&cs->t->body_bytes, 0);
        if (!track_enter(cs->t, PH_BODY, true)) return MHD_NO; /* the reaper answered */
        char why[160];
        if (!framing_ok(conn, version, why, sizeof why)) return refuse_head(cs, url, method, why);
        if (cs->too_large) { /* 413 before any body byte; never 100 Continue */
            cs->close = true;
            return start_call(cs, url, method);
        }
        return MHD_YES;
    }
    if (track_killed(cs->t)) return MHD_NO;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        int took = take_upload(cs, upload_data, n);
        return took > 0 ? MHD_YES : took == 0 ? refuse_mid_body(cs, url, method) : MHD_NO;
    }
    if (cs->call) return send_reply(cs); /* resumed: the worker has answered */
    return start_call(cs, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)toe;
    track_enter(track_of(conn), PH_IDLE, true); /* a keep-alive wait, or closing */
    conn_state *cs = *con_cls;
    if (!cs) return;
    srv_call_free(cs->call);
    free(cs->body);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
    *con_cls = NULL;
}

er_status srv_http_listen(const srv_config *cfg, int *fd, int *bound, er_err *err) {
    *fd = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1)
        return er_set(err, ER_ERR_INVALID_ARG, "--host %s: not an IPv4 address", cfg->host);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return er_set(err, ER_ERR_IO, "socket: %s", strerror(errno));
    /* SO_REUSEADDR lets a restart bind while the old process's connections
     * sit in TIME_WAIT; on Linux it never lets two listeners share a port.
     * SO_REUSEPORT, which would (silently splitting the traffic between two
     * servers), is not set. */
    int on = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 511) != 0) {
        int e = errno;
        close(s);
        return er_set(err, ER_ERR_IO, "cannot listen on %s:%d: %s%s", cfg->host, cfg->port,
                      strerror(e),
                      e == EADDRINUSE ? " (another erserve or another program has this port)" : "");
    }
    socklen_t len = sizeof sa;
    if (bound) *bound = getsockname(s, (struct sockaddr *)&sa, &len) == 0 ? ntohs(sa.sin_port)
                                                                          : cfg->port;
    *fd = s;
    return ER_OK;
}

static uint64_t s_to_ns(int s) { return (uint64_t)s * 1000000000ull; }

er_status srv_http_start(srv_app *app, const srv_config *cfg, int listen_fd, srv_http **out,
                         er_err *err) {
    *out = NULL;
    srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        close(listen_fd);
        return er_set(err, ER_ERR_NOMEM, "http");
    }
    h->app = app;
    h->max_body = cfg->max_body;
    h->listen = MHD_INVALID_SOCKET;
    h->head_s = cfg->head_timeout_s;
    h->body_s = cfg->body_timeout_s;
    h->head_ns = s_to_ns(cfg->head_timeout_s);
    h->idle_ns = s_to_ns(cfg->conn_timeout_s);
    h->body_ns = s_to_ns(cfg->body_timeout_s);
    h->body_rate = cfg->body_min_rate;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    h->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->conn_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_URI_LOG_CALLBACK,
        on_request_line, h, MHD_OPTION_END);
    if (!h->d) { /* libmicrohttpd closes listen_fd on some of its failure paths: left alone */
        srv_http_stop(h);
        return er_set(err, ER_ERR_IO, "libmicrohttpd did not start on %s:%d (see its message)",
                      cfg->host, cfg->port);
    }
    if (pthread_create(&h->reaper, NULL, reaper_main, h) == 0) h->reaper_started = true;
    else er_log(ER_LOG_WARN, "no reaper thread: head and body deadlines are off");
    *out = h;
    return ER_OK;
}

void srv_http_quiesce(srv_http *h) {
    if (!h) return;
    if (h->listen == MHD_INVALID_SOCKET) h->listen = MHD_quiesce_daemon(h->d);
}

void srv_http_stop(srv_http *h) {
    if (!h) return;
    /* Bounded wait (10 s) for the answered requests to be written out. */
    for (int i = 0; h->d && i < 1000 && srv_app_in_flight(h->app) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->reaper_started) pthread_join(h->reaper, NULL);
    if (h->d) MHD_stop_daemon(h->d); /* closes every connection (and its track) */
    if (h->listen != MHD_INVALID_SOCKET) close(h->listen);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
