/* Internal layout of er_tokenizer, shared by core/tokenizer*.c only. */
#ifndef ER_TOKENIZER_INTERNAL_H
#define ER_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "tokenizer.h"

#define TK_NONE UINT32_MAX
#define TK_MAX_ID (1 << 24)          /* ids must be below this */
#define TK_MAX_TOKEN_BYTES 4096      /* longest vocab / added token string */
#define TK_MAX_TEMPLATE 32           /* post-processor template items */
#define TK_MAX_FILE ((size_t)512 << 20)

typedef struct {
    uint32_t off, len;   /* content, in the arena */
    uint32_t noff, nlen; /* normalized content (normalized tokens only) */
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} tk_added;

typedef enum { TK_ITEM_SPECIAL, TK_ITEM_A, TK_ITEM_B } tk_item_kind;

typedef struct {
    tk_item_kind kind;
    uint32_t type_id;
    int32_t id;       /* TK_ITEM_SPECIAL only */
    uint32_t tok_off; /* TK_ITEM_SPECIAL only: token string in the arena */
} tk_item;

typedef struct {
    uint32_t off, len; /* key in the arena (NUL-terminated there) */
    uint32_t hash;
    int32_t id;
} tk_entry;

struct er_tokenizer {
    char *arena;
    size_t arena_len, arena_cap;

    /* WordPiece vocabulary: hash table of entries (linear probing). */
    tk_entry *ent;
    size_t n_ent, ent_cap;
    uint32_t *ht; /* entry index + 1, 0 = empty */
    uint32_t ht_mask;
    uint32_t max_key_len;

    size_t vocab_size;
    uint32_t *id_off; /* [vocab_size] arena offset of each id's string, TK_NONE if unused */

    /* WordPiece model */
    int32_t unk_id;
    uint32_t unk_off;
    uint32_t prefix_off, prefix_len;
    uint32_t max_chars_per_word;

    /* BertNormalizer (has_normalizer false: identity) */
    bool has_normalizer, clean_text, handle_chinese, strip_accents, lowercase;
    bool has_pretokenizer; /* BertPreTokenizer; false: the whole span is one word */

    tk_added *added;
    size_t n_added;
    bool any_raw_added, any_norm_added;
    uint8_t raw_first[32]; /* bitmap of first bytes of non-normalized added tokens */

    tk_item single[TK_MAX_TEMPLATE], pair[TK_MAX_TEMPLATE];
    size_t n_single, n_pair;

    int32_t special_ids[5];
    size_t model_max_length;
    size_t file_trunc_len;
    er_truncation file_trunc;
};

/* tokenizer.c */
uint32_t tk_hash(uint32_t h, const uint8_t *s, size_t n);
#define TK_HASH_INIT 2166136261u
int32_t tk_vocab_find(const er_tokenizer *t, const uint8_t *pre, size_t pre_len, const uint8_t *s,
                      size_t n);
int32_t tk_added_find(const er_tokenizer *t, const char *s, size_t n);

/* tokenizer_load.c / tokenizer_json.c helpers */
er_status tk_arena_add(er_tokenizer *t, const char *s, size_t n, uint32_t *off, er_err *err);
er_status tk_vocab_add(er_tokenizer *t, const char *s, size_t n, int32_t id, er_err *err);
er_status tk_finish(er_tokenizer *t, er_err *err);
er_tokenizer *tk_new(er_err *err);
er_status tk_load_config(er_tokenizer *t, const char *json, size_t len, bool legacy,
                         er_err *err);
er_status tk_load_vocab_txt(er_tokenizer *t, const char *buf, size_t len, er_err *err);
er_status tk_parse_tokenizer_json(er_tokenizer *t, const char *json, size_t len, er_err *err);
er_status tk_bert_template(er_tokenizer *t, const char *cls, int32_t cls_id, const char *sep,
                           int32_t sep_id, er_err *err);

/* tokenizer_encode.c */
er_status tk_prepare_added(er_tokenizer *t, er_err *err);

/* tokenizer_unicode.c */
/* Decodes one code point of valid UTF-8 at s (caller validated). Returns its length. */
size_t tk_utf8_next(const uint8_t *s, uint32_t *cp);
size_t tk_utf8_put(uint8_t *out, uint32_t cp);
/* Validates UTF-8; on error returns the offending byte offset in *bad. */
bool tk_utf8_valid(const uint8_t *s, size_t n, size_t *bad, size_t *n_cp);
bool tk_is_whitespace(uint32_t cp); /* Rust char::is_whitespace (White_Space) */
bool tk_is_punct(uint32_t cp);      /* BERT: ASCII punctuation or Unicode P* */
bool tk_is_control(uint32_t cp);    /* Rust BertNormalizer is_control: C* except \t\n\r */
bool tk_is_chinese(uint32_t cp);
bool tk_is_word_char(uint32_t cp);  /* for single_word added tokens */
/* Applies strip_accents / lowercase to one code point; writes up to 8 code
 * points into out and returns how many. */
size_t tk_fold(uint32_t cp, bool strip, bool lower, uint32_t out[8]);

#endif
