/* BPE (GPT-2, RoBERTa, ...): a word starts as one symbol per code point
 * (continuing_subword_prefix on all but the first, end_of_word_suffix on
 * the last; unknown ones become byte tokens <0xXX> with byte_fallback, else
 * the unk token, fused when fuse_unk), then the adjacent pair of lowest
 * merge rank (leftmost on a tie) is merged until no pair has a rank, as
 * the Rust library's Word::merge_all does with its priority queue.
 *
 * The merge ranks are an open-addressing hash map from an id pair, built
 * once at load.  A word's symbols and queue live on the stack up to
 * STACK_SYMBOLS code points; only longer words allocate (once per word).
 * Short words' results are kept in a per-thread cache (below). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

#define STACK_SYMBOLS 128

typedef struct {
    uint64_t key; /* (a + 1) << 32 | (b + 1); 0: empty slot */
    uint32_t rank;
    int32_t new_id;
} merge_slot;

typedef struct {
    tk_model base;
    merge_slot *merges;
    uint32_t merge_mask;
    uint32_t prefix_off, prefix_len, suffix_off, suffix_len; /* in the arena */
    bool byte_fallback, fuse_unk, ignore_merges;
    bool unk_missing; /* unk_token named but not in the vocabulary: an error when needed */
    uint64_t serial;  /* names the model in the word cache; never reused */
    int32_t byte_ids[256]; /* <0xXX> tokens for byte_fallback, -1 if absent */
} bpe_model;

typedef struct {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    uint32_t cs, ce;    /* code points of the word; ce == cs: merged away */
} symbol;

typedef struct {
    uint32_t rank, pos;
    int32_t new_id;
} queued_merge;

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a + 1) << 32 | ((uint32_t)b + 1); }

static uint32_t key_hash(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (uint32_t)key;
}

static const merge_slot *find_merge(const bpe_model *m, int32_t a, int32_t b) {
    if (!m->merges) return NULL;
    uint64_t key = pair_key(a, b);
    for (uint32_t i = key_hash(key) & m->merge_mask;; i = (i + 1) & m->merge_mask) {
        if (m->merges[i].key == key) return &m->merges[i];
        if (!m->merges[i].key) return NULL;
    }
}

/* A later merge of the same pair replaces the earlier (the Rust map is collected that way). */
static void insert_merge(bpe_model *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    uint64_t key = pair_key(a, b);
    uint32_t i = key_hash(key) & m->merge_mask;
    while (m->merges[i].key && m->merges[i].key != key) i = (i + 1) & m->merge_mask;
    m->merges[i] = (merge_slot){key, rank, new_id};
}

/* ---- The queue: a binary min-heap on (rank, pos) ---------------------- */

static bool merge_before(queued_merge x, queued_merge y) {
    return x.rank != y.rank ? x.rank < y.rank : x.pos < y.pos;
}

