/* libFuzzer target for byte-level BPE: the ByteLevel pre-tokenizer (regular
 * expression, GPT-2 alphabet, rewritten offsets), the BPE model and its
 * merges parsing.  Byte 0 selects the mode:
 *   even: the rest is text (split at the first 0xFE byte into text / pair),
 *         encoded with gpt2's tokenizer under varying params;
 *   odd:  the rest is a tokenizer.json (the seeds are small BPE ones, merges
 *         as "a b" strings and as pairs, with the model's options); if it
 *         loads, a fixed sample and the JSON bytes themselves are encoded.
 * Every encoding must have offsets inside its text and known ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static er_tokenizer *gpt2;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    gpt2 = er_tokenizer_load("tests/tokenizer/data/gpt2.tokenizer.json", NULL);
    if (!gpt2) gpt2 = er_tokenizer_load("../../tests/tokenizer/data/gpt2.tokenizer.json", NULL);
    return 0;
}

static void check(const er_tokenizer *t, const er_encoding *e, size_t len, size_t plen) {
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
    er_encoding *e = NULL;
    er_err err;
    if (er_tokenizer_encode(t, (const char *)d, len, pair, plen, &p, &e, &err) == ER_OK) check(t, e, len, plen);
    er_encoding_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t sel = data[0];
    if (!(sel & 1)) {
        if (gpt2) run(gpt2, data + 1, size - 1, sel);
        return 0;
    }
    er_err err;
    er_tokenizer *t = er_tokenizer_load_json((const char *)data + 1, size - 1, &err);
    if (t) {
        static const char sample[] = "Hello  world, w\xc3\xb6rld! 123 <unk> \xf0\x9f\xa4\x97 a\tb\n";
        run(t, (const uint8_t *)sample, sizeof sample - 1, 0x02);
        run(t, data + 1, size - 1, sel);
        er_tokenizer_free(t);
    }
    return 0;
}
