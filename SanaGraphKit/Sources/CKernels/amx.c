// bf16 GEMM on Intel AMX tiles: y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias), fp32 x and y, bf16 operands, fp32 sums.
//
// Debian 12's oneDNN 2.6 gets a fraction of AMX's ~1 TFLOP/s per core per GHz on the models' linear shapes; this
// kernel is the plain scheme the hardware is built for: a 32×32 block of y in four 16×16 fp32 accumulator tiles,
// fed per 32-wide k step by two 16-row tiles of x and two tiles of weights, already in the pair-interleaved
// ("VNNI") order TDPBF16PS reads. On two Emerald Rapids cores: 1.7–2.6 TFLOP/s, 82–119 % of PyTorch's bf16 GEMM
// (docs/performance.md).
//
// Callers: sg_amx_usable() (CPU and kernel grant), sg_amx_pack() once per weight, then per call sg_amx_convert()
// of the rows into a bf16 scratch and sg_amx_gemm() over column blocks (split between threads by the caller).
#include "CKernels.h"

#include <math.h>
#include <string.h>

#include "vector_math.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define SG_AMX 1
#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#endif

enum { TILE_K = 32, BLOCK_N = 32, TILE_ELEMENTS = 512 };  // a weight tile: 16 k-pairs × 16 columns × 2 bf16

static long round_up(long v, long to) { return (v + to - 1) / to * to; }

size_t sg_amx_packed_bytes(long n, long k) { return (size_t)round_up(n, BLOCK_N) * (size_t)round_up(k, TILE_K) * 2; }

size_t sg_amx_src_bytes(long m, long k) { return (size_t)round_up(m, 32) * (size_t)round_up(k, TILE_K) * 2; }

#ifdef SG_AMX
static int has_avx512_bf16(void);
AMX_TARGET static void pack_tile_rows_avx512(const float *w, long rs, long n, long k, long row0, long col0, uint16_t *tile);
AMX_TARGET static void pack_tile_columns_avx512(const float *w, long cs, long n, long k, long row0, long col0, uint16_t *tile);
AMX_TARGET static void pack_tile_bf16_rows_avx512(const uint16_t *w, long n, long k, long row0, long col0, uint16_t *tile);
#endif

/// Where a matrix to pack comes from: fp32 with element (r, c) at f32[r·rs + c·cs], or bf16 bits in rows of k.
typedef struct {
    const float *f32;
    const uint16_t *bits;
    long rs, cs;
} pack_source;

/// One 16-column tile: rows row0..row0+15, k columns col0..col0+31, zero outside n × k.
static void pack_tile(pack_source w, long n, long k, long row0, long col0, uint16_t *tile) {
#ifdef SG_AMX
    if (has_avx512_bf16()) {
        if (w.bits) { pack_tile_bf16_rows_avx512(w.bits, n, k, row0, col0, tile); return; }
        if (w.cs == 1) { pack_tile_rows_avx512(w.f32, w.rs, n, k, row0, col0, tile); return; }
        if (w.rs == 1) { pack_tile_columns_avx512(w.f32, w.cs, n, k, row0, col0, tile); return; }
    }
#endif
    for (long c = 0; c < 16; c++)
        for (long q = 0; q < 32; q++) {
            long r = row0 + c, col = col0 + q;
            uint16_t v = 0;
            if (r < n && col < k) v = w.bits ? w.bits[r * k + col] : sg_bf16_bits(w.f32[r * w.rs + col * w.cs]);
            tile[(q / 2) * 32 + c * 2 + (q & 1)] = v;
        }
}

// Layout: column block nb (32 columns), k step kb (32), half h (16 columns): tile at ((nb·KB + kb)·2 + h)·512,
// element [pair p][column c][2] = w[nb·32 + h·16 + c][kb·32 + 2p + {0, 1}].
static void pack_blocks(pack_source w, long n, long k, uint16_t *packed, long nb0, long nb1) {
    long kb_count = round_up(k, TILE_K) / TILE_K;
    for (long nb = nb0; nb < nb1; nb++)
        for (long kb = 0; kb < kb_count; kb++)
            for (long h = 0; h < 2; h++)
                pack_tile(w, n, k, nb * BLOCK_N + h * 16, kb * TILE_K, packed + ((nb * kb_count + kb) * 2 + h) * TILE_ELEMENTS);
}

void sg_amx_pack_strided(const float *w, long rs, long cs, long n, long k, uint16_t *packed, long nb0, long nb1) {
    pack_blocks((pack_source){w, NULL, rs, cs}, n, k, packed, nb0, nb1);
}

