/* The command-line tools end to end, as built ($BUILD/bin, default build/):
 * erserve-infer against the fixtures' goldens and its exit statuses,
 * erserve-tokenize, erserve-genmodel's determinism, erserve-cache's
 * commands on a real store.  A tool that is not built is a failure: make
 * test builds them before running the suites. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "er_util.h"
#include "recycle.h"
#include "safetensors.h"

#define BERT_TOKENIZER "tests/tokenizer/data/bert-base-uncased.tokenizer.json"
#define GOLDEN_BOUND 1e-4 /* |got - want| / max(1, |want|), as tests/core/test_encoder.c */

static char dir[64];

/* The path of a built tool; fails the test when it is not there. */
static const char *tool(const char *name) {
    static char path[512];
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    snprintf(path, sizeof path, "%s/bin/%s", build, name);
    ck_assert_msg(access(path, X_OK) == 0, "%s is not built (make builds it before the tests)", path);
    return path;
}

/* Runs a shell command; its exit status (-1 when it did not exit). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static json_t *load_json(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", path, je.text);
    return j;
}

/* Compares got against want, element by element (arrays of the same sizes
 * down to numbers); returns how many numbers were compared and raises
 * *worst to the largest relative error. */
static size_t compare(const json_t *got, const json_t *want, double *worst) {
    if (json_is_number(want)) {
        ck_assert_msg(json_is_number(got), "a number is missing from the output");
        double w = json_number_value(want), e = fabs(json_number_value(got) - w) / fmax(1.0, fabs(w));
        if (!(e <= *worst)) *worst = e; /* NaN propagates as a failure */
        return 1;
    }
    ck_assert_msg(json_is_array(want) && json_is_array(got), "not arrays");
    ck_assert_uint_eq(json_array_size(got), json_array_size(want));
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(want); i++)
        n += compare(json_array_get(got, i), json_array_get(want, i), worst);
    return n;
}

/* ---- erserve-infer ---- */

/* Runs erserve-infer on one golden case; returns its output (NULL when it failed). */
static json_t *infer(const char *model, const json_t *gcase, const char *mode) {
    char req[128], out[128];
    snprintf(req, sizeof req, "%s/req.json", dir);
    snprintf(out, sizeof out, "%s/out.json", dir);
    json_t *r = json_object();
    const char *fields[] = {"input_ids", "token_type_ids", "attention_mask"};
    for (int i = 0; i < 3; i++)
        if (json_object_get(gcase, fields[i]))
            json_object_set(r, fields[i], json_object_get(gcase, fields[i]));
    ck_assert_int_eq(json_dump_file(r, req, JSON_COMPACT), 0);
    json_decref(r);
    int rc = sh("%s --model tests/fixtures/models/%s %s < %s > %s", tool("erserve-infer"), model, mode,
                req, out);
    ck_assert_msg(rc == 0, "erserve-infer --model %s %s: exit %d", model, mode, rc);
    return load_json(out);
}

/* The golden head ({"type", then "logits" or its parts}) against erserve-infer's "logits". */
static size_t compare_head(const json_t *got, json_t *want, double *worst) {
    const json_t *logits = json_object_get(got, "logits");
    ck_assert_str_eq(json_string_value(json_object_get(got, "head")),
                     json_string_value(json_object_get(want, "type")));
    if (json_object_get(want, "logits")) return compare(logits, json_object_get(want, "logits"), worst);
    size_t n = 0;
    const char *key;
    json_t *part;
    json_object_foreach(want, key, part)
        if (strcmp(key, "type")) n += compare(json_object_get(logits, key), part, worst);
    return n;
}

static const char *const INFER_MODELS[] = {"bert-seqcls", "bert-tokcls", "bert-qa", "minilm-embed",
                                           "roberta-seqcls", "distilbert-qa", "nomic-embed",
                                           "gte-seqcls", "modernbert-tokcls",
                                           "modernbert-seqcls-mean", "deberta-v3-seqcls",
                                           "deberta-qa", "bert-embed-dense",
                                           "bert-splade"};

