/* Reply builders (see reply.h). */
#include "reply.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "result.h"

json_t *pr_predict_reply(const char *task, json_t *results) {
    if (!results) return NULL;
    return json_pack("{s:s,s:o}", "task", task, "results", results);
}

void pr_embedding_normalize(const pr_req *req, float *v, int dim, bool model_normalizes) {
    if (req->normalize == 1 || (req->normalize == -1 && model_normalizes)) er_l2_normalize(v, dim);
}

static json_t *openai_vector(const pr_req *req, float *v, int dim) {
    /* Always unit length, shortened or not, as OpenAI's (and TEI's) are. */
    er_l2_normalize(v, dim);
    if (!req->base64) return pr_floats(v, dim);
    char *b = pp_base64_f32(v, dim);
    json_t *s = b ? json_string(b) : NULL;
    free(b);
    return s;
}

json_t *pr_openai_embeddings(const pr_req *req, float *x, size_t stride, int hidden,
                             const char *model, int n_tokens) {
    int dim = req->dimensions ? req->dimensions : hidden;
    json_t *data = json_array();
    for (int i = 0; i < req->n_inputs && data; i++)
        json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding", "index", i,
                                              "embedding",
                                              openai_vector(req, x + (size_t)i * stride, dim)));
    return json_pack("{s:s,s:o,s:s,s:{s:i,s:i}}", "object", "list", "data", data, "model",
                     model, "usage", "prompt_tokens", n_tokens,
                     "total_tokens", n_tokens);
}

json_t *pr_tei_embed(const pr_req *req, float *x, size_t stride, int hidden, bool model_normalizes) {
    /* Matryoshka: the first `dimensions`, then normalised (TEI; the same as
     * shortening sentence-transformers' unit vector and renormalising it). */
    int dim = req->dimensions ? req->dimensions : hidden;
    json_t *arr = json_array();
    for (int i = 0; i < req->n_inputs && arr; i++) {
        float *v = x + (size_t)i * stride;
        pr_embedding_normalize(req, v, dim, model_normalizes);
        json_array_append_new(arr, pr_floats(v, dim));
    }
    return arr;
}

json_t *pr_tei_embed_all(const float *x, const int *seq_len, int n, int hidden) {
    json_t *all = json_array();
    for (int i = 0; i < n && all; i++) {
        json_t *rows = json_array();
        for (int t = 0; t < seq_len[i] && rows; t++, x += hidden) json_array_append_new(rows, pr_floats(x, hidden));
        json_array_append_new(all, rows);
    }
    return all;
}

json_t *pr_similarity(const float *x, size_t stride, int hidden, int n) {
    const float *src = x;
    double ss = 0;
    for (int k = 0; k < hidden; k++) ss += (double)src[k] * src[k];
    json_t *arr = json_array();
    for (int i = 1; i < n && arr; i++) {
        const float *v = x + (size_t)i * stride;
        double dot = 0, vv = 0;
        for (int k = 0; k < hidden; k++) {
            dot += (double)src[k] * v[k];
            vv += (double)v[k] * v[k];
        }
        /* 0 for a zero vector, as simsimd's cosine distance of 1 gives TEI */
        double cos = ss > 0 && vv > 0 ? dot / (sqrt(ss) * sqrt(vv)) : 0.0;
        json_array_append_new(arr, json_real(cos));
    }
    return arr;
}

json_t *pr_sparse_row(const float *row, int n) {
    json_t *arr = json_array();
    for (int k = 0; k < n && arr; k++)
        if (row[k] != 0.0f)
            json_array_append_new(arr, json_pack("{s:i,s:f}", "index", k, "value", (double)row[k]));
    return arr;
}

json_t *pr_tei_embed_sparse(const pr_req *req, const float *x, size_t stride, int width) {
    json_t *arr = json_array();
    for (int i = 0; i < req->n_inputs && arr; i++)
        json_array_append_new(arr, pr_sparse_row(x + (size_t)i * stride, width));
    return arr;
}

json_t *pr_tei_predict(const pr_req *req, const float *x, size_t stride, int n_labels,
                       const char *const *labels, bool multi_label) {
    if (!req->batched) return pr_tei_scores(x, n_labels, labels, multi_label, req->raw_scores);
    json_t *arr = json_array();
    for (int i = 0; i < req->n_inputs && arr; i++)
        json_array_append_new(arr, pr_tei_scores(x + (size_t)i * stride, n_labels, labels,
                                                 multi_label, req->raw_scores));
    return arr;
}

