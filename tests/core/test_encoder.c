/* The engine against the PyTorch goldens (tests/fixtures/gen.py): every
 * architecture, head, layer and input shape; layer-split and padding
 * invariance; and the loader's refusals. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check_main.h"
#include "encoder.h"
#include "er_io.h"

#define FIXTURES "tests/fixtures"

static const char *const GOLDEN_MODELS[] = {
    "bert-seqcls", "bert-tokcls", "bert-qa", "minilm-embed", "bert-embed-cls", "bert-embed-max",
    "roberta-seqcls", "xlmr-tokcls", "distilbert-seqcls", "distilbert-qa", "electra-disc",
    "electra-seqcls", "bert-seqcls-f16", "bert-seqcls-bf16", "bert-seqcls-sharded",
    "mpnet-embed", "mpnet-seqcls", "mpnet-tokcls", "mpnet-qa",
    "nomic-embed", "nomic-seqcls", "gte-embed", "gte-seqcls",
    "modernbert-seqcls", "modernbert-seqcls-mean", "modernbert-tokcls", "modernbert-embed",
    "modernbert-qa", "modernbert-long",
    "deberta-v3-seqcls", "deberta-v2-seqcls", "deberta-tokcls", "deberta-qa", "deberta-embed",
    "deberta-norel-seqcls", "deberta-v3-long",
    "bert-embed-dense", "bert-embed-lasttoken", "bert-embed-wmean", "bert-embed-sqrtlen",
    "bert-splade", "roberta-mlm", "distilbert-mlm",
    "bert-long",
    /* PEFT LoRA adapters over the fixtures above (tests/fixtures/ref_lora.py) */
    "lora-bert-seqcls", "lora-roberta-rslora", "lora-distilbert-seqcls", "lora-minilm-embed",
    "lora-mpnet-seqcls", "lora-deberta-v3-seqcls", "lora-modernbert-seqcls", "lora-nomic-embed",
    "lora-gte-seqcls",
    /* AdapterHub bottleneck adapters over them (tests/fixtures/ref_bottleneck.py) */
    "bn-bert-pfeiffer", "bn-roberta-houlsby", "bn-distilbert-lnafter", "bn-minilm-embed",
};
#define N_GOLDEN ((int)(sizeof GOLDEN_MODELS / sizeof GOLDEN_MODELS[0]))

/* The goldens the per-model tests run: all of them, or those named in
 * ER_TEST_GOLDEN (comma-separated; tests/gemm_avx2.sh reruns one model per
 * family on another backend).  A name that is not a golden fails the run. */
static int golden_pick[N_GOLDEN], n_pick;

static void pick_goldens(void) {
    const char *want = getenv("ER_TEST_GOLDEN");
    n_pick = 0;
    for (int i = 0; i < N_GOLDEN; i++) {
        const char *p = want;
        const size_t len = strlen(GOLDEN_MODELS[i]);
        bool on = !want || !*want;
        while (!on && p && *p) {
            on = strncmp(p, GOLDEN_MODELS[i], len) == 0 && (p[len] == ',' || p[len] == '\0');
            p = strchr(p, ',');
            p = p ? p + 1 : NULL;
        }
        if (on) golden_pick[n_pick++] = i;
    }
    int named = want && *want ? 1 : 0;
    for (const char *p = want; named && (p = strchr(p, ',')); p++) named++;
    if (named && named != n_pick) {
        fprintf(stderr, "ER_TEST_GOLDEN=%s: %d names, %d of them goldens\n", want, named, n_pick);
        exit(2);
    }
}

/* Every golden in the fixtures folder is one GOLDEN_MODELS runs: a golden
 * added without a line there, or an empty folder, fails here. */
START_TEST(every_golden_is_listed) {
    DIR *d = opendir(FIXTURES "/golden");
    ck_assert_ptr_nonnull(d);
    int found = 0;
    for (const struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        int listed = 0;
        for (int i = 0; i < N_GOLDEN && !listed; i++)
            listed = strlen(GOLDEN_MODELS[i]) == n - 5 &&
                     strncmp(GOLDEN_MODELS[i], e->d_name, n - 5) == 0;
        ck_assert_msg(listed, "golden %s is not in GOLDEN_MODELS", e->d_name);
        found++;
    }
    closedir(d);
    ck_assert_int_gt(found, 0);
    ck_assert_int_eq(found, N_GOLDEN);
}
END_TEST