/* --layer K (the middle layer) and --head on every golden case of a model. */
START_TEST(test_infer_golden) {
    const char *model = INFER_MODELS[_i];
    er_test_mkdtemp(dir, sizeof dir, "tools");
    char path[256], mode[32];
    snprintf(path, sizeof path, "tests/fixtures/golden/%s.json", model);
    json_t *g = load_json(path);
    int K = (int)json_integer_value(json_object_get(g, "num_layers")) / 2;
    snprintf(mode, sizeof mode, "--layer %d", K);
    size_t ci, n_layer = 0, n_head = 0;
    double worst_layer = 0, worst_head = 0;
    json_t *cs;
    json_array_foreach(json_object_get(g, "cases"), ci, cs) {
        json_t *out = infer(model, cs, mode);
        n_layer += compare(json_object_get(out, "hidden_states"),
                           json_array_get(json_object_get(cs, "hidden_states"), (size_t)K), &worst_layer);
        json_decref(out);
        out = infer(model, cs, "--head");
        n_head += compare_head(out, json_object_get(cs, "head"), &worst_head);
        json_decref(out);
    }
    json_decref(g);
    ck_assert_uint_gt(n_layer, 0);
    ck_assert_uint_gt(n_head, 0);
    ck_assert_msg(worst_layer <= GOLDEN_BOUND, "%s layer %d: error %g", model, K, worst_layer);
    ck_assert_msg(worst_head <= GOLDEN_BOUND, "%s head: error %g", model, worst_head);
    er_test_rmtree(dir);
}
END_TEST

START_TEST(test_infer_exits) {
    const char *bin = tool("erserve-infer"), *m = "--model tests/fixtures/models/bert-seqcls";
    ck_assert_int_eq(sh("echo '{\"input_ids\": [[2, 5' | %s %s --head 2>/dev/null", bin, m), 1);
    ck_assert_int_eq(sh("echo '{\"input_ids\": [[2, 5, 3]], \"attention_mask\": [[0, 1, 1]]}' | "
                        "%s %s --head 2>/dev/null", bin, m), 1);
    ck_assert_int_eq(sh("echo '{\"input_ids\": [[2]]}' | %s %s --layer 99 2>/dev/null", bin, m), 1);
    ck_assert_int_eq(sh("%s --head </dev/null 2>/dev/null", bin), 2);                 /* no --model */
    ck_assert_int_eq(sh("%s %s --head --layer 1 </dev/null 2>/dev/null", bin, m), 2); /* both */
    ck_assert_int_eq(sh("%s %s --layer x </dev/null 2>/dev/null", bin, m), 2);
    ck_assert_int_eq(sh("%s --bogus </dev/null 2>/dev/null", bin), 2);
    ck_assert_int_eq(sh("echo '{\"input_ids\": [[2, 5, 3]]}' | %s %s --head --gemm nope "
                        "2>/dev/null >/dev/null", bin, m), 1);
    ck_assert_int_eq(sh("echo '{\"input_ids\": [[2, 5, 3]]}' | %s %s --head --gemm openblas "
                        ">/dev/null", bin, m), 0);
}
END_TEST

/* ---- --version, every tool ---- */

START_TEST(test_versions) {
    const char *tools[] = {"erserve-infer", "erserve-tokenize", "erserve-genmodel", "erserve-cache"};
    er_test_mkdtemp(dir, sizeof dir, "tools");
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(sh("%s --version > %s/v.txt", tool(tools[i]), dir), 0);
        ck_assert_int_eq(sh("grep -qx '%s %s' %s/v.txt", tools[i], ER_VERSION, dir), 0);
    }
    er_test_rmtree(dir);
}
END_TEST

/* ---- erserve-tokenize ---- */

