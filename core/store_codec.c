/* Store keys and the value codec: header, checksum, fp32 / fp16 / int8. */
#include <math.h>
#include <sodium.h>
#include <string.h>

#include "safetensors.h" /* er_f16_to_f32 */
#include "store_internal.h"

static const uint8_t MAGIC[4] = {'E', 'R', 'A', 'C'};

/* Values may sit at any alignment inside LMDB pages: every access below goes
 * through memcpy, which compiles to plain loads. */
static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static int is_le(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

const char *er_store_dtype_name(er_store_dtype d) {
    switch (d) {
    case ER_DTYPE_FP32: return "fp32";
    case ER_DTYPE_FP16: return "fp16";
    case ER_DTYPE_INT8: return "int8";
    }
    return "?";
}

int er_store_dtype_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "fp32")) return ER_DTYPE_FP32;
    if (!strcmp(s, "fp16")) return ER_DTYPE_FP16;
    if (!strcmp(s, "int8")) return ER_DTYPE_INT8;
    return -1;
}

static size_t payload_size(er_store_dtype d, size_t n, size_t h) {
    switch (d) {
    case ER_DTYPE_FP32: return n * h * 4;
    case ER_DTYPE_FP16: return n * h * 2;
    case ER_DTYPE_INT8: return n * 4 + n * h;
    }
    return 0;
}

size_t er_store_value_size(er_store_dtype d, int n_tokens, int hidden) {
    return ER_STORE_HEADER_BYTES + payload_size(d, (size_t)n_tokens, (size_t)hidden);
}

/* Hashes int32 values little-endian in chunks (no allocation). */
static void hash_i32(crypto_generichash_state *st, const int32_t *v, int n) {
    uint8_t buf[1024];
    for (int i = 0; i < n;) {
        int k = 0;
        for (; i < n && k < (int)sizeof buf; i++, k += 4) put_u32(buf + k, v ? (uint32_t)v[i] : 0);
        crypto_generichash_update(st, buf, (unsigned long long)k);
    }
}

void er_store_key(const uint8_t fingerprint[32], int cut, int n, const int32_t *ids,
                  const int32_t *type_ids, uint64_t salt, uint8_t key[ER_STORE_KEY_BYTES]) {
    crypto_generichash_state st;
    uint8_t hdr[16];
    put_u32(hdr, 0x45524b31u); /* "ERK1": key format, bump if the layout changes */
    put_u32(hdr + 4, (uint32_t)cut);
    put_u32(hdr + 8, (uint32_t)n);
    put_u32(hdr + 12, 0);
    crypto_generichash_init(&st, NULL, 0, ER_STORE_KEY_BYTES);
    crypto_generichash_update(&st, fingerprint, 32);
    crypto_generichash_update(&st, hdr, sizeof hdr);
    hash_i32(&st, ids, n);
    hash_i32(&st, type_ids, n); /* NULL hashes as zeros: same result, same key */
    uint8_t s8[8];
    put_u64(s8, salt);
    crypto_generichash_update(&st, s8, 8);
    crypto_generichash_final(&st, key, ER_STORE_KEY_BYTES);
}

uint16_t er_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;             /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7bffu;             /* saturate at 65504 (and inf) */
    if (a < 0x38800000u) {                                   /* subnormal half or zero */
        if (a < 0x33000000u) return sign;                    /* below half the smallest */
        uint32_t m = (a & 0x7fffffu) | 0x800000u, e = a >> 23;
        uint32_t shift = 126 - e; /* value = m 2^(e-150) = r 2^-24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return sign | (uint16_t)r;
    }
    uint32_t r = ((a - 0x38000000u) >> 13);                  /* rebias exponent 127 -> 15 */
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return sign | (uint16_t)r;
}

static void checksum(const uint8_t *v, const uint8_t *payload, size_t len, uint8_t out[16]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 16);
    crypto_generichash_update(&st, v, 32);
    crypto_generichash_update(&st, payload, (unsigned long long)len);
    crypto_generichash_final(&st, out, 16);
}

