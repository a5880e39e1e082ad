/* RobertaProcessing: <s> A </s> and <s> A </s></s> B </s>, every type id 0
 * (the Rust library sets them so even without special tokens), and, with
 * trim_offsets, each token's offsets lose the spaces its string starts or
 * ends with (the byte-level Ġ, or whitespace an added token's lstrip or
 * rstrip took in).  The encoding is a spelled template
 * (tok_processor_template.c); the trimming is the pipeline's, after the
 * token strings are final (tk_trim_offsets, tok_processor_bytelevel.c). */
#include <stdlib.h>

#include "tokenizer_internal.h"

typedef struct {
    tk_post_processor base;
    tk_post_processor *layout; /* the template that builds the encoding */
} roberta_processor;

static size_t roberta_added_tokens(const tk_post_processor *self, bool pair) {
    const tk_post_processor *l = ((const roberta_processor *)self)->layout;
    return l->added_tokens(l, pair);
}

static er_status roberta_process(const tk_post_processor *self, const er_tokenizer *t, const tk_tokens *a,
                                 size_t na, const tk_tokens *b, size_t nb, bool add_special, er_encoding **out,
                                 er_err *err) {
    const tk_post_processor *l = ((const roberta_processor *)self)->layout;
    return l->process(l, t, a, na, b, nb, add_special, out, err);
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
    p->base = (tk_post_processor){roberta_added_tokens, roberta_process, roberta_free, false};
    /* The trimming is the pipeline's, once the token strings are final
     * (tk_trim_offsets, tok_processor_bytelevel.c), as for ByteLevel. */
    t->trim_offsets = trim;
    t->trim_keeps_prefix_space = prefix;
    st = tk_spelled_template_new(t, cls, cls_id, sep, sep_id, "C0A0S0", "C0A0S0S0B0S0", &p->layout, err);
    if (st) {
        free(p);
        return st;
    }
    *out = &p->base;
    return ER_OK;
}
