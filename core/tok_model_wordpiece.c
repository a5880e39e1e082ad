/* WordPiece: greedy longest-match-first against the vocabulary; pieces
 * after the first carry continuing_subword_prefix; a word with no full cut,
 * or longer than max_input_chars_per_word, is the unk token. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_model base;
    uint32_t prefix_off, prefix_len; /* continuing_subword_prefix, in the arena */
    uint32_t max_chars_per_word;
} wordpiece;

static er_status wordpiece_tokenize(const tk_model *self, const er_tokenizer *t, const tk_normalized *s,
                                    size_t a, size_t b, tk_tokens *out, er_err *err) {
    const wordpiece *wp = (const wordpiece *)self;
    size_t mark = out->n;
    if (b - a <= wp->max_chars_per_word) {
        const uint8_t *pre = (const uint8_t *)t->arena + wp->prefix_off;
        size_t start = a;
        while (start < b) {
            size_t plen = start > a ? wp->prefix_len : 0, end = b;
            while (end > start && s->byte_at[end] - s->byte_at[start] + plen > t->max_key_len) end--;
            int32_t id = -1;
            for (; end > start; end--) {
                id = tk_vocab_find(t, pre, plen, s->bytes + s->byte_at[start],
                                   s->byte_at[end] - s->byte_at[start]);
                if (id >= 0) break;
            }
            if (id < 0) break;
            tk_token piece = {id, t->id_off[id], (uint32_t)start, (uint32_t)end, 0, 0};
            er_status st = tk_tokens_push(out, piece, err);
            if (st) return st;
            start = end;
        }
        if (start == b) return ER_OK;
    }
    out->n = mark; /* the whole word is unknown */
    int32_t unk = self->unk_id;
    return tk_tokens_push(out, (tk_token){unk, t->id_off[unk], (uint32_t)a, (uint32_t)b, 0, 0}, err);
}

static void wordpiece_free(tk_model *self) { free(self); }

static er_status wordpiece_new(int32_t unk_id, uint32_t prefix_off, uint32_t prefix_len,
                               uint32_t max_chars_per_word, tk_model **out, er_err *err) {
    wordpiece *wp = malloc(sizeof *wp);
    if (!wp) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *wp = (wordpiece){{unk_id, wordpiece_tokenize, wordpiece_free}, prefix_off, prefix_len, max_chars_per_word};
    *out = &wp->base;
    return ER_OK;
}

er_status tk_wordpiece_new(er_tokenizer *t, int32_t unk_id, const char *prefix, uint32_t max_chars_per_word,
                           tk_model **out, er_err *err) {
    uint32_t prefix_off;
    er_status st = tk_arena_add(t, prefix, strlen(prefix), &prefix_off, err);
    if (st) return st;
    return wordpiece_new(unk_id, prefix_off, (uint32_t)strlen(prefix), max_chars_per_word, out, err);
}

/* {"type": "WordPiece", "vocab": {"token": id, ...}, "unk_token": "[UNK]",
 *  "continuing_subword_prefix": "##", "max_input_chars_per_word": 100}:
 * a linear parser. */
er_status tk_wordpiece_load(er_tokenizer *t, json_t *json, tk_model **out, er_err *err) {
    er_status st = tk_json_vocab(t, json_object_get(json, "vocab"), err);
    if (st) return st;
    const char *unk, *prefix;
    if ((st = tk_json_string(json, "unk_token", "[UNK]", "model.unk_token", &unk, err))) return st;
    int32_t unk_id = tk_vocab_find(t, NULL, 0, (const uint8_t *)unk, strlen(unk));
    if (unk_id < 0)
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: unk_token \"%.64s\" is not in the vocabulary", unk);
    if ((st = tk_json_string(json, "continuing_subword_prefix", "##", "continuing_subword_prefix", &prefix,
                             err)))
        return st;
    uint32_t prefix_off, max_chars = 100;
    if ((st = tk_arena_add(t, prefix, strlen(prefix), &prefix_off, err))) return st;
    json_t *mx = json_object_get(json, "max_input_chars_per_word");
    if (mx && !json_is_null(mx)) {
        if (!json_is_integer(mx) || json_integer_value(mx) < 0 || json_integer_value(mx) > (1 << 30))
            return er_set(err, ER_ERR_FORMAT,
                          "tokenizer.json: max_input_chars_per_word must be a non-negative integer");
        max_chars = (uint32_t)json_integer_value(mx);
    }
    return wordpiece_new(unk_id, prefix_off, (uint32_t)strlen(prefix), max_chars, out, err);
}
