/* Tasks added and removed while serving (handlers_tasks.c), in process: a
 * LoRA or bottleneck adapter task POSTed at run time answers its first
 * request on a document the base warmed from the store ("cache": "hit");
 * paths must stay under --model-root (.., symlinks out); DELETE; SIGHUP's
 * re-read task list; adapter tasks given on the command line. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "app.h"
#include "gemm.h"
#include "server_config.h"

#define TOKENIZER_JSON "tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json"
#define IDS "{\"inputs\":{\"input_ids\":[2,40,77,9,120,3]}}"

static srv_config cfg;
static srv_app *app;
static char root[64], store[128];

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

static void setup(void) {
    snprintf(root, sizeof root, "/tmp/erserve-tasks-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    sh("cp -r tests/fixtures/models/bert-seqcls tests/fixtures/models/lora-bert-seqcls %s%s", root,
       "");
    /* the Pfeiffer fixture without its layer-0 block: all above the cut (1) */
    sh("python3 tests/core/bn_edit.py tests/fixtures/models/bn-bert-pfeiffer %s/bn-bert-up "
       "config leave_out '[0]' drop layer.0.%s", root, "");
    snprintf(store, sizeof store, "%s/store", root);
    srv_config_defaults(&cfg);
    char spec[256];
    snprintf(spec, sizeof spec, "base=%s/bert-seqcls", root);
    ck_assert(srv_config_add_task(&cfg, spec, NULL) == ER_OK);
    cfg.tokenizer = strdup(TOKENIZER_JSON);
    cfg.store_path = strdup(store);
    cfg.store_dtype = (free(cfg.store_dtype), strdup("fp32"));
    cfg.model_root = strdup(root);
    cfg.workers = 1;
    cfg.quiet = true;
    er_err err = {0};
    ck_assert_msg(srv_app_new(&cfg, &app, &err) == ER_OK, "%s", err.msg);
}

static void teardown(void) {
    srv_app_free(app);
    srv_config_free(&cfg);
    sh("rm -rf %s%s", root, "");
}

typedef struct {
    int status;
    json_t *j;
} reply;

static reply call(const char *method, const char *path, const char *body) {
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    srv_request rq = {.method = method, .path = path, .content_type = "application/json",
                      .body = body, .body_len = body ? strlen(body) : 0,
                      .client_addr = (const struct sockaddr *)&lo};
    srv_response r;
    srv_app_handle_sync(app, &rq, &r);
    reply out = {r.status, r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL};
    free(r.body);
    return out;
}

static const char *result(const reply *r, const char *key) {
    json_t *res = json_array_get(json_object_get(r->j, "results"), 0);
    return json_string_value(json_object_get(res, key));
}

static double score0(const reply *r) {
    json_t *res = json_array_get(json_object_get(r->j, "results"), 0);
    return json_real_value(json_object_get(json_object_get(res, "scores"), "negative"));
}

static void expect(reply r, int status, const char *word) {
    const char *msg = json_string_value(json_object_get(json_object_get(r.j, "error"), "message"));
    ck_assert_msg(r.status == status && (!word || (msg && strstr(msg, word))), "want %d (%s), got "
                  "%d: %s", status, word ? word : "", r.status, msg ? msg : "");
    json_decref(r.j);
}

START_TEST(added_task_hits_the_warmed_store) {
    reply r = call("POST", "/v1/tasks/base/predict", IDS);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(result(&r, "cache"), "miss");
    double base = score0(&r);
    json_decref(r.j);
    srv_app_flush(app);

    r = call("POST", "/v1/tasks", "{\"name\":\"lora\",\"path\":\"lora-bert-seqcls\"}");
    ck_assert_int_eq(r.status, 201);
    ck_assert_int_eq(json_integer_value(json_object_get(r.j, "lower_stacks")), 1);
    json_decref(r.j);
    r = call("POST", "/v1/tasks/lora/predict", IDS);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(result(&r, "cache"), "hit"); /* its first call */
    ck_assert(fabs(score0(&r) - base) > 1e-3);     /* and its own answer */
    json_decref(r.j);
    r = call("GET", "/v1/tasks", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r.j, "tasks")), 2);
    json_decref(r.j);

    expect(call("POST", "/v1/tasks", "{\"name\":\"lora\",\"path\":\"lora-bert-seqcls\"}"), 409,
           "already served");
    r = call("DELETE", "/v1/tasks/lora", NULL);
    ck_assert_int_eq(r.status, 200);
    json_decref(r.j);
    expect(call("POST", "/v1/tasks/lora/predict", IDS), 404, "lora");
    expect(call("DELETE", "/v1/tasks/lora", NULL), 404, "lora");
    r = call("GET", "/v1/tasks", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r.j, "tasks")), 1);
    json_decref(r.j);
}
END_TEST

