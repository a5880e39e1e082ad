/* Unigram (SentencePiece): the word is cut where the sum of the pieces'
 * scores (log probabilities) is highest, by Viterbi over the word's bytes,
 * as the Rust library's encode_optimized.  Every piece is found through a
 * byte trie built once at load; a code point no piece starts with costs
 * the lowest score minus 10 and is the unk token, and runs of unknowns are
 * fused into one token whose string is the text it covers (the Rust
 * library's fuse_unk, always on for Unigram).  Such a token, when its text
 * is no piece, becomes byte pieces "<0xAB>" under byte_fallback, else unk
 * with tok = TK_NONE: the pipeline gives it its text as its string. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)
#define UNK_PENALTY 10.0 /* the Rust library's K_UNK_PENALTY */
#define STACK_NODES 256  /* words up to this many bytes need no heap */

/* The trie: node 0 is the root.  An edge (parent, byte) holds its child
 * node and the id of the piece that ends there, so each byte of a search
 * touches one slot: the root's edges are a table, the others an
 * open-addressing hash keyed (parent << 8 | byte) + 1 (0: an empty slot). */
typedef struct {
    uint32_t key, child;
    int32_t piece; /* -1: no piece ends here */
} edge;

#define MAX_NODES (1u << 23) /* keys fit 32 bits */

typedef struct {
    edge *root; /* [256], child 0: no edge */
    edge *e;
    size_t emask, n_edges, n_nodes;
} trie;

typedef struct {
    tk_model base;
    double *score; /* [n_pieces] */
    size_t n_pieces;
    double unk_score;
    bool byte_fallback;
    trie tr;
} unigram;

/* One Viterbi cell per byte position of the word (code point boundaries only). */
typedef struct {
    double score;
    int32_t start; /* byte position the best path's last token starts at; -1: none yet */
    int32_t id;
    uint32_t cp; /* the code point index at this byte position */
} cell;

static er_status nomem(er_err *err) { return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory"); }

static inline uint32_t edge_key(uint32_t node, uint8_t c) { return (node << 8 | c) + 1; }

static inline size_t edge_slot(const trie *tr, uint32_t key) {
    return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 32) & tr->emask;
}

/* The edge from node by byte c, NULL if none (the trie's edges are the
 * loader's to write, through the same pointer). */
static inline edge *trie_step(const trie *tr, uint32_t node, uint8_t c) {
    if (node == 0) return tr->root[c].child ? &tr->root[c] : NULL;
    if (!tr->e) return NULL;
    uint32_t key = edge_key(node, c);
    for (size_t i = edge_slot(tr, key);; i = (i + 1) & tr->emask) {
        if (tr->e[i].key == key) return &tr->e[i];
        if (!tr->e[i].key) return NULL;
    }
}

static er_status edges_grow(trie *tr, er_err *err) {
    size_t size = tr->e ? (tr->emask + 1) * 2 : 4096;
    edge *e = calloc(size, sizeof *e);
    if (!e) return nomem(err);
    edge *old = tr->e;
    size_t old_size = old ? tr->emask + 1 : 0;
    tr->e = e;
    tr->emask = size - 1;
    for (size_t i = 0; i < old_size; i++) {
        if (!old[i].key) continue;
        size_t j = edge_slot(tr, old[i].key);
        while (e[j].key) j = (j + 1) & tr->emask;
        e[j] = old[i];
    }
    free(old);
    return ER_OK;
}

/* A new edge from node by byte c to a new node; *out is it. */
static er_status trie_add_edge(trie *tr, uint32_t node, uint8_t c, edge **out, er_err *err) {
    if (tr->n_nodes + 1 >= MAX_NODES) return er_set(err, ER_ERR_CAPACITY, "tokenizer: Unigram trie too large");
    uint32_t child = (uint32_t)++tr->n_nodes;
    if (node == 0) {
        tr->root[c] = (edge){0, child, -1};
        *out = &tr->root[c];
        return ER_OK;
    }
    er_status st;
    if ((tr->n_edges + 1) * 2 > (tr->e ? tr->emask + 1 : 0) && (st = edges_grow(tr, err))) return st;
    uint32_t key = edge_key(node, c);
    size_t i = edge_slot(tr, key);
    while (tr->e[i].key) i = (i + 1) & tr->emask;
    tr->e[i] = (edge){key, child, -1};
    tr->n_edges++;
    *out = &tr->e[i];
    return ER_OK;
}

