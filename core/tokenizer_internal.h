/* Internal layout of er_tokenizer and the seams of its pipeline, shared by
 * core/tokenizer*.c and the component files core/tok_*.c only.
 *
 * The pipeline (tokenizer_encode.c): added tokens are split out of the raw
 * text; every other span is normalized (tk_normalizer), split into words
 * (tk_pre_tokenizer), each word is cut into tokens (tk_model); truncation
 * and the post-processor (tk_post_processor) then build the er_encoding.
 * Offsets survive normalization because every normalized code point keeps
 * the index of the original code point it came from (tk_normalized.src).
 *
 * Adding a component that tokenizer.json names by its "type" (a normalizer,
 * pre-tokenizer, model, post-processor or decoder):
 *   1. A new file core/tok_<kind>_<name>.c (kind: normalizer, pretokenizer,
 *      model, processor, decoder) defines a struct whose first member is the kind's
 *      interface below, sets every function pointer of that interface, and
 *      defines the loader
 *          er_status tk_<name>_load(er_tokenizer *t, json_t *json,
 *                                   tk_<kind> **out, er_err *err);
 *      which parses the component's JSON object (messages start with
 *      "tokenizer.json: "), and on success stores the new heap object in
 *      *out; on failure it frees what it allocated and leaves *out alone.
 *      It may add strings to t's arena and entries to t's vocabulary (a
 *      model does); whatever it adds there is freed with t.
 *   2. Its prototype, `tk_<kind>_loader tk_<name>_load;`, goes in this
 *      header under "Loaders", beside its kind's.
 *   3. One line {"TypeName", tk_<name>_load} goes in its kind's table in
 *      core/tokenizer_components.c.
 * Nothing else changes: the tokenizer.json parser looks the type up in the
 * table (an unknown type is refused with a message naming it) and the
 * pipeline only calls the interface.  A component the legacy vocab.txt path
 * also builds (BertNormalizer, ...) exports a constructor besides its loader.
 */
#ifndef ER_TOKENIZER_INTERNAL_H
#define ER_TOKENIZER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "tokenizer.h"

#define TK_NONE UINT32_MAX
#define TK_MAX_ID (1 << 24)          /* ids must be below this */
#define TK_MAX_TOKEN_BYTES 4096      /* longest vocab / added token string */

/* ---- Data passed between the pipeline stages -------------------------- */

/* A normalized span: its UTF-8 bytes and, per code point, the value, the
 * byte offset in `bytes` and the index of the original code point it came
 * from.  byte_at[n] is the end of the bytes.  Owned by the pipeline, which
 * reuses it from span to span (tk_normalized_free releases it). */
typedef struct {
    uint8_t *bytes;
    size_t n_bytes, bytes_cap;
    uint32_t *byte_at; /* [n + 1] */
    uint32_t *cps;     /* [n] */
    uint32_t *src;     /* [n] */
    size_t n, cap;
} tk_normalized;

/* Room for extra_cp more code points.  ER_ERR_NOMEM, or ER_ERR_CAPACITY
 * when the span would pass 4 GiB of UTF-8. */
er_status tk_normalized_grow(tk_normalized *s, size_t extra_cp, er_err *err);
static inline er_status tk_normalized_reserve(tk_normalized *s, size_t extra_cp, er_err *err) {
    if (s->n + extra_cp + 1 <= s->cap && s->n_bytes + 4 * extra_cp <= s->bytes_cap) return ER_OK;
    return tk_normalized_grow(s, extra_cp, err);
}
size_t tk_utf8_put(uint8_t *out, uint32_t cp);
/* Appends code point cp that came from original code point src; the caller
 * reserved room for it.  byte_at[n] (the end) is kept up to date. */
