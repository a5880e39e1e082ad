/* libFuzzer target for the store's value parser: whatever bytes LMDB hands
 * back (a torn write, a flipped bit, a value from another version) go
 * through the same header and checksum checks as er_store_get, and only a
 * value that passes both is decoded.  The checks must never read outside the
 * value, and a value whose header passes must decode within its size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define MAX_DECODE_FLOATS (1u << 20) /* keep the fuzzer's own allocations small */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A copy, so that out-of-bounds reads of the value are caught exactly. */
    uint8_t *v = malloc(size ? size : 1);
    if (!v) return 0;
    memcpy(v, data, size);
    /* The decoder relies on the header check alone for its bounds, so decode
     * whatever passes it; the checksum (almost never matched by mutations)
     * is exercised on its own. */
    if (er_value_check_header(v, size, -1, -1, -1) == 0) {
        (void)er_value_check_sum(v, size);
        uint32_t n, h;
        memcpy(&n, v + 8, 4); /* little-endian hosts, as the format */
        memcpy(&h, v + 12, 4);
        if ((uint64_t)n * h <= MAX_DECODE_FLOATS) {
            float *out = malloc((size_t)n * h * sizeof *out);
            if (out) er_value_decode(v, out);
            free(out);
        }
    }
    free(v);
    return 0;
}
