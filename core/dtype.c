#include "dtype.h"

#include <string.h>

static const struct {
    const char *name;
    size_t size;
} DTYPES[] = {
    [ER_DTYPE_FP32] = {"fp32", 4},
    [ER_DTYPE_FP16] = {"fp16", 2},
    [ER_DTYPE_INT8] = {"int8", 1},
    [ER_DTYPE_BF16] = {"bf16", 2},
    [ER_DTYPE_OTHER] = {"other", 0},
};

#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

const char *er_dtype_name(er_dtype d) { return (unsigned)d < N_DTYPES ? DTYPES[d].name : "?"; }

int er_dtype_parse(const char *name) {
    for (unsigned i = 0; name && i < N_DTYPES; i++)
        if (i != ER_DTYPE_OTHER && !strcmp(name, DTYPES[i].name)) return (int)i;
    return -1;
}

size_t er_dtype_size(er_dtype d) { return (unsigned)d < N_DTYPES ? DTYPES[d].size : 0; }
