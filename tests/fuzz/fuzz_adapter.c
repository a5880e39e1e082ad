/* libFuzzer target for the AdapterHub adapter's JSON parsers of outside
 * bytes (core/adapter_bn.c): adapter_config.json's bottleneck config and
 * head_config.json, with every bound and refusal er_bn_open applies.  The
 * first byte picks the file. */
#include <stddef.h>
#include <stdint.h>

#include "adapter_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const bool head = data[0] % 2;
    er_err err;
    er_bn_parse_config((const char *)data + 1, size - 1, head, &err);
    return 0;
}