static inline void tk_normalized_push(tk_normalized *s, uint32_t cp, uint32_t src) {
    s->cps[s->n] = cp;
    s->src[s->n] = src;
    s->n_bytes += tk_utf8_put(s->bytes + s->n_bytes, cp);
    s->byte_at[++s->n] = (uint32_t)s->n_bytes;
}
/* Empties s for the next span, keeping its memory. */
static inline void tk_normalized_clear(tk_normalized *s) {
    s->n = s->n_bytes = 0;
    if (s->byte_at) s->byte_at[0] = 0;
}
void tk_normalized_free(tk_normalized *s);

/* Doubles the capacity (64 at first) of a growable array: *array_ptr is
 * the array (a T *), *cap its capacity in elements of elem_size bytes. */
er_status tk_array_grow(void *array_ptr, size_t *cap, size_t elem_size, er_err *err);

/* Where a pre-tokenizer sends its words, in order: word(sink, s, start,
 * end) for code points [start, end) of s.  s is the normalized span the
 * pre-tokenizer was given, or text it rewrote (ByteLevel: bytes as the
 * GPT-2 alphabet) into one of the sink's scratch buffers, whose src still
 * names, per code point, the original code point it came from: offsets
 * survive the rewriting as they survive normalization.  The pipeline's
 * sink runs the model on each word at once, so no list of words is ever
 * built. */
typedef struct tk_word_sink tk_word_sink;
struct tk_word_sink {
    er_status (*word)(tk_word_sink *self, const tk_normalized *s, size_t start, size_t end);
    /* Buffers a pre-tokenizer may rewrite text into (tk_normalized_clear
     * first); owned by the pipeline, which keeps their memory from word to
     * word and from span to span. */
    tk_normalized *scratch[2];
};

/* A token.  A model fills id, tok and the normalized code point range
 * [cs, ce); the pipeline turns that into original code point offsets
 * [cs, ce) and byte offsets [bs, be). */
typedef struct {
    int32_t id;
    uint32_t tok; /* arena offset of the token string */
    uint32_t cs, ce, bs, be;
} tk_token;

typedef struct {
    tk_token *v;
    size_t n, cap;
} tk_tokens;

static inline er_status tk_tokens_push(tk_tokens *l, tk_token tok, er_err *err) {
    er_status st;
    if (l->n == l->cap && (st = tk_array_grow(&l->v, &l->cap, sizeof *l->v, err))) return st;
    l->v[l->n++] = tok;
    return ER_OK;
}

/* ---- Splitting a word by a pattern (the Rust NormalizedString::split) --
 * A pattern cuts code points [a, b) into consecutive pieces, each a match
 * or not; the behaviour decides which pieces become words and which are
 * glued together.  The pieces stream through a tk_splitter, so no list of
 * them is built (Split, Punctuation, Digits, Whitespace share it). */
typedef enum {
    TK_SPLIT_REMOVED,
    TK_SPLIT_ISOLATED,
    TK_SPLIT_MERGED_WITH_PREVIOUS,
    TK_SPLIT_MERGED_WITH_NEXT,
    TK_SPLIT_CONTIGUOUS
} tk_split_behavior;

typedef struct {
    tk_split_behavior behavior;
    bool invert; /* every piece's is_match flipped (the Rust Invert pattern) */
    const tk_normalized *s;
    tk_word_sink *sink;
    size_t ps, pe;             /* the pending word, when pending */
    bool pending, open, prev;  /* open: a MergedWithNext match awaiting its next; prev: last piece matched */
} tk_splitter;

void tk_splitter_begin(tk_splitter *sp, tk_split_behavior behavior, bool invert, const tk_normalized *s,
                       tk_word_sink *sink);
/* The next piece, s's code points [start, end) (non-empty, in order). */
er_status tk_splitter_piece(tk_splitter *sp, size_t start, size_t end, bool is_match);
/* Sends the pending word, if any. */
er_status tk_splitter_end(tk_splitter *sp);
/* Pieces of s[a, b) where every code point for which is(cp) holds is a
 * match of its own (the Rust Fn(char) -> bool pattern). */
