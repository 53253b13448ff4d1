// SANA's ReLU linear attention for one (batch, head) pair in one pass over its rows, no GEMM library:
//   pass 1  KV[j][c] = Σ_t relu(k_tj) v_tc,   ksum[j] = Σ_t relu(k_tj)
//   pass 2  out_tc  = (Σ_j relu(q_tj) KV[j][c]) / (Σ_j relu(q_tj) ksum[j] + eps)
// It replaces relu(K), [V | 1] and relu(Q) copied into scratch by baseline-x86 Swift loops, then two small OpenBLAS
// sgemms per head (m = 32, n = 33, k = 256 in SANA 600M at 512 px), too small for a GEMM library's packing to pay
// off. Here each pass is a register-blocked outer-product loop over blocks of tokens whose operands stay in
// L1 (KV is d·dv floats); the denominator is a dot product per token rather than a (dv+1)-th column, which would
// cost a whole extra, mostly masked, vector per row of KV when dv is a multiple of the vector width.
// Zen 5, 1 thread, 72 heads of [256, 32] tokens-first: 0.47 ms AVX-512, 0.87 ms AVX2 (the old path in C: 0.56 ms
// on OpenBLAS SkylakeX, 1.07 ms on Haswell); sanagraph-bench relu_linear_attention_h36 ([2, 36, 1024, 32]), 1
// thread: 3.8 ms (OpenBLAS SkylakeX; 4.8 ms Haswell) → 1.9 ms.
//
// The vector paths (AVX-512 F/BW/DQ/VL, 16 lanes with masked tails; AVX2 + FMA, 8 lanes) are one template
// instantiated twice: this file includes itself with LA_TEMPLATE defined (see the bottom).
#ifndef LA_TEMPLATE
#include "CKernels.h"

#include <stdlib.h>
#include <string.h>

#include "vector_math.h"

#ifdef SG_VECTOR_X86
#define SG_LA_X86 1
#endif

enum {
    LA_TOKENS = 64,          // tokens whose relu(q) / relu(k) rows are staged in L1 at a time
    LA_STACK_FLOATS = 8192,  // workspace on the stack (32 KB); larger d·dv falls back to the heap
};

static long la_round_up(long v, long to) { return (v + to - 1) / to * to; }

/// Prefetches (into L1) the cache lines of rows [t0, t1) of `count` floats, `stride` apart. The vector paths ask for
/// the next block of rows while they work on one: a head's rows are short (128 B at d = 32) and, tokens-first,
/// 4.6 KB apart, and even contiguous heads streamed from DRAM ran at half speed on the hardware prefetchers alone
/// (Zen 5, 72 heads × 1024 tokens: 5.8 → 3.1 ms tokens-first, 3.6 → 2.0 ms heads-first; ~4 % slower when L3 holds
/// them).
static inline void la_prefetch(const float *p, long stride, long t0, long t1, long count) {
#ifdef SG_LA_X86
    for (long t = t0; t < t1; t++) {
        uintptr_t a = (uintptr_t)(p + t * stride) & ~(uintptr_t)63, end = (uintptr_t)(p + t * stride + count);
        for (; a < end; a += 64) _mm_prefetch((const char *)a, _MM_HINT_T0);
    }
#else
    (void)p; (void)stride; (void)t0; (void)t1; (void)count;
#endif
}

/// Plain C for CPUs without AVX2 (or SANAGRAPH_CPU=generic). `kv` holds d·dv + d floats;
/// each output row doubles as the accumulator of its numerator.
static void la_portable(const float *q, long qs, const float *k, long ks, const float *v, long vs, long n, long d,
                        long dv, float eps, float *out, long os, float *kv) {
    float *ksum = kv + d * dv;
    memset(kv, 0, sizeof(float) * (size_t)(d * dv + d));
    for (long t = 0; t < n; t++) {
        const float *kr = k + t * ks, *vr = v + t * vs;
        for (long j = 0; j < d; j++) {
            float r = kr[j] > 0 ? kr[j] : 0;  // also maps NaN to 0, like the Swift code it replaces
            ksum[j] += r;
            for (long c = 0; c < dv; c++) kv[j * dv + c] += r * vr[c];
        }
    }
    for (long t = 0; t < n; t++) {
        const float *qr = q + t * qs;
        float *o = out + t * os, den = 0;
        memset(o, 0, sizeof(float) * (size_t)dv);
        for (long j = 0; j < d; j++) {
            float r = qr[j] > 0 ? qr[j] : 0;
            den += r * ksum[j];
            for (long c = 0; c < dv; c++) o[c] += r * kv[j * dv + c];
        }
        den += eps;
        for (long c = 0; c < dv; c++) o[c] /= den;
    }
}

