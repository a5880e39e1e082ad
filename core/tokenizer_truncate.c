/* Truncation as the Rust library does it (utils/truncation.rs and
 * Encoding::truncate): how many tokens each sequence keeps, then each
 * sequence cut into windows of that many tokens, stride tokens apart from
 * the next, from the right or from the left.  The first window of each is
 * the encoding; with return_overflowing, every other combination is an
 * overflowing encoding, in the Rust library's order (Encoding::merge_with:
 * each later window of the first sequence with the second's first window
 * and then with each later one, then the first window with each later
 * window of the second), each built by the post-processor. */
#include <stdlib.h>

#include "tokenizer_internal.h"

/* Hugging Face truncate_encodings, longest_first on a pair: the longer
 * sequence is cut first, down to an even split. */
static void truncate_longest_first(size_t max, size_t *na, size_t *nb) {
    size_t n1 = *na, n2 = *nb;
    bool swap = n1 > n2;
    if (swap) { size_t x = n1; n1 = n2; n2 = x; }
    n2 = n1 > max ? n1 : (n1 > max - n1 ? n1 : max - n1);
    if (n1 + n2 > max) {
        n1 = max / 2;
        n2 = n1 + max % 2;
    }
    if (swap) { size_t x = n1; n1 = n2; n2 = x; }
    if (n1 < *na) *na = n1;
    if (n2 < *nb) *nb = n2;
}

er_status tk_truncate_lengths(const er_tokenizer *t, const er_tokenize_params *p, size_t *na, size_t *nb,
                              bool pair, int *truncated, er_err *err) {
    *truncated = 0;
    if (!p->max_length) return ER_OK;
    size_t n_add = p->add_special_tokens ? er_tokenizer_num_special_tokens(t, pair) : 0;
    size_t total = *na + *nb;
    if (total + n_add <= p->max_length) return ER_OK;
    /* The Rust library computes max_length - n_add unsigned: below the
     * special tokens it wraps, and nothing is truncated.  Same here. */
    if (p->max_length < n_add) return ER_OK;
    size_t max = p->max_length - n_add, remove = total - max;
    if (p->truncation == ER_TRUNCATE_LONGEST_FIRST) {
        if (pair) truncate_longest_first(max, na, nb);
        else *na = max;
    } else if (p->truncation == ER_TRUNCATE_ONLY_FIRST || p->truncation == ER_TRUNCATE_ONLY_SECOND) {
        bool first = p->truncation == ER_TRUNCATE_ONLY_FIRST;
        if (!first && !pair)
            return er_set(err, ER_ERR_INVALID_ARG, "tokenizer: only_second truncation needs a pair");
        size_t *n = first ? na : nb;
        if (*n <= remove)
            return er_set(err, ER_ERR_CAPACITY,
                          "tokenizer: %s sequence (%zu tokens) too short to remove %zu tokens",
                          first ? "first" : "second", *n, remove);
        *n -= remove;
    } else {
        return er_set(err, ER_ERR_CAPACITY, "tokenizer: %zu tokens exceed max_length %zu",
                      total + n_add, p->max_length);
    }
    *truncated = 1;
    return ER_OK;
}

typedef struct {
    size_t start, stop;
} window;

/* The windows of a sequence of n tokens cut to keep (Encoding::truncate);
 * w[0] is the one kept.  keep 0 keeps nothing and overflows everything. */
static er_status cut_windows(size_t n, size_t keep, const er_tokenize_params *p, window **out, size_t *count,
                             er_err *err) {
    if (keep >= n) keep = n;
    if (keep && keep < n && p->stride >= keep)
        return er_set(err, ER_ERR_INVALID_ARG, "tokenizer: stride %zu must be below the %zu tokens kept of %zu",
                      p->stride, keep, n);
    size_t step = keep && keep < n ? keep - p->stride : 1, cap = keep == n ? 1 : n / step + 2, k = 0;
    window *w = malloc(cap * sizeof *w);
    if (!w) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    if (keep == n) {
        w[k++] = (window){0, n};
    } else if (!keep) {
        w[k++] = (window){0, 0};
        w[k++] = (window){0, n};
    } else if (p->direction == ER_TRUNCATE_RIGHT) {
        for (size_t start = 0; k == 0 || w[k - 1].stop < n; start += step)
            w[k++] = (window){start, start + keep < n ? start + keep : n};
    } else {
        for (size_t stop = n; k == 0 || w[k - 1].start > 0; stop -= step)
            w[k++] = (window){stop > keep ? stop - keep : 0, stop};
    }
    *out = w;
    *count = k;
    return ER_OK;
}

