/* Three decoders that edit the token strings as text:
 *   Fuse    {"type": "Fuse"}: all tokens become one string;
 *   Strip   {"type": "Strip", "content": " ", "start": 1, "stop": 0}: up to
 *           start leading and stop trailing copies of the character content
 *           are cut from every token;
 *   Replace {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}:
 *           every occurrence of the pattern in every token is replaced; a
 *           {"Regex": ...} pattern runs through Oniguruma, as the Rust
 *           library's does. */
#include <stdlib.h>
#include <string.h>

#include "tok_regex.h"
#include "tokenizer_internal.h"

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)

static void text_decoder_free(tk_decoder *self) { free(self); }

static er_status fuse_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    (void)self;
    er_status st = tk_pieces_put(out, in->bytes, in->n ? in->end[in->n - 1] : 0, err);
    return st ? st : tk_pieces_close(out, err);
}

er_status tk_fuse_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    (void)json;
    tk_decoder *d = calloc(1, sizeof *d);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *d = (tk_decoder){fuse_decode_chain, text_decoder_free};
    *out = d;
    return ER_OK;
}

typedef struct {
    tk_decoder base;
    char content[5]; /* one code point, UTF-8 */
    size_t content_n, start, stop;
} strip_decoder;

/* Token s[0, n) without up to d->start leading and d->stop trailing copies
 * of the content character. */
static void strip_span(const strip_decoder *d, const char *s, size_t n, size_t *from, size_t *to) {
    size_t c = d->content_n, a = 0, b = n;
    for (size_t k = 0; k < d->start && a + c <= n && !memcmp(s + a, d->content, c); k++) a += c;
    for (size_t k = 0; k < d->stop && b >= a + c && !memcmp(s + b - c, d->content, c); k++) b -= c;
    *from = a;
    *to = b;
}

static er_status strip_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    const strip_decoder *d = (const strip_decoder *)self;
    for (size_t i = 0; i < in->n; i++) {
        size_t n, a, b;
        const char *s = tk_piece(in, i, &n);
        strip_span(d, s, n, &a, &b);
        er_status st = tk_pieces_put(out, s + a, b - a, err);
        if (!st) st = tk_pieces_close(out, err);
        if (st) return st;
    }
    return ER_OK;
}

static er_status json_count(json_t *o, const char *key, size_t *out, er_err *err) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)TK_MAX_TOKEN_BYTES)
        return FMT("Strip %s must be a small non-negative integer", key);
    *out = (size_t)json_integer_value(v);
    return ER_OK;
}

er_status tk_strip_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    strip_decoder d = {.base = {strip_decode_chain, text_decoder_free}};
    const char *content;
    er_status st = tk_json_string(json, "content", NULL, "Strip content", &content, err);
    if (!st && (!content || !content[0] || strlen(content) != tk_utf8_next((const uint8_t *)content, &(uint32_t){0})))
        st = FMT("Strip content must be one character");
    if (!st) st = json_count(json, "start", &d.start, err);
    if (!st) st = json_count(json, "stop", &d.stop, err);
    if (st) return st;
    d.content_n = strlen(content);
    memcpy(d.content, content, d.content_n);
    strip_decoder *p = malloc(sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *p = d;
    *out = &p->base;
    return ER_OK;
}

typedef struct {
    tk_decoder base;
    tk_regex *re; /* a Regex pattern; NULL: the String pattern in text */
    size_t pattern_n, content_n;
    char text[]; /* pattern then content */
} replace_decoder;

/* s[0, n) with every match of d->re replaced by the content.  Token
 * strings are UTF-8 (the vocabulary's, or lossy-decoded bytes); one that
 * is not is passed on as it is rather than searched. */
static er_status put_regex_replaced(const replace_decoder *d, const char *s, size_t n, tk_pieces *out, er_err *err) {
    size_t bad, n_cp;
    if (!tk_utf8_valid((const uint8_t *)s, n, &bad, &n_cp)) return tk_pieces_put(out, s, n, err);
    tk_regex_matches m;
    tk_regex_matches_begin(&m, d->re, (const uint8_t *)s, n);
    size_t done = 0, ms, me;
    bool found;
    er_status st;
    while (!(st = tk_regex_next(&m, &found, &ms, &me, err)) && found) {
        if ((st = tk_pieces_put(out, s + done, ms - done, err)) ||
            (st = tk_pieces_put(out, d->text + d->pattern_n, d->content_n, err)))
            break;
        done = me;
    }
    tk_regex_matches_end(&m);
    return st ? st : tk_pieces_put(out, s + done, n - done, err);
}

static er_status replace_decode_chain(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err) {
    const replace_decoder *d = (const replace_decoder *)self;
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *s = tk_piece(in, i, &n);
        er_status st = d->re ? put_regex_replaced(d, s, n, out, err)
                             : tk_put_replaced(out, s, n, d->text, d->pattern_n, d->text + d->pattern_n,
                                               d->content_n, err);
        if (!st) st = tk_pieces_close(out, err);
        if (st) return st;
    }
    return ER_OK;
}

static void replace_decoder_free(tk_decoder *self) {
    tk_regex_free(((replace_decoder *)self)->re);
    free(self);
}

er_status tk_replace_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    (void)t;
    json_t *pattern = json_object_get(json, "pattern"), *content = json_object_get(json, "content");
    json_t *str = json_object_get(pattern, "String"), *re = json_object_get(pattern, "Regex");
    if (!json_is_string(str ? str : re) || (str && re) || !json_is_string(content))
        return FMT("Replace decoder needs pattern {\"String\": ...} or {\"Regex\": ...} and a content string");
    size_t pn = str ? json_string_length(str) : 0, cn = json_string_length(content);
    replace_decoder *d = malloc(sizeof *d + pn + cn);
    if (!d) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    d->base = (tk_decoder){replace_decode_chain, replace_decoder_free};
    d->re = NULL;
    d->pattern_n = pn;
    d->content_n = cn;
    if (pn) memcpy(d->text, json_string_value(str), pn);
    memcpy(d->text + pn, json_string_value(content), cn);
    er_status st = re ? tk_regex_new(json_string_value(re), json_string_length(re), &d->re, err) : ER_OK;
    if (st) {
        free(d);
        return st;
    }
    *out = &d->base;
    return ER_OK;
}
