/* exp_approx (kernels_math.h) on 16 AVX-512 lanes, operation for operation,
 * for the kernels that need exp in registers: GELU-tanh in the GEMM
 * epilogue (gemm.c) and softmax's fused exp + sum (att_kernels.c).  The
 * build does not contract a * b + c into an FMA (-std=c11:
 * -ffp-contract=off), so neither does this; the clamp is clampf's selects,
 * NaN included.  Same bits as the scalar function (test_gemm, test_attention).
 * x86-64 GCC/Clang only; include after <immintrin.h>. */
#ifndef ER_EXP_AVX512_H
#define ER_EXP_AVX512_H

static inline __attribute__((always_inline, target("avx512f"))) __m512 er_exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(88.3762626647949f),
                      _mm512_max_ps(_mm512_set1_ps(-87.0f), x));
    const __m512 big = _mm512_set1_ps(12582912.0f); /* 1.5 * 2^23: rounds to an integer */
    const __m512 n = _mm512_sub_ps(
        _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), big), big);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(p, r), r), r),
                      _mm512_set1_ps(1.0f));
    const __m512i bits = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

#endif