/* One golden case as a packed batch (real tokens only, from attention_mask). */
typedef struct {
    er_batch b;
    int lens[64];
    int32_t ids[4096], types[4096];
    int n_tokens;
} packed;

static void pack_case(const json_t *c, packed *p) {
    const json_t *ids = json_object_get(c, "input_ids");
    const json_t *types = json_object_get(c, "token_type_ids");
    const json_t *mask = json_object_get(c, "attention_mask");
    int t = 0;
    size_t n = json_array_size(ids);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(n, 64);
    for (size_t s = 0; s < n; s++) {
        const json_t *row = json_array_get(ids, s);
        int len = 0;
        for (size_t i = 0; i < json_array_size(row); i++) {
            if (mask && json_integer_value(json_array_get(json_array_get(mask, s), i)) == 0) break;
            ck_assert_int_lt(t, 4096);
            p->ids[t] = (int32_t)json_integer_value(json_array_get(row, i));
            p->types[t] = types ? (int32_t)json_integer_value(json_array_get(json_array_get(types, s), i)) : 0;
            t++;
            len++;
        }
        p->lens[s] = len;
    }
    ck_assert_int_gt(t, 0);
    p->n_tokens = t;
    p->b = (er_batch){.n_seqs = (int)n, .seq_len = p->lens, .ids = p->ids,
                      .type_ids = (types && !json_is_null(types)) ? p->types : NULL};
}

/* Flattens nested JSON number arrays in order. */
static size_t flatten(const json_t *v, float *out, size_t cap, size_t at) {
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) at = flatten(json_array_get(v, i), out, cap, at);
        return at;
    }
    ck_assert(json_is_number(v));
    ck_assert_uint_lt(at, cap);
    out[at] = (float)json_number_value(v);
    return at + 1;
}

/* max |a-b| / max(1, |b|): absolute for small values, relative for large */
static double max_err(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(e <= worst)) worst = e; /* NaN propagates as a failure */
    }
    return worst;
}

static json_t *load_golden(const char *name) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "/golden/%s.json", name);
    json_error_t jerr;
    json_t *g = json_load_file(path, 0, &jerr);
    ck_assert_msg(g != NULL, "%s: %s", path, jerr.text);
    return g;
}

static er_model *load_model(const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, FIXTURES "/models/%s", name);
    er_model *m = NULL;
    er_err err;
    ck_assert_msg(er_model_load(dir, NULL, &m, &err) == ER_OK, "%s", err.msg);
    return m;
}

/* The model `name` and a ctx for it (cp NULL: the default params). */
static er_model *load_model_ctx(const char *name, const er_ctx_params *cp, er_ctx **ctx) {
    er_model *m = load_model(name);
    er_err err;
    ck_assert_msg(er_ctx_init(m, cp, ctx, &err) == ER_OK, "%s", err.msg);
    return m;
}

/* What the invariance tests run on: the model `name`, its golden's padded
 * batch (case 2: three sequences of different lengths) and a ctx with
 * `n_threads`. */
typedef struct {
    packed p;
    er_model *m;
    er_ctx *ctx;
    size_t bytes; /* of hidden states [n_tokens, hidden] */
} padded_case;

static padded_case *padded_open(const char *name, int n_threads) {
    padded_case *c = malloc(sizeof *c);
    json_t *g = load_golden(name);
    pack_case(json_array_get(json_object_get(g, "cases"), 2), &c->p);
    json_decref(g);
    er_ctx_params cp = er_ctx_default_params();
    cp.n_threads = n_threads;
    c->m = load_model_ctx(name, &cp, &c->ctx);
    c->bytes = (size_t)c->p.n_tokens * er_model_config(c->m)->hidden_size * sizeof(float);
    return c;
}

