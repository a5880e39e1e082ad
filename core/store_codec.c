/* Store keys and the value codec: header, checksum, fp32 / fp16 / int8. */
#include <math.h>
#include <stdbool.h>
#include <sodium.h> /* keys: BLAKE2b */
#include <string.h>

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

/* The codec below handles exactly these. */
bool er_store_dtype_valid(er_dtype d) {
    return d == ER_DTYPE_FP32 || d == ER_DTYPE_FP16 || d == ER_DTYPE_INT8;
}

int er_store_dtype_parse(const char *s) {
    int d = er_dtype_parse(s);
    return d >= 0 && er_store_dtype_valid((er_dtype)d) ? d : -1;
}

static size_t payload_size(er_dtype d, size_t n, size_t h) {
    /* int8 rows carry their float scale */
    return n * h * er_dtype_size(d) + (d == ER_DTYPE_INT8 ? n * sizeof(float) : 0);
}

size_t er_store_value_size(er_dtype d, int n_tokens, int hidden) {
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

/* Payload checksum: xxHash64-style rounds over four independent 64-bit
 * lanes (~10 GB/s, a fraction of a percent of a hit's cost; BLAKE2b was 20x
 * slower), finalised into 16 bytes.  It guards against torn or flipped bytes,
 * not against an adversary who can write the store. */
#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t round64(uint64_t acc, uint64_t w) { return rotl(acc + w * P2, 31) * P1; }
static uint64_t fmix(uint64_t h) {
    h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;
    return h;
}

static void checksum(const uint8_t *v, const uint8_t *payload, size_t len, uint8_t out[16]) {
    uint64_t a[4] = {P1 + P2, P2, 0, 0 - P1};
    for (int i = 0; i < 4; i++) a[i] = round64(a[i], get_u64(v + 8 * i)); /* header [0, 32) */
    size_t i = 0;
    for (; i + 32 <= len; i += 32)
        for (int k = 0; k < 4; k++) a[k] = round64(a[k], get_u64(payload + i + 8 * k));
    uint64_t tail = 0;
    for (int k = 0; i < len; i++, k++) tail |= (uint64_t)payload[i] << (8 * (k & 7));
    uint64_t h1 = rotl(a[0], 1) + rotl(a[1], 7) + rotl(a[2], 12) + rotl(a[3], 18);
    uint64_t h2 = a[0] ^ rotl(a[1], 17) ^ rotl(a[2], 29) ^ rotl(a[3], 41);
    h1 = fmix(h1 ^ round64(len, tail));
    h2 = fmix(h2 + P3 * (len ^ tail) + h1);
    put_u64(out, h1);
    put_u64(out + 8, h2);
}

/* Half to float without branches on the common path: the 15 magnitude bits
 * shifted into a float's place, scaled by 2^112, are exact for normals and
 * subnormals alike; only inf/NaN need their exponent set. */
static inline float half_to_float(uint16_t h) {
    uint32_t em = h & 0x7fffu, bits = em << 13;
    float f;
    memcpy(&f, &bits, 4);
    f *= 0x1p112f;
    memcpy(&bits, &f, 4);
    uint32_t special = 0u - (uint32_t)(em >= 0x7c00u); /* a mask, not a branch */
    bits = (bits & ~special) | ((0x7f800000u | (em & 0x3ffu) << 13) & special);
    bits |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &bits, 4);
    return f;
}

float er_half_to_float(uint16_t h) { return half_to_float(h); }

void er_value_encode(er_dtype d, int cut, int n, int h, const float *x, uint8_t *dst) {
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
        get_u16(v + 4) != ER_STORE_FORMAT_VERSION || !er_store_dtype_valid((er_dtype)v[6]) ||
        v[7] || get_u32(v + 20))
        return -1;
    uint32_t n = get_u32(v + 8), h = get_u32(v + 12), cut = get_u32(v + 16);
    if (n == 0 || h == 0 || n > (1u << 20) || h > (1u << 16)) return -1;
    if ((expect_n >= 0 && n != (uint32_t)expect_n) || (expect_h >= 0 && h != (uint32_t)expect_h) ||
        (expect_cut >= 0 && cut != (uint32_t)expect_cut))
        return -1;
    uint64_t plen = payload_size((er_dtype)v[6], n, h);
    return get_u64(v + 24) == plen && len == ER_STORE_HEADER_BYTES + plen ? 0 : -1;
}

int er_value_check_sum(const uint8_t *v, size_t len) {
    uint8_t sum[16];
    checksum(v, v + ER_STORE_HEADER_BYTES, len - ER_STORE_HEADER_BYTES, sum);
    return memcmp(sum, v + 32, 16) ? -1 : 0;
}

void er_value_bind_key(uint8_t *v, const uint8_t key[ER_STORE_KEY_BYTES]) {
    memcpy(v + 48, key, 16);
}

int er_value_check_key(const uint8_t *v, const uint8_t key[ER_STORE_KEY_BYTES]) {
    return memcmp(v + 48, key, 16) ? -1 : 0;
}

void er_value_decode(const uint8_t *v, float *out) {
    size_t N = get_u32(v + 8), H = get_u32(v + 12);
    const uint8_t *p = v + ER_STORE_HEADER_BYTES;
    switch ((er_dtype)v[6]) {
    case ER_DTYPE_FP32:
        if (is_le()) memcpy(out, p, N * H * 4);
        else for (size_t i = 0; i < N * H; i++) { uint32_t u = get_u32(p + 4 * i); memcpy(&out[i], &u, 4); }
        break;
    case ER_DTYPE_FP16:
        for (size_t i = 0; i < N * H; i += 256) { /* aligned chunks: the loop vectorises */
            uint16_t tmp[256];
            size_t k = N * H - i < 256 ? N * H - i : 256;
            memcpy(tmp, p + 2 * i, 2 * k);
            if (!is_le()) for (size_t j = 0; j < k; j++) tmp[j] = get_u16((const uint8_t *)&tmp[j]);
            for (size_t j = 0; j < k; j++) out[i + j] = half_to_float(tmp[j]);
        }
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
    case ER_DTYPE_BF16:
    case ER_DTYPE_OTHER: /* refused by er_value_check_header */
        break;
    }
}

void er_value_round(er_dtype d, int n, int h, float *x) {
    size_t N = (size_t)n, H = (size_t)h;
    if (d == ER_DTYPE_FP16) {
        for (size_t i = 0; i < N * H; i++) x[i] = half_to_float(er_f32_to_f16(x[i]));
    } else if (d == ER_DTYPE_INT8) { /* the arithmetic of er_value_encode then er_value_decode */
        for (size_t t = 0; t < N; t++) {
            float *row = x + t * H;
            float amax = 0.0f;
            for (size_t j = 0; j < H; j++) amax = fmaxf(amax, fabsf(row[j]));
            float scale = amax > 0.0f ? amax / 127.0f : 1.0f, inv = 1.0f / scale;
            for (size_t j = 0; j < H; j++) {
                float r = nearbyintf(row[j] * inv);
                r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
                row[j] = scale * (float)(int8_t)r;
            }
        }
    }
}