er_status tk_split_by_class(tk_splitter *sp, size_t a, size_t b, bool (*is)(uint32_t cp));
/* Pieces of s[a, b): the regular expression's matches and the gaps. */
typedef struct tk_regex tk_regex;
er_status tk_split_by_regex(tk_splitter *sp, const tk_regex *re, size_t a, size_t b, er_err *err);
/* The behaviour named by o[key] ("Removed", "Isolated", ...); absent: def. */
er_status tk_json_split_behavior(json_t *o, const char *key, bool required, tk_split_behavior def,
                                 tk_split_behavior *out, er_err *err);
/* The regular expression of a pattern object, {"String": s} (s literally,
 * escaped as the Rust library does) or {"Regex": r}; `what` names it. */
er_status tk_json_pattern(json_t *pattern, const char *what, tk_regex **out, er_err *err);

/* ---- Component interfaces ---------------------------------------------
 * Each is the first member of its implementation's struct; free releases
 * the whole object.  A loaded tokenizer never changes its components, so
 * the const methods may run on any number of threads at once. */

typedef struct tk_normalizer tk_normalizer;
struct tk_normalizer {
    /* Appends the normalization of the original code points cps[a, b) to
     * out, each with src = its original index.  ER_OK, ER_ERR_NOMEM or
     * ER_ERR_CAPACITY (from tk_normalized_reserve). */
    er_status (*normalize)(const tk_normalizer *self, const uint32_t *cps, size_t a, size_t b,
                           tk_normalized *out, er_err *err);
    void (*free)(tk_normalizer *self);
};

typedef struct tk_pre_tokenizer tk_pre_tokenizer;
struct tk_pre_tokenizer {
    /* Sends the non-empty words of s's code points [a, b) to sink, in
     * order.  Returns the first error the sink returns (stopping there),
     * an error of its own set in err, or ER_OK. */
    er_status (*split)(const tk_pre_tokenizer *self, const tk_normalized *s, size_t a, size_t b,
                       tk_word_sink *sink, er_err *err);
    void (*free)(tk_pre_tokenizer *self);
};

typedef struct tk_model tk_model;
struct tk_model {
    int32_t unk_id; /* the id of text the model cannot tokenize; -1 if none */
    /* Appends the tokens of the non-empty word s[a, b) to out (see
     * tk_token).  Strings come from t's arena; tok TK_NONE instead says
     * the token's string is its text s[cs, ce) (Unigram's unknowns), which
     * the pipeline keeps for the encoding.  ER_OK or ER_ERR_NOMEM. */
    er_status (*tokenize)(const tk_model *self, const er_tokenizer *t, const tk_normalized *s, size_t a,
                          size_t b, tk_tokens *out, er_err *err);
    void (*free)(tk_model *self);
};

typedef struct tk_post_processor tk_post_processor;
struct tk_post_processor {
    /* How many tokens it adds to one sequence (pair false) or to a pair. */
    size_t (*added_tokens)(const tk_post_processor *self, bool pair);
    /* A new encoding of the first na tokens of a and, when b is not NULL,
     * the first nb of b (truncation already done); add_special false: the
     * sequences only.  ER_OK or ER_ERR_NOMEM; *out is the caller's. */
    er_status (*process)(const tk_post_processor *self, const er_tokenizer *t, const tk_tokens *a,
                         size_t na, const tk_tokens *b, size_t nb, bool add_special, er_encoding **out,
                         er_err *err);
    void (*free)(tk_post_processor *self);
    /* In an overflowing encoding, a window past its sequence's first keeps
     * the type id the sequence was encoded with (0 for the first, 1 for the
     * pair), not the one process() gives: the Rust library's
     * TemplateProcessing merges the sequences' own overflowing windows,
     * which its type ids never reach (Roberta/BertProcessing build theirs). */
    bool overflow_keeps_type_ids;
};

/* A post-processor's own copy of the tokens it is given, for the ones that
 * change offsets before the encoding is built (a Sequence's members): a
 * and b are the copies (b.v NULL
 * when there is no pair), in one allocation, buf, freed with free(). */
