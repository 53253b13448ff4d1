// Softmax attention of one head over a few keys (≤ 64), fp32, start to finish per query row: the DiT's
// cross-attention once the caption's padding keys are dropped (a prompt is a few dozen of its 300 tokens).
// There the general path's per-row steps (two tiny GEMMs, scale, mask, softmax, the padding check) cost more
// than the arithmetic; here a row's scores live in at most four 16-lane registers (AVX-512) or in a 64-float
// row buffer filled 8 keys at a time (AVX2).
#include "CKernels.h"

#include <math.h>
#include <string.h>

#include "vector_math.h"

enum { MAX_KEYS = 64 };

/// Whether leaving out the padding keys is exact for a row (as Attention.swift's `paddingIsExact`): every dropped
/// key's exponent, at most alpha·|q|·pad_key_norm + pad_mask_max − row_max, is below −100, where exp is 0.
static int padding_exact(float alpha, float q_norm2, float pad_key_norm, float pad_mask_max, float row_max) {
    return alpha * sqrtf(q_norm2) * pad_key_norm + pad_mask_max - row_max < -100;
}

static int few_keys_portable(const float *q, long q_stride, long rows, long d, const float *k, long k_stride,
                             const float *v, long v_stride, long n, long dv, float alpha, const float *mask,
                             long mask_stride, int check, float pad_key_norm, float pad_mask_max, float *out,
                             long out_stride, int bf16) {
    float s[MAX_KEYS];
#define R(x) (bf16 ? sg_bf16_rounded(x) : (x))
    for (long r = 0; r < rows; r++) {
        const float *qr = q + r * q_stride;
        float *o = out + r * out_stride;
        float row_max = -INFINITY, q2 = 0;
        for (long c = 0; c < d; c++) q2 += qr[c] * qr[c];
        for (long j = 0; j < n; j++) {
            float dot = 0;
            for (long c = 0; c < d; c++) dot += R(qr[c]) * R(k[j * k_stride + c]);
            s[j] = alpha * dot + (mask ? mask[j * mask_stride] : 0);
            if (s[j] > row_max) row_max = s[j];
        }
        if (check && !padding_exact(alpha, q2, pad_key_norm, pad_mask_max, row_max)) return 0;
        memset(o, 0, sizeof(float) * (size_t)dv);
        if (row_max == -INFINITY) continue;  // every key masked with −inf: zeros, as the general path
        float sum = 0;
        for (long j = 0; j < n; j++) sum += s[j] = expf(s[j] - row_max);
        float inv = 1 / sum;
        for (long j = 0; j < n; j++)
            for (long c = 0; c < dv; c++) o[c] += R(s[j] * inv) * R(v[j * v_stride + c]);
    }
    return 1;
#undef R
}

#ifdef SG_VECTOR_X86
#define AVX512 SG_TARGET_AVX512

/// Each lane rounded to nearest-even bf16 (NaN is not kept quiet: operands here are finite).
AVX512 static inline __m512 round_bf16_avx512(__m512 x) {
    __m512i b = _mm512_castps_si512(x);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    b = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
    return _mm512_castsi512_ps(_mm512_and_si512(b, _mm512_set1_epi32((int)0xffff0000u)));
}

enum { ROWS = 4 };  // query rows at once: four independent FMA chains, each key / value vector loaded once for all

