/* TEI 1.9 and OpenAI semantics, in process (srv_app_handle_sync): requests
 * shaped as TEI's docs/openapi.json and OpenAI's API reference define them,
 * answered with their status codes and bodies; /v1/models and aliases,
 * prompts from config_sentence_transformers.json, raw and Matryoshka
 * vectors, truncation and its direction, the new routes, CORS. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "app.h"
#include "routes.h"
#include "server_config.h"
#include "server_test_util.h"

static srv_config cfg;
static srv_app *app;
static char pdir[128]; /* the embedding model again, with prompts */

/* pdir: links to the generated embedding model plus a sentence-transformers
 * prompts file (e5 style). */
static void make_prompt_model(void) {
    snprintf(pdir, sizeof pdir, "/tmp/erserve-prompts-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(pdir));
    static const char *files[] = {"config.json", "model.safetensors", "modules.json", "1_Pooling"};
    char src[512], dst[512];
    for (int i = 0; i < 4; i++) {
        snprintf(src, sizeof src, "%s/embedding/%s", g_models, files[i]);
        if (src[0] != '/') {
            char cwd[256];
            ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
            snprintf(src, sizeof src, "%s/%s/embedding/%s", cwd, g_models, files[i]);
        }
        snprintf(dst, sizeof dst, "%s/%s", pdir, files[i]);
        ck_assert_int_eq(symlink(src, dst), 0);
    }
    snprintf(dst, sizeof dst, "%s/config_sentence_transformers.json", pdir);
    FILE *f = fopen(dst, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"prompts\": {\"query\": \"query: \", \"passage\": \"passage: \"}, \"default_prompt_name\": \"query\"}", f);
    fclose(f);
}

/* Tasks: emb (prompts, default "query"), plain (the same weights, no
 * prompts), cls, ner, qa.  Aliases, CORS for one origin, 4 inputs and 16 tokens. */
static void setup_opts(const char *cors) {
    make_prompt_model();
    srv_config_defaults(&cfg);
    char spec[512];
    snprintf(spec, sizeof spec, "emb=%s", pdir);
    ck_assert(srv_config_add_task(&cfg, spec, NULL) == ER_OK);
    snprintf(spec, sizeof spec, "plain=%s/embedding", g_models);
    ck_assert(srv_config_add_task(&cfg, spec, NULL) == ER_OK);
    snprintf(spec, sizeof spec, "cls=%s/seqcls", g_models);
    ck_assert(srv_config_add_task(&cfg, spec, NULL) == ER_OK);
    snprintf(spec, sizeof spec, "ner=%s/tokcls", g_models);
    ck_assert(srv_config_add_task(&cfg, spec, NULL) == ER_OK);
    snprintf(spec, sizeof spec, "qa=%s/qa", g_models);
    ck_assert(srv_config_add_task(&cfg, spec, NULL) == ER_OK);
    cfg.tokenizer = strdup(TOKENIZER_JSON);
    cfg.served_model_name = strdup("emb=text-embedding-3-small,plain=BAAI/bge-small-en-v1.5");
    cfg.cors_allow_origin = cors ? strdup(cors) : NULL;
    cfg.max_inputs = 4;
    cfg.max_tokens = 16;
    cfg.workers = 1;
    cfg.quiet = true;
    er_err err = {0};
    ck_assert_msg(srv_app_new(&cfg, &app, &err) == ER_OK, "%s", err.msg);
}

static void setup(void) { setup_opts("https://app.example"); }
static void setup_no_cors(void) { setup_opts(NULL); }

static void teardown(void) {
    srv_app_free(app);
    app = NULL;
    srv_config_free(&cfg);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", pdir);
    (void)system(cmd);
}

typedef struct {
    int status;
    json_t *j;
    srv_response r;
} reply;

static reply req(const char *method, const char *path, const char *origin, const char *cors_method,
                 const char *body) {
    srv_request rq = {.method = method, .path = path, .content_type = body ? "application/json" : NULL,
                      .origin = origin, .cors_method = cors_method, .body = body,
                      .body_len = body ? strlen(body) : 0};
    reply out = {0};
    srv_app_handle_sync(app, &rq, &out.r);
    out.status = out.r.status;
    if (out.r.body) out.j = json_loadb(out.r.body, out.r.body_len, JSON_DECODE_ANY, NULL);
    return out;
}

static reply post(const char *path, const char *body) { return req("POST", path, NULL, NULL, body); }
static reply get(const char *path) { return req("GET", path, NULL, NULL, NULL); }

static void done(reply *r) {
    json_decref(r->j);
    free(r->r.body);
}

/* A TEI error: status and error_type. */
static void tei_error(reply r, int status, const char *type) {
    ck_assert_msg(r.status == status, "want %d got %d: %s", status, r.status, r.r.body ? r.r.body : "");
    ck_assert_msg(json_is_string(json_object_get(r.j, "error")), "%s", r.r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.j, "error_type")), type);
    done(&r);
}

