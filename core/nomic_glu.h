/* What NomicBERT (arch_nomic.c) and GTE v1.5 "NewModel" (arch_gte.c) share:
 * a BERT-style post-norm layer with rotary q/k instead of a position table,
 * one fused QKV projection and a gated MLP,
 *
 *   h = LN1(h + O(attention(rope(Q h), rope(K h), V h)))
 *   h = LN2(h + Down(Up h * act(Gate h)))
 *
 * and embeddings without positions (word + token type, then LayerNorm).
 * The families differ in tensor names, biases and the gate activation
 * (config's rope_glu), which the loaders below take as parameters.
 * Internal to core. */
#ifndef ER_NOMIC_GLU_H
#define ER_NOMIC_GLU_H

#include <jansson.h>

#include "encoder_internal.h"
#include "model_internal.h"

/* A layer's tensor names under prefix + layers + ".i.". */
typedef struct {
    const char *layers;  /* "encoder.layers" (Nomic), "encoder.layer" (GTE) */
    const char *qkv;     /* fused [3 * hidden, hidden]: q rows, then k, then v */
    const char *o, *attn_ln;
    const char *up;      /* [intermediate, hidden], or with gate NULL the fused
                            [2 * intermediate, hidden]: up rows, then gate rows */
    const char *gate;    /* [intermediate, hidden] or NULL (fused into up) */
    const char *down, *out_ln;
} er_rg_names;

/* Layer i's tensors (shapes checked against the config), and at the first
 * layer loaded the rotary table for the config's max_positions. */
/* The longest sequence served: rope_glu.max_len (arch.h max_seq_len). */
int er_rg_max_seq_len(const er_config *c);

er_status er_rg_load_layer(er_model *m, const char *prefix, int i, const er_rg_names *n,
                           er_err *err);

/* The layer (above) on hidden[n_tokens, hidden] in place. */
void er_rg_layer(const er_model *m, er_ctx *x, const er_batch *b, int layer, float *hidden);

/* out[n_tokens, hidden] = LayerNorm(word[id] + type[type id]) (no type
 * term without a type table). */
void er_rg_embed(const er_model *m, er_ctx *x, const er_batch *b, float *out);

/* The fingerprint's view of the family's own fields and tensors (arch.h). */
void er_rg_lower_config(const er_config *c, char *buf, size_t cap);
int er_rg_visit_lower(const er_model *m, int cut, er_tensor_visit_fn fn, void *user);

/* A config.json boolean: `def` when absent or null. */
er_status er_rg_bool(const json_t *root, const char *key, bool def, bool *out, er_err *err);
/* A config.json number in [lo, hi]: `def` when absent or null. */
er_status er_rg_number(const json_t *root, const char *key, double def, double lo, double hi,
                       double *out, er_err *err);

#endif
