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
#include <stdio.h>
#include <stdlib.h>

#include "raw_http.h"

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
    if (!s.c || !born) return 2;
    uint64_t t0 = rh_now_ms(), next_probe = t0, last_ok = t0, worst_gap = 0, held_max = 0;
    int probes = 0, probe_ok = 0, worst_ms = 0, answered_408 = 0, closed = 0, reopened = 0;
    long long sum_ms = 0;
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
        if (now >= next_probe) {
            int st, ms = rh_probe(port, "/health", 2000, &st);
            now = rh_now_ms();
            probes++;
            if (ms >= 0 && st == 200) {
                probe_ok++;
                sum_ms += ms;
                if (ms > worst_ms) worst_ms = ms;
                if (now - last_ok > worst_gap) worst_gap = now - last_ok;
                last_ok = now;
            }
            next_probe = now + 250;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    uint64_t end = rh_now_ms();
    if (end - last_ok > worst_gap) worst_gap = end - last_ok;
    printf("slowloris: %d connections (%d connected) from %d address(es), 1 byte / %d ms, %d s%s\n",
           n, opened, n_src, every, seconds, reconnect ? ", reconnecting" : "");
    printf("slowloris: %d closed by the server: %d with 408 (longest held before it: %.1f s), %d "
           "without a reply (over a connection cap); %d reopened\n",
           closed, answered_408, (double)held_max / 1000.0, closed - answered_408, reopened);
    printf("slowloris: /health: %d/%d probes answered, mean %.1f ms, worst %d ms; longest stretch "
           "without an answer %.1f s (bound %.1f s)\n",
           probe_ok, probes, probe_ok ? (double)sum_ms / probe_ok : 0.0, worst_ms,
           (double)worst_gap / 1000.0, bound / 1000.0);
    rh_slow_close(&s);
    free(born);
    return worst_gap < (uint64_t)bound ? 0 : 1;
}
