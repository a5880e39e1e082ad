/* erserve-tokenize: tokenizes stdin with a Hugging Face tokenizer, or
 * decodes ids back to text.
 *
 *   erserve-tokenize --tokenizer PATH [--pair] [--max-length N]
 *                    [--truncation longest_first|only_first|only_second|none]
 *                    [--direction right|left] [--stride N] [--overflowing]
 *                    [--no-special-tokens]
 *   erserve-tokenize --tokenizer PATH --decode [--keep-special-tokens]
 *
 * --decode: stdin is JSON, ids [101, 7592, 102] or a batch [[...], ...], or
 * {"ids": either, "skip_special_tokens": bool}; stdout is the text and a
 * newline for one list, a JSON array of strings for a batch.  Special tokens
 * are skipped unless --keep-special-tokens (or skip_special_tokens false).
 *
 * stdin is either a JSON object {"text": "...", "text_pair": "..."} or raw
 * UTF-8 text (used verbatim).  With --pair, raw text is split at the first
 * newline into text and pair (one trailing newline of the pair is dropped).
 * stdout: {"ids", "type_ids", "tokens", "offsets" (code points),
 * "byte_offsets", "special_tokens_mask", "truncated"}, and with --overflowing
 * "overflowing": the windows truncation cut off, each such an object.  Errors go to stderr
 * with a non-zero exit status (2 usage, 1 everything else). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "er_io.h"
#include "er_log.h"
#include "er_util.h"
#include "tokenizer.h"

static void usage(void) {
    fprintf(stderr,
            "usage: erserve-tokenize --tokenizer PATH [--pair] [--max-length N]\n"
            "                        [--truncation longest_first|only_first|only_second|none]\n"
            "                        [--direction right|left] [--stride N] [--overflowing]\n"
            "                        [--no-special-tokens] [--version] < text-or-json\n"
            "       erserve-tokenize --tokenizer PATH --decode [--keep-special-tokens] < ids-json\n");
}

typedef struct {
    const char *path;
    int want_pair;
    er_tokenize_params p;
    int decode, skip_special;
} opts;

/* -1: go on; otherwise the exit status (0 after --help / --version). */
static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.p = er_tokenize_default_params(), .skip_special = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer") && i + 1 < argc) o->path = argv[++i];
        else if (!strcmp(a, "--pair")) o->want_pair = 1;
        else if (!strcmp(a, "--no-special-tokens")) o->p.add_special_tokens = 0;
        else if (!strcmp(a, "--decode")) o->decode = 1;
        else if (!strcmp(a, "--keep-special-tokens")) o->skip_special = 0;
        else if (!strcmp(a, "--max-length") && i + 1 < argc) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 0) return er_log(ER_LOG_ERROR, "bad --max-length"), 2;
            o->p.max_length = (size_t)v;
        } else if (!strcmp(a, "--stride") && i + 1 < argc) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 0) return er_log(ER_LOG_ERROR, "bad --stride"), 2;
            o->p.stride = (size_t)v;
        } else if (!strcmp(a, "--direction") && i + 1 < argc) {
            int d = er_truncation_direction_parse(argv[++i]);
            if (d < 0) return er_log(ER_LOG_ERROR, "unknown direction '%s'", argv[i]), 2;
            o->p.direction = (er_truncation_direction)d;
        } else if (!strcmp(a, "--overflowing")) {
            o->p.return_overflowing = 1;
        } else if (!strcmp(a, "--truncation") && i + 1 < argc) {
            int t = er_truncation_parse(argv[++i]);
            if (t < 0) return er_log(ER_LOG_ERROR, "unknown truncation '%s'", argv[i]), 2;
            o->p.truncation = (er_truncation)t;
        } else if (!strcmp(a, "--version")) {
            printf("erserve-tokenize %s\n", ER_VERSION);
            return 0;
        } else {
            usage();
            return !strcmp(a, "-h") || !strcmp(a, "--help") ? 0 : 2;
        }
    }
    if (!o->path) return usage(), 2;
    return -1;
}

