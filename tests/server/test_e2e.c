/* End-to-end: the real build/bin/erserve on a free 127.0.0.1 port, driven
 * with curl (and wrk, and the openai npm client when present).  Every test
 * starts its own server (port 0: the kernel picks a free port, read back
 * from the startup log), so tests are independent. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check_main.h"
#include "raw_http.h"
#include "server_test_util.h"

static const char *build_dir(void) {
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

typedef struct {
    pid_t pid;
    int port;
    char dir[128]; /* scratch: log, store, response files */
    char log[192];
} server;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Forks erserve with the four test tasks plus the extra args (NULL-ended),
 * its output in s->log; s->port is not known yet. */
static void spawn(server *s, const char *store, va_list ap) {
    char bin[256], cls[300], ner[300], emb[300], qa[300];
    snprintf(bin, sizeof bin, "%s/bin/erserve", build_dir());
    snprintf(cls, sizeof cls, "cls=%s/seqcls", g_models);
    snprintf(ner, sizeof ner, "ner=%s/tokcls", g_models);
    snprintf(emb, sizeof emb, "emb=%s/embedding", g_models);
    snprintf(qa, sizeof qa, "qa=%s/qa", g_models);
    const char *argv[40] = {bin, "--port", "0", "--host", "127.0.0.1", "--task", cls, "--task",
                            ner, "--task", emb, "--task", qa, "--tokenizer", TOKENIZER_JSON,
                            "--max-body", "65536"};
    int n = 17;
    if (store) {
        argv[n++] = "--store";
        argv[n++] = store;
    }
    for (const char *a; n < 38 && (a = va_arg(ap, const char *));) argv[n++] = a;
    argv[n] = NULL;
    if (!s->dir[0]) {
        snprintf(s->dir, sizeof s->dir, "/tmp/erserve-e2e-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(s->dir));
    }
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    unlink(s->log); /* never read an earlier run's port */
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        dup2(fd, 1);
        char *args[40] = {0}; /* execv's argv is not const: writable copies */
        for (int i = 0; i < n; i++) args[i] = strdup(argv[i]);
        execv(bin, args);
        _exit(127);
    }
}

static void spawn_args(server *s, ...) {
    va_list ap;
    va_start(ap, s);
    spawn(s, NULL, ap);
    va_end(ap);
}

/* Starts erserve with the four test tasks plus extra args (NULL-ended). */
static void start(server *s, const char *store, ...) {
    va_list ap;
    va_start(ap, store);
    spawn(s, store, ap);
    va_end(ap);
    /* Wait (bounded: 15 s) for "listening on http://127.0.0.1:PORT". */
    s->port = 0;
    for (int i = 0; i < 1500 && !s->port; i++) {
        FILE *f = fopen(s->log, "r");
        char line[4096];
        while (f && fgets(line, sizeof line, f)) {
            char *p = strstr(line, "listening on http://127.0.0.1:");
            if (p) s->port = atoi(p + strlen("listening on http://127.0.0.1:"));
        }
        if (f) fclose(f);
        int st;
        if (!s->port && waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            ck_abort_msg("erserve exited at start; see %s", s->log);
        }
        if (!s->port) sleep_ms(10);
    }
    ck_assert_msg(s->port > 0, "erserve did not start; see %s", s->log);
}

/* SIGTERM and wait (bounded); returns the exit status or -1. */
static int stop(server *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 2000; i++) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return -1;
}

static void cleanup(server *s) {
    if (s->pid > 0) stop(s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s->dir);
    (void)system(cmd);
}

/* Runs curl; returns the HTTP status (0 when no response).  The body goes to
 * s->dir/body, headers to s->dir/headers. */