/* An OpenAI error: status, `param` (NULL: null) and `code` (NULL: null). */
static void openai_error(reply r, int status, const char *param, const char *code) {
    ck_assert_msg(r.status == status, "want %d got %d: %s", status, r.status, r.r.body ? r.r.body : "");
    json_t *e = json_object_get(r.j, "error");
    ck_assert(json_is_string(json_object_get(e, "message")));
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    json_t *p = json_object_get(e, "param"), *c = json_object_get(e, "code");
    if (param) ck_assert_str_eq(json_string_value(p), param);
    else ck_assert(json_is_null(p));
    if (code) ck_assert_str_eq(json_string_value(c), code);
    else ck_assert(json_is_null(c));
    done(&r);
}

/* The first (only) vector of a TEI /embed reply, copied; its length in *n. */
static double *embed_vec(const char *body, int *n) {
    reply r = post("/embed", body);
    ck_assert_msg(r.status == 200, "%s -> %d %s", body, r.status, r.r.body);
    json_t *v = json_array_get(r.j, 0);
    *n = (int)json_array_size(v);
    double *x = malloc((size_t)*n * sizeof *x);
    for (int i = 0; i < *n; i++) x[i] = json_real_value(json_array_get(v, (size_t)i));
    done(&r);
    return x;
}

static double l2(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i] * x[i];
    return sqrt(s);
}

static void assert_close(const double *a, const double *b, int n, double tol) {
    for (int i = 0; i < n; i++) ck_assert_msg(fabs(a[i] - b[i]) < tol, "[%d] %g vs %g", i, a[i], b[i]);
}

