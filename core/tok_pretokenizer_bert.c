/* BertPreTokenizer: splits on whitespace (dropped) and punctuation (each
 * punctuation code point a word of its own). */
#include <stdlib.h>

#include "tokenizer_internal.h"

static er_status bert_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                            tk_word_sink *sink, er_err *err) {
    (void)self;
    (void)err; /* only the sink fails */
    size_t start = a;
    er_status st = ER_OK;
    for (size_t i = a; i < b && !st; i++) {
        uint32_t c = s->cps[i];
        bool space = c == ' ' || tk_is_whitespace(c);
        if (!space && !tk_is_punct(c)) continue;
        if (i > start) st = sink->word(sink, s, start, i);
        if (!st && !space) st = sink->word(sink, s, i, i + 1);
        start = i + 1;
    }
    if (!st && b > start) st = sink->word(sink, s, start, b);
    return st;
}

static void bert_pre_tokenizer_free(tk_pre_tokenizer *self) { free(self); }

er_status tk_bert_pre_tokenizer_new(tk_pre_tokenizer **out, er_err *err) {
    tk_pre_tokenizer *p = malloc(sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *p = (tk_pre_tokenizer){bert_split, bert_pre_tokenizer_free};
    *out = p;
    return ER_OK;
}

/* {"type": "BertPreTokenizer"}: no options. */
er_status tk_bert_pre_tokenizer_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    (void)t;
    (void)json;
    return tk_bert_pre_tokenizer_new(out, err);
}