#ifdef SG_LA_X86
#define LA_INLINE __attribute__((always_inline)) static inline
// AVX-512: 32 registers hold an 8 × 2-vector accumulator tile; masks are k-registers.
#define LA_TEMPLATE 1
#define LA(name) name##_avx512
#define LA_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define L 16
#define RMAX 8
#define vec __m512
#define vmask __mmask16
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_LOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define V_STORE(p, x) _mm512_storeu_ps(p, x)
// Masked stores only where a lane is off: they cost more on AMD cores even with every lane set.
#define V_STOREM(p, m, x) ((m) == 0xffff ? _mm512_storeu_ps(p, x) : _mm512_mask_storeu_ps(p, m, x))
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_RELU(x) _mm512_max_ps(x, _mm512_setzero_ps())  // max(NaN, 0) = 0, as in the portable path
#define V_HSUM(x) _mm512_reduce_add_ps(x)
#define V_MASK(count) sg_lanes16(count)
#include "linear_attention.c"
#undef LA
#undef LA_TARGET
#undef L
#undef RMAX
#undef vec
#undef vmask
#undef V_ZERO
#undef V_LOAD
#undef V_LOADM
#undef V_STORE
#undef V_STOREM
#undef V_BCAST
#undef V_SET1
#undef V_FMA
#undef V_ADD
#undef V_DIV
#undef V_RELU
#undef V_HSUM
#undef V_MASK

// AVX2 + FMA: 16 registers, so a 4 × 2-vector tile; masks are lane-wise all-ones integers (vmaskmov).
#define LA(name) name##_avx2
#define LA_TARGET __attribute__((target("avx2,fma")))
#define L 8
#define RMAX 4
#define vec __m256
#define vmask __m256i
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_LOADM(p, m) _mm256_maskload_ps(p, m)
#define V_STORE(p, x) _mm256_storeu_ps(p, x)
#define V_STOREM(p, m, x) \
    (_mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xff ? _mm256_storeu_ps(p, x) : _mm256_maskstore_ps(p, m, x))
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_SET1(x) _mm256_set1_ps(x)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_RELU(x) _mm256_max_ps(x, _mm256_setzero_ps())
#define V_HSUM(x) sg_hsum8(x)
#define V_MASK(count) sg_lanes8(count)
#include "linear_attention.c"
#endif  // SG_LA_X86

void sg_relu_linear_attention_head(const float *q, long q_stride, const float *k, long k_stride, const float *v,
                                   long v_stride, long n, long d, long dv, float eps, float *out, long out_stride,
                                   sg_isa isa) {
    if (n <= 0 || dv <= 0) return;
    if (d < 0) d = 0;
#ifndef SG_LA_X86
    isa = SG_ISA_PORTABLE;
#endif
    // Vector paths: KV [d][dv padded to 16] (zeros past dv, so its rows load whole), ksum and LA_TOKENS staged rows
    // [d padded to 16]; the portable path needs less.
    long dp = la_round_up(d, 16);
    size_t need = isa == SG_ISA_PORTABLE ? (size_t)(d * dv + d)
                                         : (size_t)(d * la_round_up(dv, 16) + dp + LA_TOKENS * dp);
    _Alignas(64) float stack[LA_STACK_FLOATS];
    float *work = need <= LA_STACK_FLOATS ? stack : malloc(sizeof(float) * need);
    if (!work) abort();
    switch (isa) {
#ifdef SG_LA_X86
    case SG_ISA_AVX512:
        la_head_avx512(q, q_stride, k, k_stride, v, v_stride, n, d, dv, eps, out, out_stride, work);
        break;
    case SG_ISA_AVX2:
        la_head_avx2(q, q_stride, k, k_stride, v, v_stride, n, d, dv, eps, out, out_stride, work);
        break;
#endif
    default:
        la_portable(q, q_stride, k, k_stride, v, v_stride, n, d, dv, eps, out, out_stride, work);
    }
    if (work != stack) free(work);
}

