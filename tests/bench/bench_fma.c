/* The host's own arithmetic limits on one core, measured: a loop of
 * independent vector multiply-adds with no memory traffic, so every other
 * figure of the benchmarks can be given as a fraction of what the core can do
 * at all (an sgemm ceiling hides how far the sgemm itself is from the metal).
 *
 *   bench_fma [SECONDS_PER_KIND]      (default 0.3)
 *
 * Prints one JSON line: GFLOP/s (GOP/s for int8) of
 *   fp32   VFMADD231PS (AVX-512 when the CPU has it, else AVX2/FMA)
 *   bf16   VDPBF16PS   (AVX512-BF16; null when absent)
 *   int8   VPDPBUSD    (AVX512-VNNI; null when absent)
 * and the ISA used for each.  Single thread; multiply by the cores for the
 * machine.  Compiled for x86-64 only; elsewhere every figure is null. */
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Enough independent accumulators to cover the FMA latency (4 cycles) times
 * the issue width (2 ports): 12 chains keep both ports busy with margin. */
#define CHAINS 12
#define INNER 1000

__attribute__((target("avx512f"))) static double fp32_avx512(double seconds) {
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int r = 0; r < INNER; r++)
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        n += INNER;
    } while ((t = now_s() - t0) < seconds);
    float sink = 0;
    for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_ps(acc[i]);
    if (sink == 12345.0f) puts(""); /* keeps the loop alive */
    return (double)n * CHAINS * 16 * 2 / t / 1e9;
}

__attribute__((target("avx2,fma"))) static double fp32_avx2(double seconds) {
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int r = 0; r < INNER; r++)
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        n += INNER;
    } while ((t = now_s() - t0) < seconds);
    float lanes[8], sink = 0;
    for (int i = 0; i < CHAINS; i++) {
        _mm256_storeu_ps(lanes, acc[i]);
        for (int k = 0; k < 8; k++) sink += lanes[k];
    }
    if (sink == 12345.0f) puts("");
    return (double)n * CHAINS * 8 * 2 / t / 1e9;
}

/* VDPBF16PS: 32 bf16 products summed pairwise into 16 fp32 lanes = 64 flops. */
__attribute__((target("avx512f,avx512bf16"))) static double bf16_dp(double seconds) {
    __m512 acc[CHAINS];
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int r = 0; r < INNER; r++)
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        n += INNER;
    } while ((t = now_s() - t0) < seconds);
    float sink = 0;
    for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_ps(acc[i]);
    if (sink == 12345.0f) puts("");
    return (double)n * CHAINS * 64 / t / 1e9;
}

/* VPDPBUSD: 64 u8 x s8 products summed in fours into 16 int32 lanes = 128 ops. */
__attribute__((target("avx512f,avx512vnni"))) static double int8_dp(double seconds) {
    __m512i acc[CHAINS];
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_epi32(i);
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int r = 0; r < INNER; r++)
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        n += INNER;
    } while ((t = now_s() - t0) < seconds);
    long long sink = 0;
    for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_epi32(acc[i]);
    if (sink == 12345) puts("");
    return (double)n * CHAINS * 128 / t / 1e9;
}
#endif

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.3;
    if (!(seconds > 0 && seconds < 60)) {
        fprintf(stderr, "usage: bench_fma [SECONDS_PER_KIND]\n");
        return 2;
    }
    const char *fp32_isa = "none", *bf16 = "null", *int8 = "null";
    double fp32 = 0;
    char bbuf[32], ibuf[32];
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        fp32 = fp32_avx512(seconds);
        fp32_isa = "avx512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        fp32 = fp32_avx2(seconds);
        fp32_isa = "avx2";
    }
    if (__builtin_cpu_supports("avx512bf16")) {
        snprintf(bbuf, sizeof bbuf, "%.1f", bf16_dp(seconds));
        bf16 = bbuf;
    }
    if (__builtin_cpu_supports("avx512vnni")) {
        snprintf(ibuf, sizeof ibuf, "%.1f", int8_dp(seconds));
        int8 = ibuf;
    }
#endif
    printf("{\"bench\":\"fma_limit_one_core\",\"fp32_gflops\":%.1f,\"fp32_isa\":\"%s\","
           "\"bf16_gflops\":%s,\"int8_gops\":%s}\n", fp32, fp32_isa, bf16, int8);
    return 0;
}
