/* erserve: the HTTP/JSON server.  Loads the configuration and tasks, logs
 * one startup line, serves until SIGTERM/SIGINT, then drains: stops
 * accepting, finishes queued requests, flushes the store and exits 0.
 * SIGHUP re-reads the configuration's tasks (srv_app_reload). */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "app.h"
#include "er_log.h"
#include "http.h"

/* SIGTERM/SIGINT write their number to a pipe that main reads: a handler
 * works whichever thread the kernel picks (OpenBLAS starts threads before
 * main, so blocking the signals in main's threads alone is not enough). */
static int stop_pipe[2] = {-1, -1};

static void on_stop(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(stop_pipe[1], &b, 1) < 0) { /* nothing to do in a handler */
    }
    errno = saved;
}

static bool catch_stop_signals(void) {
    if (pipe(stop_pipe) != 0) {
        er_log(ER_LOG_ERROR, "pipe: %s", strerror(errno));
        return false;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* not a stop: serve() reloads */
    signal(SIGPIPE, SIG_IGN);
    return true;
}

/* The start-up line, and a warning when OpenBLAS runs slow kernels. */
static void describe(const srv_app *app) {
    char line[4096];
    srv_app_describe(app, line, sizeof line);
    er_log(ER_LOG_INFO, "%s", line);
    /* Debian's OpenBLAS 0.3.21 falls back to SSE3 kernels on CPUs it does not
     * know (e.g. recent Xeons under a VM): say so, it costs 3-4x.  x86 only
     * (__builtin_cpu_supports is an x86 builtin; aarch64 builds skip it). */
#if defined(__x86_64__) && defined(__GNUC__)
    const char *core = openblas_get_corename();
    if (core && strstr(core, "rescott") && !getenv("OPENBLAS_CORETYPE") &&
        __builtin_cpu_supports("avx2"))
        er_log(ER_LOG_WARN, "OpenBLAS picked its %s (SSE3) kernels on a CPU with AVX2; set "
               "OPENBLAS_CORETYPE=%s for 3-4x faster matrix products",
               core, __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
#endif
}

/* Serves on listen_fd until SIGTERM/SIGINT, then drains.  Returns the exit
 * status. */
static int serve(srv_app *app, const srv_config *cfg, int listen_fd, int port, int argc,
                 char **argv) {
    srv_http *http = NULL;
    er_err err = {0};
    if (srv_http_start(app, cfg, listen_fd, &http, &err) != ER_OK) {
        er_log(ER_LOG_ERROR, "%s", err.msg);
        return 1;
    }
    er_log(ER_LOG_INFO, "listening on http://%s:%d", cfg->host, port);
    unsigned char sig = 0;
    for (;;) {
        ssize_t r = read(stop_pipe[0], &sig, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r != 1 || sig != SIGHUP) break;
        int changed = srv_app_reload(app, argc, argv, &err);
        if (changed < 0) er_log(ER_LOG_ERROR, "SIGHUP: configuration not reloaded: %s", err.msg);
        else er_log(ER_LOG_INFO, "SIGHUP: configuration reloaded, %d task(s) changed", changed);
    }
    er_log(ER_LOG_INFO, "%s: draining %d request(s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
           srv_app_in_flight(app));
    srv_http_quiesce(http);
    srv_app_drain(app);
    srv_http_stop(http);
    return 0;
}

/* Exit statuses: 0 after a drain, 1 start-up failure (tasks, store), 2 bad
 * configuration, 3 cannot listen (the port is in use). */
int main(int argc, char **argv) {
    er_log_setup("erserve", ER_LOG_INFO);
    srv_config cfg;
    srv_config_defaults(&cfg);
    er_err err = {0};
    bool printed = false;
    if (srv_config_load(&cfg, argc, argv, stdout, &printed, &err) != ER_OK || printed) {
        if (!printed) er_log(ER_LOG_ERROR, "%s", err.msg);
        srv_config_free(&cfg);
        return printed ? 0 : 2;
    }
    if (!catch_stop_signals()) return 1;
    /* The port first: a second instance fails at once, before loading models. */
    int listen_fd = -1, port = 0;
    if (srv_http_listen(&cfg, &listen_fd, &port, &err) != ER_OK) {
        er_log(ER_LOG_ERROR, "%s", err.msg);
        srv_config_free(&cfg);
        return err.code == ER_ERR_INVALID_ARG ? 2 : 3;
    }
    srv_app *app = NULL;
    if (srv_app_new(&cfg, &app, &err) != ER_OK) {
        er_log(ER_LOG_ERROR, "%s", err.msg);
        close(listen_fd);
        srv_config_free(&cfg);
        return 1;
    }
    describe(app);
    int rc = serve(app, &cfg, listen_fd, port, argc, argv);
    srv_app_free(app);
    srv_config_free(&cfg);
    if (rc == 0) er_log(ER_LOG_INFO, "stopped");
    return rc;
}
