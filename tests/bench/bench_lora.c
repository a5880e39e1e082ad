/* LoRA adapter tasks against full tasks (make bench, via bench_lora.sh):
 *
 *   bench_lora --make BASE OUT N      N PEFT adapter dirs OUT/lora-<i> over
 *                                     BASE (r = 8 on query and value of the
 *                                     layers above the default cut, a fresh
 *                                     2-label classifier), random weights
 *   bench_lora --rss merge|unmerged DIR...   memory after loading DIRs as one
 *                                     task set and running one sequence
 *                                     through each task
 *   bench_lora --make-bn BASE OUT N   N AdapterHub Pfeiffer adapter dirs
 *                                     OUT/bn-<i> over BASE (reduction factor
 *                                     16, relu, after the FFN of the layers
 *                                     above the default cut, a 2-layer
 *                                     2-label flex classification head)
 *   bench_lora --hit BASE LORA FULL BATCH SEQ ITERS [BN]   ms per er_run on
 *                                     a store hit: the base, the adapter
 *                                     unmerged and merged, a full task (and
 *                                     the bottleneck adapter BN) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "recycle.h"

/* ---- adapter writer: safetensors of named F32 [d0, d1] tensors ---- */

typedef struct {
    char name[128];
    int d0, d1; /* d1 = 0: rank 1 */
    float *v;
} tensor;

static size_t numel(const tensor *t) { return (size_t)t->d0 * (size_t)(t->d1 ? t->d1 : 1); }

static void write_safetensors(const char *path, const tensor *t, int n) {
    char header[16384];
    size_t len = 1, off = 0;
    header[0] = '{';
    for (int i = 0; i < n; i++) {
        size_t bytes = numel(&t[i]) * 4;
        char shape[32];
        if (t[i].d1) snprintf(shape, sizeof shape, "%d,%d", t[i].d0, t[i].d1);
        else snprintf(shape, sizeof shape, "%d", t[i].d0);
        len += (size_t)snprintf(header + len, sizeof header - len,
                                "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],"
                                "\"data_offsets\":[%zu,%zu]}", i ? "," : "", t[i].name, shape,
                                off, off + bytes);
        off += bytes;
    }
    header[len++] = '}';
    while (len % 8) header[len++] = ' ';
    FILE *f = fopen(path, "wb");
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(header, 1, len, f);
    for (int i = 0; i < n; i++) fwrite(t[i].v, 4, numel(&t[i]), f);
    fclose(f);
}

static float *randn(int n, float std, unsigned *seed) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) { /* Box-Muller from rand_r */
        double u = (rand_r(seed) + 1.0) / (RAND_MAX + 2.0), w = rand_r(seed) / (RAND_MAX + 1.0);
        v[i] = (float)(std * sqrt(-2 * log(u)) * cos(6.283185307179586 * w));
    }
    return v;
}