typedef struct {
    tk_tokens a, b;
    tk_token *buf;
} tk_token_copy;
er_status tk_token_copy_make(const tk_tokens *a, size_t na, const tk_tokens *b, size_t nb, tk_token_copy *c,
                             er_err *err);

/* ---- Decoders: ids back to text ---------------------------------------
 * The Rust library hands a list of strings from decoder to decoder and
 * joins the last list.  Here such a list is tk_pieces: every string in one
 * buffer, piece i being bytes[end[i - 1], end[i]) (end[-1] = 0), so a
 * decoder allocates per call at most, never per token. */
typedef struct {
    char *bytes;
    size_t len, cap;
    size_t *end;
    size_t n, n_cap;
} tk_pieces;

/* Appends n bytes to the piece being written (the one after the last
 * closed).  ER_OK or ER_ERR_NOMEM. */
er_status tk_pieces_put(tk_pieces *p, const void *s, size_t n, er_err *err);
/* Ends the piece being written (it may be empty). */
er_status tk_pieces_close(tk_pieces *p, er_err *err);
/* Piece i: its bytes and length. */
static inline const char *tk_piece(const tk_pieces *p, size_t i, size_t *n) {
    size_t start = i ? p->end[i - 1] : 0;
    *n = p->end[i] - start;
    return p->bytes + start;
}
/* The bytes of the piece being written, and its length. */
static inline char *tk_pieces_open(tk_pieces *p, size_t *n) {
    size_t start = p->n ? p->end[p->n - 1] : 0;
    *n = p->len - start;
    return p->bytes + start;
}
/* Cuts the piece being written to its first n bytes. */
static inline void tk_pieces_cut_open(tk_pieces *p, size_t n) { p->len = (p->n ? p->end[p->n - 1] : 0) + n; }
static inline void tk_pieces_clear(tk_pieces *p) { p->len = p->n = 0; }
void tk_pieces_free(tk_pieces *p);
/* Appends s[0, n) to the piece being written with every non-overlapping
 * occurrence of pat, left to right, replaced by rep (Rust's str::replace;
 * an empty pat matches between every two code points and at both ends). */
er_status tk_put_replaced(tk_pieces *out, const char *s, size_t n, const char *pat, size_t pat_n, const char *rep,
                          size_t rep_n, er_err *err);
/* Rust's str::replace on s[0, *n) in place, for rep no longer than a
 * non-empty pat (the result never grows). */
void tk_replace_in_place(char *s, size_t *n, const char *pat, const char *rep);

/* Appends s[0, n) decoded as UTF-8 the way Rust's String::from_utf8_lossy
 * does: each maximal invalid sequence becomes one U+FFFD. */
er_status tk_put_utf8_lossy(tk_pieces *out, const uint8_t *s, size_t n, er_err *err);

typedef struct tk_decoder tk_decoder;
struct tk_decoder {
    /* Appends to out (empty on entry) the list of strings this decoder makes
     * of in (Rust's decode_chain).  ER_OK or ER_ERR_NOMEM. */
    er_status (*decode_chain)(const tk_decoder *self, const tk_pieces *in, tk_pieces *out, er_err *err);
    void (*free)(tk_decoder *self);
};

/* A copy of a decoder's string setting, for its struct; NULL when out of
 * memory (err set). */
char *tk_strdup(const char *s, er_err *err);

/* ---- Loaders (tokenizer.json "type" -> loader: tokenizer_components.c) - */

typedef er_status tk_normalizer_loader(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err);
typedef er_status tk_pre_tokenizer_loader(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out,
                                          er_err *err);
typedef er_status tk_model_loader(er_tokenizer *t, json_t *json, tk_model **out, er_err *err);
typedef er_status tk_post_processor_loader(er_tokenizer *t, json_t *json, tk_post_processor **out,
                                           er_err *err);
typedef er_status tk_decoder_loader(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err);

