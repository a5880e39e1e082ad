/* The activation store: keys, value codec per dtype, corruption, budget and
 * eviction, map-full handling, purge, stats, persistence.  Each test opens
 * its own store in a fresh temporary directory (never across libcheck's fork). */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../store_data.h"
#include "../tmpdir.h"
#include "store.h"
#include "safetensors.h"
#include "store_internal.h"

static char dir[64];

static void mk_dir(void) { er_test_mkdtemp(dir, sizeof dir, "store"); }
static void rm_dir(void) { er_test_rmtree(dir); }

static er_store *open_store(er_dtype d, uint64_t budget, uint64_t map) {
    er_store_params p = er_store_default_params();
    p.dtype = d;
    p.budget_bytes = budget;
    p.map_bytes = map;
    p.queue_bytes = 8u << 20;
    er_store *s = NULL;
    er_err e;
    ck_assert_msg(er_store_open(dir, &p, &s, &e) == ER_OK, "%s", e.msg);
    return s;
}

/* The end of a test: the indexes agree with the values; then the reader
 * (NULL accepted), the store and its directory go. */
static void close_verified(er_store *s, er_store_reader *r) {
    ck_assert_int_eq(er_store_verify(s, false, NULL, NULL, NULL), ER_OK);
    er_store_reader_free(r);
    er_store_close(s);
    rm_dir();
}

static void key_of(int i, uint8_t key[32]) {
    uint8_t fp[32] = {7};
    int32_t ids[2] = {i, 101};
    er_store_key(fp, 3, 2, ids, NULL, 0, key);
}

/* One dtype enum for weights and stored values: names round-trip, the store
 * takes only the three it can encode, and their header bytes never move. */
