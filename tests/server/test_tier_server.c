/* The server with the memcached second tier, in process (no HTTP sockets;
 * a real memcached on a loopback port, skipped visibly without it): the
 * --memcached* options, --memcached without --store refused, two apps
 * sharing one pool (the second hits what the first computed, input by input
 * in a multi-input request), cache.tier in /info and /v1/cache, the
 * erserve_tier_* metrics, and a killed node's breaker seen in /metrics while
 * requests go on succeeding. */
#include <jansson.h>
#include <string.h>

#include "../check_main.h"
#include "../memcached_proc.h"
#include "app.h"
#include "server_config.h"
#include "server_test_util.h"

static void config_for(srv_config *c, const char *store, const char *servers) {
    srv_config_defaults(c);
    char spec[512];
    snprintf(spec, sizeof spec, "cls=%s/seqcls", g_models);
    ck_assert(srv_config_add_task(c, spec, NULL) == ER_OK);
    c->tokenizer = strdup(TOKENIZER_JSON);
    if (store) c->store_path = strdup(store);
    if (servers) c->memcached = strdup(servers);
    c->workers = 1;
    c->quiet = true;
}

static srv_response call(srv_app *a, const char *method, const char *path, const char *body) {
    static struct sockaddr_in lo; /* a loopback peer: /v1/cache answers it */
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv_request rq = {.method = method, .path = path, .request_id = "t",
                      .client_addr = (const struct sockaddr *)&lo,
                      .content_type = body ? "application/json" : NULL, .body = body,
                      .body_len = body ? strlen(body) : 0};
    srv_response r;
    srv_app_handle_sync(a, &rq, &r);
    return r;
}

/* The "cache" outcome of each result of a predict reply, as "hit,miss,...". */
static void outcomes(srv_app *a, const char *body, char *out, size_t n) {
    srv_response r = call(a, "POST", "/v1/tasks/cls/predict", body);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL), *res = json_object_get(j, "results");
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(res); i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? "," : "",
                 json_string_value(json_object_get(json_array_get(res, i), "cache")));
    json_decref(j);
    free(r.body);
}

START_TEST(test_options) {
    srv_config c;
    srv_config_defaults(&c);
    char *argv[] = {"erserve", "--memcached", "127.0.0.1:1,127.0.0.1:2", "--memcached-timeout-ms",
                    "30", "--memcached-failures", "3", "--memcached-cooldown-ms", "5000",
                    "--task", "cls=/nonexistent"};
    bool printed = false;
    er_err e = {0};
    ck_assert_msg(srv_config_load(&c, 11, argv, stdout, &printed, &e) == ER_OK, "%s", e.msg);
    ck_assert_str_eq(c.memcached, "127.0.0.1:1,127.0.0.1:2");
    ck_assert_int_eq(c.memcached_timeout_ms, 30);
    ck_assert_int_eq(c.memcached_failures, 3);
    ck_assert_int_eq(c.memcached_cooldown_ms, 5000);
    char *bad[] = {"erserve", "--memcached-cooldown-ms", "500", "--task", "cls=/nonexistent"};
    ck_assert_int_eq(srv_config_load(&c, 5, bad, stdout, &printed, &e), ER_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, "--memcached-cooldown-ms"));
    srv_config_free(&c);
    /* a tier needs a store */
    config_for(&c, NULL, "127.0.0.1:1");
    srv_app *a = NULL;
    ck_assert_int_eq(srv_app_new(&c, &a, &e), ER_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, "--store"));
    srv_config_free(&c);
}
END_TEST

START_TEST(test_two_apps_share_the_pool) {
    mc_proc m;
    int rc = mc_start(&m, 0);
    if (rc == 0) ER_SKIP("no memcached binary (apt-get install memcached)");
    ck_assert_int_eq(rc, 1);
    char servers[64], d1[64] = "/tmp/er_ts1_XXXXXX", d2[64] = "/tmp/er_ts2_XXXXXX", buf[256];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", m.port);
    ck_assert_ptr_nonnull(mkdtemp(d1));
    ck_assert_ptr_nonnull(mkdtemp(d2));
    srv_config c1, c2;
    config_for(&c1, d1, servers);
    config_for(&c2, d2, servers);
    srv_app *a1, *a2;
    er_err e = {0};
    ck_assert_msg(srv_app_new(&c1, &a1, &e) == ER_OK, "%s", e.msg);
    ck_assert_msg(srv_app_new(&c2, &a2, &e) == ER_OK, "%s", e.msg);
    outcomes(a1, "{\"inputs\": [\"first document\", \"second document\"]}", buf, sizeof buf);
    ck_assert_str_eq(buf, "miss,miss");
    /* replica 2: two from the pool, one new, in one request */
    outcomes(a2, "{\"inputs\": [\"second document\", \"a third\", \"first document\"]}", buf, sizeof buf);
    ck_assert_str_eq(buf, "hit,miss,hit");
    outcomes(a1, "{\"inputs\": \"a third\"}", buf, sizeof buf); /* computed by replica 2 */
    ck_assert_str_eq(buf, "hit");
    srv_response r = call(a2, "GET", "/info", NULL);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    json_t *tier = json_object_get(json_object_get(j, "cache"), "tier");
    ck_assert(json_is_true(json_object_get(tier, "enabled")));
    ck_assert_int_eq(json_integer_value(json_object_get(tier, "hits")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(tier, "sets")), 1);
    json_t *node = json_array_get(json_object_get(tier, "nodes"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(node, "node")), servers);
    ck_assert_str_eq(json_string_value(json_object_get(node, "breaker")), "closed");
    json_decref(j);
    free(r.body);
    /* the node dies: requests still succeed (computed), the breaker opens */
    mc_stop(&m, SIGKILL);
    outcomes(a2, "{\"inputs\": [\"new one\", \"new two\", \"new three\"]}", buf, sizeof buf);
    ck_assert_str_eq(buf, "miss,miss,miss");
    r = call(a2, "GET", "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    char want[128];
    snprintf(want, sizeof want, "erserve_tier_breaker_state{node=\"%s\"} 1", servers);
    ck_assert_msg(memmem(r.body, r.body_len, want, strlen(want)), "no '%s' in /metrics", want);
    ck_assert(memmem(r.body, r.body_len, "erserve_tier_breaker_opens_total 1", 34));
    free(r.body);
    r = call(a1, "GET", "/v1/cache", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(memmem(r.body, r.body_len, "\"tier\"", 6));
    free(r.body);
    srv_app_free(a1);
    srv_app_free(a2);
    srv_config_free(&c1);
    srv_config_free(&c2);
    snprintf(buf, sizeof buf, "rm -rf %s %s", d1, d2);
    ck_assert_int_eq(system(buf), 0);
}
END_TEST

static Suite *tier_server_suite(void) {
    const char *b = getenv("BUILD");
    if (gen_models(b && *b ? b : "build")) {
        fprintf(stderr, "test_tier_server: erserve-genmodel failed (build it first)\n");
        exit(1);
    }
    Suite *s = suite_create("server_tier");
    TCase *tc = tcase_create("tier");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_options);
    tcase_add_test(tc, test_two_apps_share_the_pool);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(tier_server_suite)
