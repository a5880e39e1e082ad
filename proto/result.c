/* Result JSON builders (see result.h). */
#include "result.h"

#include <stdlib.h>
#include <string.h>


json_t *pr_floats(const float *x, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real(x[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static void set_cache(json_t *o, int hit) {
    if (hit >= 0) json_object_set_new(o, "cache", json_string(hit ? "hit" : "miss"));
}

/* Probabilities as HF's text-classification pipeline: sigmoid for
 * multi-label problems and single-logit heads, else softmax.  p is caller
 * scratch of n floats. */
static void probs(const float *logits, int n, bool multi, float *p) {
    if (multi || n == 1) pp_sigmoid(logits, n, p);
    else pp_softmax(logits, n, p);
}

json_t *pr_seqcls_result(const float *logits, int n, const char *const *labels, bool multi,
                         int top_k, int hit) {
    float *p = malloc((size_t)n * (sizeof(float) + sizeof(int)));
    if (!p) return NULL;
    int *idx = (int *)(p + n);
    probs(logits, n, multi, p);
    int k = pp_top_k(p, n, top_k > 0 ? top_k : n, idx);
    json_t *scores = json_object();
    for (int i = 0; scores && i < k; i++)
        json_object_set_new(scores, labels[idx[i]], json_real(p[idx[i]]));
    json_t *o = json_pack("{s:s,s:f,s:o}", "label", labels[idx[0]], "score", (double)p[idx[0]],
                          "scores", scores);
    if (o) set_cache(o, hit);
    free(p);
    return o;
}

json_t *pr_tei_scores(const float *logits, int n, const char *const *labels, bool multi,
                      bool raw) {
    float *p = malloc((size_t)n * (sizeof(float) + sizeof(int)));
    if (!p) return NULL;
    int *idx = (int *)(p + n);
    if (raw) memcpy(p, logits, (size_t)n * sizeof(float));
    else probs(logits, n, multi, p);
    int k = pp_top_k(p, n, n, idx);
    json_t *a = json_array();
    for (int i = 0; a && i < k; i++)
        json_array_append_new(a, json_pack("{s:f,s:s}", "score", (double)p[idx[i]], "label",
                                           labels[idx[i]]));
    free(p);
    return a;
}

/* HF's convert_tokens_to_string for WordPiece: " ".join, then " ##" -> "". */
static json_t *join_tokens(const pp_token *tok, int a, int b) {
    size_t n = 1;
    for (int i = a; i < b; i++) n += strlen(tok[i].token) + 1;
    char *s = malloc(n), *w = s;
    if (!s) return NULL;
    for (int i = a; i < b; i++) {
        const char *t = tok[i].token;
        if (i > a) {
            if (strncmp(t, "##", 2) == 0) t += 2;
            else *w++ = ' ';
        }
        size_t l = strlen(t);
        memcpy(w, t, l);
        w += l;
    }
    *w = '\0';
    json_t *j = json_string(s);
    free(s);
    return j;
}

json_t *pr_tokcls_result(const float *logits, int n_tok, int n_labels, const char *const *labels,
                         const pp_token *tok, bool has_offsets, const char *text, pp_agg agg,
                         int hit) {
    pp_entity *ents = malloc((size_t)(n_tok > 0 ? n_tok : 1) * sizeof *ents);
    float *scratch = malloc((size_t)n_labels * 2 * sizeof(float));
    json_t *arr = json_array();
    if (!ents || !scratch || !arr) goto fail;
    int n = pp_entities(logits, n_tok, n_labels, labels, tok, agg, scratch, ents);
    for (int i = 0; i < n; i++) {
        const pp_entity *e = &ents[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o)) goto fail;
        json_object_set_new(o, "entity", json_stringn(e->group, e->group_len));
        json_object_set_new(o, "score", json_real(e->score));
        if (e->index >= 0) json_object_set_new(o, "index", json_integer(e->index));
        json_object_set_new(o, "word", join_tokens(tok, e->first, e->last));
        if (has_offsets) {
            json_object_set_new(o, "start", json_integer(e->cstart));
            json_object_set_new(o, "end", json_integer(e->cend));
            json_object_set_new(o, "text", json_stringn(text + e->bstart, e->bend - e->bstart));
        }
    }
    free(ents);
    free(scratch);
    json_t *o = json_pack("{s:o}", "entities", arr);
    if (o) set_cache(o, hit);
    return o;
fail:
    free(ents);
    free(scratch);
    json_decref(arr);
    return NULL;
}

json_t *pr_qa_result(const float *logits, int n_tok, const pp_token *tok, const bool *ctx,
                     const char *context, int max_answer_len, int hit) {
    int s = 0, e = 0;
    float score = 0;
    json_t *o;
    if (!pp_qa_best_span(logits, n_tok, ctx, max_answer_len, &s, &e, &score)) {
        o = json_pack("{s:s,s:f,s:i,s:i}", "answer", "", "score", 0.0, "start", 0, "end", 0);
    } else {
        o = json_pack("{s:s%,s:f,s:i,s:i}", "answer", context + tok[s].bstart,
                      (size_t)(tok[e].bend - tok[s].bstart), "score", (double)score, "start",
                      (int)tok[s].cstart, "end", (int)tok[e].cend);
    }
    if (o) set_cache(o, hit);
    return o;
}

json_t *pr_embedding_result(const float *v, int dim, int hit) {
    json_t *o = json_pack("{s:o}", "embedding", pr_floats(v, dim));
    if (o) set_cache(o, hit);
    return o;
}

json_t *pr_sparse_values(const float *v, int dim) {
    json_t *a = json_array();
    for (int i = 0; a && i < dim; i++) {
        if (!(v[i] > 0)) continue; /* SPLADE weights are >= 0: the rest are absent */
        if (json_array_append_new(a, json_pack("{s:i,s:f}", "index", i, "value", (double)v[i]))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *pr_sparse_result(const float *v, int dim, int hit) {
    json_t *o = json_pack("{s:o}", "sparse_embedding", pr_sparse_values(v, dim));
    if (o) set_cache(o, hit);
    return o;
}