static int make_mode(const char *base, const char *out, int n) {
    er_model *m;
    er_err e;
    if (er_model_load(base, NULL, &m, &e) != ER_OK) return fprintf(stderr, "%s\n", e.msg), 1;
    const int H = er_model_config(m)->hidden_size, L = er_model_config(m)->num_layers;
    er_model_free(m);
    for (int k = 0; k < n; k++) {
        char dir[4096], path[4200];
        snprintf(dir, sizeof dir, "%s/lora-%d", out, k);
        mkdir(dir, 0755);
        unsigned seed = 1000u + (unsigned)k;
        tensor t[64];
        int nt = 0;
        for (int l = L / 2; l < L; l++)
            for (int q = 0; q < 2; q++) {
                const char *mod = q ? "value" : "query";
                tensor *a = &t[nt++], *b = &t[nt++];
                *a = (tensor){.d0 = 8, .d1 = H, .v = randn(8 * H, 0.02f, &seed)};
                *b = (tensor){.d0 = H, .d1 = 8, .v = randn(8 * H, 0.02f, &seed)};
                snprintf(a->name, sizeof a->name, "base_model.model.bert.encoder.layer.%d."
                         "attention.self.%s.lora_A.weight", l, mod);
                snprintf(b->name, sizeof b->name, "base_model.model.bert.encoder.layer.%d."
                         "attention.self.%s.lora_B.weight", l, mod);
            }
        t[nt] = (tensor){.d0 = 2, .d1 = H, .v = randn(2 * H, 0.02f, &seed)};
        snprintf(t[nt++].name, sizeof t[0].name, "base_model.model.classifier.weight");
        t[nt] = (tensor){.d0 = 2, .d1 = 0, .v = randn(2, 0.02f, &seed)}; /* rank 1 */
        snprintf(t[nt++].name, sizeof t[0].name, "base_model.model.classifier.bias");
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        write_safetensors(path, t, nt);
        for (int i = 0; i < nt; i++) free(t[i].v);
        char layers[256] = "";
        for (int l = L / 2; l < L; l++)
            snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%d",
                     l > L / 2 ? ", " : "", l);
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        FILE *f = fopen(path, "w");
        fprintf(f, "{\"base_model_name_or_path\": \"%s\", \"peft_type\": \"LORA\", \"r\": 8, "
                "\"lora_alpha\": 16, \"bias\": \"none\", \"task_type\": \"SEQ_CLS\", "
                "\"target_modules\": [\"query\", \"value\"], \"layers_to_transform\": [%s], "
                "\"modules_to_save\": [\"classifier\", \"score\"]}\n", base, layers);
        fclose(f);
    }
    return 0;
}

/* One AdapterHub Pfeiffer adapter directory (adapter_bn.c's format). */
static void make_bn_one(const char *base, const char *dir, int H, int L, unsigned seed) {
    char path[4200];
    tensor t[64];
    int nt = 0;
    const int D = H / 16;
    for (int l = L / 2; l < L; l++) {
        static const char *const P[] = {"adapter_down.0.weight", "adapter_down.0.bias",
                                        "adapter_up.weight", "adapter_up.bias"};
        const int d0[] = {D, D, H, H}, d1[] = {H, 0, D, 0};
        for (int k = 0; k < 4; k++) {
            t[nt] = (tensor){.d0 = d0[k], .d1 = d1[k],
                             .v = randn(d0[k] * (d1[k] ? d1[k] : 1), 0.02f, &seed)};
            snprintf(t[nt++].name, sizeof t[0].name,
                     "bert.encoder.layer.%d.output.adapters.task.%s", l, P[k]);
        }
    }
    snprintf(path, sizeof path, "%s/adapter.safetensors", dir);
    write_safetensors(path, t, nt);
    for (int i = 0; i < nt; i++) free(t[i].v);
    nt = 0;
    const int hd0[] = {H, H, 2, 2}, hd1[] = {H, 0, H, 0}, hi[] = {1, 1, 4, 4};
    for (int k = 0; k < 4; k++) {
        t[nt] = (tensor){.d0 = hd0[k], .d1 = hd1[k],
                         .v = randn(hd0[k] * (hd1[k] ? hd1[k] : 1), 0.02f, &seed)};
        snprintf(t[nt++].name, sizeof t[0].name, "heads.task.%d.%s", hi[k],
                 hd1[k] ? "weight" : "bias");
    }
    snprintf(path, sizeof path, "%s/model_head.safetensors", dir);
    write_safetensors(path, t, nt);
    for (int i = 0; i < nt; i++) free(t[i].v);
    char left[256] = "";
    for (int l = 0; l < L / 2; l++)
        snprintf(left + strlen(left), sizeof left - strlen(left), "%s%d", l ? ", " : "", l);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"config\": {\"mh_adapter\": false, \"output_adapter\": true, "
            "\"reduction_factor\": 16, \"non_linearity\": \"relu\", \"original_ln_before\": true, "
            "\"original_ln_after\": true, \"residual_before_ln\": true, \"leave_out\": [%s]}, "
            "\"hidden_size\": %d, \"model_name\": \"%s\", \"model_type\": \"bert\", "
            "\"name\": \"task\", \"version\": \"adapters.1.2.0\"}\n", left, H, base);
    fclose(f);
    snprintf(path, sizeof path, "%s/head_config.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"config\": {\"head_type\": \"classification\", \"num_labels\": 2, "
            "\"layers\": 2, \"activation_function\": \"tanh\", \"use_pooler\": false, "
            "\"bias\": true}, \"name\": \"task\", \"model_type\": \"bert\"}\n");
    fclose(f);
}

