/* The components a tokenizer.json may name, one table per kind: the "type"
 * string and the loader that builds that type.  A new component is one row
 * here (see the top of tokenizer_internal.h for the rest of the contract).
 * Below the tables, the loader of each kind: it looks the type up. */
#include <string.h>

#include "tokenizer_internal.h"

#define ROW(loader_type)   \
    struct {               \
        const char *type;  \
        loader_type *load; \
    }

static const ROW(tk_normalizer_loader) NORMALIZERS[] = {
    {"BertNormalizer", tk_bert_normalizer_load},
    {"Precompiled", tk_precompiled_normalizer_load},
    {"NFC", tk_nfc_load},
    {"NFD", tk_nfd_load},
    {"NFKC", tk_nfkc_load},
    {"NFKD", tk_nfkd_load},
    {"Lowercase", tk_lowercase_load},
    {"Strip", tk_strip_load},
    {"StripAccents", tk_strip_accents_load},
    {"Replace", tk_replace_load},
    {"Prepend", tk_prepend_load},
    {"Sequence", tk_sequence_normalizer_load},
};

static const ROW(tk_pre_tokenizer_loader) PRE_TOKENIZERS[] = {
    {"BertPreTokenizer", tk_bert_pre_tokenizer_load},
    {"ByteLevel", tk_byte_level_pre_tokenizer_load},
    {"WhitespaceSplit", tk_whitespace_split_load},
    {"Metaspace", tk_metaspace_pre_tokenizer_load},
    {"Whitespace", tk_whitespace_load},
    {"Split", tk_split_load},
    {"Punctuation", tk_punctuation_load},
    {"Digits", tk_digits_load},
    {"Sequence", tk_sequence_pre_tokenizer_load},
};

static const ROW(tk_model_loader) MODELS[] = {
    {"WordPiece", tk_wordpiece_load},
    {"BPE", tk_bpe_load},
    {"Unigram", tk_unigram_load},
};

static const ROW(tk_post_processor_loader) POST_PROCESSORS[] = {
    {"TemplateProcessing", tk_template_processing_load},
    {"BertProcessing", tk_bert_processing_load},
    {"ByteLevel", tk_byte_level_processor_load},
    {"RobertaProcessing", tk_roberta_processing_load},
    {"Sequence", tk_sequence_processing_load},
};

static const ROW(tk_decoder_loader) DECODERS[] = {
    {"WordPiece", tk_wordpiece_decoder_load},   {"ByteLevel", tk_byte_level_decoder_load},
    {"Metaspace", tk_metaspace_decoder_load},   {"BPEDecoder", tk_bpe_decoder_load},
    {"ByteFallback", tk_byte_fallback_decoder_load}, {"CTC", tk_ctc_decoder_load},
    {"Fuse", tk_fuse_decoder_load},             {"Strip", tk_strip_decoder_load},
    {"Replace", tk_replace_decoder_load},       {"Sequence", tk_sequence_decoder_load},
};

#define FMT(...) er_set(err, ER_ERR_FORMAT, "tokenizer.json: " __VA_ARGS__)

/* The "type" of an optional component object; *type NULL if it is absent. */
static er_status component_type(json_t *json, const char *what, const char **type, er_err *err) {
    *type = NULL;
    if (!json || json_is_null(json)) return ER_OK;
    json_t *ty = json_object_get(json, "type");
    if (!json_is_object(json) || !json_is_string(ty)) return FMT("%s must have a type", what);
    *type = json_string_value(ty);
    return ER_OK;
}

/* Row i of `table` whose type is `type`; i == COUNT(table) if none. */
#define COUNT(table) (sizeof table / sizeof *table)
#define FIND_ROW(table, type, i) \
    for (i = 0; i < COUNT(table) && strcmp(table[i].type, type) != 0; i++) continue

/* The body of the loaders of the optional kinds: `json` names its type. */
#define LOAD_BY_TYPE(table, what)                                                                   \
    const char *type;                                                                               \
    size_t i;                                                                                       \
    er_status st = component_type(json, what, &type, err);                                          \
    if (st || !type) return st;                                                                     \
    FIND_ROW(table, type, i);                                                                       \
    if (i < COUNT(table)) return table[i].load(t, json, out, err);                                  \
    return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: %s \"%s\" not supported", what, type)

er_status tk_normalizer_load(er_tokenizer *t, json_t *json, tk_normalizer **out, er_err *err) {
    LOAD_BY_TYPE(NORMALIZERS, "normalizer");
}

er_status tk_pre_tokenizer_load(er_tokenizer *t, json_t *json, tk_pre_tokenizer **out, er_err *err) {
    LOAD_BY_TYPE(PRE_TOKENIZERS, "pre_tokenizer");
}

er_status tk_post_processor_load(er_tokenizer *t, json_t *json, tk_post_processor **out, er_err *err) {
    LOAD_BY_TYPE(POST_PROCESSORS, "post_processor");
}

er_status tk_decoder_load(er_tokenizer *t, json_t *json, tk_decoder **out, er_err *err) {
    LOAD_BY_TYPE(DECODERS, "decoder");
}

/* The type of a model object without "type" (older serializations, e.g.
 * roberta-base's): "merges" means BPE, a vocab of [piece, score] pairs
 * Unigram, anything else WordPiece (the Rust library tries the models'
 * layouts in turn; these are the keys that tell them apart). */
static const char *inferred_model_type(json_t *json) {
    if (json_object_get(json, "merges")) return "BPE";
    if (json_is_array(json_object_get(json, "vocab"))) return "Unigram";
    return "WordPiece";
}

/* The model is required, and its "type" optional. */
er_status tk_model_load(er_tokenizer *t, json_t *json, tk_model **out, er_err *err) {
    if (!json_is_object(json)) return FMT("\"model\" must be an object");
    const char *type = inferred_model_type(json);
    json_t *ty = json_object_get(json, "type");
    if (ty && !json_is_null(ty)) {
        if (!json_is_string(ty)) return FMT("model.type must be a string");
        type = json_string_value(ty);
    }
    size_t i;
    FIND_ROW(MODELS, type, i);
    if (i < COUNT(MODELS)) return MODELS[i].load(t, json, out, err);
    return er_set(err, ER_ERR_UNSUPPORTED, "tokenizer.json: model \"%s\" not supported", type);
}
