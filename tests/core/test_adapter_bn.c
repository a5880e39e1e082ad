/* AdapterHub bottleneck adapters as tasks (adapter_bn.c): an adapter whose
 * blocks all sit above the cut shares its base's lower stack and store
 * namespace (its first run on a document the base warmed is a hit, equal to
 * er_forward bit for bit), also when added at run time; one below the cut
 * lowers its own cut or is refused under an explicit cut; a declared cut
 * above an adapted layer does not borrow that layer from the base; every
 * config field, file and tensor it does not implement is refused by name.
 * (Goldens against the PyTorch reference, tests/fixtures/ref_bottleneck.py:
 * test_encoder; no allocation in the forward: test_store_noalloc.) */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "er_log.h"
#include "log_capture.h"
#include "model_internal.h"
#include "recycle.h"

#define MODELS "tests/fixtures/models"
#define PFEIFFER MODELS "/bn-bert-pfeiffer"  /* output adapters on layers 0-2, flex head */
#define HOULSBY MODELS "/bn-roberta-houlsby" /* both places on layers 1-2, static head */

static char dir[64];

/* Two sequences every fixture vocabulary holds. */
static int32_t ids[] = {2, 40, 77, 9, 120, 3, 2, 18, 200, 3, 51, 3};
static int lens[] = {6, 6};

static er_batch batch(void) { return (er_batch){2, lens, ids, NULL}; }

