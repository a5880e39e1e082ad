/* DeBERTa-v2/v3 (model_type "deberta-v2"): the tensors er_model's shared
 * slots cannot hold and the pieces of its forward pass, shared by
 * arch_deberta.c (descriptor, loading, embeddings, layer), deberta_config.c
 * (config.json) and deberta_attention.c (relative positions, disentangled
 * attention, ConvLayer).  Follows transformers' modeling_deberta_v2.py.
 * Not a public header. */
#ifndef ER_DEBERTA_INTERNAL_H
#define ER_DEBERTA_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "encoder_internal.h"
#include "model_internal.h"

typedef struct {
    er_lin pos_k, pos_q; /* share_att_key false: pos_key_proj (c2p), pos_query_proj (p2c) */
    /* [2 * span, H]: the layer's projections of the (normalised) relative
     * embeddings, computed once at load: key_proj / pos_key_proj for c2p,
     * query_proj / pos_query_proj for p2c; NULL when the term is off. */
    float *pk, *pq;
} er_deberta_layer;

struct er_deberta_w {
    er_ln emb_ln;          /* embeddings.LayerNorm over hidden (after embed_proj) */
    const float *rel_emb;  /* [2 * span, H] encoder.rel_embeddings; NULL until loaded */
    er_ln rel_ln;          /* encoder.LayerNorm; gamma NULL without norm_rel_ebd layer_norm */
    float *rel_normed;     /* [2 * span, H] get_rel_embedding(): rel_emb after rel_ln */
    int32_t *bucket;       /* [2 * max_len - 1]: att_span + bucket(i - j), clamped to
                              [0, 2 * span), at index i - j + max_len - 1 */
    int max_len;           /* longest sequence: max_position_embeddings */
    er_deberta_layer *layers; /* [num_layers] */
    float *conv_w;         /* [K, H, H / groups]: encoder.conv.conv.weight [H, H / groups, K]
                              with the tap first, so each tap is one GEMM; NULL: no conv */
    const float *conv_b;   /* [H] */
    er_ln conv_ln;         /* encoder.conv.LayerNorm */
};

/* config.json's DeBERTa fields into cfg (deberta_config.c). */
er_status er_deberta_parse_config(const json_t *root, er_config *c, er_err *err);

/* att_span + make_log_bucket_position(delta) (or delta itself without
 * buckets), clamped to [0, 2 * att_span): the row of the relative tables a
 * query i and key j = i - delta use, for c2p and p2c alike. */
int er_deberta_bucket(const er_config *c, int delta);

/* x->att[T, H] from x->q, x->k, x->v [T, H] for layer `layer`: scores
 * q.k / s plus, with relative attention, q.pos_key[bucket] / s (c2p) and
 * k.pos_query[bucket] / s (p2c), s = sqrt(head_dim * scale_factor). */
void er_deberta_attention(const er_model *m, er_ctx *x, const er_batch *b, int layer);

/* ConvLayer after layer 0: hidden = LayerNorm(hidden + act(conv(x->conv_in)))
 * with the convolution per sequence, zero-padded at its ends. */
void er_deberta_conv(const er_model *m, er_ctx *x, const er_batch *b, float *hidden);

#endif
