/* Long inputs through the server: a task's input limit is its own model's
 * positions, not the batch budget (--batch-tokens 64 here): a longer input is
 * served as a batch of its own, one over the model's positions gets 413
 * naming the limit or is truncated to it when asked, and /info and
 * /v1/tasks report each task's limit.  Models: erserve-genmodel's tiny
 * preset with 600 ("long") and 100 ("short") positions. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "app.h"
#include "server_config.h"
#include "server_test_util.h"

#define LONG_POS 600
#define SHORT_POS 100
#define BATCH_TOKENS 64

static srv_config cfg;
static srv_app *app;
static char store_dir[64];

static void setup(void) {
    srv_config_defaults(&cfg);
    static const char *const specs[] = {"long=long-seqcls", "short=short-seqcls"};
    for (int i = 0; i < 2; i++) {
        char spec[256];
        const char *eq = strchr(specs[i], '=');
        snprintf(spec, sizeof spec, "%.*s=%s/%s", (int)(eq - specs[i]), specs[i], g_tok_models,
                 eq + 1);
        ck_assert(srv_config_add_task(&cfg, spec, NULL) == ER_OK);
    }
    snprintf(store_dir, sizeof store_dir, "/tmp/erserve-long-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(store_dir));
    cfg.store_path = strdup(store_dir);
    cfg.store_dtype = (free(cfg.store_dtype), strdup("fp32"));
    cfg.batch_tokens = BATCH_TOKENS;
    cfg.batch_seqs = 8;
    cfg.workers = 2;
    cfg.quiet = true;
    ck_assert_int_eq(cfg.max_tokens, 0); /* the default: each model's positions */
    er_err err = {0};
    ck_assert_msg(srv_app_new(&cfg, &app, &err) == ER_OK, "%s", err.msg);
}

static void teardown(void) {
    srv_app_free(app);
    app = NULL;
    srv_config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", store_dir);
    (void)system(cmd);
}

typedef struct {
    int status;
    json_t *j;
    char *body;
} reply;

static reply call(const char *method, const char *path, const char *body) {
    srv_request rq = {.method = method, .path = path, .content_type = "application/json",
                      .request_id = "long-1", .body = body, .body_len = body ? strlen(body) : 0};
    srv_response r = {0};
    srv_app_handle_sync(app, &rq, &r);
    reply out = {r.status, r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL, r.body};
    return out;
}

static void done(reply *r) {
    json_decref(r->j);
    free(r->body);
}

/* {"inputs": [{"input_ids": [101, 1000, 1001, ...]} x n_inputs], "truncate": t}
 * with lens[i] ids each (ids < 1000 + len, inside the tokenizer's vocabulary). */
static char *ids_body(const int *lens, int n_inputs, bool truncate) {
    size_t cap = 64;
    for (int i = 0; i < n_inputs; i++) cap += 16 + 6 * (size_t)lens[i];
    char *b = malloc(cap), *p = b;
    p += sprintf(p, "{\"inputs\":[");
    for (int i = 0; i < n_inputs; i++) {
        p += sprintf(p, "%s{\"input_ids\":[101", i ? "," : "");
        for (int t = 1; t < lens[i]; t++) p += sprintf(p, ",%d", 1000 + (t * 7 + i) % 997);
        p += sprintf(p, "]}");
    }
    sprintf(p, "],\"truncate\":%s}", truncate ? "true" : "false");
    return b;
}

static reply predict(const char *task, const int *lens, int n, bool truncate) {
    char path[64];
    snprintf(path, sizeof path, "/v1/tasks/%s/predict", task);
    char *body = ids_body(lens, n, truncate);
    reply r = call("POST", path, body);
    free(body);
    return r;
}

static double score(const reply *r, int i) {
    json_t *res = json_array_get(json_object_get(r->j, "results"), (size_t)i);
    ck_assert_ptr_nonnull(res);
    return json_real_value(json_object_get(res, "score"));
}

static const char *cache_of(const reply *r, int i) {
    json_t *res = json_array_get(json_object_get(r->j, "results"), (size_t)i);
    return json_string_value(json_object_get(res, "cache"));
}

static int task_limit(json_t *tasks, const char *name) {
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        json_t *t = json_array_get(tasks, i);
        if (!strcmp(json_string_value(json_object_get(t, "name")), name))
            return (int)json_integer_value(json_object_get(t, "max_input_tokens"));
    }
    ck_abort_msg("no task %s", name);
    return -1;
}

