/* config.json and sentence-transformers pooling configs: every family, and
 * every refusal with a message that names the problem. */
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
    ck_assert_int_eq(parse("{\"architectures\": [\"BertForMaskedLM\"], " BERT_DIMS "}", &c, &err),
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
    ck_assert_int_eq(er_config_load_dir("/nonexistent", &c, &err), ER_ERR_NOT_FOUND);
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
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(config_suite)