static int make_bn_mode(const char *base, const char *out, int n) {
    er_model *m;
    er_err e;
    if (er_model_load(base, NULL, &m, &e) != ER_OK) return fprintf(stderr, "%s\n", e.msg), 1;
    const int H = er_model_config(m)->hidden_size, L = er_model_config(m)->num_layers;
    er_model_free(m);
    for (int k = 0; k < n; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/bn-%d", out, k);
        mkdir(dir, 0755);
        make_bn_one(base, dir, H, L, 5000u + (unsigned)k);
    }
    return 0;
}

static long status_kb(const char *file, const char *key) {
    FILE *f = fopen(file, "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) kb = atol(line + strlen(key));
    if (f) fclose(f);
    return kb;
}

static int rss_mode(bool merge, int n, char **dirs) {
    er_task_spec *specs = calloc((size_t)n, sizeof *specs);
    char (*names)[16] = calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        specs[i] = (er_task_spec){.name = names[i], .dir = dirs[i], .cut = 0};
    }
    er_taskset_params p = er_taskset_default_params();
    p.lora_merge = merge;
    er_taskset *ts;
    er_worker *w;
    er_err e;
    long before = status_kb("/proc/self/status", "VmRSS:");
    if (er_taskset_load(specs, n, &p, &ts, &e) != ER_OK) return fprintf(stderr, "%s\n", e.msg), 1;
    er_ctx_params cp = er_ctx_default_params();
    cp.max_tokens = 128;
    if (er_worker_init(ts, &cp, &w, &e) != ER_OK) return fprintf(stderr, "%s\n", e.msg), 1;
    int32_t ids[128];
    for (int i = 0; i < 128; i++) ids[i] = 1000 + i;
    int len = 128;
    er_batch b = {1, &len, ids, NULL};
    float out[1024];
    for (int i = 0; i < n; i++)
        if (er_run(w, er_taskset_at(ts, i), &b, 0, out, NULL, NULL, &e) != ER_OK)
            return fprintf(stderr, "%s\n", e.msg), 1;
    printf("  %2d task(s)%s: RSS %7.1f MiB (anonymous %6.1f, file %7.1f), PSS %7.1f MiB, "
           "%d lower stack(s); before loading %.1f MiB\n", n, merge ? " merged" : "",
           status_kb("/proc/self/status", "VmRSS:") / 1024.0,
           status_kb("/proc/self/status", "RssAnon:") / 1024.0,
           status_kb("/proc/self/status", "RssFile:") / 1024.0,
           status_kb("/proc/self/smaps_rollup", "Pss:") / 1024.0, er_taskset_lower_stacks(ts),
           before / 1024.0);
    er_worker_free(w);
    er_taskset_free(ts);
    free(specs);
    free(names);
    return 0;
}

/* One kind of task with its own store, warmed by the base. */
typedef struct {
    char dir[32];
    er_taskset *ts;
    er_worker *w;
    const er_task *t;
    double *ms;
    er_run_stats rs;
} hit_case;

