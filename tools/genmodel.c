/* erserve-genmodel: writes a Hugging Face model directory with random
 * weights, deterministically from a seed, for the demo and the benchmarks
 * (real weights cannot be downloaded on the machines erserve is built on).
 *
 *   erserve-genmodel --out DIR --preset bert-base|minilm-l6|mpnet-base|tiny|
 *                                       nomic-embed-text-v1.5|gte-base-en-v1.5|modernbert-base|
 *                                       deberta-v3-base
 *                    [--arch bert|roberta|xlm-roberta|mpnet|nomic_bert|gte|modernbert|deberta-v2]
 *                    [--vocab N] [--head seqcls|tokcls|qa|embedding|sparse] [--num-labels N]
 *                    [--dense N] [--max-positions N] [--seed N]
 *                    [--upper-seed N --upper-from K] [--dtype fp32|fp16|bf16] [--version]
 *
 * The encoder comes from --seed; with --upper-seed, layers >= --upper-from
 * and the head come from that seed instead, so several heads generated with
 * one --seed share their lower stack exactly (as tasks fine-tuned with frozen
 * lower layers do).  The head always takes its own stream.  --num-labels gives
 * a seqcls head other than the 2 sentiment labels (LABEL_0, ...; 1 is a
 * cross-encoder / reranker's single relevance logit).
 *
 * --arch roberta|xlm-roberta writes RoBERTa's layout (what core/arch_bert.c
 * loads): prefix "roberta.", padding_idx 1 so two more positions, one token
 * type, RobertaClassificationHead; --vocab matches a real tokenizer's size.
 * --arch mpnet writes MPNet's (core/arch_mpnet.c): prefix "mpnet.", the same
 * positions as RoBERTa, no token types, attention.attn.{q,k,v,o} and
 * attention.LayerNorm, encoder.relative_attention_bias [32, heads],
 * MPNetClassificationHead; --preset mpnet-base is all-mpnet-base-v2's shape.
 * --arch nomic_bert writes nomic-embed-text-v1.5's layout and config (fused
 * bias-free Wqkv, SwiGLU fc11/fc12/fc2, emb_ln, rotary base 1000, mean
 * pooling + Normalize), --arch gte gte-base-en-v1.5's (qkv_proj, up_gate_proj,
 * rope_theta 500000, no token types, CLS pooling); the presets of the same
 * names give their shapes (8192 positions: rotary, no position table).
 * --arch modernbert writes ModernBERT's layout (core/arch_modernbert.c):
 * fused Wqkv, GeGLU Wi, no biases and bias-free norms as ModernBERT-base,
 * global attention every 3 layers, local window 128, ModernBertPredictionHead
 * under the classifiers; the preset modernbert-base has its sizes.
 * --arch deberta-v2 (implied by --preset deberta-v3-base) writes
 * microsoft/deberta-v3-base's layout and config (what core/arch_deberta.c
 * loads): prefix "deberta.", no absolute positions or token types, relative
 * embeddings for 256 log buckets shared with query/key_proj (c2p and p2c),
 * max_relative_positions -1 (= max_position_embeddings), ContextPooler.
 * --dtype fp16|bf16 stores model.safetensors in that dtype (each random
 * value rounded to nearest even), as a checkpoint saved after torch's
 * .half() / .bfloat16(); sentence-transformers Dense modules stay F32. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "er_log.h"
#include "er_util.h"

typedef struct {
    const char *name;
    int hidden, layers, heads, inter, vocab, positions;
} preset;

static const preset PRESETS[] = {
    {"bert-base", 768, 12, 12, 3072, 30522, 512},
    {"minilm-l6", 384, 6, 12, 1536, 30522, 512},
    {"mpnet-base", 768, 12, 12, 3072, 30527, 512},
    {"tiny", 64, 4, 4, 128, 30522, 512},
    {"nomic-embed-text-v1.5", 768, 12, 12, 3072, 30528, 8192},
    {"gte-base-en-v1.5", 768, 12, 12, 3072, 30528, 8192},
    {"modernbert-base", 768, 22, 12, 1152, 50368, 8192},
    {"deberta-v3-base", 768, 12, 12, 3072, 128100, 512},
};

/* What differs between BERT, RoBERTa-style and MPNet checkpoints. */
typedef struct {
    const char *name, *model_type, *class_prefix, *tensor_prefix;
    int pad_id, extra_positions, type_vocab; /* type_vocab 0: no token type table */
    const char *attn[5];  /* query, key, value, output, LayerNorm module names */
    int rel_buckets;      /* > 0: encoder.relative_attention_bias [buckets, heads] */
    bool dense_head;      /* seqcls: classifier.dense + out_proj (else pooler + classifier) */
    bool deberta;         /* DeBERTa-v3's tensors and config (add_deberta_encoder) */
} arch;

#define BERT_ATTN {"attention.self.query", "attention.self.key", "attention.self.value", \
                   "attention.output.dense", "attention.output.LayerNorm"}

static const arch ARCHES[] = {
    {"bert", "bert", "Bert", "bert.", 0, 0, 2, BERT_ATTN, 0, false, false},
    {"roberta", "roberta", "Roberta", "roberta.", 1, 2, 1, BERT_ATTN, 0, true, false},
    {"xlm-roberta", "xlm-roberta", "XLMRoberta", "roberta.", 1, 2, 1, BERT_ATTN, 0, true, false},
    {"mpnet", "mpnet", "MPNet", "mpnet.", 1, 2, 0,
     {"attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o",
      "attention.LayerNorm"}, 32, true, false},
    {"nomic_bert", "nomic_bert", "NomicBert", "bert.", 0, 0, 2, BERT_ATTN, 0, false, false},
    {"gte", "new", "New", "new.", 0, 0, 0, BERT_ATTN, 0, false, false},
    {"modernbert", "modernbert", "ModernBert", "model.", 50283, 0, 0, BERT_ATTN, 0, false, false},
    {"deberta-v2", "deberta-v2", "DebertaV2", "deberta.", 0, 0, 0, BERT_ATTN, 0, false, true},
};