#else  // LA_TEMPLATE: the vector path, in terms of the V_* operations on `vec` of L lanes.

/// One R × CB-vector tile (R, CB and the flags constant after inlining, so `acc` lives in registers):
/// acc[r][cb] = Σ_{i < len} a[r·a_row + i·a_step] · b[i·b_stride + cb·L]. Pass 1 (den == NULL): rows are j, the
/// sum runs over tokens, b is V (masked tail loads: V's row ends at dv) and the tile is added to KV. Pass 2: rows
/// are tokens, the sum runs over j, b is KV (padded, whole loads) and out = acc / (den[r] + eps), tail masked.
LA_TARGET LA_INLINE void LA(la_tile)(const int R, const int CB, const float *a, long a_row, long a_step, long len,
                                     const float *b, long b_stride, int b_masked, const vmask *mask, float *c,
                                     long c_row, const float *den, float eps) {
    vec acc[RMAX][2];
    for (int r = 0; r < R; r++)
        for (int cb = 0; cb < CB; cb++) acc[r][cb] = V_ZERO();
    for (long i = 0; i < len; i++) {
        vec bv[2];
        for (int cb = 0; cb < CB; cb++)
            bv[cb] = b_masked ? V_LOADM(b + i * b_stride + cb * L, mask[cb]) : V_LOAD(b + i * b_stride + cb * L);
        for (int r = 0; r < R; r++) {
            vec s = V_BCAST(a + r * a_row + i * a_step);
            for (int cb = 0; cb < CB; cb++) acc[r][cb] = V_FMA(s, bv[cb], acc[r][cb]);
        }
    }
    for (int r = 0; r < R; r++) {
        if (!den) {
            for (int cb = 0; cb < CB; cb++)
                V_STORE(c + r * c_row + cb * L, V_ADD(V_LOAD(c + r * c_row + cb * L), acc[r][cb]));
        } else {
            vec dd = V_SET1(den[r] + eps);  // fp32 add, exactly where diffusers adds its eps
            for (int cb = 0; cb < CB; cb++) V_STOREM(c + r * c_row + cb * L, mask[cb], V_DIV(acc[r][cb], dd));
        }
    }
}

/// `la_tile` over `rows` (RMAX at a time, then 4, 2, 1) × columns [0, cols) in vectors of L lanes (two at a time),
/// the last vector masked where it meets V's or the output's row end.
LA_TARGET LA_INLINE void LA(la_tiles)(long rows, long cols, const float *a, long a_row, long a_step, long len,
                                      const float *b, long b_stride, int b_masked, float *c, long c_row,
                                      const float *den, float eps) {
    for (long c0 = 0; c0 < cols; c0 += 2 * L) {
        int cb = cols - c0 > L ? 2 : 1;
        vmask mask[2] = {V_MASK(cols - c0), V_MASK(cols - c0 - L)};
        for (long r0 = 0; r0 < rows;) {
            long left = rows - r0;
            int R = left >= RMAX ? RMAX : left >= RMAX / 2 ? RMAX / 2 : left >= 2 ? 2 : 1;
            const float *ar = a + r0 * a_row;
            float *cr = c + r0 * c_row + c0;
            const float *dr = den ? den + r0 : NULL;
#define LA_CASE(RR, CC) LA(la_tile)(RR, CC, ar, a_row, a_step, len, b + c0, b_stride, b_masked, mask, cr, c_row, dr, eps)
            switch (R * 2 + cb - 1) {  // one specialisation per tile shape
            case RMAX * 2 + 1: LA_CASE(RMAX, 2); break;
            case RMAX * 2: LA_CASE(RMAX, 1); break;
#if RMAX > 4
            case 4 * 2 + 1: LA_CASE(4, 2); break;
            case 4 * 2: LA_CASE(4, 1); break;
#endif
            case 2 * 2 + 1: LA_CASE(2, 2); break;
            case 2 * 2: LA_CASE(2, 1); break;
            case 1 * 2 + 1: LA_CASE(1, 2); break;
            default: LA_CASE(1, 1); break;
            }
#undef LA_CASE
            r0 += R;
        }
    }
}