void sg_amx_pack(const void *w, int w_bf16, long n, long k, uint16_t *packed, long nb0, long nb1) {
    pack_source source = w_bf16 ? (pack_source){NULL, w, k, 1} : (pack_source){w, NULL, k, 1};
    pack_blocks(source, n, k, packed, nb0, nb1);
}

void sg_amx_unpack(const uint16_t *packed, long n, long k, float *w) {
    long kb_count = round_up(k, TILE_K) / TILE_K, nb_count = round_up(n, BLOCK_N) / BLOCK_N;
    for (long nb = 0; nb < nb_count; nb++)
        for (long kb = 0; kb < kb_count; kb++)
            for (long h = 0; h < 2; h++) {
                const uint16_t *tile = packed + ((nb * kb_count + kb) * 2 + h) * TILE_ELEMENTS;
                for (long c = 0; c < 16; c++) {
                    long row = nb * BLOCK_N + h * 16 + c;
                    if (row >= n) break;
                    for (long q = 0; q < TILE_K && kb * TILE_K + q < k; q++) {
                        uint32_t bits = (uint32_t)tile[(q / 2) * 32 + c * 2 + (q & 1)] << 16;
                        memcpy(&w[row * k + kb * TILE_K + q], &bits, 4);
                    }
                }
            }
}

/// Rows [m0, m1) of x rounded into the padded bf16 copy, one element at a time (CPUs without AVX512_BF16).
static void convert_rows(const float *x, long ldx, long m0, long m1, long k, long kp, uint16_t *a) {
    for (long r = m0; r < m1; r++)
        for (long c = 0; c < kp; c++) a[r * kp + c] = c < k ? sg_bf16_bits(x[r * ldx + c]) : 0;
}

#ifdef SG_AMX

static int has_avx512_bf16(void) {
    static _Atomic int known = -1;
    if (known < 0) {
        sg_cpu_info cpu;
        sg_cpu_detect(&cpu);
        known = cpu.avx512_bf16 && cpu.avx512bw;
    }
    return known;
}

int sg_amx_usable(void) {
    sg_cpu_info cpu;
    sg_cpu_detect(&cpu);
    return cpu.amx_tile && cpu.amx_bf16 && cpu.avx512_bf16 && cpu.avx512bw && sg_amx_request_permission();
}

AMX_TARGET static void convert_rows_avx512(const float *x, long ldx, long m0, long m1, long k, long kp, uint16_t *a) {
    for (long r = m0; r < m1; r++) {
        uint16_t *dst = a + r * kp;
        const float *src = x + r * ldx;
        long c = 0;
        for (; c + 32 <= k; c += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + c + 16), _mm512_loadu_ps(src + c));
            _mm512_storeu_si512(dst + c, (__m512i)v);
        }
        for (; c < kp; c++) dst[c] = c < k ? sg_bf16_bits(src[c]) : 0;
    }
}

/// Stores 16 rows of 16 bf16 pairs (row c = one weight row's 32 k values) as a tile: transposed, row p of the
/// tile holding pair p of every row.
AMX_TARGET static void store_tile_transposed(__m512i r[16], uint16_t *tile) {
    sg_transpose16x16(r);
    for (int p = 0; p < 16; p++) _mm512_storeu_si512(tile + p * 32, r[p]);
}

/// pack_tile for row-contiguous fp32 sources (weights, attention keys): each of the 16 rows gives 32 k values.
AMX_TARGET static void pack_tile_rows_avx512(const float *w, long rs, long n, long k, long row0, long col0, uint16_t *tile) {
    __mmask16 lo = sg_lanes16(k - col0), hi = sg_lanes16(k - col0 - 16);
    __m512i r[16];
    for (long c = 0; c < 16; c++) {
        r[c] = _mm512_setzero_si512();
        if (row0 + c < n) {
            const float *src = w + (row0 + c) * rs + col0;
            r[c] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, src + 16), _mm512_maskz_loadu_ps(lo, src));
        }
    }
    store_tile_transposed(r, tile);
}

/// The same from bf16 rows (a checkpoint's bits): no rounding, only the layout.
AMX_TARGET static void pack_tile_bf16_rows_avx512(const uint16_t *w, long n, long k, long row0, long col0, uint16_t *tile) {
    long left = k - col0;
    __mmask32 m = left >= 32 ? 0xffffffffu : left <= 0 ? 0 : (__mmask32)((1u << left) - 1);
    __m512i r[16];
    for (long c = 0; c < 16; c++)
        r[c] = row0 + c < n ? _mm512_maskz_loadu_epi16(m, w + (row0 + c) * k + col0) : _mm512_setzero_si512();
    store_tile_transposed(r, tile);
}