static json_t *tokenize(const char *input, const char *args) {
    char out[128];
    snprintf(out, sizeof out, "%s/tok.json", dir);
    ck_assert_int_eq(sh("printf '%s' | %s --tokenizer " BERT_TOKENIZER " %s > %s", input,
                        tool("erserve-tokenize"), args, out), 0);
    return load_json(out);
}

START_TEST(test_tokenize) {
    er_test_mkdtemp(dir, sizeof dir, "tools");
    json_t *a = tokenize("{\"text\": \"Hello world\", \"text_pair\": \"again\"}", "");
    json_t *ids = json_loads("[101, 7592, 2088, 102, 2153, 102]", 0, NULL);
    json_t *types = json_loads("[0, 0, 0, 0, 1, 1]", 0, NULL);
    ck_assert(json_equal(json_object_get(a, "ids"), ids));
    ck_assert(json_equal(json_object_get(a, "type_ids"), types));
    ck_assert(json_is_false(json_object_get(a, "truncated")));
    json_t *b = tokenize("Hello world\\nagain\\n", "--pair"); /* raw text, one line each */
    ck_assert(json_equal(json_object_get(a, "ids"), json_object_get(b, "ids")));
    ck_assert(json_equal(json_object_get(a, "offsets"), json_object_get(b, "offsets")));
    json_t *c = tokenize("Hello world again", "--max-length 3");
    ck_assert_uint_eq(json_array_size(json_object_get(c, "ids")), 3);
    ck_assert(json_is_true(json_object_get(c, "truncated")));
    ck_assert_ptr_null(json_object_get(c, "overflowing"));
    /* windows of 2 words from the left, 1 repeated: [CLS] again world, ... */
    json_t *w = tokenize("one two three", "--max-length 4 --direction left --stride 1 --overflowing");
    json_t *want = json_loads("[101, 2048, 2093, 102]", 0, NULL);
    ck_assert(json_equal(json_object_get(w, "ids"), want));
    json_t *over = json_object_get(w, "overflowing");
    ck_assert_uint_eq(json_array_size(over), 1);
    json_decref(want);
    want = json_loads("[101, 2028, 2048, 102]", 0, NULL);
    ck_assert(json_equal(json_object_get(json_array_get(over, 0), "ids"), want));
    json_decref(want);
    json_decref(w);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(ids);
    json_decref(types);
    const char *bin = tool("erserve-tokenize");
    ck_assert_int_eq(sh("printf 'one line' | %s --tokenizer " BERT_TOKENIZER " --pair 2>/dev/null", bin), 1);
    ck_assert_int_eq(sh("printf 'x' | %s --tokenizer %s/none.json 2>/dev/null", bin, dir), 1);
    ck_assert_int_eq(sh("%s </dev/null 2>/dev/null", bin), 2); /* no --tokenizer */
    ck_assert_int_eq(sh("%s --tokenizer " BERT_TOKENIZER " --truncation sideways </dev/null 2>/dev/null", bin), 2);
    ck_assert_int_eq(sh("%s --tokenizer " BERT_TOKENIZER " --direction up </dev/null 2>/dev/null", bin), 2);
    ck_assert_int_eq(sh("printf 'a b c' | %s --tokenizer " BERT_TOKENIZER " --max-length 4 --stride 2 2>/dev/null",
                        bin), 1); /* stride not below the 2 tokens kept */
    er_test_rmtree(dir);
}
END_TEST

