/* Value codec of the activation store, shared by store.c and the tests.
 * Not a public header.
 *
 * Value layout (little-endian), ER_STORE_HEADER_BYTES header then payload:
 *    0  magic "ERAC"          4  u16 format version    6  u8 dtype   7  u8 0
 *    8  u32 n_tokens         12  u32 hidden            16  u32 cut  20  u32 0
 *   24  u64 payload bytes    32  checksum[16] over header[0, 32) and payload
 *   48  key[0, 16): binds the value to its key (format 2), so a damaged
 *       B-tree that points one key at another key's intact value gives a miss,
 *       never a wrong answer
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

/* Writes key[0, 16) into a value's header / 0 when the value (header
 * already checked) carries key. */
void er_value_bind_key(uint8_t *v, const uint8_t key[ER_STORE_KEY_BYTES]);
int er_value_check_key(const uint8_t *v, const uint8_t key[ER_STORE_KEY_BYTES]);

/* Decodes a checked value into out [n, h]. */
void er_value_decode(const uint8_t *v, float *out);

/* x[n, h] in place = decode(encode(x)), bit for bit. */
void er_value_round(er_dtype d, int n, int h, float *x);

/* True for the dtypes a value can be stored in (FP32, FP16, INT8). */
bool er_store_dtype_valid(er_dtype d);

/* Queues len raw bytes as the value of key (tests: corrupt values). */
er_status er_store_put_raw(er_store *s, const uint8_t key[ER_STORE_KEY_BYTES], const void *v,
                           size_t len, er_err *err);

/* ---- the data file without LMDB (store_file.c) ---- */

typedef struct {
    bool exists;         /* data.mdb is there (false: a new store) */
    bool meta_ok[2];     /* each meta page is a valid LMDB meta page */
    int meta;            /* the one LMDB would use (newer txnid), -1 none */
    uint64_t file_bytes, psize, last_pg, txnid;
} er_store_file_info;

/* Reads the two meta pages of data_path and checks that the file holds every
 * page its newer meta claims ((last_pg + 1) * page size bytes): LMDB maps the
 * file and would die of SIGBUS on a page past its end.  ER_OK for a missing
 * or empty file (LMDB creates it); ER_ERR_STORE, naming the file and what to
 * run, for a damaged meta page or a short file; ER_ERR_IO. */
er_status er_store_file_check(const char *data_path, er_store_file_info *info, er_err *err);

/* Called with every key[32] -> value found in a leaf page (value pointing
 * into the file, len bytes, unchecked); a status other than ER_OK stops the
 * walk and is returned. */
typedef er_status (*er_salvage_fn)(void *user, const uint8_t *key, const uint8_t *v, size_t len,
                                   er_err *err);

/* Walks every page of data_path inside the file (never past its end) and
 * hands each leaf node with a 32-byte key to fn, without LMDB: the values a
 * damaged B-tree no longer reaches are found too (and stale copies in freed
 * pages, which are valid values of their keys).  *pages = leaf pages seen. */
er_status er_store_file_salvage(const char *data_path, er_salvage_fn fn, void *user,
                                uint64_t *pages, er_err *err);

/* er_store_file_check, then a walk over every branch and leaf page LMDB can
 * reach from the newer meta (the free list, the main database, each named
 * database), checking what LMDB trusts when it writes: page numbers in range
 * and referenced once, each page's header naming itself, flags, bounds,
 * nodes inside their page, keys in order, overflow pages, free lists.  LMDB
 * would crash (not fail) writing into such a page.  ER_ERR_STORE names the
 * file and the first bad page.  Only meaningful while no other process writes
 * the file. */
er_status er_store_file_check_tree(const char *data_path, er_err *err);

/* 1 when another process has the LMDB environment in dir open. */
int er_store_file_in_use(const char *dir);

#endif