/// pack_tile for column-contiguous sources (attention values read as [dv, keys]): two k columns of 16 contiguous
/// rows give one 64-byte tile row, interleaved.
AMX_TARGET static void pack_tile_columns_avx512(const float *w, long cs, long n, long k, long row0, long col0, uint16_t *tile) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __mmask16 m = sg_lanes16(n - row0);
    for (long p = 0; p < 16; p++) {
        long c0 = col0 + 2 * p;
        __m512 even = c0 < k ? _mm512_maskz_loadu_ps(m, w + c0 * cs + row0) : _mm512_setzero_ps();
        __m512 odd = c0 + 1 < k ? _mm512_maskz_loadu_ps(m, w + (c0 + 1) * cs + row0) : _mm512_setzero_ps();
        __m512i both = (__m512i)_mm512_cvtne2ps_pbh(odd, even);  // even in the low 16 halves, odd in the high
        _mm512_storeu_si512(tile + p * 32, _mm512_permutexvar_epi16(interleave, both));
    }
}

#endif

void sg_amx_convert(const float *x, long ldx, long m0, long m1, long m, long k, uint16_t *a) {
    long kp = round_up(k, TILE_K), mp = round_up(m, 32);
    if (m1 >= m) {  // the call that reaches the last row also zeroes the padding rows
        memset(a + m * kp, 0, (size_t)((mp - m) * kp) * 2);
        m1 = m;
    }
#ifdef SG_AMX
    if (has_avx512_bf16()) { convert_rows_avx512(x, ldx, m0, m1, k, kp, a); return; }
#endif
    convert_rows(x, ldx, m0, m1, k, kp, a);
}

#ifdef SG_AMX

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/// SiLU in place over 16 rows of 16 fp32 values, `ldy` apart (`sg_silu16`: no VDIVPS, which issues once per 16
/// cycles, as long as a tile product).
AMX_TARGET static void silu_rows_avx512(float *y, long ldy) {
    for (int r = 0; r < 16; r++) _mm512_storeu_ps(y + r * ldy, sg_silu16(_mm512_loadu_ps(y + r * ldy)));
}

#define GEMM_NAME amx_gemm_tiles
#define GEMM_ATTRIBUTES AMX_TARGET
#define TILE_STATE
#define TILE_CONFIGURE() do { tile_config cfg_; memset(&cfg_, 0, sizeof cfg_); cfg_.palette = 1; \
    for (int t_ = 0; t_ < 8; t_++) { cfg_.colsb[t_] = 64; cfg_.rows[t_] = 16; } _tile_loadconfig(&cfg_); } while (0)
#define TILE_RELEASE() _tile_release()
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_LOAD(t, p, stride) _tile_loadd(t, p, stride)
#define TILE_STORE(t, p, stride) _tile_stored(t, p, stride)
#define TILE_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#define ACTIVATE_ROWS(p, ld) silu_rows_avx512(p, ld)
#include "amx_gemm.h"

#else

int sg_amx_usable(void) { return 0; }

#endif

// The same kernel with each tile instruction done in plain C (one 1 KiB array per tile register), so tests check the
// packing and the blocking on any CPU; far too slow for anything else.
typedef struct { uint8_t tmm[8][1024]; } emulated_tiles;

static void emulated_load(emulated_tiles *e, int t, const void *p, long stride) {
    for (int r = 0; r < 16; r++) memcpy(e->tmm[t] + r * 64, (const uint8_t *)p + r * stride, 64);
}

static void emulated_store(emulated_tiles *e, int t, void *p, long stride) {
    for (int r = 0; r < 16; r++) memcpy((uint8_t *)p + r * stride, e->tmm[t] + r * 64, 64);
}

static float bf16_value(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// TDPBF16PS: c[m][n] += Σ_p a[m][2p]·b[p][2n] + a[m][2p+1]·b[p][2n+1].
static void emulated_dp(emulated_tiles *e, int c, int a, int b) {
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float acc;
            memcpy(&acc, e->tmm[c] + (m * 16 + n) * 4, 4);
            for (int p = 0; p < 16; p++)
                acc += bf16_value(e->tmm[a] + (m * 32 + 2 * p) * 2) * bf16_value(e->tmm[b] + (p * 32 + 2 * n) * 2)
                     + bf16_value(e->tmm[a] + (m * 32 + 2 * p + 1) * 2) * bf16_value(e->tmm[b] + (p * 32 + 2 * n + 1) * 2);
            memcpy(e->tmm[c] + (m * 16 + n) * 4, &acc, 4);
        }
}

