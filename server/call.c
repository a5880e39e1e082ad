/* Call lifetime, the error reply and the reply helpers (see call.h). */
#include "call.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "er_log.h"
#include "er_util.h"

/* A client's X-Request-Id if it is short printable ASCII, else a fresh one. */
static void sanitize_id(const char *in, char *out, size_t n) {
    static _Atomic unsigned long long counter;
    size_t k = 0;
    for (; in && in[k] && k + 1 < n && k < 64; k++) {
        unsigned char ch = (unsigned char)in[k];
        if (ch < 0x21 || ch > 0x7e) break;
        out[k] = (char)ch;
    }
    if (in && in[k] == '\0' && k > 0) {
        out[k] = '\0';
        return;
    }
    snprintf(out, n, "%08x%08llx", (unsigned)(er_now_ns() & 0xffffffffu),
             (unsigned long long)atomic_fetch_add(&counter, 1));
}

srv_call *srv_call_create(const srv_app_view *app, const srv_request *req,
                          bool (*alive)(void *user), void (*resume)(void *user), void *user) {
    srv_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->app = app;
    c->route_index = -1;
    c->alive = alive;
    c->resume = resume;
    c->user = user;
    c->t0 = er_now_ns();
    c->rq = req;
    sanitize_id(req->request_id, c->resp.request_id, sizeof c->resp.request_id);
    atomic_fetch_add(app->in_flight, 1);
    return c;
}

srv_response *srv_call_response(srv_call *c) {
    c->resp.total_ms = (double)(er_now_ns() - c->t0) * 1e-6;
    return &c->resp;
}

void srv_call_release(srv_call *c) {
    if (c->release) c->release(c);
    c->release = NULL;
    c->state = NULL;
}

void srv_call_free(srv_call *c) {
    if (!c) return;
    srv_call_release(c);
    free(c->resp.body);
    atomic_fetch_sub(c->app->in_flight, 1);
    free(c);
}

void srv_call_finished(srv_call *c) {
    const srv_app_view *a = c->app;
    uint64_t total = er_now_ns() - c->t0;
    srv_metrics_request(srv_app_metrics(a), c->route_index, c->resp.status);
    srv_metrics_stage(srv_app_metrics(a), M_STAGE_TOTAL, total);
    if (!srv_app_config(a)->quiet)
        er_log(ER_LOG_INFO, "%s %s %d %.2fms id=%s", c->route ? c->route->label : "other",
               c->method, c->resp.status, (double)total * 1e-6, c->resp.request_id);
}

void srv_error_f(srv_call *c, int status, pr_fault f, const char *param, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(c->resp.body);
    pr_api api = c->route ? c->route->api : PR_API_ERSERVE;
    status = pr_error_status(api, status, f);
    c->resp.status = status;
    c->resp.content_type = "application/json";
    c->resp.body = pr_error_body(api, status, f, msg, param, &c->resp.body_len);
    if (status == 429 || status == 503) c->resp.retry_after = status == 429 ? 1 : 5;
    if (!c->resp.body) c->resp.body_len = 0;
}

void srv_call_reject(srv_call *c, int status, const char *msg) {
    snprintf(c->method, sizeof c->method, "%s", c->rq && c->rq->method ? c->rq->method : "-");
    srv_error(c, status, "%s", msg);
    srv_call_finished(c);
}

void srv_error_er(srv_call *c, er_status st, const er_err *err) {
    srv_error(c, pr_status_of(st), "%s", err->msg);
}

void srv_reply_json(srv_call *c, int status, json_t *j) {
    if (!j) {
        srv_error(c, 500, "out of memory building the reply");
        return;
    }
    free(c->resp.body);
    c->resp.body = pr_dump(j, &c->resp.body_len);
    if (!c->resp.body) {
        srv_error(c, 500, "out of memory building the reply");
        return;
    }
    c->resp.status = status;
    c->resp.content_type = "application/json";
}
