/* config.json and sentence-transformers pooling configs: every family, and
 * every refusal with a message that names the problem. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "config.h"

static er_status parse(const char *json, er_config *c, er_err *err) {
    return er_config_parse(json, strlen(json), c, err);
}

#define BERT_DIMS "\"vocab_size\": 100, \"hidden_size\": 12, \"num_hidden_layers\": 2, " \
                  "\"num_attention_heads\": 3, \"intermediate_size\": 20"

START_TEST(bert_classifier) {
    er_config c;
    er_err err;
    ck_assert_int_eq(parse("{\"architectures\": [\"BertForSequenceClassification\"], " BERT_DIMS
                           ", \"id2label\": {\"0\": \"neg\", \"1\": \"pos\"}, \"hidden_act\": \"gelu_new\","
                           " \"layer_norm_eps\": 1e-5, \"problem_type\": \"multi_label_classification\"}",
                           &c, &err), ER_OK);
    ck_assert_int_eq(c.arch, ER_ARCH_BERT);
    ck_assert_int_eq(c.head, ER_HEAD_SEQUENCE_CLASSIFICATION);
    ck_assert_int_eq(c.hidden_size, 12);
    ck_assert_int_eq(c.embedding_size, 12);
    ck_assert_int_eq(c.type_vocab_size, 2);
    ck_assert_int_eq(c.max_positions, 512);
    ck_assert_int_eq(c.act, ER_ACT_GELU_TANH);
    ck_assert_float_eq_tol(c.layer_norm_eps, 1e-5f, 1e-12f);
    ck_assert_int_eq(c.num_labels, 2);
    ck_assert_str_eq(c.labels[1], "pos");
    ck_assert(c.multi_label);
    er_config_free(&c);
    er_config_free(&c); /* idempotent */
    er_config_free(NULL);
}
END_TEST

START_TEST(families) {
    er_config c;
    er_err err;
    ck_assert_int_eq(parse("{\"architectures\": [\"XLMRobertaForTokenClassification\"], " BERT_DIMS
                           ", \"max_position_embeddings\": 34, \"pad_token_id\": 1}", &c, &err), ER_OK);
    ck_assert_int_eq(c.arch, ER_ARCH_ROBERTA);
    ck_assert_int_eq(c.num_labels, 2); /* default LABEL_0, LABEL_1 */
    ck_assert_str_eq(c.labels[0], "LABEL_0");
    er_config_free(&c);
    ck_assert_int_eq(parse("{\"architectures\": [\"DistilBertForQuestionAnswering\"], \"vocab_size\": 50,"
                           " \"dim\": 16, \"n_layers\": 2, \"n_heads\": 4, \"hidden_dim\": 32,"
                           " \"activation\": \"relu\"}", &c, &err), ER_OK);
    ck_assert_int_eq(c.arch, ER_ARCH_DISTILBERT);
    ck_assert_int_eq(c.type_vocab_size, 0);
    ck_assert_int_eq(c.act, ER_ACT_RELU);
    ck_assert_int_eq(c.num_labels, 2);
    er_config_free(&c);
    ck_assert_int_eq(parse("{\"architectures\": [\"ElectraForPreTraining\"], " BERT_DIMS
                           ", \"embedding_size\": 6}", &c, &err), ER_OK);
    ck_assert_int_eq(c.embedding_size, 6);
    ck_assert(c.is_electra_discriminator);
    ck_assert_int_eq(c.num_labels, 1);
    er_config_free(&c);
    /* no architectures: the base model of model_type */
    ck_assert_int_eq(parse("{\"model_type\": \"bert\", " BERT_DIMS "}", &c, &err), ER_OK);
    ck_assert_int_eq(c.head, ER_HEAD_EMBEDDING);
    ck_assert_int_eq(c.pooling, ER_POOLING_MEAN);
    er_config_free(&c);
}
END_TEST

