/* er_dtype: the element types erserve reads and stores, one enum for the
 * safetensors loader (which weights it can compute with) and the activation
 * store (how values are kept).
 *
 * Spellings: configuration and command lines say "fp32", "fp16", "bf16",
 * "int8" (er_dtype_name / er_dtype_parse); safetensors headers say "F32",
 * "F16", "BF16" (safetensors.c maps those, and every other safetensors dtype
 * to ER_DTYPE_OTHER).
 *
 * The numeric values of FP32, FP16 and INT8 are written into stored values'
 * headers (core/STORE.md): never renumber them.
 *
 * Every function is pure: thread-safe, no allocation. */
#ifndef ER_DTYPE_H
#define ER_DTYPE_H

#include <stddef.h>

typedef enum {
    ER_DTYPE_FP32 = 0, /* IEEE single: weights as computed, exact store values */
    ER_DTYPE_FP16 = 1, /* IEEE half: weights widened at load; store values rounded to
                          nearest even, saturating */
    ER_DTYPE_INT8 = 2, /* store values only: symmetric per-token scale, x ~= scale[t] * q */
    ER_DTYPE_BF16 = 3, /* bfloat16 weights, widened at load */
    ER_DTYPE_OTHER = 4 /* a valid safetensors dtype erserve does not compute with */
} er_dtype;

/* "fp32", "fp16", "int8", "bf16", "other"; "?" for a value outside the enum.
 * Static strings. */
const char *er_dtype_name(er_dtype d);

/* The dtype spelled `name` as er_dtype_name spells it ("other" excepted), or
 * -1 when NULL or unknown. */
int er_dtype_parse(const char *name);

/* Bytes of one element: 4, 2, 1, 2; 0 for ER_DTYPE_OTHER (its width depends
 * on the safetensors dtype) and for a value outside the enum. */
size_t er_dtype_size(er_dtype d);

#endif
