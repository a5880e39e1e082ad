#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "er_log.h"

struct srv_http {
    struct MHD_Daemon *d;
    srv_app *app;
    size_t max_body;
    MHD_socket listen; /* returned by quiesce; closed after stop */
};

/* Per-request state, freed in the completed callback. */
typedef struct {
    srv_http *h;
    struct MHD_Connection *conn;
    int fd;
    char *body;
    size_t len, cap;
    bool too_large;
    srv_call *call;
    pthread_mutex_t mu;
    bool ready, suspended;
} conn_state;

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

static void add_header(struct MHD_Response *r, const char *k, const char *v) {
    MHD_add_response_header(r, k, v);
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
    char buf[64];
    add_header(r, "Content-Type", rp->content_type ? rp->content_type : "application/json");
    add_header(r, "X-Request-Id", rp->request_id);
    snprintf(buf, sizeof buf, "%.3f", rp->total_ms);
    add_header(r, "X-Total-Time", buf);
    snprintf(buf, sizeof buf, "%.3f", rp->queue_ms);
    add_header(r, "X-Queue-Time", buf);
    snprintf(buf, sizeof buf, "%.3f", rp->compute_ms);
    add_header(r, "X-Compute-Time", buf);
    snprintf(buf, sizeof buf, "%.3f", rp->tokenize_ms);
    add_header(r, "X-Tokenization-Time", buf);
    if (rp->retry_after > 0) {
        snprintf(buf, sizeof buf, "%d", rp->retry_after);
        add_header(r, "Retry-After", buf);
    }
    if (rp->allow) add_header(r, "Allow", rp->allow);
    enum MHD_Result ret = MHD_queue_response(cs->conn, (unsigned)rp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The first callback of a request: its state, and a body too large by its
 * Content-Length is refused before any byte is read. */
static conn_state *new_state(srv_http *h, struct MHD_Connection *conn) {
    conn_state *cs = calloc(1, sizeof *cs);
    if (!cs) return NULL;
    cs->h = h;
    cs->conn = conn;
    pthread_mutex_init(&cs->mu, NULL);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    cs->fd = ci ? ci->connect_fd : -1;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > h->max_body) cs->too_large = true;
    return cs;
}

/* Appends one piece of the body (or discards it past max_body). */
static enum MHD_Result take_upload(conn_state *cs, const char *data, size_t n) {
    size_t max_body = cs->h->max_body;
    if (cs->too_large || cs->len + n > max_body) {
        cs->too_large = true;
        return MHD_YES;
    }
    if (cs->len + n + 1 > cs->cap) {
        size_t cap = cs->cap ? cs->cap : 4096;
        while (cap < cs->len + n + 1) cap *= 2;
        if (cap > max_body + 1) cap = max_body + 1;
        char *b = realloc(cs->body, cap);
        if (!b) return MHD_NO;
        cs->body = b;
        cs->cap = cap;
    }
    memcpy(cs->body + cs->len, data, n);
    cs->len += n;
    return MHD_YES;
}

/* The whole request is in: runs it, and replies now or suspends until the
 * worker that answers resumes the connection. */
static enum MHD_Result start_call(conn_state *cs, const char *url, const char *method) {
    struct MHD_Connection *conn = cs->conn;
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    srv_request rq = {
        .method = method,
        .path = url,
        .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
        .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
        .request_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"),
        .body = cs->body,
        .body_len = cs->len,
        .body_too_large = cs->too_large,
        .client_addr = peer ? peer->client_addr : NULL,
    };
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    conn_state *cs = *con_cls;
    if (!cs) {
        *con_cls = new_state(cls, conn);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0; /* consumed (or discarded past the cap) */
        return take_upload(cs, upload_data, n);
    }
    if (cs->call) return send_reply(cs); /* resumed: the worker has answered */
    return start_call(cs, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    conn_state *cs = *con_cls;
    if (!cs) return;
    srv_call_free(cs->call);
    free(cs->body);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
    *con_cls = NULL;
}

er_status srv_http_start(srv_app *app, const srv_config *cfg, srv_http **out, int *bound,
                         er_err *err) {
    *out = NULL;
    srv_http *h = calloc(1, sizeof *h);
    if (!h) return er_set(err, ER_ERR_NOMEM, "http");
    h->app = app;
    h->max_body = cfg->max_body;
    h->listen = MHD_INVALID_SOCKET;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1) {
        free(h);
        return er_set(err, ER_ERR_INVALID_ARG, "--host %s: not an IPv4 address", cfg->host);
    }
    h->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        (uint16_t)cfg->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->conn_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return er_set(err, ER_ERR_IO, "cannot listen on %s:%d (in use?)", cfg->host, cfg->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (bound) *bound = di ? di->port : cfg->port;
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
    for (int i = 0; i < 1000 && srv_app_in_flight(h->app) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(h->d);
    if (h->listen != MHD_INVALID_SOCKET) close(h->listen);
    free(h);
}