START_TEST(refusals) {
    er_config c;
    er_err err;
    ck_assert_int_eq(parse("{\"architectures\": [\"GPT2LMHeadModel\"]}", &c, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "GPT2LMHeadModel"));
    ck_assert_int_eq(parse("{\"architectures\": [\"BertForPreTraining\"], " BERT_DIMS "}", &c, &err),
                     ER_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse("{\"model_type\": \"t5\"}", &c, &err), ER_ERR_UNSUPPORTED);
    ck_assert_int_eq(parse("{\"architectures\": [\"BertModel\"], " BERT_DIMS ", \"hidden_act\": \"swish\"}",
                           &c, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "swish"));
    ck_assert_int_eq(parse("{\"architectures\": [\"BertModel\"], " BERT_DIMS
                           ", \"position_embedding_type\": \"relative_key\"}", &c, &err),
                     ER_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(malformed) {
    er_config c;
    er_err err;
    ck_assert_int_eq(parse("{\"architectures\": [\"BertModel\"], \"hidden_size\": 12}", &c, &err),
                     ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "vocab_size"));
    ck_assert_int_eq(parse("{\"architectures\": [\"BertModel\"], \"vocab_size\": 100, \"hidden_size\": 10,"
                           " \"num_hidden_layers\": 2, \"num_attention_heads\": 3, \"intermediate_size\": 8}",
                           &c, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "multiple"));
    ck_assert_int_eq(parse("{\"architectures\": [\"BertModel\"], \"vocab_size\": 1000000000000, "
                           "\"hidden_size\": 12, \"num_hidden_layers\": 2, \"num_attention_heads\": 3, "
                           "\"intermediate_size\": 8}", &c, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"architectures\": [\"BertModel\"], \"vocab_size\": \"100\", "
                           "\"hidden_size\": 12}", &c, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"architectures\": [\"BertModel\"], " BERT_DIMS ", \"layer_norm_eps\": -1}",
                           &c, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"architectures\": [\"BertForSequenceClassification\"], " BERT_DIMS
                           ", \"id2label\": {\"0\": \"a\", \"2\": \"b\"}}", &c, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "id2label"));
    ck_assert_int_eq(parse("{\"architectures\": []}", &c, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("[]", &c, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"model_type\": \"bert\", \"model_type\": \"bert\"}", &c, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"archi", &c, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{}", &c, &err), ER_ERR_FORMAT);
}
END_TEST

START_TEST(pooling_configs) {
    er_config c = {0};
    er_err err;
    const char *cls = "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": false}";
    ck_assert_int_eq(er_config_parse_pooling(cls, strlen(cls), &c, &err), ER_OK);
    ck_assert_int_eq(c.pooling, ER_POOLING_CLS);
    const char *mx = "{\"pooling_mode_max_tokens\": true}";
    ck_assert_int_eq(er_config_parse_pooling(mx, strlen(mx), &c, &err), ER_OK);
    ck_assert_int_eq(c.pooling, ER_POOLING_MAX);
    const char *two = "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": true}";
    ck_assert_int_eq(er_config_parse_pooling(two, strlen(two), &c, &err), ER_ERR_UNSUPPORTED);
    const char *sq = "{\"pooling_mode_mean_tokens\": true, \"pooling_mode_mean_sqrt_len_tokens\": true}";
    ck_assert_int_eq(er_config_parse_pooling(sq, strlen(sq), &c, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "sqrt"));
    ck_assert_int_eq(er_config_parse_pooling("nope", 4, &c, &err), ER_ERR_FORMAT);
    static const struct { const char *json; er_pooling want; } OK[] = {
        {"{\"pooling_mode_weightedmean_tokens\": true, \"include_prompt\": true}",
         ER_POOLING_WEIGHTED_MEAN},
        {"{\"pooling_mode_lasttoken\": true, \"pooling_mode_mean_tokens\": false}",
         ER_POOLING_LAST_TOKEN},
        {"{\"pooling_mode_mean_sqrt_len_tokens\": true}", ER_POOLING_MEAN_SQRT_LEN},
        {"{\"embedding_dimension\": 8, \"pooling_mode\": \"lasttoken\"}", ER_POOLING_LAST_TOKEN},
        {"{\"pooling_mode\": \"weightedmean\"}", ER_POOLING_WEIGHTED_MEAN},
        {"{\"pooling_mode\": [\"mean_sqrt_len_tokens\"]}", ER_POOLING_MEAN_SQRT_LEN},
    };
    for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++) {
        c.pooling = ER_POOLING_CLS;
        ck_assert_msg(er_config_parse_pooling(OK[i].json, strlen(OK[i].json), &c, &err) == ER_OK,
                      "%s: %s", OK[i].json, err.msg);
        ck_assert_int_eq(c.pooling, OK[i].want);
    }
    /* refused by name */
    static const struct { const char *json, *named; } NO[] = {
        {"{\"pooling_mode_lasttoken\": true, \"include_prompt\": false}", "include_prompt"},
        {"{\"pooling_mode\": \"attention\"}", "attention"},
        {"{\"pooling_mode\": [\"cls\", \"mean\"]}", "pooling_mode"},
        {"{\"pooling_mode_lasttoken\": true, \"pooling_mode_cls_token\": true}",
         "pooling_mode_lasttoken"},
        {"{}", "0 are"},
    };
    for (size_t i = 0; i < sizeof NO / sizeof NO[0]; i++) {
        ck_assert_int_eq(er_config_parse_pooling(NO[i].json, strlen(NO[i].json), &c, &err),
                         ER_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(err.msg, NO[i].named), "%s: %s", NO[i].json, err.msg);
    }
}
END_TEST

static er_status dense(const char *json, er_config *c, er_err *err) {
    return er_config_parse_dense(json, strlen(json), "2_Dense", c, err);
}

START_TEST(dense_configs) {
    er_config c = {0};
    c.hidden_size = 12;
    er_err err;
    ck_assert_int_eq(dense("{\"in_features\": 12, \"out_features\": 30, \"bias\": true, "
                           "\"activation_function\": \"torch.nn.modules.activation.Tanh\"}",
                           &c, &err), ER_OK);
    ck_assert_int_eq(c.st.n_dense, 1);
    ck_assert_int_eq(c.st.dense[0].out_features, 30);
    ck_assert(c.st.dense[0].bias);
    ck_assert_int_eq(c.st.dense[0].act, ER_DENSE_TANH);
    ck_assert_str_eq(c.st.dense[0].path, "2_Dense");
    /* the next one takes the previous one's width; bias and act defaults */
    ck_assert_int_eq(dense("{\"in_features\": 30, \"out_features\": 7, \"bias\": false, "
                           "\"activation_function\": \"torch.nn.modules.linear.Identity\"}",
                           &c, &err), ER_OK);
    ck_assert_int_eq(c.st.dense[1].act, ER_DENSE_IDENTITY);
    ck_assert(!c.st.dense[1].bias);
    ck_assert_int_eq(dense("{\"in_features\": 12, \"out_features\": 7}", &c, &err),
                     ER_ERR_FORMAT); /* the module before gives 7 */
    ck_assert_ptr_nonnull(strstr(err.msg, "in_features"));
    ck_assert_int_eq(dense("{\"in_features\": 7}", &c, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "out_features"));
    ck_assert_int_eq(dense("{\"in_features\": 7, \"out_features\": 3, \"activation_function\": "
                           "\"torch.nn.modules.activation.Softplus\"}", &c, &err),
                     ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "Softplus"));
    ck_assert_int_eq(dense("{\"in_features\": 7, \"out_features\": 3, \"module_input_name\": "
                           "\"token_embeddings\"}", &c, &err), ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "module_input_name"));
    ck_assert_int_eq(dense("{\"in_features\": 7, \"out_features\": 3, \"bias\": 1}", &c, &err),
                     ER_ERR_FORMAT);
    ck_assert_int_eq(dense("[1]", &c, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(c.st.n_dense, 2); /* refusals added nothing */
    ck_assert_int_eq(dense("{\"in_features\": 7, \"out_features\": 5}", &c, &err), ER_OK);
    ck_assert_int_eq(c.st.dense[2].act, ER_DENSE_TANH); /* Dense's default */
    ck_assert(c.st.dense[2].bias);
}
END_TEST

START_TEST(masked_lm_heads) {
    er_config c;
    er_err err;
    ck_assert_int_eq(parse("{\"architectures\": [\"BertForMaskedLM\"], " BERT_DIMS "}", &c, &err),
                     ER_OK);
    ck_assert_int_eq(c.head, ER_HEAD_SPARSE_EMBEDDING);
    ck_assert_str_eq(er_head_type_name(c.head), "sparse_embedding");
    ck_assert(!er_head_per_token(c.head));
    er_config_free(&c);
    ck_assert_int_eq(parse("{\"architectures\": [\"XLMRobertaForMaskedLM\"], " BERT_DIMS
                           ", \"pad_token_id\": 1}", &c, &err), ER_OK);
    ck_assert_int_eq(c.arch, ER_ARCH_ROBERTA);
    ck_assert_int_eq(c.head, ER_HEAD_SPARSE_EMBEDDING);
    er_config_free(&c);
    ck_assert_int_eq(parse("{\"architectures\": [\"ElectraForMaskedLM\"], " BERT_DIMS "}", &c, &err),
                     ER_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "ElectraForMaskedLM"));
}
END_TEST