/* Piece s[0, n) is id (a repeated piece: the last id, as the Rust library's map). */
static er_status trie_insert(trie *tr, const uint8_t *s, size_t n, int32_t id, er_err *err) {
    uint32_t node = 0;
    edge *last = NULL;
    for (size_t i = 0; i < n; i++) {
        last = trie_step(tr, node, s[i]);
        er_status st;
        if (!last && (st = trie_add_edge(tr, node, s[i], &last, err))) return st;
        node = last->child;
    }
    if (last) last->piece = id;
    return ER_OK;
}

static size_t utf8_len(uint8_t lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

/* Offers the path through cell `from` plus a token [from, to) of `id`. */
static inline void relax(cell *c, size_t from, size_t to, int32_t id, double score) {
    double cand = c[from].score + score;
    if (c[to].start < 0 || cand > c[to].score) c[to] = (cell){cand, (int32_t)from, id, c[to].cp};
}

/* The forward pass over the word's n bytes w (cells c[0, n]). */
static void viterbi(const unigram *u, const uint8_t *w, size_t n, cell *c, uint32_t cp0) {
    for (size_t i = 0; i <= n; i++) c[i].start = -1;
    c[0].score = 0;
    uint32_t cp = cp0;
    for (size_t at = 0; at < n; cp++) {
        size_t mblen = utf8_len(w[at]);
        c[at].cp = cp;
        bool single = false;
        uint32_t node = 0;
        const edge *ed;
        for (size_t k = at; k < n && (ed = trie_step(&u->tr, node, w[k])) != NULL; k++) {
            node = ed->child;
            int32_t id = ed->piece;
            if (id < 0) continue;
            relax(c, at, k + 1, id, u->score[id]);
            single |= k + 1 - at == mblen;
        }
        if (!single) relax(c, at, at + mblen, u->base.unk_id, u->unk_score);
        at += mblen;
    }
    c[n].cp = cp;
}

/* The token for the fused unknown text w[0, n) at code points [cs, ce). */
static er_status push_unknown(const unigram *u, const er_tokenizer *t, const uint8_t *w, size_t n, uint32_t cs,
                              uint32_t ce, tk_tokens *out, er_err *err) {
    if (u->base.unk_id < 0) /* the Rust library fails in the Viterbi pass already */
        return er_set(err, ER_ERR_FORMAT, "tokenizer: Unigram: unknown text and the model has no unk_id");
    int32_t id = tk_vocab_find(t, NULL, 0, w, n);
    if (id >= 0) return tk_tokens_push(out, (tk_token){id, t->id_off[id], cs, ce, 0, 0}, err);
    if (u->byte_fallback) {
        size_t mark = out->n;
        for (size_t i = n; i-- > 0;) { /* backwards: backtrack reverses the tokens */
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", w[i]);
            int32_t b = tk_vocab_find(t, NULL, 0, (const uint8_t *)name, 6);
            er_status st = b < 0 ? ER_OK : tk_tokens_push(out, (tk_token){b, t->id_off[b], cs, ce, 0, 0}, err);
            if (st) return st;
            if (b < 0) {
                out->n = mark; /* a byte without its piece: the whole run is unk */
                break;
            }
        }
        if (out->n > mark) return ER_OK;
    }
    return tk_tokens_push(out, (tk_token){u->base.unk_id, TK_NONE, cs, ce, 0, 0}, err);
}

/* The best path, from its end back, as tokens in order (unknowns fused). */
static er_status backtrack(const unigram *u, const er_tokenizer *t, const uint8_t *w, size_t n, const cell *c,
                           tk_tokens *out, er_err *err) {
    size_t mark = out->n, end = n, unk_end = 0;
    bool in_unk = false;
    er_status st = ER_OK;
    while (end > 0 && !st) {
        const cell *x = &c[end];
        size_t start = (size_t)x->start;
        bool unk = x->id == u->base.unk_id;
        if (in_unk && !unk) {
            st = push_unknown(u, t, w + end, unk_end - end, c[end].cp, c[unk_end].cp, out, err);
            in_unk = false;
        }
        if (st) break;
        if (unk) {
            if (!in_unk) unk_end = end;
            in_unk = true;
        } else {
            st = tk_tokens_push(out, (tk_token){x->id, t->id_off[x->id], c[start].cp, c[end].cp, 0, 0}, err);
        }
        end = start;
    }
    if (!st && in_unk) st = push_unknown(u, t, w, unk_end, c[0].cp, c[unk_end].cp, out, err);
    if (st) return st;
    for (size_t i = mark, j = out->n; i + 1 < j; i++, j--) { /* reverse into order */
        tk_token tmp = out->v[i];
        out->v[i] = out->v[j - 1];
        out->v[j - 1] = tmp;
    }
    return ER_OK;
}

static er_status unigram_tokenize(const tk_model *self, const er_tokenizer *t, const tk_normalized *s, size_t a,
                                  size_t b, tk_tokens *out, er_err *err) {
    const unigram *u = (const unigram *)self;
    const uint8_t *w = s->bytes + s->byte_at[a];
    size_t n = s->byte_at[b] - s->byte_at[a];
    cell stack[STACK_NODES + 1], *c = stack;
    if (n > STACK_NODES && !(c = malloc((n + 1) * sizeof *c))) return nomem(err);
    viterbi(u, w, n, c, (uint32_t)a);
    er_status st = backtrack(u, t, w, n, c, out, err);
    if (c != stack) free(c);
    return st;
}

static void unigram_free(tk_model *self) {
    unigram *u = (unigram *)self;
    if (!u) return;
    free(u->score);
    free(u->tr.e);
    free(u->tr.root);
    free(u);
}

/* model.vocab: [[piece, score], ...], ids in order, into t's vocabulary and the trie. */
static er_status load_pieces(unigram *u, er_tokenizer *t, json_t *vocab, er_err *err) {
    size_t n = json_array_size(vocab);
    if (!json_is_array(vocab) || n == 0) return FMT("a Unigram model needs a non-empty vocab array");
    if (n >= TK_MAX_ID) return FMT("Unigram vocab of %zu pieces is too large", n);
    if (!(u->score = malloc(n * sizeof *u->score))) return nomem(err);
    u->n_pieces = n;
    double min_score = INFINITY;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(vocab, i), *p = json_array_get(e, 0), *sc = json_array_get(e, 1);
        if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_string(p) || !json_is_number(sc))
            return FMT("model.vocab[%zu] must be [piece, score]", i);
        size_t len = json_string_length(p);
        er_status st = tk_vocab_add(t, json_string_value(p), len, (int32_t)i, err);
        if (!st) st = trie_insert(&u->tr, (const uint8_t *)json_string_value(p), len, (int32_t)i, err);
        if (st) return st;
        u->score[i] = json_number_value(sc);
        if (u->score[i] < min_score) min_score = u->score[i];
    }
    u->unk_score = min_score - UNK_PENALTY;
    return ER_OK;
}

/* {"type": "Unigram", "unk_id": 2, "vocab": [["<pad>", 0.0], ...], "byte_fallback": false} */
er_status tk_unigram_load(er_tokenizer *t, json_t *json, tk_model **out, er_err *err) {
    unigram *u = calloc(1, sizeof *u);
    if (!u) return nomem(err);
    u->base = (tk_model){-1, unigram_tokenize, unigram_free};
    u->tr.root = calloc(256, sizeof *u->tr.root);
    er_status st = u->tr.root ? load_pieces(u, t, json_object_get(json, "vocab"), err) : nomem(err);
    json_t *unk = json_object_get(json, "unk_id");
    if (!st && unk && !json_is_null(unk)) {
        if (!json_is_integer(unk) || json_integer_value(unk) < 0 || (size_t)json_integer_value(unk) >= u->n_pieces)
            st = FMT("model.unk_id must be an index into the vocab");
        else
            u->base.unk_id = (int32_t)json_integer_value(unk);
    }
    if (!st) st = tk_json_bool(json, "byte_fallback", false, &u->byte_fallback, err);
    if (st) {
        unigram_free(&u->base);
        return st;
    }
    *out = &u->base;
    return ER_OK;
}
