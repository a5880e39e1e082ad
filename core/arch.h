/* Encoder architectures: everything that differs between the encoder
 * families erserve serves, behind one descriptor per family.  Internal to
 * core (config.c, model.c and encoder.c dispatch through it).
 *
 * A new architecture is one file, core/arch_NAME.c, defining
 *
 *     const er_arch_desc er_arch_NAME = {...};
 *
 * plus one line X(ER_ARCH_NAME, er_arch_NAME) in ER_ARCHITECTURES
 * (config.h).  The file must fill every field of er_arch_desc:
 *
 *   name          short family name, er_arch_name(); hashed into the
 *                 lower-stack fingerprint (recycle.c), so never renamed
 *   model_types   config.json "model_type" values it accepts, each with the
 *                 base-model class assumed when "architectures" is absent
 *   classes       the Hugging Face class names it serves, each with its head
 *                 type and head loader (NULL for the embedding head)
 *   prefix        the base model's tensor-name prefix in *For* checkpoints
 *                 ("bert."); a saved base model has none
 *   parse_config  the size fields under the family's own key names
 *                 (pad_token_id onwards; config.c reads vocab_size and
 *                 max_position_embeddings, and checks heads divide hidden)
 *   load_embeddings, load_layer   tensors by name, shapes checked against
 *                 the config (er_load_* in model_internal.h)
 *   embed, layer  the forward pass of the embeddings and of one layer
 *                 (building blocks in encoder_internal.h)
 *   max_seq_len   the longest sequence its position table allows
 *   lower_config, visit_lower   (optional) what else the lower-stack
 *                 fingerprint must cover: the family's own config fields
 *                 and tensors
 *
 * The BERT pieces below are shared by the families derived from BERT; a
 * family whose layer or embeddings differ writes its own in its file.  The
 * weight slots of er_model (model_internal.h) are BERT-shaped: a family with
 * tensors they cannot hold (relative-position tables, fused or gated
 * projections) adds its slots there and has er_model_visit_lower (model.c)
 * visit them too, since the lower-stack fingerprint hashes what it visits.
 *
 * Thread-safety: descriptors are immutable tables. */
#ifndef ER_ARCH_H
#define ER_ARCH_H

#include <jansson.h>

#include "encoder.h"

/* One Hugging Face class: "BertForSequenceClassification" and the like. */
typedef struct {
    const char *name;
    er_head_type head;
    /* Loads the head's tensors into the model (the encoder's base prefix
     * given); NULL for the embedding head, which has none. */
    er_status (*load_head)(er_model *m, const char *prefix, er_err *err);
    bool electra_discriminator; /* one "replaced" logit per token */
} er_arch_class;

typedef struct {
    const char *model_type; /* config.json "model_type" */
    const char *base_class; /* its class when "architectures" is absent */
} er_arch_model_type;

