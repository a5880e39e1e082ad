/* The tokenizer object: its arena of strings, the vocabulary hash table,
 * the id -> string table, lookups and the public getters. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tokenizer_internal.h"

#define TK_HASH_INIT 2166136261u /* FNV-1a */

static uint32_t tk_hash(uint32_t h, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

er_tokenizer *tk_new(er_err *err) {
    er_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
        return NULL;
    }
    for (int i = 0; i < 5; i++) t->special_ids[i] = -1;
    return t;
}

void er_tokenizer_free(er_tokenizer *t) {
    if (!t) return;
    if (t->normalizer) t->normalizer->free(t->normalizer);
    if (t->pre_tokenizer) t->pre_tokenizer->free(t->pre_tokenizer);
    if (t->model) t->model->free(t->model);
    if (t->post_processor) t->post_processor->free(t->post_processor);
    if (t->decoder) t->decoder->free(t->decoder);
    free(t->arena);
    free(t->ent);
    free(t->ht);
    free(t->id_off);
    free(t->added);
    free(t);
}

er_status tk_arena_add(er_tokenizer *t, const char *s, size_t n, uint32_t *off, er_err *err) {
    if (n > TK_MAX_TOKEN_BYTES)
        return er_set(err, ER_ERR_FORMAT, "tokenizer: token longer than %d bytes", TK_MAX_TOKEN_BYTES);
    if (t->arena_len + n + 1 > UINT32_MAX - 1)
        return er_set(err, ER_ERR_CAPACITY, "tokenizer: vocabulary strings too large");
    if (t->arena_len + n + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap * 2 : 4096;
        while (cap < t->arena_len + n + 1) cap *= 2;
        char *a = realloc(t->arena, cap);
        if (!a) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
        t->arena = a;
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = '\0';
    *off = (uint32_t)t->arena_len;
    t->arena_len += n + 1;
    return ER_OK;
}

static void ht_insert(er_tokenizer *t, uint32_t idx) {
    uint32_t i = t->ent[idx].hash & t->ht_mask;
    while (t->ht[i]) i = (i + 1) & t->ht_mask;
    t->ht[i] = idx + 1;
}

static er_status ht_grow(er_tokenizer *t, er_err *err) {
    size_t size = t->ht ? ((size_t)t->ht_mask + 1) * 2 : 1024;
    uint32_t *ht = calloc(size, sizeof *ht);
    if (!ht) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    free(t->ht);
    t->ht = ht;
    t->ht_mask = (uint32_t)(size - 1);
    for (size_t i = 0; i < t->n_ent; i++) ht_insert(t, (uint32_t)i);
    return ER_OK;
}

/* Adds (or, for a repeated key, re-points) a vocabulary entry. */
er_status tk_vocab_add(er_tokenizer *t, const char *s, size_t n, int32_t id, er_err *err) {
    if (id < 0 || id >= TK_MAX_ID)
        return er_set(err, ER_ERR_FORMAT, "tokenizer: token id %ld out of range", (long)id);
    if (n > TK_MAX_TOKEN_BYTES)
        return er_set(err, ER_ERR_FORMAT, "tokenizer: token longer than %d bytes", TK_MAX_TOKEN_BYTES);
    uint32_t h = tk_hash(TK_HASH_INIT, (const uint8_t *)s, n);
    if (t->ht) {
        for (uint32_t i = h & t->ht_mask; t->ht[i]; i = (i + 1) & t->ht_mask) {
            tk_entry *e = &t->ent[t->ht[i] - 1];
            if (e->hash == h && e->len == n && memcmp(t->arena + e->off, s, n) == 0) {
                e->id = id;
                return ER_OK;
            }
        }
    }
    if ((t->n_ent + 1) * 2 > (t->ht ? (size_t)t->ht_mask + 1 : 0)) {
        er_status st = ht_grow(t, err);
        if (st) return st;
    }
    if (t->n_ent == t->ent_cap) {
        size_t cap = t->ent_cap ? t->ent_cap * 2 : 1024;
        tk_entry *e = realloc(t->ent, cap * sizeof *e);
        if (!e) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
        t->ent = e;
        t->ent_cap = cap;
    }
    tk_entry *e = &t->ent[t->n_ent];
    er_status st = tk_arena_add(t, s, n, &e->off, err);
    if (st) return st;
    e->len = (uint32_t)n;
    e->hash = h;
    e->id = id;
    ht_insert(t, (uint32_t)t->n_ent);
    t->n_ent++;
    if (n > t->max_key_len) t->max_key_len = (uint32_t)n;
    return ER_OK;
}

int32_t tk_vocab_find(const er_tokenizer *t, const uint8_t *pre, size_t pre_len, const uint8_t *s,
                      size_t n) {
    if (!t->ht) return -1;
    size_t total = pre_len + n;
    uint32_t h = tk_hash(tk_hash(TK_HASH_INIT, pre, pre_len), s, n);
    for (uint32_t i = h & t->ht_mask; t->ht[i]; i = (i + 1) & t->ht_mask) {
        const tk_entry *e = &t->ent[t->ht[i] - 1];
        if (e->hash == h && e->len == total &&
            (pre_len == 0 || memcmp(t->arena + e->off, pre, pre_len) == 0) &&
            memcmp(t->arena + e->off + pre_len, s, n) == 0)
            return e->id;
    }
    return -1;
}

int32_t tk_added_find(const er_tokenizer *t, const char *s, size_t n) {
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->arena + t->added[i].off, s, n) == 0)
            return t->added[i].id;
    return -1;
}