#define DEBERTA_BUCKETS 256 /* position_buckets of deberta-v3-base */

static const char *const NER_LABELS[] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG",
                                         "B-LOC", "I-LOC", "B-MISC", "I-MISC"};
static const char *const SENTIMENT_LABELS[] = {"negative", "positive"};

typedef struct {
    uint64_t s;
} rng;

static uint64_t next_u64(rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-a, a]: std a/sqrt(3). */
static float uniform(rng *r, float a) {
    return a * (2.0f * (float)((next_u64(r) >> 40) * (1.0 / 16777216.0)) - 1.0f);
}

typedef struct {
    char name[128];
    int64_t rows, cols; /* cols 0 = rank 1 */
    float *data;
} tensor;

typedef struct {
    tensor *t;
    int n, cap;
} tensor_list;

typedef enum { FILL_RANDOM, FILL_ONES, FILL_ZEROS } fill_kind;

static float *add(tensor_list *l, const char *name, int64_t rows, int64_t cols, fill_kind fill,
                  rng *r, float scale) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->t = realloc(l->t, (size_t)l->cap * sizeof *l->t);
        if (!l->t) { er_log(ER_LOG_ERROR, "out of memory"); exit(1); }
    }
    tensor *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    size_t n = (size_t)rows * (size_t)(cols ? cols : 1);
    t->data = malloc(n * sizeof(float));
    if (!t->data) { er_log(ER_LOG_ERROR, "out of memory"); exit(1); }
    for (size_t i = 0; i < n; i++)
        t->data[i] = fill == FILL_ONES ? 1.0f : fill == FILL_ZEROS ? 0.0f : uniform(r, scale);
    return t->data;
}

static void linear(tensor_list *l, const char *name, int out, int in, rng *r) {
    char k[128];
    float a = sqrtf(3.0f / (float)in); /* keeps activations O(1) through the stack */
    snprintf(k, sizeof k, "%s.weight", name);
    add(l, k, out, in, FILL_RANDOM, r, a);
    snprintf(k, sizeof k, "%s.bias", name);
    add(l, k, out, 0, FILL_RANDOM, r, 0.02f);
}

static void layernorm(tensor_list *l, const char *name, int d) {
    char k[128];
    snprintf(k, sizeof k, "%s.weight", name);
    add(l, k, d, 0, FILL_ONES, NULL, 0);
    snprintf(k, sizeof k, "%s.bias", name);
    add(l, k, d, 0, FILL_ZEROS, NULL, 0);
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const tensor *)a)->name, ((const tensor *)b)->name);
}

/* How the tensors are stored: F32, or rounded to nearest even as F16 or
 * BF16 (a half-precision checkpoint as torch's .half() / .bfloat16() saves
 * it; the values are the F32 ones rounded once). */
typedef enum { STORE_F32, STORE_F16, STORE_BF16 } store_dtype;
static const char *const STORE_NAMES[] = {"F32", "F16", "BF16"};

static uint16_t f32_to_bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static uint16_t f32_to_f16(float v) {
    _Float16 h = (_Float16)v; /* the compiler's conversion: nearest even, subnormals kept */
    uint16_t u;
    memcpy(&u, &h, sizeof u);
    return u;
}

/* n floats of data written as dt; 0 on success. */
static int write_values(FILE *f, const float *data, size_t n, store_dtype dt) {
    if (dt == STORE_F32) return fwrite(data, sizeof(float), n, f) == n ? 0 : -1;
    uint16_t buf[4096];
    for (size_t i = 0; i < n;) {
        size_t k = n - i < 4096 ? n - i : 4096;
        for (size_t j = 0; j < k; j++)
            buf[j] = dt == STORE_F16 ? f32_to_f16(data[i + j]) : f32_to_bf16(data[i + j]);
        if (fwrite(buf, sizeof *buf, k, f) != k) return -1;
        i += k;
    }
    return 0;
}

