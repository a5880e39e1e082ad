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
    float *ffn;        /* [max_tokens, intermediate] row-major, or the FFN intermediate in
                          the bf16 / fp32 x layout of gemm.h (er_ffn) */
    size_t ffn_cap;    /* floats of ffn: er_gemm_xf32_floats(max_tokens, intermediate),
                          max_tokens rounded up to whole 12-row groups */
    float *att_scratch; /* [n_threads, er_attention_scratch_floats(hidden)] one
                           attention tile and its accumulators per thread */
    float *rows;       /* [max_seqs, hidden] gathered CLS rows */
    float *rows2;      /* [max_seqs, hidden] head dense output */
    int *offsets;      /* [max_seqs + 1] first token of each sequence */
    int32_t *positions; /* [max_tokens] position id of each token (embeddings) */
    er_par *par;       /* the parallel-for team: n_threads - 1 helper threads */
    float *glu;        /* [max_tokens, intermediate] gate of a gated MLP; NULL when the
                          model has none (rope_glu.gate_act == ER_GLU_NONE) */
    /* DeBERTa's disentangled attention (deberta_attention.c): per sequence
     * and head, q.pos_key[r] and k.pos_query[r] for the relative buckets r the
     * sequence uses, for a group of sequences at a time; and the embeddings
     * output kept for the ConvLayer after layer 0.  0 / NULL for models
     * without them. */
    float *rel;        /* [rel_cap] */
    size_t rel_cap;    /* >= er_deberta_rel_floats of any model this ctx fits */
    int *rel_meta;     /* [max_seqs, 4]: a grouped sequence's tables (deberta_attention.c) */
    float *conv_in;    /* [max_tokens, hidden] when a model it was sized for has a ConvLayer */
    float *mlm_tile;   /* [ER_MLM_ROWS, ER_MLM_COLS] masked-LM logits (heads.h) */
    float *dense_buf;  /* [2, ER_DENSE_ROWS, dense_width] Dense modules' rows (heads.h) */
    int dense_width;
    size_t bytes;      /* scratch allocated by er_ctx_init (er_ctx_bytes) */
};

/* y[n, l->out] = x[n, l->in] . W^T + b: every weight GEMM of a forward goes
 * through here (or er_linear with the same er_lin's fields), so that a
 * compute backend or weight format can be swapped in one place. */
void er_lin_apply(const er_lin *l, const float *x, int n, float *y);
/* The same without the bias (added later, fused with a residual or an
 * activation).  Both add an unmerged LoRA pair's term (model_internal.h). */
void er_lin_apply_nobias(const er_lin *l, const float *x, int n, float *y);
/* x->q, x->k, x->v [T, H] = in[T, in] through the layer's q, k, v: one GEMM
 * on the ctx's team when er_model_pack packed them as one [3H, in] weight
 * (L->qkv; q, k, v then have no packed copy of their own, and a narrow
 * checkpoint has no float weight either), else three er_lin_apply.  Every
 * family's layer takes its q/k/v projections through here. */
void er_qkv_apply(er_ctx *x, const er_layer_w *L, const float *in, int T);

/* Attention (attention.c): softmax(scale * q k^T + bias) v per sequence and
 * head, tiled with an online softmax so that no [n, n] score matrix is ever
 * stored (scratch per thread: one ER_ATT_ROWS x ER_ATT_COLS tile). */
#ifndef ER_ATT_ROWS /* overridable at build time (-D) to measure other tiles */
#define ER_ATT_ROWS 128 /* query rows per work item */
#endif
#ifndef ER_ATT_COLS
#define ER_ATT_COLS 512 /* keys per tile: sequences up to this are one tile */
#endif

/* What a family adds to the scores beyond scale * q.k (DeBERTa's
 * disentangled terms, MPNet's relative bias, ModernBERT's local window). */
typedef struct er_att_bias er_att_bias;
struct er_att_bias {
    /* Adds to tile[(i - i0) * ld + (j - j0)] the bias of query i and key j
     * (positions within sequence `seq`) for head `head`, for i in [i0, i1),
     * j in [j0, j1).  NULL: no additive term.  Called concurrently from the
     * ctx's team threads: it may only read shared state (and write the tile). */
    void (*add)(const er_att_bias *self, int seq, int head, int i0, int i1, int j0, int j1,
                float *tile, int ld);
    const void *arg; /* whatever add needs (model, ctx buffers) */
    int window;      /* > 0: query i sees only keys j with |i - j| <= window; 0: all */
};

typedef struct {
    /* Head h of token t is at [t * ld + h * head_dim] in q, k and v (ld =
     * hidden for separate projections, 3 * hidden for a fused QKV output). */
    const float *q, *k, *v;
    int ld;
    float *out; /* [n_tokens, n_heads * head_dim] */
    int n_heads, head_dim;
    float scale;             /* multiplies q.k (1/sqrt(head_dim) for BERT) */
    const er_att_bias *bias; /* NULL: none */
} er_att_args;

