#include "post.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pp_softmax(const float *x, int n, float *out) {
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int i = 0; i < n; i++) {
        out[i] = expf(x[i] - m);
        s += out[i];
    }
    for (int i = 0; i < n; i++) out[i] = (float)(out[i] / s);
}

void pp_sigmoid(const float *x, int n, float *out) {
    for (int i = 0; i < n; i++)
        out[i] = x[i] >= 0 ? 1.0f / (1.0f + expf(-x[i])) : expf(x[i]) / (1.0f + expf(x[i]));
}

int pp_top_k(const float *p, int n, int k, int *idx) {
    if (k > n) k = n;
    if (k < 0) k = 0;
    /* Selection by insertion: k and n are label counts (small). */
    int m = 0;
    for (int i = 0; i < n; i++) {
        int pos = m;
        while (pos > 0 && p[i] > p[idx[pos - 1]]) pos--;
        if (pos >= k) continue;
        int last = m < k ? m : k - 1;
        for (int j = last; j > pos; j--) idx[j] = idx[j - 1];
        idx[pos] = i;
        if (m < k) m++;
    }
    return m;
}

char *pp_base64_f32(const float *x, int n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t nb = (size_t)n * 4;
    char *out = malloc((nb + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    uint8_t b[3];
    size_t o = 0, filled = 0;
    for (size_t i = 0; i < nb; i++) {
        uint32_t u;
        memcpy(&u, &x[i / 4], 4);
        b[filled++] = (uint8_t)(u >> (8 * (i % 4))); /* little-endian on any host */
        if (filled == 3 || i + 1 == nb) {
            uint32_t v = (uint32_t)b[0] << 16 | (filled > 1 ? (uint32_t)b[1] << 8 : 0) |
                         (filled > 2 ? b[2] : 0);
            out[o++] = tab[v >> 18 & 63];
            out[o++] = tab[v >> 12 & 63];
            out[o++] = filled > 1 ? tab[v >> 6 & 63] : '=';
            out[o++] = filled > 2 ? tab[v & 63] : '=';
            filled = 0;
        }
    }
    out[o] = '\0';
    return out;
}

int pp_agg_parse(const char *s) {
    static const char *const names[] = {"none", "simple", "first", "average", "max"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static int argmax(const float *p, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[b]) b = i;
    return b;
}

/* Code points in a UTF-8 string (HF compares Python string lengths). */
static size_t cp_len(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool is_subword(const pp_token *t) {
    if (t->unk) return false;
    if (t->cend > t->cstart || t->bend > t->bstart)
        return cp_len(t->token) != t->cend - t->cstart;
    return strncmp(t->token, "##", 2) == 0;
}

/* "B-PER" -> ('B', "PER"); anything else is an I- continuation of itself. */
static char bi_tag(const char *label, const char **tag) {
    if ((label[0] == 'B' || label[0] == 'I') && label[1] == '-') {
        *tag = label + 2;
        return label[0];
    }
    *tag = label;
    return 'I';
}

/* HF's aggregate_word over tokens [a, b) of the same word. */
static void aggregate_word(const float *logits, int n_labels, const pp_token *tok, int a, int b,
                           pp_agg agg, float *sc, float *acc, pp_entity *e) {
    int lab = 0;
    float score = 0;
    if (agg == PP_AGG_FIRST) {
        pp_softmax(logits + (size_t)a * n_labels, n_labels, sc);
        lab = argmax(sc, n_labels);
        score = sc[lab];
    } else if (agg == PP_AGG_MAX) {
        float best = -1;
        for (int i = a; i < b; i++) {
            pp_softmax(logits + (size_t)i * n_labels, n_labels, sc);
            int k = argmax(sc, n_labels);
            if (sc[k] > best) { /* first maximum wins, as Python's max() */
                best = sc[k];
                lab = k;
            }
        }
        score = best;
    } else { /* average */
        for (int j = 0; j < n_labels; j++) acc[j] = 0;
        for (int i = a; i < b; i++) {
            pp_softmax(logits + (size_t)i * n_labels, n_labels, sc);
            for (int j = 0; j < n_labels; j++) acc[j] += sc[j];
        }
        for (int j = 0; j < n_labels; j++) acc[j] /= (float)(b - a);
        lab = argmax(acc, n_labels);
        score = acc[lab];
    }
    e->label = lab;
    e->score = score;
    e->index = -1;
    e->first = a;
    e->last = b;
    e->cstart = tok[a].cstart;
    e->bstart = tok[a].bstart;
    e->cend = tok[b - 1].cend;
    e->bend = tok[b - 1].bend;
}

/* Step 1: per-token (none/simple) or per-word (first/average/max) entities. */
static int token_entities(const float *logits, int n_tok, int n_labels, const pp_token *tok,
                          pp_agg agg, float *scratch, pp_entity *out) {
    float *sc = scratch, *acc = scratch + n_labels;
    int n = 0;
    if (agg == PP_AGG_NONE || agg == PP_AGG_SIMPLE) {
        for (int i = 0; i < n_tok; i++) {
            if (tok[i].special) continue;
            pp_softmax(logits + (size_t)i * n_labels, n_labels, sc);
            int k = argmax(sc, n_labels);
            out[n++] = (pp_entity){.label = k, .score = sc[k], .index = i, .first = i, .last = i + 1,
                                   .cstart = tok[i].cstart, .cend = tok[i].cend,
                                   .bstart = tok[i].bstart, .bend = tok[i].bend};
        }
        return n;
    }
    /* Words are runs of non-special tokens: a token that is not a subword,
     * or a special token, closes the current word. */
    int a = -1;
    for (int i = 0; i <= n_tok; i++) {
        bool brk = i == n_tok || tok[i].special;
        if (a >= 0 && (brk || !is_subword(&tok[i]))) {
            aggregate_word(logits, n_labels, tok, a, i, agg, sc, acc, &out[n++]);
            a = -1;
        }
        if (!brk && a < 0) a = i;
    }
    return n;
}

/* Aggregation none: every token entity but "O", named by its full label. */
static int drop_outside(const char *const *labels, pp_entity *out, int n) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(labels[out[i].label], "O") == 0) continue;
        out[m] = out[i];
        out[m].group = labels[out[i].label];
        out[m].group_len = strlen(out[m].group);
        m++;
    }
    return m;
}

/* Step 2: HF's group_entities: B- starts a group, I-/bare continues a group
 * of the same tag; a group scores the mean of its members. */
static int group_entities(const char *const *labels, pp_entity *out, int n) {
    int m = 0;
    for (int i = 0; i < n;) {
        const char *tag;
        bi_tag(labels[out[i].label], &tag);
        int j = i + 1;
        double sum = out[i].score;
        for (; j < n; j++) {
            const char *t2;
            char bi = bi_tag(labels[out[j].label], &t2);
            if (bi == 'B' || strcmp(t2, tag) != 0) break;
            sum += out[j].score;
        }
        /* HF names the group by splitting the first label at its first '-'. */
        const char *first = labels[out[i].label];
        const char *dash = strchr(first, '-');
        const char *group = dash ? dash + 1 : first;
        if (strcmp(group, "O") != 0) {
            pp_entity g = out[i];
            g.group = group;
            g.group_len = strlen(group);
            g.score = (float)(sum / (j - i));
            g.index = -1;
            g.last = out[j - 1].last;
            g.cend = out[j - 1].cend;
            g.bend = out[j - 1].bend;
            out[m++] = g;
        }
        i = j;
    }
    return m;
}

int pp_entities(const float *logits, int n_tok, int n_labels, const char *const *labels,
                const pp_token *tok, pp_agg agg, float *scratch, pp_entity *out) {
    int n = token_entities(logits, n_tok, n_labels, tok, agg, scratch, out);
    return agg == PP_AGG_NONE ? drop_outside(labels, out, n) : group_entities(labels, out, n);
}

bool pp_qa_best_span(const float *logits, int n_tok, const bool *ctx, int max_len, int *start,
                     int *end, float *score) {
    float ms = -INFINITY, me = -INFINITY;
    for (int i = 0; i < n_tok; i++)
        if (ctx[i]) {
            ms = fmaxf(ms, logits[2 * i]);
            me = fmaxf(me, logits[2 * i + 1]);
        }
    if (ms == -INFINITY) return false;
    double zs = 0, ze = 0;
    for (int i = 0; i < n_tok; i++)
        if (ctx[i]) {
            zs += exp((double)logits[2 * i] - ms);
            ze += exp((double)logits[2 * i + 1] - me);
        }
    if (max_len < 1) max_len = 1;
    double best = -1;
    for (int s = 0; s < n_tok; s++) {
        if (!ctx[s]) continue;
        double ps = exp((double)logits[2 * s] - ms) / zs;
        for (int e = s; e < n_tok && e - s < max_len; e++) {
            if (!ctx[e]) continue;
            double p = ps * exp((double)logits[2 * e + 1] - me) / ze;
            if (p > best) {
                best = p;
                *start = s;
                *end = e;
            }
        }
    }
    *score = (float)best;
    return true;
}