/* erserve-tokenize --decode with input on stdin: its stdout (the caller frees). */
static char *decode(const char *input, const char *args, int *rc) {
    char out[128];
    snprintf(out, sizeof out, "%s/dec.txt", dir);
    *rc = sh("printf '%s' | %s --tokenizer " BERT_TOKENIZER " --decode %s > %s 2>/dev/null", input,
             tool("erserve-tokenize"), args, out);
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    char *text = calloc(1, 4096);
    size_t n = fread(text, 1, 4095, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

START_TEST(test_tokenize_decode) {
    er_test_mkdtemp(dir, sizeof dir, "tools");
    int rc;
    char *a = decode("[101, 7592, 1010, 2088, 999, 102]", "", &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(a, "hello, world!\n"); /* WordPiece cleanup, [CLS]/[SEP] skipped */
    char *b = decode("[101, 7592, 102]", "--keep-special-tokens", &rc);
    ck_assert_str_eq(b, "[CLS] hello [SEP]\n");
    char *c = decode("{\"ids\": [[101, 7592, 102], [2088]], \"skip_special_tokens\": false}", "", &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(c, "[\"[CLS] hello [SEP]\",\"world\"]\n");
    char *d = decode("[7592, 30522]", "", &rc);
    ck_assert_int_eq(rc, 1); /* an id outside the vocabulary */
    char *e = decode("\"hello\"", "", &rc);
    ck_assert_int_eq(rc, 1);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    er_test_rmtree(dir);
}
END_TEST

/* ---- erserve-genmodel ---- */

static void genmodel(const char *out, const char *args) {
    ck_assert_int_eq(sh("%s --out %s/%s --preset tiny %s", tool("erserve-genmodel"), dir, out, args), 0);
}

START_TEST(test_genmodel) {
    er_test_mkdtemp(dir, sizeof dir, "tools");
    genmodel("a", "--head seqcls --seed 3");
    genmodel("b", "--head seqcls --seed 3");
    genmodel("c", "--head seqcls --seed 4");
    genmodel("emb", "--seed 3");
    ck_assert_int_eq(sh("cmp -s %s/a/model.safetensors %s/b/model.safetensors", dir, dir), 0);
    ck_assert_int_eq(sh("cmp -s %s/a/config.json %s/b/config.json", dir, dir), 0);
    ck_assert_int_ne(sh("cmp -s %s/a/model.safetensors %s/c/model.safetensors", dir, dir), 0);
    ck_assert_int_eq(sh("test -f %s/emb/modules.json && test -f %s/emb/1_Pooling/config.json", dir, dir), 0);
    /* what it writes loads */
    char path[128];
    snprintf(path, sizeof path, "%s/a", dir);
    er_model *m;
    er_err e;
    ck_assert_msg(er_model_load(path, NULL, &m, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_model_config(m)->num_layers, 4);
    er_model_free(m);
    const char *bin = tool("erserve-genmodel");
    ck_assert_int_eq(sh("%s --out %s/d --preset huge 2>/dev/null", bin, dir), 2);
    ck_assert_int_eq(sh("%s --out %s/d --head poem 2>/dev/null", bin, dir), 2);
    ck_assert_int_eq(sh("%s --preset tiny 2>/dev/null", bin), 2); /* no --out */
    er_test_rmtree(dir);
}
END_TEST

/* The largest |narrow - fp32| / |fp32| over t's elements against the same
 * tensor of the F32 file (or, below the normal range, / 2^-14). */
static double rounding_error(const er_st_tensor *t, const er_st_tensor *ref) {
    ck_assert_int_eq(t->numel, ref->numel);
    float *a = malloc((size_t)t->numel * sizeof *a), *b = malloc((size_t)t->numel * sizeof *b);
    ck_assert(a && b && er_st_to_f32(t, a, NULL) == ER_OK && er_st_to_f32(ref, b, NULL) == ER_OK);
    double worst = 0;
    for (int64_t i = 0; i < t->numel; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]) / fmax(fabs((double)b[i]), 0x1p-14));
    free(a);
    free(b);
    return worst;
}

/* --dtype fp16|bf16: every tensor stored in that dtype, each value the F32
 * checkpoint's rounded to nearest (within half a unit in the last place),
 * and the directory loads; an unknown dtype is refused. */
START_TEST(test_genmodel_dtype) {
    er_test_mkdtemp(dir, sizeof dir, "tools");
    genmodel("f32", "--head seqcls --seed 3");
    genmodel("f16", "--head seqcls --seed 3 --dtype fp16");
    genmodel("b16", "--head seqcls --seed 3 --dtype bf16");
    const char *names[] = {"f16", "b16"};
    const er_dtype dts[] = {ER_DTYPE_FP16, ER_DTYPE_BF16};
    const double half_ulp[] = {0x1p-11, 0x1p-8};
    char path[160];
    snprintf(path, sizeof path, "%s/f32/model.safetensors", dir);
    er_st_file *ref;
    ck_assert_int_eq(er_st_open(path, &ref, NULL), ER_OK);
    for (int d = 0; d < 2; d++) {
        snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, names[d]);
        er_st_file *f;
        ck_assert_int_eq(er_st_open(path, &f, NULL), ER_OK);
        ck_assert_uint_eq(er_st_count(f), er_st_count(ref));
        double worst = 0;
        for (size_t i = 0; i < er_st_count(f); i++) {
            const er_st_tensor *t = er_st_at(f, i);
            ck_assert_int_eq(t->dtype, dts[d]);
            worst = fmax(worst, rounding_error(t, er_st_find(ref, t->name)));
        }
        ck_assert_msg(worst <= half_ulp[d] && worst > 0, "%s: rounding error %g", names[d], worst);
        er_st_free(f);
        snprintf(path, sizeof path, "%s/%s", dir, names[d]);
        er_model *m;
        er_err e;
        ck_assert_msg(er_model_load(path, NULL, &m, &e) == ER_OK, "%s", e.msg);
        er_model_free(m);
    }
    er_st_free(ref);
    ck_assert_int_eq(sh("%s --out %s/x --preset tiny --dtype fp8 2>/dev/null",
                        tool("erserve-genmodel"), dir), 2);
    er_test_rmtree(dir);
}
END_TEST

/* --arch roberta|xlm-roberta with --vocab: loads through the real loader
 * (core/arch_bert.c) with RoBERTa's layout and every head, deterministic. */
START_TEST(test_genmodel_roberta) {
    static const char *const heads[] = {"seqcls", "tokcls", "qa", "embedding"};
    static const er_head_type kinds[] = {ER_HEAD_SEQUENCE_CLASSIFICATION,
                                         ER_HEAD_TOKEN_CLASSIFICATION,
                                         ER_HEAD_QUESTION_ANSWERING, ER_HEAD_EMBEDDING};
    er_test_mkdtemp(dir, sizeof dir, "tools");
    char out[64], path[128], args[128];
    for (int i = 0; i < 8; i++) {
        const char *arch = i < 4 ? "roberta" : "xlm-roberta";
        snprintf(out, sizeof out, "%s-%s", arch, heads[i % 4]);
        snprintf(args, sizeof args, "--arch %s --vocab 50265 --head %s --seed 3", arch, heads[i % 4]);
        genmodel(out, args);
        snprintf(path, sizeof path, "%s/%s", dir, out);
        er_model *m;
        er_err e;
        ck_assert_msg(er_model_load(path, NULL, &m, &e) == ER_OK, "%s: %s", out, e.msg);
        const er_config *c = er_model_config(m);
        ck_assert_int_eq(c->arch, ER_ARCH_ROBERTA);
        ck_assert_int_eq(c->head, kinds[i % 4]);
        ck_assert_int_eq(c->vocab_size, 50265);
        ck_assert_int_eq(c->pad_token_id, 1);
        ck_assert_int_eq(c->type_vocab_size, 1);
        ck_assert_int_eq(c->max_positions, 514); /* the preset's 512 after padding_idx */
        ck_assert_int_eq(er_model_max_seq_len(m), 512);
        er_model_free(m);
    }
    ck_assert_int_eq(sh("grep -q '\"XLMRobertaForTokenClassification\"' %s/xlm-roberta-tokcls/config.json"
                        " && grep -q '\"model_type\": \"xlm-roberta\"' %s/xlm-roberta-tokcls/config.json",
                        dir, dir), 0);
    genmodel("again", "--arch roberta --vocab 50265 --head seqcls --seed 3");
    ck_assert_int_eq(sh("cmp -s %s/again/model.safetensors %s/roberta-seqcls/model.safetensors", dir, dir), 0);
    /* the explicit default is today's BERT output, byte for byte */
    genmodel("b1", "--head qa --seed 3");
    genmodel("b2", "--arch bert --head qa --seed 3");
    ck_assert_int_eq(sh("cmp -s %s/b1/model.safetensors %s/b2/model.safetensors", dir, dir), 0);
    ck_assert_int_eq(sh("%s --out %s/x --arch gpt 2>/dev/null", tool("erserve-genmodel"), dir), 2);
    er_test_rmtree(dir);
}
END_TEST

/* --arch mpnet: MPNet's layout (core/arch_mpnet.c) with every head, through
 * the real loader, deterministic.  (--preset mpnet-base, 438 MB of weights,
 * runs in make bench.) */
START_TEST(test_genmodel_mpnet) {
    static const char *const heads[] = {"seqcls", "tokcls", "qa", "embedding"};
    static const er_head_type kinds[] = {ER_HEAD_SEQUENCE_CLASSIFICATION,
                                         ER_HEAD_TOKEN_CLASSIFICATION,
                                         ER_HEAD_QUESTION_ANSWERING, ER_HEAD_EMBEDDING};
    er_test_mkdtemp(dir, sizeof dir, "tools");
    char out[64], path[128], args[128];
    for (int i = 0; i < 4; i++) {
        snprintf(out, sizeof out, "mpnet-%s", heads[i]);
        snprintf(args, sizeof args, "--arch mpnet --vocab 30527 --head %s --seed 3", heads[i]);
        genmodel(out, args);
        snprintf(path, sizeof path, "%s/%s", dir, out);
        er_model *m;
        er_err e;
        ck_assert_msg(er_model_load(path, NULL, &m, &e) == ER_OK, "%s: %s", out, e.msg);
        const er_config *c = er_model_config(m);
        ck_assert_int_eq(c->arch, ER_ARCH_MPNET);
        ck_assert_int_eq(c->head, kinds[i]);
        ck_assert_int_eq(c->type_vocab_size, 0);
        ck_assert_int_eq(c->mpnet.relative_buckets, 32);
        ck_assert_int_eq(er_model_max_seq_len(m), 512);
        er_model_free(m);
    }
    ck_assert_int_eq(sh("grep -q '\"MPNetForSequenceClassification\"' %s/mpnet-seqcls/config.json", dir), 0);
    genmodel("again", "--arch mpnet --vocab 30527 --head seqcls --seed 3");
    ck_assert_int_eq(sh("cmp -s %s/again/model.safetensors %s/mpnet-seqcls/model.safetensors", dir, dir), 0);
    er_test_rmtree(dir);
}
END_TEST

/* --arch deberta-v2 (deberta-v3-base's layout and config at the tiny
 * preset's sizes): loads through core/arch_deberta.c with every head, runs a
 * 300-token sequence, deterministic. */
START_TEST(test_genmodel_deberta) {
    static const char *const heads[] = {"seqcls", "tokcls", "qa", "embedding"};
    static const er_head_type kinds[] = {ER_HEAD_SEQUENCE_CLASSIFICATION,
                                         ER_HEAD_TOKEN_CLASSIFICATION,
                                         ER_HEAD_QUESTION_ANSWERING, ER_HEAD_EMBEDDING};
    er_test_mkdtemp(dir, sizeof dir, "tools");
    char out[64], path[128], args[128];
    static int32_t ids[300];
    for (int i = 0; i < 300; i++) ids[i] = 5 + (i * 7919) % 990;
    for (int i = 0; i < 4; i++) {
        snprintf(out, sizeof out, "deberta-%s", heads[i]);
        snprintf(args, sizeof args, "--arch deberta-v2 --vocab 1000 --head %s --seed 3", heads[i]);
        genmodel(out, args);
        snprintf(path, sizeof path, "%s/%s", dir, out);
        er_model *m;
        er_err e;
        ck_assert_msg(er_model_load(path, NULL, &m, &e) == ER_OK, "%s: %s", out, e.msg);
        const er_config *c = er_model_config(m);
        ck_assert_int_eq(c->arch, ER_ARCH_DEBERTA);
        ck_assert_int_eq(c->head, kinds[i]);
        ck_assert(c->deberta.relative_attention && c->deberta.share_att_key);
        ck_assert(c->deberta.c2p && c->deberta.p2c && !c->deberta.position_biased_input);
        ck_assert_int_eq(c->deberta.position_buckets, 256);
        ck_assert_int_eq(c->deberta.max_relative_positions, 512); /* -1: max positions */
        ck_assert_int_eq(c->type_vocab_size, 0);
        er_ctx *x;
        ck_assert_int_eq(er_ctx_init(m, NULL, &x, &e), ER_OK);
        int len = 300;
        er_batch b = {.n_seqs = 1, .seq_len = &len, .ids = ids, .type_ids = NULL};
        float *h = malloc(300 * (size_t)c->hidden_size * sizeof *h);
        float *o = malloc(300 * (size_t)c->hidden_size * sizeof *o);
        ck_assert_msg(er_forward(m, x, &b, h, o, &e) == ER_OK, "%s", e.msg);
        ck_assert(isfinite(o[0]));
        free(h);
        free(o);
        er_ctx_free(x);
        er_model_free(m);
    }
    ck_assert_int_eq(sh("grep -q '\"DebertaV2ForQuestionAnswering\"' %s/deberta-qa/config.json", dir), 0);
    genmodel("again", "--arch deberta-v2 --vocab 1000 --head seqcls --seed 3");
    ck_assert_int_eq(sh("cmp -s %s/again/model.safetensors %s/deberta-seqcls/model.safetensors", dir, dir), 0);
    er_test_rmtree(dir);
}
END_TEST

/* ---- erserve-cache ---- */

/* A one-task set of model dir on store (NULL: no store, every run computes
 * the full forward). */
static er_taskset *task_set(const char *dir_, const char *store) {
    er_task_spec spec = {"t", dir_, 0, ER_COMPUTE_FP32};
    er_taskset_params p = er_taskset_default_params();
    p.store_path = store;
    p.store.dtype = ER_DTYPE_FP32;
    er_taskset *ts;
    er_err e;
    ck_assert_msg(er_taskset_load(&spec, 1, &p, &ts, &e) == ER_OK, "%s", e.msg);
    return ts;
}

/* Runs both documents of the warm test through a set; hit[] says which hit. */
static void run_docs(er_taskset *ts, float *out, uint8_t hit[2]) {
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    int32_t ids[9] = {2, 11, 12, 3, 2, 13, 3, 14, 3}, types[9] = {0, 0, 0, 0, 0, 0, 0, 1, 1};
    int lens[2] = {4, 5};
    er_batch b = {2, lens, ids, types};
    /* the CLI keys documents as the server keys truncated requests, capped
     * by the fixture's 40 positions */
    ck_assert_int_eq(er_run(w, er_taskset_at(ts, 0), &b, er_key_salt(40, true), out, hit, NULL, NULL),
                     ER_OK);
    er_worker_free(w);
}

/* A task set on a store warmed by the CLI serves both documents as hits,
 * with the full forward's answer. */
static void check_warmed(const char *store, const char *base) {
    float got[16], ref[16];
    uint8_t hit[2];
    er_taskset *ts = task_set(base, NULL);
    run_docs(ts, ref, hit);
    er_taskset_free(ts);
    ts = task_set(base, store);
    run_docs(ts, got, hit);
    er_taskset_free(ts);
    ck_assert(hit[0] && hit[1]);
    for (int i = 0; i < 6; i++) ck_assert_float_le(fabsf(ref[i] - got[i]), 1e-5f * fmaxf(1.0f, fabsf(ref[i])));
}

/* warm (resumable), stats, verify, purge; a task set opened on the warmed
 * store then serves hits. */
START_TEST(test_cache) {
    const char *bin = tool("erserve-cache"), *base = "tests/fixtures/models/bert-seqcls";
    er_test_mkdtemp(dir, sizeof dir, "tools");
    char store[128], jsonl[128], out[128];
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(jsonl, sizeof jsonl, "%s/docs.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    FILE *f = fopen(jsonl, "w");
    fprintf(f, "{\"id\": 1, \"input_ids\": [2, 11, 12, 3]}\n\n{\"id\": 2, \"input_ids\": [2, 13, 3, 14, 3], "
               "\"token_type_ids\": [0, 0, 0, 1, 1]}\n");
    fclose(f);
    char pre[600];
    snprintf(pre, sizeof pre, "%s --store %s --model %s --dtype fp32", bin, store, base);
    ck_assert_int_eq(sh("%s warm %s 2>/dev/null", pre, jsonl), 0);
    ck_assert_int_eq(sh("%s warm < %s 2>%s", pre, jsonl, out), 0); /* resumes: all cached */
    ck_assert_int_eq(sh("grep -q '2 already cached' %s", out), 0);
    snprintf(pre, sizeof pre, "%s --store %s", bin, store);
    ck_assert_int_eq(sh("%s stats > %s", pre, out), 0);
    ck_assert_int_eq(sh("grep -q '^entries *2$' %s", out), 0);
    ck_assert_int_eq(sh("%s verify > %s", pre, out), 0);
    check_warmed(store, base);
    ck_assert_int_eq(sh("%s purge > %s", pre, out), 0);
    ck_assert_int_eq(sh("%s stats > %s", pre, out), 0);
    ck_assert_int_eq(sh("grep -q '^entries *0$' %s", out), 0);
    ck_assert_int_eq(sh("%s bogus 2>%s", pre, out), 2);
    ck_assert_int_eq(sh("%s warm %s 2>/dev/null", pre, jsonl), 2); /* warm needs --model */
    ck_assert_int_eq(sh("%s --budget lots stats 2>/dev/null", pre), 2);
    /* a truncated data file: refused with a message (never SIGBUS, exit 135),
     * then salvaged by verify --repair into a store that verifies */
    ck_assert_int_eq(sh("%s --model %s --dtype fp32 warm %s 2>/dev/null", pre, base, jsonl), 0);
    ck_assert_int_eq(sh("truncate -s 8192 %s/data.mdb", store), 0);
    ck_assert_int_eq(sh("%s stats 2>%s", pre, out), 1);
    ck_assert_int_eq(sh("grep -q 'data.mdb is damaged.*verify --repair' %s", out), 0);
    ck_assert_int_eq(sh("%s verify 2>/dev/null >/dev/null", pre), 1);
    ck_assert_int_eq(sh("%s verify --repair > %s", pre, out), 0);
    ck_assert_int_eq(sh("grep -q '^recovered' %s", out), 0);
    ck_assert_int_eq(sh("%s verify > %s", pre, out), 0);
    er_test_rmtree(dir);
}
END_TEST

static Suite *tools_suite(void) {
    Suite *s = suite_create("tools");
    TCase *tc = tcase_create("tools");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_infer_golden, 0, (int)(sizeof INFER_MODELS / sizeof INFER_MODELS[0]));
    tcase_add_test(tc, test_infer_exits);
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_tokenize);
    tcase_add_test(tc, test_tokenize_decode);
    tcase_add_test(tc, test_genmodel);
    tcase_add_test(tc, test_genmodel_dtype);
    tcase_add_test(tc, test_genmodel_roberta);
    tcase_add_test(tc, test_genmodel_mpnet);
    tcase_add_test(tc, test_genmodel_deberta);
    tcase_add_test(tc, test_cache);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(tools_suite)
