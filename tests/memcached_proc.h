/* A real memcached for a test: started on a free loopback port, ended by its
 * PID.  Header-only (each suite stays one source file).  mc_start returns 0
 * when the memcached binary is absent: the test then skips (ER_SKIP). */
#ifndef ER_TEST_MEMCACHED_PROC_H
#define ER_TEST_MEMCACHED_PROC_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int port;
} mc_proc;

static inline const char *mc_binary(void) {
    static const char *paths[] = {"/usr/bin/memcached", "/usr/local/bin/memcached"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (access(paths[i], X_OK) == 0) return paths[i];
    return NULL;
}

/* A listening socket on 127.0.0.1:0 (never accepting: a node that hangs),
 * its port in *port.  Also how free ports are found. */
static inline int mc_listen_any(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 64) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static inline int mc_free_port(void) {
    int port = 0, fd = mc_listen_any(&port);
    if (fd >= 0) close(fd);
    return fd >= 0 ? port : -1;
}

static inline int mc_connects(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* Starts memcached on port (0: a free one).  1 started, 0 no binary, -1
 * failed to come up within 5 s. */
static inline int mc_start(mc_proc *m, int port) {
    const char *bin = mc_binary();
    m->pid = -1;
    if (!bin) return 0;
    m->port = port ? port : mc_free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", m->port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that dies takes its memcached along */
        execl(bin, bin, "-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "64", "-I", "4m", "-t", "2",
              "-u", "root", (char *)NULL);
        _exit(127);
    }
    m->pid = pid;
    for (int i = 0; i < 500; i++) {
        if (mc_connects(m->port)) return 1;
        if (waitpid(pid, NULL, WNOHANG) == pid) break;
        usleep(10000);
    }
    return -1;
}

static inline void mc_stop(mc_proc *m, int sig) {
    if (m->pid <= 0) return;
    kill(m->pid, sig);
    waitpid(m->pid, NULL, 0);
    m->pid = -1;
}

static inline double mc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
