/* er_model's layout, shared by model.c (loading), the architecture files
 * (arch_*.c: tensor names) and encoder*.c (forward).  Not a public header. */
#ifndef ER_MODEL_INTERNAL_H
#define ER_MODEL_INTERNAL_H

#include <stdint.h>

#include "gemm.h"
#include "model.h"
#include "safetensors.h"

#define ER_MAX_SHARDS 256

typedef struct {
    const float *w; /* [out, in], nn.Linear layout; NULL when `narrow` holds it */
    const float *b; /* [out] or NULL */
    int out, in;
    /* An unmerged LoRA adapter (lora.c): y += lora_scale * (x A^T) B^T.
     * lora_a NULL: none. */
    const float *lora_a; /* [lora_r, in] */
    const float *lora_b; /* [out, lora_r] */
    int lora_r;
    float lora_scale;
    const void *packed;  /* w in the GEMM backend's panels (gemm.h), or NULL */
    er_gemm_kind kind;   /* packed's number format (the model's compute mode) */
    const float *packed_w; /* w and out when packed: a copy of the struct with */
    int packed_out;        /* another w or out (a slice) must not use packed */
    /* An F16/BF16 weight left in the checkpoint's mmap instead of a widened
     * fp32 copy (er_load_lin_narrow, families with narrow_layers): w is
     * NULL, er_model_pack widens it one matrix at a time into a transient
     * buffer to pack it, and the fingerprint widens it again when it visits
     * (er_visit_lin_weight).  NULL for a weight held in w. */
    const er_st_tensor *narrow;
    /* The first row of `narrow` this Linear is: a row slice of a fused
     * stored matrix (er_lin_rows) starts past 0; 0 for a whole tensor. */
    int64_t narrow_row;
    /* A LoRA pair merged into this weight where the model packs (lora.c,
     * lora_merge): the weight is W + merge_scale * merge_b merge_a, W the
     * stored one (w or narrow, left as it is), computed only where the
     * weight is widened (er_lin_widen: packing, the fingerprint, DeBERTa's
     * relative tables), so no fp32 copy of it stays with the model.  Not a
     * forward term: er_lin_apply reads the packed (merged) copy.
     * merge_a NULL: none. */
    const float *merge_a; /* [merge_r, in] */
    const float *merge_b; /* [out, merge_r] */
    int merge_r;
    float merge_scale;
} er_lin;

typedef struct {
    const float *gamma, *beta; /* [d] */
} er_ln;

/* A bottleneck adapter block (adapter_bn.c) after one sublayer of a post-LN
 * layer, as the AdapterHub `adapters` library's sequential Adapter computes
 * it (methods/modeling.py, Adapter.pre_forward / forward / post_forward):
 * with h the sublayer's projection (its bias added) and r its residual input,
 *   x   = original_ln_before ? LN(h + r) : h
 *   res = residual_before_ln True: h; False: x; "post_add": h + r
 *   u   = up(act(down(x))) * scaling
 *   out = ln_after ? (adapter_residual_before_ln ? LN_a(u + res) : LN_a(u) + res) : u + res
 *   new residual stream = original_ln_after ? LN(out + r) : out
 * LN is the layer's own LayerNorm of that sublayer, LN_a the adapter's
 * adapter_norm_after (eps 1e-5, nn.LayerNorm's default). */
typedef enum { ER_BN_RELU, ER_BN_GELU, ER_BN_GELU_TANH, ER_BN_SILU, ER_BN_TANH, ER_BN_SIGMOID,
               ER_BN_LEAKY_RELU, ER_BN_LINEAR } er_bn_act;
typedef enum { ER_BN_RES_SUBLAYER, ER_BN_RES_INPUT, ER_BN_RES_POST_ADD } er_bn_res;
typedef struct er_bn {
    er_lin down;           /* [bottleneck, hidden] */
    er_lin up;             /* [hidden, bottleneck] */
    er_bn_act act;
    er_bn_res residual;
    float scaling;
    bool original_ln_before, original_ln_after;
    bool adapter_residual_before_ln;
    er_ln ln_after;        /* [hidden]; gamma NULL: none */
} er_bn;

typedef struct {
    er_lin q, k, v, o;    /* [hidden, hidden] each */
    er_ln attn_ln;        /* after attention + residual */
    er_lin ffn_in;        /* [intermediate, hidden] */
    er_lin ffn_out;       /* [hidden, intermediate] */
    er_ln out_ln;         /* after FFN + residual */
    er_lin qkv;           /* q, k, v as one packed GEMM [3 * hidden, hidden]
                             (w NULL; packed and b set by er_model_pack) */
    er_lin gate;          /* gated MLPs (ModernBERT, NomicBERT, GTE): the gate
                             projection [intermediate, hidden], often a row
                             view of a fused input matrix; w NULL otherwise */
    const er_bn *bn_att;  /* bottleneck adapters after attention / after the FFN */
    const er_bn *bn_out;  /* (adapter_bn.c; owned by the adapter), or NULL */
} er_layer_w;

