/* The heads beyond a linear layer on the CLS or token rows (internal to
 * core): the sentence-embedding head (pooling, sentence-transformers Dense
 * modules, Normalize; head_embed.c) and the masked-LM head served as a
 * SPLADE sparse embedding (head_mlm.c).  encoder.c dispatches to them,
 * model.c and the arch_*.c class tables load their weights.
 *
 * The forwards run on the ctx's scratch and never allocate. */
#ifndef ER_HEADS_H
#define ER_HEADS_H

#include "encoder_internal.h"

/* The masked-LM logits are computed a tile of [ER_MLM_ROWS tokens,
 * ER_MLM_COLS vocabulary entries] at a time (ctx->mlm_tile), so that no
 * [n_tokens, vocab] matrix is ever stored whatever the batch. */
#define ER_MLM_ROWS 128
#define ER_MLM_COLS 1024

/* The Dense modules run ER_DENSE_ROWS sentences at a time through
 * ctx->dense_buf [2, ER_DENSE_ROWS, dense_width], whose width is at least
 * ER_DENSE_MIN_WIDTH whatever model sized the ctx: a ctx fits any model
 * whose Dense modules are no wider (er_ctx_fits), 8192 being the widest
 * published sentence-transformers Dense. */
#define ER_DENSE_ROWS 16
#define ER_DENSE_MIN_WIDTH 8192

/* Activation `act` of a head's dense layer over v[n] (hidden_act for
 * ER_HEAD_ACT_HIDDEN). */
void er_head_activation(er_head_act act, er_act hidden_act, float *v, int n);

/* Embedding head: out[n_seqs, er_model_head_width(m)] from x[n_tokens,
 * hidden]: pooled, through the Dense modules, L2-normalised when configured. */
void er_head_embedding(const er_model *m, er_ctx *ctx, const er_batch *b, const float *x,
                       float *out);

/* The widest row the embedding head holds between modules (hidden or a
 * Dense width): er_ctx_fits needs it within ctx->dense_width. */
int er_head_embedding_max_width(const er_config *c);

/* Loads the Dense modules' weights (cfg.st) from their folders under dir:
 * model.safetensors with linear.weight [out, in] and linear.bias [out];
 * a pytorch_model.bin alone is refused with the conversion command. */
er_status er_load_st_dense(er_model *m, const char *dir, er_err *err);

/* Sparse embedding head: out[n_seqs, vocab] = max over each sequence's
 * tokens (special tokens included) of log(1 + relu(MLM logits)). */
void er_head_sparse(const er_model *m, er_ctx *ctx, const er_batch *b, const float *x, float *out);

/* The masked-LM heads by family (er_arch_class.load_head). */
er_status er_load_mlm_head_bert(er_model *m, const char *prefix, er_err *err);
er_status er_load_mlm_head_roberta(er_model *m, const char *prefix, er_err *err);
er_status er_load_mlm_head_distilbert(er_model *m, const char *prefix, er_err *err);

#endif
