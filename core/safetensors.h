/* safetensors: parse, validate and mmap Hugging Face weight files.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the data section; offsets are relative to its start.
 *
 * Every field of the header is checked before use: the header length against
 * the file and ER_ST_MAX_HEADER, each tensor's dtype, rank and shape (with
 * overflow-checked element counts), its offsets against the data section, its
 * byte size against dtype x shape, and no two tensors may overlap.
 *
 * Ownership: an er_st_file owns its mapping and its tensor table; the
 * er_st_tensor pointers and their `data` stay valid until er_st_free.
 * Thread-safety: immutable after er_st_open/er_st_parse; any number of
 * threads may read it concurrently. */
#ifndef ER_SAFETENSORS_H
#define ER_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "er_error.h"

#define ER_ST_MAX_HEADER (100u << 20) /* the reference library's own bound */
#define ER_ST_MAX_DIMS 8
#define ER_ST_MAX_TENSORS 100000

typedef struct {
    const char *name;       /* NUL-terminated, owned by the file */
    er_dtype dtype;         /* FP32, FP16, BF16 or OTHER (dtype.h) */
    const char *dtype_name; /* as written in the header ("F32", "I64", ...) */
    int ndim;
    int64_t shape[ER_ST_MAX_DIMS];
    int64_t numel;
    const void *data;       /* into the data section; may be unaligned */
    size_t nbytes;
} er_st_tensor;

typedef struct er_st_file er_st_file;

/* Parses a complete safetensors image held in memory (not copied: `buf` must
 * outlive the result).  Returns ER_OK and *out, or an error code with a
 * message naming the offending tensor and field:
 *   ER_ERR_FORMAT    truncated file, bad header length, bad JSON, bad field,
 *                    offsets out of range or overlapping, size != dtype x shape
 *   ER_ERR_CAPACITY  header or tensor count over the bounds above
 *   ER_ERR_NOMEM */
er_status er_st_parse(const void *buf, size_t len, er_st_file **out, er_err *err);

/* Opens and mmaps `path` read-only, then parses it as er_st_parse does.
 * Extra codes: ER_ERR_IO (open/stat/mmap failed, errno text in message). */
er_status er_st_open(const char *path, er_st_file **out, er_err *err);

/* Releases the table and the mapping (if any).  NULL is accepted. */
void er_st_free(er_st_file *f);

/* Whether [p, p + n) lies inside f's own read-only mmap (er_st_open), whose
 * pages can be dropped and are re-read from the file when touched again. */
bool er_st_in_map(const er_st_file *f, const void *p, size_t n);

/* Number of tensors, and the i-th in header order (0 <= i < count). */
size_t er_st_count(const er_st_file *f);
const er_st_tensor *er_st_at(const er_st_file *f, size_t i);

/* The tensor called `name`, or NULL. */
const er_st_tensor *er_st_find(const er_st_file *f, const char *name);

/* Converts one element of F16 / BF16 to float (exact). */
float er_f16_to_f32(uint16_t h);
float er_bf16_to_f32(uint16_t h);

/* Copies `t` into dst as float32, converting F16/BF16 (exact widening).
 * dst must hold t->numel floats.  ER_ERR_UNSUPPORTED for ER_DTYPE_OTHER. */
er_status er_st_to_f32(const er_st_tensor *t, float *dst, er_err *err);

/* Elements [first, first + n) of an F32, F16 or BF16 tensor as float32 into
 * dst[n] (exact); the caller keeps the range inside t->numel.  No
 * allocation, thread-safe: the forward widens embedding rows with it. */
void er_st_range_to_f32(const er_st_tensor *t, int64_t first, int64_t n, float *dst);

#endif
