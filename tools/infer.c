/* erserve-infer: run the engine on token ids from the command line.
 *
 *   erserve-infer --model DIR (--layer K | --head) < request.json > response.json
 *
 * Request:  {"input_ids": [[...], ...], "token_type_ids": [[...], ...]?,
 *            "attention_mask": [[1,..,1,0,..,0], ...]?}   (right padding only)
 * Response: --layer K: {"hidden_states": [seq][real token][hidden]} (K = 0 is
 *           the embeddings output, K = L the last layer);
 *           --head: {"head": TYPE, "logits": ...} shaped by the head type.
 * Errors: a message on stderr and exit status 1 (usage 2). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "er_io.h"

#define MAX_REQUEST_BYTES (64u << 20)

static void usage(FILE *f) {
    fprintf(f, "usage: erserve-infer --model DIR (--layer K | --head)\n"
               "  reads {\"input_ids\": [[...]], \"token_type_ids\"?: [[...]], "
               "\"attention_mask\"?: [[...]]} on stdin,\n"
               "  writes hidden states of layer K (0 = embeddings) or the head's logits.\n");
}

static int fail(const char *fmt, const char *detail) {
    fprintf(stderr, "erserve-infer: ");
    fprintf(stderr, fmt, detail);
    fputc('\n', stderr);
    return 1;
}

/* Reads row s of an optional [n][len] integer matrix; returns 0 on a type error. */
static int get_row(const json_t *m, size_t s, size_t len, int32_t *dst) {
    const json_t *row = json_array_get(m, s);
    if (!json_is_array(row) || json_array_size(row) != len) return 0;
    for (size_t i = 0; i < len; i++) {
        const json_t *v = json_array_get(row, i);
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
            json_integer_value(v) > INT32_MAX)
            return 0;
        dst[i] = (int32_t)json_integer_value(v);
    }
    return 1;
}

static json_t *float_rows(const float *v, size_t rows, size_t width) {
    json_t *a = json_array();
    for (size_t r = 0; r < rows; r++) {
        json_t *row = json_array();
        for (size_t j = 0; j < width; j++) json_array_append_new(row, json_real(v[r * width + j]));
        json_array_append_new(a, row);
    }
    return a;
}

/* Per-token values [T, width] regrouped by sequence: [seq][token][width]
 * (or [seq][token] when column >= 0 picks one column). */
