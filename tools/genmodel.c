/* erserve-genmodel: writes a Hugging Face model directory with random
 * weights, deterministically from a seed, for the demo and the benchmarks
 * (real weights cannot be downloaded on the machines erserve is built on).
 *
 *   erserve-genmodel --out DIR --preset bert-base|minilm-l6|tiny
 *                    [--arch bert|roberta|xlm-roberta] [--vocab N]
 *                    [--max-positions N] [--head seqcls|tokcls|qa|embedding] [--seed N]
 *                    [--upper-seed N --upper-from K] [--version]
 *
 * The encoder comes from --seed; with --upper-seed, layers >= --upper-from
 * and the head come from that seed instead, so several heads generated with
 * one --seed share their lower stack exactly (as tasks fine-tuned with frozen
 * lower layers do).  The head always takes its own stream.
 *
 * --arch roberta|xlm-roberta writes RoBERTa's layout (what core/arch_bert.c
 * loads): prefix "roberta.", padding_idx 1 so two more positions, one token
 * type, RobertaClassificationHead; --vocab matches a real tokenizer's size. */
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
    {"tiny", 64, 4, 4, 128, 30522, 512},
};

/* What differs between BERT and RoBERTa-style checkpoints. */
typedef struct {
    const char *name, *model_type, *class_prefix, *tensor_prefix;
    int pad_id, extra_positions, type_vocab;
} arch;

static const arch ARCHES[] = {
    {"bert", "bert", "Bert", "bert.", 0, 0, 2},
    {"roberta", "roberta", "Roberta", "roberta.", 1, 2, 1},
    {"xlm-roberta", "xlm-roberta", "XLMRoberta", "roberta.", 1, 2, 1},
};

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

static int write_safetensors(const char *path, tensor_list *l) {
    qsort(l->t, (size_t)l->n, sizeof *l->t, cmp_tensor);
    size_t cap = 256 + (size_t)l->n * 256, len = 0;
    char *h = malloc(cap);
    if (!h) return -1;
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < l->n; i++) {
        tensor *t = &l->t[i];
        uint64_t bytes = (uint64_t)t->rows * (uint64_t)(t->cols ? t->cols : 1) * 4u;
        if (t->cols)
            len += (size_t)snprintf(h + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],"
                                    "\"data_offsets\":[%llu,%llu]}", t->name, (long long)t->rows,
                                    (long long)t->cols, (unsigned long long)off,
                                    (unsigned long long)(off + bytes));
        else
            len += (size_t)snprintf(h + len, cap - len,
                                    ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],"
                                    "\"data_offsets\":[%llu,%llu]}", t->name, (long long)t->rows,
                                    (unsigned long long)off, (unsigned long long)(off + bytes));
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
        ok = fwrite(t->data, sizeof(float), n, f) == n; /* little-endian hosts only */
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
typedef enum { HEAD_EMBEDDING = 0, HEAD_SEQCLS = 1, HEAD_TOKCLS = 2, HEAD_QA = 3 } head_kind;
static const char *const HEAD_NAMES[] = {"embedding", "seqcls", "tokcls", "qa"};

typedef struct {
    const char *out;
    preset p; /* the preset, its vocab and positions adjusted */
    const arch *a;
    head_kind head;
    uint64_t seed, upper_seed;
    int upper_from;
} opts;

/* -1: go on; otherwise the exit status (0 after --version). */
static int parse_args(int argc, char **argv, opts *o) {
    const char *preset_name = "minilm-l6", *head = "embedding", *arch_name = "bert";
    int vocab = 0, positions = 0;
    *o = (opts){.seed = 1, .upper_from = -1};
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--out") == 0) o->out = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--preset") == 0) preset_name = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--arch") == 0) arch_name = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--vocab") == 0) vocab = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--max-positions") == 0)
            positions = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--head") == 0) head = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0) o->seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--upper-seed") == 0)
            o->upper_seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--upper-from") == 0) o->upper_from = atoi(argv[++i]);
        else if (strcmp(argv[i], "--version") == 0) {
            printf("erserve-genmodel %s\n", ER_VERSION);
            return 0;
        } else {
            fprintf(stderr, "usage: erserve-genmodel --out DIR --preset bert-base|minilm-l6|tiny "
                            "[--arch bert|roberta|xlm-roberta] [--vocab N] "
                            "[--max-positions N] [--head seqcls|tokcls|qa|embedding] [--seed N] "
                            "[--upper-seed N --upper-from K] [--version]\n");
            return 2;
        }
    }
    const preset *p = NULL;
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (strcmp(PRESETS[i].name, preset_name) == 0) p = &PRESETS[i];
    for (size_t i = 0; i < sizeof ARCHES / sizeof ARCHES[0]; i++)
        if (strcmp(ARCHES[i].name, arch_name) == 0) o->a = &ARCHES[i];
    int known_head = 0;
    for (int h = 0; h < 4; h++)
        if (strcmp(head, HEAD_NAMES[h]) == 0) o->head = (head_kind)h, known_head = 1;
    if (!o->out || !p || !o->a || !known_head || vocab < 0 || vocab > 1000000 ||
        positions < 0 || positions > 1 << 20)
        return er_log(ER_LOG_ERROR, "need --out, a known --preset, --arch and --head, "
                      "--vocab in [1, 1000000] and --max-positions in [1, 1048576]"), 2;
    o->p = *p;
    if (vocab) o->p.vocab = vocab;
    if (positions) o->p.positions = positions; /* long inputs (8192: ModernBERT's) */
    o->p.positions += o->a->extra_positions; /* RoBERTa: positions start after padding_idx */
    if (o->upper_from < 0 || !o->upper_seed)
        o->upper_from = o->p.layers, o->upper_seed = o->seed ^ 0x5eedull;
    return -1;
}

