/* Oniguruma behind tok_regex.h. */
#include <oniguruma.h>
#include <pthread.h>
#include <stdlib.h>

#include "tok_regex.h"

struct tk_regex {
    OnigRegex re;
};

static pthread_once_t onig_once = PTHREAD_ONCE_INIT;

/* onig_new would initialize the library on first use, but not thread-safely. */
static void onig_init_once(void) {
    OnigEncoding encodings[1] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
}

er_status tk_regex_new(const char *pattern, size_t n, tk_regex **out, er_err *err) {
    pthread_once(&onig_once, onig_init_once);
    tk_regex *r = malloc(sizeof *r);
    if (!r) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    OnigErrorInfo info;
    const OnigUChar *p = (const OnigUChar *)pattern;
    int rc = onig_new(&r->re, p, p + n, ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT, &info);
    if (rc != ONIG_NORMAL) {
        OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, rc, &info);
        free(r);
        return er_set(err, ER_ERR_FORMAT, "tokenizer.json: regular expression: %s", (const char *)msg);
    }
    *out = r;
    return ER_OK;
}

void tk_regex_free(tk_regex *r) {
    if (!r) return;
    onig_free(r->re);
    free(r);
}

void tk_regex_matches_begin(tk_regex_matches *m, const tk_regex *re, const uint8_t *text, size_t len) {
    *m = (tk_regex_matches){re, text, len, 0, NULL};
}

/* The length of the UTF-8 sequence that starts with byte c (valid text). */
static size_t utf8_len(uint8_t c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

er_status tk_regex_next(tk_regex_matches *m, bool *found, size_t *start, size_t *end, er_err *err) {
    *found = false;
    if (!m->region && !(m->region = onig_region_new()))
        return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    OnigRegion *region = m->region;
    const OnigUChar *s = m->text, *e = m->text + m->len;
    while (m->pos < m->len) {
        int rc = onig_search(m->re->re, s, e, s + m->pos, e, region, ONIG_OPTION_NONE);
        if (rc == ONIG_MISMATCH) break;
        if (rc < 0) return er_set(err, ER_ERR_INTERNAL, "tokenizer: regular expression search failed (%d)", rc);
        size_t ms = (size_t)region->beg[0], me = (size_t)region->end[0];
        if (me > ms) {
            m->pos = me;
            *start = ms;
            *end = me;
            *found = true;
            return ER_OK;
        }
        m->pos = ms + utf8_len(m->text[ms]); /* an empty match: on past it */
    }
    m->pos = m->len;
    return ER_OK;
}

void tk_regex_matches_end(tk_regex_matches *m) {
    if (m->region) onig_region_free(m->region, 1);
    m->region = NULL;
}