static json_t *per_sequence(const float *v, const er_batch *b, size_t width, int column) {
    json_t *out = json_array();
    size_t off = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        size_t n = (size_t)b->seq_len[s];
        if (column >= 0) {
            json_t *row = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(row, json_real(v[(off + i) * width + (size_t)column]));
            json_array_append_new(out, row);
        } else {
            json_array_append_new(out, float_rows(v + off * width, n, width));
        }
        off += n;
    }
    return out;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    int layer = -1, head = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--layer") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            long k = strtol(argv[++i], &end, 10);
            if (*end || errno || k < 0 || k > 100000) { usage(stderr); return 2; }
            layer = (int)k;
        } else if (strcmp(argv[i], "--head") == 0) head = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else { usage(stderr); return 2; }
    }
    if (!dir || (layer < 0) == !head) { usage(stderr); return 2; }

    size_t len = 0;
    char *text;
    er_err rerr;
    if (er_read_stream(stdin, "stdin", MAX_REQUEST_BYTES, &text, &len, &rerr) != ER_OK)
        return fail("%s", rerr.msg);
    json_error_t jerr;
    json_t *req = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!req) return fail("invalid JSON request: %s", jerr.text);
    const json_t *ids = json_object_get(req, "input_ids");
    const json_t *types = json_object_get(req, "token_type_ids");
    const json_t *mask = json_object_get(req, "attention_mask");
    size_t n_seqs = json_array_size(ids);
    if (!json_is_array(ids) || n_seqs == 0 || n_seqs > 100000 ||
        (types && !json_is_array(types)) || (mask && !json_is_array(mask)))
        return json_decref(req), fail("%s", "'input_ids' must be a non-empty array of arrays "
                                      "(token_type_ids, attention_mask likewise)");
    size_t total = 0;
    for (size_t s = 0; s < n_seqs; s++) total += json_array_size(json_array_get(ids, s));
    int32_t *pid = calloc(total + 1, sizeof *pid), *ptype = calloc(total + 1, sizeof *ptype);
    int32_t *pmask = calloc(total + 1, sizeof *pmask);
    int *lens = calloc(n_seqs, sizeof *lens);
    const char *bad = NULL;
    size_t off = 0;
    for (size_t s = 0; s < n_seqs && !bad; s++) {
        size_t n = json_array_size(json_array_get(ids, s));
        if (!get_row(ids, s, n, pid + off)) bad = "input_ids rows must be arrays of integers";
        else if (types && !get_row(types, s, n, ptype + off))
            bad = "token_type_ids must have the shape of input_ids";
        size_t real = n;
        if (!bad && mask) {
            if (!get_row(mask, s, n, pmask + off)) bad = "attention_mask must have the shape of "
                                                         "input_ids";
            for (size_t i = 0; !bad && i < n; i++) {
                if (pmask[off + i] != 0 && pmask[off + i] != 1) bad = "attention_mask holds 0/1";
                else if (pmask[off + i] == 0 && real == n) real = i;
                else if (pmask[off + i] == 1 && real != n)
                    bad = "attention_mask must be ones then zeros (right padding)";
            }
        }
        /* Packed batch: the next row is parsed over this row's padding, so
         * the real tokens of the sequences lie back to back. */
        lens[s] = (int)real;
        off += real;
    }
    json_decref(req);
    int rc = 0;
    er_err err = {0};
    er_model *m = NULL;
    er_ctx *ctx = NULL;
    float *hidden = NULL, *out = NULL;
    if (bad) { rc = fail("%s", bad); goto done; }
    if (er_model_load(dir, NULL, &m, &err) != ER_OK) { rc = fail("%s", err.msg); goto done; }
    const er_config *c = er_model_config(m);
    if (layer > c->num_layers) {
        char msg[96];
        snprintf(msg, sizeof msg, "--layer %d: the model has %d layers", layer, c->num_layers);
        rc = fail("%s", msg);
        goto done;
    }
    int max_len = 1;
    for (size_t s = 0; s < n_seqs; s++) max_len = lens[s] > max_len ? lens[s] : max_len;
    er_ctx_params cp = {.max_tokens = off ? (int)off : 1, .max_seqs = (int)n_seqs,
                        .max_seq_len = max_len};
    if (er_ctx_init(m, &cp, &ctx, &err) != ER_OK) { rc = fail("%s", err.msg); goto done; }
    er_batch b = {.n_seqs = (int)n_seqs, .seq_len = lens, .ids = pid,
                  .type_ids = types ? ptype : NULL};
    hidden = malloc((off + 1) * (size_t)c->hidden_size * sizeof *hidden);
    if (!hidden) { rc = fail("%s", "out of memory"); goto done; }
    int to = head ? c->num_layers : layer;
    if (er_embed(m, ctx, &b, hidden, &err) != ER_OK ||
        er_layers(m, ctx, &b, 0, to, hidden, &err) != ER_OK) {
        rc = fail("%s", err.msg);
        goto done;
    }
    json_t *res = json_object();
    if (!head) {
        json_object_set_new(res, "hidden_states", per_sequence(hidden, &b, (size_t)c->hidden_size, -1));
    } else {
        out = malloc((er_head_out_size(m, &b) + 1) * sizeof *out);
        if (!out || er_head(m, ctx, &b, hidden, out, &err) != ER_OK) {
            json_decref(res);
            rc = fail("%s", out ? err.msg : "out of memory");
            goto done;
        }
        size_t w = (size_t)er_model_head_width(m);
        json_object_set_new(res, "head", json_string(er_head_type_name(c->head)));
        switch (c->head) {
        case ER_HEAD_SEQUENCE_CLASSIFICATION:
            json_object_set_new(res, "logits", float_rows(out, n_seqs, w));
            break;
        case ER_HEAD_TOKEN_CLASSIFICATION:
            json_object_set_new(res, "logits", per_sequence(out, &b, w, -1));
            break;
        case ER_HEAD_QUESTION_ANSWERING: {
            json_t *l = json_object();
            json_object_set_new(l, "start_logits", per_sequence(out, &b, 2, 0));
            json_object_set_new(l, "end_logits", per_sequence(out, &b, 2, 1));
            json_object_set_new(res, "logits", l);
            break;
        }
        case ER_HEAD_EMBEDDING: {
            json_t *l = json_object();
            json_object_set_new(l, "embeddings", float_rows(out, n_seqs, w));
            json_object_set_new(res, "logits", l);
            break;
        }
        }
    }
    if (json_dumpf(res, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9)) != 0) rc = 1;
    fputc('\n', stdout);
    json_decref(res);
done:
    free(out);
    free(hidden);
    er_ctx_free(ctx);
    er_model_free(m);
    free(pid); free(ptype); free(pmask); free(lens);
    return rc;
}