/// Copies relu of `count` rows of d floats into `dst` (rows of dp, zeros past d); adds them to `sum` when given.
LA_TARGET LA_INLINE void LA(la_stage)(const float *src, long stride, long count, long d, long dp, float *dst,
                                      float *sum) {
    for (long t = 0; t < count; t++)
        for (long j = 0; j < dp; j += L) {
            vec x = V_RELU(V_LOADM(src + t * stride + j, V_MASK(d - j)));
            V_STORE(dst + t * dp + j, x);
            if (sum) V_STORE(sum + j, V_ADD(V_LOAD(sum + j), x));
        }
}

LA_TARGET __attribute__((noinline)) static void LA(la_head)(const float *q, long qs, const float *k, long ks,
                                                            const float *v, long vs, long n, long d, long dv,
                                                            float eps, float *out, long os, float *work) {
    // The workspace is laid out for 16-lane padding whatever L is (8 divides 16).
    const long dp = la_round_up(d, 16), dvp = la_round_up(dv, 16);
    float *kv = work, *ksum = kv + d * dvp, *rows = ksum + dp;
    memset(work, 0, sizeof(float) * (size_t)(d * dvp + dp));
    // Pass 1, per block of tokens: stage relu(K) (so the tiles broadcast it with no relu each), then
    // KV[j0..][c0..] += Σ_t relu(k_tj) v_t over the block with a register tile per (j block, column block).
    for (long t0 = 0; t0 < n; t0 += LA_TOKENS) {
        long tb = n - t0 < LA_TOKENS ? n - t0 : LA_TOKENS;
        long t1 = t0 + tb, t2 = n - t1 < LA_TOKENS ? n : t1 + LA_TOKENS;  // the next block (pass 2's first)
        if (t1 < n) la_prefetch(k, ks, t1, t2, d), la_prefetch(v, vs, t1, t2, dv);
        else la_prefetch(q, qs, 0, n < LA_TOKENS ? n : LA_TOKENS, d);
        LA(la_stage)(k + t0 * ks, ks, tb, d, dp, rows, ksum);
        LA(la_tiles)(d, dv, rows, 1, dp, tb, v + t0 * vs, vs, 1, kv, dvp, NULL, eps);
    }
    // Pass 2, per block of tokens: stage relu(Q), the denominators as dot products with ksum (padding is zero on
    // both sides), then out rows = relu(Q) KV / (den + eps) tile by tile.
    float den[LA_TOKENS];
    for (long t0 = 0; t0 < n; t0 += LA_TOKENS) {
        long tb = n - t0 < LA_TOKENS ? n - t0 : LA_TOKENS;
        long t1 = t0 + tb, t2 = n - t1 < LA_TOKENS ? n : t1 + LA_TOKENS;
        la_prefetch(q, qs, t1, t2, d);
        LA(la_stage)(q + t0 * qs, qs, tb, d, dp, rows, NULL);
        for (long t = 0; t < tb; t++) {
            vec s = V_ZERO();
            for (long j = 0; j < dp; j += L) s = V_FMA(V_LOAD(rows + t * dp + j), V_LOAD(ksum + j), s);
            den[t] = V_HSUM(s);
        }
        LA(la_tiles)(tb, dv, rows, dp, 1, d, kv, dvp, 0, out + t0 * os, os, den, eps);
    }
}

#endif  // LA_TEMPLATE