START_TEST(openai_models_and_aliases) {
    reply r = get("/v1/models");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.j, "object")), "list");
    json_t *d = json_object_get(r.j, "data");
    ck_assert_int_eq(json_array_size(d), 7); /* 5 tasks (not the .tokens twins) + 2 aliases */
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 5), "id")), "text-embedding-3-small");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 5), "object")), "model");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 5), "owned_by")), "erserve");
    ck_assert_int_gt(json_integer_value(json_object_get(json_array_get(d, 0), "created")), 1600000000);
    done(&r);
    r = get("/v1/models/BAAI/bge-small-en-v1.5"); /* a name with a slash */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.j, "id")), "BAAI/bge-small-en-v1.5");
    ck_assert_str_eq(json_string_value(json_object_get(r.j, "task")), "plain");
    done(&r);
    openai_error(get("/v1/models/gpt-4"), 404, "model", "model_not_found");
    /* an alias answers with its name; two embedding tasks: an unknown model is 404 */
    r = post("/v1/embeddings", "{\"input\":\"hi\",\"model\":\"BAAI/bge-small-en-v1.5\"}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.j, "model")), "BAAI/bge-small-en-v1.5");
    done(&r);
    openai_error(post("/v1/embeddings", "{\"input\":\"hi\",\"model\":\"text-embedding-ada-002\"}"), 404, "model",
                 "model_not_found");
    openai_error(post("/v1/embeddings", "{\"input\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}"), 400, NULL, NULL);
    openai_error(post("/v1/embeddings", "{\"input\":3}"), 400, "input", NULL);
    /* /embeddings is the same route (TEI's alias) */
    r = post("/embeddings", "{\"input\":[\"hi\"],\"model\":\"text-embedding-3-small\"}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.j, "model")), "text-embedding-3-small");
    done(&r);
}
END_TEST

/* A text of 60 words: more than the 16-token limit. */
#define LONG_TEXT "one two three four five six seven eight nine ten eleven twelve thirteen " \
                  "fourteen fifteen sixteen seventeen eighteen nineteen twenty one two three four " \
                  "five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
                  "seventeen eighteen nineteen twenty one two three four five six seven eight nine " \
                  "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"

START_TEST(truncation) {
    /* TEI: --auto-truncate (default) cuts; truncate false is 422 Validation */
    reply r = post("/embed", "{\"inputs\":\"" LONG_TEXT "\",\"model\":\"plain\"}");
    ck_assert_int_eq(r.status, 200);
    done(&r);
    tei_error(post("/embed", "{\"inputs\":\"" LONG_TEXT "\",\"truncate\":false}"), 422, "Validation");
    tei_error(post("/embed", "{\"inputs\":[101," "2," "3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,102],"
                             "\"truncate\":false}"), 422, "Validation");
    /* OpenAI: only when asked, else 400 */
    openai_error(post("/v1/embeddings", "{\"input\":\"" LONG_TEXT "\",\"model\":\"plain\"}"), 400, "input", NULL);
    r = post("/v1/embeddings", "{\"input\":\"" LONG_TEXT "\",\"model\":\"plain\",\"truncate\":true}");
    ck_assert_int_eq(r.status, 200);
    done(&r);
    /* left truncation keeps the last tokens: [CLS] + the last 14 + [SEP] */
    r = post("/tokenize", "{\"inputs\":\"" LONG_TEXT "\",\"add_special_tokens\":false,\"model\":\"plain\"}");
    json_t *toks = json_array_get(r.j, 0);
    size_t n = json_array_size(toks);
    char body[512] = "{\"model\":\"plain\",\"inputs\":[101";
    for (size_t i = n - 14; i < n; i++)
        snprintf(body + strlen(body), sizeof body - strlen(body), ",%lld",
                 (long long)json_integer_value(json_object_get(json_array_get(toks, i), "id")));
    strcat(body, ",102]}");
    done(&r);
    int d1, d2, d3;
    double *left = embed_vec("{\"inputs\":\"" LONG_TEXT "\",\"model\":\"plain\",\"truncation_direction\":\"left\"}", &d1);
    double *ids = embed_vec(body, &d2);
    double *right = embed_vec("{\"inputs\":\"" LONG_TEXT "\",\"model\":\"plain\"}", &d3);
    ck_assert_int_eq(d1, d2);
    assert_close(left, ids, d1, 1e-6);
    ck_assert(fabs(left[0] - right[0]) > 1e-6 || fabs(left[1] - right[1]) > 1e-6);
    free(left);
    free(ids);
    free(right);
}
END_TEST

/* Normalize module skipped for normalize:false; Matryoshka dimensions;
 * token ids; prompts. */
START_TEST(embed_semantics) {
    int n, m, k;
    double *unit = embed_vec("{\"inputs\":\"hello\",\"model\":\"plain\"}", &n);
    double *raw = embed_vec("{\"inputs\":\"hello\",\"model\":\"plain\",\"normalize\":false}", &m);
    ck_assert_int_eq(n, 64);
    ck_assert(fabs(l2(unit, n) - 1) < 1e-5);
    ck_assert_msg(fabs(l2(raw, m) - 1) > 1e-3, "raw norm %g", l2(raw, m));
    double nr = l2(raw, m);
    for (int i = 0; i < n; i++) ck_assert(fabs(raw[i] / nr - unit[i]) < 1e-5);
    /* dimensions: the first 8 of the raw vector, renormalised */
    double *mrl = embed_vec("{\"inputs\":\"hello\",\"model\":\"plain\",\"dimensions\":8}", &k);
    ck_assert_int_eq(k, 8);
    double n8 = l2(raw, 8);
    for (int i = 0; i < 8; i++) ck_assert(fabs(raw[i] / n8 - mrl[i]) < 1e-5);
    free(mrl);
    mrl = embed_vec("{\"inputs\":\"hello\",\"model\":\"plain\",\"dimensions\":8,\"normalize\":false}", &k);
    assert_close(mrl, raw, 8, 1e-6);
    free(mrl);
    tei_error(post("/embed", "{\"inputs\":\"hello\",\"dimensions\":65}"), 422, "Validation");
    /* token ids: [101, 7592, 102] is "hello" */
    double *ids = embed_vec("{\"inputs\":[101,7592,102],\"model\":\"plain\"}", &k);
    assert_close(ids, unit, n, 1e-6);
    free(ids);
    reply r = post("/embed", "{\"inputs\":[[101,7592,102],\"hello\"],\"model\":\"plain\"}");
    ck_assert_int_eq(json_array_size(r.j), 2);
    done(&r);
    /* prompts: emb's default is "query: "; prompt_name picks another */
    double *q = embed_vec("{\"inputs\":\"hello\"}", &k);
    double *qq = embed_vec("{\"inputs\":\"query: hello\",\"model\":\"plain\"}", &k);
    double *named = embed_vec("{\"inputs\":\"hello\",\"prompt_name\":\"query\"}", &k);
    double *p = embed_vec("{\"inputs\":\"hello\",\"prompt_name\":\"passage\"}", &k);
    double *pp = embed_vec("{\"inputs\":\"passage: hello\",\"model\":\"plain\"}", &k);
    assert_close(q, qq, k, 1e-6);
    assert_close(named, qq, k, 1e-6);
    assert_close(p, pp, k, 1e-6);
    ck_assert(fabs(q[0] - p[0]) > 1e-6 || fabs(q[1] - p[1]) > 1e-6);
    free(q), free(qq), free(named), free(p), free(pp);
    tei_error(post("/embed", "{\"inputs\":\"hello\",\"prompt_name\":\"nope\"}"), 422, "Validation");
    tei_error(post("/embed", "{\"inputs\":[101,102],\"prompt_name\":\"query\"}"), 422, "Validation");
    /* /tokenize applies the prompt too and shows it */
    r = post("/tokenize", "{\"inputs\":\"hello\",\"model\":\"emb\"}");
    json_t *t = json_array_get(r.j, 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(t, 1), "text")), "query");
    done(&r);
    free(unit);
    free(raw);
}
END_TEST

