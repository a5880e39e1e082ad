/* Model configuration: what config.json (and a sentence-transformers pooling
 * config) say about an encoder, validated and normalised across families.
 *
 * Ownership: er_config_parse fills a caller-owned er_config whose `labels`
 * are heap strings released by er_config_free.  Immutable afterwards. */
#ifndef ER_CONFIG_H
#define ER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "er_error.h"

/* Bounds on every size read from a config: far above real models, low enough
 * that a hostile file cannot ask for absurd allocations. */
#define ER_MAX_HIDDEN 16384
#define ER_MAX_LAYERS 256
#define ER_MAX_HEADS 1024
#define ER_MAX_INTERMEDIATE 65536
#define ER_MAX_VOCAB 10000000
#define ER_MAX_POSITIONS 65536
#define ER_MAX_TYPE_VOCAB 1024
#define ER_MAX_LABELS 100000
#define ER_MAX_LABEL_LEN 256
#define ER_MAX_CONFIG_BYTES (4u << 20)

/* The encoder architectures, one line each: its er_arch value and the
 * descriptor its core/arch_*.c file defines (see arch.h).  Adding an
 * architecture is one line here plus that file; er_arch values follow
 * the line order. */
#define ER_ARCHITECTURES(X)                  \
    X(ER_ARCH_BERT, er_arch_bert)            \
    X(ER_ARCH_ROBERTA, er_arch_roberta)      \
    X(ER_ARCH_DISTILBERT, er_arch_distilbert) \
    X(ER_ARCH_ELECTRA, er_arch_electra)      \
    X(ER_ARCH_MPNET, er_arch_mpnet)          \
    X(ER_ARCH_NOMIC_BERT, er_arch_nomic_bert) \
    X(ER_ARCH_GTE, er_arch_gte)              \
    X(ER_ARCH_MODERNBERT, er_arch_modernbert) \
    X(ER_ARCH_DEBERTA, er_arch_deberta)

#define ER_ARCH_ENUM_VALUE_(id, desc) id,
typedef enum { ER_ARCHITECTURES(ER_ARCH_ENUM_VALUE_) ER_ARCH_COUNT } er_arch;
#undef ER_ARCH_ENUM_VALUE_

typedef enum {
    ER_HEAD_EMBEDDING,               /* base model: pooled sentence embedding */
    ER_HEAD_SEQUENCE_CLASSIFICATION, /* logits [n_seqs, n_labels] */
    ER_HEAD_TOKEN_CLASSIFICATION,    /* logits [n_tokens, n_labels] */
    ER_HEAD_QUESTION_ANSWERING,      /* logits [n_tokens, 2]: start, end */
    ER_HEAD_SPARSE_EMBEDDING,        /* *ForMaskedLM: SPLADE [n_seqs, vocab_size] */
    ER_HEAD_TOKEN_EMBEDDING          /* an embedding model's last hidden state, unpooled
                                      * [n_tokens, hidden] (er_model_params.token_embeddings) */
} er_head_type;

typedef enum { ER_ACT_GELU, ER_ACT_GELU_TANH, ER_ACT_RELU } er_act;

/* The gate activation of a gated MLP (NomicBERT swiglu / geglu, GTE's
 * hidden_act); ER_GLU_NONE for the families without one. */
typedef enum { ER_GLU_NONE, ER_GLU_SILU, ER_GLU_GELU, ER_GLU_GELU_TANH, ER_GLU_RELU } er_glu_act;

/* How an embedding head turns a sequence's token rows into one sentence row
 * (sentence-transformers' Pooling module: pooling_mode_cls_token,
 * _mean_tokens, _max_tokens, _mean_sqrt_len_tokens, _weightedmean_tokens,
 * _lasttoken). */
typedef enum { ER_POOLING_CLS, ER_POOLING_MEAN, ER_POOLING_MAX, ER_POOLING_MEAN_SQRT_LEN,
               ER_POOLING_WEIGHTED_MEAN, ER_POOLING_LAST_TOKEN } er_pooling;

/* A sentence-transformers Dense module's activation_function. */
typedef enum { ER_DENSE_IDENTITY, ER_DENSE_TANH, ER_DENSE_RELU, ER_DENSE_GELU,
               ER_DENSE_SIGMOID } er_dense_act;

#define ER_MAX_DENSE 8          /* Dense modules after pooling */
#define ER_MAX_DENSE_FEATURES 65536

/* One sentence_transformers.models.Dense: y = act(x W^T + b) on the pooled
 * row; its weights are `path`/model.safetensors ("linear.weight", ...). */
typedef struct {
    int in_features, out_features;
    bool bias;
    er_dense_act act;
    char path[128]; /* the module's folder, relative to the model directory */
} er_st_dense;

