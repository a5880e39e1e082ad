/* proto's pure functions: request parsing errors, post-processing and every
 * reply builder, on hand-made arrays (no model, no server). */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "post.h"
#include "proto.h"
#include "reply.h"
#include "result.h"

static pr_req parse_ok(pr_route route, const char *body) {
    pr_limits lim = pr_default_limits();
    pr_req r;
    er_err err = {0};
    ck_assert_msg(pr_parse(route, body, strlen(body), &lim, &r, &err) == ER_OK, "%s", err.msg);
    return r;
}

static double norm(json_t *arr) {
    double s = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        double v = json_real_value(json_array_get(arr, i));
        s += v * v;
    }
    return sqrt(s);
}

START_TEST(post_processing) {
    float x[4] = {1, 3, 3, 0}, p[4];
    int idx[4];
    ck_assert_int_eq(pp_top_k(x, 4, 2, idx), 2);
    ck_assert_int_eq(idx[0], 1);
    ck_assert_int_eq(idx[1], 2);
    ck_assert_int_eq(pp_top_k(x, 4, 9, idx), 4);
    ck_assert_int_eq(idx[3], 3);
    pp_softmax(x, 4, p);
    ck_assert(fabsf(p[0] + p[1] + p[2] + p[3] - 1) < 1e-6f);
    float big[2] = {1000, -1000};
    pp_sigmoid(big, 2, p);
    ck_assert(p[0] == 1.0f && p[1] >= 0 && p[1] < 1e-30f);
    float one = 1.0f;
    char *b = pp_base64_f32(&one, 1);
    ck_assert_str_eq(b, "AACAPw==");
    free(b);
    /* HF aggregation on "Johnson lives": tokens john ##son lives */
    static const char *labels[] = {"O", "B-PER", "I-PER"};
    pp_token tok[5] = {{"[CLS]", 0, 0, 0, 0, true, false}, {"john", 0, 4, 0, 4, false, false},
                       {"##son", 4, 7, 4, 7, false, false}, {"lives", 8, 13, 8, 13, false, false},
                       {"[SEP]", 0, 0, 0, 0, true, false}};
    float lg[15] = {0, 0, 0, 0, 5, 0, 0, 0, 4, 5, 0, 0, 0, 0, 0}; /* john B-PER, ##son I-PER, lives O */
    pp_entity e[5];
    float sc[6];
    int n = pp_entities(lg, 5, 3, labels, tok, PP_AGG_NONE, sc, e);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(e[0].index, 1);
    n = pp_entities(lg, 5, 3, labels, tok, PP_AGG_SIMPLE, sc, e);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(e[0].cstart, 0);
    ck_assert_int_eq(e[0].cend, 7);
    ck_assert(strncmp(e[0].group, "PER", e[0].group_len) == 0);
    n = pp_entities(lg, 5, 3, labels, tok, PP_AGG_FIRST, sc, e);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(e[0].cend, 7); /* john+##son form one word */
    lg[11] = 9; /* lives -> I-PER: continues the group under simple */
    n = pp_entities(lg, 5, 3, labels, tok, PP_AGG_SIMPLE, sc, e);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(e[0].cend, 13);
    /* QA: best span inside the context, length-bounded */
    float qa[10] = {9, 9, 0, 0, 5, 0, 0, 1, 0, 6};
    bool ctx[5] = {false, false, true, true, true};
    int s, en;
    float score;
    ck_assert(pp_qa_best_span(qa, 5, ctx, 3, &s, &en, &score));
    ck_assert_int_eq(s, 2);
    ck_assert_int_eq(en, 4);
    ck_assert(pp_qa_best_span(qa, 5, ctx, 1, &s, &en, &score));
    ck_assert_int_eq(en - s, 0);
}
END_TEST

