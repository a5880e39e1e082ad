/* The masked-LM prediction head (BertForMaskedLM's cls.predictions,
 * RobertaForMaskedLM's lm_head, DistilBertForMaskedLM's vocab_*) served as a
 * SPLADE sparse embedding: for each sequence and vocabulary entry v,
 * max over its tokens of log(1 + relu(logit[t, v])), special tokens included
 * (SPLADE's max pooling as sentence-transformers' SpladePooling and TEI's
 * splade pooling compute it: only padding is masked, and packed batches have
 * none). */
#include "heads.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels.h"

/* The tensor names of one family's head.  The decoder weight is tied to the
 * word embeddings and often absent from the checkpoint: then the word
 * embeddings (under the base prefix) are the decoder.  The bias is saved as
 * `bias`, and by newer transformers also as decoder.bias: either is used. */
typedef struct {
    const char *transform, *ln, *decoder, *bias, *decoder_bias;
    er_head_act act;
} mlm_names;

/* The transform and the decoder stay F16/BF16 where the model packs
 * (er_model_keeps_narrow): er_model_pack packs them (the decoder in blocks
 * of ER_MLM_COLS rows, each widened on its own), so no widened V x H copy
 * of a narrow table is made; elsewhere they are widened as any weight. */
static er_status load_mlm(er_model *m, const char *pre, const mlm_names *n, er_err *err) {
    const er_config *c = &m->cfg;
    const int H = c->hidden_size, V = c->vocab_size;
    const bool keep = er_model_keeps_narrow(m);
    m->heads.mlm_act = n->act;
    er_status st = er_load_lin_narrow(m, "", n->transform, H, H, true, keep,
                                      &m->heads.mlm_transform, err);
    if (st == ER_OK) st = er_load_ln(m, "", n->ln, H, &m->heads.mlm_ln, err);
    if (st != ER_OK) return st;
    er_lin *dec = &m->heads.mlm_decoder; /* the bias is loaded below under its own name */
    char w[256];
    snprintf(w, sizeof w, "%s.weight", n->decoder);
    if (er_has_tensor(m, "", w) || !c->tie_word_embeddings)
        st = er_load_lin_narrow(m, "", n->decoder, V, H, false, keep, dec, err);
    else
        st = er_load_lin_narrow(m, pre, "embeddings.word_embeddings", V, H, false, keep, dec, err);
    if (st != ER_OK) return st;
    const char *bias = er_has_tensor(m, "", n->bias) ? n->bias : n->decoder_bias;
    if (!er_has_tensor(m, "", bias))
        return er_set(err, ER_ERR_NOT_FOUND, "tensor '%s' (or '%s') is missing from the "
                      "checkpoint", n->bias, n->decoder_bias);
    return er_load_tensor(m, "", bias, V, 0, &dec->b, err);
}

er_status er_load_mlm_head_bert(er_model *m, const char *prefix, er_err *err) {
    static const mlm_names N = {"cls.predictions.transform.dense",
                                "cls.predictions.transform.LayerNorm", "cls.predictions.decoder",
                                "cls.predictions.bias", "cls.predictions.decoder.bias",
                                ER_HEAD_ACT_HIDDEN};
    return load_mlm(m, prefix, &N, err);
}

/* RobertaLMHead: dense, gelu (always the erf form, not hidden_act), layer_norm. */
er_status er_load_mlm_head_roberta(er_model *m, const char *prefix, er_err *err) {
    static const mlm_names N = {"lm_head.dense", "lm_head.layer_norm", "lm_head.decoder",
                                "lm_head.bias", "lm_head.decoder.bias", ER_HEAD_ACT_GELU};
    return load_mlm(m, prefix, &N, err);
}

/* vocab_transform, activation (config "activation"), vocab_layer_norm, vocab_projector. */
er_status er_load_mlm_head_distilbert(er_model *m, const char *prefix, er_err *err) {
    static const mlm_names N = {"vocab_transform", "vocab_layer_norm", "vocab_projector",
                                "vocab_projector.bias", "vocab_projector.bias", ER_HEAD_ACT_HIDDEN};
    return load_mlm(m, prefix, &N, err);
}

/* o[j] = max(o[j], row[j]) for j < n. */
static void max_into(float *o, const float *row, int n) {
    for (int j = 0; j < n; j++) o[j] = row[j] > o[j] ? row[j] : o[j];
}

/* out[S, V] = max over each sequence's tokens of relu(t . Wdec^T + b), one
 * [ER_MLM_ROWS, ER_MLM_COLS] tile of logits at a time; vocabulary blocks
 * outermost, so each block of the decoder is read from memory once.  A
 * block is the decoder's packed block (er_model_pack), or on a backend that
 * does not pack, a view of its fp32 rows (OpenBLAS). */
static void max_logits(const er_model *m, er_ctx *x, const er_batch *b, const float *t,
                       float *out) {
    const er_lin *dec = &m->heads.mlm_decoder;
    const int T = er_batch_tokens(b), H = dec->in, V = dec->out;
    memset(out, 0, (size_t)b->n_seqs * V * sizeof *out); /* relu: the max starts at 0 */
    for (int v0 = 0; v0 < V; v0 += ER_MLM_COLS) {
        const int vc = V - v0 < ER_MLM_COLS ? V - v0 : ER_MLM_COLS;
        const er_lin block = m->heads.mlm_blocks ? m->heads.mlm_blocks[v0 / ER_MLM_COLS]
                                                 : er_lin_rows(dec, v0, vc);
        int s = 0, end = b->seq_len[0];
        for (int t0 = 0; t0 < T; t0 += ER_MLM_ROWS) {
            const int n = T - t0 < ER_MLM_ROWS ? T - t0 : ER_MLM_ROWS;
            er_lin_apply(&block, t + (size_t)t0 * H, n, x->mlm_tile); // [n, vc]
            for (int r = 0; r < n; r++) {
                while (t0 + r >= end) end += b->seq_len[++s];
                max_into(out + (size_t)s * V + v0, x->mlm_tile + (size_t)r * vc, vc);
            }
        }
    }
}

void er_head_sparse(const er_model *m, er_ctx *x, const er_batch *b, const float *h, float *out) {
    const er_config *c = &m->cfg;
    const int T = er_batch_tokens(b), H = c->hidden_size;
    float *t = x->tmp; // [T, H] the transformed token rows
    er_lin_apply(&m->heads.mlm_transform, h, T, t);
    er_head_activation(m->heads.mlm_act, c->act, t, T * H);
    er_add_layernorm(t, NULL, NULL, m->heads.mlm_ln.gamma, m->heads.mlm_ln.beta,
                     c->layer_norm_eps, T, H, t);
    max_logits(m, x, b, t, out); // [S, V]
    /* log1p is increasing, so max over tokens commutes with it: applied once
     * per entry instead of once per token. */
    const size_t n = (size_t)b->n_seqs * (size_t)c->vocab_size;
    for (size_t i = 0; i < n; i++) out[i] = log1pf(out[i]);
}