/* The same for an AdapterHub bottleneck adapter (Pfeiffer, its own head). */
START_TEST(added_bottleneck_task_hits) {
    reply r = call("POST", "/v1/tasks/base/predict", IDS);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(result(&r, "cache"), "miss");
    json_decref(r.j);
    srv_app_flush(app);
    r = call("POST", "/v1/tasks", "{\"name\":\"bn\",\"path\":\"bn-bert-up\"}");
    ck_assert_int_eq(r.status, 201);
    ck_assert_int_eq(json_integer_value(json_object_get(r.j, "lower_stacks")), 1);
    json_decref(r.j);
    r = call("POST", "/v1/tasks/bn/predict", IDS);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(result(&r, "cache"), "hit"); /* its first call */
    json_t *res = json_array_get(json_object_get(r.j, "results"), 0);
    ck_assert_int_eq(json_object_size(json_object_get(res, "scores")), 3); /* its head's labels */
    ck_assert_ptr_nonnull(json_object_get(json_object_get(res, "scores"), "neutral"));
    json_decref(r.j);
    r = call("DELETE", "/v1/tasks/bn", NULL);
    ck_assert_int_eq(r.status, 200);
    json_decref(r.j);
}
END_TEST

/* Bottleneck and LoRA adapter tasks given as command-line task specs. */
START_TEST(adapter_tasks_on_the_command_line) {
    srv_config c;
    srv_config_defaults(&c);
    char spec[256];
    const char *names[] = {"base=%s/bert-seqcls", "bn=%s/bn-bert-up", "lora=%s/lora-bert-seqcls"};
    for (int i = 0; i < 3; i++) {
        snprintf(spec, sizeof spec, names[i], root);
        ck_assert(srv_config_add_task(&c, spec, NULL) == ER_OK);
    }
    c.tokenizer = strdup(TOKENIZER_JSON);
    c.model_root = strdup(root);
    c.workers = 1;
    c.quiet = true;
    srv_app *a2;
    er_err err = {0};
    ck_assert_msg(srv_app_new(&c, &a2, &err) == ER_OK, "%s", err.msg);
    srv_app *keep = app;
    app = a2;
    reply r = call("POST", "/v1/tasks/bn/predict", IDS);
    ck_assert_int_eq(r.status, 200);
    json_decref(r.j);
    r = call("GET", "/v1/tasks", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r.j, "tasks")), 3);
    json_decref(r.j);
    app = keep;
    srv_app_free(a2);
    srv_config_free(&c);
}
END_TEST

START_TEST(paths_stay_under_the_root) {
    expect(call("POST", "/v1/tasks", "{\"name\":\"x\",\"path\":\"../\"}"), 403, "outside");
    expect(call("POST", "/v1/tasks", "{\"name\":\"x\",\"path\":\"/etc\"}"), 403, "outside");
    char cwd[PATH_MAX], link[PATH_MAX + 64];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(link, sizeof link, "%s/tests/fixtures/models/lora-bert-seqcls", cwd);
    sh("ln -s %s %s/escape", link, root);
    expect(call("POST", "/v1/tasks", "{\"name\":\"x\",\"path\":\"escape\"}"), 403, "links");
    expect(call("POST", "/v1/tasks", "{\"name\":\"x\",\"path\":\"nope\"}"), 403, "does not exist");
    expect(call("POST", "/v1/tasks", "{\"name\":\"x\"}"), 400, "path");
    expect(call("POST", "/v1/tasks", "{\"name\":\"x\",\"path\":\"bert-seqcls\",\"cut\":-1}"), 400,
           "cut");
    expect(call("POST", "/v1/tasks", "{\"name\":\"bad name\",\"path\":\"bert-seqcls\"}"), 422,
           "name");
    /* an adapter's base must be under the root too */
    sh("mkdir %s/out && cp tests/fixtures/models/lora-bert-seqcls/* %s/out", root, root);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sed -i 's|\"bert-seqcls\"|\"/tmp\"|' %s/out/adapter_config.json",
             root);
    ck_assert_int_eq(system(cmd), 0);
    expect(call("POST", "/v1/tasks", "{\"name\":\"x\",\"path\":\"out\"}"), 422, "outside");
}
END_TEST