START_TEST(parse_errors) {
    pr_limits lim = pr_default_limits();
    lim.max_inputs = 2;
    struct {
        pr_route route;
        const char *body, *field;
        er_status code;
        int status;
    } cases[] = {
        {PR_ROUTE_PREDICT, "{", "JSON", ER_ERR_FORMAT, 400},
        {PR_ROUTE_PREDICT, "[1]", "object", ER_ERR_FORMAT, 400},
        {PR_ROUTE_PREDICT, "{\"inputs\": [\"a\"], \"top_k\": -1}", "top_k", ER_ERR_INVALID_ARG, 422},
        {PR_ROUTE_PREDICT, "{\"inputs\": [\"a\", \"b\", \"c\"]}", "limit", ER_ERR_CAPACITY, 413},
        {PR_ROUTE_EMBEDDINGS, "{\"input\": \"a\", \"encoding_format\": \"x\"}", "encoding_format",
         ER_ERR_FORMAT, 400},
        {PR_ROUTE_TEI_RERANK, "{\"query\": \"q\"}", "texts", ER_ERR_FORMAT, 400},
        {PR_ROUTE_PREDICT, "{\"inputs\": [\"\"]}", "inputs[0]", ER_ERR_INVALID_ARG, 422},
        {PR_ROUTE_DECODE, "{}", "ids", ER_ERR_FORMAT, 400},
        {PR_ROUTE_DECODE, "{\"ids\": \"1 2\"}", "ids", ER_ERR_FORMAT, 400},
        {PR_ROUTE_DECODE, "{\"ids\": []}", "ids", ER_ERR_INVALID_ARG, 422},
        {PR_ROUTE_DECODE, "{\"ids\": [[1], [2, \"x\"]]}", "`ids[1]`[1]", ER_ERR_FORMAT, 400},
        {PR_ROUTE_DECODE, "{\"ids\": [[1], [-2]]}", "`ids[1]`[0]", ER_ERR_INVALID_ARG, 422},
        {PR_ROUTE_DECODE, "{\"ids\": [[1], [2], [3]]}", "limit", ER_ERR_CAPACITY, 413},
        {PR_ROUTE_DECODE, "{\"ids\": [1], \"skip_special_tokens\": 1}", "skip_special_tokens", ER_ERR_FORMAT,
         400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pr_req r;
        er_err err = {0};
        er_status st = pr_parse(cases[i].route, cases[i].body, strlen(cases[i].body), &lim, &r, &err);
        ck_assert_msg(st == cases[i].code, "%s: got %d", cases[i].body, st);
        ck_assert_msg(strstr(err.msg, cases[i].field), "%s: %s", cases[i].body, err.msg);
        ck_assert_int_eq(pr_status_of(st), cases[i].status);
    }
    size_t n;
    char *body = pr_error_body(PR_API_ERSERVE, 422, PR_FAULT_NONE, "bad", NULL, &n);
    ck_assert_str_eq(body, "{\"error\":{\"type\":\"validation_error\",\"message\":\"bad\"}}");
    free(body);
}
END_TEST

/* Each parse error's fault, and the status and body it gets in each dialect:
 * TEI 1.9 (router/src/http/server.rs: Empty 400, Validation/Tokenizer 422,
 * Backend 424; axum's JSON rejections: syntax 400, data 422) and OpenAI
 * (every invalid request 400, model_not_found 404, `param`). */
START_TEST(dialects) {
    pr_limits lim = pr_default_limits();
    lim.max_inputs = 2;
    struct {
        pr_route route;
        const char *body;
        pr_fault fault;
        int erserve, tei, openai;
    } cases[] = {
        {PR_ROUTE_TEI_EMBED, "{", PR_FAULT_SYNTAX, 400, 400, 400},
        {PR_ROUTE_TEI_EMBED, "{\"inputs\": 3}", PR_FAULT_TYPE, 400, 422, 400},
        {PR_ROUTE_TEI_EMBED, "{\"inputs\": []}", PR_FAULT_EMPTY, 422, 400, 400},
        {PR_ROUTE_TEI_EMBED, "{\"inputs\": \"\"}", PR_FAULT_EMPTY, 422, 400, 400},
        {PR_ROUTE_TEI_EMBED, "{\"inputs\": [[]]}", PR_FAULT_EMPTY, 422, 400, 400},
        {PR_ROUTE_TEI_EMBED, "{\"inputs\": \"a\", \"dimensions\": 0}", PR_FAULT_RANGE, 422, 422, 400},
        {PR_ROUTE_TEI_EMBED, "{\"inputs\": [\"a\", \"b\", \"c\"]}", PR_FAULT_LIMIT, 413, 422, 400},
        {PR_ROUTE_TEI_EMBED, "{\"inputs\": \"a\", \"truncation_direction\": \"up\"}", PR_FAULT_TYPE, 400, 422, 400},
        {PR_ROUTE_TEI_PREDICT, "{\"inputs\": [\"a\", \"b\", \"c\"]}", PR_FAULT_TYPE, 400, 422, 400},
        {PR_ROUTE_TEI_SIMILARITY, "{\"inputs\": {\"source_sentence\": \"a\", \"sentences\": []}}",
         PR_FAULT_EMPTY, 422, 400, 400},
        {PR_ROUTE_TEI_SIMILARITY, "{\"inputs\": {\"source_sentence\": \"a\", \"sentences\": [\"b\", \"c\"]}}",
         PR_FAULT_LIMIT, 413, 422, 400}, /* the source counts, as TEI */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pr_req r;
        er_err err = {0};
        er_status st = pr_parse(cases[i].route, cases[i].body, strlen(cases[i].body), &lim, &r, &err);
        ck_assert_msg(st != ER_OK && r.fault == cases[i].fault, "%s: fault %d", cases[i].body, r.fault);
        int s0 = pr_status_of(st);
        ck_assert_int_eq(pr_error_status(PR_API_ERSERVE, s0, r.fault), cases[i].erserve);
        ck_assert_int_eq(pr_error_status(PR_API_TEI, s0, r.fault), cases[i].tei);
        ck_assert_int_eq(pr_error_status(PR_API_OPENAI, s0, r.fault), cases[i].openai);
    }
    /* bodies */
    size_t n;
    char *b = pr_error_body(PR_API_TEI, 400, PR_FAULT_EMPTY, "`inputs` is empty", NULL, &n);
    ck_assert_str_eq(b, "{\"error\":\"`inputs` is empty\",\"error_type\":\"Empty\"}");
    free(b);
    b = pr_error_body(PR_API_TEI, 424, PR_FAULT_HEAD, "not an embedding model", NULL, &n);
    ck_assert_str_eq(b, "{\"error\":\"not an embedding model\",\"error_type\":\"Backend\"}");
    free(b);
    ck_assert_str_eq(pr_tei_error_type(422, PR_FAULT_TOKENIZER), "Tokenizer");
    ck_assert_str_eq(pr_tei_error_type(429, PR_FAULT_NONE), "Overloaded");
    ck_assert_str_eq(pr_tei_error_type(503, PR_FAULT_NONE), "Unhealthy");
    ck_assert_str_eq(pr_tei_error_type(422, PR_FAULT_TOO_LONG), "Validation");
    ck_assert_int_eq(pr_error_status(PR_API_TEI, 500, PR_FAULT_NONE), 424);
    ck_assert_int_eq(pr_error_status(PR_API_TEI, 413, PR_FAULT_TOO_LONG), 422);
    ck_assert_int_eq(pr_error_status(PR_API_OPENAI, 404, PR_FAULT_MODEL), 404);
    ck_assert_int_eq(pr_error_status(PR_API_OPENAI, 413, PR_FAULT_TOO_LONG), 400);
    ck_assert_int_eq(pr_error_status(PR_API_OPENAI, 413, PR_FAULT_NONE), 413); /* the body cap */
    b = pr_error_body(PR_API_OPENAI, 404, PR_FAULT_MODEL, "no `gpt`", "model", &n);
    ck_assert_str_eq(b, "{\"error\":{\"message\":\"no `gpt`\",\"type\":\"invalid_request_error\","
                        "\"param\":\"model\",\"code\":\"model_not_found\"}}");
    free(b);
    b = pr_error_body(PR_API_OPENAI, 400, PR_FAULT_EMPTY, "`input[1]` is empty", NULL, &n);
    ck_assert_str_eq(b, "{\"error\":{\"message\":\"`input[1]` is empty\",\"type\":\"invalid_request_error\","
                        "\"param\":\"input\",\"code\":null}}");
    free(b);
    b = pr_error_body(PR_API_OPENAI, 400, PR_FAULT_TYPE, "no field quoted", NULL, &n);
    ck_assert_ptr_nonnull(strstr(b, "\"param\":null"));
    free(b);
    b = pr_error_body(PR_API_TEI, 422, PR_FAULT_NONE, "\xff", NULL, &n); /* not UTF-8: still JSON */
    ck_assert_ptr_nonnull(strstr(b, "not UTF-8"));
    free(b);
}
END_TEST

/* TEI's request forms: token ids on /embed, /predict's batch of [text] and
 * [text, pair], /similarity, truncation_direction, prompt_name, the
 * --auto-truncate default and OpenAI's truncate-only-when-asked. */
START_TEST(tei_requests) {
    pr_req r = parse_ok(PR_ROUTE_TEI_EMBED, "{\"inputs\": [101, 7592, 102]}");
    ck_assert(!r.batched && r.n_inputs == 1 && r.inputs[0].kind == PR_IDS && r.inputs[0].n_ids == 3);
    ck_assert(r.truncate && !r.truncate_left && r.normalize == 1);
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_TEI_EMBED, "{\"inputs\": [[101, 102], \"text\"], \"truncation_direction\": \"Left\","
                                     " \"prompt_name\": \"query\", \"truncate\": false, \"dimensions\": 8}");
    ck_assert(r.batched && r.n_inputs == 2 && r.inputs[0].kind == PR_IDS && r.inputs[1].kind == PR_TEXT);
    ck_assert(!r.truncate && r.truncate_left && r.dimensions == 8);
    ck_assert_str_eq(r.prompt_name, "query");
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_TEI_PREDICT, "{\"inputs\": [[\"a\"], [\"b\", \"c\"]]}");
    ck_assert(r.batched && r.n_inputs == 2 && r.inputs[0].kind == PR_TEXT && r.inputs[1].kind == PR_PAIR);
    ck_assert(r.inputs[1].pair_len == 1 && r.inputs[1].pair[0] == 'c');
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_TEI_PREDICT, "{\"inputs\": [\"a\"]}"); /* one input, not a batch */
    ck_assert(!r.batched && r.n_inputs == 1 && r.inputs[0].kind == PR_TEXT);
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_TEI_SIMILARITY, "{\"inputs\": {\"source_sentence\": \"s\", \"sentences\": [\"a\", \"b\"]},"
                                          " \"parameters\": {\"truncate\": false, \"prompt_name\": \"q\"}}");
    ck_assert(r.n_inputs == 3 && r.inputs[0].text[0] == 's' && r.inputs[2].text[0] == 'b');
    ck_assert(!r.truncate);
    ck_assert_str_eq(r.prompt_name, "q");
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_EMBEDDINGS, "{\"input\": \"a\"}");
    ck_assert(!r.truncate); /* OpenAI: only when asked */
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_PREDICT, "{\"inputs\": \"a\"}");
    ck_assert(r.truncate);
    pr_req_free(&r);
    pr_limits lim = pr_default_limits();
    lim.auto_truncate = false; /* --auto-truncate=false */
    er_err err;
    ck_assert_int_eq(pr_parse(PR_ROUTE_TEI_EMBED, "{\"inputs\": \"a\"}", 15, &lim, &r, &err), ER_OK);
    ck_assert(!r.truncate);
    pr_req_free(&r);
}
END_TEST