float pr_rerank_score(const float *l, int n_labels, bool raw) {
    float p;
    if (raw) return l[n_labels - 1];
    if (n_labels == 1) {
        pp_sigmoid(l, 1, &p);
        return p;
    }
    /* The last label's softmax probability, computed as pp_softmax does
     * (same operations, same bits) without a buffer for the others. */
    float m = l[0];
    for (int i = 1; i < n_labels; i++) m = l[i] > m ? l[i] : m;
    double s = 0;
    for (int i = 0; i < n_labels; i++) s += expf(l[i] - m);
    return (float)(expf(l[n_labels - 1] - m) / s);
}

json_t *pr_rerank(const pr_req *req, const float *x, size_t stride, int n_labels) {
    int n = req->n_inputs;
    float *score = malloc((size_t)n * sizeof *score);
    int *idx = malloc((size_t)n * sizeof *idx);
    json_t *arr = score && idx ? json_array() : NULL;
    for (int i = 0; arr && i < n; i++)
        score[i] = pr_rerank_score(x + (size_t)i * stride, n_labels, req->raw_scores);
    int k = arr ? pp_top_k(score, n, n, idx) : 0;
    for (int r = 0; arr && r < k; r++) {
        const pr_input *in = &req->inputs[idx[r]];
        json_t *o = json_pack("{s:i,s:f}", "index", idx[r], "score", (double)score[idx[r]]);
        if (o && req->return_text) json_object_set_new(o, "text", json_stringn(in->pair, in->pair_len));
        json_array_append_new(arr, o);
    }
    free(score);
    free(idx);
    return arr;
}

json_t *pr_warm_reply(const char *task, int n_inputs, int n_tokens, const uint8_t *hit) {
    int hits = 0;
    for (int i = 0; i < n_inputs; i++) hits += hit[i] ? 1 : 0;
    return json_pack("{s:s,s:i,s:i,s:i,s:i}", "task", task, "inputs", n_inputs, "tokens", n_tokens,
                     "already_cached", hits, "computed", n_inputs - hits);
}

json_t *pr_decode_reply(const char *const *texts, const size_t *lens, int n) {
    json_t *all = json_array();
    for (int i = 0; i < n && all; i++) {
        json_t *s = json_stringn(texts[i], lens[i]);
        if (!s || json_array_append_new(all, s)) {
            json_decref(all);
            all = NULL;
        }
    }
    return all;
}

/* The input's bytes [a, b) as a JSON string; a slice that cuts a UTF-8
 * sequence is repaired with U+FFFD, as String::from_utf8_lossy in TEI. */
static json_t *slice_json(const char *in, size_t n, size_t a, size_t b) {
    if (a > b || b > n) return json_string("");
    json_t *s = json_stringn(in + a, b - a);
    if (s) return s;
    char *fix = malloc((b - a) * 3 + 1);
    size_t o = 0;
    for (size_t i = a; fix && i < b; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch < 0x80) fix[o++] = (char)ch;
        else memcpy(fix + o, "\xef\xbf\xbd", 3), o += 3; /* keep ASCII, replace the rest */
    }
    s = fix ? json_stringn(fix, o) : NULL;
    free(fix);
    return s;
}

json_t *pr_tokens(const er_encoding *e, const char *input, size_t input_len) {
    json_t *toks = json_array();
    for (size_t k = 0; k < e->n && toks; k++) {
        json_t *t;
        if (e->special_mask[k]) /* TEI: the token itself, no offsets */
            t = json_pack("{s:i,s:s,s:b,s:n,s:n}", "id", e->ids[k], "text", e->tokens[k],
                          "special", 1, "start", "stop");
        else
            t = json_pack("{s:i,s:o,s:b,s:i,s:i}", "id", e->ids[k], "text",
                          slice_json(input, input_len, e->byte_offsets[k].start, e->byte_offsets[k].end),
                          "special", 0, "start", (int)e->byte_offsets[k].start, "stop",
                          (int)e->byte_offsets[k].end);
        json_array_append_new(toks, t);
    }
    return toks;
}

json_t *pr_hf_entities(json_t *r, bool aggregated) {
    json_t *ents = json_incref(json_object_get(r, "entities"));
    json_decref(r);
    size_t i;
    json_t *e;
    json_array_foreach(ents, i, e) {
        if (!aggregated) continue;
        json_object_set(e, "entity_group", json_object_get(e, "entity"));
        json_object_del(e, "entity");
    }
    return ents;
}

json_t *pr_without_cache(json_t *r) {
    json_object_del(r, "cache");
    return r;
}
