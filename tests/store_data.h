/* Deterministic activations for the store's tests: value i is x [n, h], the
 * same on every run and in every process, so a reader can check any hit
 * against what was written.  Header-only, like tmpdir.h. */
#ifndef ER_TEST_STORE_DATA_H
#define ER_TEST_STORE_DATA_H
#include <stdint.h>

static inline void er_test_fill(float *x, int n, int h, int i) {
    uint32_t r = 2463534242u + (uint32_t)i * 7919u;
    for (int k = 0; k < n * h; k++) {
        r ^= r << 13; r ^= r >> 17; r ^= r << 5;
        x[k] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 8.0f;
    }
}

#endif