static void queue_push(queued_merge *q, size_t *n, queued_merge x) {
    size_t i = (*n)++;
    while (i > 0 && merge_before(x, q[(i - 1) / 2])) {
        q[i] = q[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q[i] = x;
}

static queued_merge queue_pop(queued_merge *q, size_t *n) {
    queued_merge top = q[0], last = q[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && merge_before(q[c + 1], q[c])) c++;
        if (!merge_before(q[c], last)) break;
        q[i] = q[c];
        i = c;
    }
    if (*n) q[i] = last;
    return top;
}

/* Queues the merge of symbol pos with its next one, if the pair has a rank. */
static void queue_pair(const bpe_model *m, const symbol *sym, uint32_t pos, queued_merge *q, size_t *n) {
    if (sym[pos].next < 0) return;
    const merge_slot *ms = find_merge(m, sym[pos].id, sym[sym[pos].next].id);
    if (ms) queue_push(q, n, (queued_merge){ms->rank, pos, ms->new_id});
}

/* Word::merge_all without dropout.  q has room for 3 entries per symbol:
 * the first pairs, then at most two new ones per merge. */
static void merge_all(const bpe_model *m, symbol *sym, size_t n_sym, queued_merge *q) {
    size_t n = 0;
    for (size_t i = 0; i + 1 < n_sym; i++) queue_pair(m, sym, (uint32_t)i, q, &n);
    while (n) {
        queued_merge top = queue_pop(q, &n);
        symbol *s = &sym[top.pos];
        if (s->ce == s->cs || s->next < 0) continue;
        symbol *right = &sym[s->next];
        const merge_slot *ms = find_merge(m, s->id, right->id);
        if (!ms || ms->new_id != top.new_id) continue; /* a stale entry */
        s->id = top.new_id;
        s->ce = right->ce;
        s->next = right->next;
        right->ce = right->cs;
        if (s->next >= 0) sym[s->next].prev = (int32_t)top.pos;
        if (s->prev >= 0) queue_pair(m, sym, (uint32_t)s->prev, q, &n);
        queue_pair(m, sym, top.pos, q, &n);
    }
}

/* ---- A word's first symbols (BPE::merge_word before merge_all) -------- */

typedef struct {
    symbol *sym;
    size_t n;
    int32_t unk_id;     /* the pending unk symbol (fuse_unk), -1 if none */
    uint32_t unk_start; /* its first code point */
} word_builder;

static void add_symbol(word_builder *w, int32_t id, uint32_t cs, uint32_t ce) {
    size_t i = w->n++;
    w->sym[i] = (symbol){id, (int32_t)i - 1, -1, cs, ce};
    if (i) w->sym[i - 1].next = (int32_t)i;
}

static void flush_unk(word_builder *w, uint32_t end) {
    if (w->unk_id >= 0) add_symbol(w, w->unk_id, w->unk_start, end);
    w->unk_id = -1;
}

/* The byte tokens of piece[0, n) (prefix and suffix included, as in Rust),
 * all with the code point's offsets; false if one is missing. */
static bool add_byte_fallback(const bpe_model *m, word_builder *w, const uint8_t *piece, size_t n, uint32_t k) {
    for (size_t i = 0; i < n; i++)
        if (m->byte_ids[piece[i]] < 0) return false;
    flush_unk(w, k);
    for (size_t i = 0; i < n; i++) add_symbol(w, m->byte_ids[piece[i]], k, k + 1);
    return true;
}

/* Code point k, unknown to the vocabulary: the unk token, fused with the
 * previous one under fuse_unk; dropped when the model has no unk token. */
static er_status add_unknown(const bpe_model *m, word_builder *w, uint32_t k, er_err *err) {
    if (m->unk_missing) return er_set(err, ER_ERR_FORMAT, "tokenizer: the BPE unk_token is not in the vocabulary");
    if (m->base.unk_id < 0) return ER_OK;
    if (w->unk_id >= 0 && m->fuse_unk) return ER_OK;
    flush_unk(w, k);
    w->unk_id = m->base.unk_id;
    w->unk_start = k;
    return ER_OK;
}

/* Code point k of the word [a, b) as the vocabulary spells it: prefix
 * unless first, suffix if last.  Returns its length in piece. */
static size_t spelled(const bpe_model *m, const er_tokenizer *t, const tk_normalized *s, size_t a, size_t b,
                      size_t k, uint8_t *piece) {
    const uint8_t *arena = (const uint8_t *)t->arena;
    size_t n = 0, clen = s->byte_at[k + 1] - s->byte_at[k];
    if (k > a) memcpy(piece, arena + m->prefix_off, n = m->prefix_len);
    memcpy(piece + n, s->bytes + s->byte_at[k], clen);
    n += clen;
    if (k + 1 == b) {
        memcpy(piece + n, arena + m->suffix_off, m->suffix_len);
        n += m->suffix_len;
    }
    return n;
}

/* The vocabulary id of code point k as spelled(); the common case (no
 * suffix on it) without copying. */
static int32_t code_point_id(const bpe_model *m, const er_tokenizer *t, const tk_normalized *s, size_t a,
                             size_t b, size_t k, uint8_t *piece) {
    if (k + 1 == b && m->suffix_len) return tk_vocab_find(t, NULL, 0, piece, spelled(m, t, s, a, b, k, piece));
    const uint8_t *pre = k > a ? (const uint8_t *)t->arena + m->prefix_off : NULL;
    return tk_vocab_find(t, pre, pre ? m->prefix_len : 0, s->bytes + s->byte_at[k], s->byte_at[k + 1] - s->byte_at[k]);
}

static er_status build_word(const bpe_model *m, const er_tokenizer *t, const tk_normalized *s, size_t a,
                            size_t b, word_builder *w, er_err *err) {
    uint8_t piece[2 * TK_MAX_TOKEN_BYTES + 4];
    for (size_t k = a; k < b; k++) {
        int32_t id = code_point_id(m, t, s, a, b, k, piece);
        uint32_t at = (uint32_t)(k - a);
        if (id >= 0) {
            flush_unk(w, at);
            add_symbol(w, id, at, at + 1);
        } else if (!(m->byte_fallback && add_byte_fallback(m, w, piece, spelled(m, t, s, a, b, k, piece), at))) {
            er_status st = add_unknown(m, w, at, err);
            if (st) return st;
        }
    }
    flush_unk(w, (uint32_t)(b - a));
    return ER_OK;
}

/* ---- Word cache -------------------------------------------------------
 * Words repeat (a few thousand make most of any text) and merging is the
 * costly part, so each thread keeps the results of short words it saw,
 * direct-mapped by a hash of the word's bytes.  Per thread: no lock.  An
 * entry names its model by a serial number never reused, so entries of a
 * freed model never answer for another one. */
#define CACHE_SLOTS 4096
#define CACHE_WORD_BYTES 23
#define CACHE_TOKENS 8

typedef struct {
    uint64_t model; /* 0: empty */
    uint32_t hash;
    uint8_t len, n_tok;
    uint8_t word[CACHE_WORD_BYTES];
    uint8_t ends[CACHE_TOKENS]; /* each token's end, in code points of the word */
    int32_t ids[CACHE_TOKENS];
} cache_entry;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_ready;
static atomic_uint_fast64_t next_serial = 1;

static void cache_init(void) { cache_ready = pthread_key_create(&cache_key, free) == 0; }

/* The slot of word[0, n) in this thread's cache (NULL: no cache). */
static cache_entry *cache_slot(const uint8_t *word, size_t n, uint32_t *hash) {
    pthread_once(&cache_once, cache_init);
    if (!cache_ready) return NULL;
    cache_entry *c = pthread_getspecific(cache_key);
    if (!c) {
        if (!(c = calloc(CACHE_SLOTS, sizeof *c))) return NULL;
        if (pthread_setspecific(cache_key, c)) {
            free(c);
            return NULL;
        }
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ word[i]) * 16777619u;
    *hash = h;
    return &c[h & (CACHE_SLOTS - 1)];
}

static bool cache_hit(const cache_entry *e, const bpe_model *m, uint32_t hash, const uint8_t *word, size_t n) {
    return e->model == m->serial && e->hash == hash && e->len == n && !memcmp(e->word, word, n);
}

static er_status push_cached(const cache_entry *e, const er_tokenizer *t, size_t a, tk_tokens *out, er_err *err) {
    uint32_t start = 0;
    for (size_t i = 0; i < e->n_tok; i++) {
        tk_token tok = {e->ids[i], t->id_off[e->ids[i]], (uint32_t)a + start, (uint32_t)a + e->ends[i], 0, 0};
        er_status st = tk_tokens_push(out, tok, err);
        if (st) return st;
        start = e->ends[i];
    }
    return ER_OK;
}

/* Tokens [from, n) of out, the word at code point a, into slot e. */
static void cache_put(cache_entry *e, const bpe_model *m, uint32_t hash, const uint8_t *word, size_t n,
                      const tk_tokens *out, size_t from, size_t a) {
    size_t k = out->n - from;
    if (k > CACHE_TOKENS) return;
    *e = (cache_entry){m->serial, hash, (uint8_t)n, (uint8_t)k, {0}, {0}, {0}};
    memcpy(e->word, word, n);
    for (size_t j = 0; j < k && j < CACHE_TOKENS; j++) {
        e->ids[j] = out->v[from + j].id;
        e->ends[j] = (uint8_t)(out->v[from + j].ce - a);
    }
}

/* The merges of the word [a, b) into out. */
static er_status merge_word(const bpe_model *m, const er_tokenizer *t, const tk_normalized *s, size_t a,
                            size_t b, tk_tokens *out, er_err *err) {
    size_t per_cp = m->byte_fallback ? 4 + m->prefix_len + m->suffix_len : 1, cap = (b - a) * per_cp;
    symbol stack_sym[STACK_SYMBOLS];
    queued_merge stack_q[3 * STACK_SYMBOLS];
    symbol *sym = stack_sym;
    queued_merge *q = stack_q;
    if (cap > STACK_SYMBOLS) { /* a long word: its own memory, once */
        sym = malloc(cap * sizeof *sym);
        q = malloc(3 * cap * sizeof *q);
        if (!sym || !q) {
            free(sym);
            free(q);
            return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
        }
    }
    word_builder w = {sym, 0, -1, 0};
    er_status st = build_word(m, t, s, a, b, &w, err);
    if (!st && w.n) {
        merge_all(m, sym, w.n, q);
        for (int32_t i = 0; i >= 0 && !st; i = sym[i].next) {
            tk_token tok = {sym[i].id, t->id_off[sym[i].id], (uint32_t)a + sym[i].cs, (uint32_t)a + sym[i].ce, 0, 0};
            st = tk_tokens_push(out, tok, err);
        }
    }
    if (sym != stack_sym) {
        free(sym);
        free(q);
    }
    return st;
}

static er_status bpe_tokenize(const tk_model *self, const er_tokenizer *t, const tk_normalized *s, size_t a,
                              size_t b, tk_tokens *out, er_err *err) {
    const bpe_model *m = (const bpe_model *)self;
    const uint8_t *word = s->bytes + s->byte_at[a];
    size_t n = s->byte_at[b] - s->byte_at[a], from = out->n;
    if (m->ignore_merges) {
        int32_t id = tk_vocab_find(t, NULL, 0, word, n);
        if (id >= 0) return tk_tokens_push(out, (tk_token){id, t->id_off[id], (uint32_t)a, (uint32_t)b, 0, 0}, err);
    }
    uint32_t hash = 0;
    cache_entry *e = n <= CACHE_WORD_BYTES ? cache_slot(word, n, &hash) : NULL;
    if (e && cache_hit(e, m, hash, word, n)) return push_cached(e, t, a, out, err);
    er_status st = merge_word(m, t, s, a, b, out, err);
    if (!st && e) cache_put(e, m, hash, word, n, out, from, a);
    return st;
}

static void bpe_free(tk_model *self) {
    bpe_model *m = (bpe_model *)self;
    free(m->merges);
    free(m);
}

/* ---- Loading ------------------------------------------------------------ */

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)

