/* erserve: the HTTP/JSON server.  Loads the configuration and tasks, logs
 * one startup line, serves until SIGTERM/SIGINT, then drains: stops
 * accepting, finishes queued requests, flushes the store and exits 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "app.h"
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

int main(int argc, char **argv) {
    srv_config cfg;
    srv_config_defaults(&cfg);
    char msg[1024];
    int rc = srv_config_load(&cfg, argc, argv, NULL, stdout, msg, sizeof msg);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "erserve: %s\n", msg);
        srv_config_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    if (pipe(stop_pipe) != 0) {
        perror("erserve: pipe");
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv_app *app = NULL;
    er_err err = {0};
    if (srv_app_new(&cfg, &app, &err) != ER_OK) {
        fprintf(stderr, "erserve: %s\n", err.msg);
        srv_config_free(&cfg);
        return 1;
    }
    char line[4096];
    srv_app_describe(app, line, sizeof line);
    fprintf(stderr, "erserve: %s\n", line);
    /* Debian's OpenBLAS 0.3.21 falls back to SSE3 kernels on CPUs it does not
     * know (e.g. recent Xeons under a VM): say so, it costs 3-4x. */
    const char *core = openblas_get_corename();
    if (core && strstr(core, "rescott") && !getenv("OPENBLAS_CORETYPE") &&
        __builtin_cpu_supports("avx2"))
        fprintf(stderr, "erserve: warning: OpenBLAS picked its %s (SSE3) kernels on a CPU with "
                        "AVX2; set OPENBLAS_CORETYPE=%s for 3-4x faster matrix products\n",
                core, __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
    srv_http *http = NULL;
    int port = 0;
    if (srv_http_start(app, &cfg, &http, &port, &err) != ER_OK) {
        fprintf(stderr, "erserve: %s\n", err.msg);
        srv_app_free(app);
        srv_config_free(&cfg);
        return 1;
    }
    fprintf(stderr, "erserve: listening on http://%s:%d\n", cfg.host, port);
    fflush(stderr);
    unsigned char sig = 0;
    while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    fprintf(stderr, "erserve: %s: draining %d request(s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            srv_app_in_flight(app));
    srv_http_quiesce(http);
    srv_app_drain(app);
    srv_http_stop(http);
    srv_app_free(app);
    srv_config_free(&cfg);
    fprintf(stderr, "erserve: stopped\n");
    return 0;
}
