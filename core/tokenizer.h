/* erserve tokenizer: Hugging Face `tokenizers` semantics in C.
 *
 * Pipeline (as the Rust library runs it): added/special tokens are split out
 * of the raw text first; every other span goes through the normalizer
 * (BertNormalizer: clean_text, handle_chinese_chars, strip_accents,
 * lowercase), the pre-tokenizer (BertPreTokenizer: whitespace / punctuation;
 * ByteLevel: GPT-2's regular expression and byte alphabet), the model
 * (WordPiece, BPE), then truncation (direction, stride, overflowing windows)
 * and the post-processor (TemplateProcessing, BertProcessing,
 * RobertaProcessing, ByteLevel or a Sequence).
 * Decoding (er_tokenizer_decode) runs the tokenizer.json "decoder".
 *
 * Ownership and lifetimes
 *   - er_tokenizer_load() returns a tokenizer the caller owns; release it with
 *     er_tokenizer_free() (NULL accepted).
 *   - er_tokenizer_encode() returns an er_encoding the caller owns; release it
 *     with er_encoding_free() (NULL accepted), which frees its overflowing
 *     windows too.
 *   - er_tokenizer_decode() returns a string the caller frees with free().  Its `tokens` strings point into
 *     the tokenizer and stay valid only while the tokenizer lives.
 *   - Strings returned by lookups point into the tokenizer (same lifetime).
 *
 * Thread safety
 *   A loaded tokenizer is immutable: any number of threads may call encode and
 *   the lookups concurrently.  Each encode allocates its own scratch memory
 *   (a handful of allocations per call, none per token).
 *
 * Return codes (er_status, core/er_error.h)
 *   ER_ERR_IO         the file or directory cannot be read
 *   ER_ERR_FORMAT     malformed JSON / vocab, or input text that is not UTF-8
 *                     (the message names the byte offset)
 *   ER_ERR_UNSUPPORTED a well-formed tokenizer with a component not implemented
 *   ER_ERR_NOT_FOUND  a directory without tokenizer.json, vocab.json or vocab.txt
 *   ER_ERR_CAPACITY   the result does not fit max_length under the chosen
 *                     truncation, or the input exceeds ER_TOKENIZER_MAX_INPUT
 *   ER_ERR_INVALID_ARG NULL where a value is required, bad params
 *   ER_ERR_NOMEM      allocation failure
 */
#ifndef ER_TOKENIZER_H
#define ER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "er_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct er_tokenizer er_tokenizer;

/* Longest text (each of text and pair) encode accepts, in bytes. */
#define ER_TOKENIZER_MAX_INPUT ((size_t)64 << 20)

typedef enum {
    ER_TRUNCATE_NONE = 0,      /* never truncate: exceeding max_length is ER_ERR_CAPACITY */
    ER_TRUNCATE_LONGEST_FIRST, /* Hugging Face "longest_first" */
    ER_TRUNCATE_ONLY_FIRST,    /* "only_first" */
    ER_TRUNCATE_ONLY_SECOND,   /* "only_second" (a single sequence cannot be cut: ER_ERR_INVALID_ARG) */
} er_truncation;

typedef enum {
    ER_TRUNCATE_RIGHT = 0, /* keep the first tokens (Hugging Face "right", the default) */
    ER_TRUNCATE_LEFT,      /* keep the last tokens ("left") */
} er_truncation_direction;

typedef struct {
    int add_special_tokens;   /* 1: apply the post-processor template ([CLS] A [SEP] ...) */
    er_truncation truncation; /* used only when max_length > 0 */
    size_t max_length;        /* limit on the whole result, special tokens included; 0 = none.
                               * Below the number of special tokens: no truncation at all, as
                               * the Rust library does (its unsigned subtraction wraps). */
    /* Added later: set them after er_tokenize_default_params(), never
     * positionally. */
    er_truncation_direction direction; /* which end truncation keeps */
    size_t stride;          /* tokens each overflowing window repeats of the previous one; must be
                             * below the tokens kept of a sequence it cuts (else ER_ERR_INVALID_ARG) */
    int return_overflowing; /* 1: fill er_encoding.overflowing with the windows cut off (a pair's
                             * windows combine each with each, as in the Rust library: more than
                             * ER_TOKENIZER_MAX_OVERFLOWING is ER_ERR_CAPACITY) */
} er_tokenize_params;

#define ER_TOKENIZER_MAX_OVERFLOWING 65536

/* add_special_tokens = 1, truncation = LONGEST_FIRST, max_length = 0,
 * direction RIGHT, stride 0, return_overflowing 0.
 * The truncation/padding sections of a tokenizer.json are NOT applied by
 * encode (the server sizes sequences itself); the file's truncation length is
 * available from er_tokenizer_file_truncation().  Padding is never applied. */
er_tokenize_params er_tokenize_default_params(void);

/* Parses "longest_first", "only_first", "only_second", "none" (also the
 * tokenizer.json spellings "LongestFirst", ...).  Returns -1 if unknown. */
int er_truncation_parse(const char *s);
/* Parses "right" / "left" (also "Right" / "Left").  Returns -1 if unknown. */
int er_truncation_direction_parse(const char *s);

