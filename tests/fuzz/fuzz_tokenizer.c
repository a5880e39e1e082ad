/* libFuzzer target for the whole tokenizer pipeline.
 * Byte 0 selects the mode:
 *   even: the rest is text (split at the first 0xFE byte into text / pair),
 *         encoded under varying params with bert-base-uncased's tokenizer
 *         (WordPiece) and gpt2's (ByteLevel and BPE);
 *   odd:  the rest is a tokenizer.json (the seeds include small BPE ones:
 *         merges as "a b" strings and as pairs, the model's options, the
 *         ByteLevel pre- and post-processor); if it loads, a fixed sample
 *         and the JSON bytes themselves are encoded with it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static er_tokenizer *bert, *gpt2;

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
    return 0;
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
    if (er_tokenizer_encode(t, (const char *)d, len, pair, plen, &p, &e, &err) == ER_OK) {
        for (size_t i = 0; i < e->n; i++) {
            size_t lim = e->sequence_ids[i] == 1 ? plen : len;
            if (e->byte_offsets[i].start > e->byte_offsets[i].end || e->byte_offsets[i].end > lim ||
                e->offsets[i].start > e->offsets[i].end || e->offsets[i].end > lim || !e->tokens[i] ||
                (!e->special_mask[i] && er_tokenizer_id_to_token(t, e->ids[i]) == NULL))
                abort();
        }
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
        return 0;
    }
    er_err err;
    er_tokenizer *t = er_tokenizer_load_json((const char *)data + 1, size - 1, &err);
    if (t) {
        static const char sample[] = "Hello [CLS] wörld, 你好! ##x \xf0\x9f\xa4\x97 [MASK]";
        run(t, (const uint8_t *)sample, sizeof sample - 1, 0x02);
        run(t, data + 1, size - 1, sel);
        er_tokenizer_free(t);
    }
    return 0;
}
