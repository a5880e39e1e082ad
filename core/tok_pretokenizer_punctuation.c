/* Punctuation: every punctuation code point (ASCII punctuation or Unicode
 * P*, the test BertPreTokenizer uses too) is a match; the behaviour
 * (default Isolated) decides what becomes of it. */
#include <stdlib.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_pre_tokenizer base;
    tk_split_behavior behavior;
} punctuation;

/* The Rust is_punctuation (unicode_categories crate, old tables) also
 * takes U+166D and U+111C9, punctuation once (So and Mn now); found by
 * running every code point through both. */
static bool is_punct(uint32_t cp) { return tk_is_punct(cp) || cp == 0x166D || cp == 0x111C9; }

static er_status punctuation_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                                   tk_word_sink *sink, er_err *err) {
    (void)err; /* only the sink fails */
    tk_splitter sp;
    tk_splitter_begin(&sp, ((const punctuation *)self)->behavior, false, s, sink);
    return tk_split_by_class(&sp, a, b, is_punct);
}

static void punctuation_free(tk_pre_tokenizer *self) { free(self); }

/* {"type": "Punctuation", "behavior": "Isolated"} */
er_status tk_punctuation_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    (void)t;
    tk_split_behavior behavior = TK_SPLIT_ISOLATED;
    er_status st = tk_json_split_behavior(json, "behavior", false, TK_SPLIT_ISOLATED, &behavior, err);
    if (st) return st;
    punctuation *p = malloc(sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *p = (punctuation){{punctuation_split, punctuation_free}, behavior};
    *out = &p->base;
    return ER_OK;
}