/* /embed_sparse's reply from a hand-made vocabulary row; /similarity's
 * cosines; /tokenize's TEI tokens. */
START_TEST(tei_replies) {
    float row[2][6] = {{0, 1.5f, 0, 0, 0.25f, 0}, {0, 0, 0, 0, 0, 0}};
    pr_req r = parse_ok(PR_ROUTE_TEI_EMBED_SPARSE, "{\"inputs\": [\"a\", \"b\"]}");
    char *s = pr_dump(pr_tei_embed_sparse(&r, &row[0][0], 6, 6), NULL);
    ck_assert_str_eq(s, "[[{\"index\":1,\"value\":1.5},{\"index\":4,\"value\":0.25}],[]]");
    free(s);
    pr_req_free(&r);
    float e[3][2] = {{1, 0}, {0, 2}, {3, 3}};
    json_t *j = pr_similarity(&e[0][0], 2, 2, 3);
    ck_assert_int_eq(json_array_size(j), 2);
    ck_assert(fabs(json_real_value(json_array_get(j, 0))) < 1e-9);
    ck_assert(fabs(json_real_value(json_array_get(j, 1)) - 1 / sqrt(2.0)) < 1e-9);
    json_decref(j);
    /* Matryoshka on /embed: first 2 of {3, 4, 12}, then unit length; raw without normalize */
    float m[3] = {3, 4, 12};
    r = parse_ok(PR_ROUTE_TEI_EMBED, "{\"inputs\": \"a\", \"dimensions\": 2}");
    j = pr_tei_embed(&r, m, 3, 3, false);
    ck_assert_int_eq(json_array_size(json_array_get(j, 0)), 2);
    ck_assert(fabs(json_real_value(json_array_get(json_array_get(j, 0), 0)) - 0.6) < 1e-6);
    json_decref(j);
    pr_req_free(&r);
    float m2[3] = {3, 4, 12};
    r = parse_ok(PR_ROUTE_TEI_EMBED, "{\"inputs\": \"a\", \"normalize\": false}");
    j = pr_tei_embed(&r, m2, 3, 3, true); /* raw even when the model normalises */
    ck_assert(json_real_value(json_array_get(json_array_get(j, 0), 2)) == 12.0);
    json_decref(j);
    pr_req_free(&r);
    /* /tokenize: slices of the input, null offsets for specials */
    const char *text = "Caf\xc3\xa9 x";
    const char *toks[] = {"[CLS]", "cafe", "x", "[SEP]"};
    int32_t ids[] = {101, 7668, 1060, 102};
    uint8_t special[] = {1, 0, 0, 1};
    er_offset bo[] = {{0, 0}, {0, 5}, {6, 7}, {0, 0}};
    er_encoding enc = {.n = 4, .ids = ids, .tokens = toks, .special_mask = special, .byte_offsets = bo};
    s = pr_dump(pr_tokens(&enc, text, strlen(text)), NULL);
    ck_assert_str_eq(s, "[{\"id\":101,\"text\":\"[CLS]\",\"special\":true,\"start\":null,\"stop\":null},"
                        "{\"id\":7668,\"text\":\"Caf\xc3\xa9\",\"special\":false,\"start\":0,\"stop\":5},"
                        "{\"id\":1060,\"text\":\"x\",\"special\":false,\"start\":6,\"stop\":7},"
                        "{\"id\":102,\"text\":\"[SEP]\",\"special\":true,\"start\":null,\"stop\":null}]");
    free(s);
    j = pr_models_reply(json_pack("[o]", pr_model_json("text-embedding-3-small", 1700000000, "emb")));
    s = pr_dump(j, NULL);
    ck_assert_str_eq(s, "{\"object\":\"list\",\"data\":[{\"id\":\"text-embedding-3-small\",\"object\":\"model\","
                        "\"created\":1700000000,\"owned_by\":\"erserve\",\"task\":\"emb\"}]}");
    free(s);
}
END_TEST

