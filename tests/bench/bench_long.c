/* Long-input benchmark: one SEQ-token input through a worker sized as the
 * server sizes it (er_worker_params: batch budget 512, the model's positions
 * alone), then the store's handling of a value of that length.
 *
 *   bench_long MODEL_DIR STORE_BASE SEQ THREADS
 *
 * Prints human-readable lines:
 *   - the worker's scratch as allocated (er_worker_bytes) and the RSS it
 *     adds: after init (untouched pages), and at the peak of the long
 *     forward over the RSS after a 16-token warm-up (which touched the
 *     weights);
 *   - the time (CPU and wall) of one full forward of the SEQ-token input (a
 *     store miss: lower layers, store write queued, upper layers, head), and
 *     of the same input as a hit (store read + upper layers + head);
 *   - per store dtype: the value's bytes, the time to encode and queue it
 *     (er_store_put) and to commit it (er_store_flush), and the median time
 *     to read and decode it (er_store_get) over 5 reads. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "er_log.h"
#include "recycle.h"

static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) kb = atol(line + n);
    if (f) fclose(f);
    return kb;
}

static double mib(double bytes) { return bytes / (1 << 20); }

/* CPU seconds of the calling thread: with one OpenBLAS thread and a ctx of
 * one thread all of a forward runs here, so this is its compute time even
 * on a machine shared with other work (wall time is printed too). */
static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const char *msg) {
    fprintf(stderr, "bench_long: %s\n", msg);
    exit(1);
}

static er_store *open_store(const char *base, er_dtype d) {
    char path[512], cmd[600];
    snprintf(path, sizeof path, "%s/long-%s", base, er_dtype_name(d));
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd)) exit(1);
    er_store_params p = er_store_default_params();
    p.dtype = d;
    er_store *s;
    er_err e;
    if (er_store_open(path, &p, &s, &e) != ER_OK) die(e.msg);
    return s;
}

