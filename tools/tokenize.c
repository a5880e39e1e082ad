/* erserve-tokenize: tokenizes stdin with a Hugging Face WordPiece tokenizer.
 *
 *   erserve-tokenize --tokenizer PATH [--pair] [--max-length N]
 *                    [--truncation longest_first|only_first|only_second|none]
 *                    [--no-special-tokens]
 *
 * stdin is either a JSON object {"text": "...", "text_pair": "..."} or raw
 * UTF-8 text (used verbatim).  With --pair, raw text is split at the first
 * newline into text and pair (one trailing newline of the pair is dropped).
 * stdout: {"ids", "type_ids", "tokens", "offsets" (code points),
 * "byte_offsets", "special_tokens_mask", "truncated"}.  Errors go to stderr
 * with a non-zero exit status (2 usage, 1 everything else). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "er_io.h"
#include "tokenizer.h"

static void usage(void) {
    fprintf(stderr,
            "usage: erserve-tokenize --tokenizer PATH [--pair] [--max-length N]\n"
            "                        [--truncation longest_first|only_first|only_second|none]\n"
            "                        [--no-special-tokens] < text-or-json\n");
}

static json_t *offsets_json(const er_offset *o, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_pack("[II]", (json_int_t)o[i].start, (json_int_t)o[i].end));
    return a;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int want_pair = 0;
    er_tokenize_params p = er_tokenize_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(a, "--pair")) want_pair = 1;
        else if (!strcmp(a, "--no-special-tokens")) p.add_special_tokens = 0;
        else if (!strcmp(a, "--max-length") && i + 1 < argc) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 0) { fprintf(stderr, "erserve-tokenize: bad --max-length\n"); return 2; }
            p.max_length = (size_t)v;
        } else if (!strcmp(a, "--truncation") && i + 1 < argc) {
            int s = er_truncation_parse(argv[++i]);
            if (s < 0) { fprintf(stderr, "erserve-tokenize: unknown truncation '%s'\n", argv[i]); return 2; }
            p.truncation = (er_truncation)s;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    if (!path) { usage(); return 2; }
    er_err err;
    er_tokenizer *tok = er_tokenizer_load(path, &err);
    if (!tok) { fprintf(stderr, "erserve-tokenize: %s\n", err.msg); return 1; }
    size_t len;
    char *in;
    /* room for the largest text the tokenizer takes, inside a JSON string */
    if (er_read_stream(stdin, "stdin", 2 * ER_TOKENIZER_MAX_INPUT, &in, &len, &err) != ER_OK) {
        fprintf(stderr, "erserve-tokenize: %s\n", err.msg);
        er_tokenizer_free(tok);
        return 1;
    }
    const char *text = in, *pair = NULL;
    size_t text_len = len, pair_len = 0;
    json_t *root = NULL;
    size_t lead = strspn(in, " \t\r\n");
    if (lead < len && in[lead] == '{') {
        json_error_t je;
        root = json_loadb(in, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
        json_t *t = json_object_get(root, "text"), *tp = json_object_get(root, "text_pair");
        if (!json_is_string(t) || (tp && !json_is_string(tp) && !json_is_null(tp))) {
            json_decref(root); /* not our JSON object: treat as raw text */
            root = NULL;
        } else {
            text = json_string_value(t);
            text_len = json_string_length(t);
            if (json_is_string(tp)) {
                pair = json_string_value(tp);
                pair_len = json_string_length(tp);
            }
        }
    }
    if (!root && want_pair) {
        const char *nl = memchr(in, '\n', len);
        if (!nl) { fprintf(stderr, "erserve-tokenize: --pair needs two lines\n"); free(in); er_tokenizer_free(tok); return 1; }
        text_len = (size_t)(nl - in);
        pair = nl + 1;
        pair_len = len - text_len - 1;
        if (pair_len && pair[pair_len - 1] == '\n') pair_len--;
    }
    er_encoding *e = NULL;
    er_status st = er_tokenizer_encode(tok, text, text_len, pair, pair_len, &p, &e, &err);
    int rc = 0;
    if (st) {
        fprintf(stderr, "erserve-tokenize: %s: %s\n", er_strerror(st), err.msg);
        rc = 1;
    } else {
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
        if (!o || json_dumpf(o, stdout, JSON_COMPACT) != 0 || fputc('\n', stdout) == EOF) rc = 1;
        json_decref(o);
    }
    er_encoding_free(e);
    json_decref(root);
    free(in);
    er_tokenizer_free(tok);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