/* Embeddings and layers: below upper_from from `lower`, the rest from `upper`. */
static void add_encoder(tensor_list *l, const preset *p, int type_vocab, const char *pre,
                        rng *lower, rng *upper, int upper_from) {
    char k[128];
    int H = p->hidden;
    snprintf(k, sizeof k, "%sembeddings.word_embeddings.weight", pre);
    add(l, k, p->vocab, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sembeddings.position_embeddings.weight", pre);
    add(l, k, p->positions, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sembeddings.token_type_embeddings.weight", pre);
    add(l, k, type_vocab, H, FILL_RANDOM, lower, 0.1f);
    snprintf(k, sizeof k, "%sembeddings.LayerNorm", pre);
    layernorm(l, k, H);
    for (int i = 0; i < p->layers; i++) {
        rng *r = i < upper_from ? lower : upper;
        static const char *const lins[] = {"attention.self.query", "attention.self.key",
                                           "attention.self.value", "attention.output.dense"};
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

/* The head's tensors and its config.json labels; writes the architecture
 * (e.g. "RobertaForTokenClassification") into arch_out. */
static void add_head(tensor_list *l, const opts *o, char *labels, size_t cap, char *arch_out,
                     size_t arch_cap) {
    rng head_rng = {o->upper_seed * 31u + (uint64_t)o->head};
    int H = o->p.hidden;
    bool roberta = strcmp(o->a->tensor_prefix, "roberta.") == 0;
    const char *cls = "Model";
    labels[0] = 0;
    switch (o->head) {
    case HEAD_SEQCLS:
        /* BERT: pooler then classifier; RoBERTa: classifier.dense then out_proj */
        linear(l, roberta ? "classifier.dense" : "bert.pooler.dense", H, H, &head_rng);
        linear(l, roberta ? "classifier.out_proj" : "classifier", 2, H, &head_rng);
        labels_json(labels, cap, SENTIMENT_LABELS, 2);
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
    case HEAD_EMBEDDING:
        break;
    }
    snprintf(arch_out, arch_cap, "%s%s", o->a->class_prefix, cls);
}

static int write_config(const opts *o, const char *arch_name, const char *labels) {
    const preset *p = &o->p;
    char config[4096];
    snprintf(config, sizeof config,
             "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n%s"
             "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n  \"type_vocab_size\": %d,\n"
             "  \"hidden_act\": \"gelu\",\n  \"layer_norm_eps\": 1e-12,\n  \"pad_token_id\": %d,\n"
             "  \"position_embedding_type\": \"absolute\",\n  \"torch_dtype\": \"float32\",\n"
             "  \"_erserve_note\": \"random weights from erserve-genmodel --preset %s --seed %llu\"\n}\n",
             arch_name, o->a->model_type, labels, p->vocab, p->hidden, p->layers, p->heads, p->inter,
             p->positions, o->a->type_vocab, o->a->pad_id, p->name, (unsigned long long)o->seed);
    return write_text(o->out, "config.json", config);
}

/* sentence-transformers' files: mean pooling, then normalisation. */
static int write_pooling(const char *out, int H) {
    char pool_dir[4096];
    snprintf(pool_dir, sizeof pool_dir, "%s/1_Pooling", out);
    mkdir(pool_dir, 0755);
    int rc = write_text(out, "modules.json",
                        "[\n  {\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": "
                        "\"sentence_transformers.models.Transformer\"},\n  {\"idx\": 1, \"name\": "
                        "\"1\", \"path\": \"1_Pooling\", \"type\": "
                        "\"sentence_transformers.models.Pooling\"},\n  {\"idx\": 2, \"name\": \"2\", "
                        "\"path\": \"2_Normalize\", \"type\": "
                        "\"sentence_transformers.models.Normalize\"}\n]\n");
    char pool[512];
    snprintf(pool, sizeof pool,
             "{\n  \"word_embedding_dimension\": %d,\n  \"pooling_mode_cls_token\": false,\n"
             "  \"pooling_mode_mean_tokens\": true,\n  \"pooling_mode_max_tokens\": false,\n"
             "  \"pooling_mode_mean_sqrt_len_tokens\": false\n}\n", H);
    return rc | write_text(pool_dir, "config.json", pool);
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
    add_encoder(&l, &o.p, o.a->type_vocab, o.head == HEAD_EMBEDDING ? "" : o.a->tensor_prefix,
                &lower, &upper, o.upper_from);
    char labels[1024], path[4096], arch_name[64];
    add_head(&l, &o, labels, sizeof labels, arch_name, sizeof arch_name);
    snprintf(path, sizeof path, "%s/model.safetensors", o.out);
    rc = write_safetensors(path, &l);
    for (int i = 0; i < l.n; i++) free(l.t[i].data);
    free(l.t);
    if (rc != 0) return er_log(ER_LOG_ERROR, "cannot write %s", path), 1;
    rc = write_config(&o, arch_name, labels);
    if (o.head == HEAD_EMBEDDING) rc |= write_pooling(o.out, o.p.hidden);
    if (rc != 0) return er_log(ER_LOG_ERROR, "cannot write the config files in %s", o.out), 1;
    return 0;
}
