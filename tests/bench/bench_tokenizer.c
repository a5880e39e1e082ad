/* Tokenizer throughput, one thread.
 *   bench_tokenizer gen DIR          writes DIR/english.txt and DIR/multi.txt
 *   bench_tokenizer run TOKENIZER FILE
 * Each line of FILE is one document (one encode call, specials added).
 * Prints: MB/s, tokens/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

static uint32_t rng = 12345;
static uint32_t rnd(uint32_t n) {
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) % n;
}

static const char *EN[] = {
    "the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "on", "by",
    "model", "language", "transformer", "attention", "tokenization", "inference", "server",
    "performance", "throughput", "embedding", "sentence", "question", "answer", "network",
    "people", "government", "university", "international", "development", "information",
    "however", "although", "because", "between", "different", "important", "especially",
    "unbelievable", "reconsideration", "photosynthesis", "Washington", "London", "Monday",
    "2024", "3.5", "100%", "e-mail", "state-of-the-art", "doesn't", "it's", "U.S."};
static const char *ML[] = {
    "Hello", "world", "café", "naïve", "Straße", "Καλημέρα", "κόσμε", "Привет", "мир",
    "مرحبا", "بالعالم", "שלום", "עולם", "नमस्ते", "दुनिया", "สวัสดี", "你好", "世界", "自然语言",
    "日本語", "テキスト", "한국어", "텍스트", "🤗", "👩‍💻", "Ångström", "Dvořák", "résumé", "2024",
    "$100", "€50", "e.g.", "(test)", "—", "«quoted»"};

static void gen(const char *path, const char **w, size_t nw, size_t bytes) {
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    size_t n = 0, line = 0;
    while (n < bytes) {
        const char *s = w[rnd((uint32_t)nw)];
        int cap = line == 0 || rnd(12) == 0;
        n += (size_t)fprintf(f, "%s%c%s", line ? " " : "", cap && s[0] >= 'a' && s[0] <= 'z' ? s[0] - 32 : s[0], s + 1);
        line++;
        if (rnd(10) == 0) n += (size_t)fprintf(f, "%s", rnd(2) ? "," : ".");
        if (line > 60 + rnd(60)) { fputc('\n', f); n++; line = 0; }
    }
    fputc('\n', f);
    fclose(f);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "gen")) {
        char p[4096];
        snprintf(p, sizeof p, "%s/english.txt", argv[2]);
        gen(p, EN, sizeof EN / sizeof *EN, 8u << 20);
        snprintf(p, sizeof p, "%s/multi.txt", argv[2]);
        gen(p, ML, sizeof ML / sizeof *ML, 4u << 20);
        return 0;
    }
    if (argc != 4 || strcmp(argv[1], "run")) {
        fprintf(stderr, "usage: bench_tokenizer gen DIR | run TOKENIZER FILE\n");
        return 2;
    }
    er_err err;
    er_tokenizer *t = er_tokenizer_load(argv[2], &err);
    if (!t) { fprintf(stderr, "%s\n", err.msg); return 1; }
    FILE *f = fopen(argv[3], "rb");
    if (!f) { perror(argv[3]); return 1; }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) return 1;
    fclose(f);
    size_t tokens = 0, bytes = 0;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        tokens = bytes = 0;
        for (char *p = buf, *end = buf + sz; p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            er_encoding *e;
            if (er_tokenizer_encode(t, p, len, NULL, 0, NULL, &e, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
            tokens += e->n;
            bytes += len;
            er_encoding_free(e);
            p += len + 1;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%.1f MB/s  %.0f tokens/s  (%zu bytes, %zu tokens, %.3f s)\n", bytes / best / 1e6, tokens / best,
           bytes, tokens, best);
    free(buf);
    er_tokenizer_free(t);
    return 0;
}
