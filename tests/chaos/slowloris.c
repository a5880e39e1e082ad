/* Slow clients against a running erserve, for tests/chaos/slow_clients.sh:
 *
 *   slowloris PORT N SOURCES EVERY_MS SECONDS RECONNECT PROBE_BOUND_MS
 *
 * opens N connections to 127.0.0.1:PORT from the loopback addresses
 * 127.0.0.2 .. 127.0.0.(1+SOURCES) (round robin), each sending the next
 * byte of a request head every EVERY_MS ms (the head never completes in
 * time), for SECONDS s; with RECONNECT 1 a connection the server closed is
 * opened again at once (an attacker that keeps the pressure on).  Meanwhile
 * it probes GET /health from 127.0.0.1 every 250 ms and reports: how many
 * connections the server closed, with a 408 or without a reply, the
 * longest one was held before its 408, the probe latencies, and the longest
 * stretch without a /health answer.  Exit status 0 when that stretch
 * stayed under PROBE_BOUND_MS, else 1.  Loopback only; every wait bounded. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "raw_http.h"

/* GET /health every 250 ms on its own thread, so that a stall of the
 * attacking loop (a connect() waiting on a full accept queue) is never
 * counted against the server. */
typedef struct {
    int port;
    atomic_bool stop;
    int probes, ok, worst_ms;
    long long sum_ms;
    uint64_t worst_gap;
} prober;

static void *probe_main(void *u) {
    prober *p = u;
    uint64_t last_ok = rh_now_ms();
    while (!atomic_load(&p->stop)) {
        int st, ms = rh_probe(p->port, "/health", 2000, &st);
        uint64_t now = rh_now_ms();
        p->probes++;
        if (ms >= 0 && st == 200) {
            p->ok++;
            p->sum_ms += ms;
            if (ms > p->worst_ms) p->worst_ms = ms;
            if (now - last_ok > p->worst_gap) p->worst_gap = now - last_ok;
            last_ok = now;
        }
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    uint64_t end = rh_now_ms();
    if (end - last_ok > p->worst_gap) p->worst_gap = end - last_ok;
    return NULL;
}

#define HEAD                                                                                  \
    "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Slow-1: "          \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nX-Slow-2: bbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\n"

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: slowloris PORT N SOURCES EVERY_MS SECONDS RECONNECT PROBE_BOUND_MS\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]), n_src = atoi(argv[3]), every = atoi(argv[4]);
    int seconds = atoi(argv[5]), reconnect = atoi(argv[6]), bound = atoi(argv[7]);
    if (port <= 0 || n <= 0 || n_src <= 0 || n_src > 250 || every <= 0 || seconds <= 0) return 2;
    static char names[250][16];
    const char *srcs[250];
    for (int i = 0; i < n_src; i++) {
        snprintf(names[i], sizeof names[i], "127.0.0.%d", i + 2);
        srcs[i] = names[i];
    }
    rh_slow s;
    int opened = rh_slow_open(&s, port, n, srcs, n_src, HEAD, every);
    uint64_t *born = calloc((size_t)n, sizeof *born);
    prober pr = {.port = port};
    pthread_t th;
    if (!s.c || !born || pthread_create(&th, NULL, probe_main, &pr) != 0) return 2;
    uint64_t t0 = rh_now_ms(), held_max = 0;
    int answered_408 = 0, closed = 0, reopened = 0;
    for (int i = 0; i < n; i++) born[i] = t0;
    while (rh_now_ms() < t0 + (uint64_t)seconds * 1000u) {
        rh_slow_step(&s);
        uint64_t now = rh_now_ms();
        for (int i = 0; i < n; i++) {
            rh_slow_conn *c = &s.c[i];
            if (c->fd >= 0 || c->end_ms == 0) continue;
            closed++;
            answered_408 += c->status == 408;
            if (c->end_ms - born[i] > held_max && c->status == 408) held_max = c->end_ms - born[i];
            c->end_ms = 0;
            c->status = 0;
            c->sent = 0;
            if (reconnect) {
                c->fd = rh_connect(port, srcs[i % n_src]);
                born[i] = now;
                reopened += c->fd >= 0;
            }
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&pr.stop, true);
    pthread_join(th, NULL);
    printf("slowloris: %d connections (%d connected) from %d address(es), 1 byte / %d ms, %d s%s\n",
           n, opened, n_src, every, seconds, reconnect ? ", reconnecting" : "");
    printf("slowloris: %d closed by the server: %d with 408 (longest held before it: %.1f s), %d "
           "without a reply (over a connection cap); %d reopened\n",
           closed, answered_408, (double)held_max / 1000.0, closed - answered_408, reopened);
    printf("slowloris: /health: %d/%d probes answered, mean %.1f ms, worst %d ms; longest stretch "
           "without an answer %.1f s (bound %.1f s)\n",
           pr.ok, pr.probes, pr.ok ? (double)pr.sum_ms / pr.ok : 0.0, pr.worst_ms,
           (double)pr.worst_gap / 1000.0, bound / 1000.0);
    rh_slow_close(&s);
    free(born);
    return pr.worst_gap < (uint64_t)bound ? 0 : 1;
}
