/* ByteLevel (GPT-2, RoBERTa): the span is split with GPT-2's regular
 * expression (use_regex), after a space is put in front if it has none
 * (add_prefix_space); each piece is then rewritten byte by byte into the
 * GPT-2 alphabet (every byte a printable code point), which the BPE
 * vocabulary is written in.  The rewritten words go to the sink from a
 * scratch buffer whose src keeps, for every byte, the original code point
 * it came from (a token holding part of a code point's bytes gets that
 * whole code point's offsets, as in the Rust library).  trim_offsets is
 * the post-processor's business (tok_processor_bytelevel.c). */
#include <stdlib.h>
#include <string.h>

#include "tok_regex.h"
#include "tokenizer_internal.h"

/* The Rust library's pattern (pre_tokenizers/byte_level.rs). */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    tk_pre_tokenizer base;
    bool add_prefix_space;
    tk_regex *re; /* NULL: use_regex false, the span is one piece */
    uint16_t byte_char[256];
} byte_level;

void tk_byte_level_alphabet(uint16_t byte_char[256]) {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_char[b] = (uint16_t)(printable ? b : next++);
    }
}

/* Code points [i, j) of text, rewritten byte by byte into the alphabet, to the sink. */
static er_status send_piece(const byte_level *bl, const tk_normalized *text, size_t i, size_t j,
                            tk_word_sink *sink, er_err *err) {
    tk_normalized *out = sink->scratch[1];
    tk_normalized_clear(out);
    er_status st = tk_normalized_reserve(out, text->byte_at[j] - text->byte_at[i], err);
    if (st) return st;
    for (size_t k = i; k < j; k++)
        for (uint32_t p = text->byte_at[k]; p < text->byte_at[k + 1]; p++)
            tk_normalized_push(out, bl->byte_char[text->bytes[p]], text->src[k]);
    return sink->word(sink, out, 0, out->n);
}

/* The sink the pattern's pieces go to: each is rewritten, then sent on. */
typedef struct {
    tk_word_sink base; /* first: the splitter sends its pieces here */
    const byte_level *bl;
    tk_word_sink *next;
    er_err *err;
} rewriting_sink;

static er_status rewrite_word(tk_word_sink *self, const tk_normalized *s, size_t start, size_t end) {
    rewriting_sink *r = (rewriting_sink *)self;
    return send_piece(r->bl, s, start, end, r->next, r->err);
}

/* Isolated split of text's code points [a, b) by the pattern: the matches
 * and the stretches between them, in order. */
static er_status split_by_pattern(const byte_level *bl, const tk_normalized *text, size_t a, size_t b,
                                  tk_word_sink *sink, er_err *err) {
    rewriting_sink r = {{rewrite_word, {sink->scratch[0], sink->scratch[1]}}, bl, sink, err};
    tk_splitter sp;
    tk_splitter_begin(&sp, TK_SPLIT_ISOLATED, false, text, &r.base);
    return tk_split_by_regex(&sp, bl->re, a, b, err);
}

static er_status byte_level_split(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                                  tk_word_sink *sink, er_err *err) {
    const byte_level *bl = (const byte_level *)self;
    if (a >= b) return ER_OK;
    const tk_normalized *text = s;
    if (bl->add_prefix_space && s->cps[a] != ' ') {
        /* The space takes the first code point's place in the offsets. */
        tk_normalized *t = sink->scratch[0];
        tk_normalized_clear(t);
        er_status st = tk_normalized_reserve(t, b - a + 1, err);
        if (st) return st;
        tk_normalized_push(t, ' ', s->src[a]);
        for (size_t k = a; k < b; k++) tk_normalized_push(t, s->cps[k], s->src[k]);
        text = t;
        a = 0;
        b = t->n;
    }
    if (!bl->re) return send_piece(bl, text, a, b, sink, err);
    return split_by_pattern(bl, text, a, b, sink, err);
}

static void byte_level_free(tk_pre_tokenizer *self) {
    byte_level *bl = (byte_level *)self;
    tk_regex_free(bl->re);
    free(bl);
}

/* {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
 *  "use_regex": true} (the Rust defaults; trim_offsets unused here). */
er_status tk_byte_level_pre_tokenizer_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out,
                                           er_err *err) {
    (void)t;
    bool prefix, use_regex;
    er_status st;
    if ((st = tk_json_bool(json, "add_prefix_space", true, &prefix, err)) ||
        (st = tk_json_bool(json, "use_regex", true, &use_regex, err)))
        return st;
    byte_level *bl = calloc(1, sizeof *bl);
    if (!bl) return er_set(err, ER_ERR_NOMEM, "tokenizer: out of memory");
    bl->base = (tk_pre_tokenizer){byte_level_split, byte_level_free};
    bl->add_prefix_space = prefix;
    tk_byte_level_alphabet(bl->byte_char);
    if (use_regex && (st = tk_regex_new(GPT2_PATTERN, strlen(GPT2_PATTERN), &bl->re, err))) {
        free(bl);
        return st;
    }
    *out = &bl->base;
    return ER_OK;
}
