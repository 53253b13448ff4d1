// GLUMBConv's middle on channels-last tokens: depthwise 3×3 conv (stride 1, zero padding 1) of x [B, H·W, 2C]
// with taps [9, 2C] (+ bias [2C]), then out [B, H·W, C] = a · silu(g), a and g the first and second C channels.
// Rows of x and out may be wider than 2C and C (`ldx`, `ldo`): the AMX GLUMBConv (amx.c) runs it on 32-channel
// slices.
//
// The Swift module is built for baseline x86-64 (SSE2), where this op's 9 multiply-adds per value run 4 lanes wide
// without FMA; here they run 16 (AVX-512) or 8 (AVX2 + FMA) lanes wide (`sg_isa`, chosen by the Swift side), with a
// plain C fallback. Each thread walks its pixels in order and each pixel's channels in blocks, the 9 taps streaming
// past the block's accumulators (registers on the vector paths).
#include "CKernels.h"

#include <math.h>

#include "vector_math.h"

#ifdef SG_VECTOR_X86
#define SG_DW_X86 1
#define AVX512_TARGET SG_TARGET_AVX512
#define AVX2_TARGET SG_TARGET_AVX2
#endif

// Channels of each half per block: the accumulators of 128 channels of both halves stay in registers.
enum { DW_BLOCK = 128 };

/// The pixel walk shared by every path: pixels [p0, p1) in order, tracking (y, x) without a division per pixel,
/// and for each pixel its channel blocks in order. The body (the argument) does channels [cb, ce) of one pixel from
/// `s` (its input row) into `o` (its output row), over the neighbours dy0...dy1, dx0...dx1 (−1...1, clipped at the
/// image's edges). Pixel-major: each neighbour's row is read front to back, which the hardware prefetchers follow
/// (block-major, jumping 2C floats from pixel to pixel, ran at half the Swift loop's speed on Sapphire Rapids).
#define DW_WALK(...)                                                                                           \
    {                                                                                                          \
        long yx = p0 % (height * width), y = yx / width, xx = yx % width;                                      \
        for (long p = p0; p < p1; p++) {                                                                       \
            const float *s = x + p * ldx;                                                                      \
            float *o = out + p * ldo;                                                                          \
            int dy0 = y > 0 ? -1 : 0, dy1 = y < height - 1 ? 1 : 0, dx0 = xx > 0 ? -1 : 0,                     \
                dx1 = xx < width - 1 ? 1 : 0;                                                                  \
            for (long cb = 0; cb < c; cb += DW_BLOCK) {                                                        \
                long ce = cb + DW_BLOCK < c ? cb + DW_BLOCK : c;                                               \
                __VA_ARGS__                                                                                    \
            }                                                                                                  \
            if (++xx == width) { xx = 0; if (++y == height) y = 0; }                                           \
        }                                                                                                      \
    }

/// Portable C: the 9 taps over a block of accumulators in memory, then silu as `Ops.silu` (g / (1 + e^−g)). The
/// reference for the vector paths (libm's scalar expf makes it slower than the Swift loop, which Tensors runs where
/// there is no vector path).
static void dw_portable(const float *x, long ldx, const float *taps, const float *bias, long height, long width,
                        long c, long p0, long p1, float *out, long ldo) {
    float acc[2 * DW_BLOCK];
    DW_WALK({
        long n = ce - cb;
        for (long i = 0; i < n; i++) {
            acc[i] = bias ? bias[cb + i] : 0;
            acc[DW_BLOCK + i] = bias ? bias[c + cb + i] : 0;
        }
        for (int dy = dy0; dy <= dy1; dy++)
            for (int dx = dx0; dx <= dx1; dx++) {
                const float *src = s + (dy * width + dx) * ldx + cb, *w = taps + ((dy + 1) * 3 + dx + 1) * 2 * c + cb;
                for (long i = 0; i < n; i++) acc[i] += src[i] * w[i];
                for (long i = 0; i < n; i++) acc[DW_BLOCK + i] += src[c + i] * w[c + i];
            }
        for (long i = 0; i < n; i++) {
            float g = acc[DW_BLOCK + i];
            o[cb + i] = acc[i] * (g / (1.0f + expf(-g)));
        }
    })
}

#ifdef SG_DW_X86

/// a · silu(g) (vector_math.h).
AVX512_TARGET static inline __m512 glu_avx512(__m512 a, __m512 g) { return _mm512_mul_ps(a, sg_silu16(g)); }

/// One pixel's `nv` (≤ 4, a constant after inlining) vectors of 16 channels from channel i, in registers through
/// the taps; lanes outside `last` of the last vector are neither read nor written.
AVX512_TARGET static inline __attribute__((always_inline)) void
dw_vectors_avx512(const float *s, const float *taps, const float *bias, long width, long ldx, long c, long i, int nv,
                  __mmask16 last, int dy0, int dy1, int dx0, int dx1, float *o) {
    __m512 a[4], g[4];
    for (int v = 0; v < nv; v++) {
        __mmask16 m = v == nv - 1 ? last : 0xffff;
        a[v] = bias ? _mm512_maskz_loadu_ps(m, bias + i + 16 * v) : _mm512_setzero_ps();
        g[v] = bias ? _mm512_maskz_loadu_ps(m, bias + c + i + 16 * v) : _mm512_setzero_ps();
    }
    for (int dy = dy0; dy <= dy1; dy++)
        for (int dx = dx0; dx <= dx1; dx++) {
            const float *src = s + (dy * width + dx) * ldx + i, *w = taps + ((dy + 1) * 3 + dx + 1) * 2 * c + i;
            for (int v = 0; v < nv; v++) {
                __mmask16 m = v == nv - 1 ? last : 0xffff;
                a[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, src + 16 * v), _mm512_maskz_loadu_ps(m, w + 16 * v), a[v]);
                g[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, src + c + 16 * v), _mm512_maskz_loadu_ps(m, w + c + 16 * v), g[v]);
            }
        }
    // Masked stores only where needed: they cost more on AMD cores even with every lane set.
    for (int v = 0; v < nv; v++) {
        __m512 y = glu_avx512(a[v], g[v]);
        if (v < nv - 1 || last == 0xffff) _mm512_storeu_ps(o + i + 16 * v, y);
        else _mm512_mask_storeu_ps(o + i + 16 * v, last, y);
    }
}