static void padded_close(padded_case *c) {
    er_ctx_free(c->ctx);
    er_model_free(c->m);
    free(c);
}

/* Every layer's hidden states and the head's output, every case. */
START_TEST(golden_parity) {
    const char *name = GOLDEN_MODELS[golden_pick[_i]];
    json_t *g = load_golden(name);
    er_ctx *ctx;
    er_ctx_params cp = er_ctx_default_params();
    cp.max_seq_len = cp.max_tokens; /* long goldens: modernbert-long has 1100 tokens */
    er_model *m = load_model_ctx(name, &cp, &ctx);
    const er_config *c = er_model_config(m);
    const int H = c->hidden_size, L = c->num_layers;
    ck_assert_int_eq(L, (int)json_integer_value(json_object_get(g, "num_layers")));
    er_err err;
    float *x = malloc(4096 * (size_t)H * sizeof *x);    // [T, H]
    float *want = malloc(4096 * (size_t)H * sizeof *want);
    float *head = malloc(4096 * (size_t)H * sizeof *head);
    packed *p = malloc(sizeof *p);
    double worst_hidden = 0, worst_head = 0;
    int checked = 0;
    size_t ci;
    json_t *cs;
    json_array_foreach(json_object_get(g, "cases"), ci, cs) {
        const char *case_name = json_string_value(json_object_get(cs, "name"));
        pack_case(cs, p);
        const json_t *hs = json_object_get(cs, "hidden_states");
        ck_assert_int_eq((int)json_array_size(hs), L + 1);
        ck_assert_int_eq(er_embed(m, ctx, &p->b, x, &err), ER_OK);
        for (int k = 0; k <= L; k++) {
            if (k > 0) ck_assert_int_eq(er_layers(m, ctx, &p->b, k - 1, k, x, &err), ER_OK);
            size_t n = flatten(json_array_get(hs, (size_t)k), want, 4096 * (size_t)H, 0);
            ck_assert_uint_eq(n, (size_t)p->n_tokens * H);
            double e = max_err(x, want, n);
            ck_assert_msg(e <= 1e-4, "%s/%s layer %d: error %g", name, case_name, k, e);
            worst_hidden = fmax(worst_hidden, e);
        }
        ck_assert_int_eq(er_head(m, ctx, &p->b, x, head, &err), ER_OK);
        const json_t *gh = json_object_get(cs, "head");
        const char *type = json_string_value(json_object_get(gh, "type"));
        ck_assert_str_eq(type, er_head_type_name(c->head));
        size_t n = er_head_out_size(m, &p->b);
        if (c->head == ER_HEAD_QUESTION_ANSWERING) { /* ours: [T, 2] interleaved */
            float *st = malloc(n * sizeof *st);
            size_t ns = flatten(json_object_get(gh, "start_logits"), st, n, 0);
            ck_assert_uint_eq(flatten(json_object_get(gh, "end_logits"), st, n, ns), n);
            ck_assert_uint_eq(2 * ns, n);
            for (size_t t = 0; t < ns; t++) {
                want[2 * t] = st[t];
                want[2 * t + 1] = st[ns + t];
            }
            free(st);
        } else {
            const char *key = c->head == ER_HEAD_EMBEDDING || c->head == ER_HEAD_SPARSE_EMBEDDING
                                  ? "embeddings" : "logits";
            ck_assert_uint_eq(flatten(json_object_get(gh, key), want, 4096 * (size_t)H, 0), n);
        }
        double e = max_err(head, want, n);
        ck_assert_msg(e <= 1e-4, "%s/%s head: error %g", name, case_name, e);
        worst_head = fmax(worst_head, e);
        checked++;
    }
    ck_assert_msg(checked > 0, "%s: the golden holds no cases", name);
    fprintf(stderr, "  golden %-20s worst error: hidden states %.1e, head %.1e (bound 1e-4)\n",
            name, worst_hidden, worst_head);
    free(x); free(want); free(head); free(p);
    er_ctx_free(ctx);
    er_model_free(m);
    json_decref(g);
}
END_TEST

