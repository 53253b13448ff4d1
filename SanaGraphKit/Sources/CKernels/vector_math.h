// What the C kernels share (internal to CKernels, not in include/): bf16 rounding, lane masks, the AVX-512 SiLU, a
// 16×16 register transpose, and the vector exp they all use (SiLU, GLU, softmax): Cephes expf — n = round(x·log2 e),
// a degree-5 polynomial on the remainder, scaled by 2^n — with SoftmaxMath.exp's range: below −87.3 (−inf included)
// exactly 0, above 88.72 +inf, NaN stays NaN. Relative error ≈ 1.2e-7.
#ifndef SANAGRAPH_VECTOR_MATH_H
#define SANAGRAPH_VECTOR_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/// fp32 → bf16 as VCVTNEPS2BF16 does it: round to nearest even, NaN kept quiet, denormals to signed zero.
static inline uint16_t sg_bf16_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);
    if ((bits & 0x7f800000u) == 0) return (uint16_t)((bits >> 16) & 0x8000);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1)) >> 16);
}

/// `sg_bf16_bits(f)` as the fp32 value it stands for.
static inline float sg_bf16_rounded(float f) {
    uint32_t bits = (uint32_t)sg_bf16_bits(f) << 16;
    memcpy(&f, &bits, 4);
    return f;
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define SG_VECTOR_X86 1
/// What `SG_ISA_AVX512` means (KernelSelection.VectorISA: AVX-512 F/BW/DQ/VL, which imply FMA).
#define SG_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define SG_TARGET_AVX2 __attribute__((target("avx2,fma")))

/// Mask of the first `count` (clamped to 0...16) lanes.
static inline __mmask16 sg_lanes16(long count) {
    return count >= 16 ? 0xffff : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

/// Lane mask of the first `count` (clamped to 0...8) lanes, for AVX2 masked loads and stores.
SG_TARGET_AVX2 static inline __m256i sg_lanes8(long count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count < 0 ? 0 : count > 8 ? 8 : count)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// The sum of the 8 lanes (pairwise: halves, then pairs, then the last two).
SG_TARGET_AVX2 static inline float sg_hsum8(__m256 x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// The polynomial on x already clamped to [−87.3, 88], leaving n and p (e^x = p · 2^n).
#define SG_EXP_POLYNOMIAL(V, set1, fmadd, fnmadd, mul, add, round, x)                                         \
    V n = round(mul(x, set1(1.44269504088896341f)));                                                         \
    V r = fnmadd(n, set1(0.693359375f), x);                                                                  \
    r = fnmadd(n, set1(-2.12194440e-4f), r);                                                                 \
    V p = set1(1.9875691500e-4f);                                                                            \
    p = fmadd(p, r, set1(1.3981999507e-3f));                                                                 \
    p = fmadd(p, r, set1(8.3334519073e-3f));                                                                 \
    p = fmadd(p, r, set1(4.1665795894e-2f));                                                                 \
    p = fmadd(p, r, set1(1.6666665459e-1f));                                                                 \
    p = fmadd(p, r, set1(5.0000001201e-1f));                                                                 \
    p = fmadd(p, mul(r, r), add(r, set1(1.0f)));

#define SG_ROUND16(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT)
#define SG_ROUND8(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/// e^x over 16 lanes.
SG_TARGET_AVX512 static inline __m512 sg_exp16(__m512 x0) {
    // Constant first: max/min return their second operand when one is NaN, so NaN passes through.
    __m512 x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.3f), x0));
    SG_EXP_POLYNOMIAL(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_mul_ps, _mm512_add_ps,
                      SG_ROUND16, x)
    __m512 y = _mm512_scalef_ps(p, n);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x0, _mm512_set1_ps(-87.3f), _CMP_LT_OQ), _mm512_setzero_ps());
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x0, _mm512_set1_ps(88.72f), _CMP_GT_OQ), _mm512_set1_ps(INFINITY));
}

/// SiLU, x · σ(x), over 16 lanes. σ comes from e = e^−|x| ∈ [0, 1] — σ(|x|) = 1 / (1 + e), σ(−|x|) = e / (1 + e) —
/// so nothing overflows (silu(−large) is −0, silu(+large) = x), and 1 / (1 + e) from VRCP14PS and one Newton step
/// (≈ 2^−28 relative): VDIVPS issues once per 10–16 cycles on Intel cores, as long as an AMX tile product.
SG_TARGET_AVX512 static inline __m512 sg_silu16(__m512 x) {
    __m512 e = sg_exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
    __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), e), r = _mm512_rcp14_ps(d);
    r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
    r = _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), r, e);
    return _mm512_mul_ps(x, r);
}

/// Transposes 16 rows of 16 32-bit lanes in place: four rounds of swapping the off-diagonal blocks of size 8, 4,
/// 2 and 1 (64 two-source permutes for 256 lanes; a scatter per row was ~1 ns per bf16 value).
SG_TARGET_AVX512 static inline void sg_transpose16x16(__m512i r[16]) {
    // Round s (8, 4, 2, 1): row i (bit s clear) keeps its lanes without bit s and takes row i+s's lanes l−s where
    // lane l has bit s; row i+s takes row i's lanes l+s and keeps its own. Indexes ≥ 16 pick the second source.
    static const int keep[4][16] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
        {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}, {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}};
    static const int swap[4][16] = {
        {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}, {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
        {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}, {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}};
    for (int round = 0, s = 8; s >= 1; round++, s /= 2) {
        __m512i ik = _mm512_loadu_si512(keep[round]), is = _mm512_loadu_si512(swap[round]);
        for (int i = 0; i < 16; i++) {
            if (i & s) continue;
            __m512i a = r[i], b = r[i + s];
            r[i] = _mm512_permutex2var_epi32(a, ik, b);
            r[i + s] = _mm512_permutex2var_epi32(a, is, b);
        }
    }
}

/// e^x over 8 lanes.
SG_TARGET_AVX2 static inline __m256 sg_exp8(__m256 x0) {
    __m256 x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.3f), x0));
    SG_EXP_POLYNOMIAL(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_mul_ps, _mm256_add_ps,
                      SG_ROUND8, x)
    // 2^n through the exponent bits (n is in [−126, 127] after the clamp; NaN lanes keep p's NaN).
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x0, _mm256_set1_ps(-87.3f), _CMP_LT_OQ));
    return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x0, _mm256_set1_ps(88.72f), _CMP_GT_OQ));
}
#endif

#endif