START_TEST(model_directories) {
    er_config c;
    er_err err;
    ck_assert_int_eq(er_config_load_dir("tests/fixtures/models/minilm-embed", &c, &err), ER_OK);
    ck_assert_int_eq(c.pooling, ER_POOLING_MEAN);
    ck_assert(c.normalize);
    er_config_free(&c);
    ck_assert_int_eq(er_config_load_dir("tests/fixtures/models/bert-embed-cls", &c, &err), ER_OK);
    ck_assert_int_eq(c.pooling, ER_POOLING_CLS);
    ck_assert(!c.normalize);
    er_config_free(&c);
    ck_assert_int_eq(er_config_load_dir("tests/fixtures/models/bert-embed-max", &c, &err), ER_OK);
    ck_assert_int_eq(c.pooling, ER_POOLING_MAX);
    er_config_free(&c);
    ck_assert_int_eq(er_config_load_dir("tests/fixtures/models/bert-embed-dense", &c, &err), ER_OK);
    ck_assert_int_eq(c.st.n_dense, 2);
    ck_assert_int_eq(c.st.dense[0].in_features, 36);
    ck_assert_int_eq(c.st.dense[1].out_features, 20);
    ck_assert_str_eq(c.st.dense[1].path, "3_Dense");
    ck_assert(c.normalize);
    er_config_free(&c);
    ck_assert_int_eq(er_config_load_dir("tests/fixtures/models/bert-embed-lasttoken", &c, &err), ER_OK);
    ck_assert_int_eq(c.pooling, ER_POOLING_LAST_TOKEN);
    ck_assert_int_eq(c.st.n_dense, 1);
    er_config_free(&c);
    ck_assert_int_eq(er_config_load_dir("/nonexistent", &c, &err), ER_ERR_NOT_FOUND);
}
END_TEST