static int write_safetensors(const char *path, tensor_list *l, store_dtype dt) {
    const unsigned width = dt == STORE_F32 ? 4u : 2u;
    qsort(l->t, (size_t)l->n, sizeof *l->t, cmp_tensor);
    size_t cap = 256 + (size_t)l->n * 256, len = 0;
    char *h = malloc(cap);
    if (!h) return -1;
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < l->n; i++) {
        tensor *t = &l->t[i];
        uint64_t bytes = (uint64_t)t->rows * (uint64_t)(t->cols ? t->cols : 1) * width;
        if (t->cols)
            len += (size_t)snprintf(h + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],"
                                    "\"data_offsets\":[%llu,%llu]}", t->name, STORE_NAMES[dt],
                                    (long long)t->rows, (long long)t->cols,
                                    (unsigned long long)off, (unsigned long long)(off + bytes));
        else
            len += (size_t)snprintf(h + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],"
                                    "\"data_offsets\":[%llu,%llu]}", t->name, STORE_NAMES[dt],
                                    (long long)t->rows, (unsigned long long)off,
                                    (unsigned long long)(off + bytes));
        off += bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' '; /* data section 8-byte aligned, as the reference writer does */
    FILE *f = fopen(path, "wb");
    if (!f) { free(h); return -1; }
    uint8_t hl[8];
    for (int i = 0; i < 8; i++) hl[i] = (uint8_t)((uint64_t)len >> (8 * i));
    int ok = fwrite(hl, 1, 8, f) == 8 && fwrite(h, 1, len, f) == len;
    for (int i = 0; ok && i < l->n; i++) {
        tensor *t = &l->t[i];
        size_t n = (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
        ok = write_values(f, t->data, n, dt) == 0; /* little-endian hosts only */
    }
    free(h);
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static void labels_json(char *buf, size_t cap, const char *const *labels, int n) {
    size_t len = (size_t)snprintf(buf, cap, "  \"id2label\": {");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\"%d\": \"%s\"", i ? ", " : "", i, labels[i]);
    len += (size_t)snprintf(buf + len, cap - len, "},\n  \"label2id\": {");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\": %d", i ? ", " : "", labels[i], i);
    snprintf(buf + len, cap - len, "},\n");
}

/* The head kinds; the numbers also seed the head's own random stream. */
/* sparse: *ForMaskedLM, served as a SPLADE sparse embedding (decoder tied to
 * the word embeddings, so not written). */
typedef enum { HEAD_EMBEDDING = 0, HEAD_SEQCLS = 1, HEAD_TOKCLS = 2, HEAD_QA = 3,
               HEAD_SPARSE = 4 } head_kind;
static const char *const HEAD_NAMES[] = {"embedding", "seqcls", "tokcls", "qa", "sparse"};
#define N_HEADS 5

typedef struct {
    const char *out;
    preset p; /* the preset, its vocab and positions adjusted */
    const arch *a;
    head_kind head;
    uint64_t seed, upper_seed;
    int upper_from;
    int num_labels; /* seqcls */
    int dense; /* embedding head: a sentence-transformers Dense (Tanh) to this width; 0: none */
    store_dtype dtype; /* model.safetensors' dtype (--dtype); Dense modules stay F32 */
} opts;

/* -1: go on; otherwise the exit status (0 after --version). */
static int parse_args(int argc, char **argv, opts *o) {
    const char *preset_name = "minilm-l6", *head = "embedding", *arch_name = NULL, *dtype = "fp32";
    int vocab = 0, positions = 0;
    *o = (opts){.seed = 1, .upper_from = -1, .num_labels = 2};
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--out") == 0) o->out = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--preset") == 0) preset_name = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--arch") == 0) arch_name = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--vocab") == 0) vocab = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--max-positions") == 0)
            positions = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--head") == 0) head = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--num-labels") == 0) o->num_labels = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0) o->seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--upper-seed") == 0)
            o->upper_seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--upper-from") == 0) o->upper_from = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--dense") == 0) o->dense = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--dtype") == 0) dtype = argv[++i];
        else if (strcmp(argv[i], "--version") == 0) {
            printf("erserve-genmodel %s\n", ER_VERSION);
            return 0;
        } else {
            fprintf(stderr, "usage: erserve-genmodel --out DIR --preset bert-base|minilm-l6|mpnet-base|"
                            "tiny|nomic-embed-text-v1.5|gte-base-en-v1.5|modernbert-base|deberta-v3-base "
                            "[--arch bert|roberta|xlm-roberta|mpnet|nomic_bert|gte|modernbert|deberta-v2] "
                            "[--vocab N] [--head seqcls|tokcls|qa|embedding|sparse] [--num-labels N] [--dense N] "
                            "[--max-positions N] "
                            "[--seed N] "
                            "[--upper-seed N --upper-from K] [--dtype fp32|fp16|bf16] [--version]\n");
            return 2;
        }
    }
    if (!arch_name) /* the DeBERTa preset implies its architecture */
        arch_name = strcmp(preset_name, "deberta-v3-base") == 0 ? "deberta-v2" : "bert";
    const preset *p = NULL;
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (strcmp(PRESETS[i].name, preset_name) == 0) p = &PRESETS[i];
    for (size_t i = 0; i < sizeof ARCHES / sizeof ARCHES[0]; i++)
        if (strcmp(ARCHES[i].name, arch_name) == 0) o->a = &ARCHES[i];
    const char *const dtypes[] = {"fp32", "fp16", "bf16"};
    int known_dtype = 0;
    for (int d = 0; d < 3; d++)
        if (strcmp(dtype, dtypes[d]) == 0) o->dtype = (store_dtype)d, known_dtype = 1;
    if (!known_dtype) return er_log(ER_LOG_ERROR, "--dtype %s: fp32, fp16 or bf16", dtype), 2;
    int known_head = 0;
    for (int h = 0; h < N_HEADS; h++)
        if (strcmp(head, HEAD_NAMES[h]) == 0) o->head = (head_kind)h, known_head = 1;
    if (!o->out || !p || !o->a || !known_head || vocab < 0 || vocab > 1000000 ||
        o->num_labels < 1 || o->num_labels > 64 || o->dense < 0 || o->dense > 65536 ||
        (o->dense && o->head != HEAD_EMBEDDING) || positions < 0 || positions > 1 << 20)
        return er_log(ER_LOG_ERROR, "need --out, a known --preset, --arch and --head, "
                      "--vocab in [1, 1000000], --num-labels in [1, 64], --dense in "
                      "[1, 65536] only with --head embedding, and --max-positions in "
                      "[1, 1048576]"), 2;
    if (strcmp(o->a->name, "nomic_bert") == 0 && o->head != HEAD_EMBEDDING && o->head != HEAD_SEQCLS)
        return er_log(ER_LOG_ERROR, "--arch nomic_bert has the heads embedding and seqcls"), 2;
    o->p = *p;
    if (vocab) o->p.vocab = vocab;
    if (positions) o->p.positions = positions; /* long inputs (8192: ModernBERT's) */
    o->p.positions += o->a->extra_positions; /* RoBERTa: positions start after padding_idx */
    if (o->upper_from < 0 || !o->upper_seed)
        o->upper_from = o->p.layers, o->upper_seed = o->seed ^ 0x5eedull;
    return -1;
}