typedef struct {
    uint32_t start, end; /* half-open; special tokens from the template get (0,0) */
} er_offset;

typedef struct er_encoding {
    size_t n;                /* number of tokens */
    int32_t *ids;            /* [n] */
    int32_t *type_ids;       /* [n] token type (segment) ids */
    const char **tokens;     /* [n] token strings (point into the tokenizer) */
    er_offset *offsets;      /* [n] code point offsets into the original text */
    er_offset *byte_offsets; /* [n] byte offsets into the original text */
    uint8_t *special_mask;   /* [n] 1 for tokens added by the post-processor */
    int8_t *sequence_ids;    /* [n] 0 = text, 1 = pair, -1 = added by the post-processor */
    int truncated;           /* 1 if truncation removed any token */
    /* With return_overflowing: the other windows truncation made (each a
     * whole encoding with special tokens, no overflowing of its own), in
     * the Rust library's order; owned by this encoding. */
    struct er_encoding **overflowing;
    size_t n_overflowing;
} er_encoding;

/* path: a tokenizer.json file; or a directory holding tokenizer.json (plus an
 * optional tokenizer_config.json for model_max_length and special-token
 * names); or a directory holding vocab.json + merges.txt (legacy GPT-2 /
 * RoBERTa byte-level BPE, with tokenizer_config.json and
 * special_tokens_map.json when present); or a directory holding vocab.txt +
 * tokenizer_config.json (legacy BertTokenizer: do_lower_case,
 * strip_accents, tokenize_chinese_chars, special tokens, model_max_length).
 * A SentencePiece .model (alone in a directory, or as path) is refused with
 * ER_ERR_UNSUPPORTED, saying how to get a tokenizer.json.  Returns NULL and
 * fills err on failure. */
er_tokenizer *er_tokenizer_load(const char *path, er_err *err);

/* Same as er_tokenizer_load for tokenizer.json contents held in memory
 * (len bytes, need not be NUL-terminated).  Used by the fuzzer. */
er_tokenizer *er_tokenizer_load_json(const char *json, size_t len, er_err *err);

void er_tokenizer_free(er_tokenizer *tok);

/* Encodes text (len bytes of UTF-8, NUL bytes allowed) and, if pair != NULL,
 * the second sequence.  params NULL means er_tokenize_default_params().
 * On success *out owns a new encoding; on failure *out is NULL. */
er_status er_tokenizer_encode(const er_tokenizer *tok, const char *text, size_t len,
                              const char *pair, size_t pair_len,
                              const er_tokenize_params *params, er_encoding **out,
                              er_err *err);

void er_encoding_free(er_encoding *enc);

/* Decodes n token ids back to text, as the Rust library's decode does:
 * each id becomes its token string; with skip_special_tokens, tokens whose
 * string is a special added token's are left out; the tokenizer.json
 * "decoder" (WordPiece, ByteLevel, Metaspace, BPEDecoder, ByteFallback,
 * Fuse, Strip, Replace, CTC or a Sequence of them; legacy vocab.txt
 * tokenizers: WordPiece) turns the strings into the text, and without one
 * they are joined with single spaces.
 * On success *out is a new NUL-terminated UTF-8 string the caller frees
 * with free(), and *len (if len is not NULL) its length in bytes.  On
 * failure *out is NULL: ER_ERR_INVALID_ARG for NULL arguments or an id
 * outside the vocabulary (the message names the id and its position; the
 * Rust library drops such ids silently), ER_ERR_NOMEM.  Thread-safe like
 * encode. */
er_status er_tokenizer_decode(const er_tokenizer *tok, const int32_t *ids, size_t n, int skip_special_tokens,
                              char **out, size_t *len, er_err *err);

/* Vocabulary: ids run 0 .. vocab_size-1 (added tokens included). */
size_t er_tokenizer_vocab_size(const er_tokenizer *tok);
/* NULL if id is out of range or unused. */
const char *er_tokenizer_id_to_token(const er_tokenizer *tok, int32_t id);
/* -1 if absent.  Added tokens are looked up first, then the WordPiece vocab. */
int32_t er_tokenizer_token_to_id(const er_tokenizer *tok, const char *token, size_t len);

typedef enum { ER_SPECIAL_CLS, ER_SPECIAL_SEP, ER_SPECIAL_PAD, ER_SPECIAL_UNK, ER_SPECIAL_MASK } er_special;
/* -1 if the tokenizer has no such token. */
int32_t er_tokenizer_special_id(const er_tokenizer *tok, er_special which);

/* model_max_length from tokenizer_config.json, else the tokenizer.json
 * truncation max_length, else 0 (unknown). */
size_t er_tokenizer_model_max_length(const er_tokenizer *tok);
/* The tokenizer.json "truncation" section: max_length (0 if absent) and strategy. */
size_t er_tokenizer_file_truncation(const er_tokenizer *tok, er_truncation *strategy);
/* Number of special tokens the post-processor adds (pair = 0 or 1). */
size_t er_tokenizer_num_special_tokens(const er_tokenizer *tok, int pair);

#ifdef __cplusplus
}
#endif
#endif
