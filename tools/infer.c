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
#include "er_log.h"
#include "er_util.h"
#include "gemm.h"

#define MAX_REQUEST_BYTES (64u << 20)

static void usage(FILE *f) {
    fprintf(f, "usage: erserve-infer --model DIR (--layer K | --head) [--compute fp32|bf16|int8] "
               "[--gemm auto|own|avx2|openblas|onednn] [--version]\n"
               "  reads {\"input_ids\": [[...]], \"token_type_ids\"?: [[...]], "
               "\"attention_mask\"?: [[...]]} on stdin,\n"
               "  writes hidden states of layer K (0 = embeddings) or the head's logits.\n");
}

static int fail(const char *msg) {
    er_log(ER_LOG_ERROR, "%s", msg);
    return 1;
}

typedef struct {
    const char *dir;
    int layer; /* -1 with --head */
    int head;
    er_compute compute; /* --compute, else ERSERVE_COMPUTE, else fp32 */
    const char *gemm;   /* --gemm (er_gemm_select), else NULL: ERSERVE_GEMM, else auto */
} opts;

/* -1: go on; otherwise the exit status (0 after --help / --version). */
static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.layer = -1};
    const char *env = getenv("ERSERVE_COMPUTE");
    if (env && *env && !er_compute_parse(env, &o->compute)) return usage(stderr), 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) o->dir = argv[++i];
        else if (strcmp(argv[i], "--compute") == 0 && i + 1 < argc) {
            if (!er_compute_parse(argv[++i], &o->compute)) return usage(stderr), 2;
        } else if (strcmp(argv[i], "--layer") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            long k = strtol(argv[++i], &end, 10);
            if (*end || errno || k < 0 || k > 100000) return usage(stderr), 2;
            o->layer = (int)k;
        } else if (strcmp(argv[i], "--gemm") == 0 && i + 1 < argc) o->gemm = argv[++i];
        else if (strcmp(argv[i], "--head") == 0) o->head = 1;
        else if (strcmp(argv[i], "--version") == 0) {
            printf("erserve-infer %s\n", ER_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else return usage(stderr), 2;
    }
    if (!o->dir || (o->layer < 0) == !o->head) return usage(stderr), 2;
    return -1;
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

/* The request as a packed batch: the real tokens of every sequence back to
 * back (padding dropped), lens[s] real tokens each. */
typedef struct {
    int32_t *ids, *types, *mask;
    int *lens;
    size_t n_seqs, n_tokens;
    int has_types;
} request;

static void request_free(request *r) {
    free(r->ids); free(r->types); free(r->mask); free(r->lens);
}

/* Packs row s of ids (and types, mask) at r->n_tokens; NULL or what is wrong. */
static const char *pack_row(request *r, const json_t *ids, const json_t *types,
                            const json_t *mask, size_t s) {
    size_t n = json_array_size(json_array_get(ids, s)), off = r->n_tokens, real = n;
    if (!get_row(ids, s, n, r->ids + off)) return "input_ids rows must be arrays of integers";
    if (types && !get_row(types, s, n, r->types + off))
        return "token_type_ids must have the shape of input_ids";
    if (mask && !get_row(mask, s, n, r->mask + off))
        return "attention_mask must have the shape of input_ids";
    for (size_t i = 0; mask && i < n; i++) {
        if (r->mask[off + i] != 0 && r->mask[off + i] != 1) return "attention_mask holds 0/1";
        else if (r->mask[off + i] == 0 && real == n) real = i;
        else if (r->mask[off + i] == 1 && real != n)
            return "attention_mask must be ones then zeros (right padding)";
    }
    /* The next row is parsed over this row's padding, so the real tokens of
     * the sequences lie back to back. */
    r->lens[s] = (int)real;
    r->n_tokens += real;
    return NULL;
}

/* Reads and packs the JSON request on stdin.  NULL, or what is wrong (the
 * message is static or in msg). */
static const char *read_request(request *r, char *msg, size_t cap) {
    size_t len = 0;
    char *text;
    er_err rerr;
    if (er_read_stream(stdin, "stdin", MAX_REQUEST_BYTES, &text, &len, &rerr) != ER_OK)
        return snprintf(msg, cap, "%s", rerr.msg), msg;
    json_error_t jerr;
    json_t *req = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!req) return snprintf(msg, cap, "invalid JSON request: %s", jerr.text), msg;
    const json_t *ids = json_object_get(req, "input_ids");
    const json_t *types = json_object_get(req, "token_type_ids");
    const json_t *mask = json_object_get(req, "attention_mask");
    size_t n_seqs = json_array_size(ids);
    const char *bad = NULL;
    if (!json_is_array(ids) || n_seqs == 0 || n_seqs > 100000 ||
        (types && !json_is_array(types)) || (mask && !json_is_array(mask))) {
        json_decref(req);
        return "'input_ids' must be a non-empty array of arrays "
               "(token_type_ids, attention_mask likewise)";
    }
    size_t total = 0;
    for (size_t s = 0; s < n_seqs; s++) total += json_array_size(json_array_get(ids, s));
    r->ids = calloc(total + 1, sizeof *r->ids);
    r->types = calloc(total + 1, sizeof *r->types);
    r->mask = calloc(total + 1, sizeof *r->mask);
    r->lens = calloc(n_seqs, sizeof *r->lens);
    r->n_seqs = n_seqs;
    r->has_types = types != NULL;
    for (size_t s = 0; s < n_seqs && !bad; s++) bad = pack_row(r, ids, types, mask, s);
    json_decref(req);
    return bad;
}