typedef struct {
    const char *text, *pair; /* into the input or the JSON document */
    size_t text_len, pair_len;
    json_t *root;            /* the JSON document, or NULL for raw text */
} input;

/* Splits stdin's bytes into text and pair: a JSON object {"text",
 * "text_pair"?}, or raw text (with want_pair: two lines).  -1 when --pair
 * has one line only (logged). */
static int split_input(const char *in, size_t len, int want_pair, input *x) {
    *x = (input){.text = in, .text_len = len};
    size_t lead = strspn(in, " \t\r\n");
    if (lead < len && in[lead] == '{') {
        json_error_t je;
        json_t *root = json_loadb(in, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
        json_t *t = json_object_get(root, "text"), *tp = json_object_get(root, "text_pair");
        if (!json_is_string(t) || (tp && !json_is_string(tp) && !json_is_null(tp))) {
            json_decref(root); /* not our JSON object: treat as raw text */
        } else {
            x->root = root;
            x->text = json_string_value(t);
            x->text_len = json_string_length(t);
            if (json_is_string(tp)) {
                x->pair = json_string_value(tp);
                x->pair_len = json_string_length(tp);
            }
            return 0;
        }
    }
    if (!want_pair) return 0;
    const char *nl = memchr(in, '\n', len);
    if (!nl) return er_log(ER_LOG_ERROR, "--pair needs two lines"), -1;
    x->text_len = (size_t)(nl - in);
    x->pair = nl + 1;
    x->pair_len = len - x->text_len - 1;
    if (x->pair_len && x->pair[x->pair_len - 1] == '\n') x->pair_len--;
    return 0;
}

static json_t *offsets_json(const er_offset *o, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_pack("[II]", (json_int_t)o[i].start, (json_int_t)o[i].end));
    return a;
}

/* The JSON object of e, its overflowing windows included. */
static json_t *encoding_json(const er_encoding *e) {
    json_t *ids = json_array(), *ty = json_array(), *toks = json_array(), *mask = json_array();
    for (size_t i = 0; i < e->n; i++) {
        json_array_append_new(ids, json_integer(e->ids[i]));
        json_array_append_new(ty, json_integer(e->type_ids[i]));
        json_array_append_new(toks, json_string(e->tokens[i]));
        json_array_append_new(mask, json_integer(e->special_mask[i]));
    }
    json_t *o = json_pack("{so so so so so so sb}", "ids", ids, "type_ids", ty, "tokens", toks,
                          "offsets", offsets_json(e->offsets, e->n), "byte_offsets",
                          offsets_json(e->byte_offsets, e->n), "special_tokens_mask", mask,
                          "truncated", e->truncated);
    if (o && e->n_overflowing) {
        json_t *over = json_array();
        for (size_t k = 0; k < e->n_overflowing; k++) json_array_append_new(over, encoding_json(e->overflowing[k]));
        json_object_set_new(o, "overflowing", over);
    }
    return o;
}

/* One JSON line on stdout; -1 when it cannot be written. */
static int print_encoding(const er_encoding *e) {
    json_t *o = encoding_json(e);
    int rc = !o || json_dumpf(o, stdout, JSON_COMPACT) != 0 || fputc('\n', stdout) == EOF ? -1 : 0;
    json_decref(o);
    return rc;
}