static int hit_open(hit_case *h, char **argv, int mode, const er_batch *b, int iters) {
    snprintf(h->dir, sizeof h->dir, "/tmp/er_bench_lora_XXXXXX");
    if (!mkdtemp(h->dir)) return 1;
    const char *dir = mode == 4 ? argv[6] : mode == 3 ? argv[2] : argv[1];
    er_task_spec specs[2] = {{"base", argv[0], 0, ER_COMPUTE_FP32}, {"t", dir, 0, ER_COMPUTE_FP32}};
    er_taskset_params p = er_taskset_default_params();
    p.store_path = h->dir;
    p.store.dtype = ER_DTYPE_FP32;
    p.lora_merge = mode == 2;
    er_err e;
    if (er_taskset_load(specs, mode ? 2 : 1, &p, &h->ts, &e) != ER_OK ||
        er_worker_init(h->ts, NULL, &h->w, &e) != ER_OK)
        return fprintf(stderr, "%s\n", e.msg), 1;
    h->t = er_taskset_at(h->ts, mode ? 1 : 0);
    h->ms = calloc((size_t)iters, sizeof *h->ms);
    er_warm(h->w, er_taskset_at(h->ts, 0), b, 0, NULL, NULL, &e);
    er_store_flush(er_taskset_store(h->ts));
    return 0;
}

static void hit_close(hit_case *h) {
    free(h->ms);
    er_worker_free(h->w);
    er_taskset_free(h->ts);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", h->dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", h->dir);
}

/* The four kinds run in turn each iteration, so that load from elsewhere on
 * the machine falls on all of them alike. */
static int hit_mode(char **argv, bool bn) {
    const int B = atoi(argv[3]), S = atoi(argv[4]), iters = atoi(argv[5]), kinds = bn ? 5 : 4;
    const char *labels[] = {"base (full model)", "LoRA unmerged", "LoRA merged", "full task",
                            "bottleneck"};
    int *lens = malloc((size_t)B * sizeof *lens);
    int32_t *ids = malloc((size_t)B * (size_t)S * sizeof *ids);
    for (int i = 0; i < B; i++) lens[i] = S;
    for (int i = 0; i < B * S; i++) ids[i] = 1000 + (i * 7919) % 20000;
    er_batch b = {B, lens, ids, NULL};
    float *out = malloc((size_t)B * 64 * sizeof *out);
    hit_case h[5] = {0};
    for (int m = 0; m < kinds; m++)
        if (hit_open(&h[m], argv, m, &b, iters)) return 1;
    for (int i = 0; i < iters; i++)
        for (int m = 0; m < kinds; m++) {
            double t0 = now_s();
            er_run(h[m].w, h[m].t, &b, 0, out, NULL, &h[m].rs, NULL);
            h[m].ms[i] = 1e3 * (now_s() - t0);
        }
    printf("  per request on a store hit (batch %d x %d, median of %d, kinds interleaved):\n", B,
           S, iters);
    for (int m = 0; m < kinds; m++) {
        printf("    %-18s %8.1f ms  (hits %d/%d, upper layers %.1f ms, head %.2f ms)\n", labels[m],
               median(h[m].ms, iters), h[m].rs.hits, B, 1e-6 * (double)h[m].rs.upper_ns,
               1e-6 * (double)h[m].rs.head_ns);
        hit_close(&h[m]);
    }
    free(out); free(ids); free(lens);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--make")) return make_mode(argv[2], argv[3], atoi(argv[4]));
    if (argc > 3 && !strcmp(argv[1], "--rss"))
        return rss_mode(!strcmp(argv[2], "merge"), argc - 3, argv + 3);
    if (argc == 5 && !strcmp(argv[1], "--make-bn"))
        return make_bn_mode(argv[2], argv[3], atoi(argv[4]));
    if ((argc == 8 || argc == 9) && !strcmp(argv[1], "--hit")) return hit_mode(argv + 2, argc == 9);
    fprintf(stderr, "usage: see tests/bench/bench_lora.c\n");
    return 2;
}