/* /decode: one list or a batch of lists, skip_special_tokens [true]; the
 * reply is a string or a list of strings. */
START_TEST(decode_request_and_reply) {
    pr_req r = parse_ok(PR_ROUTE_DECODE, "{\"ids\": [101, 7592, 102]}");
    ck_assert(!r.batched);
    ck_assert(r.skip_special_tokens);
    ck_assert_int_eq(r.n_inputs, 1);
    ck_assert_int_eq(r.inputs[0].kind, PR_IDS);
    ck_assert_int_eq(r.inputs[0].n_ids, 3);
    ck_assert_int_eq(r.inputs[0].ids[1], 7592);
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_DECODE, "{\"ids\": [[1, 2], [3]], \"skip_special_tokens\": false, \"model\": \"m\"}");
    ck_assert(r.batched);
    ck_assert(!r.skip_special_tokens);
    ck_assert_int_eq(r.n_inputs, 2);
    ck_assert_int_eq(r.inputs[1].n_ids, 1);
    ck_assert_str_eq(r.model, "m");
    pr_req_free(&r);
    const char *texts[] = {"hello", "w\xc3\xb6rld"};
    const size_t lens[] = {5, 6};
    char *one = pr_dump(pr_decode_reply(texts, lens, 1), NULL);
    ck_assert_str_eq(one, "[\"hello\"]"); /* a list even for one, as TEI */
    char *two = pr_dump(pr_decode_reply(texts, lens, 2), NULL);
    ck_assert_str_eq(two, "[\"hello\",\"w\xc3\xb6rld\"]");
    free(one);
    free(two);
    const char *bad[] = {"\xff"};
    ck_assert_ptr_null(pr_decode_reply(bad, (const size_t[]){1}, 1));
}
END_TEST