/* er_forward of the model in mdir over batch(): the head's output. */
static void forward(const char *mdir, float *out) {
    er_model *m;
    er_ctx *ctx;
    er_err e;
    ck_assert_msg(er_model_load(mdir, NULL, &m, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_ctx_init(m, NULL, &ctx, NULL), ER_OK);
    er_batch b = batch();
    float hidden[12 * 64];
    ck_assert_msg(er_forward(m, ctx, &b, hidden, out, &e) == ER_OK, "%s", e.msg);
    er_ctx_free(ctx);
    er_model_free(m);
}

static er_taskset *load(const er_task_spec *specs, int n, int cut, const char *store, er_err *e) {
    er_taskset_params p = er_taskset_default_params();
    p.cut = cut;
    p.store_path = store;
    p.store.dtype = ER_DTYPE_FP32;
    p.store.budget_bytes = 16u << 20;
    p.store.queue_bytes = 4u << 20;
    er_taskset *ts = NULL;
    er_status st = er_taskset_load(specs, n, &p, &ts, e);
    return st == ER_OK ? ts : NULL;
}

/* The base warms the store; the adapter task `t`'s first run is then a hit
 * and equals er_forward of its directory bit for bit (fp32 store). */
static void warm_then_hit(er_taskset *ts, const er_task *base, const er_task *t,
                          const char *tdir, int n_out) {
    er_worker *w;
    er_err e;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    er_batch b = batch();
    uint8_t hit[2];
    float got[64], ref[64];
    ck_assert_int_eq(er_run(w, base, &b, 0, got, hit, NULL, &e), ER_OK);
    ck_assert(!hit[0] && !hit[1]);
    er_store_flush(er_taskset_store(ts));
    ck_assert_msg(er_run(w, t, &b, 0, got, hit, NULL, &e) == ER_OK, "%s", e.msg);
    ck_assert_msg(hit[0] && hit[1], "the adapter task's first run is not a store hit");
    forward(tdir, ref);
    ck_assert_mem_eq(got, ref, (size_t)n_out * sizeof(float));
    float basev[64];
    forward(MODELS "/roberta-seqcls", basev);
    double moved = 0;
    for (int i = 0; i < n_out; i++) moved = fmax(moved, fabs(basev[i] - ref[i]));
    ck_assert_msg(moved > 1e-3, "the adapter changes nothing (%g)", moved);
    er_worker_free(w);
}

START_TEST(shares_base_stack_and_hits) {
    er_test_mkdtemp(dir, sizeof dir, "bn");
    char store[128];
    snprintf(store, sizeof store, "%s/store", dir);
    er_task_spec specs[] = {{"base", MODELS "/roberta-seqcls", 0, ER_COMPUTE_FP32},
                            {"bn", HOULSBY, 0, ER_COMPUTE_FP32}};
    er_err e;
    er_taskset *ts = load(specs, 2, -1, store, &e);
    ck_assert_msg(ts, "%s", e.msg);
    const er_task *base = er_taskset_at(ts, 0), *bn = er_taskset_at(ts, 1);
    ck_assert_int_eq(er_taskset_lower_stacks(ts), 1);
    ck_assert_mem_eq(er_task_fingerprint(base), er_task_fingerprint(bn), 32);
    ck_assert_int_eq(er_task_cut(bn), 1);
    warm_then_hit(ts, base, bn, HOULSBY, 2 * 2);
    er_taskset_free(ts);
    er_test_rmtree(dir);
}
END_TEST

/* Added while serving: shares by fingerprint, so its first run is a hit. */
START_TEST(added_at_run_time_hits) {
    er_test_mkdtemp(dir, sizeof dir, "bn");
    char store[128];
    snprintf(store, sizeof store, "%s/store", dir);
    er_task_spec base = {"base", MODELS "/roberta-seqcls", 0, ER_COMPUTE_FP32},
                 bn = {"bn", HOULSBY, 0, ER_COMPUTE_FP32};
    er_err e;
    er_taskset *ts = load(&base, 1, -1, store, &e);
    ck_assert_msg(ts, "%s", e.msg);
    ck_assert_msg(er_taskset_add(ts, &bn, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_taskset_lower_stacks(ts), 1);
    warm_then_hit(ts, er_taskset_find(ts, "base"), er_taskset_find(ts, "bn"), HOULSBY, 2 * 2);
    ck_assert_int_eq(er_taskset_remove(ts, "bn", &e), ER_OK);
    er_taskset_free(ts);
    er_test_rmtree(dir);
}
END_TEST


START_TEST(below_the_cut) {
    er_task_spec specs[] = {{"base", MODELS "/bert-seqcls", 0, ER_COMPUTE_FP32},
                            {"low", PFEIFFER, 0, ER_COMPUTE_FP32}};
    er_err e;
    er_test_log_start();
    er_taskset *ts = load(specs, 2, -1, NULL, &e);
    er_test_log_stop();
    ck_assert_msg(ts, "%s", e.msg);
    ck_assert_int_eq(er_taskset_cut(ts), 1);
    ck_assert_int_eq(er_task_cut(er_taskset_at(ts, 1)), 0); /* layer 0 is adapted */
    ck_assert_int_eq(er_taskset_lower_stacks(ts), 2);
    ck_assert_msg(strstr(er_test_logbuf, "task low: its bottleneck adapter changes layer 0"),
                  "%s", er_test_logbuf);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    er_batch b = batch();
    float got[8], ref[8];
    ck_assert_int_eq(er_run(w, er_taskset_at(ts, 1), &b, 0, got, NULL, NULL, &e), ER_OK);
    forward(PFEIFFER, ref);
    ck_assert_mem_eq(got, ref, 2 * 3 * sizeof(float)); /* its flex head: 3 labels */
    er_worker_free(w);
    er_taskset_free(ts);
    ck_assert_ptr_null(load(specs, 2, 1, NULL, &e)); /* an explicit cut above it: refused */
    ck_assert_int_eq(e.code, ER_ERR_INVALID_ARG);
    ck_assert_msg(strstr(e.msg, "task low") && strstr(e.msg, "layer 0"), "%s", e.msg);
}
END_TEST

/* A task that declares cut 2 over a store cut of 1 borrows layer 1 from the
 * stack only if it equals its own: the adapter's blocks are part of the
 * fingerprint, so it runs its adapted layer 1 itself. */
START_TEST(declared_cut_keeps_adapted_layers) {
    er_task_spec specs[] = {{"base", MODELS "/roberta-seqcls", 0, ER_COMPUTE_FP32},
                            {"bn", HOULSBY, 2, ER_COMPUTE_FP32}};
    er_err e;
    er_test_log_start();
    er_taskset *ts = load(specs, 2, 1, NULL, &e);
    er_test_log_stop();
    ck_assert_msg(ts, "%s", e.msg);
    ck_assert_msg(strstr(er_test_logbuf, "task bn declares cut 2 but its layers [1, 2) differ"), "%s",
                  er_test_logbuf);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    er_batch b = batch();
    float got[8], ref[8];
    ck_assert_int_eq(er_run(w, er_taskset_at(ts, 1), &b, 0, got, NULL, NULL, &e), ER_OK);
    forward(HOULSBY, ref);
    ck_assert_mem_eq(got, ref, 2 * 2 * sizeof(float));
    er_worker_free(w);
    er_taskset_free(ts);
}
END_TEST

/* A copy of src edited by tests/core/bn_edit.py (its edits as arguments,
 * NULL-terminated), loaded under the fixtures' model root; the error. */
static er_status load_edited(const char *src, er_err *e, ...) {
    char cmd[2048], adir[128];
    snprintf(adir, sizeof adir, "%s/a", dir);
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "python3 tests/core/bn_edit.py %s %s", src, adir);
    va_list ap;
    va_start(ap, e);
    for (const char *a; (a = va_arg(ap, const char *)) && n < sizeof cmd;)
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, " '%s'", a);
    va_end(ap);
    ck_assert_msg(system(cmd) == 0, "%s", cmd);
    er_model_params p = er_model_default_params();
    p.model_root = MODELS;
    er_model *m = NULL;
    er_status st = er_model_load(adir, &p, &m, e);
    er_model_free(m);
    return st;
}

