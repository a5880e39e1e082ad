/* Attention-alone benchmark: er_attention (core/attention.c: QK^T, online
 * softmax, P.V per sequence and head) on random q, k, v of a model's shape,
 * as one encoder layer calls it (separate projections: row stride hidden).
 *
 *   bench_attention MODEL_DIR BATCH SEQ THREADS ITERS
 *
 * Prints one JSON line: CPU and wall ms per layer (medians over ITERS after
 * one warm-up), GFLOP/s on CPU time (4 * BATCH * SEQ^2 * hidden: the two
 * GEMMs' multiply-adds, softmax not counted) and a hash of the output's bits,
 * so two builds can be checked bit for bit on the same inputs.
 *
 *   sh tests/bench/bench_attention.sh   (1x128 and 8x128 on the bench model) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "encoder_internal.h"
#include "model_internal.h"

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f) * 4.0f;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL_DIR BATCH SEQ THREADS ITERS\n", argv[0]);
        return 2;
    }
    const int batch = atoi(argv[2]), seq = atoi(argv[3]), threads = atoi(argv[4]);
    const int iters = atoi(argv[5]);
    if (batch < 1 || seq < 1 || threads < 1 || iters < 1 || iters > 1000) {
        fprintf(stderr, "BATCH, SEQ, THREADS >= 1 and ITERS in 1..1000\n");
        return 2;
    }
    er_model *m = NULL;
    er_err err = {0};
    er_model_params mp = bench_model_params();
    if (er_model_load(argv[1], &mp, &m, &err) != ER_OK) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 1;
    }
    const er_config *c = &m->cfg;
    const int hid = c->hidden_size, nh = c->num_heads, T = batch * seq;
    er_ctx_params cp = er_ctx_default_params();
    cp.max_tokens = T;
    cp.n_threads = threads;
    er_ctx *x = NULL;
    if (er_ctx_init(m, &cp, &x, &err) != ER_OK) {
        fprintf(stderr, "ctx: %s\n", err.msg);
        return 1;
    }
    int *lens = malloc(sizeof(int) * (size_t)batch);
    int32_t *ids = calloc((size_t)T, sizeof *ids);
    float *qkv = malloc(sizeof(float) * 3 * (size_t)T * hid); // [3, T, hidden]
    float *out = malloc(sizeof(float) * (size_t)T * hid);     // [T, hidden]
    unsigned seed = 7;
    for (size_t i = 0; i < 3 * (size_t)T * hid; i++) qkv[i] = frand(&seed);
    for (int s = 0; s < batch; s++) lens[s] = seq;
    er_batch b = {.n_seqs = batch, .seq_len = lens, .ids = ids, .type_ids = NULL};
    er_att_args a = {.q = qkv, .k = qkv + (size_t)T * hid, .v = qkv + 2 * (size_t)T * hid,
                     .ld = hid, .out = out, .n_heads = nh, .head_dim = hid / nh,
                     .scale = 0.125f, .bias = NULL};
    er_attention(x, &b, &a); /* warm-up */
    double cpu[1000], wall[1000];
    for (int it = 0; it < iters; it++) {
        const double c0 = process_cpu_s(), w0 = now_s();
        er_attention(x, &b, &a);
        cpu[it] = 1e3 * (process_cpu_s() - c0);
        wall[it] = 1e3 * (now_s() - w0);
    }
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the output's bytes */
    const unsigned char *p = (const unsigned char *)out;
    for (size_t i = 0; i < sizeof(float) * (size_t)T * hid; i++) h = (h ^ p[i]) * 1099511628211ull;
    const double cpu_ms = median(cpu, iters), wall_ms = median(wall, iters);
    const double gflop = 4.0 * batch * (double)seq * seq * hid * 1e-9;
    printf("{\"bench\":\"attention\",\"batch\":%d,\"seq\":%d,\"threads\":%d,\"iters\":%d,"
           "\"cpu_ms\":%.3f,\"wall_ms\":%.3f,\"gflops_cpu\":%.1f,\"hash\":\"%016llx\"}\n",
           batch, seq, threads, iters, cpu_ms, wall_ms, gflop / (cpu_ms * 1e-3),
           (unsigned long long)h);
    free(lens); free(ids); free(qkv); free(out);
    er_ctx_free(x);
    er_model_free(m);
    return 0;
}
