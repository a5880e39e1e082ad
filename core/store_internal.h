/* Value codec of the activation store, shared by store.c and the tests.
 * Not a public header.
 *
 * Value layout (little-endian), ER_STORE_HEADER_BYTES header then payload:
 *    0  magic "ERAC"          4  u16 format version    6  u8 dtype   7  u8 0
 *    8  u32 n_tokens         12  u32 hidden            16  u32 cut  20  u32 0
 *   24  u64 payload bytes    32  checksum[16] over header[0, 32) and payload
 *   48  16 zero bytes (reserved)
 * Payload: fp32 [n, h] floats | fp16 [n, h] halves | int8 [n] float scales
 * then [n, h] int8. */
#ifndef ER_STORE_INTERNAL_H
#define ER_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

uint16_t er_f32_to_f16(float f); /* round to nearest even, saturating to +-65504 */
float er_half_to_float(uint16_t h); /* the decoder's: branch-free, equal to er_f16_to_f32 */

/* Writes the header and payload of x [n, h] into dst (er_store_value_size bytes). */
void er_value_encode(er_dtype d, int cut, int n, int h, const float *x, uint8_t *dst);

/* Checks the header of a value of len bytes: magic, version, dtype, sizes,
 * and, when expect_* >= 0, that they match.  0 when good. */
int er_value_check_header(const uint8_t *v, size_t len, int expect_cut, int expect_n,
                          int expect_h);

/* 0 when the checksum matches (header already checked). */
int er_value_check_sum(const uint8_t *v, size_t len);

/* Decodes a checked value into out [n, h]. */
void er_value_decode(const uint8_t *v, float *out);

/* x[n, h] in place = decode(encode(x)), bit for bit. */
void er_value_round(er_dtype d, int n, int h, float *x);

/* True for the dtypes a value can be stored in (FP32, FP16, INT8). */
bool er_store_dtype_valid(er_dtype d);

/* Queues len raw bytes as the value of key (tests: corrupt values). */
er_status er_store_put_raw(er_store *s, const uint8_t key[ER_STORE_KEY_BYTES], const void *v,
                           size_t len, er_err *err);

#endif