#define REFUSED(want, word, ...)                                                       \
    do {                                                                               \
        er_status st_ = load_edited(PFEIFFER, &e, __VA_ARGS__, NULL);                  \
        ck_assert_msg(st_ == (want) && strstr(e.msg, word), "%s: got %d %s", #__VA_ARGS__, \
                      st_, e.msg);                                                     \
    } while (0)

START_TEST(config_refusals) {
    er_test_mkdtemp(dir, sizeof dir, "bn");
    er_err e;
    ck_assert_msg(load_edited(PFEIFFER, &e, NULL) == ER_OK, "%s", e.msg); /* the copy loads */
    REFUSED(ER_ERR_UNSUPPORTED, "config.is_parallel", "config", "is_parallel", "true");
    REFUSED(ER_ERR_UNSUPPORTED, "config.use_gating", "config", "use_gating", "true");
    REFUSED(ER_ERR_UNSUPPORTED, "config.phm_layer", "config", "phm_layer", "true");
    REFUSED(ER_ERR_UNSUPPORTED, "config.ln_before", "config", "ln_before", "true");
    REFUSED(ER_ERR_UNSUPPORTED, "config.inv_adapter", "config", "inv_adapter", "\"nice\"");
    REFUSED(ER_ERR_UNSUPPORTED, "config.scaling 'learned'", "config", "scaling", "\"learned\"");
    REFUSED(ER_ERR_UNSUPPORTED, "config.scaling 'channel'", "config", "scaling", "\"channel\"");
    REFUSED(ER_ERR_UNSUPPORTED, "architecture 'prefix_tuning'", "config", "architecture",
            "\"prefix_tuning\"");
    REFUSED(ER_ERR_UNSUPPORTED, "architecture 'union'", "config", "architecture", "\"union\"");
    REFUSED(ER_ERR_UNSUPPORTED, "architecture 'lora'", "config", "architecture", "\"lora\"");
    REFUSED(ER_ERR_MISMATCH, "model_type roberta", "top", "model_type", "\"roberta\"");
    REFUSED(ER_ERR_UNSUPPORTED, "non_linearity 'mish'", "config", "non_linearity", "\"mish\"");
    REFUSED(ER_ERR_UNSUPPORTED, "config.new_knob", "config", "new_knob", "1");
    REFUSED(ER_ERR_FORMAT, "residual_before_ln", "config", "original_ln_before", "false",
            "config", "residual_before_ln", "\"post_add\"");
    REFUSED(ER_ERR_FORMAT, "reduction_factor", "config", "reduction_factor", "0");
    REFUSED(ER_ERR_FORMAT, "reduction_factor", "config", "reduction_factor", "1e9");
    REFUSED(ER_ERR_FORMAT, "reduction_factor", "config", "reduction_factor", "{\"x\": 2}");
    REFUSED(ER_ERR_FORMAT, "no \"default\"", "config", "reduction_factor", "{\"0\": 16}");
    REFUSED(ER_ERR_FORMAT, "config.scaling", "config", "scaling", "1e30");
    REFUSED(ER_ERR_FORMAT, "leave_out", "config", "leave_out", "[\"2\"]");
    REFUSED(ER_ERR_FORMAT, "mh_adapter", "config", "mh_adapter", "\"yes\"");
    REFUSED(ER_ERR_MISMATCH, "hidden_size 64", "top", "hidden_size", "64");
    REFUSED(ER_ERR_FORMAT, "'name'", "top", "name", "null");
    REFUSED(ER_ERR_NOT_FOUND, "no-such-model", "top", "model_name", "\"no-such-model\"");
    REFUSED(ER_ERR_INVALID_ARG, "outside the model root", "top", "model_name",
            "\"../golden\"");
    REFUSED(ER_ERR_UNSUPPORTED, "architecture mpnet", "top", "model_name", "\"mpnet-seqcls\"",
            "top", "model_type", "\"mpnet\"", "rm", "head_config.json", "rm", "model_head.safetensors");
    er_test_rmtree(dir);
}
END_TEST