/* Runs attention for every sequence of b, spread over the ctx's team; also
 * fills x->offsets.  Never allocates. */
void er_attention(er_ctx *x, const er_batch *b, const er_att_args *a);

/* Floats of att_scratch per thread for a ctx of hidden size `hidden`. */
size_t er_attention_scratch_floats(int hidden);

/* Rotary position embeddings (rope.c), "rotate half" layout.  The table
 * lives as long as the model; positions index it. */
typedef struct {
    const float *cos, *sin; /* [max_pos, half] */
    int max_pos, half;      /* half = rotary dimension / 2 */
} er_rope_table;

/* cos/sin of p * theta^(-2i / rot_dim) for p < max_pos, i < rot_dim / 2,
 * computed in double (model-owned memory).  ER_ERR_FORMAT for an odd or
 * non-positive rot_dim or theta <= 1, ER_ERR_NOMEM. */
er_status er_rope_table_init(er_model *m, double theta, int rot_dim, int max_pos,
                             er_rope_table *t, er_err *err);

/* As er_rope_table_init with every frequency multiplied by freq_scale > 0
 * (GTE's fixed NTK scaling: theta * factor and factor^(-2 / rot_dim)). */
er_status er_rope_table_init_scaled(er_model *m, double theta, double freq_scale, int rot_dim,
                                    int max_pos, er_rope_table *t, er_err *err);

/* Rotates the first 2 * t->half dimensions of each head of x in place: head
 * h of token i at x[i * ld + h * head_dim]; positions[i] < t->max_pos. */
void er_rope_apply(const er_rope_table *t, float *x, int ld, int n_tokens, int n_heads,
                   int head_dim, const int32_t *positions);

/* out[n_tokens, hidden] = LayerNorm(word[id] + type[type id] + pos[positions])
 * (no type term without a type table), then the embeddings projection when
 * the model has one.  positions: [n_tokens]. */
void er_embed_absolute(const er_model *m, er_ctx *x, const er_batch *b, const int32_t *positions,
                       float *out);

/* The BERT layer on hidden[n_tokens, hidden] in place: self-attention, then
 * output projection + residual + LayerNorm, then FFN + residual + LayerNorm
 * (post-LN). */
void er_layer_post_ln(const er_model *m, er_ctx *x, const er_batch *b, int layer, float *hidden);
/* The same layer with an additive attention-score term (MPNet's relative
 * position bias); bias NULL is er_layer_post_ln. */
void er_layer_post_ln_bias(const er_model *m, er_ctx *x, const er_batch *b, int layer,
                           float *hidden, const er_att_bias *bias);

/* x->tmp [T, H] = ffn_out(act(ffn_in(hidden) + ffn_in bias)) without
 * ffn_out's bias (the caller adds it with the residual), through x->ffn:
 * the BERT-like FFN every post-LN family (and DeBERTa) runs.  Where both
 * weights are packed, without LoRA, the intermediate stays in the next
 * GEMM's x layout (bf16, or fp32 on the AVX-512 kernels); else row-major
 * [T, F] with bias and activation in the epilogue or a row pass. */
void er_ffn(er_ctx *x, const er_layer_w *L, er_act act, const float *hidden, int T);

/* Row passes over the ctx's team (encoder_blocks.c): v[n, d] = act(v + b),
 * and hidden[n, d] = LayerNorm(v + hidden + bias). */
void er_par_bias_act(er_ctx *x, float *v, int n, int d, const float *b, er_act act);
/* hidden[n, d] = the residual stream after a sublayer whose projection
 * h[n, d] (without its bias b) runs through bottleneck adapter a (er_bn in
 * model_internal.h) and the sublayer's LayerNorm ln (adapter_bn.c).  h is
 * clobbered; scratch: x->q, x->k, x->v [n, d] and x->ffn [n, bottleneck]
 * (free at both adapter places; the bottleneck is at most intermediate). */
void er_bn_sublayer(er_ctx *x, const er_bn *a, float *h, const float *b, float *hidden,
                    const er_ln *ln, float eps, int n, int d);
void er_par_add_layernorm(er_ctx *x, const float *v, float *hidden, const float *bias,
                          const er_ln *ln, float eps, int n, int d);

/* DeBERTa's per-worker scratch for a model (deberta_attention.c): floats of
 * er_ctx.rel for sequences of up to max_seq_len tokens, and whether it needs
 * conv_in; 0 / false for other families. */
size_t er_deberta_rel_floats(const er_config *c, int max_seq_len);
bool er_deberta_needs_conv_in(const er_config *c);

#endif