START_TEST(tei_routes_and_codes) {
    /* /predict's batch of [text] and [text, pair] */
    reply r = post("/predict", "{\"inputs\":[[\"a\"],[\"b\",\"c\"]]}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_array_size(r.j), 2);
    ck_assert(json_is_array(json_array_get(r.j, 1)));
    done(&r);
    tei_error(post("/predict", "{\"inputs\":[\"a\",\"b\",\"c\"]}"), 422, "Validation");
    /* /similarity: cosine against the source */
    r = post("/similarity", "{\"inputs\":{\"source_sentence\":\"hello world\",\"sentences\":[\"hello world\",\"zebra\"]}}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_array_size(r.j), 2);
    ck_assert(fabs(json_real_value(json_array_get(r.j, 0)) - 1) < 1e-5);
    ck_assert(json_real_value(json_array_get(r.j, 1)) < 0.9999);
    done(&r);
    tei_error(post("/similarity", "{\"inputs\":{\"source_sentence\":\"a\",\"sentences\":[]}}"), 400, "Empty");
    /* no SPLADE task here: TEI's 424 Backend; /embed_all likewise */
    tei_error(post("/embed_sparse", "{\"inputs\":\"a\"}"), 424, "Backend");
    /* /embed_all: every token's last hidden state, from the twin task plain.tokens; their
     * mean is the mean-pooled vector /embed gives raw */
    r = post("/embed_all", "{\"inputs\":[\"hello\"],\"model\":\"plain\"}");
    ck_assert_int_eq(r.status, 200);
    json_t *rows = json_array_get(r.j, 0);
    ck_assert_int_eq(json_array_size(rows), 3); /* [CLS] hello [SEP] */
    int n;
    double *raw = embed_vec("{\"inputs\":\"hello\",\"model\":\"plain\",\"normalize\":false}", &n);
    for (int j = 0; j < n; j++) {
        double m = 0;
        for (size_t t = 0; t < 3; t++) m += json_real_value(json_array_get(json_array_get(rows, t), (size_t)j));
        ck_assert_msg(fabs(m / 3 - raw[j]) < 1e-5, "[%d] %g vs %g", j, m / 3, raw[j]);
    }
    free(raw);
    done(&r);
    r = get("/v1/tasks"); /* the twin is a task of its own, sharing the lower stack */
    ck_assert_ptr_nonnull(strstr(r.r.body, "\"name\":\"plain.tokens\",\"head\":\"token_embedding\""));
    done(&r);
    /* the embedding task cannot /rerank: 424 Backend, as TEI for a non-reranker */
    tei_error(post("/rerank", "{\"query\":\"q\",\"texts\":[\"a\"],\"model\":\"emb\"}"), 424, "Backend");
    /* codes: empty 400, wrong type 422, too many inputs 422, not JSON 400 */
    tei_error(post("/embed", "{\"inputs\":[]}"), 400, "Empty");
    tei_error(post("/embed", "{\"inputs\":\"\"}"), 400, "Empty");
    tei_error(post("/embed", "{\"inputs\":{\"a\":1}}"), 422, "Validation");
    tei_error(post("/embed", "{\"inputs\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}"), 422, "Validation");
    tei_error(post("/embed", "{\"inputs\":"), 400, "Validation");
    tei_error(post("/tokenize", "{\"inputs\":[]}"), 400, "Empty");
    /* SageMaker: /invocations is /embed for an embedding first task; /ping */
    r = post("/invocations", "{\"inputs\":\"hello\"}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_array_size(json_array_get(r.j, 0)), 64);
    done(&r);
    r = get("/ping");
    ck_assert_int_eq(r.status, 200);
    done(&r);
    /* /info: TEI's fields */
    r = get("/info");
    ck_assert_int_eq(json_integer_value(json_object_get(r.j, "max_client_batch_size")), 4);
    ck_assert(json_is_true(json_object_get(r.j, "auto_truncate")));
    ck_assert_int_eq(json_integer_value(json_object_get(r.j, "max_input_length")), 16);
    ck_assert_str_eq(json_string_value(json_object_get(r.j, "served_model_name")), "text-embedding-3-small");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(r.j, "model_type"),
                                                                       "embedding"), "pooling")), "mean");
    done(&r);
}
END_TEST