/* The head's output shaped by its type: {"head": TYPE, "logits": ...}. */
static json_t *head_json(const er_model *m, const er_batch *b, const float *out) {
    const er_config *c = er_model_config(m);
    size_t w = (size_t)er_model_head_width(m), n_seqs = (size_t)b->n_seqs;
    json_t *res = json_object(), *l = NULL;
    json_object_set_new(res, "head", json_string(er_head_type_name(c->head)));
    switch (c->head) {
    case ER_HEAD_SEQUENCE_CLASSIFICATION:
        l = float_rows(out, n_seqs, w);
        break;
    case ER_HEAD_TOKEN_CLASSIFICATION:
        l = per_sequence(out, b, w, -1);
        break;
    case ER_HEAD_QUESTION_ANSWERING:
        l = json_object();
        json_object_set_new(l, "start_logits", per_sequence(out, b, 2, 0));
        json_object_set_new(l, "end_logits", per_sequence(out, b, 2, 1));
        break;
    case ER_HEAD_TOKEN_EMBEDDING: /* not loaded by this tool; per token, as token classification */
        l = per_sequence(out, b, w, -1);
        break;
    case ER_HEAD_EMBEDDING:
    case ER_HEAD_SPARSE_EMBEDDING: /* dense rows of vocab_size SPLADE weights */
        l = json_object();
        json_object_set_new(l, "embeddings", float_rows(out, n_seqs, w));
        break;
    }
    json_object_set_new(res, "logits", l);
    return res;
}

/* Runs the model on r up to layer `to` (and the head with o->head); *res the
 * response.  NULL, or what went wrong (in err or static). */
static const char *compute(const opts *o, const er_model *m, const request *r, json_t **res,
                           er_err *err) {
    const er_config *c = er_model_config(m);
    int max_len = 1;
    for (size_t s = 0; s < r->n_seqs; s++) max_len = r->lens[s] > max_len ? r->lens[s] : max_len;
    er_ctx_params cp = {.max_tokens = r->n_tokens ? (int)r->n_tokens : 1,
                        .max_seqs = (int)r->n_seqs, .max_seq_len = max_len};
    er_batch b = {.n_seqs = (int)r->n_seqs, .seq_len = r->lens, .ids = r->ids,
                  .type_ids = r->has_types ? r->types : NULL};
    er_ctx *ctx = NULL;
    float *hidden = malloc((r->n_tokens + 1) * (size_t)c->hidden_size * sizeof *hidden);
    float *out = o->head ? malloc((er_head_out_size(m, &b) + 1) * sizeof *out) : NULL;
    const char *bad = NULL;
    if (er_ctx_init(m, &cp, &ctx, err) != ER_OK) bad = err->msg;
    else if (!hidden || (o->head && !out)) bad = "out of memory";
    else if (er_embed(m, ctx, &b, hidden, err) != ER_OK ||
             er_layers(m, ctx, &b, 0, o->head ? c->num_layers : o->layer, hidden, err) != ER_OK ||
             (o->head && er_head(m, ctx, &b, hidden, out, err) != ER_OK))
        bad = err->msg;
    else if (o->head)
        *res = head_json(m, &b, out);
    else {
        *res = json_object();
        json_object_set_new(*res, "hidden_states",
                            per_sequence(hidden, &b, (size_t)c->hidden_size, -1));
    }
    free(out);
    free(hidden);
    er_ctx_free(ctx);
    return bad;
}

int main(int argc, char **argv) {
    er_log_setup("erserve-infer", ER_LOG_INFO);
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    request r = {0};
    char msg[1200];
    er_err err = {0};
    er_model *m = NULL;
    json_t *res = NULL;
    const char *bad = read_request(&r, msg, sizeof msg);
    er_model_params mp = er_model_default_params();
    mp.compute = o.compute;
    if (!bad && o.gemm && er_gemm_select(o.gemm, &err) != ER_OK) bad = err.msg;
    if (!bad && er_model_load(o.dir, &mp, &m, &err) != ER_OK) bad = err.msg;
    if (!bad && o.layer > er_model_config(m)->num_layers) {
        snprintf(msg, sizeof msg, "--layer %d: the model has %d layers", o.layer,
                 er_model_config(m)->num_layers);
        bad = msg;
    }
    if (!bad) bad = compute(&o, m, &r, &res, &err);
    rc = bad ? fail(bad) : 0;
    if (res && json_dumpf(res, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9)) != 0) rc = 1;
    if (res) fputc('\n', stdout);
    json_decref(res);
    er_model_free(m);
    request_free(&r);
    return rc;
}