static int curl(server *s, const char *method, const char *path, const char *ctype,
                const char *body, const char *extra) {
    char bodyf[200], cmd[8192];
    snprintf(bodyf, sizeof bodyf, "%s/req", s->dir);
    if (body) {
        FILE *f = fopen(bodyf, "w");
        fputs(body, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd,
             "curl -s -m 20 -X %s -o %s/body -D %s/headers -w '%%{http_code}' %s%s%s %s%s "
             "'http://127.0.0.1:%d%s'",
             method, s->dir, s->dir, ctype ? "-H 'Content-Type: " : "", ctype ? ctype : "",
             ctype ? "'" : "", body ? "--data-binary @" : "", body ? bodyf : "", s->port, path);
    if (extra) {
        size_t l = strlen(cmd);
        snprintf(cmd + l, sizeof cmd - l, " %s", extra);
    }
    FILE *p = popen(cmd, "r");
    char out[16] = "";
    if (p) {
        if (!fgets(out, sizeof out, p)) out[0] = '\0';
        pclose(p);
    }
    return atoi(out);
}

static char *slurp(server *s, const char *name) {
    static char buf[1 << 16];
    char path[200];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}

#define JSON "application/json"

START_TEST(routes_and_errors) {
    server s = {0};
    start(&s, NULL, "--admin-key", "adm", NULL);
    ck_assert_int_eq(curl(&s, "GET", "/health", NULL, NULL, NULL), 200);
    ck_assert_int_eq(curl(&s, "GET", "/ready", NULL, NULL, NULL), 200);
    ck_assert_int_eq(curl(&s, "GET", "/info", NULL, NULL, NULL), 200);
    ck_assert_ptr_nonnull(strstr(slurp(&s, "body"), "\"openblas\""));
    ck_assert_int_eq(curl(&s, "GET", "/v1/tasks", NULL, NULL, NULL), 200);
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/cls/predict", JSON, "{\"inputs\":\"hi there\"}",
                          "-H 'X-Request-Id: abc-123'"), 200);
    const char *h = slurp(&s, "headers");
    ck_assert_ptr_nonnull(strstr(h, "X-Request-Id: abc-123"));
    ck_assert_ptr_nonnull(strstr(h, "X-Total-Time: "));
    ck_assert_ptr_nonnull(strstr(h, "X-Queue-Time: "));
    ck_assert_ptr_nonnull(strstr(h, "X-Compute-Time: "));
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/ner/predict", JSON,
                          "{\"inputs\":\"Ann in Oslo\",\"aggregation_strategy\":\"first\"}", NULL), 200);
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/qa/predict", JSON,
                          "{\"inputs\":{\"question\":\"q\",\"context\":\"Ann in Oslo\"}}", NULL), 200);
    ck_assert_int_eq(curl(&s, "POST", "/v1/embeddings", JSON, "{\"input\":\"a\",\"model\":\"emb\"}", NULL), 200);
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, "{\"inputs\":\"a\"}", NULL), 200);
    ck_assert_int_eq(curl(&s, "POST", "/predict", JSON, "{\"inputs\":\"a\"}", NULL), 200);
    ck_assert_int_eq(curl(&s, "POST", "/rerank", JSON, "{\"query\":\"a\",\"texts\":[\"b\"]}", NULL), 200);
    ck_assert_int_eq(curl(&s, "POST", "/tokenize", JSON, "{\"inputs\":\"a\"}", NULL), 200);
    /* errors, each with the documented body; the server stays up */
    ck_assert_int_eq(curl(&s, "GET", "/nope", NULL, NULL, NULL), 404);
    ck_assert_ptr_nonnull(strstr(slurp(&s, "body"), "{\"error\":{\"type\":\"not_found_error\""));
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/zzz/predict", JSON, "{\"inputs\":\"a\"}", NULL), 404);
    ck_assert_int_eq(curl(&s, "DELETE", "/embed", NULL, NULL, NULL), 405);
    ck_assert_ptr_nonnull(strstr(slurp(&s, "headers"), "Allow: POST"));
    ck_assert_int_eq(curl(&s, "POST", "/embed", "text/plain", "{\"inputs\":\"a\"}", NULL), 415);
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, "{\"inputs\":", NULL), 400);
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, "{\"inputs\":\"a\",\"inputs\":\"b\"}", NULL), 400);
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, "{\"inputs\":\"\xc3\x28\"}", NULL), 400);
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, "{\"inputs\":[]}", NULL), 400); /* TEI: Empty */
    ck_assert_ptr_nonnull(strstr(slurp(&s, "body"), "\"error_type\":\"Empty\""));
    char *big = malloc(70000);
    memset(big, 'a', 69999);
    big[69999] = '\0';
    memcpy(big, "{\"inputs\":\"", 11);
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, big, NULL), 413);
    /* chunked upload (no Content-Length): capped while reading */
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, big, "-H 'Transfer-Encoding: chunked'"), 413);
    free(big);
    ck_assert_int_eq(curl(&s, "GET", "/v1/cache", NULL, NULL, NULL), 401);
    ck_assert_int_eq(curl(&s, "GET", "/v1/cache", NULL, NULL, "-H 'Authorization: Bearer adm'"), 200);
    ck_assert_int_eq(curl(&s, "GET", "/metrics", NULL, NULL, NULL), 200);
    const char *m = slurp(&s, "body");
    ck_assert_ptr_nonnull(strstr(m, "erserve_requests_total{route=\"predict\",status=\"200\"}"));
    ck_assert_ptr_nonnull(strstr(m, "erserve_requests_total{route=\"embed\",status=\"413\"} 2"));
    ck_assert_int_eq(curl(&s, "GET", "/health", NULL, NULL, NULL), 200);
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

/* Runs a shell script, returns its stdout (first line) as an int. */
static int sh_int(const char *cmd) {
    FILE *p = popen(cmd, "r");
    char out[64] = "";
    if (p) {
        if (!fgets(out, sizeof out, p)) out[0] = '\0';
        pclose(p);
    }
    return atoi(out);
}