/* The loaders of each kind (tokenizer_components.c): they build the
 * component whose "type" json names, with the loader of that type in the
 * kind's table; json absent or null: no component (*out unchanged), except
 * for the model, which is required.  An unknown type is ER_ERR_UNSUPPORTED
 * with a message naming it.  A component made of others (a Sequence) loads
 * each with these. */
tk_normalizer_loader tk_normalizer_load;
tk_pre_tokenizer_loader tk_pre_tokenizer_load;
tk_model_loader tk_model_load;
tk_post_processor_loader tk_post_processor_load;
tk_decoder_loader tk_decoder_load;

/* normalizers */
tk_normalizer_loader tk_bert_normalizer_load;        /* tok_normalizer_bert.c */
tk_normalizer_loader tk_precompiled_normalizer_load; /* tok_normalizer_precompiled.c */
tk_normalizer_loader tk_nfc_load;                    /* tok_normalizer_unicode.c */
tk_normalizer_loader tk_nfd_load;                    /* tok_normalizer_unicode.c */
tk_normalizer_loader tk_nfkc_load;                   /* tok_normalizer_unicode.c */
tk_normalizer_loader tk_nfkd_load;                   /* tok_normalizer_unicode.c */
tk_normalizer_loader tk_lowercase_load;              /* tok_normalizer_lowercase.c */
tk_normalizer_loader tk_strip_load;                  /* tok_normalizer_strip.c */
tk_normalizer_loader tk_strip_accents_load;          /* tok_normalizer_stripaccents.c */
tk_normalizer_loader tk_replace_load;                /* tok_normalizer_replace.c */
tk_normalizer_loader tk_prepend_load;                /* tok_normalizer_prepend.c */
tk_normalizer_loader tk_sequence_normalizer_load;    /* tok_normalizer_sequence.c */
/* pre-tokenizers */
tk_pre_tokenizer_loader tk_bert_pre_tokenizer_load;       /* tok_pretokenizer_bert.c */
tk_pre_tokenizer_loader tk_byte_level_pre_tokenizer_load; /* tok_pretokenizer_bytelevel.c */
tk_pre_tokenizer_loader tk_whitespace_load;               /* tok_pretokenizer_whitespace.c */
tk_pre_tokenizer_loader tk_whitespace_split_load;         /* tok_pretokenizer_whitespacesplit.c */
tk_pre_tokenizer_loader tk_metaspace_pre_tokenizer_load;  /* tok_pretokenizer_metaspace.c */
tk_pre_tokenizer_loader tk_split_load;                    /* tok_pretokenizer_split.c */
tk_pre_tokenizer_loader tk_punctuation_load;              /* tok_pretokenizer_punctuation.c */
tk_pre_tokenizer_loader tk_digits_load;                   /* tok_pretokenizer_digits.c */
tk_pre_tokenizer_loader tk_sequence_pre_tokenizer_load;   /* tok_pretokenizer_sequence.c */
/* models */
tk_model_loader tk_wordpiece_load; /* tok_model_wordpiece.c */
tk_model_loader tk_bpe_load;       /* tok_model_bpe.c */
tk_model_loader tk_unigram_load;   /* tok_model_unigram.c */
/* post-processors */
tk_post_processor_loader tk_template_processing_load; /* tok_processor_template.c */
tk_post_processor_loader tk_bert_processing_load;     /* tok_processor_template.c */
tk_post_processor_loader tk_byte_level_processor_load; /* tok_processor_bytelevel.c */
tk_post_processor_loader tk_roberta_processing_load;  /* tok_processor_roberta.c */
tk_post_processor_loader tk_sequence_processing_load; /* tok_processor_sequence.c */
/* decoders */
tk_decoder_loader tk_wordpiece_decoder_load;    /* tok_decoder_wordpiece.c */
tk_decoder_loader tk_byte_level_decoder_load;   /* tok_decoder_bytelevel.c */
tk_decoder_loader tk_metaspace_decoder_load;    /* tok_decoder_metaspace.c */
tk_decoder_loader tk_bpe_decoder_load;          /* tok_decoder_bpe.c */
tk_decoder_loader tk_byte_fallback_decoder_load; /* tok_decoder_bytefallback.c */
tk_decoder_loader tk_ctc_decoder_load;          /* tok_decoder_ctc.c */
tk_decoder_loader tk_fuse_decoder_load;         /* tok_decoder_text.c */
tk_decoder_loader tk_strip_decoder_load;        /* tok_decoder_text.c */
tk_decoder_loader tk_replace_decoder_load;      /* tok_decoder_text.c */
tk_decoder_loader tk_sequence_decoder_load;     /* tok_decoder_sequence.c */