/* The id -> string table: vocabulary entries first, added tokens over them. */
static er_status index_ids(er_tokenizer *t, er_err *err) {
    size_t size = 0;
    for (size_t i = 0; i < t->n_ent; i++)
        if ((size_t)t->ent[i].id + 1 > size) size = (size_t)t->ent[i].id + 1;
    for (size_t i = 0; i < t->n_added; i++)
        if ((size_t)t->added[i].id + 1 > size) size = (size_t)t->added[i].id + 1;
    if (size == 0) return er_set(err, ER_ERR_FORMAT, "tokenizer: empty vocabulary");
    t->id_off = malloc(size * sizeof *t->id_off);
    if (!t->id_off) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    t->vocab_size = size;
    for (size_t i = 0; i < size; i++) t->id_off[i] = TK_NONE;
    for (size_t i = 0; i < t->n_ent; i++)
        if (t->id_off[t->ent[i].id] == TK_NONE) t->id_off[t->ent[i].id] = t->ent[i].off;
    for (size_t i = 0; i < t->n_added; i++) t->id_off[t->added[i].id] = t->added[i].off;
    return ER_OK;
}

er_status tk_finish(er_tokenizer *t, er_err *err) {
    er_status st = index_ids(t, err);
    if (st) return st;
    for (size_t i = 0; i < t->n_added; i++) {
        const char *c = t->arena + t->added[i].off;
        if (!t->added[i].normalized) {
            t->any_raw_added = true;
            t->raw_first[(uint8_t)c[0] >> 3] |= (uint8_t)(1u << ((uint8_t)c[0] & 7));
        } else {
            t->any_norm_added = true;
        }
    }
    if ((st = tk_added_normalize(t, err))) return st;
    if (!t->post_processor && (st = tk_plain_processing_new(&t->post_processor, err))) return st;
    int32_t unk = t->model->unk_id; /* an unknown word's token string is the unk id's */
    if (unk >= 0 && t->id_off[unk] == TK_NONE) return er_set(err, ER_ERR_FORMAT, "tokenizer: no unk token");
    if (t->special_ids[ER_SPECIAL_UNK] < 0) t->special_ids[ER_SPECIAL_UNK] = unk;
    return ER_OK;
}

er_tokenize_params er_tokenize_default_params(void) {
    er_tokenize_params p = {.add_special_tokens = 1, .truncation = ER_TRUNCATE_LONGEST_FIRST};
    return p;
}

int er_truncation_parse(const char *s) {
    if (!s) return -1;
    if (!strcasecmp(s, "longest_first") || !strcmp(s, "LongestFirst")) return ER_TRUNCATE_LONGEST_FIRST;
    if (!strcasecmp(s, "only_first") || !strcmp(s, "OnlyFirst")) return ER_TRUNCATE_ONLY_FIRST;
    if (!strcasecmp(s, "only_second") || !strcmp(s, "OnlySecond")) return ER_TRUNCATE_ONLY_SECOND;
    if (!strcasecmp(s, "none") || !strcasecmp(s, "do_not_truncate")) return ER_TRUNCATE_NONE;
    return -1;
}

int er_truncation_direction_parse(const char *s) {
    if (!s) return -1;
    if (!strcasecmp(s, "right")) return ER_TRUNCATE_RIGHT;
    if (!strcasecmp(s, "left")) return ER_TRUNCATE_LEFT;
    return -1;
}

size_t er_tokenizer_vocab_size(const er_tokenizer *t) { return t ? t->vocab_size : 0; }

const char *er_tokenizer_id_to_token(const er_tokenizer *t, int32_t id) {
    if (!t || id < 0 || (size_t)id >= t->vocab_size || t->id_off[id] == TK_NONE) return NULL;
    return t->arena + t->id_off[id];
}

int32_t er_tokenizer_token_to_id(const er_tokenizer *t, const char *s, size_t n) {
    if (!t || !s) return -1;
    int32_t id = tk_added_find(t, s, n);
    if (id >= 0) return id;
    return tk_vocab_find(t, NULL, 0, (const uint8_t *)s, n);
}

int32_t er_tokenizer_special_id(const er_tokenizer *t, er_special which) {
    if (!t || (int)which < 0 || (int)which >= 5) return -1;
    return t->special_ids[which];
}

size_t er_tokenizer_model_max_length(const er_tokenizer *t) { return t ? t->model_max_length : 0; }

size_t er_tokenizer_file_truncation(const er_tokenizer *t, er_truncation *strategy) {
    if (!t) return 0;
    if (strategy) *strategy = t->file_trunc;
    return t->file_trunc_len;
}

size_t er_tokenizer_num_special_tokens(const er_tokenizer *t, int pair) {
    if (!t) return 0;
    return t->post_processor->added_tokens(t->post_processor, pair != 0);
}
