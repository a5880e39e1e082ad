/* er_run, er_warm, er_store_get and er_store_put do not allocate: this binary
 * interposes malloc & co. and counts the calls made on the calling thread
 * (the store's writer thread and OpenBLAS's threads are not counted).  One
 * warm-up call first, so that libraries' lazy one-time set-up is not counted.
 * Skipped under AddressSanitizer, which owns malloc. */
#include <cblas.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "gemm.h"
#include "narrow_copy.h"
#include "recycle.h"

#ifndef __SANITIZE_ADDRESS__
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Thread_local int counting;
static _Thread_local long n_alloc;

void *malloc(size_t n) { n_alloc += counting; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { n_alloc += counting; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { n_alloc += counting; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
int posix_memalign(void **p, size_t al, size_t n) {
    n_alloc += counting;
    *p = __libc_memalign(al, n);
    return *p ? 0 : 12; /* ENOMEM */
}
void *aligned_alloc(size_t al, size_t n) { n_alloc += counting; return __libc_memalign(al, n); }

/* Allocations on this thread of one oneDNN primitive execution (a 32-row
 * block of a [64, 64] GEMM: one execute), after a first call has made the
 * thread's stream and memory objects: what the onednn backend
 * (gemm_dnnl.c) cannot avoid, since dnnl_primitive_execute allocates. */
static long onednn_allocs_per_execute(void) {
    enum { N = 32, K = 64, O = 64 };
    static float x[N * K], W[O * K], y[N * O];
    void *p = malloc(er_gemm_packed_bytes(ER_GEMM_F32, O, K));
    er_gemm_pack(ER_GEMM_F32, W, O, K, p);
    er_gemm_out o = {.dst = {y}, .seg = O};
    er_gemm_packed(NULL, x, N, K, ER_GEMM_F32, p, O, NULL, ER_EPI_NONE, &o);
    n_alloc = 0;
    counting = 1;
    er_gemm_packed(NULL, x, N, K, ER_GEMM_F32, p, O, NULL, ER_EPI_NONE, &o);
    counting = 0;
    free(p);
    return n_alloc;
}

/* --gemm onednn (tests/gemm_onednn.sh): the forward allocates in oneDNN. */
#define SKIP_ON_ONEDNN()                                                                          \
    if (er_gemm_backend_get() == ER_GEMM_ONEDNN)                                                  \
    ER_SKIP("oneDNN allocates %ld times per execute (measured), so a forward on --gemm onednn "   \
            "does (core/GEMM.md)", onednn_allocs_per_execute())
#endif

/* BERT's forward, and MPNet's with its relative-bias callback. */
static const char *const MODELS[] = {"tests/fixtures/models/bert-seqcls",
                                     "tests/fixtures/models/mpnet-seqcls",
                                     /* F16: narrow word embeddings widened per row */
                                     "tests/fixtures/models/bert-seqcls-f16",
                                     /* unmerged LoRA beside the base GEMM */
                                     "tests/fixtures/models/lora-bert-seqcls",
                                     /* bottleneck adapters: after the FFN (and below the
                                      * cut), at both places with a static head, ln_after
                                      * with a per-token head */
                                     "tests/fixtures/models/bn-bert-pfeiffer",
                                     "tests/fixtures/models/bn-roberta-houlsby",
                                     "tests/fixtures/models/bn-distilbert-lnafter"};

START_TEST(test_no_alloc) {
#ifdef __SANITIZE_ADDRESS__
    ER_SKIP("AddressSanitizer owns malloc, so allocations cannot be counted");
#else
    char dir[64];
    er_test_mkdtemp(dir, sizeof dir, "noalloc");
    er_task_spec specs[] = {{"a", MODELS[_i], 0, ER_COMPUTE_FP32},
                        {"b", MODELS[_i], 2, ER_COMPUTE_FP32}};
    er_taskset_params p = er_taskset_default_params();
    p.store_path = dir;
    p.store.queue_bytes = 1u << 20;
    er_taskset *ts;
    er_err e;
    ck_assert_msg(er_taskset_load(specs, 2, &p, &ts, &e) == ER_OK, "%s", e.msg);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    int32_t ids[12] = {2, 5, 6, 7, 3, 2, 8, 9, 3, 2, 10, 3};
    int lens[3] = {5, 4, 3};
    er_batch b = {3, lens, ids, NULL};
    float out[64]; /* up to [12 tokens, 4 labels] */
    uint8_t hit[3];
    er_run_stats st;
    ck_assert_int_eq(er_run(w, er_taskset_at(ts, 0), &b, 0, out, hit, &st, NULL), ER_OK);
    er_store_flush(er_taskset_store(ts));
    er_store_reader *r;
    ck_assert_int_eq(er_store_reader_new(er_taskset_store(ts), &r, NULL), ER_OK);
    uint8_t key[32] = {0};
    float x[5 * 48] = {0};

    int failed = 0, hits = 0;
    counting = 1; /* no ck_assert in here: libcheck allocates */
    /* hits, misses (new salt: computed and queued), both tasks, warm */
    for (int salt = 0; salt < 3; salt++)
        for (int t = 0; t < 2; t++) {
            failed += er_run(w, er_taskset_at(ts, t), &b, (uint64_t)salt, out, hit, &st, &e) != ER_OK;
            hits += st.hits;
        }
    failed += er_warm(w, er_taskset_at(ts, 0), &b, 7, hit, &st, &e) != ER_OK;
    er_store_get(r, key, 1, 5, 48, x, &e);
    er_store_put(er_taskset_store(ts), key, 1, 5, 48, x, false, &e);
    counting = 0;
    ck_assert_int_eq(failed, 0);
    ck_assert_int_gt(hits, 0);
    if (er_gemm_backend_get() == ER_GEMM_ONEDNN) { /* what it costs there, then the skip */
        const long forward = n_alloc;
        er_store_reader_free(r);
        er_worker_free(w);
        er_taskset_free(ts);
        er_test_rmtree(dir);
        ER_SKIP("oneDNN allocates %ld times per execute (measured); %ld allocations in these 7 "
                "er_run / er_warm calls on %s", onednn_allocs_per_execute(), forward, MODELS[_i]);
    }

    ck_assert_msg(n_alloc == 0, "%ld allocations in er_run / er_warm / get / put", n_alloc);
    er_store_reader_free(r);
    er_worker_free(w);
    er_taskset_free(ts);
    er_test_rmtree(dir);
#endif
}
END_TEST

/* The bf16 and int8 GEMMs (gemm.h): their packing of x uses per-thread
 * storage, nothing on the heap; misses and hits in each mode the host runs. */
START_TEST(test_no_alloc_compute) {
#ifdef __SANITIZE_ADDRESS__
    ER_SKIP("AddressSanitizer owns malloc, so allocations cannot be counted");
#else
    const er_compute modes[] = {ER_COMPUTE_BF16, ER_COMPUTE_INT8};
    const er_gemm_kind kinds[] = {ER_GEMM_BF16, ER_GEMM_INT8};
    const char *missing = NULL;
    if (!er_gemm_supports(kinds[_i], &missing))
        ER_SKIP("%s needs %s", er_compute_name(modes[_i]), missing);
    char dir[64];
    er_test_mkdtemp(dir, sizeof dir, "noalloc");
    er_task_spec specs[] = {{"a", MODELS[0], 0, modes[_i]}};
    er_taskset_params p = er_taskset_default_params();
    p.store_path = dir;
    p.store.queue_bytes = 1u << 20;
    er_taskset *ts;
    er_err e;
    ck_assert_msg(er_taskset_load(specs, 1, &p, &ts, &e) == ER_OK, "%s", e.msg);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    int32_t ids[12] = {2, 5, 6, 7, 3, 2, 8, 9, 3, 2, 10, 3};
    int lens[3] = {5, 4, 3};
    er_batch b = {3, lens, ids, NULL};
    float out[16];
    uint8_t hit[3];
    ck_assert_int_eq(er_run(w, er_taskset_at(ts, 0), &b, 0, out, hit, NULL, NULL), ER_OK);
    er_store_flush(er_taskset_store(ts));
    int failed = 0;
    counting = 1;
    for (int salt = 0; salt < 2; salt++) /* salt 0: hits; 1: misses */
        failed += er_run(w, er_taskset_at(ts, 0), &b, (uint64_t)salt, out, hit, NULL, &e) != ER_OK;
    counting = 0;
    ck_assert_int_eq(failed, 0);
    ck_assert_msg(n_alloc == 0, "%ld allocations in %s er_run", n_alloc, er_compute_name(modes[_i]));
    er_worker_free(w);
    er_taskset_free(ts);
    er_test_rmtree(dir);
#endif
}
END_TEST

#ifndef __SANITIZE_ADDRESS__
/* Loads specs with a store in a fresh directory, runs each task once on a
 * 3-sequence batch (44 tokens) to warm the store, then counts the
 * allocations of running every task on it again: hits, then misses. */
static long allocs_over_hits_and_misses(const er_task_spec *specs, int n) {
    char dir[64];
    er_test_mkdtemp(dir, sizeof dir, "noalloc");
    er_taskset_params p = er_taskset_default_params();
    p.store_path = dir;
    p.store.queue_bytes = 1u << 20;
    er_taskset *ts;
    er_err e;
    ck_assert_msg(er_taskset_load(specs, n, &p, &ts, &e) == ER_OK, "%s", e.msg);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    int32_t ids[44];
    for (int i = 0; i < 44; i++) ids[i] = 5 + (i * 13) % 150;
    int lens[3] = {24, 4, 16};
    er_batch b = {3, lens, ids, NULL};
    static float out[44 * 8];
    uint8_t hit[3];
    er_run_stats st;
    for (int t = 0; t < n; t++)
        ck_assert_int_eq(er_run(w, er_taskset_at(ts, t), &b, 0, out, hit, &st, NULL), ER_OK);
    er_store_flush(er_taskset_store(ts));
    int failed = 0;
    counting = 1; /* no ck_assert in here: libcheck allocates */
    for (int salt = 0; salt < 2; salt++) /* hits, then misses */
        for (int t = 0; t < n; t++)
            failed += er_run(w, er_taskset_at(ts, t), &b, (uint64_t)salt, out, hit, &st, &e) != ER_OK;
    counting = 0;
    ck_assert_int_eq(failed, 0);
    const long allocs = n_alloc;
    er_worker_free(w);
    er_taskset_free(ts);
    er_test_rmtree(dir);
    return allocs;
}
#endif

/* DeBERTa's forward (relative tables in the worker's scratch, the ConvLayer
 * input) through er_run, on a worker shared by a v3 model and a conv model. */
START_TEST(test_no_alloc_deberta) {
#ifdef __SANITIZE_ADDRESS__
    ER_SKIP("AddressSanitizer owns malloc, so allocations cannot be counted");
#else
    SKIP_ON_ONEDNN();
    er_task_spec specs[] = {{"v3", "tests/fixtures/models/deberta-v3-seqcls", 0, ER_COMPUTE_FP32},
                            {"conv", "tests/fixtures/models/deberta-tokcls", 0, ER_COMPUTE_FP32}};
    const long n = allocs_over_hits_and_misses(specs, 2);
    ck_assert_msg(n == 0, "%ld allocations in er_run on DeBERTa", n);
#endif
}
END_TEST

/* Narrow (BF16) DeBERTa-v3 and ModernBERT checkpoints: word-embedding rows
 * widened in the forward into the row they go to, layer and head weights
 * packed from the mmap at load; misses and hits in each mode the host runs. */
START_TEST(test_no_alloc_narrow) {
#ifdef __SANITIZE_ADDRESS__
    ER_SKIP("AddressSanitizer owns malloc, so allocations cannot be counted");
#else
    SKIP_ON_ONEDNN();
    char tmp[2][64], nd[2][128], wd[128];
    const char *names[2] = {"deberta-v3-seqcls", "modernbert-seqcls"};
    for (int i = 0; i < 2; i++) {
        er_test_mkdtemp(tmp[i], sizeof tmp[i], "noalloc");
        write_pair(names[i], ER_DTYPE_BF16, tmp[i], nd[i], wd, sizeof wd);
    }
    const er_compute modes[] = {ER_COMPUTE_FP32, ER_COMPUTE_BF16, ER_COMPUTE_INT8};
    const er_gemm_kind kinds[] = {ER_GEMM_F32, ER_GEMM_BF16, ER_GEMM_INT8};
    er_task_spec specs[6];
    int n = 0;
    char names_buf[6][16];
    for (int m = 0; m < 3; m++) {
        if (m > 0 && !er_gemm_supports(kinds[m], NULL)) continue;
        for (int i = 0; i < 2; i++) {
            snprintf(names_buf[n], sizeof names_buf[n], "%c%d", i ? 'm' : 'd', m);
            specs[n] = (er_task_spec){names_buf[n], nd[i], 0, modes[m]};
            n++;
        }
    }
    const long allocs = allocs_over_hits_and_misses(specs, n);
    ck_assert_msg(allocs == 0, "%ld allocations in er_run on narrow checkpoints", allocs);
    for (int i = 0; i < 2; i++) er_test_rmtree(tmp[i]);
#endif
}
END_TEST

/* The heads with scratch of their own: SPLADE's logit tiles and the
 * sentence-transformers Dense modules (no store: every call computes).
 * The logit tiles are GEMMs large enough for OpenBLAS to thread, and its
 * threaded path mallocs its job array on the calling thread at every call
 * (level3_thread.c) -- as it does for any real model's layer GEMMs; that
 * allocation is OpenBLAS's, so BLAS runs on one thread here. */
START_TEST(test_no_alloc_heads) {
#ifdef __SANITIZE_ADDRESS__
    ER_SKIP("AddressSanitizer owns malloc, so allocations cannot be counted");
#else
    SKIP_ON_ONEDNN();
    er_task_spec specs[] = {{"splade", "tests/fixtures/models/bert-splade", 0, ER_COMPUTE_FP32},
                            {"dense", "tests/fixtures/models/bert-embed-dense", 0, ER_COMPUTE_FP32}};
    er_taskset *ts;
    er_err e;
    ck_assert_msg(er_taskset_load(specs, 2, NULL, &ts, &e) == ER_OK, "%s", e.msg);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, NULL, &w, NULL), ER_OK);
    int32_t ids[12] = {2, 5, 6, 7, 3, 2, 8, 9, 3, 2, 10, 3};
    int lens[3] = {5, 4, 3};
    er_batch b = {3, lens, ids, NULL};
    static float out[3 * 1100];
    uint8_t hit[3];
    er_run_stats st;
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    for (int t = 0; t < 2; t++) /* warm-up */
        ck_assert_int_eq(er_run(w, er_taskset_at(ts, t), &b, 0, out, hit, &st, NULL), ER_OK);
    int failed = 0;
    counting = 1;
    for (int t = 0; t < 2; t++)
        failed += er_run(w, er_taskset_at(ts, t), &b, 0, out, hit, &st, &e) != ER_OK;
    counting = 0;
    openblas_set_num_threads(blas_threads);
    ck_assert_int_eq(failed, 0);
    ck_assert_msg(n_alloc == 0, "%ld allocations in er_run with the sparse / Dense heads", n_alloc);
    er_worker_free(w);
    er_taskset_free(ts);
#endif
}
END_TEST

/* A 1200-token input alone in a worker whose batch budget is 64 tokens
 * (er_worker_params sized it for the longest input at init): miss, hit and
 * a short batch do not allocate either.  With one OpenBLAS thread, as the
 * server runs (--blas-threads 1): OpenBLAS's threaded GEMM, which it picks
 * for large matrices, allocates on the caller's thread (measured: ~120
 * calls per layer at 1200 tokens with 2 threads); that is OpenBLAS's, not
 * the forward's. */
START_TEST(test_no_alloc_long_input) {
#ifdef __SANITIZE_ADDRESS__
    ER_SKIP("AddressSanitizer owns malloc, so allocations cannot be counted");
#else
    SKIP_ON_ONEDNN();
    char dir[64];
    er_test_mkdtemp(dir, sizeof dir, "noalloc-long");
    er_task_spec spec = {"long", "tests/fixtures/models/bert-long", 0, ER_COMPUTE_FP32};
    er_taskset_params p = er_taskset_default_params();
    p.store_path = dir;
    p.store.queue_bytes = 4u << 20;
    er_taskset *ts;
    er_err e;
    ck_assert_msg(er_taskset_load(&spec, 1, &p, &ts, &e) == ER_OK, "%s", e.msg);
    er_ctx_params cp = er_worker_params(ts, 64, 4, 0);
    ck_assert_int_eq(cp.max_tokens, 1200);
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    er_worker *w;
    ck_assert_int_eq(er_worker_init(ts, &cp, &w, NULL), ER_OK);
    static int32_t ids[1200];
    for (int i = 0; i < 1200; i++) ids[i] = 5 + i % 190;
    int len = 1200, lens3[3] = {20, 30, 14};
    er_batch b = {1, &len, ids, NULL}, small = {3, lens3, ids, NULL};
    float out[8];
    uint8_t hit[3];
    er_run_stats st;
    const er_task *t = er_taskset_at(ts, 0);
    ck_assert_int_eq(er_run(w, t, &b, 0, out, hit, &st, NULL), ER_OK);
    er_store_flush(er_taskset_store(ts));

    int failed = 0, hits = 0;
    counting = 1; /* no ck_assert in here: libcheck allocates */
    failed += er_run(w, t, &b, 0, out, hit, &st, &e) != ER_OK; /* hit */
    hits += st.hits;
    failed += er_run(w, t, &b, 1, out, hit, &st, &e) != ER_OK; /* miss */
    failed += er_run(w, t, &small, 1, out, hit, &st, &e) != ER_OK;
    counting = 0;
    ck_assert_int_eq(failed, 0);
    ck_assert_int_eq(hits, 1);
    ck_assert_msg(n_alloc == 0, "%ld allocations in er_run on a long input", n_alloc);
    openblas_set_num_threads(blas_threads);
    er_worker_free(w);
    er_taskset_free(ts);
    er_test_rmtree(dir);
#endif
}
END_TEST

static Suite *store_noalloc_suite(void) {
    Suite *s = suite_create("store_noalloc");
    TCase *tc = tcase_create("noalloc");
    tcase_add_loop_test(tc, test_no_alloc, 0, (int)(sizeof MODELS / sizeof MODELS[0]));
    tcase_add_loop_test(tc, test_no_alloc_compute, 0, 2);
    tcase_add_test(tc, test_no_alloc_deberta);
    tcase_add_test(tc, test_no_alloc_narrow);
    tcase_add_test(tc, test_no_alloc_heads);
    tcase_add_test(tc, test_no_alloc_long_input);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(store_noalloc_suite)