START_TEST(openai_list) {
    float x[2][4] = {{3, 4, 0, 0}, {0, 0, 0, 2}};
    pr_req r = parse_ok(PR_ROUTE_EMBEDDINGS, "{\"input\": [\"a\", \"b\"], \"model\": \"m\"}");
    json_t *j = pr_openai_embeddings(&r, &x[0][0], 4, 4, r.model, 7);
    ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "list");
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "m");
    json_t *usage = json_object_get(j, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(usage, "prompt_tokens")), 7);
    json_t *d1 = json_array_get(json_object_get(j, "data"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(d1, "object")), "embedding");
    ck_assert_int_eq(json_integer_value(json_object_get(d1, "index")), 1);
    json_t *v = json_object_get(d1, "embedding");
    ck_assert_int_eq(json_array_size(v), 4);
    ck_assert(json_real_value(json_array_get(v, 3)) == 1.0); /* always unit length, as OpenAI's */
    json_decref(j);
    pr_req_free(&r);
    /* dimensions: shortened and renormalised (OpenAI) */
    r = parse_ok(PR_ROUTE_EMBEDDINGS, "{\"input\": \"a\", \"dimensions\": 2}");
    j = pr_openai_embeddings(&r, &x[0][0], 4, 4, "task", 1);
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "task");
    v = json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding");
    ck_assert_int_eq(json_array_size(v), 2);
    ck_assert(fabs(norm(v) - 1) < 1e-6);
    ck_assert(fabs(json_real_value(json_array_get(v, 0)) - 0.6) < 1e-6);
    json_decref(j);
    pr_req_free(&r);
    /* base64: little-endian float32 bytes */
    float one[2] = {1, 0};
    r = parse_ok(PR_ROUTE_EMBEDDINGS, "{\"input\": \"a\", \"encoding_format\": \"base64\", \"dimensions\": 1}");
    j = pr_openai_embeddings(&r, one, 2, 2, "task", 1);
    v = json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding");
    ck_assert_str_eq(json_string_value(v), "AACAPw==");
    json_decref(j);
    pr_req_free(&r);
}
END_TEST