#undef GEMM_NAME
#undef GEMM_ATTRIBUTES
#undef TILE_STATE
#undef TILE_CONFIGURE
#undef TILE_RELEASE
#undef TILE_ZERO
#undef TILE_LOAD
#undef TILE_STORE
#undef TILE_DP
#undef ACTIVATE_ROWS

static void silu_rows(float *y, long ldy) {
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) y[r * ldy + c] = y[r * ldy + c] / (1.0f + expf(-y[r * ldy + c]));
}

#define GEMM_NAME amx_gemm_emulated
#define GEMM_ATTRIBUTES
#define TILE_STATE emulated_tiles tiles_;
#define TILE_CONFIGURE() do { } while (0)
#define TILE_RELEASE() do { } while (0)
#define TILE_ZERO(t) memset(tiles_.tmm[t], 0, 1024)
#define TILE_LOAD(t, p, stride) emulated_load(&tiles_, t, p, stride)
#define TILE_STORE(t, p, stride) emulated_store(&tiles_, t, p, stride)
#define TILE_DP(c, a, b) emulated_dp(&tiles_, c, a, b)
#define ACTIVATE_ROWS(p, ld) silu_rows(p, ld)
#include "amx_gemm.h"

/// The tile kernel, or its emulation where `emulated` (or where this build has no AMX code).
static void amx_gemm(int emulated, const uint16_t *a, long m, long k, const uint16_t *w, long n, const float *bias,
                     float *y, long ldy, long ycol0, long nb0, long nb1, int activation, long pf_next) {
#ifdef SG_AMX
    if (!emulated) { amx_gemm_tiles(a, m, k, w, n, bias, y, ldy, ycol0, nb0, nb1, activation, pf_next); return; }
#endif
    amx_gemm_emulated(a, m, k, w, n, bias, y, ldy, ycol0, nb0, nb1, activation, pf_next);
}

void sg_amx_gemm(const uint16_t *a, long m, long k, const uint16_t *w, long n, const float *bias, float *y, long ldy,
                 long nb0, long nb1, int activation) {
    amx_gemm(0, a, m, k, w, n, bias, y, ldy, 0, nb0, nb1, activation, -1);
}

void sg_amx_gemm_emulated(const uint16_t *a, long m, long k, const uint16_t *w, long n, const float *bias, float *y,
                          long ldy, long nb0, long nb1, int activation) {
    amx_gemm(1, a, m, k, w, n, bias, y, ldy, 0, nb0, nb1, activation, -1);
}

size_t sg_amx_glumb_scratch_floats(long m) { return (size_t)m * 2 * BLOCK_N; }

void sg_amx_glumb(int emulated, const uint16_t *a, long m, long k, const uint16_t *w, long n, const float *bias,
                  const float *taps, const float *depth_bias, long height, long width, float *out, long j0, long j1,
                  float *scratch, sg_isa isa) {
    long half = n / 2, gate0 = half / BLOCK_N;  // the gate's first column block
    float pair_taps[9 * 2 * BLOCK_N], pair_bias[2 * BLOCK_N];
    for (long j = j0; j < j1; j++) {
        long c0 = j * BLOCK_N;
        // Value block j and its gate block side by side in scratch [m, 64], SiLU applied; the gate's weights are
        // fetched during the value's GEMM and the next pair's during the gate's.
        amx_gemm(emulated, a, m, k, w, n, bias, scratch, 2 * BLOCK_N, c0, j, j + 1, 1, gate0 + j);
        amx_gemm(emulated, a, m, k, w, n, bias, scratch + BLOCK_N, 2 * BLOCK_N, half + c0, gate0 + j, gate0 + j + 1, 1,
                 j + 1 < j1 ? j + 1 : -1);
        for (int t = 0; t < 9; t++) {
            memcpy(pair_taps + t * 2 * BLOCK_N, taps + t * n + c0, BLOCK_N * 4);
            memcpy(pair_taps + t * 2 * BLOCK_N + BLOCK_N, taps + t * n + half + c0, BLOCK_N * 4);
        }
        if (depth_bias) {
            memcpy(pair_bias, depth_bias + c0, BLOCK_N * 4);
            memcpy(pair_bias + BLOCK_N, depth_bias + half + c0, BLOCK_N * 4);
        }
        sg_depthwise3x3_glu_rows(scratch, 2 * BLOCK_N, pair_taps, depth_bias ? pair_bias : NULL, height, width, BLOCK_N,
                                 0, m, out + c0, half, isa);
    }
}
