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

/* Starts erserve with the four test tasks plus extra args (NULL-ended). */
static void start(server *s, const char *store, ...) {
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
    va_list ap;
    va_start(ap, store);
    for (const char *a; n < 38 && (a = va_arg(ap, const char *));) argv[n++] = a;
    va_end(ap);
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
    ck_assert_int_eq(curl(&s, "POST", "/embed", JSON, "{\"inputs\":[]}", NULL), 422);
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

/* Clients that give up while queued cost no compute: their jobs are
 * dropped (counted in erserve_dropped_total{reason="client_gone"}). */
START_TEST(disconnect_skips_compute) {
    server s = {0};
    start(&s, NULL, "--workers", "1", "--max-inputs", "64", NULL);
    char path[200], cmd[4096];
    snprintf(path, sizeof path, "%s/big.json", s.dir);
    FILE *f = fopen(path, "w");
    fputs("{\"inputs\":[", f);
    for (int i = 0; i < 64; i++) {
        fputs(i ? ",\"" : "\"", f);
        for (int k = 0; k < 60; k++) fprintf(f, "w%d ", (i * 61 + k) % 997);
        fputs("\"", f);
    }
    fputs("]}", f);
    fclose(f);
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

START_TEST(openai_npm_client) {
    if (system("command -v node >/dev/null 2>&1") != 0) {
        ER_SKIP("Node.js is not installed");
    }
    struct stat st;
    if (stat("build/node/node_modules/openai", &st) != 0 &&
        system("npm install --silent --prefix build/node openai@6.49.0 >/dev/null 2>&1") != 0) {
        ER_SKIP("`npm install --prefix build/node openai@6.49.0` failed (offline?)");
    }
    server s = {0};
    start(&s, NULL, NULL);
    char cmd[1024];
    /* node resolves `openai` from the script's directory upwards: run a copy
     * placed next to build/node/node_modules. */
    snprintf(cmd, sizeof cmd,
             "cp tests/server/openai_client.mjs build/node/ && node build/node/openai_client.mjs "
             "http://127.0.0.1:%d/v1 emb > %s/node.txt 2>&1",
             s.port, s.dir);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "openai client failed: %s", slurp(&s, "node.txt"));
    ck_assert_int_eq(stop(&s), 0);
    cleanup(&s);
}
END_TEST

static Suite *e2e_suite(void) {
    if (gen_models(build_dir())) {
        fprintf(stderr, "test_e2e: erserve-genmodel failed (build it first)\n");
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
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(e2e_suite)