/* Writes x [n, H] as one value and reads it back; prints size and times. */
static void store_line(const char *base, er_dtype d, int n, int H, const float *x, float *back) {
    er_store *s = open_store(base, d);
    er_store_reader *r;
    er_err e;
    if (er_store_reader_new(s, &r, &e) != ER_OK) die(e.msg);
    uint8_t fp[32] = {0}, key[ER_STORE_KEY_BYTES];
    int32_t id = 7;
    er_store_key(fp, 6, 1, &id, NULL, (uint64_t)d, key);
    double t0 = now_s();
    if (er_store_put(s, key, 6, n, H, x, true, &e) != ER_OK) die(e.msg);
    double t1 = now_s();
    er_store_flush(s);
    double t2 = now_s(), reads[5];
    for (int i = 0; i < 5; i++) {
        double a = now_s();
        if (er_store_get(r, key, 6, n, H, back, &e) != ER_OK) die(e.msg);
        reads[i] = now_s() - a;
    }
    printf("store %-4s %d-token value: %zu bytes (%.1f MiB, %.0f bytes/token); encode+queue "
           "%.1f ms, commit %.1f ms, read+decode %.2f ms (median of 5)\n",
           er_dtype_name(d), n, er_store_value_size(d, n, H),
           mib((double)er_store_value_size(d, n, H)),
           (double)er_store_value_size(d, n, H) / n, 1e3 * (t1 - t0), 1e3 * (t2 - t1),
           1e3 * median(reads, 5));
    er_store_reader_free(r);
    er_store_close(s);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: bench_long MODEL_DIR STORE_BASE SEQ THREADS\n");
        return 2;
    }
    const char *model = argv[1], *base = argv[2];
    const int S = atoi(argv[3]), threads = atoi(argv[4]);
    if (S < 1 || threads < 1) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows through make's pipe */
    openblas_set_num_threads(threads);
    er_log_setup("bench_long", ER_LOG_WARN);
    long rss0 = status_kb("VmRSS:");
    er_task_spec spec = {"long", model, 0, ER_COMPUTE_FP32};
    er_taskset_params tp = er_taskset_default_params();
    char store_path[512];
    snprintf(store_path, sizeof store_path, "%s/long-run", base);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_path);
    if (system(cmd)) return 1;
    tp.store_path = store_path; /* fp16, the server's default */
    er_taskset *ts;
    er_err e;
    if (er_taskset_load(&spec, 1, &tp, &ts, &e) != ER_OK) die(e.msg);
    const er_task *t = er_taskset_at(ts, 0);
    const er_config *c = er_model_config(er_task_model(t));
    const int H = c->hidden_size;
    long rss_model = status_kb("VmRSS:");
    er_ctx_params cp = er_worker_params(ts, 512, 64, 0);
    cp.n_threads = threads;
    if (S > cp.max_seq_len) die("SEQ is longer than the model's positions");
    er_worker *w;
    if (er_worker_init(ts, &cp, &w, &e) != ER_OK) die(e.msg);
    long rss_init = status_kb("VmRSS:");
    printf("model: hidden %d, intermediate %d, %d layers, %d positions; worker sized for %d "
           "tokens (batch budget 512, longest input %d), %d thread(s)\n",
           H, c->intermediate_size, c->num_layers, cp.max_seq_len, cp.max_tokens,
           cp.max_seq_len, threads);
    printf("worker scratch as allocated: %.1f MiB (%.1f KiB/token); RSS: %.0f MiB before the "
           "model, %.0f MiB with it, +%.1f MiB after worker init (pages not touched yet)\n",
           mib((double)er_worker_bytes(w)), er_worker_bytes(w) / 1024.0 / cp.max_tokens,
           rss0 / 1024.0, rss_model / 1024.0, (rss_init - rss_model) / 1024.0);
    int32_t *ids = malloc((size_t)S * sizeof *ids);
    srand(1);
    for (int i = 0; i < S; i++) ids[i] = i == 0 ? 101 : i == S - 1 ? 102 : 1000 + rand() % 28000;
    er_batch b = {1, &S, ids, NULL};
    float out[64];
    uint8_t hit;
    er_run_stats st;
    int warm_len = S < 16 ? S : 16;
    er_batch warm = {1, &warm_len, ids, NULL};
    if (er_run(w, t, &warm, 1, out, &hit, &st, &e) != ER_OK) die(e.msg);
    long rss_warm = status_kb("VmRSS:");
    double c0 = cpu_s(), t0 = now_s();
    if (er_run(w, t, &b, 0, out, &hit, &st, &e) != ER_OK) die(e.msg);
    double t_miss = now_s() - t0, c_miss = cpu_s() - c0;
    long hwm = status_kb("VmHWM:");
    printf("%d-token forward (miss, cut %d): %.1f s CPU = %.0f tokens/s (wall %.1f s; lower %.1f s, "
           "upper %.1f s wall, store write queued in %.0f ms)\n",
           S, er_taskset_cut(ts), c_miss, S / c_miss, t_miss, 1e-9 * st.lower_ns,
           1e-9 * st.upper_ns, 1e-6 * st.store_write_ns);
    printf("peak RSS %.0f MiB: +%.0f MiB over the model after a 16-token warm-up (%.0f MiB): "
           "the worker scratch touched, OpenBLAS buffers and the value queued for the store\n",
           hwm / 1024.0, (hwm - rss_warm) / 1024.0, rss_warm / 1024.0);
    er_store_flush(er_taskset_store(ts));
    c0 = cpu_s();
    t0 = now_s();
    if (er_run(w, t, &b, 0, out, &hit, &st, &e) != ER_OK) die(e.msg);
    double t_hit = now_s() - t0, c_hit = cpu_s() - c0;
    printf("%d-token hit: %.1f s CPU (wall %.1f s; store read %.0f ms): %.2fx less CPU than the "
           "miss%s\n", S, c_hit, t_hit, 1e-6 * st.store_read_ns, c_miss / c_hit,
           hit ? "" : " (NOT A HIT)");
    /* The store alone, on synthetic activations of LayerNorm-like scale (the
     * codecs' cost does not depend on the values). */
    float *x = malloc((size_t)S * H * sizeof *x), *back = malloc((size_t)S * H * sizeof *back);
    if (!x || !back) die("out of memory");
    for (size_t i = 0; i < (size_t)S * H; i++) x[i] = 2.0f * sinf(0.37f * (float)i);
    const er_dtype dts[3] = {ER_DTYPE_FP32, ER_DTYPE_FP16, ER_DTYPE_INT8};
    for (int i = 0; i < 3; i++) store_line(base, dts[i], S, H, x, back);
    free(x);
    free(back);
    free(ids);
    er_worker_free(w);
    er_taskset_free(ts);
    return 0;
}