START_TEST(file_and_tensor_refusals) {
    er_test_mkdtemp(dir, sizeof dir, "bn");
    er_err e;
    REFUSED(ER_ERR_NOT_FOUND, "use_safetensors=True", "rm", "adapter.safetensors", "touch",
            "pytorch_adapter.bin");
    REFUSED(ER_ERR_NOT_FOUND, "pytorch_model_head.bin is a torch pickle", "rm",
            "model_head.safetensors", "touch", "pytorch_model_head.bin");
    /* the library's default save: the pickle alone (tests/fixtures/ref_bottleneck.py) */
    er_model *m = NULL;
    er_status st = er_model_load(MODELS "/bn-bin-only", NULL, &m, &e);
    ck_assert_msg(st == ER_ERR_NOT_FOUND && strstr(e.msg, "pytorch_adapter.bin") &&
                  strstr(e.msg, "use_safetensors=True"), "%d %s", st, e.msg);
    ck_assert_ptr_null(m);
    REFUSED(ER_ERR_NOT_FOUND, "layer.2.output.adapters.sentiment.adapter_up.bias' is missing",
            "drop", "layer.2.output.adapters.sentiment.adapter_up.bias");
    /* a shape that disagrees with reduction_factor, either way round */
    REFUSED(ER_ERR_MISMATCH, "reduction_factor", "shrink",
            "layer.1.output.adapters.sentiment.adapter_down.0.weight");
    REFUSED(ER_ERR_MISMATCH, "must have shape [6, 48]", "config", "reduction_factor", "8");
    REFUSED(ER_ERR_MISMATCH, "layer.1.output.adapters.sentiment.adapter_down.0.weight' must "
            "have shape [6, 48]", "config", "reduction_factor", "{\"default\": 16, \"1\": 8}",
            "shrink",
            "layer.1.output.adapters.sentiment.adapter_down.0.weight");
    /* tensors the config does not account for */
    REFUSED(ER_ERR_UNSUPPORTED, "gate.weight' is not supported", "add",
            "bert.encoder.layer.0.output.adapters.sentiment.gate.weight");
    REFUSED(ER_ERR_UNSUPPORTED, "adapters.other", "add",
            "bert.encoder.layer.0.output.adapters.other.adapter_up.bias");
    REFUSED(ER_ERR_FORMAT, "leave_out", "config", "leave_out", "[1]");
    REFUSED(ER_ERR_NOT_FOUND, "attention.output.adapters.sentiment.adapter_down.0.weight' is "
            "missing", "config", "mh_adapter", "true");
    /* heads */
    REFUSED(ER_ERR_UNSUPPORTED, "head_type 'multilabel_classification'", "head", "head_type",
            "\"multilabel_classification\"");
    REFUSED(ER_ERR_UNSUPPORTED, "config.use_pooler", "head", "use_pooler", "true");
    REFUSED(ER_ERR_UNSUPPORTED, "config.layers", "head", "layers", "3");
    REFUSED(ER_ERR_UNSUPPORTED, "activation_function 'swish'", "head", "activation_function",
            "\"swish\"");
    REFUSED(ER_ERR_FORMAT, "num_labels", "head", "num_labels", "0");
    REFUSED(ER_ERR_MISMATCH, "heads.sentiment.4.weight", "head", "num_labels", "2",
            "head", "label2id", "null");
    REFUSED(ER_ERR_FORMAT, "label2id", "head", "label2id", "{\"a\": 0, \"b\": 0, \"c\": 1}");
    er_test_rmtree(dir);
}
END_TEST