/* POST /models/{task}: the Inference API's pipeline shapes, as
 * @huggingface/inference checks them (tests/server/hf_client.mjs runs the
 * client itself where Node is). */
START_TEST(hf_inference_api) {
    reply r = post("/models/cls", "{\"inputs\":\"I loved this film\"}");
    ck_assert_int_eq(r.status, 200);
    json_t *l = json_array_get(r.j, 0); /* [[{label, score}]] */
    ck_assert_int_eq(json_array_size(l), 2);
    ck_assert(json_is_string(json_object_get(json_array_get(l, 0), "label")));
    ck_assert(json_real_value(json_object_get(json_array_get(l, 0), "score")) >=
              json_real_value(json_object_get(json_array_get(l, 1), "score")));
    done(&r);
    r = post("/models/ner", "{\"inputs\":\"Ann Smith lives in Oslo\",\"parameters\":{\"aggregation_strategy\":\"simple\"}}");
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_is_array(r.j));
    size_t i;
    json_t *e;
    json_array_foreach(r.j, i, e) {
        ck_assert(json_is_string(json_object_get(e, "entity_group")) && !json_object_get(e, "entity"));
        ck_assert(json_is_string(json_object_get(e, "word")) && json_is_integer(json_object_get(e, "start")));
    }
    done(&r);
    r = post("/models/ner", "{\"inputs\":\"Ann Smith lives in Oslo\",\"parameters\":{\"aggregation_strategy\":\"none\"}}");
    json_array_foreach(r.j, i, e) ck_assert(json_is_string(json_object_get(e, "entity")));
    done(&r);
    r = post("/models/qa", "{\"inputs\":{\"question\":\"Where?\",\"context\":\"Ann lives in Oslo.\"}}");
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_is_string(json_object_get(r.j, "answer")) && !json_object_get(r.j, "cache"));
    done(&r);
    int n;
    double *raw = embed_vec("{\"inputs\":\"hello\",\"model\":\"plain\"}", &n);
    r = post("/models/plain", "{\"inputs\":\"hello\"}"); /* one text: [float], as /embed's row */
    ck_assert_int_eq(json_array_size(r.j), 64);
    for (int j = 0; j < n; j++) ck_assert(fabs(json_real_value(json_array_get(r.j, (size_t)j)) - raw[j]) < 1e-6);
    done(&r);
    free(raw);
    r = post("/models/plain", "{\"inputs\":[\"a\",\"b\"]}");
    ck_assert_int_eq(json_array_size(r.j), 2);
    ck_assert_int_eq(json_array_size(json_array_get(r.j, 0)), 64);
    done(&r);
    r = post("/models/plain", "{\"inputs\":{\"source_sentence\":\"a b\",\"sentences\":[\"a b\"]}}");
    ck_assert(fabs(json_real_value(json_array_get(r.j, 0)) - 1) < 1e-5);
    done(&r);
    r = post("/models/text-embedding-3-small", "{\"inputs\":\"hello\"}"); /* an alias */
    ck_assert_int_eq(r.status, 200);
    done(&r);
    tei_error(post("/models/nope", "{\"inputs\":\"a\"}"), 404, "Validation");
    tei_error(post("/models/cls", "{\"inputs\":{\"source_sentence\":\"a\",\"sentences\":[\"b\"]}}"), 424, "Backend");
}
END_TEST