START_TEST(limits_are_per_task) {
    reply r = call("GET", "/info", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(task_limit(json_object_get(r.j, "tasks"), "long"), LONG_POS);
    ck_assert_int_eq(task_limit(json_object_get(r.j, "tasks"), "short"), SHORT_POS);
    json_t *lim = json_object_get(r.j, "limits");
    ck_assert_int_eq(json_integer_value(json_object_get(lim, "max_input_tokens")), LONG_POS);
    ck_assert_int_eq(json_integer_value(json_object_get(lim, "batch_tokens")), BATCH_TOKENS);
    done(&r);
    r = call("GET", "/v1/tasks", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(task_limit(json_object_get(r.j, "tasks"), "long"), LONG_POS);
    ck_assert_int_eq(task_limit(json_object_get(r.j, "tasks"), "short"), SHORT_POS);
    done(&r);
}
END_TEST

/* Longer than --batch-tokens, within the model: served (and stored). */
START_TEST(longer_than_the_batch_is_served) {
    int lens[1] = {LONG_POS};
    reply a = predict("long", lens, 1, false);
    ck_assert_msg(a.status == 200, "%d %s", a.status, a.body);
    ck_assert_str_eq(cache_of(&a, 0), "miss");
    srv_app_flush(app);
    reply b = predict("long", lens, 1, false);
    ck_assert_int_eq(b.status, 200);
    ck_assert_str_eq(cache_of(&b, 0), "hit"); /* a 600-token value round trip */
    ck_assert(score(&a, 0) == score(&b, 0)); /* fp32 store: exact */
    done(&a);
    done(&b);
    /* long inputs between short ones in one request: each long one runs alone */
    int mixed[5] = {500, 10, 400, 20, 30};
    reply m = predict("long", mixed, 5, false);
    ck_assert_msg(m.status == 200, "%d %s", m.status, m.body);
    ck_assert_int_eq(json_array_size(json_object_get(m.j, "results")), 5);
    done(&m);
    /* the same input text as in a request of its own: the same answer */
    reply one = predict("long", mixed + 2, 1, false);
    ck_assert_int_eq(one.status, 200);
    done(&one);
}
END_TEST

/* Over the model's positions: 413 naming the task's limit, or truncated to
 * it when asked (the same answer as the first LONG_POS ids sent alone). */
START_TEST(longer_than_the_model) {
    int over[1] = {LONG_POS + 100}, exact[1] = {LONG_POS};
    reply r = predict("long", over, 1, false);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strstr(r.body, "more than 600"));
    done(&r);
    reply t = predict("long", over, 1, true);
    ck_assert_msg(t.status == 200, "%d %s", t.status, t.body);
    reply e = predict("long", exact, 1, true);
    ck_assert_int_eq(e.status, 200);
    ck_assert(score(&t, 0) == score(&e, 0));
    done(&t);
    done(&e);
    /* the short task keeps its own model's limit */
    int mid[1] = {SHORT_POS + 50};
    r = predict("short", mid, 1, false);
    ck_assert_int_eq(r.status, 413);
    ck_assert_ptr_nonnull(strstr(r.body, "more than 100"));
    done(&r);
    r = predict("long", mid, 1, false);
    ck_assert_int_eq(r.status, 200);
    done(&r);
    /* text: tokenized and truncated against the model's limit too */
    size_t n = 16 + 5 * (LONG_POS + 50);
    char *text = malloc(n + 64);
    strcpy(text, "{\"inputs\":\"");
    for (int i = 0; i < LONG_POS + 50; i++) strcat(text, "word ");
    strcat(text, "\",\"truncate\":false}");
    r = call("POST", "/v1/tasks/long/predict", text);
    ck_assert_int_eq(r.status, 413);
    done(&r);
    strcpy(strstr(text, "false"), "true}");
    r = call("POST", "/v1/tasks/long/predict", text);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    done(&r);
    free(text);
}
END_TEST

static Suite *long_suite(void) {
    const char *b = getenv("BUILD");
    const char *bin = b && *b ? b : "build";
    char args[96];
    snprintf(args, sizeof args, "--head seqcls --max-positions %d", LONG_POS);
    int bad = gen_tok_model(bin, "long-seqcls", args, TOKENIZER_JSON);
    snprintf(args, sizeof args, "--head seqcls --max-positions %d", SHORT_POS);
    bad = bad || gen_tok_model(bin, "short-seqcls", args, TOKENIZER_JSON);
    if (bad) {
        fprintf(stderr, "test_long_inputs: erserve-genmodel failed (build it first)\n");
        exit(1);
    }
    Suite *s = suite_create("long_inputs");
    TCase *tc = tcase_create("long_inputs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, limits_are_per_task);
    tcase_add_test(tc, longer_than_the_batch_is_served);
    tcase_add_test(tc, longer_than_the_model);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(long_suite)