START_TEST(tei_embed_and_predict) {
    float x[2][3] = {{1, 2, 2}, {0, 0, 5}};
    pr_req r = parse_ok(PR_ROUTE_TEI_EMBED, "{\"inputs\": [\"a\", \"b\"]}"); /* normalize default on */
    json_t *j = pr_tei_embed(&r, &x[0][0], 3, 3, false);
    ck_assert_int_eq(json_array_size(j), 2);
    ck_assert(fabs(norm(json_array_get(j, 0)) - 1) < 1e-6);
    ck_assert(fabs(json_real_value(json_array_get(json_array_get(j, 1), 2)) - 1) < 1e-6);
    json_decref(j);
    pr_req_free(&r);
    float y[3] = {1, 2, 2};
    r = parse_ok(PR_ROUTE_TEI_EMBED, "{\"inputs\": \"a\", \"normalize\": false}");
    j = pr_tei_embed(&r, y, 3, 3, false);
    ck_assert(json_real_value(json_array_get(json_array_get(j, 0), 1)) == 2.0);
    json_decref(j);
    pr_req_free(&r);
    static const char *labels[] = {"neg", "pos"};
    float l[2][2] = {{0, 1}, {3, 0}};
    r = parse_ok(PR_ROUTE_TEI_PREDICT, "{\"inputs\": \"a\"}");
    j = pr_tei_predict(&r, &l[0][0], 2, 2, labels, false);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "label")), "pos");
    json_decref(j);
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_TEI_PREDICT, "{\"inputs\": [[\"a\"], [\"b\"], \"c\"]}"); /* a batch; a bare text is accepted in it */
    float l3[3][2] = {{0, 1}, {3, 0}, {0, 0}};
    j = pr_tei_predict(&r, &l3[0][0], 2, 2, labels, false);
    ck_assert_int_eq(json_array_size(j), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_array_get(j, 1), 0), "label")),
                     "neg");
    json_decref(j);
    pr_req_free(&r);
}
END_TEST

