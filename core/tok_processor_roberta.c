/* RobertaProcessing: <s> A </s> and <s> A </s></s> B </s>, every type id 0
 * (the Rust library sets them so even without special tokens), and, with
 * trim_offsets, each token's offsets lose the spaces its string starts or
 * ends with (the byte-level Ġ, or whitespace an added token's lstrip or
 * rstrip took in).  The encoding itself is a spelled template
 * (tok_processor_template.c); this file adds the trimming. */
#include <stdlib.h>

#include "tokenizer_internal.h"

#define BYTE_LEVEL_SPACE 0x120 /* Ġ: the byte-level alphabet's ' ' */

typedef struct {
    tk_post_processor base;
    tk_post_processor *layout; /* the template that builds the encoding */
    bool trim_offsets, add_prefix_space;
} roberta_processor;

/* A space as the Rust library's process_offsets counts it; *bytes is what it
 * stood for in the original text (Ġ was one byte, ' '). */
static bool trimmable(uint32_t cp, size_t utf8_len, size_t *bytes) {
    *bytes = cp == BYTE_LEVEL_SPACE ? 1 : utf8_len;
    return cp == BYTE_LEVEL_SPACE || tk_is_whitespace(cp);
}

/* Leading spaces of s (code points and original bytes), at most max_cp. */
static size_t leading_spaces(const uint8_t *s, size_t max_cp, size_t *bytes) {
    size_t n = 0, pos = 0, b;
    *bytes = 0;
    uint32_t cp;
    for (; n < max_cp && s[pos]; n++) {
        size_t len = tk_utf8_next(s + pos, &cp);
        if (!trimmable(cp, len, &b)) break;
        *bytes += b;
        pos += len;
    }
    return n;
}

/* Trailing spaces of s[0, len) (code points and original bytes). */
static size_t trailing_spaces(const uint8_t *s, size_t len, size_t *bytes) {
    size_t n = 0, b;
    *bytes = 0;
    uint32_t cp;
    while (len > 0) {
        size_t start = len - 1;
        while (start > 0 && (s[start] & 0xC0) == 0x80) start--;
        size_t cl = tk_utf8_next(s + start, &cp);
        if (!trimmable(cp, cl, &b)) break;
        *bytes += b;
        n++;
        len = start;
    }
    return n;
}

/* process_offsets of the Rust library's byte_level.rs, on one token i of a
 * window.  A single leading space of the first token stays when
 * add_prefix_space says the pre-tokenizer put it there. */
static void trim_token(tk_token *tk, const char *str, bool first, bool add_prefix_space) {
    const uint8_t *s = (const uint8_t *)str;
    size_t lead_b, trail_b, len = 0;
    while (s[len]) len++;
    size_t lead = leading_spaces(s, SIZE_MAX, &lead_b);
    size_t trail = trailing_spaces(s, len, &trail_b);
    if (lead > 0) {
        if ((first || tk->cs == 0) && add_prefix_space && lead == 1) lead = lead_b = 0;
        if (tk->cs + lead >= tk->ce) {
            tk->cs = tk->ce;
            tk->bs = tk->be;
        } else {
            tk->cs += (uint32_t)lead;
            tk->bs += (uint32_t)lead_b;
        }
    }
    if (trail > 0 && tk->ce >= trail) {
        if (tk->ce - trail <= tk->cs) {
            tk->ce = tk->cs;
            tk->be = tk->bs;
        } else {
            tk->ce -= (uint32_t)trail;
            tk->be -= (uint32_t)trail_b;
        }
    }
}

void tk_trim_offsets(const er_tokenizer *t, tk_tokens *seq, bool add_prefix_space) {
    for (size_t i = 0; i < seq->n; i++)
        trim_token(&seq->v[i], t->arena + seq->v[i].tok, i == 0, add_prefix_space);
}

static size_t roberta_added_tokens(const tk_post_processor *self, bool pair) {
    const tk_post_processor *l = ((const roberta_processor *)self)->layout;
    return l->added_tokens(l, pair);
}

static er_status roberta_process(const tk_post_processor *self, const er_tokenizer *t, const tk_tokens *a,
                                 size_t na, const tk_tokens *b, size_t nb, bool add_special, er_encoding **out,
                                 er_err *err) {
    const roberta_processor *p = (const roberta_processor *)self;
    if (!p->trim_offsets) return p->layout->process(p->layout, t, a, na, b, nb, add_special, out, err);
    tk_token_copy c;
    er_status st = tk_token_copy_make(a, na, b, nb, &c, err);
    if (st) return st;
    tk_trim_offsets(t, &c.a, p->add_prefix_space);
    if (b) tk_trim_offsets(t, &c.b, p->add_prefix_space);
    st = p->layout->process(p->layout, t, &c.a, na, b ? &c.b : NULL, nb, add_special, out, err);
    free(c.buf);
    return st;
}

static void roberta_free(tk_post_processor *self) {
    roberta_processor *p = (roberta_processor *)self;
    if (p->layout) p->layout->free(p->layout);
    free(p);
}

/* {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
 *  "trim_offsets": true, "add_prefix_space": true} (the Rust defaults) */
er_status tk_roberta_processing_load(er_tokenizer *t, json_t *json, tk_post_processor **out, er_err *err) {
    const char *cls = "<s>", *sep = "</s>";
    int32_t cls_id = 0, sep_id = 2;
    bool trim, prefix;
    json_t *jc = json_object_get(json, "cls"), *js = json_object_get(json, "sep");
    er_status st = ER_OK;
    if (jc) st = tk_json_special_pair(jc, "RobertaProcessing cls", &cls, &cls_id, err);
    if (!st && js) st = tk_json_special_pair(js, "RobertaProcessing sep", &sep, &sep_id, err);
    if (!st) st = tk_json_bool(json, "trim_offsets", true, &trim, err);
    if (!st) st = tk_json_bool(json, "add_prefix_space", true, &prefix, err);
    if (st) return st;
    roberta_processor *p = calloc(1, sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    p->base = (tk_post_processor){roberta_added_tokens, roberta_process, roberta_free};
    p->trim_offsets = trim;
    p->add_prefix_space = prefix;
    st = tk_spelled_template_new(t, cls, cls_id, sep, sep_id, "C0A0S0", "C0A0S0S0B0S0", &p->layout, err);
    if (st) {
        free(p);
        return st;
    }
    *out = &p->base;
    return ER_OK;
}