AVX512_TARGET static void dw_avx512(const float *x, long ldx, const float *taps, const float *bias, long height,
                                    long width, long c, long p0, long p1, float *out, long ldo) {
    DW_WALK({
        long i = cb;
        for (; i + 64 <= ce; i += 64) dw_vectors_avx512(s, taps, bias, width, ldx, c, i, 4, 0xffff, dy0, dy1, dx0, dx1, o);
        for (; i + 16 <= ce; i += 16) dw_vectors_avx512(s, taps, bias, width, ldx, c, i, 1, 0xffff, dy0, dy1, dx0, dx1, o);
        if (i < ce)
            dw_vectors_avx512(s, taps, bias, width, ldx, c, i, 1, (__mmask16)((1u << (ce - i)) - 1), dy0, dy1, dx0, dx1, o);
    })
}

/// a · silu(g); a 256-bit division is cheap enough next to the FMAs here (the divider is its own unit).
AVX2_TARGET static inline __m256 glu_avx2(__m256 a, __m256 g) {
    __m256 e = sg_exp8(_mm256_or_ps(g, _mm256_set1_ps(-0.0f)));  // −|g|
    __m256 num = _mm256_blendv_ps(_mm256_set1_ps(1.0f), e, _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_mul_ps(a, _mm256_mul_ps(g, _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), e))));
}

/// dw_vectors_avx512 with 8 lanes; `last` holds −1 in the lanes of the last vector to use (AVX2 masked moves).
AVX2_TARGET static inline __attribute__((always_inline)) void
dw_vectors_avx2(const float *s, const float *taps, const float *bias, long width, long ldx, long c, long i, int nv,
                __m256i last, int dy0, int dy1, int dx0, int dx1, float *o) {
    const __m256i all = _mm256_set1_epi32(-1);
    __m256 a[4], g[4];
    for (int v = 0; v < nv; v++) {
        __m256i m = v == nv - 1 ? last : all;
        a[v] = bias ? _mm256_maskload_ps(bias + i + 8 * v, m) : _mm256_setzero_ps();
        g[v] = bias ? _mm256_maskload_ps(bias + c + i + 8 * v, m) : _mm256_setzero_ps();
    }
    for (int dy = dy0; dy <= dy1; dy++)
        for (int dx = dx0; dx <= dx1; dx++) {
            const float *src = s + (dy * width + dx) * ldx + i, *w = taps + ((dy + 1) * 3 + dx + 1) * 2 * c + i;
            for (int v = 0; v < nv; v++) {
                __m256i m = v == nv - 1 ? last : all;
                a[v] = _mm256_fmadd_ps(_mm256_maskload_ps(src + 8 * v, m), _mm256_maskload_ps(w + 8 * v, m), a[v]);
                g[v] = _mm256_fmadd_ps(_mm256_maskload_ps(src + c + 8 * v, m), _mm256_maskload_ps(w + c + 8 * v, m), g[v]);
            }
        }
    for (int v = 0; v < nv; v++) _mm256_maskstore_ps(o + i + 8 * v, v == nv - 1 ? last : all, glu_avx2(a[v], g[v]));
}

AVX2_TARGET static void dw_avx2(const float *x, long ldx, const float *taps, const float *bias, long height,
                                long width, long c, long p0, long p1, float *out, long ldo) {
    const __m256i all = _mm256_set1_epi32(-1);
    DW_WALK({
        long i = cb;
        for (; i + 32 <= ce; i += 32) dw_vectors_avx2(s, taps, bias, width, ldx, c, i, 4, all, dy0, dy1, dx0, dx1, o);
        for (; i + 8 <= ce; i += 8) dw_vectors_avx2(s, taps, bias, width, ldx, c, i, 1, all, dy0, dy1, dx0, dx1, o);
        if (i < ce) {
            __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(ce - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            dw_vectors_avx2(s, taps, bias, width, ldx, c, i, 1, last, dy0, dy1, dx0, dx1, o);
        }
    })
}

#endif

void sg_depthwise3x3_glu_rows(const float *x, long ldx, const float *taps, const float *bias, long height, long width,
                              long c, long p0, long p1, float *out, long ldo, sg_isa isa) {
    if (p0 >= p1 || c <= 0) return;
#ifdef SG_DW_X86
    if (isa == SG_ISA_AVX512) { dw_avx512(x, ldx, taps, bias, height, width, c, p0, p1, out, ldo); return; }
    if (isa == SG_ISA_AVX2) { dw_avx2(x, ldx, taps, bias, height, width, c, p0, p1, out, ldo); return; }
#endif
    (void)isa;
    dw_portable(x, ldx, taps, bias, height, width, c, p0, p1, out, ldo);
}