/// ROWS query rows from `r0`: scores in `blocks` (a constant after inlining) registers of 16 keys each from the
/// keys transposed to kt[c·64 + j], the softmax, then the weighted sum of the value rows. 0 when a row fails
/// the padding check.
AVX512 static inline __attribute__((always_inline)) int few_keys_rows(
    const float *q, long q_stride, long rows, long r0, long d, const float *v, long v_stride, long n, long dv,
    float alpha, const __m512 *bias, int check, float pad_key_norm, float pad_mask_max, float *out, long out_stride,
    const float *kt, int bf16, const long blocks) {
    const float *qr[ROWS];
    for (long i = 0; i < ROWS; i++) qr[i] = q + (r0 + (r0 + i < rows ? i : rows - 1 - r0)) * q_stride;
    __m512 s[ROWS][4];
    for (long i = 0; i < ROWS; i++)
        for (long b = 0; b < blocks; b++) s[i][b] = _mm512_setzero_ps();
    for (long c = 0; c < d; c++) {
        __m512 kc[4];
        for (long b = 0; b < blocks; b++) kc[b] = _mm512_loadu_ps(kt + c * MAX_KEYS + b * 16);
        for (long i = 0; i < ROWS; i++) {
            __m512 qc = _mm512_set1_ps(bf16 ? sg_bf16_rounded(qr[i][c]) : qr[i][c]);
            for (long b = 0; b < blocks; b++) s[i][b] = _mm512_fmadd_ps(qc, kc[b], s[i][b]);
        }
    }
    float p[ROWS][MAX_KEYS];
    for (long i = 0; i < ROWS && r0 + i < rows; i++) {
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (long b = 0; b < blocks; b++) {
            s[i][b] = _mm512_fmadd_ps(s[i][b], _mm512_set1_ps(alpha), bias[b]);
            mx = _mm512_max_ps(mx, s[i][b]);
        }
        float row_max = _mm512_reduce_max_ps(mx);
        if (check) {
            __m512 q2 = _mm512_setzero_ps();
            for (long c = 0; c < d; c += 16) {
                __m512 x = _mm512_maskz_loadu_ps(sg_lanes16(d - c), qr[i] + c);
                q2 = _mm512_fmadd_ps(x, x, q2);
            }
            if (!padding_exact(alpha, _mm512_reduce_add_ps(q2), pad_key_norm, pad_mask_max, row_max)) return 0;
        }
        if (row_max == -INFINITY) {  // every key masked with −inf: zeros, as the general path
            memset(p[i], 0, sizeof p[i]);
            continue;
        }
        __m512 sum = _mm512_setzero_ps(), m = _mm512_set1_ps(row_max);
        for (long b = 0; b < blocks; b++) {
            s[i][b] = sg_exp16(_mm512_sub_ps(s[i][b], m));
            sum = _mm512_add_ps(sum, s[i][b]);
        }
        __m512 inv = _mm512_set1_ps(1 / _mm512_reduce_add_ps(sum));
        for (long b = 0; b < blocks; b++) {
            __m512 pb = _mm512_mul_ps(s[i][b], inv);
            _mm512_storeu_ps(p[i] + b * 16, bf16 ? round_bf16_avx512(pb) : pb);
        }
    }
    for (long c = 0; c < dv; c += 16) {
        __mmask16 mc = sg_lanes16(dv - c);
        __m512 acc[ROWS];
        for (long i = 0; i < ROWS; i++) acc[i] = _mm512_setzero_ps();
        for (long j = 0; j < n; j++) {
            __m512 vj = _mm512_maskz_loadu_ps(mc, v + j * v_stride + c);
            if (bf16) vj = round_bf16_avx512(vj);
            for (long i = 0; i < ROWS; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(p[i][j]), vj, acc[i]);
        }
        for (long i = 0; i < ROWS && r0 + i < rows; i++) {
            // Masked stores only for the tail: they cost more on AMD cores.
            if (c + 16 <= dv) _mm512_storeu_ps(out + (r0 + i) * out_stride + c, acc[i]);
            else _mm512_mask_storeu_ps(out + (r0 + i) * out_stride + c, mc, acc[i]);
        }
    }
    return 1;
}

AVX512 static int few_keys_avx512(const float *q, long q_stride, long rows, long d, const float *k, long k_stride,
                                  const float *v, long v_stride, long n, long dv, float alpha, const float *mask,
                                  long mask_stride, int check, float pad_key_norm, float pad_mask_max, float *out,
                                  long out_stride, float *kt, int bf16) {
    long blocks = (n + 15) / 16;
    for (long c = 0; c < d; c++)
        for (long j = 0; j < blocks * 16; j++)
            kt[c * MAX_KEYS + j] = j < n ? (bf16 ? sg_bf16_rounded(k[j * k_stride + c]) : k[j * k_stride + c]) : 0;
    __m512 bias[4];
    for (long b = 0; b < blocks; b++) {
        float m[16];
        for (long j = 0; j < 16; j++) {
            long key = b * 16 + j;
            m[j] = key >= n ? -INFINITY : mask ? mask[key * mask_stride] : 0;
        }
        bias[b] = _mm512_loadu_ps(m);
    }
    for (long r0 = 0; r0 < rows; r0 += ROWS) {
#define ROWS_WITH(B) few_keys_rows(q, q_stride, rows, r0, d, v, v_stride, n, dv, alpha, bias, check, pad_key_norm, \
                                   pad_mask_max, out, out_stride, kt, bf16, B)
        int ok = blocks == 1 ? ROWS_WITH(1) : blocks == 2 ? ROWS_WITH(2) : blocks == 3 ? ROWS_WITH(3) : ROWS_WITH(4);
#undef ROWS_WITH
        if (!ok) return 0;
    }
    return 1;
}

#define AVX2 SG_TARGET_AVX2

AVX2 static inline float hmax8(__m256 x) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

