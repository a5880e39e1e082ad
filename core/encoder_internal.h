/* er_ctx's layout and the forward building blocks the architecture files
 * compose (arch.h), shared by encoder.c, encoder_blocks.c and arch_*.c.
 * Not a public header.
 *
 * Everything here runs on a ctx's scratch and never allocates; the ctx is
 * used by one thread at a time (encoder.h), which may spread work over the
 * ctx's parallel-for team (par.h).  The model is only read. */
#ifndef ER_ENCODER_INTERNAL_H
#define ER_ENCODER_INTERNAL_H

#include "encoder.h"
#include "model_internal.h"
#include "par.h"

struct er_ctx {
    er_ctx_params p;
    int hidden, inter, width; /* capacities: hidden, intermediate, max(hidden, embedding) */
    float *q, *k, *v;  /* [max_tokens, hidden] projections */
    float *att;        /* [max_tokens, hidden] attention context */
    float *tmp;        /* [max_tokens, width] projection outputs, pre-projection embeddings */
    float *ffn;        /* [max_tokens, intermediate] */
    float *scores;     /* [n_threads, max_seq_len, max_seq_len] one head's attention
                          weights per thread */
    float *rows;       /* [max_seqs, hidden] gathered CLS rows */
    float *rows2;      /* [max_seqs, hidden] head dense output */
    int *offsets;      /* [max_seqs + 1] first token of each sequence */
    int32_t *positions; /* [max_tokens] position id of each token (embeddings) */
    er_par *par;       /* the parallel-for team: n_threads - 1 helper threads */
};

/* out[n_tokens, hidden] = LayerNorm(word[id] + type[type id] + pos[positions])
 * (no type term without a type table), then the embeddings projection when
 * the model has one.  positions: [n_tokens]. */
void er_embed_absolute(const er_model *m, er_ctx *x, const er_batch *b, const int32_t *positions,
                       float *out);

/* The BERT layer on hidden[n_tokens, hidden] in place: self-attention, then
 * output projection + residual + LayerNorm, then FFN + residual + LayerNorm
 * (post-LN). */
void er_layer_post_ln(const er_model *m, er_ctx *x, const er_batch *b, int layer, float *hidden);

#endif