/* Merge i of the "merges" array: "a b" (exactly one space; "#version"
 * lines are skipped, as the Rust library does) or ["a", "b"].  *skip true
 * for a "#version" line. */
static er_status merge_parts(json_t *v, size_t i, const char **a, size_t *na, const char **b, size_t *nb,
                             bool *skip, er_err *err) {
    *skip = false;
    if (json_is_array(v)) {
        json_t *x = json_array_get(v, 0), *y = json_array_get(v, 1);
        if (json_array_size(v) != 2 || !json_is_string(x) || !json_is_string(y))
            return FMT("model.merges[%zu] must be two strings", i);
        *a = json_string_value(x), *na = json_string_length(x);
        *b = json_string_value(y), *nb = json_string_length(y);
        return ER_OK;
    }
    if (!json_is_string(v)) return FMT("model.merges[%zu] must be a string or a pair", i);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= 8 && !memcmp(s, "#version", 8)) return *skip = true, ER_OK;
    const char *sp = memchr(s, ' ', n);
    if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
        return FMT("model.merges[%zu] must be two tokens separated by one space", i);
    *a = s, *na = (size_t)(sp - s);
    *b = sp + 1, *nb = n - *na - 1;
    return ER_OK;
}

/* The id of a merge's token s[0, n) after skipping `skip` bytes of it. */
static er_status merge_token_id(const er_tokenizer *t, const uint8_t *pre, size_t npre, const char *s, size_t n,
                                size_t skip, int32_t *id, er_err *err) {
    if (n < skip) return FMT("merge token \"%.*s\" is shorter than the subword prefix", (int)n, s);
    *id = tk_vocab_find(t, pre, npre, (const uint8_t *)s + skip, n - skip);
    if (*id < 0) return FMT("merge token \"%.*s%.*s\" is not in the vocabulary", (int)npre, pre ? (const char *)pre : "",
                          (int)(n - skip), s + skip);
    return ER_OK;
}