/* modules.json: Pooling, Dense..., Normalize in that order, nothing else. */
START_TEST(module_order) {
    static const char *const BAD[] = {
        "[{\"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"},"
        " {\"type\": \"sentence_transformers.models.Pooling\", \"path\": \"1_Pooling\"},"
        " {\"type\": \"sentence_transformers.models.Normalize\", \"path\": \"4_Normalize\"},"
        " {\"type\": \"sentence_transformers.models.Dense\", \"path\": \"2_Dense\"}]",
        "[{\"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"},"
        " {\"type\": \"sentence_transformers.models.Dense\", \"path\": \"2_Dense\"}]",
        "[{\"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"},"
        " {\"type\": \"sentence_transformers.models.Pooling\", \"path\": \"1_Pooling\"},"
        " {\"type\": \"sentence_transformers.models.LayerNorm\", \"path\": \"2_LayerNorm\"}]",
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char dir[] = "/tmp/erserve-modules-XXXXXX", cmd[256], path[128];
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(cmd, sizeof cmd, "cp -r tests/fixtures/models/bert-embed-dense/. %s/", dir);
        ck_assert_int_eq(system(cmd), 0);
        snprintf(path, sizeof path, "%s/modules.json", dir);
        FILE *f = fopen(path, "w");
        fputs(BAD[i], f);
        fclose(f);
        er_config c;
        er_err err;
        ck_assert_int_eq(er_config_load_dir(dir, &c, &err), ER_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(err.msg, "sentence_transformers.models."), "%s", err.msg);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, bert_classifier);
    tcase_add_test(tc, families);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, pooling_configs);
    tcase_add_test(tc, model_directories);
    tcase_add_test(tc, dense_configs);
    tcase_add_test(tc, masked_lm_heads);
    tcase_add_test(tc, module_order);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(config_suite)
