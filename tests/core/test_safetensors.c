/* safetensors parsing: valid files and every kind of malformed header, each a
 * clear error (never a crash), plus F16/BF16 widening. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "safetensors.h"

/* Builds u64 header length + header + data_len bytes of data in a heap buffer. */
static unsigned char *image(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *buf = calloc(1, *len + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < data_len; i++) buf[8 + h + i] = (unsigned char)i;
    return buf;
}

static er_status parse(const char *header, size_t data_len, er_err *err) {
    size_t len;
    unsigned char *buf = image(header, data_len, &len);
    er_st_file *f = NULL;
    er_status st = er_st_parse(buf, len, &f, err);
    if (st == ER_OK) ck_assert_ptr_nonnull(f);
    else ck_assert_ptr_null(f);
    er_st_free(f);
    free(buf);
    return st;
}

START_TEST(valid_file) {
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                    "\"ids\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[32,48]},"
                    "\"empty\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[48,48]}}";
    size_t len;
    unsigned char *buf = image(h, 48, &len);
    er_st_file *f = NULL;
    er_err err;
    ck_assert_int_eq(er_st_parse(buf, len, &f, &err), ER_OK);
    ck_assert_uint_eq(er_st_count(f), 4);
    const er_st_tensor *a = er_st_find(f, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->dtype, ER_DTYPE_FP32);
    ck_assert_int_eq(a->ndim, 2);
    ck_assert_int_eq(a->shape[0], 2);
    ck_assert_int_eq(a->shape[1], 3);
    ck_assert_int_eq(a->numel, 6);
    ck_assert_ptr_eq(a->data, buf + 8 + strlen(h));
    const er_st_tensor *b = er_st_find(f, "b");
    ck_assert_int_eq(b->dtype, ER_DTYPE_FP16);
    ck_assert_ptr_eq(b->data, buf + 8 + strlen(h) + 24);
    ck_assert_int_eq(er_st_find(f, "ids")->dtype, ER_DTYPE_OTHER);
    ck_assert_ptr_null(er_st_find(f, "missing"));
    float tmp[2];
    ck_assert_int_eq(er_st_to_f32(er_st_find(f, "ids"), tmp, &err), ER_ERR_UNSUPPORTED);
    er_st_free(f);
    free(buf);
}
END_TEST

START_TEST(truncated_files) {
    er_err err;
    er_st_file *f = NULL;
    unsigned char tiny[5] = {1, 0, 0, 0, 0};
    ck_assert_int_eq(er_st_parse(tiny, sizeof tiny, &f, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "shorter"));
    /* header length says 100 bytes; only 20 follow */
    size_t len;
    unsigned char *buf = image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &len);
    buf[0] = 100;
    ck_assert_int_eq(er_st_parse(buf, 28, &f, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
    /* data section cut short: offsets run past it */
    buf[0] = (unsigned char)(len - 8 - 4);
    ck_assert_int_eq(er_st_parse(buf, len - 2, &f, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "data_offsets"));
    free(buf);
}
END_TEST

START_TEST(absurd_header_length) {
    unsigned char buf[16] = {0};
    buf[5] = 1; /* 2^40 */
    er_st_file *f = NULL;
    er_err err;
    ck_assert_int_eq(er_st_parse(buf, sizeof buf, &f, &err), ER_ERR_CAPACITY);
    ck_assert_ptr_nonnull(strstr(err.msg, "exceeds"));
    memset(buf, 0xff, 8); /* 2^64 - 1: must not wrap */
    ck_assert_int_eq(er_st_parse(buf, sizeof buf, &f, &err), ER_ERR_CAPACITY);
}
END_TEST

START_TEST(out_of_range_offsets) {
    er_err err;
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, &err),
                     ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'a'"));
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16, &err),
                     ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 16, &err),
                     ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 16, &err),
                     ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                           "\"data_offsets\":[18446744073709551612,18446744073709551616]}}", 16, &err),
                     ER_ERR_FORMAT);
}
END_TEST