/* ---- Constructors for the legacy vocab.txt path and the defaults -------- */

er_status tk_bert_normalizer_new(bool clean_text, bool handle_chinese_chars, bool strip_accents,
                                 bool lowercase, tk_normalizer **out, er_err *err);
er_status tk_bert_pre_tokenizer_new(tk_pre_tokenizer **out, er_err *err);
/* unk_id must be in t's vocabulary. */
er_status tk_wordpiece_new(er_tokenizer *t, int32_t unk_id, const char *prefix, uint32_t max_chars_per_word,
                           tk_model **out, er_err *err);
/* BertProcessing: [CLS] A [SEP] and [CLS] A [SEP] B [SEP]. */
er_status tk_bert_processing_new(er_tokenizer *t, const char *cls, int32_t cls_id, const char *sep,
                                 int32_t sep_id, tk_post_processor **out, er_err *err);
/* The GPT-2 byte -> code point alphabet (tok_pretokenizer_bytelevel.c):
 * printable bytes are themselves, the others U+0100 on, in byte order. */
void tk_byte_level_alphabet(uint16_t byte_char[256]);
/* The Rust library's ByteLevel process_offsets on every sequence token of
 * e: leading and trailing spaces of its string leave its offsets (but one
 * leading space of a sequence's first token under add_prefix_space). */
void tk_trim_offsets(er_encoding *e, bool add_prefix_space);
/* A template built in code: single and pair spell its items, a letter and a
 * type id digit each: C the cls token, S the sep token, A and B the
 * sequences ("C0A0S0" is BertProcessing's single). */
er_status tk_spelled_template_new(er_tokenizer *t, const char *cls, int32_t cls_id, const char *sep,
                                  int32_t sep_id, const char *single, const char *pair, tk_post_processor **out,
                                  er_err *err);
/* The WordPiece decoder (the legacy vocab.txt path's). */
er_status tk_wordpiece_decoder_new(const char *prefix, bool cleanup, tk_decoder **out, er_err *err);
/* The WordPiece decoder's cleanup (" ." -> "." ...) on s[0, *n), in place;
 * the CTC decoder's too. */
void tk_wordpiece_cleanup(char *s, size_t *n);
/* What a tokenizer.json without a post_processor does: A, and A B with
 * type ids 0 and 1, nothing added. */
er_status tk_plain_processing_new(tk_post_processor **out, er_err *err);

/* ---- JSON helpers for loaders (messages start with "tokenizer.json: ") -- */

/* Optional boolean o[key]: absent or null gives def. */
er_status tk_json_bool(json_t *o, const char *key, bool def, bool *out, er_err *err);
/* Optional string o[key]: absent or null gives def; `what` names it in the message. */
er_status tk_json_string(json_t *o, const char *key, const char *def, const char *what, const char **out,
                         er_err *err);
/* A token id: an integer in [0, TK_MAX_ID). */
er_status tk_json_id(json_t *v, const char *what, int32_t *out, er_err *err);
/* model.vocab, {"token": id, ...}, into t's vocabulary (WordPiece, BPE). */
er_status tk_json_vocab(er_tokenizer *t, json_t *vocab, er_err *err);
/* A special token as Bert/RobertaProcessing write it: ["[SEP]", 102]. */
er_status tk_json_special_pair(json_t *v, const char *what, const char **s, int32_t *id, er_err *err);