typedef struct {
    er_arch arch;
    er_head_type head;
    char architecture[64];  /* architectures[0] as written, or the base name */
    char model_type[32];
    int vocab_size;
    int hidden_size;
    int embedding_size;     /* ELECTRA may differ from hidden_size; else equal */
    int num_layers;
    int num_heads;
    int intermediate_size;
    int max_positions;      /* max_position_embeddings */
    int type_vocab_size;    /* 0 for DistilBERT (no token types) */
    int pad_token_id;
    float layer_norm_eps;
    er_act act;             /* hidden_act / activation */
    bool is_electra_discriminator; /* ElectraForPreTraining: 1 logit per token */
    int num_labels;         /* heads with labels; 0 for embedding */
    char **labels;          /* [num_labels], id2label order ("LABEL_i" if absent) */
    bool multi_label;       /* problem_type == "multi_label_classification" */
    er_pooling pooling;     /* embedding head */
    bool normalize;         /* embedding head: L2-normalise (sentence-transformers) */
    struct {
        int relative_buckets; /* relative_attention_num_buckets: rows of the bias table */
    } mpnet;
    /* NomicBERT and GTE v1.5 (arch_nomic.c, arch_gte.c): post-norm layers
     * with rotary positions, a fused QKV projection and a gated MLP
     * (up * act(gate)), no position table. */
    struct {
        double rope_theta;      /* rotary base */
        double rope_freq_scale; /* multiplies every rotary frequency (GTE's NTK scaling), else 1 */
        int rope_dim;           /* rotated dimensions of each head (<= head_dim, even) */
        er_glu_act gate_act;    /* activation of the gate half */
        bool qkv_bias, out_bias;  /* attention projections' biases */
        bool up_bias, down_bias;  /* MLP projections' biases */
        int max_len;            /* longest sequence served (<= max_positions) */
    } rope_glu;
    struct {                /* ModernBERT (arch_modernbert.c); zero for other families */
        double global_theta, local_theta; /* rotary theta of global / local layers */
        int global_every;    /* global_attn_every_n_layers: layer i is global iff i % n == 0 */
        int local_attention; /* local layers: query i sees keys |i - j| <= local_attention / 2 */
        bool norm_bias, attention_bias, mlp_bias, classifier_bias;
        er_act classifier_act; /* classifier_activation of the prediction head */
        bool mean_pooling;   /* classifier_pooling "mean" (else "cls") */
    } modernbert;
    /* DeBERTa-v2/v3 (arch_deberta.c), as DebertaV2Config and the modeling
     * code read them; zero for other families. */
    struct {
        bool relative_attention;    /* c2p / p2c terms from rel_embeddings */
        bool position_biased_input; /* absolute position embeddings added */
        bool share_att_key;         /* positions projected by query/key_proj */
        bool c2p, p2c;              /* pos_att_type */
        bool norm_rel_ln;           /* norm_rel_ebd contains "layer_norm" */
        int position_buckets;       /* > 0: log buckets; <= 0: raw distances */
        int max_relative_positions; /* max_position_embeddings when < 1 in config */
        int att_span;               /* pos_ebd_size: rel_embeddings has 2 * att_span rows */
        int scale_factor;           /* 1 + c2p + p2c: scores / sqrt(head_dim * it) */
        int pooler_act;             /* pooler_hidden_act: an er_act, -1 tanh, -2 linear */
        int conv_kernel_size;       /* ConvLayer after layer 0; 0: none */
        int conv_groups;
        int conv_act;               /* conv_act: an er_act, -1 tanh, -2 linear */
    } deberta;
    /* Embedding head: the Dense modules between pooling and Normalize, in
     * modules.json order; the sentence width is the last one's out_features
     * (er_model_head_width). */
    struct {
        int n_dense;
        er_st_dense dense[ER_MAX_DENSE];
    } st;
    /* tie_word_embeddings (default true): a masked-LM decoder absent from
     * the checkpoint is the word embeddings; when false it must be there. */
    bool tie_word_embeddings;
} er_config;

/* Parses config.json text.  Unsupported architectures and options are
 * refused by name (ER_ERR_UNSUPPORTED); missing or out-of-range fields give
 * ER_ERR_FORMAT naming the field; ER_ERR_NOMEM.  On failure *cfg holds
 * nothing to free. */
er_status er_config_parse(const char *json, size_t len, er_config *cfg, er_err *err);

/* Applies a sentence-transformers pooling config (1_Pooling/config.json text)
 * to an embedding head.  ER_ERR_UNSUPPORTED, naming the key, for anything
 * but exactly one mode or for include_prompt false. */
er_status er_config_parse_pooling(const char *json, size_t len, er_config *cfg, er_err *err);

/* Applies a sentence-transformers Dense config (2_Dense/config.json text) as
 * the next Dense module of an embedding head (`path` its folder).
 * ER_ERR_FORMAT naming a missing or mismatched field, ER_ERR_UNSUPPORTED for
 * an activation_function erserve lacks, ER_ERR_CAPACITY past ER_MAX_DENSE. */
er_status er_config_parse_dense(const char *json, size_t len, const char *path, er_config *cfg,
                                er_err *err);

/* Applies directory dir's sentence-transformers modules (modules.json, or a
 * bare 1_Pooling folder) to an embedding config: pooling, Dense modules,
 * Normalize (config_st.c).  Modules it lacks or in another order are refused
 * by name (ER_ERR_UNSUPPORTED); absent files leave mean pooling. */
er_status er_config_load_st(const char *dir, er_config *cfg, er_err *err);

/* Reads a model directory's config.json and, when present, its
 * sentence-transformers modules.json, pooling, Dense and Normalize entries.
 * ER_ERR_IO / ER_ERR_NOT_FOUND when config.json is missing. */
er_status er_config_load_dir(const char *dir, er_config *cfg, er_err *err);

void er_config_free(er_config *cfg); /* NULL and zeroed configs accepted */

const char *er_head_type_name(er_head_type h); /* "sequence_classification", ... */
/* True for heads with one output row per token (token classification, QA),
 * false for one per sequence (sequence classification, embedding, sparse
 * embedding). */
bool er_head_per_token(er_head_type h);
const char *er_arch_name(er_arch a);           /* "bert", "roberta", ... */

#endif