typedef enum { ER_HEAD_ACT_NONE, ER_HEAD_ACT_TANH, ER_HEAD_ACT_RELU, ER_HEAD_ACT_GELU,
               ER_HEAD_ACT_HIDDEN } er_head_act;

struct er_model {
    er_config cfg;
    const struct er_arch_desc *arch; /* er_arch_get(cfg.arch) */
    int skip_below;
    bool raw_embeddings; /* er_model_params: the head skips Normalize */
    er_st_file *files[ER_MAX_SHARDS];
    int n_files;
    float **owned; /* converted (F16/BF16/unaligned) tensors */
    int n_owned, cap_owned;

    const float *word_emb; /* [vocab, embedding_size]; NULL when word_emb_narrow */
    /* The same table as F16/BF16 in the checkpoint's mmap, widened a row at
     * a time by er_embed_absolute (families loading it with
     * er_bert_load_embeddings): ~90 MiB less for bert-base than a widened
     * copy.  NULL when word_emb holds it. */
    const er_st_tensor *word_emb_narrow;
    const float *pos_emb;  /* [max_positions, embedding_size] */
    const float *type_emb; /* [type_vocab, embedding_size] or NULL */
    er_ln emb_ln;          /* over embedding_size */
    er_lin emb_project;    /* ELECTRA [hidden, embedding_size]; w NULL if absent */
    er_layer_w *layers;    /* [num_layers]; entries below skip_below are zero */

    /* Head: an optional dense + activation on the pooled/CLS (or, for the
     * ELECTRA discriminator, every) row, then the output projection. */
    er_lin head_dense;     /* w NULL if the head has none */
    er_head_act head_act;
    er_lin head_out;       /* w NULL for the embedding head */
    /* The modules head_dense and head_out were loaded from ("bert.pooler.dense",
     * "classifier.dense", ...; set by er_load_lin): PEFT LoRA names its
     * head targets so (lora.c).  Empty when not loaded. */
    char head_names[2][160];

    /* MPNet (arch_mpnet.c): the encoder's relative_attention_bias and, from
     * it, the bias of every relative position j - i a sequence can have. */
    struct {
        const float *rel_bias; /* [relative_buckets, num_heads] as stored */
        float *by_distance;    /* [num_heads, 2 * max_len - 1]: j - i + max_len - 1 */
        int max_len;           /* longest sequence (max_positions - 2) */
    } mpnet;
    /* NomicBERT and GTE (nomic_glu.c): the rotary table, computed once at
     * load (q/k/v are views into the fused QKV weight; ffn_in is the up
     * projection, er_layer_w.gate the gate, ffn_out the down). */
    struct {
        const float *rope_cos, *rope_sin; /* [rope_max_pos, rope_half] model-owned */
        int rope_max_pos, rope_half;
    } rope_glu;
    /* ModernBERT's rotary tables, final norm and head norm (modernbert.h);
     * NULL for other families.  Model-owned memory (er_model_alloc_floats). */
    struct er_modernbert_w *modernbert;
    struct er_deberta_w *deberta; /* DeBERTa's own tensors (arch_deberta.c); model-owned */
    /* Head extensions (head_embed.c, head_mlm.c).  Embedding head: the
     * sentence-transformers Dense modules after pooling, their weights in
     * their own files (cfg.st.dense[i].path).  Sparse embedding head: the
     * masked-LM prediction head, transform (dense + act + LayerNorm) then
     * the decoder over the vocabulary (tied: the word embeddings). */
    struct {
        er_lin dense[ER_MAX_DENSE];
        er_st_file *files[ER_MAX_DENSE];
        er_lin mlm_transform;  /* [hidden, hidden] */
        er_head_act mlm_act;
        er_ln mlm_ln;          /* [hidden] */
        er_lin mlm_decoder;    /* [vocab, hidden], bias [vocab]; narrow (the
                                  F16/BF16 word-embedding table when tied) where
                                  the model packs */
        /* The decoder's rows in blocks of ER_MLM_COLS, each a row view
         * (er_lin_rows) packed on its own (er_model_pack): the forward's
         * logit tiles.  NULL where the model does not pack. */
        er_lin *mlm_blocks;    /* [n_mlm_blocks] */
        int n_mlm_blocks;
    } heads;

