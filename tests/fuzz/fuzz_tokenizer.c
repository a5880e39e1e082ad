/* libFuzzer target for the whole tokenizer pipeline.
 * Byte 0 selects the mode:
 *   even: the rest is text (split at the first 0xFE byte into text / pair),
 *         encoded under varying params (truncation direction, stride and
 *         overflowing windows included) with bert-base-uncased's tokenizer
 *         (WordPiece), gpt2's (ByteLevel and BPE) and t5-small's
 *         (Precompiled, WhitespaceSplit + Metaspace, Unigram), and its ids
 *         decoded;
 *   odd:  the rest is a tokenizer.json (the seeds include small BPE ones:
 *         merges as "a b" strings and as pairs, the model's options, the
 *         ByteLevel pre- and post-processor, decoders; small Unigram ones
 *         with a hand-built Precompiled charsmap, which the fuzzer mutates
 *         in its base64; norm_json*: the normalizers, Split / Punctuation /
 *         Digits / Whitespace and their Sequences, a Regex Replace
 *         decoder); if it loads, a fixed sample and the JSON bytes
 *         themselves are encoded with it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static er_tokenizer *bert, *gpt2, *t5;

/* tests/tokenizer/data/NAME, from the repository root or two levels below. */
static er_tokenizer *load_data(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/tokenizer/data/%s", name);
    er_tokenizer *t = er_tokenizer_load(path, NULL);
    if (t) return t;
    snprintf(path, sizeof path, "../../tests/tokenizer/data/%s", name);
    return er_tokenizer_load(path, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    bert = load_data("bert-base-uncased.tokenizer.json");
    gpt2 = load_data("gpt2.tokenizer.json");
    t5 = load_data("t5-small.tokenizer.json");
    return 0;
}

/* Whether e holds an id the vocabulary lacks (a post-processor may name one). */
static int unknown_id(const er_tokenizer *t, const er_encoding *e) {
    for (size_t i = 0; i < e->n; i++)
        if (!er_tokenizer_id_to_token(t, e->ids[i])) return 1;
    return 0;
}

/* Every token's offsets lie in its own text, and names a token. */
static void check_offsets(const er_tokenizer *t, const er_encoding *e, size_t len, size_t plen) {
    for (size_t i = 0; i < e->n; i++) {
        size_t lim = e->sequence_ids[i] == 1 ? plen : len;
        if (e->byte_offsets[i].start > e->byte_offsets[i].end || e->byte_offsets[i].end > lim ||
            e->offsets[i].start > e->offsets[i].end || e->offsets[i].end > lim || !e->tokens[i] ||
            (!e->special_mask[i] && er_tokenizer_id_to_token(t, e->ids[i]) == NULL))
            abort();
    }
}

static void run(const er_tokenizer *t, const uint8_t *d, size_t n, uint8_t sel) {
    const uint8_t *sep = memchr(d, 0xFE, n);
    const char *pair = NULL;
    size_t len = n, plen = 0;
    if (sep && (sel & 2)) {
        len = (size_t)(sep - d);
        pair = (const char *)sep + 1;
        plen = n - len - 1;
    }
    er_tokenize_params p = er_tokenize_default_params();
    p.add_special_tokens = !(sel & 4);
    p.truncation = (er_truncation)((sel >> 3) & 3);
    p.max_length = (sel >> 5) ? (size_t)(sel >> 5) * 3 : 0;
    p.direction = (er_truncation_direction)(n & 1); /* no bit of sel left: the length chooses */
    p.stride = (n >> 1) % 4;
    p.return_overflowing = n < 128; /* a pair's windows multiply: keep them few */
    er_encoding *e = NULL;
    er_err err;
    if (er_tokenizer_encode(t, (const char *)d, len, pair, plen, &p, &e, &err) == ER_OK) {
        /* an overflowing window can pass max_length: a sequence cut to no
         * token overflows whole, as in the Rust library */
        for (size_t k = 0; k < e->n_overflowing; k++) check_offsets(t, e->overflowing[k], len, plen);
        char *text = NULL;
        if (er_tokenizer_decode(t, e->ids, e->n, !(sel & 4), &text, NULL, &err) != ER_OK &&
            err.code != ER_ERR_NOMEM && !unknown_id(t, e))
            abort(); /* an encoding decodes unless its post-processor names an id outside the vocabulary */
        free(text);
        check_offsets(t, e, len, plen);
        if (p.max_length && e->n > p.max_length) abort();
    }
    er_encoding_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t sel = data[0];
    if (!(sel & 1)) {
        if (bert) run(bert, data + 1, size - 1, sel);
        if (gpt2) run(gpt2, data + 1, size - 1, sel);
        if (t5) run(t5, data + 1, size - 1, sel);
        return 0;
    }
    er_err err;
    er_tokenizer *t = er_tokenizer_load_json((const char *)data + 1, size - 1, &err);
    if (t) {
        static const char sample[] = "Hello [CLS] wörld, 你好! ##x \xf0\x9f\xa4\x97 [MASK] aq\xcc\x81zb";
        run(t, (const uint8_t *)sample, sizeof sample - 1, 0x02);
        run(t, data + 1, size - 1, sel);
        er_tokenizer_free(t);
    }
    return 0;
}