/* [0,k) then [k,L) equals [0,L) bit for bit, for every k. */
START_TEST(layer_split_is_exact) {
    const char *name = GOLDEN_MODELS[golden_pick[_i]];
    padded_case *c = padded_open(name, 1);
    const er_batch *b = &c->p.b;
    const int L = er_model_config(c->m)->num_layers;
    er_err err;
    float *full = malloc(c->bytes), *split = malloc(c->bytes), *emb = malloc(c->bytes); // [T, H]
    ck_assert_int_eq(er_embed(c->m, c->ctx, b, emb, &err), ER_OK);
    memcpy(full, emb, c->bytes);
    ck_assert_int_eq(er_layers(c->m, c->ctx, b, 0, L, full, &err), ER_OK);
    for (int k = 0; k <= L; k++) {
        memcpy(split, emb, c->bytes);
        ck_assert_int_eq(er_layers(c->m, c->ctx, b, 0, k, split, &err), ER_OK);
        ck_assert_int_eq(er_layers(c->m, c->ctx, b, k, L, split, &err), ER_OK);
        ck_assert_msg(memcmp(full, split, c->bytes) == 0, "%s: split at %d differs", name, k);
    }
    free(full); free(split); free(emb);
    padded_close(c);
}
END_TEST

/* The intra-op parallel-for team changes who computes a row, never what:
 * results with 1 and 3 threads are bit-identical. */
START_TEST(threads_do_not_change_results) {
    const char *name = GOLDEN_MODELS[golden_pick[_i]];
    padded_case *one = padded_open(name, 1), *three = padded_open(name, 3);
    const er_batch *b = &one->p.b;
    const size_t out_bytes = er_head_out_size(one->m, b) * sizeof(float);
    float *x1 = malloc(one->bytes), *x3 = malloc(one->bytes); // [T, H]
    float *o1 = malloc(out_bytes), *o3 = malloc(out_bytes);
    er_err err;
    ck_assert_int_eq(er_forward(one->m, one->ctx, b, x1, o1, &err), ER_OK);
    ck_assert_int_eq(er_forward(three->m, three->ctx, &three->p.b, x3, o3, &err), ER_OK);
    ck_assert_msg(memcmp(x1, x3, one->bytes) == 0, "%s: hidden states differ with 3 threads", name);
    ck_assert_msg(memcmp(o1, o3, out_bytes) == 0, "%s: head output differs with 3 threads", name);
    free(x1); free(x3); free(o1); free(o3);
    padded_close(one);
    padded_close(three);
}
END_TEST

/* A sequence's result does not depend on what else is in its batch. */
START_TEST(batch_composition_invariance) {
    er_ctx *ctx;
    er_model *m = load_model_ctx("bert-tokcls", NULL, &ctx);
    const er_config *c = er_model_config(m);
    er_err err;
    int lens[3] = {7, 19, 3};
    int32_t ids[29];
    for (int i = 0; i < 29; i++) ids[i] = (int32_t)((i * 37 + 5) % c->vocab_size);
    er_batch all = {.n_seqs = 3, .seq_len = lens, .ids = ids, .type_ids = NULL};
    const int H = c->hidden_size, W = er_model_head_width(m);
    float x[29 * 64], out[29 * 16], x1[29 * 64], out1[29 * 16];
    ck_assert_int_eq(er_forward(m, ctx, &all, x, out, &err), ER_OK);
    int off = 0;
    for (int s = 0; s < 3; s++) {
        er_batch one = {.n_seqs = 1, .seq_len = &lens[s], .ids = ids + off, .type_ids = NULL};
        ck_assert_int_eq(er_forward(m, ctx, &one, x1, out1, &err), ER_OK);
        double e = max_err(out1, out + (size_t)off * W, (size_t)lens[s] * W);
        ck_assert_msg(e <= 1e-5, "sequence %d alone vs in a batch: %g", s, e);
        e = max_err(x1, x + (size_t)off * H, (size_t)lens[s] * H);
        ck_assert_msg(e <= 1e-5, "sequence %d hidden alone vs in a batch: %g", s, e);
        off += lens[s];
    }
    er_ctx_free(ctx);
    er_model_free(m);
}
END_TEST