typedef struct er_arch_desc {
    const char *name;
    const er_arch_model_type *model_types; /* ends with {NULL, NULL} */
    const er_arch_class *classes;          /* ends with {NULL} */
    const char *prefix;
    er_status (*parse_config)(const json_t *root, er_config *cfg, er_err *err);
    er_status (*load_embeddings)(er_model *m, const char *prefix, er_err *err);
    er_status (*load_layer)(er_model *m, const char *prefix, int layer, er_err *err);
    /* x[n_tokens, hidden] from the batch's ids; the batch is already checked. */
    void (*embed)(const er_model *m, er_ctx *ctx, const er_batch *b, float *x);
    /* Layer `layer` in place on x[n_tokens, hidden]. */
    void (*layer)(const er_model *m, er_ctx *ctx, const er_batch *b, int layer, float *x);
    int (*max_seq_len)(const er_config *cfg);
    /* Optional (NULL: none).  lower_config appends to buf the family's own
     * config fields that change what the embeddings and layers [0, cut)
     * compute (" buckets=256 rope=160000 ..."), and visit_lower visits its
     * lower-stack tensors that er_model's shared slots do not hold
     * (relative-position tables, ...): both go into the lower-stack
     * fingerprint (recycle.c), so a field or tensor missed here lets two
     * different stacks share cached activations. */
    void (*lower_config)(const er_config *cfg, char *buf, size_t cap);
    int (*visit_lower)(const er_model *m, int cut, er_tensor_visit_fn fn, void *user);
    /* Optional (NULL: encoder.c's shared heads).  The forward of a family's
     * own non-embedding heads (ModernBERT's prediction head and pooling):
     * out from h[n_tokens, hidden] as er_head documents; the batch is
     * already checked.  Embedding heads always use the shared pooling. */
    void (*head)(const er_model *m, er_ctx *ctx, const er_batch *b, const float *h, float *out);
    /* Optional: the layer's module names (model_internal.h), by which PEFT
     * LoRA adapters name their targets (lora.c); NULL refuses LoRA. */
    const struct er_layer_names *layer_names;
    /* Optional: called once a LoRA adapter is attached or merged (lora.c),
     * to recompute what the family derived at load from weights the adapter
     * changes (DeBERTa's relative tables through query_proj / key_proj). */
    er_status (*adapted)(er_model *m, er_err *err);
    /* Whether the forward reads the layers' Linear weights (q, k, v through
     * er_qkv_apply; o, ffn_in, ffn_out, gate) and the head's only through
     * er_lin_apply(_nobias) and the packed GEMMs (encoder_blocks.c), never
     * their float weights: then an F16/BF16 checkpoint's weights are packed
     * straight from the mmap (fused rows as er_lin_rows views), with no
     * resident fp32 copy (er_lin.narrow, model_internal.h; the loaders use
     * er_load_lin_narrow).  false: widened at load. */
    bool narrow_layers;
} er_arch_desc;

#define ER_ARCH_DECLARE_(id, desc) extern const er_arch_desc desc;
ER_ARCHITECTURES(ER_ARCH_DECLARE_)
#undef ER_ARCH_DECLARE_

/* The descriptor of a (valid) er_arch. */
const er_arch_desc *er_arch_get(er_arch a);

/* The class named `name` (architectures[0] in config.json) and its family;
 * NULL when no architecture serves it. */
const er_arch_class *er_arch_find_class(const char *name, er_arch *arch);

/* The base-model class of a config.json model_type; NULL when unknown. */
const char *er_arch_base_class(const char *model_type);

/* Writes the supported model_type values, comma-separated, into buf. */
void er_arch_list_model_types(char *buf, size_t cap);

/* config.json readers for parse_config (config.c).  er_config_int: an
 * integer in [lo, hi], `def` when absent; def < lo makes the field
 * required.  er_config_act: an activation name, gelu when absent. */
er_status er_config_int(const json_t *root, const char *key, long long def, long long lo,
                        long long hi, int *out, er_err *err);
er_status er_config_act(const json_t *root, const char *key, er_act *out, er_err *err);

/* Shared by the BERT-derived families (arch_bert.c). */
er_status er_bert_parse_config(const json_t *root, er_config *cfg, er_err *err);
er_status er_bert_load_embeddings(er_model *m, const char *prefix, er_err *err);
extern const struct er_layer_names er_bert_layer_names; /* encoder.layer.N.attention.self.query ... */
er_status er_bert_load_layer(er_model *m, const char *prefix, int layer, er_err *err);
void er_bert_embed(const er_model *m, er_ctx *ctx, const er_batch *b, float *x);
int er_bert_max_seq_len(const er_config *cfg);
/* BERT's sequence-classification head, also NomicBERT's and GTE's poolers:
 * pre + "pooler.dense" + tanh on the first token, then "classifier". */
er_status er_bert_load_pooler_head(er_model *m, const char *prefix, er_err *err);

/* Heads whose tensor names every family shares (model.c). */
er_status er_load_token_head(er_model *m, const char *prefix, er_err *err); /* classifier */
er_status er_load_qa_head(er_model *m, const char *prefix, er_err *err);    /* qa_outputs */

/* MPNet (arch_mpnet.c): the relative-position bucket of key j for query i,
 * relative_position = j - i, exactly as modeling_mpnet.py's
 * relative_position_bucket (32 buckets, max_distance 128). */
int er_mpnet_bucket(int relative_position);

#endif