START_TEST(rerank_scoring) {
    float one = 0;
    ck_assert(fabsf(pr_rerank_score(&one, 1, false) - 0.5f) < 1e-7f); /* sigmoid */
    float two[2] = {0, 0};
    ck_assert(fabsf(pr_rerank_score(two, 2, false) - 0.5f) < 1e-7f);  /* softmax, last label */
    float three[3] = {1, 2, 3}, p[3];
    pp_softmax(three, 3, p);
    ck_assert(pr_rerank_score(three, 3, false) == p[2]); /* the same bits as pp_softmax */
    ck_assert(pr_rerank_score(three, 3, true) == 3.0f);  /* raw: last logit */
    /* order: by descending score, ties keep the lower index; text when asked */
    float l[4] = {-1, 2, 0, 2};
    pr_req r = parse_ok(PR_ROUTE_TEI_RERANK,
                        "{\"query\": \"q\", \"texts\": [\"a\", \"b\", \"c\", \"d\"], \"return_text\": true}");
    json_t *j = pr_rerank(&r, l, 1, 1);
    ck_assert_int_eq(json_array_size(j), 4);
    int want[4] = {1, 3, 2, 0};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(j, (size_t)i), "index")), want[i]);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "text")), "b");
    json_decref(j);
    pr_req_free(&r);
    r = parse_ok(PR_ROUTE_TEI_RERANK, "{\"query\": \"q\", \"texts\": [\"a\", \"b\"]}");
    j = pr_rerank(&r, l, 1, 1);
    ck_assert_ptr_null(json_object_get(json_array_get(j, 0), "text"));
    json_decref(j);
    pr_req_free(&r);
}
END_TEST

START_TEST(warm_and_predict_envelope) {
    uint8_t hit[3] = {1, 0, 1};
    json_t *j = pr_warm_reply("cls", 3, 12, hit);
    ck_assert_str_eq(json_string_value(json_object_get(j, "task")), "cls");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "inputs")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "tokens")), 12);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "already_cached")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "computed")), 1);
    json_decref(j);
    j = pr_predict_reply("cls", json_array());
    ck_assert_str_eq(json_string_value(json_object_get(j, "task")), "cls");
    ck_assert(json_is_array(json_object_get(j, "results")));
    json_decref(j);
    ck_assert_ptr_null(pr_predict_reply("cls", NULL));
    float v[2] = {3, 4};
    pr_req r = parse_ok(PR_ROUTE_PREDICT, "{\"inputs\": \"a\", \"normalize\": true}");
    pr_embedding_normalize(&r, v, 2, false);
    ck_assert(fabsf(v[0] - 0.6f) < 1e-6f && fabsf(v[1] - 0.8f) < 1e-6f);
    pr_req_free(&r);
}
END_TEST

/* The describing routes' shapes that need no task set (tasks and info are
 * covered by tests/server/test_handlers.c against real tasks). */
START_TEST(info_shapes) {
    json_t *j = pr_health_reply();
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    j = pr_ready_reply(3);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ready");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "tasks")), 3);
    json_decref(j);
    j = pr_purge_reply(pr_cache_reply(NULL, NULL, NULL));
    ck_assert(json_is_true(json_object_get(j, "purged")));
    ck_assert(json_is_false(json_object_get(json_object_get(j, "cache"), "enabled")));
    json_decref(j);
}
END_TEST

static Suite *proto_suite(void) {
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, post_processing);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, dialects);
    tcase_add_test(tc, tei_requests);
    tcase_add_test(tc, tei_replies);
    tcase_add_test(tc, openai_list);
    tcase_add_test(tc, decode_request_and_reply);
    tcase_add_test(tc, tei_embed_and_predict);
    tcase_add_test(tc, rerank_scoring);
    tcase_add_test(tc, warm_and_predict_envelope);
    tcase_add_test(tc, info_shapes);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(proto_suite)