START_TEST(batch_validation) {
    er_ctx_params cp = {.max_tokens = 64, .max_seqs = 2, .max_seq_len = 32};
    er_ctx *ctx;
    er_model *m = load_model_ctx("bert-seqcls", &cp, &ctx);
    const er_config *c = er_model_config(m);
    er_err err;
    float x[128 * 48], out[16];
    int32_t ids[128] = {0}, types[128] = {0};
    int len = 4;
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = types};
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_OK);
    ids[2] = c->vocab_size;
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "vocabulary"));
    ids[2] = -1;
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_ERR_INVALID_ARG);
    ids[2] = 0;
    types[1] = 2;
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "token type"));
    types[1] = 0;
    len = 33; /* over the ctx's 32 */
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_ERR_CAPACITY);
    len = 0;
    ck_assert_int_eq(er_forward(m, ctx, &b, x, out, &err), ER_ERR_CAPACITY);
    int lens3[3] = {1, 1, 1};
    er_batch three = {.n_seqs = 3, .seq_len = lens3, .ids = ids, .type_ids = NULL};
    ck_assert_int_eq(er_forward(m, ctx, &three, x, out, &err), ER_ERR_CAPACITY);
    len = 4;
    ck_assert_int_eq(er_layers(m, ctx, &b, 2, 1, x, &err), ER_ERR_INVALID_ARG);
    ck_assert_int_eq(er_layers(m, ctx, &b, 0, c->num_layers + 1, x, &err), ER_ERR_INVALID_ARG);
    er_ctx_params bad = {.max_tokens = 0, .max_seqs = 1, .max_seq_len = 1};
    er_ctx *none = NULL;
    ck_assert_int_eq(er_ctx_init(m, &bad, &none, &err), ER_ERR_INVALID_ARG);
    ck_assert_ptr_null(none);
    er_ctx_free(ctx);
    er_model_free(m);
}
END_TEST

/* skip_below_layer: the upper part of a model runs alone, bit-identically. */
START_TEST(skip_lower_layers) {
    er_model *full = load_model("bert-seqcls"), *upper = NULL;
    er_model_params mp = er_model_default_params();
    mp.skip_below_layer = 2;
    er_err err;
    ck_assert_int_eq(er_model_load(FIXTURES "/models/bert-seqcls", &mp, &upper, &err), ER_OK);
    const int L = er_model_config(full)->num_layers;
    er_ctx *ctx;
    ck_assert_int_eq(er_ctx_init(full, NULL, &ctx, &err), ER_OK);
    int len = 6;
    int32_t ids[6] = {1, 5, 9, 11, 30, 2};
    er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = NULL};
    float x[6 * 48], y[6 * 48], scratch[6 * 48], o1[3], o2[3];
    ck_assert_int_eq(er_forward(full, ctx, &b, x, o1, &err), ER_OK);
    ck_assert_int_eq(er_embed(full, ctx, &b, y, &err), ER_OK);
    ck_assert_int_eq(er_layers(full, ctx, &b, 0, 2, y, &err), ER_OK);
    ck_assert_int_eq(er_layers(upper, ctx, &b, 2, L, y, &err), ER_OK);
    ck_assert_int_eq(er_head(upper, ctx, &b, y, o2, &err), ER_OK);
    ck_assert(memcmp(o1, o2, sizeof o1) == 0);
    ck_assert_int_eq(er_embed(upper, ctx, &b, scratch, &err), ER_ERR_INVALID_ARG);
    ck_assert_int_eq(er_layers(upper, ctx, &b, 1, L, scratch, &err), ER_ERR_INVALID_ARG);
    er_ctx_free(ctx);
    er_model_free(full);
    er_model_free(upper);
}
END_TEST

