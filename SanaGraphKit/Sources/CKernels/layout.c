// Channels-last (NHWC) activations for a run of DC-AE ResBlocks whose convolutions oneDNN runs channels-last (bf16):
// the layout changes at the run's two ends, and the per-pixel steps between its convolutions — SiLU written as the
// next convolution's bf16 input, and the channel RMSNorm added to the residual stream with the bf16 copy the next
// block's first convolution reads. Rounding to bf16 is VCVTNEPS2BF16's (round to nearest even, NaN kept quiet,
// denormals to signed zero), as oneDNN's own reorders round.
#include "CKernels.h"

#include <math.h>

#include "vector_math.h"

#ifdef SG_VECTOR_X86
#define AVX512 SG_TARGET_AVX512

/// `sg_bf16_bits` of 16 lanes (integer arithmetic: AVX-512F/BW, no AVX512_BF16 needed).
AVX512 static inline __m256i bf16x16(__m512 v) {
    __m512i b = _mm512_castps_si512(v), high = _mm512_srli_epi32(b, 16);
    __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(b, _mm512_add_epi32(_mm512_and_si512(high, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    __mmask16 tiny = _mm512_testn_epi32_mask(b, _mm512_set1_epi32(0x7f800000));
    rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(high, _mm512_set1_epi32(0x40)));
    rounded = _mm512_mask_mov_epi32(rounded, tiny, _mm512_and_si512(high, _mm512_set1_epi32(0x8000)));
    return _mm512_cvtepi32_epi16(rounded);
}

// Pixels go in blocks of 64 (four 16×16 register transposes per 16 channels), so that each channel plane is read or
// written 256 contiguous bytes at a time while the block's pixel rows stay in L1.
enum { PIXEL_BLOCK = 64 };

AVX512 static void nchw_to_nhwc_avx512(const float *x, long c, long hw, long p0, long p1, float *y, uint16_t *yb) {
    long c16 = c / 16 * 16;
    for (long pb = p0; pb < p1; pb += PIXEL_BLOCK) {
        long pe = pb + PIXEL_BLOCK < p1 ? pb + PIXEL_BLOCK : p1;
        for (long c0 = 0; c0 < c16; c0 += 16)
            for (long p = pb; p < pe; p += 16) {
                long rows = pe - p < 16 ? pe - p : 16;
                __mmask16 pm = sg_lanes16(rows);
                __m512i r[16];
                for (int i = 0; i < 16; i++) r[i] = _mm512_castps_si512(_mm512_maskz_loadu_ps(pm, x + (c0 + i) * hw + p));
                sg_transpose16x16(r);
                for (long j = 0; j < rows; j++) {
                    __m512 v = _mm512_castsi512_ps(r[j]);
                    _mm512_storeu_ps(y + (p + j) * c + c0, v);
                    if (yb) _mm256_storeu_si256((__m256i *)(yb + (p + j) * c + c0), bf16x16(v));
                }
            }
        for (long p = pb; p < pe; p++)
            for (long ch = c16; ch < c; ch++) {
                float v = x[ch * hw + p];
                y[p * c + ch] = v;
                if (yb) yb[p * c + ch] = sg_bf16_bits(v);
            }
    }
}

AVX512 static void nhwc_to_nchw_avx512(const float *x, long c, long hw, long p0, long p1, float *y) {
    long c16 = c / 16 * 16;
    for (long pb = p0; pb < p1; pb += PIXEL_BLOCK) {
        long pe = pb + PIXEL_BLOCK < p1 ? pb + PIXEL_BLOCK : p1;
        for (long c0 = 0; c0 < c16; c0 += 16)
            for (long p = pb; p < pe; p += 16) {
                long rows = pe - p < 16 ? pe - p : 16;
                __m512i r[16];
                for (long j = 0; j < 16; j++)
                    r[j] = j < rows ? _mm512_castps_si512(_mm512_loadu_ps(x + (p + j) * c + c0)) : _mm512_setzero_si512();
                sg_transpose16x16(r);
                __mmask16 pm = sg_lanes16(rows);
                for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(y + (c0 + i) * hw + p, pm, _mm512_castsi512_ps(r[i]));
            }
        for (long p = pb; p < pe; p++)
            for (long ch = c16; ch < c; ch++) y[ch * hw + p] = x[p * c + ch];
    }
}

AVX512 static void to_bf16_avx512(const float *x, uint16_t *y, long n, int silu) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        _mm256_storeu_si256((__m256i *)(y + i), bf16x16(silu ? sg_silu16(v) : v));
    }
    if (i < n) {
        __mmask16 m = sg_lanes16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm256_mask_storeu_epi16(y + i, m, bf16x16(silu ? sg_silu16(v) : v));
    }
}