void er_value_encode(er_store_dtype d, int cut, int n, int h, const float *x, uint8_t *dst) {
    size_t N = (size_t)n, H = (size_t)h, plen = payload_size(d, N, H);
    memset(dst, 0, ER_STORE_HEADER_BYTES);
    memcpy(dst, MAGIC, 4);
    put_u16(dst + 4, ER_STORE_FORMAT_VERSION);
    dst[6] = (uint8_t)d;
    put_u32(dst + 8, (uint32_t)n);
    put_u32(dst + 12, (uint32_t)h);
    put_u32(dst + 16, (uint32_t)cut);
    put_u64(dst + 24, plen);
    uint8_t *p = dst + ER_STORE_HEADER_BYTES;
    if (d == ER_DTYPE_FP32) {
        if (is_le()) memcpy(p, x, plen);
        else for (size_t i = 0; i < N * H; i++) { uint32_t u; memcpy(&u, &x[i], 4); put_u32(p + 4 * i, u); }
    } else if (d == ER_DTYPE_FP16) {
        for (size_t i = 0; i < N * H; i++) put_u16(p + 2 * i, er_f32_to_f16(x[i]));
    } else {
        uint8_t *q = p + 4 * N; // [n, h] int8 after [n] scales
        for (size_t t = 0; t < N; t++) {
            const float *row = x + t * H;
            float amax = 0.0f;
            for (size_t j = 0; j < H; j++) amax = fmaxf(amax, fabsf(row[j]));
            float scale = amax > 0.0f ? amax / 127.0f : 1.0f, inv = 1.0f / scale;
            uint32_t u;
            memcpy(&u, &scale, 4);
            put_u32(p + 4 * t, u);
            for (size_t j = 0; j < H; j++) {
                float r = nearbyintf(row[j] * inv);
                r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
                q[t * H + j] = (uint8_t)(int8_t)r;
            }
        }
    }
    checksum(dst, p, plen, dst + 32);
}

int er_value_check_header(const uint8_t *v, size_t len, int expect_cut, int expect_n,
                          int expect_h) {
    if (len < ER_STORE_HEADER_BYTES || memcmp(v, MAGIC, 4) ||
        get_u16(v + 4) != ER_STORE_FORMAT_VERSION || v[6] > ER_DTYPE_INT8 || v[7] ||
        get_u32(v + 20))
        return -1;
    uint32_t n = get_u32(v + 8), h = get_u32(v + 12), cut = get_u32(v + 16);
    if (n == 0 || h == 0 || n > (1u << 20) || h > (1u << 16)) return -1;
    if ((expect_n >= 0 && n != (uint32_t)expect_n) || (expect_h >= 0 && h != (uint32_t)expect_h) ||
        (expect_cut >= 0 && cut != (uint32_t)expect_cut))
        return -1;
    uint64_t plen = payload_size((er_store_dtype)v[6], n, h);
    return get_u64(v + 24) == plen && len == ER_STORE_HEADER_BYTES + plen ? 0 : -1;
}

int er_value_check_sum(const uint8_t *v, size_t len) {
    uint8_t sum[16];
    checksum(v, v + ER_STORE_HEADER_BYTES, len - ER_STORE_HEADER_BYTES, sum);
    return memcmp(sum, v + 32, 16) ? -1 : 0;
}

void er_value_decode(const uint8_t *v, float *out) {
    size_t N = get_u32(v + 8), H = get_u32(v + 12);
    const uint8_t *p = v + ER_STORE_HEADER_BYTES;
    switch ((er_store_dtype)v[6]) {
    case ER_DTYPE_FP32:
        if (is_le()) memcpy(out, p, N * H * 4);
        else for (size_t i = 0; i < N * H; i++) { uint32_t u = get_u32(p + 4 * i); memcpy(&out[i], &u, 4); }
        break;
    case ER_DTYPE_FP16:
        for (size_t i = 0; i < N * H; i++) out[i] = er_f16_to_f32(get_u16(p + 2 * i));
        break;
    case ER_DTYPE_INT8: {
        const int8_t *q = (const int8_t *)(p + 4 * N);
        for (size_t t = 0; t < N; t++) {
            uint32_t u = get_u32(p + 4 * t);
            float scale;
            memcpy(&scale, &u, 4);
            for (size_t j = 0; j < H; j++) out[t * H + j] = scale * (float)q[t * H + j];
        }
        break;
    }
    }
}
