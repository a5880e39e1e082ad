/* A golden model rewritten in a narrow dtype, for the suites that check F16
 * and BF16 checkpoints (test_narrow, test_store_noalloc): every float tensor
 * rounded to F16 or BF16 and stored either so (AS_NARROW) or as its exact F32
 * widening (AS_WIDENED), so the two files hold the same numbers.
 * Header-only, so each suite stays one source file; uses libcheck's asserts. */
#ifndef ER_TEST_NARROW_COPY_H
#define ER_TEST_NARROW_COPY_H
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "safetensors.h"
#include "store_internal.h" /* er_f32_to_f16 */

typedef enum { AS_NARROW, AS_WIDENED } write_as;

/* v rounded to bfloat16 (nearest, ties to even; the fixtures hold no NaN). */
static inline uint16_t to_bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Float tensor t rounded to `dt` (FP16 or BF16): the narrow bits in *h
 * [numel] and their exact widening in *f [numel] (both malloc'd). */
static inline void round_tensor(const er_st_tensor *t, er_dtype dt, uint16_t **h, float **f) {
    *h = malloc((size_t)t->numel * sizeof **h);
    *f = malloc((size_t)t->numel * sizeof **f);
    ck_assert(*h && *f);
    ck_assert_int_eq(er_st_to_f32(t, *f, NULL), ER_OK);
    for (int64_t i = 0; i < t->numel; i++) {
        (*h)[i] = dt == ER_DTYPE_FP16 ? er_f32_to_f16((*f)[i]) : to_bf16((*f)[i]);
        (*f)[i] = dt == ER_DTYPE_FP16 ? er_f16_to_f32((*h)[i]) : er_bf16_to_f32((*h)[i]);
    }
}

/* Appends tensor t's header entry at data offset *off and advances it. */
static inline size_t header_entry(char *buf, size_t cap, const er_st_tensor *t,
                                  const char *dtype, size_t bytes, size_t *off) {
    size_t n = (size_t)snprintf(buf, cap, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, dtype);
    for (int d = 0; d < t->ndim; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    n += (size_t)snprintf(buf + n, cap - n, "],\"data_offsets\":[%zu,%zu]}", *off, *off + bytes);
    *off += bytes;
    return n;
}

/* dst = src with every float tensor rounded to dt, stored as dt (AS_NARROW)
 * or as its F32 widening (AS_WIDENED); other dtypes copied as they are. */
static inline void write_rounded(const char *src, const char *dst, er_dtype dt, write_as as) {
    er_st_file *f;
    ck_assert_int_eq(er_st_open(src, &f, NULL), ER_OK);
    const size_t n = er_st_count(f);
    size_t cap = 256 + n * 512, len = 0, off = 0;
    char *hdr = malloc(cap);
    ck_assert_ptr_nonnull(hdr);
    len += (size_t)snprintf(hdr, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        const er_st_tensor *t = er_st_at(f, i);
        const bool fl = t->dtype != ER_DTYPE_OTHER;
        const char *name = !fl ? t->dtype_name : as == AS_WIDENED ? "F32"
                           : dt == ER_DTYPE_FP16 ? "F16" : "BF16";
        size_t bytes = !fl ? t->nbytes : (size_t)t->numel * (as == AS_WIDENED ? 4 : 2);
        len += header_entry(hdr + len, cap - len, t, name, bytes, &off);
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    FILE *o = fopen(dst, "wb");
    ck_assert_ptr_nonnull(o);
    uint64_t hl = len; /* little-endian hosts, as the loader */
    ck_assert(fwrite(&hl, 8, 1, o) == 1 && fwrite(hdr, 1, len, o) == len);
    for (size_t i = 0; i < n; i++) {
        const er_st_tensor *t = er_st_at(f, i);
        if (t->dtype == ER_DTYPE_OTHER) {
            ck_assert(fwrite(t->data, 1, t->nbytes, o) == t->nbytes);
            continue;
        }
        uint16_t *h;
        float *w;
        round_tensor(t, dt, &h, &w);
        const size_t k = (size_t)t->numel;
        ck_assert(as == AS_WIDENED ? fwrite(w, 4, k, o) == k : fwrite(h, 2, k, o) == k);
        free(h);
        free(w);
    }
    ck_assert_int_eq(fclose(o), 0);
    free(hdr);
    er_st_free(f);
}

/* Copies golden model `name` into tmp/n (as dt) and tmp/w (its widening). */
static inline void write_pair(const char *name, er_dtype dt, const char *tmp, char *nd,
                              char *wd, size_t cap) {
    char src[512], cmd[1400], nf[600], wf[600];
    snprintf(src, sizeof src, "tests/fixtures/models/%s/model.safetensors", name);
    snprintf(nd, cap, "%s/n", tmp);
    snprintf(wd, cap, "%s/w", tmp);
    snprintf(cmd, sizeof cmd, "cp -r 'tests/fixtures/models/%s' %s && cp -r %s %s", name, nd, nd,
             wd);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(nf, sizeof nf, "%s/model.safetensors", nd);
    snprintf(wf, sizeof wf, "%s/model.safetensors", wd);
    write_rounded(src, nf, dt, AS_NARROW);
    write_rounded(src, wf, dt, AS_WIDENED);
}

#endif