/* ---- The tokenizer ------------------------------------------------------ */

typedef struct {
    uint32_t off, len;   /* content, in the arena */
    uint32_t noff, nlen; /* normalized content (normalized tokens only) */
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} tk_added;

typedef struct {
    uint32_t off, len; /* key in the arena (NUL-terminated there) */
    uint32_t hash;
    int32_t id;
} tk_entry;

struct er_tokenizer {
    char *arena;
    size_t arena_len, arena_cap;

    /* Vocabulary: hash table of entries (linear probing), filled by the model's loader. */
    tk_entry *ent;
    size_t n_ent, ent_cap;
    uint32_t *ht; /* entry index + 1, 0 = empty */
    uint32_t ht_mask;
    uint32_t max_key_len;

    size_t vocab_size;
    uint32_t *id_off; /* [vocab_size] arena offset of each id's string, TK_NONE if unused */

    tk_normalizer *normalizer;        /* NULL: the identity */
    tk_pre_tokenizer *pre_tokenizer;  /* NULL: every span is one word */
    tk_model *model;                  /* set once loaded */
    tk_post_processor *post_processor; /* set once loaded */
    tk_decoder *decoder;               /* NULL: tokens joined with spaces */

    tk_added *added;
    size_t n_added;
    bool any_raw_added, any_norm_added;
    uint8_t raw_first[32]; /* bitmap of first bytes of non-normalized added tokens */

    /* ByteLevel offset trimming (tk_trim_offsets), done by the pipeline
     * after the post-processor, once every token's string is final; a
     * post-processor that trims (ByteLevel, RobertaProcessing) sets these. */
    bool trim_offsets, trim_keeps_prefix_space;

    int32_t special_ids[5];
    size_t model_max_length;
    size_t file_trunc_len;
    er_truncation file_trunc;
};

/* tokenizer.c: the object, its arena and vocabulary */
er_tokenizer *tk_new(er_err *err);
er_status tk_arena_add(er_tokenizer *t, const char *s, size_t n, uint32_t *off, er_err *err);
er_status tk_vocab_add(er_tokenizer *t, const char *s, size_t n, int32_t id, er_err *err);
/* The id of the string pre + s in the vocabulary, -1 if absent. */
int32_t tk_vocab_find(const er_tokenizer *t, const uint8_t *pre, size_t pre_len, const uint8_t *s,
                      size_t n);
int32_t tk_added_find(const er_tokenizer *t, const char *s, size_t n);
/* Once every component is in: the id -> string table, the added tokens'
 * normalized forms, the default post-processor and the unk special id. */
er_status tk_finish(er_tokenizer *t, er_err *err);

/* tokenizer_legacy_bpe.c: a vocab.json + merges.txt directory, as the
 * tokenizer.json transformers would convert it to (NULL and err on failure). */
er_tokenizer *tk_load_legacy_bpe(const char *dir, er_err *err);

/* tokenizer_json.c */
er_status tk_parse_tokenizer_json(er_tokenizer *t, const char *json, size_t len, er_err *err);

/* tokenizer_encode.c */
/* Appends the normalization of original code points cps[a, b) to out with
 * t's normalizer (the identity if none). */
er_status tk_normalize(const er_tokenizer *t, const uint32_t *cps, size_t a, size_t b, tk_normalized *out,
                       er_err *err);
/* A zeroed encoding of n tokens in one allocation (er_encoding_free). */
er_encoding *tk_encoding_new(size_t n);

/* tokenizer_truncate.c */
/* The number of tokens each sequence keeps under p (na, nb in: their
 * lengths; out: what they keep), as the Rust library's truncate_encodings;
 * *truncated 1 if any is cut.  ER_ERR_CAPACITY / ER_ERR_INVALID_ARG as
 * er_tokenizer_encode documents. */
er_status tk_truncate_lengths(const er_tokenizer *t, const er_tokenize_params *p, size_t *na, size_t *nb,
                              bool pair, int *truncated, er_err *err);
