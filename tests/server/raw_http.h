/* Raw HTTP/1.1 over loopback TCP, for the tests that curl cannot write:
 * ambiguous framing sent byte for byte, declared bodies never sent, and
 * slow clients that dribble a request one byte at a time.  Shared by
 * tests/server/test_e2e.c and tests/chaos/slowloris.c.  Every wait is
 * bounded by a deadline; every socket is closed by its owner. */
#ifndef ER_RAW_HTTP_H
#define ER_RAW_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t rh_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A non-blocking socket connected to 127.0.0.1:port from src (a loopback
 * address such as "127.0.0.2", or NULL for any); -1 on failure. */
static inline int rh_connect(int port, const char *src) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (src) {
        inet_pton(AF_INET, src, &sa.sin_addr);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(fd);
            return -1;
        }
    }
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Reads what fd has into out[*len..cap-1] until end-of-file, a reset or
 * deadline (ms, rh_now_ms clock).  True once the peer has closed. */
static inline bool rh_read_until(int fd, char *out, size_t cap, size_t *len, uint64_t deadline) {
    for (;;) {
        uint64_t now = rh_now_ms();
        if (now >= deadline) return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now)) <= 0) continue;
        char junk[4096];
        char *dst = *len + 1 < cap ? out + *len : junk;
        size_t room = *len + 1 < cap ? cap - 1 - *len : sizeof junk;
        ssize_t n = recv(fd, dst, room, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
        if (n > 0 && dst != junk) {
            *len += (size_t)n;
            out[*len] = '\0';
        }
    }
    return true;
}

/* Sends req (len bytes) on a fresh connection, then reads the answer into
 * out (NUL-terminated) for at most timeout_ms.  Returns the bytes read;
 * *closed tells whether the server closed the connection in that time. */
static inline size_t rh_exchange(int port, const char *req, size_t len, int timeout_ms, char *out,
                                 size_t cap, bool *closed) {
    size_t got = 0;
    out[0] = '\0';
    *closed = false;
    int fd = rh_connect(port, NULL);
    if (fd < 0) return 0;
    uint64_t deadline = rh_now_ms() + (uint64_t)timeout_ms;
    for (size_t sent = 0; sent < len && rh_now_ms() < deadline;) {
        ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0) sent += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        else {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 50);
        }
    }
    *closed = rh_read_until(fd, out, cap, &got, deadline);
    close(fd);
    return got;
}

/* The status of the first status line in resp, or 0. */
static inline int rh_status(const char *resp) {
    return strncmp(resp, "HTTP/1.", 7) == 0 && strlen(resp) > 12 ? atoi(resp + 9) : 0;
}

static inline int rh_count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* How many status lines ("HTTP/1.x DDD ") resp holds. */
static inline int rh_replies(const char *resp) {
    int n = 0;
    for (const char *p = resp; (p = strstr(p, "HTTP/1.")); p += 7)
        n += strlen(p) > 13 && p[8] == ' ' && p[9] >= '1' && p[9] <= '5' && p[12] == ' ';
    return n;
}

/* GET path on a fresh connection: the milliseconds to a whole answer (the
 * server closes: Connection: close), or -1 past timeout_ms; *status gets
 * the status (0 when none came). */
static inline int rh_probe(int port, const char *path, int timeout_ms, int *status) {
    char req[256], resp[4096];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    bool closed;
    uint64_t t0 = rh_now_ms();
    rh_exchange(port, req, (size_t)n, timeout_ms, resp, sizeof resp, &closed);
    *status = rh_status(resp);
    return closed && *status ? (int)(rh_now_ms() - t0) : -1;
}

/* ---- slow clients: n connections, each sending the next byte of text
 * every every_ms ---- */

typedef struct {
    int fd;          /* -1 once closed (by the server or never opened) */
    size_t sent;     /* bytes of text sent */
    int status;      /* the status of what the server answered, 0 = nothing */
    uint64_t end_ms; /* when the server closed it */
} rh_slow_conn;

typedef struct {
    int n, every_ms;
    const char *text;
    uint64_t t0, next_ms;
    rh_slow_conn *c;
} rh_slow;

/* Opens n connections, from the loopback addresses srcs[i % n_srcs]
 * (NULL: any).  Returns how many connected. */
static inline int rh_slow_open(rh_slow *s, int port, int n, const char *const *srcs, int n_srcs,
                               const char *text, int every_ms) {
    s->n = n;
    s->every_ms = every_ms;
    s->text = text;
    s->c = calloc((size_t)n, sizeof *s->c);
    s->t0 = s->next_ms = rh_now_ms();
    int ok = 0;
    for (int i = 0; s->c && i < n; i++) {
        s->c[i].fd = rh_connect(port, srcs ? srcs[i % n_srcs] : NULL);
        ok += s->c[i].fd >= 0;
    }
    return ok;
}

/* Sends the next byte on every open connection when due, and notes which
 * the server has answered or closed.  Call it often (it does not block). */
static inline void rh_slow_step(rh_slow *s) {
    uint64_t now = rh_now_ms();
    bool send_now = now >= s->next_ms;
    if (send_now) s->next_ms = now + (uint64_t)s->every_ms;
    size_t tl = strlen(s->text);
    for (int i = 0; s->c && i < s->n; i++) {
        rh_slow_conn *c = &s->c[i];
        if (c->fd < 0) continue;
        char buf[1024];
        ssize_t n;
        bool gone = false;
        while ((n = recv(c->fd, buf, sizeof buf - 1, 0)) > 0) {
            buf[n] = '\0';
            if (!c->status) c->status = rh_status(buf);
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) gone = true;
        if (!gone && send_now && c->sent < tl) {
            if (send(c->fd, s->text + c->sent, 1, MSG_NOSIGNAL) == 1) c->sent++;
            else if (errno != EAGAIN) gone = true;
        }
        if (gone) {
            close(c->fd);
            c->fd = -1;
            c->end_ms = now;
        }
    }
}

/* Sends the text up to byte upto at once on every open connection (a whole
 * head before a slow body, say). */
static inline void rh_slow_burst(rh_slow *s, size_t upto) {
    for (int i = 0; s->c && i < s->n; i++) {
        rh_slow_conn *c = &s->c[i];
        while (c->fd >= 0 && c->sent < upto) {
            ssize_t n = send(c->fd, s->text + c->sent, upto - c->sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            c->sent += (size_t)n;
        }
    }
}

static inline int rh_slow_open_count(const rh_slow *s) {
    int k = 0;
    for (int i = 0; s->c && i < s->n; i++) k += s->c[i].fd >= 0;
    return k;
}

static inline void rh_slow_close(rh_slow *s) {
    for (int i = 0; s->c && i < s->n; i++)
        if (s->c[i].fd >= 0) close(s->c[i].fd);
    free(s->c);
    s->c = NULL;
}

#endif
