/* Split: words cut by a pattern ({"String": s} or {"Regex": r}, both run
 * through Oniguruma as the Rust library does), with a behaviour saying
 * what becomes of the matches, and invert flipping which pieces match.
 * This file also holds the splitter every pattern-driven pre-tokenizer
 * shares (tokenizer_internal.h): the Rust NormalizedString::split folds a
 * list of (piece, is_match); the same folds are done here one piece at a
 * time, keeping at most one pending word. */
#include <stdlib.h>
#include <string.h>

#include "tok_regex.h"
#include "tokenizer_internal.h"

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)

void tk_splitter_begin(tk_splitter *sp, tk_split_behavior behavior, bool invert, const tk_normalized *s,
                       tk_word_sink *sink) {
    *sp = (tk_splitter){.behavior = behavior, .invert = invert, .s = s, .sink = sink};
}

static er_status flush(tk_splitter *sp) {
    if (!sp->pending) return ER_OK;
    sp->pending = sp->open = false;
    return sp->sink->word(sp->sink, sp->s, sp->ps, sp->pe);
}

/* Starts a new pending word, sending the one before. */
static er_status restart(tk_splitter *sp, size_t start, size_t end) {
    er_status st = flush(sp);
    sp->ps = start;
    sp->pe = end;
    sp->pending = true;
    return st;
}

er_status tk_splitter_piece(tk_splitter *sp, size_t start, size_t end, bool is_match) {
    is_match ^= sp->invert;
    bool prev = sp->prev;
    sp->prev = is_match;
    switch (sp->behavior) {
    case TK_SPLIT_REMOVED:
        return is_match ? ER_OK : sp->sink->word(sp->sink, sp->s, start, end);
    case TK_SPLIT_ISOLATED:
        return sp->sink->word(sp->sink, sp->s, start, end);
    case TK_SPLIT_CONTIGUOUS: /* runs of matches, and runs of the rest, glued */
        if (sp->pending && is_match == prev) break;
        return restart(sp, start, end);
    case TK_SPLIT_MERGED_WITH_PREVIOUS: /* a match ends the word of the text before it */
        if (sp->pending && is_match && !prev) break;
        return restart(sp, start, end);
    case TK_SPLIT_MERGED_WITH_NEXT: { /* a match starts the word of the text after it */
        if (sp->open && !is_match) {
            sp->open = false;
            break;
        }
        er_status st = restart(sp, start, end);
        sp->open = is_match;
        return st;
    }
    }
    sp->pe = end;
    return ER_OK;
}

er_status tk_splitter_end(tk_splitter *sp) { return flush(sp); }

er_status tk_split_by_class(tk_splitter *sp, size_t a, size_t b, bool (*is)(uint32_t cp)) {
    const uint32_t *cps = sp->s->cps;
    size_t done = a;
    er_status st = ER_OK;
    for (size_t i = a; i < b && !st; i++) {
        if (!is(cps[i])) continue;
        if (done < i) st = tk_splitter_piece(sp, done, i, false);
        if (!st) st = tk_splitter_piece(sp, i, i + 1, true);
        done = i + 1;
    }
    if (!st && done < b) st = tk_splitter_piece(sp, done, b, false);
    return st ? st : tk_splitter_end(sp);
}

er_status tk_split_by_regex(tk_splitter *sp, const tk_regex *re, size_t a, size_t b, er_err *err) {
    const tk_normalized *s = sp->s;
    uint32_t base = s->byte_at[a];
    tk_regex_matches m;
    tk_regex_matches_begin(&m, re, s->bytes + base, s->byte_at[b] - base);
    size_t done = a, k = a, ms, me;
    bool found;
    er_status st;
    while (!(st = tk_regex_next(&m, &found, &ms, &me, err)) && found) {
        /* Matches fall on code point boundaries: bytes back to indices. */
        while (s->byte_at[k] - base < ms) k++;
        size_t match_start = k;
        while (s->byte_at[k] - base < me) k++;
        if (match_start > done) st = tk_splitter_piece(sp, done, match_start, false);
        if (!st) st = tk_splitter_piece(sp, match_start, k, true);
        done = k;
        if (st) break;
    }
    tk_regex_matches_end(&m);
    if (!st && done < b) st = tk_splitter_piece(sp, done, b, false);
    return st ? st : tk_splitter_end(sp);
}

er_status tk_json_split_behavior(json_t *o, const char *key, bool required, tk_split_behavior def,
                                 tk_split_behavior *out, er_err *err) {
    static const char *const NAMES[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                        "Contiguous"};
    json_t *v = json_object_get(o, key);
    if (!v && !required) {
        *out = def;
        return ER_OK;
    }
    for (size_t i = 0; json_is_string(v) && i < sizeof NAMES / sizeof *NAMES; i++)
        if (!strcmp(json_string_value(v), NAMES[i])) {
            *out = (tk_split_behavior)i;
            return ER_OK;
        }
    return FMT("\"%s\" must be one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous", key);
}

/* The Rust regex::escape: a backslash before each meta character, which
 * Oniguruma reads as that character too. */
static char *escaped(const char *s, size_t n, size_t *out_n, er_err *err) {
    char *e = malloc(2 * n + 1);
    if (!e) {
        er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\.+*?()|[]{}^$#&-~", s[i]) && s[i]) e[k++] = '\\';
        e[k++] = s[i];
    }
    *out_n = k;
    return e;
}

er_status tk_json_pattern(json_t *pattern, const char *what, tk_regex **out, er_err *err) {
    json_t *str = json_object_get(pattern, "String"), *re = json_object_get(pattern, "Regex");
    if (json_is_string(re) && !str) return tk_regex_new(json_string_value(re), json_string_length(re), out, err);
    if (!json_is_string(str) || re) return FMT("%s must be {\"String\": ...} or {\"Regex\": ...}", what);
    size_t n;
    char *e = escaped(json_string_value(str), json_string_length(str), &n, err);
    if (!e) return ER_ERR_NOMEM;
    er_status st = tk_regex_new(e, n, out, err);
    free(e);
    return st;
}

typedef struct {
    tk_pre_tokenizer base;
    tk_regex *re;
    tk_split_behavior behavior;
    bool invert;
} split_pre_tokenizer;

static er_status split_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                             tk_word_sink *sink, er_err *err) {
    const split_pre_tokenizer *p = (const split_pre_tokenizer *)self;
    tk_splitter sp;
    tk_splitter_begin(&sp, p->behavior, p->invert, s, sink);
    if (a >= b) return ER_OK;
    return tk_split_by_regex(&sp, p->re, a, b, err);
}

static void split_free(tk_pre_tokenizer *self) {
    split_pre_tokenizer *p = (split_pre_tokenizer *)self;
    tk_regex_free(p->re);
    free(p);
}

/* {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated",
 *  "invert": false}: all three required, as in the Rust library. */
er_status tk_split_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    (void)t;
    tk_split_behavior behavior = TK_SPLIT_ISOLATED;
    json_t *inv = json_object_get(json, "invert");
    er_status st = tk_json_split_behavior(json, "behavior", true, TK_SPLIT_REMOVED, &behavior, err);
    if (st) return st;
    if (!json_is_boolean(inv)) return FMT("Split needs a boolean \"invert\"");
    split_pre_tokenizer *p = calloc(1, sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    *p = (split_pre_tokenizer){{split_split, split_free}, NULL, behavior, json_is_true(inv)};
    if ((st = tk_json_pattern(json_object_get(json, "pattern"), "Split pattern", &p->re, err))) {
        free(p);
        return st;
    }
    *out = &p->base;
    return ER_OK;
}