/* The merge map: rank = position, pair (a, b) -> the id of a + b without
 * b's continuing_subword_prefix. */
static er_status load_merges(bpe_model *m, const er_tokenizer *t, json_t *merges, er_err *err) {
    if (!json_is_array(merges)) return FMT("model.merges must be an array");
    size_t n = json_array_size(merges), size = 16;
    if (n > TK_MAX_ID) return FMT("model.merges has more than %d entries", TK_MAX_ID);
    while (size < 2 * n) size *= 2;
    if (!(m->merges = calloc(size, sizeof *m->merges))) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    m->merge_mask = (uint32_t)(size - 1);
    uint32_t rank = 0;
    for (size_t i = 0; i < n; i++) {
        const char *a = "", *b = "";
        size_t na = 0, nb = 0;
        bool skip = false;
        int32_t ida = -1, idb = -1, idab = -1;
        er_status st = merge_parts(json_array_get(merges, i), i, &a, &na, &b, &nb, &skip, err);
        if (!st && skip) continue;
        if (!st) st = merge_token_id(t, NULL, 0, a, na, 0, &ida, err);
        if (!st) st = merge_token_id(t, NULL, 0, b, nb, 0, &idb, err);
        if (!st) st = merge_token_id(t, (const uint8_t *)a, na, b, nb, m->prefix_len, &idab, err);
        if (st) return st;
        insert_merge(m, ida, idb, rank++, idab);
    }
    return ER_OK;
}