/* The tokens of window w of s (NULL s: no pair). */
static tk_tokens window_of(const tk_tokens *s, window w) {
    if (!s || !s->v) return (tk_tokens){NULL, 0, 0};
    return (tk_tokens){s->v + w.start, w.stop - w.start, w.stop - w.start};
}

typedef struct {
    const er_tokenizer *t;
    const tk_tokens *a, *b;
    window *wa, *wb;
    size_t n_wa, n_wb;
    bool add_special;
    const tk_window_hook *hook;
} windows;

/* A window past a sequence's first keeps the type id the sequence was
 * encoded with, 0 for the first, 1 for the pair, under a post-processor
 * that says so (tk_post_processor.overflow_keeps_type_ids: visible when a
 * template gives B another, as t5's type id 0). */
static void overflow_type_ids(er_encoding *e, bool a_over, bool b_over) {
    for (size_t k = 0; k < e->n; k++) {
        if (a_over && e->sequence_ids[k] == 0) e->type_ids[k] = 0;
        if (b_over && e->sequence_ids[k] == 1) e->type_ids[k] = 1;
    }
}

static er_status build(const windows *x, size_t i, size_t j, er_encoding **out, er_err *err) {
    const tk_post_processor *pp = x->t->post_processor;
    window wb = x->b ? x->wb[j] : (window){0, 0};
    tk_tokens a = window_of(x->a, x->wa[i]), b = window_of(x->b, wb);
    er_status st = pp->process(pp, x->t, &a, a.n, x->b ? &b : NULL, b.n, x->add_special, out, err);
    if (!st && (i || j) && pp->overflow_keeps_type_ids) overflow_type_ids(*out, i != 0, j != 0);
    size_t start[2] = {x->wa[i].start, wb.start};
    if (!st && x->hook) st = x->hook->built(x->hook, out, start, err);
    return st;
}

/* The overflowing encodings of main, in the Rust library's order. */
static er_status build_overflowing(const windows *x, er_encoding *main, er_err *err) {
    size_t nb = x->b ? x->n_wb : 1, n = x->n_wa * nb - 1, k = 0;
    if (!n) return ER_OK;
    if (x->n_wa > ER_TOKENIZER_MAX_OVERFLOWING || n > ER_TOKENIZER_MAX_OVERFLOWING)
        return er_set(err, ER_ERR_CAPACITY, "tokenizer: %zu x %zu truncation windows exceed %d overflowing encodings",
                      x->n_wa, nb, ER_TOKENIZER_MAX_OVERFLOWING);
    main->overflowing = calloc(n, sizeof *main->overflowing);
    if (!main->overflowing) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    er_status st = ER_OK;
    for (size_t i = 1; i < x->n_wa && !st; i++)
        for (size_t j = 0; j < nb && !st; j++) st = build(x, i, j, &main->overflowing[k++], err);
    for (size_t j = 1; j < nb && !st; j++) st = build(x, 0, j, &main->overflowing[k++], err);
    main->n_overflowing = k;
    return st;
}

er_status tk_build_windows(const er_tokenizer *t, const er_tokenize_params *p, const tk_tokens *a, size_t ka,
                           const tk_tokens *b, size_t kb, const tk_window_hook *hook, er_encoding **out,
                           er_err *err) {
    windows x = {t, a, b, NULL, NULL, 0, 0, p->add_special_tokens != 0, hook};
    er_status st = cut_windows(a->n, ka, p, &x.wa, &x.n_wa, err);
    if (!st && b) st = cut_windows(b->n, kb, p, &x.wb, &x.n_wb, err);
    if (!st) st = build(&x, 0, 0, out, err);
    if (!st && p->return_overflowing) st = build_overflowing(&x, *out, err);
    if (st && *out) {
        er_encoding_free(*out);
        *out = NULL;
    }
    free(x.wa);
    free(x.wb);
    return st;
}
