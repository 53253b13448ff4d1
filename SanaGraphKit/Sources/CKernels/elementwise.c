// SiLU and DC-AE's channel RMSNorm with AVX-512 or AVX2 + FMA where the CPU has them (the Swift side is built for
// baseline x86-64, SSE2). Each computes the op of its Swift counterpart in fp32; only the summation order, fused
// multiply-adds and (AVX-512 SiLU, `sg_silu16`) a reciprocal estimate refined by one Newton step differ. (The DiT's
// modulated LayerNorm and gated residual were tried here too: no faster than the Swift loops on Zen 5, both limited
// by memory, so they stay Swift.)
#include "CKernels.h"

#include <math.h>

#include "vector_math.h"

#ifdef SG_VECTOR_X86
#define AVX512 SG_TARGET_AVX512
#define AVX2 SG_TARGET_AVX2

// MARK: SiLU

// Masked moves only for the tail: masked stores of whole vectors cost more on AMD cores.
AVX512 static void silu_avx512(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, sg_silu16(_mm512_loadu_ps(x + i)));
    if (i < n) _mm512_mask_storeu_ps(y + i, sg_lanes16(n - i), sg_silu16(_mm512_maskz_loadu_ps(sg_lanes16(n - i), x + i)));
}

AVX2 static inline __m256 silu8(__m256 v) {
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), sg_exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

AVX2 static void silu_avx2(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, silu8(_mm256_loadu_ps(x + i)));
    if (i < n) _mm256_maskstore_ps(y + i, sg_lanes8(n - i), silu8(_mm256_maskload_ps(x + i, sg_lanes8(n - i))));
}

// MARK: DC-AE channel RMSNorm on NCHW

/// 64 pixels from p (a constant `full` after inlining: all 64 inside [p, p1), so no masked moves, which cost more on
/// AMD cores).
AVX512 static inline __attribute__((always_inline)) void channel_rms_norm_block(
    const float *x, const float *residual, const float *weight, const float *bias, long c, long plane, long p, long p1,
    float eps, float *out, const int full) {
    __mmask16 m[4];
    __m512 acc[4];
    for (int v = 0; v < 4; v++) { m[v] = sg_lanes16(p1 - p - 16 * v); acc[v] = _mm512_setzero_ps(); }
#define LOAD(v, ptr) (full ? _mm512_loadu_ps(ptr) : _mm512_maskz_loadu_ps(m[v], ptr))
    for (long ch = 0; ch < c; ch++)
        for (int v = 0; v < 4; v++) {
            __m512 t = LOAD(v, x + ch * plane + p + 16 * v);
            acc[v] = _mm512_fmadd_ps(t, t, acc[v]);
        }
    for (int v = 0; v < 4; v++)
        acc[v] = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_sqrt_ps(_mm512_fmadd_ps(acc[v], _mm512_set1_ps(1.0f / (float)c), _mm512_set1_ps(eps))));
    for (long ch = 0; ch < c; ch++) {
        __m512 w = _mm512_set1_ps(weight ? weight[ch] : 1), b = _mm512_set1_ps(bias ? bias[ch] : 0);
        for (int v = 0; v < 4; v++) {
            long at = ch * plane + p + 16 * v;
            __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(LOAD(v, x + at), acc[v]), w, b);
            if (residual) y = _mm512_add_ps(y, LOAD(v, residual + at));
            if (full) _mm512_storeu_ps(out + at, y);
            else _mm512_mask_storeu_ps(out + at, m[v], y);
        }
    }
#undef LOAD
}

// 64 pixels at a time: their sums of squares in four (AVX-512) or eight (AVX2) registers while the channels stream
// past, then the same channels again (from L1/L2) for the output.
AVX512 static void channel_rms_norm_avx512(const float *x, const float *residual, const float *weight, const float *bias,
                                           long c, long plane, long p0, long p1, float eps, float *out) {
    for (long p = p0; p < p1; p += 64) {
        if (p + 64 <= p1) channel_rms_norm_block(x, residual, weight, bias, c, plane, p, p1, eps, out, 1);
        else channel_rms_norm_block(x, residual, weight, bias, c, plane, p, p1, eps, out, 0);
    }
}

AVX2 static void channel_rms_norm_avx2(const float *x, const float *residual, const float *weight, const float *bias,
                                       long c, long plane, long p0, long p1, float eps, float *out) {
    for (long p = p0; p < p1; p += 64) {
        __m256i m[8];
        __m256 acc[8];
        for (int v = 0; v < 8; v++) { m[v] = sg_lanes8(p1 - p - 8 * v); acc[v] = _mm256_setzero_ps(); }
        for (long ch = 0; ch < c; ch++)
            for (int v = 0; v < 8; v++) {
                __m256 t = _mm256_maskload_ps(x + ch * plane + p + 8 * v, m[v]);
                acc[v] = _mm256_fmadd_ps(t, t, acc[v]);
            }
        for (int v = 0; v < 8; v++)
            acc[v] = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(_mm256_fmadd_ps(acc[v], _mm256_set1_ps(1.0f / (float)c), _mm256_set1_ps(eps))));
        for (long ch = 0; ch < c; ch++) {
            __m256 w = _mm256_set1_ps(weight ? weight[ch] : 1), b = _mm256_set1_ps(bias ? bias[ch] : 0);
            for (int v = 0; v < 8; v++) {
                long at = ch * plane + p + 8 * v;
                __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_maskload_ps(x + at, m[v]), acc[v]), w, b);
                if (residual) y = _mm256_add_ps(y, _mm256_maskload_ps(residual + at, m[v]));
                _mm256_maskstore_ps(out + at, m[v], y);
            }
        }
    }
}
#endif

void sg_channel_rms_norm(const float *x, const float *residual, const float *weight, const float *bias, long c,
                         long plane, long p0, long p1, float eps, float *out, sg_isa isa) {
#ifdef AVX512
    if (isa == SG_ISA_AVX512) { channel_rms_norm_avx512(x, residual, weight, bias, c, plane, p0, p1, eps, out); return; }
    if (isa == SG_ISA_AVX2) { channel_rms_norm_avx2(x, residual, weight, bias, c, plane, p0, p1, eps, out); return; }
#endif
    (void)isa;
    for (long p = p0; p < p1; p++) {
        float sum = 0;
        for (long ch = 0; ch < c; ch++) sum += x[ch * plane + p] * x[ch * plane + p];
        float rstd = 1 / sqrtf(sum / (float)c + eps);
        for (long ch = 0; ch < c; ch++) {
            long at = ch * plane + p;
            out[at] = x[at] * rstd * (weight ? weight[ch] : 1) + (bias ? bias[ch] : 0) + (residual ? residual[at] : 0);
        }
    }
}

// The portable versions exist for completeness of the C API (tests call every path); the Swift side keeps its
// own loops where no vector path applies.

void sg_silu(const float *x, float *y, long n, sg_isa isa) {
#ifdef AVX512
    if (isa == SG_ISA_AVX512) { silu_avx512(x, y, n); return; }
    if (isa == SG_ISA_AVX2) { silu_avx2(x, y, n); return; }
#endif
    (void)isa;
    for (long i = 0; i < n; i++) y[i] = x[i] / (1 + expf(-x[i]));
}

