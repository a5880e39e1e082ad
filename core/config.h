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
    X(ER_ARCH_ELECTRA, er_arch_electra)

#define ER_ARCH_ENUM_VALUE_(id, desc) id,
typedef enum { ER_ARCHITECTURES(ER_ARCH_ENUM_VALUE_) ER_ARCH_COUNT } er_arch;
#undef ER_ARCH_ENUM_VALUE_

typedef enum {
    ER_HEAD_EMBEDDING,               /* base model: pooled sentence embedding */
    ER_HEAD_SEQUENCE_CLASSIFICATION, /* logits [n_seqs, n_labels] */
    ER_HEAD_TOKEN_CLASSIFICATION,    /* logits [n_tokens, n_labels] */
    ER_HEAD_QUESTION_ANSWERING,      /* logits [n_tokens, 2]: start, end */
    ER_HEAD_TOKEN_EMBEDDING          /* an embedding model's last hidden state, unpooled
                                      * [n_tokens, hidden] (er_model_params.token_embeddings) */
} er_head_type;

typedef enum { ER_ACT_GELU, ER_ACT_GELU_TANH, ER_ACT_RELU } er_act;

/* How an embedding head turns a sequence's token rows into one sentence row
 * (sentence-transformers' Pooling module). */
typedef enum { ER_POOLING_CLS, ER_POOLING_MEAN, ER_POOLING_MAX } er_pooling;

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
} er_config;

/* Parses config.json text.  Unsupported architectures and options are
 * refused by name (ER_ERR_UNSUPPORTED); missing or out-of-range fields give
 * ER_ERR_FORMAT naming the field; ER_ERR_NOMEM.  On failure *cfg holds
 * nothing to free. */
er_status er_config_parse(const char *json, size_t len, er_config *cfg, er_err *err);

/* Applies a sentence-transformers pooling config (1_Pooling/config.json text)
 * to an embedding head.  ER_ERR_UNSUPPORTED for modes other than exactly one
 * of cls / mean / max. */
er_status er_config_parse_pooling(const char *json, size_t len, er_config *cfg, er_err *err);

/* Reads a model directory's config.json and, when present, its
 * sentence-transformers modules.json, pooling and Normalize entries.
 * ER_ERR_IO / ER_ERR_NOT_FOUND when config.json is missing. */
er_status er_config_load_dir(const char *dir, er_config *cfg, er_err *err);

void er_config_free(er_config *cfg); /* NULL and zeroed configs accepted */

const char *er_head_type_name(er_head_type h); /* "sequence_classification", ... */
/* True for heads with one output row per token (token classification, QA),
 * false for one per sequence (sequence classification, embedding). */
bool er_head_per_token(er_head_type h);
const char *er_arch_name(er_arch a);           /* "bert", "roberta", ... */

#endif
