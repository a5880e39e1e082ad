/* libFuzzer target for the model loader's parsers of outside bytes: the
 * safetensors header and tensor table, config.json, and the
 * sentence-transformers pooling and Dense configs.  The first byte picks the
 * parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t which = data[0] % 4;
    data++;
    size--;
    er_err err;
    if (which == 0) {
        er_st_file *f = NULL;
        if (er_st_parse(data, size, &f, &err) == ER_OK) {
            /* Touch every tensor's bytes: they must lie inside the buffer. */
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < er_st_count(f); i++) {
                const er_st_tensor *t = er_st_at(f, i);
                const uint8_t *p = t->data;
                if (t->nbytes) sink ^= p[0] ^ p[t->nbytes - 1];
                if (t->dtype != ER_DTYPE_OTHER && t->numel > 0 && t->numel < 4096) {
                    float *tmp = malloc((size_t)t->numel * sizeof *tmp);
                    er_st_to_f32(t, tmp, &err);
                    free(tmp);
                }
            }
            (void)sink;
            er_st_free(f);
        }
    } else if (which == 1) {
        er_config c;
        if (er_config_parse((const char *)data, size, &c, &err) == ER_OK) er_config_free(&c);
    } else if (which == 2) {
        er_config c;
        memset(&c, 0, sizeof c);
        er_config_parse_pooling((const char *)data, size, &c, &err);
    } else {
        er_config c;
        memset(&c, 0, sizeof c);
        c.hidden_size = 12;
        for (int i = 0; i < ER_MAX_DENSE + 1; i++) /* up to the module limit and past it */
            er_config_parse_dense((const char *)data, size, "2_Dense", &c, &err);
    }
    return 0;
}