START_TEST(cors_on) {
    reply r = req("OPTIONS", "/embed", "https://app.example", "POST", NULL);
    ck_assert_int_eq(r.status, 204);
    ck_assert_str_eq(r.r.cors_origin, "https://app.example");
    ck_assert_str_eq(r.r.cors_methods, "POST");
    done(&r);
    r = req("OPTIONS", "/embed", "https://evil.example", "POST", NULL); /* answered, not allowed */
    ck_assert_int_eq(r.status, 204);
    ck_assert_str_eq(r.r.cors_origin, "");
    ck_assert_ptr_null(r.r.cors_methods);
    done(&r);
    r = req("POST", "/embed", "https://app.example", NULL, "{\"inputs\":\"a\"}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.r.cors_origin, "https://app.example");
    ck_assert_ptr_null(r.r.cors_methods);
    done(&r);
    r = req("POST", "/embed", "https://app.example", NULL, "{\"inputs\":[]}"); /* errors too */
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.r.cors_origin, "https://app.example");
    done(&r);
    r = req("OPTIONS", "/nope", "https://app.example", "POST", NULL);
    ck_assert_int_eq(r.status, 404);
    done(&r);
}
END_TEST

START_TEST(cors_off) {
    reply r = req("OPTIONS", "/embed", "https://app.example", "POST", NULL);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(r.r.cors_origin, "");
    done(&r);
    r = req("POST", "/embed", "https://app.example", NULL, "{\"inputs\":\"a\"}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.r.cors_origin, "");
    done(&r);
}
END_TEST

/* Start-up refusals name what is wrong. */
START_TEST(config_refusals) {
    static const struct {
        const char *served, *prompt_name, *want;
    } cases[] = {
        {"nope=x", NULL, "no task `nope`"},
        {"x", NULL, "several tasks"},
        {"emb=x,plain=x", NULL, "already names"},
        {NULL, "passage2", "--default-prompt-name passage2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_prompt_model();
        srv_config c;
        srv_config_defaults(&c);
        char spec[512];
        snprintf(spec, sizeof spec, "emb=%s", pdir);
        ck_assert(srv_config_add_task(&c, spec, NULL) == ER_OK);
        snprintf(spec, sizeof spec, "plain=%s/embedding", g_models);
        ck_assert(srv_config_add_task(&c, spec, NULL) == ER_OK);
        c.tokenizer = strdup(TOKENIZER_JSON);
        c.workers = 1;
        if (cases[i].served) c.served_model_name = strdup(cases[i].served);
        if (cases[i].prompt_name) c.default_prompt_name = strdup(cases[i].prompt_name);
        srv_app *a = NULL;
        er_err err = {0};
        ck_assert_int_eq(srv_app_new(&c, &a, &err), ER_ERR_INVALID_ARG);
        ck_assert_msg(strstr(err.msg, cases[i].want), "%zu: %s", i, err.msg);
        srv_config_free(&c);
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", pdir);
        (void)system(cmd);
    }
    /* the flags: TEI's names, lists that add up, --auto-truncate=false */
    srv_config c;
    srv_config_defaults(&c);
    ck_assert_int_eq(c.max_inputs, 2048);
    ck_assert(c.auto_truncate);
    char *argv[] = {"erserve", "--task", "a=/x", "--max-client-batch-size", "32", "--auto-truncate=false",
                    "--served-model-name", "a=m1", "--served-model-name", "a=m2", "--cors-allow-origin", "*", NULL};
    bool printed;
    er_err err;
    ck_assert_int_eq(srv_config_load(&c, 12, argv, stdout, &printed, &err), ER_OK);
    ck_assert_int_eq(c.max_inputs, 32);
    ck_assert(!c.auto_truncate);
    ck_assert_str_eq(c.served_model_name, "a=m1,a=m2");
    ck_assert_str_eq(c.cors_allow_origin, "*");
    srv_config_free(&c);
}
END_TEST

/* proto/openapi.yaml documents every route of the table with each of its
 * methods (HEAD aside) and its errors, and nothing the table lacks. */
START_TEST(openapi_covers_routes) {
    FILE *f = fopen("proto/openapi.yaml", "r");
    ck_assert_ptr_nonnull(f);
    static char y[1 << 17];
    size_t n = fread(y, 1, sizeof y - 1, f);
    fclose(f);
    y[n] = '\0';
    for (int i = 0; i < srv_route_count(); i++) {
        const srv_route *r = srv_route_at(i);
        char key[160];
        snprintf(key, sizeof key, "\n  %s:\n", r->path);
        const char *block = strstr(y, key);
        ck_assert_msg(block, "proto/openapi.yaml has no path %s", r->path);
        block += strlen(key) - 1;
        const char *end = strstr(block, "\n  /");
        size_t len = end ? (size_t)(end - block) : strlen(block);
        char *b = strndup(block, len);
        static const char *const methods[][2] = {{"GET", "\n    get:"}, {"POST", "\n    post:"},
                                                  {"DELETE", "\n    delete:"}};
        for (size_t m = 0; m < 3; m++)
            if (srv_route_allows(r, methods[m][0]))
                ck_assert_msg(strstr(b, methods[m][1]), "%s: no %s in proto/openapi.yaml", r->path, methods[m][0]);
        if (r->kind != SRV_NO_BODY) /* every body route documents its errors */
            ck_assert_msg(strstr(b, "default:") || strstr(b, "'4"), "%s: no error responses", r->path);
        free(b);
    }
    /* and the other way: every documented path is a route */
    for (const char *p = y; (p = strstr(p, "\n  /")); p++) {
        char path[160];
        size_t k = strcspn(p + 3, ":\n");
        ck_assert(k < sizeof path);
        memcpy(path, p + 3, k);
        path[k] = '\0';
        bool found = false;
        for (int i = 0; i < srv_route_count() && !found; i++) found = !strcmp(srv_route_at(i)->path, path);
        ck_assert_msg(found, "proto/openapi.yaml documents %s, which no route serves", path);
    }
}
END_TEST

static Suite *compat_suite(void) {
    const char *b = getenv("BUILD");
    if (gen_models(b && *b ? b : "build")) {
        fprintf(stderr, "test_compat: erserve-genmodel failed (build it first)\n");
        exit(1);
    }
    Suite *s = suite_create("server_compat");
    TCase *tc = tcase_create("compat");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, openai_models_and_aliases);
    tcase_add_test(tc, truncation);
    tcase_add_test(tc, embed_semantics);
    tcase_add_test(tc, tei_routes_and_codes);
    tcase_add_test(tc, hf_inference_api);
    tcase_add_test(tc, cors_on);
    suite_add_tcase(s, tc);
    TCase *off = tcase_create("cors_off");
    tcase_add_checked_fixture(off, setup_no_cors, teardown);
    tcase_add_test(off, cors_off);
    suite_add_tcase(s, off);
    TCase *pure = tcase_create("config");
    tcase_set_timeout(pure, 60);
    tcase_add_test(pure, config_refusals);
    tcase_add_test(pure, openapi_covers_routes);
    suite_add_tcase(s, pure);
    return s;
}

ER_CHECK_MAIN(compat_suite)
