/* ByteLevel as a post-processor (GPT-2): the sequences as they are, type
 * ids 0 and 1, nothing added; with trim_offsets, each token's offsets lose
 * its leading and trailing spaces (Ġ, the GPT-2 alphabet's space, or
 * whitespace in an added token's matched text), except the one space
 * add_prefix_space put before the first token (the Rust library's
 * process_offsets, which RobertaProcessing applies too). */
#include <string.h>

#include "tokenizer_internal.h"

/* Spaces: Ġ (U+0120, the alphabet's space byte) and whitespace (an added
 * token's matched text may hold some).  Per run: code points, and bytes of
 * the original text (Ġ stands for one byte, whitespace is itself). */
typedef struct {
    uint32_t cps, bytes;
} space_run;

static size_t space_at(const uint8_t *s, size_t n, uint32_t *bytes) {
    if (n >= 2 && s[0] == 0xC4 && s[1] == 0xA0) return *bytes = 1, 2;
    uint32_t c;
    size_t len = tk_utf8_next(s, &c);
    if (len > n || !tk_is_whitespace(c)) return 0;
    *bytes = (uint32_t)len;
    return len;
}

/* The leading and trailing space runs of token string tok (a string of
 * spaces only is all leading, as in Rust, whose trailing count then
 * counts them again: harmless, the start has reached the end). */
static void count_spaces(const char *tok, space_run *lead, space_run *trail) {
    const uint8_t *s = (const uint8_t *)tok;
    size_t n = strlen(tok), i = 0, k;
    uint32_t b;
    *lead = *trail = (space_run){0, 0};
    while (i < n && (k = space_at(s + i, n - i, &b))) i += k, lead->cps++, lead->bytes += b;
    for (; i < n; i += k) {
        if ((k = space_at(s + i, n - i, &b))) {
            trail->cps++, trail->bytes += b;
        } else {
            k = tk_utf8_next(s + i, &b);
            *trail = (space_run){0, 0};
        }
    }
}

/* Token k, the first of its sequence or not.  The Rust goldens trim code
 * point offsets (the binding post-processes char offsets); the byte offsets
 * follow them. */
static void trim_token(er_encoding *e, size_t k, bool add_prefix_space, bool first_in_sequence) {
    space_run lead, trail;
    count_spaces(e->tokens[k], &lead, &trail);
    er_offset *o = &e->offsets[k], *bo = &e->byte_offsets[k];
    if (lead.cps == 1 && add_prefix_space && (first_in_sequence || o->start == 0)) lead = (space_run){0, 0};
    if (lead.cps) {
        bool within = o->start + lead.cps <= o->end;
        o->start = within ? o->start + lead.cps : o->end;
        bo->start = within && bo->start + lead.bytes <= bo->end ? bo->start + lead.bytes : bo->end;
    }
    if (trail.cps && o->end >= trail.cps) {
        bool within = o->end - trail.cps >= o->start;
        o->end = within ? o->end - trail.cps : o->start;
        bo->end = within && bo->end >= bo->start + trail.bytes ? bo->end - trail.bytes : bo->start;
    }
}

void tk_trim_offsets(er_encoding *e, bool add_prefix_space) {
    for (size_t k = 0; k < e->n; k++)
        if (e->sequence_ids[k] >= 0)
            trim_token(e, k, add_prefix_space, k == 0 || e->sequence_ids[k] != e->sequence_ids[k - 1]);
}

/* {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}:
 * the plain processing; the trimming is asked of the pipeline, which does
 * it once the tokens' strings are final (an added token's string is the
 * text it matched, whitespace included, and that whitespace is trimmed). */
er_status tk_byte_level_processor_load(er_tokenizer *t, json_t *json, tk_post_processor **out, er_err *err) {
    er_status st;
    if ((st = tk_json_bool(json, "trim_offsets", true, &t->trim_offsets, err)) ||
        (st = tk_json_bool(json, "add_prefix_space", true, &t->trim_keeps_prefix_space, err)))
        return st;
    return tk_plain_processing_new(out, err);
}