START_TEST(concurrent_clients) {
    server s = {0};
    start(&s, NULL, NULL);
    char cmd[2048];
    /* 8 clients x 12 requests, mixed routes; count the non-200 answers. */
    snprintf(cmd, sizeof cmd,
             "cd %s && for c in 1 2 3 4 5 6 7 8; do (for j in 1 2 3 4 5 6 7 8 9 10 11 12; do "
             "curl -s -m 20 -o /dev/null -w '%%{http_code}\\n' -H 'Content-Type: application/json' "
             "-d \"{\\\"inputs\\\":[\\\"client $c request $j\\\",\\\"shared text\\\"]}\" "
             "http://127.0.0.1:%d/v1/tasks/$([ $((j %% 2)) = 0 ] && echo cls || echo ner)/predict; "
             "done > out.$c) & done; wait; cat out.* | grep -vc '^200$'",
             s.dir, s.port);
    ck_assert_int_eq(sh_int(cmd), 0);
    snprintf(cmd, sizeof cmd, "cat %s/out.* | grep -c '^200$'", s.dir);
    ck_assert_int_eq(sh_int(cmd), 96);
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

START_TEST(sigterm_drains) {
    server s = {0};
    start(&s, NULL, "--workers", "1", NULL);
    char body[8192] = "{\"inputs\":[";
    for (int i = 0; i < 16; i++) {
        strcat(body, i ? ",\"" : "\"");
        for (int k = 0; k < 60; k++) strcat(body, "drain ");
        strcat(body, "\"");
    }
    strcat(body, "]}");
    char path[200], cmd[2048];
    snprintf(path, sizeof path, "%s/big.json", s.dir);
    FILE *f = fopen(path, "w");
    fputs(body, f);
    fclose(f);
    /* Six slow requests in flight, then SIGTERM: each gets its 200. */
    snprintf(cmd, sizeof cmd,
             "cd %s && for c in 1 2 3 4 5 6; do (curl -s -m 30 -o /dev/null -w '%%{http_code}\\n' "
             "-H 'Content-Type: application/json' --data-binary @big.json "
             "http://127.0.0.1:%d/v1/tasks/cls/predict > drain.$c) & done; sleep 0.3; "
             "kill -TERM %d; wait; cat drain.* | grep -c '^200$'",
             s.dir, s.port, (int)s.pid);
    ck_assert_int_eq(sh_int(cmd), 6);
    ck_assert_int_eq(stop(&s), 0); /* already exited: status collected here */
    ck_assert_ptr_nonnull(strstr(slurp(&s, "server.log"), "erserve: stopped"));
    cleanup(&s);
}
END_TEST

/* s->dir/big.json: 64 inputs of 60 words, a request that keeps a worker busy. */
static void write_big_json(server *s) {
    char path[200];
    snprintf(path, sizeof path, "%s/big.json", s->dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"inputs\":[", f);
    for (int i = 0; i < 64; i++) {
        fputs(i ? ",\"" : "\"", f);
        for (int k = 0; k < 60; k++) fprintf(f, "w%d ", (i * 61 + k) % 997);
        fputs("\"", f);
    }
    fputs("]}", f);
    fclose(f);
}

/* Clients that give up while queued cost no compute: their jobs are
 * dropped (counted in erserve_dropped_total{reason="client_gone"}). */
START_TEST(disconnect_skips_compute) {
    server s = {0};
    start(&s, NULL, "--workers", "1", "--max-inputs", "64", NULL);
    char cmd[4096];
    write_big_json(&s);
    snprintf(cmd, sizeof cmd,
             "cd %s && for c in 1 2 3 4 5 6 7 8 9 10; do (curl -s -m 60 -o /dev/null -H 'Content-Type: "
             "application/json' --data-binary @big.json http://127.0.0.1:%d/v1/tasks/cls/predict) & "
             "done; sleep 0.05; for c in 1 2 3 4; do (curl -s -m 0.2 -o /dev/null -H 'Content-Type: "
             "application/json' --data-binary @big.json http://127.0.0.1:%d/v1/tasks/ner/predict) & "
             "done; wait",
             s.dir, s.port, s.port);
    (void)system(cmd);
    ck_assert_int_eq(curl(&s, "GET", "/metrics", NULL, NULL, NULL), 200);
    const char *m = slurp(&s, "body");
    const char *p = strstr(m, "erserve_dropped_total{reason=\"client_gone\"} ");
    ck_assert_ptr_nonnull(p);
    int gone = atoi(p + strlen("erserve_dropped_total{reason=\"client_gone\"} "));
    fprintf(stderr, "test_e2e: %d abandoned request(s) dropped before compute\n", gone);
    ck_assert_int_gt(gone, 0);
    ck_assert_int_eq(curl(&s, "GET", "/health", NULL, NULL, NULL), 200);
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

START_TEST(restart_keeps_store) {
    server s = {0};
    start(&s, NULL, NULL);
    char store[200];
    snprintf(store, sizeof store, "%s/store", s.dir);
    stop(&s);
    start(&s, store, NULL);
    const char *req = "{\"inputs\":[\"recycled across restarts\",\"second one\"]}";
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/cls/predict", JSON, req, NULL), 200);
    ck_assert_ptr_null(strstr(slurp(&s, "body"), "\"hit\""));
    char first[4096];
    snprintf(first, sizeof first, "%s", slurp(&s, "body"));
    ck_assert_int_eq(stop(&s), 0); /* flushes pending writes */
    start(&s, store, NULL);
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/cls/predict", JSON, req, NULL), 200);
    const char *b = slurp(&s, "body");
    ck_assert_ptr_null(strstr(b, "\"miss\""));
    ck_assert_ptr_nonnull(strstr(b, "\"hit\""));
    /* another task on the same lower stack also hits */
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/ner/predict", JSON, req, NULL), 200);
    ck_assert_ptr_null(strstr(slurp(&s, "body"), "\"miss\""));
    /* no --admin-key: open to this loopback client, so http.c passed the
     * peer's address on (an unknown one would be 403) */
    ck_assert_int_eq(curl(&s, "DELETE", "/v1/cache", NULL, NULL, NULL), 200);
    ck_assert_ptr_nonnull(strstr(slurp(&s, "body"), "\"entries\":0"));
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

START_TEST(wrk_no_errors) {
    if (system("command -v wrk >/dev/null 2>&1") != 0) {
        ER_SKIP("wrk is not installed (make deps installs it)");
    }
    server s = {0};
    start(&s, NULL, "--quiet", NULL);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "wrk -t2 -c16 -d10s --timeout 10s -s deploy/loadtest/hit_heavy.lua "
             "http://127.0.0.1:%d > %s/wrk.txt 2>&1",
             s.port, s.dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *out = slurp(&s, "wrk.txt");
    fprintf(stderr, "test_e2e: wrk 16 connections, 10 s:\n%s", out);
    ck_assert_msg(!strstr(out, "Non-2xx"), "non-2xx responses: %s", out);
    ck_assert_msg(!strstr(out, "Socket errors"), "socket errors: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "Requests/sec"));
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

/* npm packages for the client tests, installed into build/node (never the
 * repository).  Returns NULL when ready, else why the test is skipped. */
static const char *npm_ready(const char *module_dir, const char *spec) {
    if (system("command -v node >/dev/null 2>&1") != 0) return "Node.js is not installed";
    struct stat st;
    char path[256], cmd[512];
    snprintf(path, sizeof path, "build/node/node_modules/%s", module_dir);
    if (stat(path, &st) == 0) return NULL;
    snprintf(cmd, sizeof cmd, "npm install --silent --prefix build/node %s >/dev/null 2>&1", spec);
    return system(cmd) == 0 ? NULL : "`npm install --prefix build/node` failed (offline?)";
}

/* Runs tests/server/SCRIPT with node from build/node (node resolves packages
 * from the script's directory upwards) against s; asserts it passed. */
static void run_node(server *s, const char *script, const char *args) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp tests/server/%s build/node/ && node build/node/%s %s > %s/node.txt 2>&1",
             script, script, args, s->dir);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "%s failed: %s", script, slurp(s, "node.txt"));
}

START_TEST(openai_npm_client) {
    const char *why = npm_ready("openai", "openai@6.49.0");
    if (why) ER_SKIP("%s", why);
    server s = {0};
    start(&s, NULL, "--served-model-name", "emb=text-embedding-3-small", "--max-tokens", "16", NULL);
    char args[128];
    snprintf(args, sizeof args, "http://127.0.0.1:%d/v1 emb text-embedding-3-small", s.port);
    run_node(&s, "openai_client.mjs", args);
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

START_TEST(huggingface_js_client) {
    const char *why = npm_ready("@huggingface/inference", "@huggingface/inference@4.13.30");
    if (why) ER_SKIP("%s", why);
    server s = {0};
    start(&s, NULL, NULL);
    char args[64];
    snprintf(args, sizeof args, "http://127.0.0.1:%d", s.port);
    run_node(&s, "hf_client.mjs", args);
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

/* A browser's CORS preflight (OPTIONS with Origin and
 * Access-Control-Request-Method), with --cors-allow-origin and without. */
START_TEST(cors_preflight) {
    server s = {0};
    start(&s, NULL, "--cors-allow-origin", "https://app.example", "--api-key", "k", NULL);
    const char *pre = "-H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' "
                      "-H 'Access-Control-Request-Headers: content-type, authorization'";
    ck_assert_int_eq(curl(&s, "OPTIONS", "/embed", NULL, NULL, pre), 204); /* no key: preflights carry none */
    const char *h = slurp(&s, "headers");
    ck_assert_msg(strstr(h, "Access-Control-Allow-Origin: https://app.example\r\n"), "%s", h);
    ck_assert_msg(strstr(h, "Access-Control-Allow-Methods: POST\r\n"), "%s", h);
    ck_assert_msg(strcasestr(h, "Access-Control-Allow-Headers: Content-Type, Authorization"), "%s", h);
    ck_assert_msg(strstr(h, "Vary: Origin\r\n"), "%s", h);
    /* the request itself then carries the origin */
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, "{\"inputs\":\"a\"}",
                          "-H 'Origin: https://app.example' -H 'Authorization: Bearer k'"), 200);
    ck_assert_ptr_nonnull(strstr(slurp(&s, "headers"), "Access-Control-Allow-Origin: https://app.example"));
    /* another origin: answered, without the header a browser needs */
    ck_assert_int_eq(curl(&s, "OPTIONS", "/embed", NULL, NULL,
                          "-H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST'"), 204);
    ck_assert_ptr_null(strstr(slurp(&s, "headers"), "Access-Control-Allow-Origin"));
    cleanup(&s);
    server off = {0};
    start(&off, NULL, NULL);
    ck_assert_int_eq(curl(&off, "OPTIONS", "/embed", NULL, NULL, pre), 405); /* CORS off (the default) */
    h = slurp(&off, "headers");
    ck_assert_ptr_null(strstr(h, "Access-Control-Allow-Origin"));
    ck_assert_ptr_nonnull(strstr(h, "Allow: POST"));
    cleanup(&off);
}
END_TEST

/* ---- hardening: what a hostile network sends ---- */

/* Sends raw bytes; asserts one JSON error of `status`, and that the server
 * closed the connection after it (nothing after the body, no second reply). */
static void expect_refused(server *s, const char *name, const char *req, int status) {
    char resp[8192];
    bool closed;
    rh_exchange(s->port, req, strlen(req), 5000, resp, sizeof resp, &closed);
    ck_assert_msg(rh_status(resp) == status, "%s: want %d, got: %s", name, status, resp);
    ck_assert_msg(strstr(resp, "\r\n\r\n{\"error\":{\"type\":\"") || /* erserve's, or a TEI route's */
                      (strstr(resp, "\r\n\r\n{\"error\":\"") && strstr(resp, "\"error_type\":")),
                  "%s: not a JSON error: %s", name, resp);
    ck_assert_msg(strstr(resp, "Connection: close"), "%s: no Connection: close: %s", name, resp);
    ck_assert_msg(rh_replies(resp) == 1, "%s: a second reply: %s", name, resp);
    ck_assert_msg(closed, "%s: the connection stayed open", name);
}

/* The cache's entry count from GET /v1/cache (-1 when absent). */
static int cache_entries(server *s) {
    if (curl(s, "GET", "/v1/cache", NULL, NULL, NULL) != 200) return -1;
    const char *p = strstr(slurp(s, "body"), "\"entries\":");
    return p ? atoi(p + strlen("\"entries\":")) : -1;
}

#define SMUGGLED "DELETE /v1/cache HTTP/1.1\r\nHost: x\r\n\r\n"
#define POST_HEAD "POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

/* RFC 9112 section 6.3: a head whose body length two parsers could read
 * differently gets 400 and the connection closed, so the request smuggled
 * after it never runs (the cache it would purge stays). */
START_TEST(framing_refused) {
    server s = {0};
    char store[200];
    start(&s, NULL, NULL);
    snprintf(store, sizeof store, "%s/store", s.dir);
    stop(&s);
    start(&s, store, NULL);
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/cls/predict", JSON,
                          "{\"inputs\":[\"kept in the store\",\"and this\"]}", NULL), 200);
    int entries = -1;
    /* the store writes behind, maybe one input at a time: wait for both (5 s at most) */
    for (int i = 0; i < 500 && entries < 2; i++) {
        entries = cache_entries(&s);
        if (entries < 2) sleep_ms(10);
    }
    ck_assert_int_gt(entries, 0);
    expect_refused(&s, "CL + TE",
                   POST_HEAD "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
                   400);
    expect_refused(&s, "two Content-Lengths",
                   POST_HEAD "Content-Length: 0\r\nContent-Length: 44\r\n\r\n" SMUGGLED, 400);
    expect_refused(&s, "space before the colon",
                   POST_HEAD "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" SMUGGLED, 400);
    expect_refused(&s, "HTTP/1.1 without Host", "GET /health HTTP/1.1\r\n\r\n" SMUGGLED, 400);
    expect_refused(&s, "two Hosts", "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" SMUGGLED,
                   400);
    expect_refused(&s, "xchunked", POST_HEAD "Transfer-Encoding: xchunked\r\n\r\n" SMUGGLED, 400);
    expect_refused(&s, "chunked, identity",
                   POST_HEAD "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" SMUGGLED, 400);
    expect_refused(&s, "TE in HTTP/1.0",
                   "POST /tokenize HTTP/1.0\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
                   400);
    /* what is not ambiguous still works, pipelined on one connection */
    char resp[8192];
    bool closed;
    const char *two = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /ready HTTP/1.0\r\n\r\n";
    rh_exchange(s.port, two, strlen(two), 5000, resp, sizeof resp, &closed);
    ck_assert_msg(rh_count(resp, "HTTP/1.1 200 ") == 2 && rh_replies(resp) == 2 && closed,
                  "pipelined: %s", resp);
    /* What libmicrohttpd answers itself (HTML; SERVER.md lists them): the
     * status and the close, so a library upgrade that changes them shows. */
    static char longline[40000];
    memset(longline, 'a', sizeof longline - 1);
    char *big = malloc(sizeof longline + 100);
    const struct {
        const char *name, *head, *tail;
        int status;
    } lib[] = {
        {"Content-Length 12a", POST_HEAD "Content-Length: 12a\r\n\r\n", "", 400},
        {"Content-Length over 2^64", POST_HEAD "Content-Length: 99999999999999999999999\r\n\r\n", "", 413},
        {"chunk size over 2^64", POST_HEAD "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n", "", 413},
        {"malformed chunk", POST_HEAD "Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", "", 400},
        {"HTTP/2.0", "GET /health HTTP/2.0\r\nHost: x\r\n\r\n", "", 505},
        {"URI too long", "GET /", " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
        {"header too large", "GET /health HTTP/1.1\r\nHost: x\r\nX-A: ", "\r\n\r\n", 431},
    };
    for (size_t i = 0; i < sizeof lib / sizeof lib[0]; i++) {
        bool filled = lib[i].status == 414 || lib[i].status == 431;
        snprintf(big, sizeof longline + 100, "%s%s%s", lib[i].head, filled ? longline : "",
                 lib[i].tail);
        rh_exchange(s.port, big, strlen(big), 5000, resp, sizeof resp, &closed);
        ck_assert_msg(rh_status(resp) == lib[i].status && closed, "%s: %s", lib[i].name, resp);
    }
    free(big);
    ck_assert_int_eq(curl(&s, "GET", "/health", NULL, NULL, NULL), 200);
    ck_assert_int_eq(cache_entries(&s), entries); /* no DELETE ran */
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

/* A body declared over --max-body is refused with 413 before any of it is
 * read: no 100 Continue, the connection closed; a 300 MB upload is cut
 * short; a chunked body is cut at the limit. */
START_TEST(early_413) {
    server s = {0};
    start(&s, NULL, NULL);
    expect_refused(&s, "2 GiB declared, none sent", POST_HEAD "Content-Length: 2147483648\r\n\r\n",
                   413);
    char resp[8192];
    bool closed;
    const char *expect =
        POST_HEAD "Content-Length: 2147483648\r\nExpect: 100-continue\r\n\r\n";
    rh_exchange(s.port, expect, strlen(expect), 5000, resp, sizeof resp, &closed);
    ck_assert_msg(rh_status(resp) == 413 && !strstr(resp, "100 Continue") && closed,
                  "Expect: 100-continue: %s", resp);
    expect_refused(&s, "GET with a large body", "GET /health HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 1000000\r\n\r\n", 413);
    /* 300 MB sent as fast as the server takes it: the 413 comes first */
    int fd = rh_connect(s.port, NULL);
    ck_assert_int_ge(fd, 0);
    const char *head = POST_HEAD "Content-Length: 314572800\r\n\r\n";
    ck_assert_int_eq(send(fd, head, strlen(head), MSG_NOSIGNAL), (int)strlen(head));
    static char chunk[1 << 16];
    memset(chunk, 'a', sizeof chunk);
    size_t sent = 0, got = 0;
    resp[0] = '\0';
    uint64_t t0 = rh_now_ms();
    while (sent < 314572800u && got == 0 && rh_now_ms() < t0 + 10000) {
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
        if (poll(&p, 1, 100) <= 0) continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) break;
        ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) break;
        if (n > 0) sent += (size_t)n;
    }
    closed = rh_read_until(fd, resp, sizeof resp, &got, rh_now_ms() + 5000);
    close(fd);
    fprintf(stderr, "test_e2e: 300 MB upload: 413 after %zu bytes sent, %llu ms\n", sent,
            (unsigned long long)(rh_now_ms() - t0));
    ck_assert_msg(rh_status(resp) == 413 && closed, "300 MB: %s", resp);
    ck_assert_uint_lt(sent, 64u << 20);
    /* chunked: cut once past --max-body (65536), the reply routed like any */
    static char chunked[200000];
    int n = snprintf(chunked, sizeof chunked, "%s", POST_HEAD "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 10; i++) {
        n += snprintf(chunked + n, sizeof chunked - (size_t)n, "2710\r\n");
        memset(chunked + n, 'b', 10000);
        n += 10000;
        n += snprintf(chunked + n, sizeof chunked - (size_t)n, "\r\n");
    }
    n += snprintf(chunked + n, sizeof chunked - (size_t)n, "0\r\n\r\n");
    rh_exchange(s.port, chunked, (size_t)n, 5000, resp, sizeof resp, &closed);
    ck_assert_msg(rh_status(resp) == 413 && strstr(resp, "{\"error\":") && closed, "chunked: %s",
                  resp);
    ck_assert_int_eq(curl(&s, "GET", "/metrics", NULL, NULL, NULL), 200);
    ck_assert_ptr_nonnull(strstr(slurp(&s, "body"),
                                 "erserve_requests_total{route=\"tokenize\",status=\"413\"} 4"));
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

/* Runs sh -c cmd in the background; returns its pid. */
static pid_t spawn_sh(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits (bounded) for pid; kills it past the bound.  Its exit status or -1. */
static int wait_pid(pid_t pid, int ms) {
    int st = 0;
    for (int i = 0; i < ms / 10; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* 100 clients dribbling a head from one address, 4 dribbling a body from
 * another, and a full compute queue: /health and /ready still answer at
 * once, the per-address cap holds, and every slow connection gets its 408
 * and is closed at its deadline. */
START_TEST(slow_clients_reaped) {
    server s = {0};
    start(&s, NULL, "--head-timeout", "2", "--body-timeout", "1", "--body-min-rate", "100",
          "--max-connections-per-ip", "64", "--workers", "1", "--queue", "1", "--quiet", NULL);
    char cmd[1024];
    write_big_json(&s);
    /* four big requests at once: one computes, one queues, the rest get 429 */
    snprintf(cmd, sizeof cmd,
             "cd %s && for c in 1 2 3 4; do curl -s -m 30 -o /dev/null -w '%%{http_code}\\n' "
             "-H 'Content-Type: application/json' --data-binary @big.json "
             "http://127.0.0.1:%d/v1/tasks/cls/predict > busy.$c & done; wait",
             s.dir, s.port);
    pid_t busy = spawn_sh(cmd);
    static const char *const head_src[] = {"127.0.0.2"}, *const body_src[] = {"127.0.0.3"};
    rh_slow heads, bodies;
    int opened = rh_slow_open(&heads, s.port, 100, head_src, 1,
                              "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
                              200);
    rh_slow_open(&bodies, s.port, 4, body_src, 1,
                 POST_HEAD "Content-Length: 60\r\n\r\n{\"inputs\": \"a slow body, one byte at a time..\"}",
                 200);
    ck_assert_int_eq(opened, 100); /* the kernel accepts them all: MHD caps them */
    /* the whole head at once, then the body a byte at a time */
    rh_slow_burst(&bodies, strlen(POST_HEAD "Content-Length: 60\r\n\r\n"));
    uint64_t t0 = rh_now_ms();
    int worst = 0, probes = 0, max_open = 0;
    while (rh_now_ms() < t0 + 6000 && (rh_slow_open_count(&heads) || rh_slow_open_count(&bodies))) {
        rh_slow_step(&heads);
        rh_slow_step(&bodies);
        if (rh_now_ms() > t0 + 500) {
            int open = rh_slow_open_count(&heads);
            if (open > max_open) max_open = open;
        }
        int st;
        int ms = rh_probe(s.port, probes % 2 ? "/ready" : "/health", 2000, &st);
        ck_assert_msg(ms >= 0 && st == 200, "probe %d: %d ms, status %d", probes, ms, st);
        if (ms > worst) worst = ms;
        probes++;
        sleep_ms(50);
    }
    int answered = 0, late = 0;
    for (int i = 0; i < 100; i++) {
        answered += heads.c[i].status == 408;
        late += heads.c[i].status == 408 && heads.c[i].end_ms > t0 + 4000;
    }
    int body_408 = 0;
    for (int i = 0; i < 4; i++) body_408 += bodies.c[i].status == 408;
    fprintf(stderr,
            "test_e2e: slow clients: %d of 100 heads held past the cap's 0.5 s mark, %d answered "
            "408 (%d late), %d/4 slow bodies 408; %d probes, worst %d ms\n",
            max_open, answered, late, body_408, probes, worst);
    ck_assert_int_eq(rh_slow_open_count(&heads), 0);
    ck_assert_int_eq(rh_slow_open_count(&bodies), 0);
    ck_assert_int_le(max_open, 64);
    ck_assert_int_ge(answered, 60); /* those the cap let in */
    ck_assert_int_eq(late, 0);
    ck_assert_int_eq(body_408, 4);
    ck_assert_int_lt(worst, 1500);
    rh_slow_close(&heads);
    rh_slow_close(&bodies);
    /* a keep-alive connection idle past --head-timeout is not a slow head:
     * its next request's clock starts at its request line */
    int fd = rh_connect(s.port, NULL);
    ck_assert_int_ge(fd, 0);
    const char *ka = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    char r1[4096] = "", r2[4096] = "";
    size_t g1 = 0, g2 = 0;
    ck_assert_int_eq(send(fd, ka, strlen(ka), MSG_NOSIGNAL), (int)strlen(ka));
    ck_assert(!rh_read_until(fd, r1, sizeof r1, &g1, rh_now_ms() + 1000));
    sleep_ms(1600); /* 2.6 s idle */
    ck_assert_int_eq(send(fd, ka, strlen(ka), MSG_NOSIGNAL), (int)strlen(ka));
    rh_read_until(fd, r2, sizeof r2, &g2, rh_now_ms() + 1000);
    close(fd);
    ck_assert_msg(rh_status(r1) == 200 && rh_status(r2) == 200, "keep-alive: %s / %s", r1, r2);
    ck_assert_int_eq(wait_pid(busy, 40000), 0);
    snprintf(cmd, sizeof cmd, "cat %s/busy.* | grep -c '^429$'", s.dir);
    ck_assert_int_ge(sh_int(cmd), 1); /* the queue was full while the probes ran */
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

/* A second server on a port in use exits at once, status 3, saying why;
 * the first one keeps serving. */
START_TEST(port_in_use) {
    server a = {0}, b = {0};
    start(&a, NULL, NULL);
    char port[16];
    snprintf(port, sizeof port, "%d", a.port);
    snprintf(b.dir, sizeof b.dir, "%s/b", a.dir);
    mkdir(b.dir, 0755);
    spawn_args(&b, "--port", port, NULL); /* the later --port wins */
    int rc = wait_pid(b.pid, 15000);
    b.pid = 0;
    ck_assert_int_eq(rc, 3);
    ck_assert_ptr_nonnull(strstr(slurp(&b, "server.log"), "Address already in use"));
    ck_assert_int_eq(curl(&a, "GET", "/health", NULL, NULL, NULL), 200);
    ck_assert_int_eq(stop(&a), 0);
    cleanup(&a);
}
END_TEST

/* A RoBERTa task from text over HTTP: its directory's tokenizer.json
 * (roberta-base's byte-level BPE) wins over --tokenizer, the model is sized
 * to it and loads with RoBERTa's layout. */
START_TEST(roberta_task_from_text) {
    server s = {0};
    char spec[300];
    snprintf(spec, sizeof spec, "rob=%s/roberta-seqcls", g_tok_models);
    start(&s, NULL, "--task", spec, NULL);
    ck_assert_int_eq(curl(&s, "POST", "/v1/tasks/rob/predict", JSON,
                          "{\"inputs\":[\"Hello, world!\",\"Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9""e \xf0\x9f\x9a\x80\"]}",
                          NULL), 200);
    const char *b = slurp(&s, "body");
    ck_assert_ptr_nonnull(strstr(b, "\"label\":"));
    ck_assert_ptr_nonnull(strstr(b, "\"miss\""));
    /* roberta-base's ids and tokens (tests/tokenizer/golden-rust/roberta-base.json) */
    ck_assert_int_eq(curl(&s, "POST", "/tokenize", JSON, "{\"inputs\":\"Hello, world!\",\"model\":\"rob\"}",
                          NULL), 200);
    b = slurp(&s, "body");
    ck_assert_ptr_nonnull(strstr(b, "{\"id\":0,\"text\":\"<s>\""));
    ck_assert_msg(strstr(b, "{\"id\":232,\"text\":\"world\",\"special\":false,\"start\":7,\"stop\":12}"),
                  "%s", b); /* TEI: the input's slice (offsets trimmed, as roberta-base's) */
    ck_assert_int_eq(curl(&s, "POST", "/decode", JSON,
                          "{\"ids\":[0,31414,6,232,328,2],\"model\":\"rob\"}", NULL), 200);
    ck_assert_str_eq(slurp(&s, "body"), "[\"Hello, world!\"]");
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

static Suite *e2e_suite(void) {
    if (gen_models(build_dir())) {
        fprintf(stderr, "test_e2e: erserve-genmodel failed (build it first)\n");
        exit(1);
    }
    if (gen_tok_model(build_dir(), "roberta-seqcls", "--arch roberta --vocab 50265 --head seqcls",
                      "tests/tokenizer/data/roberta-base.tokenizer.json")) {
        fprintf(stderr, "test_e2e: erserve-genmodel failed for the RoBERTa task\n");
        exit(1);
    }
    Suite *s = suite_create("server_e2e");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, routes_and_errors);
    tcase_add_test(tc, concurrent_clients);
    tcase_add_test(tc, sigterm_drains);
    tcase_add_test(tc, disconnect_skips_compute);
    tcase_add_test(tc, restart_keeps_store);
    tcase_add_test(tc, wrk_no_errors);
    tcase_add_test(tc, openai_npm_client);
    tcase_add_test(tc, huggingface_js_client);
    tcase_add_test(tc, cors_preflight);
    tcase_add_test(tc, framing_refused);
    tcase_add_test(tc, early_413);
    tcase_add_test(tc, slow_clients_reaped);
    tcase_add_test(tc, port_in_use);
    tcase_add_test(tc, roberta_task_from_text);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(e2e_suite)