/* Embeddings and layers: below upper_from from `lower`, the rest from `upper`. */
static void add_encoder(tensor_list *l, const preset *p, const arch *a, const char *pre,
                        rng *lower, rng *upper, int upper_from) {
    char k[128];
    int H = p->hidden;
    snprintf(k, sizeof k, "%sembeddings.word_embeddings.weight", pre);
    add(l, k, p->vocab, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sembeddings.position_embeddings.weight", pre);
    add(l, k, p->positions, H, FILL_RANDOM, lower, 0.1f);
    if (a->type_vocab > 0) {
        snprintf(k, sizeof k, "%sembeddings.token_type_embeddings.weight", pre);
        add(l, k, a->type_vocab, H, FILL_RANDOM, lower, 0.1f);
    }
    snprintf(k, sizeof k, "%sembeddings.LayerNorm", pre);
    layernorm(l, k, H);
    if (a->rel_buckets > 0) { /* every layer uses it: part of the lower stack */
        snprintf(k, sizeof k, "%sencoder.relative_attention_bias.weight", pre);
        add(l, k, a->rel_buckets, p->heads, FILL_RANDOM, lower, 0.5f);
    }
    for (int i = 0; i < p->layers; i++) {
        rng *r = i < upper_from ? lower : upper;
        for (int j = 0; j < 4; j++) {
            snprintf(k, sizeof k, "%sencoder.layer.%d.%s", pre, i, a->attn[j]);
            linear(l, k, H, H, r);
        }
        snprintf(k, sizeof k, "%sencoder.layer.%d.%s", pre, i, a->attn[4]);
        layernorm(l, k, H);
        snprintf(k, sizeof k, "%sencoder.layer.%d.intermediate.dense", pre, i);
        linear(l, k, p->inter, H, r);
        snprintf(k, sizeof k, "%sencoder.layer.%d.output.dense", pre, i);
        linear(l, k, H, p->inter, r);
        snprintf(k, sizeof k, "%sencoder.layer.%d.output.LayerNorm", pre, i);
        layernorm(l, k, H);
    }
}

static void linear_nobias(tensor_list *l, const char *name, int out, int in, rng *r) {
    char k[128];
    snprintf(k, sizeof k, "%s.weight", name);
    add(l, k, out, in, FILL_RANDOM, r, sqrtf(3.0f / (float)in));
}

/* One tensor of layer i: name under pre + layers + ".i.". */
static void layer_name(char *k, size_t cap, const char *pre, const char *layers, int i,
                       const char *name) {
    snprintf(k, cap, "%s%s.%d.%s", pre, layers, i, name);
}

/* NomicBertModel's names: bias-free fused Wqkv, out_proj and SwiGLU
 * fc11/fc12/fc2, post-norm norm1/norm2, emb_ln; no position table. */
static void add_encoder_nomic(tensor_list *l, const preset *p, const char *pre, rng *lower,
                              rng *upper, int upper_from) {
    char k[128];
    /* what NomicBertModel derives: vocab_size padded to pad_vocab_size_multiple
     * (64 in the config written), n_inner rounded up to a multiple of 256 */
    int H = p->hidden, F = (p->inter + 255) / 256 * 256, V = (p->vocab + 63) / 64 * 64;
    snprintf(k, sizeof k, "%sembeddings.word_embeddings.weight", pre);
    add(l, k, V, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sembeddings.token_type_embeddings.weight", pre);
    add(l, k, 2, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%semb_ln", pre);
    layernorm(l, k, H);
    for (int i = 0; i < p->layers; i++) {
        rng *r = i < upper_from ? lower : upper;
        layer_name(k, sizeof k, pre, "encoder.layers", i, "attn.Wqkv");
        linear_nobias(l, k, 3 * H, H, r);
        layer_name(k, sizeof k, pre, "encoder.layers", i, "attn.out_proj");
        linear_nobias(l, k, H, H, r);
        layer_name(k, sizeof k, pre, "encoder.layers", i, "mlp.fc11");
        linear_nobias(l, k, F, H, r);
        layer_name(k, sizeof k, pre, "encoder.layers", i, "mlp.fc12");
        linear_nobias(l, k, F, H, r);
        layer_name(k, sizeof k, pre, "encoder.layers", i, "mlp.fc2");
        linear_nobias(l, k, H, F, r);
        layer_name(k, sizeof k, pre, "encoder.layers", i, "norm1");
        layernorm(l, k, H);
        layer_name(k, sizeof k, pre, "encoder.layers", i, "norm2");
        layernorm(l, k, H);
    }
}

/* GTE NewModel's names: qkv_proj and o_proj with bias, up_gate_proj
 * [2 * inter, hidden] without, down_proj with; attn_ln, mlp_ln. */
static void add_encoder_gte(tensor_list *l, const preset *p, const char *pre, rng *lower,
                            rng *upper, int upper_from) {
    char k[128];
    int H = p->hidden, F = p->inter;
    snprintf(k, sizeof k, "%sembeddings.word_embeddings.weight", pre);
    add(l, k, p->vocab, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sembeddings.LayerNorm", pre);
    layernorm(l, k, H);
    for (int i = 0; i < p->layers; i++) {
        rng *r = i < upper_from ? lower : upper;
        layer_name(k, sizeof k, pre, "encoder.layer", i, "attention.qkv_proj");
        linear(l, k, 3 * H, H, r);
        layer_name(k, sizeof k, pre, "encoder.layer", i, "attention.o_proj");
        linear(l, k, H, H, r);
        layer_name(k, sizeof k, pre, "encoder.layer", i, "mlp.up_gate_proj");
        linear_nobias(l, k, 2 * F, H, r);
        layer_name(k, sizeof k, pre, "encoder.layer", i, "mlp.down_proj");
        linear(l, k, H, F, r);
        layer_name(k, sizeof k, pre, "encoder.layer", i, "attn_ln");
        layernorm(l, k, H);
        layer_name(k, sizeof k, pre, "encoder.layer", i, "mlp_ln");
        layernorm(l, k, H);
    }
}

/* DeBERTa-v3's encoder: word embeddings and their LayerNorm (no positions,
 * no token types), query/key/value_proj layers, and the relative embeddings
 * with their LayerNorm (from the lower stream: every layer uses them). */
static void add_deberta_encoder(tensor_list *l, const preset *p, const char *pre, rng *lower,
                                rng *upper, int upper_from) {
    char k[128];
    int H = p->hidden;
    snprintf(k, sizeof k, "%sembeddings.word_embeddings.weight", pre);
    add(l, k, p->vocab, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sembeddings.LayerNorm", pre);
    layernorm(l, k, H);
    snprintf(k, sizeof k, "%sencoder.rel_embeddings.weight", pre);
    add(l, k, 2 * DEBERTA_BUCKETS, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sencoder.LayerNorm", pre);
    layernorm(l, k, H);
    for (int i = 0; i < p->layers; i++) {
        rng *r = i < upper_from ? lower : upper;
        static const char *const lins[] = {"attention.self.query_proj", "attention.self.key_proj",
                                           "attention.self.value_proj", "attention.output.dense"};
        for (int j = 0; j < 4; j++) {
            snprintf(k, sizeof k, "%sencoder.layer.%d.%s", pre, i, lins[j]);
            linear(l, k, H, H, r);
        }
        snprintf(k, sizeof k, "%sencoder.layer.%d.attention.output.LayerNorm", pre, i);
        layernorm(l, k, H);
        snprintf(k, sizeof k, "%sencoder.layer.%d.intermediate.dense", pre, i);
        linear(l, k, p->inter, H, r);
        snprintf(k, sizeof k, "%sencoder.layer.%d.output.dense", pre, i);
        linear(l, k, H, p->inter, r);
        snprintf(k, sizeof k, "%sencoder.layer.%d.output.LayerNorm", pre, i);
        layernorm(l, k, H);
    }
}

static void add_stack(tensor_list *l, const opts *o, rng *lower, rng *upper) {
    /* a base model is saved without the prefix, as sentence-transformers does */
    const char *pre = o->head == HEAD_EMBEDDING ? "" : o->a->tensor_prefix;
    if (o->a->deberta)
        add_deberta_encoder(l, &o->p, pre, lower, upper, o->upper_from);
    else if (strcmp(o->a->name, "nomic_bert") == 0)
        add_encoder_nomic(l, &o->p, pre, lower, upper, o->upper_from);
    else if (strcmp(o->a->name, "gte") == 0)
        add_encoder_gte(l, &o->p, pre, lower, upper, o->upper_from);
    else
        add_encoder(l, &o->p, o->a, pre, lower, upper, o->upper_from);
}

/* The head's tensors and its config.json labels; writes the architecture
 * (e.g. "RobertaForTokenClassification") into arch_out. */
static void add_head(tensor_list *l, const opts *o, char *labels, size_t cap, char *arch_out,
                     size_t arch_cap) {
    rng head_rng = {o->upper_seed * 31u + (uint64_t)o->head};
    int H = o->p.hidden;
    bool dense = o->a->dense_head;
    const char *cls = "Model";
    labels[0] = 0;
    switch (o->head) {
    case HEAD_SEQCLS:
        /* BERT-style: pooler then classifier; RoBERTa, MPNet: classifier.dense then out_proj */
        char pooler[64];
        snprintf(pooler, sizeof pooler, "%spooler.dense", o->a->tensor_prefix);
        /* DeBERTa: ContextPooler (outside the base model) then classifier */
        linear(l, dense ? "classifier.dense" : o->a->deberta ? "pooler.dense" : pooler, H, H,
               &head_rng);
        linear(l, dense ? "classifier.out_proj" : "classifier", o->num_labels, H, &head_rng);
        if (o->num_labels == 2) {
            labels_json(labels, cap, SENTIMENT_LABELS, 2);
        } else {
            char names[64][12];
            const char *ptrs[64];
            for (int i = 0; i < o->num_labels; i++) {
                snprintf(names[i], sizeof names[i], "LABEL_%d", i);
                ptrs[i] = names[i];
            }
            labels_json(labels, cap, ptrs, o->num_labels);
        }
        cls = "ForSequenceClassification";
        break;
    case HEAD_TOKCLS:
        linear(l, "classifier", 9, H, &head_rng);
        labels_json(labels, cap, NER_LABELS, 9);
        cls = "ForTokenClassification";
        break;
    case HEAD_QA:
        linear(l, "qa_outputs", 2, H, &head_rng);
        cls = "ForQuestionAnswering";
        break;
    case HEAD_SPARSE: { /* BertLMPredictionHead / RobertaLMHead; bias below 0 keeps it sparse */
        const bool roberta = strcmp(o->a->tensor_prefix, "roberta.") == 0;
        linear(l, roberta ? "lm_head.dense" : "cls.predictions.transform.dense", H, H, &head_rng);
        layernorm(l, roberta ? "lm_head.layer_norm" : "cls.predictions.transform.LayerNorm", H);
        float *bias = add(l, roberta ? "lm_head.bias" : "cls.predictions.bias", o->p.vocab, 0,
                          FILL_RANDOM, &head_rng, 0.5f);
        for (int v = 0; v < o->p.vocab; v++) bias[v] -= 1.0f;
        cls = "ForMaskedLM";
        break;
    }
    case HEAD_EMBEDDING:
        break;
    }
    snprintf(arch_out, arch_cap, "%s%s", o->a->class_prefix, cls);
}

static int write_config(const opts *o, const char *arch_name, const char *labels) {
    const preset *p = &o->p;
    char config[4096], family[128];
    const char *pos_type = "  \"position_embedding_type\": \"absolute\",\n";
    if (o->a->rel_buckets > 0) { /* MPNet: no token types, no position_embedding_type */
        snprintf(family, sizeof family, "  \"relative_attention_num_buckets\": %d,\n",
                 o->a->rel_buckets);
        pos_type = "";
    } else {
        snprintf(family, sizeof family, "  \"type_vocab_size\": %d,\n", o->a->type_vocab);
    }
    snprintf(config, sizeof config,
             "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n%s"
             "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n%s"
             "  \"hidden_act\": \"gelu\",\n  \"layer_norm_eps\": 1e-12,\n  \"pad_token_id\": %d,\n"
             "%s  \"torch_dtype\": \"float32\",\n"
             "  \"_erserve_note\": \"random weights from erserve-genmodel --preset %s --seed %llu\"\n}\n",
             arch_name, o->a->model_type, labels, p->vocab, p->hidden, p->layers, p->heads, p->inter,
             p->positions, family, o->a->pad_id, pos_type, p->name, (unsigned long long)o->seed);
    return write_text(o->out, "config.json", config);
}

/* microsoft/deberta-v3-base's config.json at the preset's sizes. */
static int write_deberta_config(const opts *o, const char *arch_name, const char *labels) {
    const preset *p = &o->p;
    char config[4096];
    snprintf(config, sizeof config,
             "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"deberta-v2\",\n%s"
             "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n  \"type_vocab_size\": 0,\n"
             "  \"hidden_act\": \"gelu\",\n  \"layer_norm_eps\": 1e-07,\n  \"pad_token_id\": 0,\n"
             "  \"relative_attention\": true,\n  \"position_buckets\": %d,\n"
             "  \"max_relative_positions\": -1,\n  \"norm_rel_ebd\": \"layer_norm\",\n"
             "  \"share_att_key\": true,\n  \"pos_att_type\": \"p2c|c2p\",\n"
             "  \"position_biased_input\": false,\n  \"pooler_hidden_size\": %d,\n"
             "  \"pooler_hidden_act\": \"gelu\",\n  \"pooler_dropout\": 0,\n"
             "  \"torch_dtype\": \"float32\",\n"
             "  \"_erserve_note\": \"random weights from erserve-genmodel --preset %s --seed %llu\"\n}\n",
             arch_name, labels, p->vocab, p->hidden, p->layers, p->heads, p->inter, p->positions,
             DEBERTA_BUCKETS, p->hidden, p->name, (unsigned long long)o->seed);
    return write_text(o->out, "config.json", config);
}

/* nomic-embed-text-v1.5's config.json fields (GPT-2 names). */
static int write_config_nomic(const opts *o, const char *arch_name, const char *labels) {
    const preset *p = &o->p;
    char config[4096];
    snprintf(config, sizeof config,
             "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"nomic_bert\",\n%s"
             "  \"activation_function\": \"swiglu\",\n  \"vocab_size\": %d,\n  \"n_embd\": %d,\n"
             "  \"n_layer\": %d,\n  \"n_head\": %d,\n  \"n_inner\": %d,\n  \"n_positions\": %d,\n"
             "  \"max_trained_positions\": 2048,\n  \"type_vocab_size\": 2,\n"
             "  \"layer_norm_epsilon\": 1e-12,\n  \"pad_vocab_size_multiple\": 64,\n"
             "  \"prenorm\": false,\n  \"qkv_proj_bias\": false,\n  \"mlp_fc1_bias\": false,\n"
             "  \"mlp_fc2_bias\": false,\n  \"rotary_emb_base\": 1000,\n"
             "  \"rotary_emb_fraction\": 1.0,\n  \"rotary_emb_interleaved\": false,\n"
             "  \"rotary_emb_scale_base\": null,\n  \"rotary_scaling_factor\": null,\n"
             "  \"causal\": false,\n  \"use_rms_norm\": false,\n  \"torch_dtype\": \"float32\",\n"
             "  \"_erserve_note\": \"random weights from erserve-genmodel --preset %s --seed %llu\"\n}\n",
             arch_name, labels, p->vocab, p->hidden, p->layers, p->heads, p->inter, p->positions,
             p->name, (unsigned long long)o->seed);
    return write_text(o->out, "config.json", config);
}

/* gte-base-en-v1.5's config.json fields. */
static int write_config_gte(const opts *o, const char *arch_name, const char *labels) {
    const preset *p = &o->p;
    char config[4096];
    snprintf(config, sizeof config,
             "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"new\",\n%s"
             "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n  \"type_vocab_size\": 0,\n"
             "  \"hidden_act\": \"gelu\",\n  \"layer_norm_eps\": 1e-12,\n"
             "  \"layer_norm_type\": \"layer_norm\",\n  \"pad_token_id\": 0,\n"
             "  \"position_embedding_type\": \"rope\",\n  \"rope_theta\": 500000,\n"
             "  \"rope_scaling\": null,\n  \"pack_qkv\": true,\n  \"logn_attention_scale\": false,\n"
             "  \"unpad_inputs\": false,\n  \"use_memory_efficient_attention\": false,\n"
             "  \"torch_dtype\": \"float32\",\n"
             "  \"_erserve_note\": \"random weights from erserve-genmodel --preset %s --seed %llu\"\n}\n",
             arch_name, labels, p->vocab, p->hidden, p->layers, p->heads, p->inter, p->positions,
             p->name, (unsigned long long)o->seed);
    return write_text(o->out, "config.json", config);
}

/* A Dense module to o->dense outputs with Tanh: 2_Dense/config.json and its
 * model.safetensors (linear.weight, linear.bias). */
static int write_dense(const opts *o) {
    char dir[4096], cfg[256], path[4200];
    snprintf(dir, sizeof dir, "%s/2_Dense", o->out);
    mkdir(dir, 0755);
    snprintf(cfg, sizeof cfg, "{\"in_features\": %d, \"out_features\": %d, \"bias\": true, "
             "\"activation_function\": \"torch.nn.modules.activation.Tanh\"}\n", o->p.hidden,
             o->dense);
    rng r = {o->upper_seed * 37u + 11u};
    tensor_list l = {0};
    linear(&l, "linear", o->dense, o->p.hidden, &r);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = write_safetensors(path, &l, STORE_F32) | write_text(dir, "config.json", cfg);
    for (int i = 0; i < l.n; i++) free(l.t[i].data);
    free(l.t);
    return rc;
}

/* sentence-transformers' files: mean (or CLS) pooling, the Dense module if
 * any, then normalisation (none with CLS, as gte-*-v1.5 ship). */
static int write_pooling(const opts *o, bool cls) {
    char pool_dir[4096], modules[1024];
    snprintf(pool_dir, sizeof pool_dir, "%s/1_Pooling", o->out);
    mkdir(pool_dir, 0755);
    int n = snprintf(modules, sizeof modules,
                     "[\n  {\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": "
                     "\"sentence_transformers.models.Transformer\"},\n  {\"idx\": 1, \"name\": "
                     "\"1\", \"path\": \"1_Pooling\", \"type\": "
                     "\"sentence_transformers.models.Pooling\"}");
    int idx = 2;
    if (o->dense)
        n += snprintf(modules + n, sizeof modules - (size_t)n,
                      ",\n  {\"idx\": %d, \"name\": \"%d\", \"path\": \"2_Dense\", \"type\": "
                      "\"sentence_transformers.models.Dense\"}", idx, idx), idx++;
    if (!cls)
        n += snprintf(modules + n, sizeof modules - (size_t)n,
                      ",\n  {\"idx\": %d, \"name\": \"%d\", \"path\": \"%d_Normalize\", "
                      "\"type\": \"sentence_transformers.models.Normalize\"}", idx, idx, idx);
    snprintf(modules + n, sizeof modules - (size_t)n, "\n]\n");
    int rc = write_text(o->out, "modules.json", modules);
    char pool[512];
    snprintf(pool, sizeof pool,
             "{\n  \"word_embedding_dimension\": %d,\n  \"pooling_mode_cls_token\": %s,\n"
             "  \"pooling_mode_mean_tokens\": %s,\n  \"pooling_mode_max_tokens\": false,\n"
             "  \"pooling_mode_mean_sqrt_len_tokens\": false\n}\n", o->p.hidden,
             cls ? "true" : "false", cls ? "false" : "true");
    rc |= write_text(pool_dir, "config.json", pool);
    return o->dense ? rc | write_dense(o) : rc;
}

/* ---- ModernBERT (--arch modernbert) ---- */

static void weight(tensor_list *l, const char *name, int out, int in, rng *r) {
    char k[128];
    snprintf(k, sizeof k, "%s.weight", name);
    add(l, k, out, in, FILL_RANDOM, r, sqrtf(3.0f / (float)in));
}

static void norm_weight(tensor_list *l, const char *name, int d) {
    char k[128];
    snprintf(k, sizeof k, "%s.weight", name);
    add(l, k, d, 0, FILL_ONES, NULL, 0);
}

/* ModernBERT-base's tensors: no biases anywhere in the encoder. */
static void add_modernbert_encoder(tensor_list *l, const preset *p, const char *pre, rng *lower,
                                   rng *upper, int upper_from) {
    char k[128];
    const int H = p->hidden, F = p->inter;
    snprintf(k, sizeof k, "%sembeddings.tok_embeddings.weight", pre);
    add(l, k, p->vocab, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sembeddings.norm", pre);
    norm_weight(l, k, H);
    for (int i = 0; i < p->layers; i++) {
        rng *r = i < upper_from ? lower : upper;
        char L[96];
        snprintf(L, sizeof L, "%slayers.%d.", pre, i);
        if (i > 0) { /* layer 0's attn_norm is an Identity */
            snprintf(k, sizeof k, "%sattn_norm", L);
            norm_weight(l, k, H);
        }
        snprintf(k, sizeof k, "%sattn.Wqkv", L);
        weight(l, k, 3 * H, H, r);
        snprintf(k, sizeof k, "%sattn.Wo", L);
        weight(l, k, H, H, r);
        snprintf(k, sizeof k, "%smlp_norm", L);
        norm_weight(l, k, H);
        snprintf(k, sizeof k, "%smlp.Wi", L);
        weight(l, k, 2 * F, H, r);
        snprintf(k, sizeof k, "%smlp.Wo", L);
        weight(l, k, H, F, r);
    }
    snprintf(k, sizeof k, "%sfinal_norm", pre);
    norm_weight(l, k, H);
}

/* ModernBertPredictionHead (head.dense, head.norm) and the classifier. */
static void add_modernbert_head(tensor_list *l, const opts *o, char *labels, size_t cap,
                                char *arch_out, size_t arch_cap) {
    rng head_rng = {o->upper_seed * 31u + (uint64_t)o->head};
    const int H = o->p.hidden;
    static const char *const cls[] = {"Model", "ForSequenceClassification",
                                      "ForTokenClassification", "ForQuestionAnswering"};
    labels[0] = 0;
    if (o->head != HEAD_EMBEDDING) {
        weight(l, "head.dense", H, H, &head_rng);
        norm_weight(l, "head.norm", H);
        linear(l, "classifier", o->head == HEAD_TOKCLS ? 9 : 2, H, &head_rng);
    }
    if (o->head == HEAD_SEQCLS) labels_json(labels, cap, SENTIMENT_LABELS, 2);
    if (o->head == HEAD_TOKCLS) labels_json(labels, cap, NER_LABELS, 9);
    snprintf(arch_out, arch_cap, "ModernBert%s", cls[o->head]);
}

/* answerdotai/ModernBERT-base's config.json fields. */
static int write_modernbert_config(const opts *o, const char *arch_name, const char *labels) {
    const preset *p = &o->p;
    char config[4096];
    snprintf(config, sizeof config,
             "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"modernbert\",\n%s"
             "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n  \"hidden_activation\": \"gelu\",\n"
             "  \"norm_eps\": 1e-05,\n  \"norm_bias\": false,\n  \"attention_bias\": false,\n"
             "  \"mlp_bias\": false,\n  \"classifier_bias\": false,\n"
             "  \"classifier_activation\": \"gelu\",\n  \"classifier_pooling\": \"mean\",\n"
             "  \"global_attn_every_n_layers\": 3,\n  \"local_attention\": 128,\n"
             "  \"global_rope_theta\": 160000.0,\n  \"local_rope_theta\": 10000.0,\n"
             "  \"pad_token_id\": 50283,\n  \"bos_token_id\": 50281,\n  \"cls_token_id\": 50281,\n"
             "  \"eos_token_id\": 50282,\n  \"sep_token_id\": 50282,\n  \"torch_dtype\": \"float32\",\n"
             "  \"_erserve_note\": \"random weights from erserve-genmodel --preset %s --seed %llu\"\n}\n",
             arch_name, labels, p->vocab, p->hidden, p->layers, p->heads, p->inter, p->positions,
             p->name, (unsigned long long)o->seed);
    return write_text(o->out, "config.json", config);
}

int main(int argc, char **argv) {
    er_log_setup("erserve-genmodel", ER_LOG_INFO);
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST)
        return er_log(ER_LOG_ERROR, "cannot create %s: %s", o.out, strerror(errno)), 1;
    rng lower = {o.seed}, upper = {o.upper_seed};
    tensor_list l = {0};
    /* a base model is saved without the prefix, as sentence-transformers does */
    const char *pre = o.head == HEAD_EMBEDDING ? "" : o.a->tensor_prefix;
    const bool modernbert = strcmp(o.a->name, "modernbert") == 0;
    char labels[1024], path[4096], arch_name[64];
    if (modernbert) {
        add_modernbert_encoder(&l, &o.p, pre, &lower, &upper, o.upper_from);
        add_modernbert_head(&l, &o, labels, sizeof labels, arch_name, sizeof arch_name);
    } else {
        add_stack(&l, &o, &lower, &upper);
        add_head(&l, &o, labels, sizeof labels, arch_name, sizeof arch_name);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", o.out);
    rc = write_safetensors(path, &l, o.dtype);
    for (int i = 0; i < l.n; i++) free(l.t[i].data);
    free(l.t);
    if (rc != 0) return er_log(ER_LOG_ERROR, "cannot write %s", path), 1;
    bool gte = strcmp(o.a->name, "gte") == 0;
    if (modernbert) rc = write_modernbert_config(&o, arch_name, labels);
    else if (o.a->deberta) rc = write_deberta_config(&o, arch_name, labels);
    else if (strcmp(o.a->name, "nomic_bert") == 0) rc = write_config_nomic(&o, arch_name, labels);
    else if (gte) rc = write_config_gte(&o, arch_name, labels);
    else rc = write_config(&o, arch_name, labels);
    if (o.head == HEAD_EMBEDDING) rc |= write_pooling(&o, gte);
    if (rc != 0) return er_log(ER_LOG_ERROR, "cannot write the config files in %s", o.out), 1;
    return 0;
}