/// One pixel's `c` (a multiple of 16) channels: out = residual + norm(x), and its bf16 copy when `outb`.
AVX512 static void add_rms_norm_avx512(const float *x, const float *residual, const float *weight, const float *bias,
                                       long c, long p0, long p1, float eps, float *out, uint16_t *outb) {
    for (long p = p0; p < p1; p++) {
        const float *s = x + p * c;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        long i = 0;
        for (; i + 64 <= c; i += 64)
            for (int v = 0; v < 4; v++) {
                __m512 t = _mm512_loadu_ps(s + i + 16 * v);
                acc[v] = _mm512_fmadd_ps(t, t, acc[v]);
            }
        for (; i < c; i += 16) {
            __m512 t = _mm512_loadu_ps(s + i);
            acc[0] = _mm512_fmadd_ps(t, t, acc[0]);
        }
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
        __m512 rstd = _mm512_set1_ps(1.0f / sqrtf(sum / (float)c + eps));
        for (i = 0; i < c; i += 16) {
            long at = p * c + i;
            __m512 w = weight ? _mm512_loadu_ps(weight + i) : _mm512_set1_ps(1.0f);
            __m512 b = bias ? _mm512_loadu_ps(bias + i) : _mm512_setzero_ps();
            __m512 v = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(_mm512_loadu_ps(s + i), rstd), w, b),
                                     _mm512_loadu_ps(residual + at));
            _mm512_storeu_ps(out + at, v);
            if (outb) _mm256_storeu_si256((__m256i *)(outb + at), bf16x16(v));
        }
    }
}
#endif

void sg_nchw_to_nhwc(const float *x, long c, long hw, long p0, long p1, float *y, uint16_t *y_bf16, sg_isa isa) {
#ifdef AVX512
    if (isa == SG_ISA_AVX512) { nchw_to_nhwc_avx512(x, c, hw, p0, p1, y, y_bf16); return; }
#endif
    (void)isa;
    for (long p = p0; p < p1; p++)
        for (long ch = 0; ch < c; ch++) {
            float v = x[ch * hw + p];
            y[p * c + ch] = v;
            if (y_bf16) y_bf16[p * c + ch] = sg_bf16_bits(v);
        }
}

void sg_nhwc_to_nchw(const float *x, long c, long hw, long p0, long p1, float *y, sg_isa isa) {
#ifdef AVX512
    if (isa == SG_ISA_AVX512) { nhwc_to_nchw_avx512(x, c, hw, p0, p1, y); return; }
#endif
    (void)isa;
    for (long p = p0; p < p1; p++)
        for (long ch = 0; ch < c; ch++) y[ch * hw + p] = x[p * c + ch];
}

void sg_to_bf16(const float *x, uint16_t *y, long n, int silu, sg_isa isa) {
#ifdef AVX512
    if (isa == SG_ISA_AVX512) { to_bf16_avx512(x, y, n, silu); return; }
#endif
    (void)isa;
    for (long i = 0; i < n; i++) y[i] = sg_bf16_bits(silu ? x[i] / (1 + expf(-x[i])) : x[i]);
}

void sg_nhwc_add_rms_norm(const float *x, const float *residual, const float *weight, const float *bias, long c,
                          long p0, long p1, float eps, float *out, uint16_t *out_bf16, sg_isa isa) {
#ifdef AVX512
    if (isa == SG_ISA_AVX512 && c % 16 == 0) {
        add_rms_norm_avx512(x, residual, weight, bias, c, p0, p1, eps, out, out_bf16);
        return;
    }
#endif
    (void)isa;
    for (long p = p0; p < p1; p++) {
        const float *s = x + p * c;
        float sum = 0;
        for (long ch = 0; ch < c; ch++) sum += s[ch] * s[ch];
        float rstd = 1 / sqrtf(sum / (float)c + eps);
        for (long ch = 0; ch < c; ch++) {
            long at = p * c + ch;
            float v = residual[at] + (s[ch] * rstd * (weight ? weight[ch] : 1) + (bias ? bias[ch] : 0));
            out[at] = v;
            if (out_bf16) out_bf16[at] = sg_bf16_bits(v);
        }
    }
}