START_TEST(overlapping_offsets) {
    er_err err;
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, &err),
                     ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "overlap"));
    /* adjacent is fine; so is an empty tensor anywhere */
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, &err),
                     ER_OK);
}
END_TEST

START_TEST(bad_dtype_and_shape) {
    er_err err;
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &err),
                     ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown dtype"));
    /* bytes disagree with dtype x shape */
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, &err),
                     ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "needs 12"));
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, &err),
                     ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, &err),
                     ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                           "\"data_offsets\":[0,4]}}", 4, &err), ER_ERR_FORMAT);
    /* element count overflow */
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
                           "\"data_offsets\":[0,4]}}", 4, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,9223372036854775807],"
                           "\"data_offsets\":[0,4]}}", 4, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":[1,2]}", 4, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &err),
                     ER_ERR_FORMAT);
}
END_TEST

START_TEST(bad_json) {
    er_err err;
    ck_assert_int_eq(parse("{\"a\":", 0, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "JSON"));
    ck_assert_int_eq(parse("[1,2,3]", 0, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"__metadata__\":3}", 0, &err), ER_ERR_FORMAT);
    ck_assert_int_eq(parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, &err),
                     ER_ERR_FORMAT); /* duplicate names */
    ck_assert_int_eq(parse("{}", 0, &err), ER_OK);
}
END_TEST

START_TEST(half_precision_widening) {
    ck_assert_float_eq(er_f16_to_f32(0x3C00), 1.0f);
    ck_assert_float_eq(er_f16_to_f32(0xC000), -2.0f);
    ck_assert_float_eq(er_f16_to_f32(0x7BFF), 65504.0f);
    ck_assert_float_eq(er_f16_to_f32(0x0001), ldexpf(1.0f, -24));
    ck_assert_float_eq(er_f16_to_f32(0x03FF), ldexpf(1023.0f, -24));
    ck_assert(isinf(er_f16_to_f32(0x7C00)));
    ck_assert(isnan(er_f16_to_f32(0x7E00)));
    ck_assert(signbit(er_f16_to_f32(0x8000)));
    ck_assert_float_eq(er_bf16_to_f32(0x3F80), 1.0f);
    ck_assert_float_eq(er_bf16_to_f32(0xC040), -3.0f);
}
END_TEST

START_TEST(open_files) {
    er_err err;
    er_st_file *f = NULL;
    ck_assert_int_eq(er_st_open("/nonexistent/model.safetensors", &f, &err), ER_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/model.safetensors"));
    char path[] = "/tmp/erserve-st-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t len;
    unsigned char *buf = image("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, &len);
    buf[len - 4] = 0x80; buf[len - 3] = 0x3F; buf[len - 2] = 0x00; buf[len - 1] = 0x40; /* 1, 2 */
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
    ck_assert_int_eq(er_st_open(path, &f, &err), ER_OK);
    float v[2];
    ck_assert_int_eq(er_st_to_f32(er_st_find(f, "w"), v, &err), ER_OK);
    ck_assert_float_eq(v[0], 1.0f);
    ck_assert_float_eq(v[1], 2.0f);
    er_st_free(f);
    /* the same file truncated: the error names the path */
    ck_assert_int_eq(truncate(path, (off_t)len - 1), 0);
    ck_assert_int_eq(er_st_open(path, &f, &err), ER_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    unlink(path);
    free(buf);
    er_st_free(NULL);
}
END_TEST

static Suite *safetensors_suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, valid_file);
    tcase_add_test(tc, truncated_files);
    tcase_add_test(tc, absurd_header_length);
    tcase_add_test(tc, out_of_range_offsets);
    tcase_add_test(tc, overlapping_offsets);
    tcase_add_test(tc, bad_dtype_and_shape);
    tcase_add_test(tc, bad_json);
    tcase_add_test(tc, half_precision_widening);
    tcase_add_test(tc, open_files);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(safetensors_suite)
