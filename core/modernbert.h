/* ModernBERT internals shared by arch_modernbert.c (config, tensors, the
 * descriptor) and modernbert_forward.c (embeddings, layer, head).  Not a
 * public header.
 *
 * Layer slots of er_layer_w as ModernBERT fills them (pre-norm layer):
 *   q, k, v   rows [0, H), [H, 2H), [2H, 3H) of attn.Wqkv [3H, H] (views)
 *   o         attn.Wo [H, H]
 *   attn_ln   attn_norm, before attention (gamma NULL in layer 0: Identity)
 *   out_ln    mlp_norm, before the MLP
 *   ffn_in    rows [0, F) of mlp.Wi [2F, H], the GeGLU input (a view)
 *   gate      rows [F, 2F) of mlp.Wi, the gate (a view)
 *   ffn_out   mlp.Wo [H, F]
 * Biases are NULL where attention_bias / mlp_bias / norm_bias are false. */
#ifndef ER_MODERNBERT_H
#define ER_MODERNBERT_H

#include "encoder_internal.h"

struct er_modernbert_w {
    er_rope_table rope_global, rope_local; /* [max_positions, head_dim / 2] each */
    er_ln final_norm; /* after the last layer (applied by layer L-1, see below) */
    er_ln head_norm;  /* ModernBertPredictionHead.norm; gamma NULL without a head */
};

/* x[T, H] = norm(tok_embeddings[ids]); no position or type embeddings. */
void er_modernbert_embed(const er_model *m, er_ctx *x, const er_batch *b, float *out);

/* One ModernBertEncoderLayer on hidden[T, H] in place.  The last layer also
 * applies final_norm, so that er_layers [0, L) returns last_hidden_state and
 * any split [0, k) + [k, L) runs the very same operations. */
void er_modernbert_layer(const er_model *m, er_ctx *x, const er_batch *b, int layer,
                         float *hidden);

/* The classification heads: ModernBertPredictionHead (dense, act, norm)
 * on the pooled (cls / mean) rows or on every token, then classifier. */
void er_modernbert_head(const er_model *m, er_ctx *x, const er_batch *b, const float *h,
                        float *out);

#endif
