/* Memory of F16/BF16 checkpoints (issue 10): the resident set of a process
 * that loads one model in one compute mode and runs one 1 x 128 forward on
 * one thread.  Each run is its own process, so RSS is the model's alone.
 *
 *   bench_narrow MODEL_DIR
 *
 * BENCH_COMPUTE=fp32|bf16|int8 picks the compute mode (bench_util.h);
 * BENCH_LORA_MERGE=1 merges a LoRA adapter (MODEL_DIR an adapter
 * directory) into its base's weights.  Prints one JSON line: RSS after load, after the forward (and of it, the
 * anonymous memory and the mapped file pages), and the peak (VmHWM:
 * load-time transients included), in MiB. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "encoder.h"
#include "gemm.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bench_narrow MODEL_DIR\n");
        return 2;
    }
    er_model_params mp = bench_model_params();
    const char *merge = getenv("BENCH_LORA_MERGE");
    mp.lora_merge = merge && !strcmp(merge, "1");
    er_model *m;
    er_ctx *ctx;
    er_err err;
    er_ctx_params cp = er_ctx_default_params();
    cp.n_threads = 1;
    if (er_model_load(argv[1], &mp, &m, &err) != ER_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const double loaded = bench_status_mib("VmRSS:");
    if (er_ctx_init(m, &cp, &ctx, &err) != ER_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const er_config *c = er_model_config(m);
    enum { S = 128 };
    int len = S;
    int32_t ids[S];
    for (int t = 0; t < S; t++) /* fixed ids: the RSS does not depend on them */
        ids[t] = 1000 + (int32_t)(((unsigned)t * 7919u) % (unsigned)(c->vocab_size - 1000));
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = NULL};
    float *x = malloc((size_t)S * c->hidden_size * sizeof *x); // [S, hidden]
    float *out = malloc(er_head_out_size(m, &b) * sizeof *out);
    if (!x || !out || er_forward(m, ctx, &b, x, out, &err) != ER_OK) {
        fprintf(stderr, "forward: %s\n", err.msg);
        return 1;
    }
    printf("{\"model\":\"%s\",\"compute\":\"%s\",\"rss_load_mib\":%.0f,\"rss_forward_mib\":%.0f,"
           "\"anon_mib\":%.0f,\"file_mib\":%.0f,\"peak_mib\":%.0f,\"gemm\":\"%s\"}\n", argv[1],
           er_compute_name(er_model_compute(m)), loaded, bench_status_mib("VmRSS:"),
           bench_status_mib("RssAnon:"), bench_status_mib("RssFile:"), bench_status_mib("VmHWM:"), er_gemm_describe());
    free(x);
    free(out);
    er_ctx_free(ctx);
    er_model_free(m);
    return 0;
}