/* An optional string option kept in the arena (absent or null: empty). */
static er_status arena_option(er_tokenizer *t, json_t *json, const char *key, uint32_t *off, uint32_t *len,
                              er_err *err) {
    const char *s;
    er_status st = tk_json_string(json, key, "", key, &s, err);
    if (st) return st;
    if (strlen(s) > TK_MAX_TOKEN_BYTES) return FMT("model.%s is too long", key);
    *len = (uint32_t)strlen(s);
    return tk_arena_add(t, s, *len, off, err);
}

static er_status load_options(bpe_model *m, er_tokenizer *t, json_t *json, er_err *err) {
    json_t *dropout = json_object_get(json, "dropout");
    if (dropout && !json_is_null(dropout))
        return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: BPE dropout is not supported (it is random)");
    er_status st;
    const char *unk;
    if ((st = arena_option(t, json, "continuing_subword_prefix", &m->prefix_off, &m->prefix_len, err)) ||
        (st = arena_option(t, json, "end_of_word_suffix", &m->suffix_off, &m->suffix_len, err)) ||
        (st = tk_json_bool(json, "byte_fallback", false, &m->byte_fallback, err)) ||
        (st = tk_json_bool(json, "fuse_unk", false, &m->fuse_unk, err)) ||
        (st = tk_json_bool(json, "ignore_merges", false, &m->ignore_merges, err)) ||
        (st = tk_json_string(json, "unk_token", NULL, "model.unk_token", &unk, err)))
        return st;
    m->base.unk_id = unk ? tk_vocab_find(t, NULL, 0, (const uint8_t *)unk, strlen(unk)) : -1;
    m->unk_missing = unk && m->base.unk_id < 0;
    for (int byte = 0; byte < 256; byte++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", byte);
        m->byte_ids[byte] = tk_vocab_find(t, NULL, 0, (const uint8_t *)name, 6);
    }
    return ER_OK;
}

/* {"type": "BPE", "vocab": {"token": id, ...}, "merges": ["a b", ...] or
 *  [["a", "b"], ...], "dropout": null, "unk_token": null,
 *  "continuing_subword_prefix": null, "end_of_word_suffix": null,
 *  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false} */
er_status tk_bpe_load(er_tokenizer *t, json_t *json, tk_model **out, er_err *err) {
    json_t *merges = json_object_get(json, "merges");
    if (!merges) return FMT("a BPE model needs merges");
    er_status st = tk_json_vocab(t, json_object_get(json, "vocab"), err);
    if (st) return st;
    bpe_model *m = calloc(1, sizeof *m);
    if (!m) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    m->base = (tk_model){-1, bpe_tokenize, bpe_free};
    m->serial = atomic_fetch_add(&next_serial, 1);
    if ((st = load_options(m, t, json, err)) || (st = load_merges(m, t, merges, err))) {
        bpe_free(&m->base);
        return st;
    }
    *out = &m->base;
    return ER_OK;
}
