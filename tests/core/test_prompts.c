/* config_sentence_transformers.json prompts: the map, the default name, and
 * every refusal naming its field. */
#include <stdio.h>
#include <string.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "st_prompts.h"

static er_status parse(const char *json, er_prompts *p, er_err *err) {
    return er_prompts_parse(json, strlen(json), p, err);
}

/* As sentence-transformers 3 writes it for e5 / bge style models. */
START_TEST(prompts_and_default) {
    er_prompts p;
    er_err err;
    ck_assert_int_eq(parse("{\"__version__\": {\"sentence_transformers\": \"3.0.1\"}, "
                           "\"prompts\": {\"query\": \"query: \", \"passage\": \"passage: \"}, "
                           "\"default_prompt_name\": \"query\", \"similarity_fn_name\": \"cosine\"}",
                           &p, &err), ER_OK);
    ck_assert_int_eq(p.n, 2);
    ck_assert_str_eq(er_prompts_get(&p, "query"), "query: ");
    ck_assert_str_eq(er_prompts_get(&p, "passage"), "passage: ");
    ck_assert_ptr_null(er_prompts_get(&p, "Query"));
    ck_assert_ptr_null(er_prompts_get(&p, NULL));
    ck_assert_str_eq(p.default_name, "query");
    er_prompts_free(&p);
    /* no prompts at all, or an empty map and a null default */
    ck_assert_int_eq(parse("{}", &p, &err), ER_OK);
    ck_assert_int_eq(p.n, 0);
    ck_assert_ptr_null(p.default_name);
    er_prompts_free(&p);
    ck_assert_int_eq(parse("{\"prompts\": {}, \"default_prompt_name\": null}", &p, &err), ER_OK);
    ck_assert_int_eq(p.n, 0);
    ck_assert_ptr_null(p.default_name);
    er_prompts_free(&p);
}
END_TEST

START_TEST(refusals) {
    er_prompts p;
    er_err err;
    static const struct {
        const char *json, *names;
    } bad[] = {
        {"{\"prompts\": [\"query: \"]}", "`prompts`"},
        {"{\"prompts\": {\"query\": 3}}", "`prompts.query`"},
        {"{\"prompts\": {\"q\": \"q: \"}, \"default_prompt_name\": \"query\"}", "`default_prompt_name` `query`"},
        {"{\"prompts\": {\"q\": \"q: \"}, \"default_prompt_name\": 1}", "`default_prompt_name`"},
        {"{\"default_prompt_name\": \"q\"}", "`default_prompt_name` `q`"},
        {"[1]", "not a JSON object"},
        {"{\"prompts\": ", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(parse(bad[i].json, &p, &err), ER_ERR_FORMAT);
        ck_assert_msg(strstr(err.msg, bad[i].names), "case %zu: %s", i, err.msg);
        ck_assert_int_eq(p.n, 0); /* nothing left to free */
        ck_assert_ptr_null(p.names);
    }
}
END_TEST

START_TEST(directories) {
    char dir[128], path[256];
    er_test_mkdtemp(dir, sizeof dir, "prompts");
    er_prompts p;
    er_err err;
    ck_assert_int_eq(er_prompts_load_dir(dir, &p, &err), ER_OK); /* no file: no prompts */
    ck_assert_int_eq(p.n, 0);
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"prompts\": {\"query\": \"Represent this sentence: \"}, \"default_prompt_name\": null}", f);
    fclose(f);
    ck_assert_int_eq(er_prompts_load_dir(dir, &p, &err), ER_OK);
    ck_assert_int_eq(p.n, 1);
    ck_assert_str_eq(er_prompts_get(&p, "query"), "Represent this sentence: ");
    er_prompts_free(&p);
    f = fopen(path, "w");
    fputs("{\"prompts\": {\"query\": null}}", f);
    fclose(f);
    ck_assert_int_eq(er_prompts_load_dir(dir, &p, &err), ER_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "config_sentence_transformers.json") && strstr(err.msg, "`prompts.query`"),
                  "%s", err.msg);
    er_prompts_free(&p); /* zeroed: accepted */
    er_prompts_free(NULL);
    er_test_rmtree(dir);
}
END_TEST

static Suite *prompts_suite(void) {
    Suite *s = suite_create("st_prompts");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, prompts_and_default);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, directories);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(prompts_suite)