/* Writes a model directory from a fixture with one file replaced. */
static void variant_dir(char *dir, size_t cap, const char *from, const char *config_text) {
    snprintf(dir, cap, "/tmp/erserve-model-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r " FIXTURES "/models/%s/. %s/", from, dir);
    ck_assert_int_eq(system(cmd), 0);
    if (config_text) {
        char path[600];
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "w");
        fputs(config_text, f);
        fclose(f);
    }
}

static void remove_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(loader_refusals) {
    er_model *m = NULL;
    er_err err;
    ck_assert_int_eq(er_model_load(FIXTURES "/models/bert-bin-only", NULL, &m, &err), ER_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "pytorch_model.bin"));
    ck_assert_ptr_nonnull(strstr(err.msg, "save_file"));
    ck_assert_ptr_null(m);
    ck_assert_int_eq(er_model_load("/nonexistent-model", NULL, &m, &err), ER_ERR_NOT_FOUND);
    char dir[64];
    /* the config claims a different hidden size than the tensors have */
    char *text;
    size_t len;
    ck_assert_int_eq(er_read_file(FIXTURES "/models/bert-seqcls/config.json", 1 << 20, &text, &len, &err), ER_OK);
    json_t *cfg = json_loads(text, 0, NULL);
    free(text);
    json_object_set_new(cfg, "intermediate_size", json_integer(64));
    char *changed = json_dumps(cfg, 0);
    variant_dir(dir, sizeof dir, "bert-seqcls", changed);
    ck_assert_int_eq(er_model_load(dir, NULL, &m, &err), ER_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.msg, "intermediate.dense.weight"));
    remove_dir(dir);
    free(changed);
    /* an unsupported architecture, refused by name */
    json_object_set_new(cfg, "intermediate_size", json_integer(128));
    json_object_set_new(cfg, "architectures", json_pack("[s]", "BertForNextSentencePrediction"));
    changed = json_dumps(cfg, 0);
    variant_dir(dir, sizeof dir, "bert-seqcls", changed);
    ck_assert_int_eq(er_model_load(dir, NULL, &m, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "BertForNextSentencePrediction"));
    remove_dir(dir);
    free(changed);
    /* more labels than the classifier has rows */
    json_object_set_new(cfg, "architectures", json_pack("[s]", "BertForSequenceClassification"));
    json_object_set_new(cfg, "id2label", json_pack("{s:s,s:s,s:s,s:s}", "0", "a", "1", "b", "2", "c", "3", "d"));
    changed = json_dumps(cfg, 0);
    variant_dir(dir, sizeof dir, "bert-seqcls", changed);
    ck_assert_int_eq(er_model_load(dir, NULL, &m, &err), ER_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.msg, "classifier.weight"));
    /* a truncated weights file */
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_int_eq(truncate(path, 1000), 0);
    ck_assert_int_ne(er_model_load(dir, NULL, &m, &err), ER_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "model.safetensors"));
    remove_dir(dir);
    free(changed);
    json_decref(cfg);
    /* a tensor missing from a shard set */
    variant_dir(dir, sizeof dir, "bert-seqcls-sharded", NULL);
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(er_model_load(dir, NULL, &m, &err), ER_ERR_IO);
    remove_dir(dir);
    er_model_free(NULL);
}
END_TEST

static Suite *encoder_suite(void) {
    Suite *s = suite_create("encoder");
    TCase *g = tcase_create("golden");
    tcase_set_timeout(g, 120);
    tcase_add_test(g, every_golden_is_listed);
    pick_goldens();
    tcase_add_loop_test(g, golden_parity, 0, n_pick);
    tcase_add_loop_test(g, layer_split_is_exact, 0, n_pick);
    tcase_add_loop_test(g, threads_do_not_change_results, 0, n_pick);
    suite_add_tcase(s, g);
    TCase *b = tcase_create("batches");
    tcase_add_test(b, batch_composition_invariance);
    tcase_add_test(b, batch_validation);
    tcase_add_test(b, skip_lower_layers);
    suite_add_tcase(s, b);
    TCase *l = tcase_create("loader");
    tcase_add_test(l, loader_refusals);
    suite_add_tcase(s, l);
    return s;
}

ER_CHECK_MAIN(encoder_suite)