/* What the accepted variants change: a one-layer flex head (no dense),
 * leave_out and a legacy config without "version" (gelu means gelu_new). */
START_TEST(accepted_variants) {
    er_test_mkdtemp(dir, sizeof dir, "bn");
    er_err e;
    ck_assert_msg(load_edited(PFEIFFER, &e, "config", "leave_out", "[0]", "drop", "layer.0.",
                              NULL) == ER_OK, "%s", e.msg);
    er_model_params p = er_model_default_params();
    p.model_root = MODELS;
    er_model *m;
    char adir[128];
    snprintf(adir, sizeof adir, "%s/a", dir);
    ck_assert_msg(er_model_load(adir, &p, &m, &e) == ER_OK, "%s", e.msg);
    ck_assert_int_eq(er_model_lowest_adapted(m), 1);
    ck_assert_int_eq(er_model_adapted_modules(m), 2);
    ck_assert_int_eq(er_model_config(m)->num_labels, 3);
    ck_assert_str_eq(er_model_config(m)->labels[2], "positive");
    er_model_free(m);
    ck_assert_msg(load_edited(PFEIFFER, &e, "deltop", "version", "config", "non_linearity",
                              "\"gelu\"", NULL) == ER_OK, "%s", e.msg);
    er_test_rmtree(dir);
}
END_TEST

/* The base's packed weights are shared: a bottleneck task, a LoRA task and
 * the base itself over one checkpoint pack its layers once; the packing
 * outlives the model that made it while another holds it. */
START_TEST(packed_weights_shared) {
    er_model *base, *bn, *lora;
    er_err e;
    ck_assert_msg(er_model_load(MODELS "/bert-seqcls", NULL, &base, &e) == ER_OK, "%s", e.msg);
    ck_assert_msg(er_model_load(PFEIFFER, NULL, &bn, &e) == ER_OK, "%s", e.msg);
    ck_assert_msg(er_model_load(MODELS "/lora-bert-seqcls", NULL, &lora, &e) == ER_OK, "%s", e.msg);
    if (!base->layers[2].ffn_in.packed) {
        er_model_free(lora), er_model_free(bn), er_model_free(base);
        ER_SKIP("the GEMM backend keeps fp32 weights unpacked on this CPU");
    }
    ck_assert_ptr_eq(base->layers[2].ffn_in.packed, bn->layers[2].ffn_in.packed);
    ck_assert_ptr_eq(base->layers[2].qkv.packed, bn->layers[2].qkv.packed);
    ck_assert_ptr_eq(base->layers[2].qkv.b, bn->layers[2].qkv.b);
    ck_assert_ptr_eq(base->layers[1].ffn_out.packed, lora->layers[1].ffn_out.packed);
    ck_assert_ptr_ne(base->head_out.packed, bn->head_out.packed); /* its own head */
    float before[8], after[8];
    forward(PFEIFFER, before);
    er_model_free(base); /* the packer goes; the adapter's forward is unchanged */
    er_ctx *ctx;
    ck_assert_int_eq(er_ctx_init(bn, NULL, &ctx, NULL), ER_OK);
    er_batch b = batch();
    float hidden[12 * 64];
    ck_assert_int_eq(er_forward(bn, ctx, &b, hidden, after, NULL), ER_OK);
    ck_assert_mem_eq(before, after, 2 * 3 * sizeof(float));
    er_ctx_free(ctx);
    er_model_free(bn);
    er_model_free(lora);
}
END_TEST

static Suite *bn_suite(void) {
    Suite *s = suite_create("adapter_bn");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, shares_base_stack_and_hits);
    tcase_add_test(tc, added_at_run_time_hits);
    tcase_add_test(tc, below_the_cut);
    tcase_add_test(tc, declared_cut_keeps_adapted_layers);
    tcase_add_test(tc, config_refusals);
    tcase_add_test(tc, file_and_tensor_refusals);
    tcase_add_test(tc, accepted_variants);
    tcase_add_test(tc, packed_weights_shared);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(bn_suite)
