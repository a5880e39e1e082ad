/* Pathological inputs, one thread: the cost must stay bounded (linear in the
 * input) and bad bytes must be a typed error, never a crash.
 *   bench_tokenizer_pathological TOKENIZER [SCALE]
 * For each case prints the time and tokens at the full size and at a quarter
 * of it: "x4 in" is time(full) / time(quarter), about 4 when the cost is
 * linear, about 16 when quadratic.  SCALE (default 1) multiplies every size.
 * Cases: a 1 MB single word of letters (no spaces), 100k repeats of one
 * character, 10k combining marks (U+0301) after one base letter, and invalid
 * UTF-8 (a lone 0xFF) at a known byte offset in valid text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Letters from a fixed LCG: a word no vocabulary holds whole, so BPE has
 * to merge all of it and WordPiece/Unigram search all of it. */
static size_t gen_word(char *b, size_t n) {
    uint32_t r = 12345;
    for (size_t i = 0; i < n; i++) {
        r = r * 1664525u + 1013904223u;
        b[i] = (char)('a' + (r >> 8) % 26);
    }
    return n;
}
static size_t gen_repeat(char *b, size_t n) {
    memset(b, 'a', n);
    return n;
}
/* "e" then n marks U+0301 (2 bytes each). */
static size_t gen_marks(char *b, size_t n) {
    b[0] = 'e';
    for (size_t i = 0; i < n; i++) memcpy(b + 1 + 2 * i, "\xcc\x81", 2);
    return 1 + 2 * n;
}
/* Valid words up to byte n, then a lone 0xFF, then more words: the error
 * must name offset n. */
static size_t gen_invalid(char *b, size_t n) {
    for (size_t i = 0; i < 2 * n; i++) b[i] = i % 6 == 5 ? ' ' : 'x';
    b[n] = (char)0xFF;
    return 2 * n;
}

typedef struct {
    const char *name;
    size_t n;    /* the size parameter at SCALE 1 */
    size_t room; /* bytes the generator writes for n */
    size_t (*gen)(char *, size_t);
} pcase;

/* Encodes once; prints nothing. Returns seconds, tokens in *tok, status. */
static double run1(const er_tokenizer *t, const char *b, size_t len, size_t *tok, er_status *st, er_err *err) {
    er_encoding *e = NULL;
    double t0 = now();
    *st = er_tokenizer_encode(t, b, len, NULL, 0, NULL, &e, err);
    double dt = now() - t0;
    *tok = e ? e->n : 0;
    er_encoding_free(e);
    return dt;
}

static int run_case(const er_tokenizer *t, const pcase *c, size_t scale) {
    size_t n = c->n * scale;
    char *b = malloc(c->room * scale + 8);
    if (!b) return 1;
    size_t tok_q, tok, len_q = c->gen(b, n / 4), len;
    er_status st;
    er_err err;
    double best_q = 1e30, best = 1e30;
    for (int r = 0; r < 3; r++) { /* best of 3 at each size, quarter first */
        double d = run1(t, b, len_q, &tok_q, &st, &err);
        if (d < best_q) best_q = d;
    }
    len = c->gen(b, n);
    for (int r = 0; r < 3; r++) {
        double d = run1(t, b, len, &tok, &st, &err);
        if (d < best) best = d;
    }
    if (st != ER_OK)
        printf("  %-22s %8zu bytes  %9.3f ms  error %d: %s\n", c->name, len, best * 1e3, (int)st, err.msg);
    else
        printf("  %-22s %8zu bytes  %9.3f ms  %8zu tokens  x4 in: %.1fx time\n", c->name, len, best * 1e3, tok,
               best / best_q);
    free(b);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_tokenizer_pathological TOKENIZER [SCALE]\n");
        return 2;
    }
    size_t scale = argc == 3 ? (size_t)strtoul(argv[2], NULL, 10) : 1;
    if (scale == 0) scale = 1;
    const pcase cases[] = {
        {"1 MB word (letters)", 1u << 20, 1u << 20, gen_word},
        {"100k x 'a'", 100000, 100000, gen_repeat},
        {"e + 10k U+0301", 10000, 20001, gen_marks},
        {"0xFF at offset 500000", 500000, 1000000, gen_invalid},
    };
    er_err err;
    er_tokenizer *t = er_tokenizer_load(argv[1], &err);
    if (!t) { fprintf(stderr, "%s\n", err.msg); return 1; }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (run_case(t, &cases[i], scale)) return 1;
    er_tokenizer_free(t);
    return 0;
}