START_TEST(test_dtypes) {
    const er_dtype all[] = {ER_DTYPE_FP32, ER_DTYPE_FP16, ER_DTYPE_INT8, ER_DTYPE_BF16};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(er_dtype_parse(er_dtype_name(all[i])), (int)all[i]);
    ck_assert_int_eq(ER_DTYPE_FP32, 0);
    ck_assert_int_eq(ER_DTYPE_FP16, 1);
    ck_assert_int_eq(ER_DTYPE_INT8, 2);
    ck_assert_uint_eq(er_dtype_size(ER_DTYPE_FP16), 2);
    ck_assert_uint_eq(er_dtype_size(ER_DTYPE_OTHER), 0);
    ck_assert_int_eq(er_dtype_parse("other"), -1);
    ck_assert_int_eq(er_dtype_parse(NULL), -1);
    ck_assert_int_eq(er_store_dtype_parse("int8"), ER_DTYPE_INT8);
    ck_assert_int_eq(er_store_dtype_parse("bf16"), -1);
    ck_assert_int_eq(er_store_dtype_parse("F32"), -1);
    er_store_params p = er_store_default_params();
    p.dtype = ER_DTYPE_BF16;
    er_store *s = NULL;
    ck_assert_int_eq(er_store_open("/tmp/er_never_created", &p, &s, NULL), ER_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_key) {
    uint8_t fp[32] = {1}, fp2[32] = {2}, k[7][32];
    int32_t ids[3] = {101, 7, 102}, ids2[3] = {101, 8, 102}, ty[3] = {0, 0, 0}, ty2[3] = {0, 1, 1};
    er_store_key(fp, 6, 3, ids, NULL, 0, k[0]);
    er_store_key(fp, 6, 3, ids, ty, 0, k[1]);
    ck_assert_mem_eq(k[0], k[1], 32); /* NULL type ids are zeros: same result, same key */
    er_store_key(fp2, 6, 3, ids, NULL, 0, k[2]);
    er_store_key(fp, 5, 3, ids, NULL, 0, k[3]);
    er_store_key(fp, 6, 3, ids2, NULL, 0, k[4]);
    er_store_key(fp, 6, 3, ids, ty2, 0, k[5]);
    er_store_key(fp, 6, 3, ids, NULL, 1, k[6]);
    for (int i = 2; i < 7; i++) ck_assert_msg(memcmp(k[0], k[i], 32), "key %d collides", i);
    er_store_key(fp, 6, 2, ids, NULL, 0, k[2]); /* a prefix is another sequence */
    ck_assert(memcmp(k[0], k[2], 32));
}
END_TEST

START_TEST(test_f16) {
    ck_assert_uint_eq(er_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(er_f32_to_f16(-2.0f), 0xc000);
    ck_assert_uint_eq(er_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(er_f32_to_f16(1e9f), 0x7bff); /* saturates */
    ck_assert_uint_eq(er_f32_to_f16(0x1p-24f), 0x0001);
    ck_assert_uint_eq(er_f32_to_f16(0x1p-26f), 0x0000);
    ck_assert_uint_eq(er_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    ck_assert_uint_eq(er_f32_to_f16(1.0f + 0x1.8p-11f), 0x3c01);
    ck_assert(isnan(er_f16_to_f32(er_f32_to_f16(NAN))));
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite half round-trips */
        ck_assert_uint_eq(er_f32_to_f16(er_f16_to_f32((uint16_t)h)), h);
    for (uint32_t h = 0; h < 0x10000; h++) { /* the store's decoder agrees with the loader's */
        float a = er_half_to_float((uint16_t)h), b = er_f16_to_f32((uint16_t)h);
        ck_assert_msg(!memcmp(&a, &b, 4) || (isnan(a) && isnan(b)), "half %04x", h);
    }
}
END_TEST

START_TEST(test_roundtrip) {
    const int n = 7, h = 48;
    float x[7 * 48], y[7 * 48];
    for (int d = 0; d < 3; d++) {
        mk_dir();
        er_store *s = open_store((er_dtype)d, 1 << 20, 0);
        er_store_reader *r;
        ck_assert_int_eq(er_store_reader_new(s, &r, NULL), ER_OK);
        uint8_t key[32];
        key_of(1, key);
        ck_assert_int_eq(er_store_get(r, key, 3, n, h, y, NULL), ER_ERR_NOT_FOUND);
        er_test_fill(x, n, h, 1);
        x[5] = 0.0f;
        ck_assert_int_eq(er_store_put(s, key, 3, n, h, x, true, NULL), ER_OK);
        er_store_flush(s);
        er_err e;
        ck_assert_msg(er_store_get(r, key, 3, n, h, y, &e) == ER_OK, "%s", e.msg);
        for (int t = 0; t < n; t++) {
            float amax = 0;
            for (int j = 0; j < h; j++) amax = fmaxf(amax, fabsf(x[t * h + j]));
            for (int j = 0; j < h; j++) {
                float a = x[t * h + j], b = y[t * h + j];
                if (d == ER_DTYPE_FP32) ck_assert_float_eq(a, b);
                else if (d == ER_DTYPE_FP16) ck_assert_float_le(fabsf(a - b), fabsf(a) * 0x1p-11f);
                else ck_assert_float_le(fabsf(a - b), amax / 127.0f * 0.5001f);
            }
        }
        ck_assert_float_eq(y[5], 0.0f);
        /* the same key asked with another shape is not this value: corrupt */
        ck_assert_int_eq(er_store_get(r, key, 3, n - 1, h, y, NULL), ER_ERR_NOT_FOUND);
        ck_assert_int_eq(er_store_get(r, key, 4, n, h, y, NULL), ER_ERR_NOT_FOUND);
        er_store_counters c;
        er_store_stats(s, &c);
        ck_assert_uint_eq(c.entries, 1);
        ck_assert_uint_eq(c.bytes, er_store_value_size((er_dtype)d, n, h));
        ck_assert_uint_eq(c.hits, 1);
        ck_assert_uint_eq(c.misses, 3);
        ck_assert_uint_eq(c.corrupt, 2);
        ck_assert_uint_eq(c.inserts, 1);
        ck_assert_uint_eq(c.reads, 4);
        ck_assert_uint_gt(c.read_ns_sum, 0);
        er_store_reader_free(r);
        er_store_close(s);
        rm_dir();
    }
    ck_assert_uint_eq(er_store_value_size(ER_DTYPE_FP16, 128, 768), 64 + 128 * 768 * 2);
    ck_assert_uint_eq(er_store_value_size(ER_DTYPE_INT8, 128, 768), 64 + 128 * 4 + 128 * 768);
}
END_TEST

START_TEST(test_corrupt) {
    mk_dir();
    er_store *s = open_store(ER_DTYPE_FP32, 1 << 20, 0);
    er_store_reader *r;
    ck_assert_int_eq(er_store_reader_new(s, &r, NULL), ER_OK);
    const int n = 4, h = 16;
    float x[64], y[64];
    uint8_t v[64 + 256], key[32];
    size_t len = er_store_value_size(ER_DTYPE_FP32, n, h);
    er_test_fill(x, n, h, 9);
    /* three bad values: a flipped payload bit, a bad magic, a truncation */
    for (int k = 0; k < 3; k++) {
        er_value_encode(ER_DTYPE_FP32, 3, n, h, x, v);
        if (k == 0) v[100] ^= 4;
        if (k == 1) v[0] = 'X';
        key_of(100 + k, key);
        ck_assert_int_eq(er_store_put_raw(s, key, v, k == 2 ? len - 1 : len, NULL), ER_OK);
    }
    er_store_flush(s);
    uint64_t ok, bad;
    ck_assert_int_eq(er_store_verify(s, false, &ok, &bad, NULL), ER_OK);
    ck_assert_uint_eq(ok, 0);
    ck_assert_uint_eq(bad, 3);
    for (int k = 0; k < 3; k++) {
        key_of(100 + k, key);
        ck_assert_int_eq(er_store_get(r, key, 3, n, h, y, NULL), ER_ERR_NOT_FOUND);
    }
    er_store_counters c;
    er_store_stats(s, &c);
    ck_assert_uint_eq(c.corrupt, 3);
    /* recomputed and overwritten: a hit afterwards */
    key_of(100, key);
    ck_assert_int_eq(er_store_put(s, key, 3, n, h, x, true, NULL), ER_OK);
    er_store_flush(s);
    ck_assert_int_eq(er_store_get(r, key, 3, n, h, y, NULL), ER_OK);
    ck_assert_mem_eq(x, y, sizeof(float) * (size_t)(n * h));
    ck_assert_int_eq(er_store_verify(s, true, &ok, &bad, NULL), ER_OK);
    ck_assert_uint_eq(ok, 1);
    ck_assert_uint_eq(bad, 2);
    ck_assert_int_eq(er_store_verify(s, false, &ok, &bad, NULL), ER_OK);
    ck_assert_uint_eq(bad, 0);
    er_store_stats(s, &c);
    ck_assert_uint_eq(c.entries, 1);
    ck_assert_uint_eq(c.bytes, len);
    er_store_reader_free(r);
    er_store_close(s);
    rm_dir();
}
END_TEST

START_TEST(test_eviction_lru) {
    mk_dir();
    const int n = 2, h = 32;
    size_t vlen = er_store_value_size(ER_DTYPE_FP32, n, h);
    er_store *s = open_store(ER_DTYPE_FP32, 10 * vlen, 0);
    er_store_reader *r;
    ck_assert_int_eq(er_store_reader_new(s, &r, NULL), ER_OK);
    float x[64];
    uint8_t key[32];
    for (int i = 0; i < 10; i++) {
        key_of(i, key);
        er_test_fill(x, n, h, i);
        ck_assert_int_eq(er_store_put(s, key, 3, n, h, x, true, NULL), ER_OK);
        er_store_flush(s); /* one commit each: a strict age order */
    }
    key_of(0, key); /* the oldest becomes the most recently used */
    ck_assert_int_eq(er_store_get(r, key, 3, n, h, x, NULL), ER_OK);
    er_store_flush(s);
    for (int i = 10; i < 15; i++) {
        key_of(i, key);
        er_test_fill(x, n, h, i);
        ck_assert_int_eq(er_store_put(s, key, 3, n, h, x, true, NULL), ER_OK);
        er_store_flush(s);
    }
    er_store_counters c;
    er_store_stats(s, &c);
    ck_assert_uint_eq(c.entries, 10);
    ck_assert_uint_le(c.bytes, 10 * vlen);
    ck_assert_uint_eq(c.evictions, 5);
    for (int i = 0; i < 15; i++) {
        key_of(i, key);
        er_status want = (i == 0 || i >= 6) ? ER_OK : ER_ERR_NOT_FOUND;
        ck_assert_msg(er_store_get(r, key, 3, n, h, x, NULL) == want, "entry %d", i);
    }
    /* a burst larger than the budget in one transaction stays under it */
    for (int i = 100; i < 140; i++) {
        key_of(i, key);
        er_test_fill(x, n, h, i);
        ck_assert_int_eq(er_store_put(s, key, 3, n, h, x, true, NULL), ER_OK);
    }
    er_store_flush(s);
    er_store_stats(s, &c);
    ck_assert_uint_le(c.bytes, 10 * vlen);
    ck_assert_int_eq(er_store_verify(s, false, NULL, NULL, NULL), ER_OK);
    /* a value larger than the whole budget is simply not cached */
    float big[64 * 32];
    ck_assert_int_eq(er_store_put(s, key, 3, 64, 32, big, true, NULL), ER_ERR_CAPACITY);
    er_store_reader_free(r);
    er_store_close(s);
    rm_dir();
}
END_TEST

START_TEST(test_map_full) {
    mk_dir();
    /* a budget far above the map: LMDB's MDB_MAP_FULL is what bounds it */
    const int n = 16, h = 256; /* 16 KiB values: overflow pages */
    er_store *s = open_store(ER_DTYPE_FP32, 1ull << 30, 1u << 20);
    er_store_reader *r;
    ck_assert_int_eq(er_store_reader_new(s, &r, NULL), ER_OK);
    static float x[16 * 256];
    uint8_t key[32];
    for (int i = 0; i < 300; i++) {
        key_of(i, key);
        er_test_fill(x, n, h, i);
        ck_assert_int_eq(er_store_put(s, key, 3, n, h, x, true, NULL), ER_OK);
        if (i % 10 == 9) er_store_flush(s);
    }
    er_store_flush(s);
    er_store_counters c;
    er_store_stats(s, &c);
    ck_assert_uint_gt(c.map_full, 0);
    ck_assert_uint_gt(c.evictions, 0);
    ck_assert_uint_lt(c.entries, 60);
    ck_assert_msg(c.inserts >= 290, "inserts %llu, map_full %llu, write errors %llu, evictions %llu, entries %llu", (unsigned long long)c.inserts, (unsigned long long)c.map_full, (unsigned long long)c.write_errors, (unsigned long long)c.evictions, (unsigned long long)c.entries);
    key_of(299, key);
    ck_assert_int_eq(er_store_get(r, key, 3, n, h, x, NULL), ER_OK);
    close_verified(s, r);
}
END_TEST

START_TEST(test_purge_reopen) {
    mk_dir();
    const int n = 3, h = 8;
    float x[24], y[24];
    uint8_t key[32];
    er_store *s = open_store(ER_DTYPE_FP16, 1 << 20, 0);
    for (int i = 0; i < 5; i++) {
        key_of(i, key);
        er_test_fill(x, n, h, i);
        er_store_put(s, key, 3, n, h, x, true, NULL);
    }
    er_store_close(s); /* commits the queue */
    s = open_store(ER_DTYPE_FP16, 1 << 20, 0);
    er_store_counters c;
    er_store_stats(s, &c);
    ck_assert_uint_eq(c.entries, 5);
    ck_assert_uint_eq(c.bytes, 5 * er_store_value_size(ER_DTYPE_FP16, n, h));
    er_store_reader *r;
    ck_assert_int_eq(er_store_reader_new(s, &r, NULL), ER_OK);
    key_of(4, key);
    ck_assert_int_eq(er_store_get(r, key, 3, n, h, y, NULL), ER_OK);
    ck_assert_int_eq(er_store_purge(s, NULL), ER_OK);
    er_store_stats(s, &c);
    ck_assert_uint_eq(c.entries, 0);
    ck_assert_uint_eq(c.bytes, 0);
    ck_assert_int_eq(er_store_get(r, key, 3, n, h, y, NULL), ER_ERR_NOT_FOUND);
    close_verified(s, r);
}
END_TEST

typedef struct {
    er_store *s;
    int id, errors;
} rd_arg;

static void *reader_main(void *a) {
    rd_arg *ra = a;
    er_store_reader *r;
    if (er_store_reader_new(ra->s, &r, NULL) != ER_OK) { ra->errors++; return NULL; }
    float y[4 * 64], x[4 * 64];
    for (int it = 0; it < 2000; it++) {
        int i = (it * 7 + ra->id) % 200;
        uint8_t key[32];
        key_of(i, key);
        er_status st = er_store_get(r, key, 3, 4, 64, y, NULL);
        if (st == ER_OK) {
            er_test_fill(x, 4, 64, i);
            if (memcmp(x, y, sizeof x)) ra->errors++;
        } else if (st != ER_ERR_NOT_FOUND) {
            ra->errors++;
        }
    }
    er_store_reader_free(r);
    return NULL;
}

START_TEST(test_concurrent) {
    mk_dir();
    er_store *s = open_store(ER_DTYPE_FP32, 64 * er_store_value_size(ER_DTYPE_FP32, 4, 64), 0);
    pthread_t th[4];
    rd_arg args[4];
    for (int k = 0; k < 4; k++) {
        args[k] = (rd_arg){s, k, 0};
        pthread_create(&th[k], NULL, reader_main, &args[k]);
    }
    float x[4 * 64];
    for (int i = 0; i < 200; i++) { /* writes race the readers, with evictions */
        uint8_t key[32];
        key_of(i, key);
        er_test_fill(x, 4, 64, i);
        er_store_put(s, key, 3, 4, 64, x, i % 2, NULL);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        ck_assert_int_eq(args[k].errors, 0);
    }
    er_store_flush(s);
    close_verified(s, NULL);
}
END_TEST

static Suite *store_suite(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_key);
    tcase_add_test(tc, test_f16);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_corrupt);
    tcase_add_test(tc, test_eviction_lru);
    tcase_add_test(tc, test_map_full);
    tcase_add_test(tc, test_purge_reopen);
    tcase_add_test(tc, test_concurrent);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(store_suite)