    /* A PEFT LoRA adapter over a base checkpoint (lora.c); NULL for a plain
     * checkpoint.  The weights above stay the base's. */
    struct er_adapter *adapter;
    er_compute compute; /* the weight GEMMs' number format (er_model_pack) */
    void **packs;       /* the shared packed weights this model holds (gemm_pack.c) */
    int n_packs, cap_packs;
};

/* ---- adapters (lora.c) ---- */
typedef struct er_adapter er_adapter;
/* True when dir holds adapter_config.json. */
bool er_adapter_dir(const char *dir);
/* Reads dir's adapter_config.json and adapter_model.safetensors into
 * m->adapter, resolves the base model (er_adapter_base) and fills m->cfg
 * (and m->arch) from the base's config.json with the task's class and labels.
 * Refuses by name what it does not implement (ER_ERR_UNSUPPORTED). */
er_status er_adapter_open(er_model *m, const char *dir, const er_model_params *p, er_err *err);
const char *er_adapter_base(const er_adapter *a);
/* The saved head tensor for `name` (a base-model tensor name), or NULL. */
const er_st_tensor *er_adapter_find(const er_model *m, const char *name);
/* After the base's layers and head are loaded: checks target_modules against
 * the model's Linear modules (layers and head), attaches (or merges) every
 * LoRA pair to its er_lin(s) (a fused module's B split by rows over its
 * views), calls the family's `adapted` hook (arch.h), and checks every saved
 * tensor is one it understands (ER_ERR_UNSUPPORTED naming it); or attaches
 * each bottleneck adapter to its layer (er_layer_w.bn_att / bn_out). */
er_status er_adapter_apply(er_model *m, er_err *err);
/* The adapter's own prediction head (a bottleneck adapter's head_config.json)
 * into m->head_*; *own false when it has none and the class's loader runs. */
er_status er_adapter_load_head(er_model *m, bool *own, er_err *err);
void er_adapter_free(er_adapter *a);

/* Loading helpers for the architecture files, called only inside
 * er_model_load (one thread, the model not yet shared).  Each looks a tensor
 * up by prefix + name (+ ".weight" / ".bias" for er_load_lin and er_load_ln),
 * checks its shape is exactly the one the config implies, and stores float32
 * values that live as long as the model (the mmap, or a converted copy in
 * m->owned): ER_ERR_NOT_FOUND for a missing tensor, ER_ERR_MISMATCH for a
 * shape or dtype, naming it. */

/* n zeroed floats owned by the model (freed by er_model_free): tables
 * computed at load (rotary cos/sin, merged or converted weights). */
er_status er_model_alloc_floats(er_model *m, size_t n, float **out, er_err *err);

/* A tensor of shape [d0] (d1 = 0) or [d0, d1]. */
er_status er_load_tensor(er_model *m, const char *prefix, const char *name, int64_t d0, int64_t d1,
                         const float **out, er_err *err);
/* An embedding table [d0, d1] read a row at a time: an F16/BF16 tensor is
 * checked and returned as *narrow (*out NULL), anything else as
 * er_load_tensor returns it (*narrow NULL). */
er_status er_load_table(er_model *m, const char *prefix, const char *name, int64_t d0, int64_t d1,
                        const float **out, const er_st_tensor **narrow, er_err *err);
/* A tensor of any rank with exactly shape[ndim] (Conv1d weights). */
er_status er_load_tensor_shape(er_model *m, const char *prefix, const char *name,
                               const int64_t *shape, int ndim, const float **out, er_err *err);
/* The same from one given file (a module's own weights), not the checkpoint. */
er_status er_load_tensor_in(er_model *m, const er_st_file *f, const char *name, int64_t d0,
                            int64_t d1, const float **out, er_err *err);
/* true when the checkpoint holds prefix + name. */
bool er_has_tensor(const er_model *m, const char *prefix, const char *name);
/* ER_ERR_NOT_FOUND saying how to convert `dir`/pytorch_model.bin to
 * safetensors (erserve never unpickles). */
er_status er_refuse_pickle(const char *dir, er_err *err);
/* nn.Linear: weight [out, in], bias [out] when `bias`. */
er_status er_load_lin(er_model *m, const char *prefix, const char *name, int out, int in,
                      bool bias, er_lin *l, er_err *err);
/* er_load_lin for a Linear that may stay narrow: with `keep` true an
 * F16/BF16 weight is checked and kept as its checkpoint tensor (w NULL,
 * er_lin.narrow set; the bias, when `bias`, widened), anything else loads as
 * er_load_lin does.  keep is er_model_keeps_narrow(m) for a weight the
 * forward reads only through packed GEMMs, or true for one read only at load
 * through er_lin_widen (DeBERTa's pos_key_proj / pos_query_proj). */