/// few_keys_avx512 with 8 lanes, fp32 operands only (no bf16 tiles on an AVX2 CPU). Sixteen registers cannot hold
/// four rows' scores over 64 keys, so the scores go a block of 8 keys at a time (four rows' sums in registers) to
/// `p`, and the softmax runs there.
AVX2 static int few_keys_avx2(const float *q, long q_stride, long rows, long d, const float *k, long k_stride,
                              const float *v, long v_stride, long n, long dv, float alpha, const float *mask,
                              long mask_stride, int check, float pad_key_norm, float pad_mask_max, float *out,
                              long out_stride, float *kt) {
    long blocks = (n + 7) / 8;
    for (long c = 0; c < d; c++)
        for (long j = 0; j < blocks * 8; j++) kt[c * MAX_KEYS + j] = j < n ? k[j * k_stride + c] : 0;
    float bias[MAX_KEYS];
    for (long j = 0; j < blocks * 8; j++) bias[j] = j >= n ? -INFINITY : mask ? mask[j * mask_stride] : 0;
    for (long r0 = 0; r0 < rows; r0 += ROWS) {
        // Rows past the end repeat the last one: computed, never stored.
        const float *qr[ROWS];
        for (long i = 0; i < ROWS; i++) qr[i] = q + (r0 + i < rows ? r0 + i : rows - 1) * q_stride;
        float p[ROWS][MAX_KEYS];
        for (long b = 0; b < blocks; b++) {
            __m256 sc[ROWS];
            for (long i = 0; i < ROWS; i++) sc[i] = _mm256_setzero_ps();
            for (long c = 0; c < d; c++) {
                __m256 kc = _mm256_loadu_ps(kt + c * MAX_KEYS + b * 8);
                for (long i = 0; i < ROWS; i++) sc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(qr[i] + c), kc, sc[i]);
            }
            __m256 bb = _mm256_loadu_ps(bias + b * 8);
            for (long i = 0; i < ROWS; i++) _mm256_storeu_ps(p[i] + b * 8, _mm256_fmadd_ps(sc[i], _mm256_set1_ps(alpha), bb));
        }
        for (long i = 0; i < ROWS; i++) {
            __m256 mx = _mm256_loadu_ps(p[i]);
            for (long b = 1; b < blocks; b++) mx = _mm256_max_ps(mx, _mm256_loadu_ps(p[i] + b * 8));
            float row_max = hmax8(mx);
            if (check) {
                __m256 q2 = _mm256_setzero_ps();
                for (long c = 0; c < d; c += 8) {
                    __m256 x = _mm256_maskload_ps(qr[i] + c, sg_lanes8(d - c));
                    q2 = _mm256_fmadd_ps(x, x, q2);
                }
                if (!padding_exact(alpha, sg_hsum8(q2), pad_key_norm, pad_mask_max, row_max)) return 0;
            }
            if (row_max == -INFINITY) {  // every key masked with −inf: zeros, as the general path
                memset(p[i], 0, sizeof p[i]);
                continue;
            }
            __m256 sum = _mm256_setzero_ps(), m = _mm256_set1_ps(row_max);
            for (long b = 0; b < blocks; b++) {
                __m256 e = sg_exp8(_mm256_sub_ps(_mm256_loadu_ps(p[i] + b * 8), m));
                _mm256_storeu_ps(p[i] + b * 8, e);
                sum = _mm256_add_ps(sum, e);
            }
            __m256 inv = _mm256_set1_ps(1 / sg_hsum8(sum));
            for (long b = 0; b < blocks; b++) _mm256_storeu_ps(p[i] + b * 8, _mm256_mul_ps(_mm256_loadu_ps(p[i] + b * 8), inv));
        }
        for (long c = 0; c < dv; c += 8) {
            __m256i mc = sg_lanes8(dv - c);
            int whole = c + 8 <= dv;
            __m256 acc[ROWS];
            for (long i = 0; i < ROWS; i++) acc[i] = _mm256_setzero_ps();
            for (long j = 0; j < n; j++) {
                const float *vj = v + j * v_stride + c;
                __m256 x = whole ? _mm256_loadu_ps(vj) : _mm256_maskload_ps(vj, mc);
                for (long i = 0; i < ROWS; i++) acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(p[i] + j), x, acc[i]);
            }
            for (long i = 0; i < ROWS && r0 + i < rows; i++) {
                float *o = out + (r0 + i) * out_stride + c;
                if (whole) _mm256_storeu_ps(o, acc[i]);
                else _mm256_maskstore_ps(o, mc, acc[i]);
            }
        }
    }
    return 1;
}
#endif

long sg_attention_few_keys_scratch(long d) { return d * MAX_KEYS; }

int sg_attention_few_keys(const float *q, long q_stride, long rows, long d, const float *k, long k_stride,
                          const float *v, long v_stride, long n, long dv, float alpha, const float *mask,
                          long mask_stride, int check_padding, float pad_key_norm, float pad_mask_max, float *out,
                          long out_stride, float *scratch, int bf16_operands, sg_isa isa) {
    if (n < 1 || n > MAX_KEYS) return -1;
#ifdef SG_VECTOR_X86
    if (isa == SG_ISA_AVX512)
        return few_keys_avx512(q, q_stride, rows, d, k, k_stride, v, v_stride, n, dv, alpha, mask, mask_stride,
                               check_padding, pad_key_norm, pad_mask_max, out, out_stride, scratch, bf16_operands);
    if (isa == SG_ISA_AVX2 && !bf16_operands)
        return few_keys_avx2(q, q_stride, rows, d, k, k_stride, v, v_stride, n, dv, alpha, mask, mask_stride,
                             check_padding, pad_key_norm, pad_mask_max, out, out_stride, scratch);
#endif
    (void)scratch;
    return few_keys_portable(q, q_stride, rows, d, k, k_stride, v, v_stride, n, dv, alpha, mask, mask_stride,
                             check_padding, pad_key_norm, pad_mask_max, out, out_stride, bf16_operands);
}