START_TEST(sighup_rereads_tasks) {
    char conf[128], json[512];
    snprintf(conf, sizeof conf, "%s/erserve.json", root);
    snprintf(json, sizeof json, "{\"tasks\": {\"base\": \"%s/bert-seqcls\", \"extra\": "
             "\"%s/lora-bert-seqcls\", \"bn\": \"%s/bn-bert-up\"}}", root, root, root);
    FILE *f = fopen(conf, "w");
    fputs(json, f);
    fclose(f);
    char *argv[] = {"erserve", "--config", conf, "--tokenizer", TOKENIZER_JSON, NULL};
    er_err err = {0};
    ck_assert_int_eq(srv_app_reload(app, 5, argv, &err), 2); /* extra and bn added */
    reply r = call("POST", "/v1/tasks/extra/predict", IDS);
    ck_assert_int_eq(r.status, 200);
    json_decref(r.j);
    r = call("POST", "/v1/tasks/bn/predict", IDS);
    ck_assert_int_eq(r.status, 200);
    json_decref(r.j);
    f = fopen(conf, "w");
    fprintf(f, "{\"tasks\": {\"base\": \"%s/bert-seqcls\"}}", root);
    fclose(f);
    ck_assert_int_eq(srv_app_reload(app, 5, argv, &err), 2); /* and removed */
    expect(call("POST", "/v1/tasks/extra/predict", IDS), 404, "extra");
    expect(call("POST", "/v1/tasks/bn/predict", IDS), 404, "bn");
    f = fopen(conf, "w");
    fputs("{not json", f);
    fclose(f);
    ck_assert_int_eq(srv_app_reload(app, 5, argv, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, conf));
}
END_TEST

/* The compute mode of the task in GET /v1/tasks, or NULL. */
static const char *listed_compute(const char *name) {
    static char mode[8];
    reply r = call("GET", "/v1/tasks", NULL);
    size_t i;
    json_t *t;
    mode[0] = 0;
    json_array_foreach(json_object_get(r.j, "tasks"), i, t)
        if (!strcmp(json_string_value(json_object_get(t, "name")), name))
            snprintf(mode, sizeof mode, "%s", json_string_value(json_object_get(t, "compute")));
    json_decref(r.j);
    return mode[0] ? mode : NULL;
}

/* Tasks added at run time compute in the mode asked for ("compute", or the
 * "@MODE" of a re-read --config), not always fp32. */
START_TEST(added_tasks_keep_their_compute_mode) {
    expect(call("POST", "/v1/tasks",
                "{\"name\":\"x\",\"path\":\"bert-seqcls\",\"compute\":\"fp16\"}"), 400, "compute");
    const char *mode = er_gemm_supports(ER_GEMM_INT8, NULL) ? "int8" : "fp32";
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"q\",\"path\":\"bert-seqcls\",\"compute\":\"%s\"}",
             mode);
    reply r = call("POST", "/v1/tasks", body);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(json_string_value(json_object_get(r.j, "compute")), mode);
    /* another mode is another lower stack (its fingerprint covers the mode) */
    ck_assert_int_eq(json_integer_value(json_object_get(r.j, "lower_stacks")),
                     strcmp(mode, "fp32") ? 2 : 1);
    json_decref(r.j);
    ck_assert_str_eq(listed_compute("q"), mode);
    ck_assert_str_eq(listed_compute("base"), "fp32");

    char conf[128];
    snprintf(conf, sizeof conf, "%s/erserve.json", root);
    FILE *f = fopen(conf, "w");
    fprintf(f, "{\"tasks\": {\"base\": \"%s/bert-seqcls\", \"extra\": \"%s/bert-seqcls@%s\"}}", root,
            root, mode);
    fclose(f);
    char *argv[] = {"erserve", "--config", conf, "--tokenizer", TOKENIZER_JSON, NULL};
    er_err err = {0};
    ck_assert_int_eq(srv_app_reload(app, 5, argv, &err), 1);
    ck_assert_str_eq(listed_compute("extra"), mode);
    if (strcmp(mode, "fp32")) { /* the same task in another mode is a change: replaced */
        f = fopen(conf, "w");
        fprintf(f, "{\"tasks\": {\"base\": \"%s/bert-seqcls\", \"extra\": \"%s/bert-seqcls\"}}",
                root, root);
        fclose(f);
        ck_assert_int_eq(srv_app_reload(app, 5, argv, &err), 2);
        ck_assert_str_eq(listed_compute("extra"), "fp32");
    } else {
        ER_SKIP("this host has no AVX512-VNNI: the int8 half of the check did not run");
    }
}
END_TEST

static Suite *tasks_suite(void) {
    Suite *s = suite_create("tasks");
    TCase *tc = tcase_create("admin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, added_task_hits_the_warmed_store);
    tcase_add_test(tc, added_bottleneck_task_hits);
    tcase_add_test(tc, adapter_tasks_on_the_command_line);
    tcase_add_test(tc, paths_stay_under_the_root);
    tcase_add_test(tc, sighup_rereads_tasks);
    tcase_add_test(tc, added_tasks_keep_their_compute_mode);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(tasks_suite)