er_status er_load_lin_narrow(er_model *m, const char *prefix, const char *name, int out, int in,
                             bool bias, bool keep, er_lin *l, er_err *err);
/* Rows [row0, row0 + rows) of a (fused) Linear as a Linear of its own: a
 * view of its weight (w or narrow) and bias, nothing copied.  No LoRA. */
er_lin er_lin_rows(const er_lin *whole, int row0, int rows);
/* nn.LayerNorm: weight and bias [d]. */
er_status er_load_ln(er_model *m, const char *prefix, const char *name, int d, er_ln *ln,
                     er_err *err);
/* The Hugging Face names of a post-LN layer's tensors (er_layer_w): layer i
 * is under base prefix + `layers` + ".i.", then each module's name. */
typedef struct er_layer_names {
    const char *layers; /* "encoder.layer" */
    const char *q, *k, *v, *o, *attn_ln, *ffn_in, *ffn_out, *out_ln;
    /* Further nn.Linear modules PEFT LoRA may target (lora.c), NULL when the
     * family has none.  A fused module is one Linear whose output rows are
     * several er_lins: qkv = q, k, v rows in that order (q, k, v then NULL);
     * ffn_in_gate = ffn_in rows, then gate rows (ffn_in then NULL); gate =
     * er_layer_w.gate as a Linear of its own. */
    const char *qkv, *gate, *ffn_in_gate;
} er_layer_names;

/* Layer `i` of m->layers: q, k, v, o [hidden, hidden], attn_ln and out_ln
 * [hidden], ffn_in [intermediate, hidden], ffn_out [hidden, intermediate],
 * all Linear with bias.  The six weights stay narrow (er_lin.narrow, w
 * NULL) when er_model_keeps_narrow says so; biases and LayerNorms are
 * widened (a few KiB a layer). */
er_status er_load_post_ln_layer(er_model *m, const char *prefix, int i, const er_layer_names *n,
                                er_err *err);
/* Whether a layer's F16/BF16 Linear weights can stay in the checkpoint
 * (er_lin.narrow): the family's layer forward reads them only through
 * packed GEMMs (arch narrow_layers) and the backend packs this compute
 * mode.  An adapter does not change it: a merged LoRA pair is added where
 * the weight is widened (er_lin.merge_a), an unmerged one and a bottleneck
 * adapter run beside the base's packed GEMMs. */
bool er_model_keeps_narrow(const er_model *m);
/* Whether er_model_pack packs m's Linear weights: the GEMM backend has
 * packed kernels for m's compute mode (gemm_pack.c). */
bool er_model_packs(const er_model *m);

/* l's weight as fp32 into dst [out, in]: a copy of w, or the narrow
 * tensor widened (exact), plus a merged LoRA pair's merge_scale * B A
 * (er_lin.merge_a; the same cblas_sgemm as an F32 weight's merge, so the
 * same floats).  ER_ERR_UNSUPPORTED for a dtype it cannot widen. */
er_status er_lin_widen(const er_lin *l, float *dst, er_err *err);
/* Whether l's weight as the forward and the fingerprint see it is w itself
 * (false: narrow, or a merged LoRA pair on top: er_lin_widen makes it). */
bool er_lin_is_float(const er_lin *l);
/* fn on l's weight as fp32 [out * in] under `key`: w itself, or the narrow
 * rows widened into a transient buffer, so the lower-stack fingerprint of an
 * F16/BF16 checkpoint equals its F32 widening's.  0 for a Linear with no
 * weight; fn's result; -1 when out of memory. */
int er_visit_lin_weight(er_tensor_visit_fn fn, void *user, const char *key, const er_lin *l);
/* A transient float buffer [n] for load-time work (a widened matrix),
 * mapped on its own so its pages leave the process when it is freed (in the
 * heap they would stay resident between the allocations around them); NULL
 * when out of memory.  er_transient_free(p, n) accepts NULL. */
float *er_transient_alloc(size_t n);
void er_transient_free(float *p, size_t n);

/* After loading: packs every Linear's weight for the GEMM backend (gemm.h)
 * into model-owned memory, q/k/v of each layer as one [3H, H] matrix, the
 * masked-LM decoder as row blocks (heads.mlm_blocks), when the backend uses
 * packed weights; else does nothing.  ER_ERR_NOMEM. */
er_status er_model_pack(er_model *m, er_err *err);
/* Gives back the shared packed weights er_model_pack took (each freed with
 * its last holder); before the stored weights they were keyed by go. */
void er_model_unpack(er_model *m);

/* A head of dense [hidden, hidden] + act, then out [num_labels, hidden]. */
er_status er_load_dense_head(er_model *m, const char *dense, er_head_act act, const char *out,
                             er_err *err);

#endif