/* Tokenizes stdin with tok and prints the encoding: the exit status. */
static int tokenize_stdin(const er_tokenizer *tok, const opts *o) {
    size_t len;
    char *in;
    er_err err;
    /* room for the largest text the tokenizer takes, inside a JSON string */
    if (er_read_stream(stdin, "stdin", 2 * ER_TOKENIZER_MAX_INPUT, &in, &len, &err) != ER_OK) {
        er_log(ER_LOG_ERROR, "%s", err.msg);
        return 1;
    }
    input x;
    int rc = 1;
    er_encoding *e = NULL;
    if (split_input(in, len, o->want_pair, &x) == 0) {
        er_status st = er_tokenizer_encode(tok, x.text, x.text_len, x.pair, x.pair_len, &o->p, &e, &err);
        if (st) er_log(ER_LOG_ERROR, "%s: %s", er_strerror(st), err.msg);
        else rc = print_encoding(e) ? 1 : 0;
    }
    er_encoding_free(e);
    json_decref(x.root);
    free(in);
    return rc;
}

/* ---- --decode ---- */

/* One JSON array of ids decoded into a new JSON string; NULL (logged) on error. */
static json_t *decode_list(const er_tokenizer *tok, json_t *list, int skip_special) {
    size_t n = json_array_size(list);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return er_log(ER_LOG_ERROR, "out of memory"), NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(list, i);
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX) {
            free(ids);
            return er_log(ER_LOG_ERROR, "ids[%zu] is not a 32-bit integer", i), NULL;
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    char *text;
    size_t len;
    er_err err;
    er_status st = er_tokenizer_decode(tok, ids, n, skip_special, &text, &len, &err);
    free(ids);
    if (st) return er_log(ER_LOG_ERROR, "%s: %s", er_strerror(st), err.msg), NULL;
    json_t *s = json_stringn(text, len);
    free(text);
    if (!s) er_log(ER_LOG_ERROR, "the decoded text is not UTF-8 or out of memory");
    return s;
}

/* Every list of a batch [[...], ...] decoded: a JSON array of strings. */
static json_t *decode_batch(const er_tokenizer *tok, json_t *lists, int skip_special) {
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(lists) && out; i++) {
        json_t *s = decode_list(tok, json_array_get(lists, i), skip_special);
        if (!s || json_array_append_new(out, s)) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* Decodes the ids JSON on stdin and prints the text: the exit status. */
static int decode_stdin(const er_tokenizer *tok, const opts *o) {
    size_t len;
    char *in;
    er_err err;
    if (er_read_stream(stdin, "stdin", ER_TOKENIZER_MAX_INPUT, &in, &len, &err) != ER_OK)
        return er_log(ER_LOG_ERROR, "%s", err.msg), 1;
    json_error_t je;
    json_t *root = json_loadb(in, len, JSON_REJECT_DUPLICATES, &je), *ids = root;
    free(in);
    int skip = o->skip_special;
    if (json_is_object(root)) {
        json_t *sk = json_object_get(root, "skip_special_tokens");
        ids = json_object_get(root, "ids");
        if (json_is_boolean(sk)) skip = json_is_true(sk);
    }
    int rc = 1;
    if (!json_is_array(ids)) {
        er_log(ER_LOG_ERROR, "stdin must be JSON ids: [1, 2], [[1, 2], ...] or {\"ids\": ...}");
    } else if (json_is_array(json_array_get(ids, 0))) {
        json_t *texts = decode_batch(tok, ids, skip);
        rc = !texts || json_dumpf(texts, stdout, JSON_COMPACT) || fputc('\n', stdout) == EOF;
        json_decref(texts);
    } else {
        json_t *text = decode_list(tok, ids, skip);
        size_t n = json_string_length(text);
        rc = !text || fwrite(json_string_value(text), 1, n, stdout) != n || fputc('\n', stdout) == EOF;
        json_decref(text);
    }
    json_decref(root);
    return rc;
}

int main(int argc, char **argv) {
    er_log_setup("erserve-tokenize", ER_LOG_INFO);
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    er_err err;
    er_tokenizer *tok = er_tokenizer_load(o.path, &err);
    if (!tok) return er_log(ER_LOG_ERROR, "%s", err.msg), 1;
    rc = o.decode ? decode_stdin(tok, &o) : tokenize_stdin(tok, &o);
    er_tokenizer_free(tok);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