/* Called on every encoding tk_build_windows builds (the main one and each
 * overflowing one) with the index in a and in b of the first token of its
 * windows: the pipeline gives the tokens whose string is their text (an
 * lstripped added token, a Unigram unknown) that string.  It may replace
 * *e (freeing the old one). */
typedef struct tk_window_hook tk_window_hook;
struct tk_window_hook {
    er_status (*built)(const tk_window_hook *self, er_encoding **e, const size_t start[2], er_err *err);
};
/* The encoding of a (b: NULL without a pair) cut to ka and kb tokens in
 * windows (p's direction and stride), with its overflowing windows when p
 * asks, each through t's post-processor, then hook (NULL: none).  On
 * failure *out is NULL. */
er_status tk_build_windows(const er_tokenizer *t, const er_tokenize_params *p, const tk_tokens *a, size_t ka,
                           const tk_tokens *b, size_t kb, const tk_window_hook *hook, er_encoding **out,
                           er_err *err);

/* tokenizer_added.c: added tokens */
/* A code point sequence to match added tokens in: pos[i] is the byte
 * offset of code point i in bytes (pos[n] the end); floor is where the
 * previous match ended (lstrip stops there). */
typedef struct {
    const uint8_t *bytes;
    const uint32_t *pos, *cps;
    size_t n, floor;
} tk_view;
/* The added token (leftmost-longest, Hugging Face AddedVocabulary rules)
 * matching at code point i among the normalized or the raw ones; on a match
 * [*ms, *me) is its (possibly l/r-stripped) code point range.  NULL if none. */
const tk_added *tk_added_match(const er_tokenizer *t, const tk_view *v, size_t i, bool normalized,
                               size_t *ms, size_t *me);
/* The normalized content of normalized added tokens (once, at load). */
er_status tk_added_normalize(er_tokenizer *t, er_err *err);

/* tokenizer_unicode.c */
/* Decodes one code point of valid UTF-8 at s (caller validated). Returns its length. */
size_t tk_utf8_next(const uint8_t *s, uint32_t *cp);
/* Validates UTF-8; on error returns the offending byte offset in *bad. */
bool tk_utf8_valid(const uint8_t *s, size_t n, size_t *bad, size_t *n_cp);
/* Character classes: ASCII inline (they run on every code point), the
 * rest from utf8proc in tokenizer_unicode.c. */
bool tk_is_whitespace_above_ascii(uint32_t cp);
bool tk_is_punct_above_ascii(uint32_t cp);
bool tk_is_control_above_ascii(uint32_t cp);
/* Rust char::is_whitespace (White_Space) */
static inline bool tk_is_whitespace(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return tk_is_whitespace_above_ascii(cp);
}
/* BERT: ASCII punctuation or Unicode P* (as of Unicode 8.0, like the Rust library) */
static inline bool tk_is_punct(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
               (cp >= 0x7B && cp <= 0x7E);
    return tk_is_punct_above_ascii(cp);
}
/* Rust BertNormalizer is_control: Cc, Cf, Co except \t\n\r (not Cn) */
static inline bool tk_is_control(uint32_t cp) {
    if (cp < 0x80) return (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7F;
    return tk_is_control_above_ascii(cp);
}
bool tk_is_chinese(uint32_t cp);
/* Whether cp lies in one of the n inclusive ranges {first, last} (the
 * components' small tables of Unicode data newer or older than utf8proc's). */
bool tk_in_ranges(uint32_t cp, const uint32_t (*ranges)[2], size_t n);
#define TK_IN_RANGES(cp, table) tk_in_ranges(cp, table, sizeof table / sizeof *table)
bool tk_is_word_char(uint32_t cp);  /* for single_word added tokens */
/* Applies strip_accents / lowercase to one code point; writes up to 8 code
 * points into out and returns how many. */
size_t tk_fold(uint32_t cp, bool strip, bool lower, uint32_t out[8]);

#endif
