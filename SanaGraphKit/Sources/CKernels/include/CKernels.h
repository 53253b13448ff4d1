// C side of the kernel layer: CPU feature detection (CPUID/XGETBV, the AMX permission request) and the BLAS /
// oneDNN libraries, which are loaded with dlopen after the process has chosen their settings (OpenBLAS reads
// OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS, libgomp reads OMP_NUM_THREADS, when they load). Swift reaches
// everything through this header; nothing here links libopenblas or libdnnl at build time.
#ifndef SANAGRAPH_CKERNELS_H
#define SANAGRAPH_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: CPU

/// What CPUID and XCR0 say. A feature counts only when the OS also saves its registers (XCR0).
typedef struct {
    char vendor[13];
    char brand[49];
    int family, model, stepping;
    int sse3, ssse3, sse41, sse42, popcnt, avx, avx2, fma, f16c, bmi2;
    int avx512f, avx512cd, avx512bw, avx512dq, avx512vl, avx512_vnni, avx512_bf16, avx512_fp16;
    int avx_vnni, amx_tile, amx_bf16, amx_int8;
    int logical_cpus;  // CPUs this process may run on (sched_getaffinity)
} sg_cpu_info;

void sg_cpu_detect(sg_cpu_info *out);

/// Which vector code the element-wise and attention kernels of this library run: chosen once by the Swift side
/// (`KernelSelection.vectorISA`: CPU features, or portable under `SANAGRAPH_CPU=generic`) and passed to each.
typedef enum { SG_ISA_PORTABLE = 0, SG_ISA_AVX2 = 1, SG_ISA_AVX512 = 2 } sg_isa;

/// Asks the kernel for permission to use AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM, Linux ≥ 5.16): 1 granted,
/// 0 refused (no AMX, an older kernel, or a sandbox that forbids it).
int sg_amx_request_permission(void);

/// glibc `mallopt(M_MMAP_THRESHOLD, mmap_threshold)` and `mallopt(M_TRIM_THRESHOLD, trim_threshold)`: freed
/// blocks below the first stay in the heap, which is given back to the system only above the second.
void sg_malloc_retain(int mmap_threshold, int trim_threshold);

// MARK: Libraries

/// dlopen `path` (a soname such as "libopenblas.so.0"); 0 on success, else -1 with the reason in `error`.
int sg_openblas_load(const char *path, char *error, size_t error_size);
int sg_openblas_loaded(void);
const char *sg_openblas_corename(void);
const char *sg_openblas_config(void);
int sg_openblas_num_threads(void);

/// Row-major C = alpha op(A) op(B) + beta C through the loaded OpenBLAS (cblas_sgemm).
void sg_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
              const float *b, long ldb, float beta, float *c, long ldc);

/// dlopen oneDNN (libdnnl.so.2) and create its CPU engine and stream; 0 on success.
int sg_dnnl_load(const char *path, char *error, size_t error_size);
int sg_dnnl_loaded(void);
/// "2.6.3", or "" when not loaded.
const char *sg_dnnl_version(void);
/// Caps the instruction set oneDNN's JIT may use (dnnl_cpu_isa_t value); call before any primitive.
int sg_dnnl_set_max_isa(int isa);
/// dnnl_get_effective_cpu_isa(), or 0 when not loaded.
int sg_dnnl_effective_isa(void);

// MARK: oneDNN matmul with prepacked weights (`y = x Wᵀ + bias`)

typedef struct sg_linear sg_linear;

/// Packs `weight` [n, k] (row-major, PyTorch's nn.Linear layout), stored as fp32 (`weight_bf16` = 0) or bf16 (1,
/// e.g. a checkpoint's mapped bytes), for oneDNN in fp32 or bf16 (rounded to nearest even). Returns NULL with the
/// reason in `error` when oneDNN cannot do it. `impl` receives the implementation name oneDNN chose (e.g.
/// "brg:avx512_core_amx").
sg_linear *sg_linear_create(const void *weight, int weight_bf16, long n, long k, int bf16, char *impl,
                            size_t impl_size, char *error, size_t error_size);
void sg_linear_destroy(sg_linear *linear);
/// Bytes the packed weights take.
size_t sg_linear_bytes(const sg_linear *linear);
/// Bytes of scratch `sg_linear_run` needs for `m` rows (the bf16 copy of `x`; 0 in fp32).
size_t sg_linear_scratch_bytes(const sg_linear *linear, long m);
/// The packed weights back as fp32 [n, k] (bf16 values when packed as bf16); 0 on success.
int sg_linear_unpack(const sg_linear *linear, float *weight);
/// `y [m, n] = x [m, k] · Wᵀ (+ bias [n])`, then SiLU when `silu` is 1 (a oneDNN post-op: applied as y is written;
/// `dnnl_unimplemented` where only oneDNN's reference code takes it — run without and apply SiLU after);
/// `scratch` holds `sg_linear_scratch_bytes` bytes. 0 on success.
int sg_linear_run(sg_linear *linear, const float *x, long m, const float *bias, int silu, float *y, void *scratch);

// MARK: oneDNN convolution with prepacked weights (NCHW fp32 in and out)

typedef struct sg_conv sg_conv;

/// Packs a conv2d filter [cout, cin/groups, kh, kw] (+ bias [cout] or NULL); `hint_h`/`hint_w` is a typical
/// input size (the packed layout is chosen for it and checked for others).
sg_conv *sg_conv_create(const float *weight, const float *bias, long cout, long cin, long kh, long kw,
                        long stride_h, long stride_w, long pad_h, long pad_w, long groups, int bf16,
                        long hint_h, long hint_w, char *impl, size_t impl_size, char *error, size_t error_size);
void sg_conv_destroy(sg_conv *conv);
size_t sg_conv_bytes(const sg_conv *conv);
/// The packed filter back as fp32 [cout, cin/groups, kh, kw]; 0 on success.
int sg_conv_unpack(const sg_conv *conv, float *weight);
/// Scratch for one call on `x [n, cin, h, w]`: the input and output in the primitive's own layouts.
size_t sg_conv_scratch_bytes(sg_conv *conv, long n, long h, long w);
/// The implementation oneDNN runs for an n×h×w input (e.g. "brgconv_1x1:avx512_core_amx_bf16"); -1 when it has
/// none but its slow reference code (the caller's own convolution runs instead).
int sg_conv_impl(sg_conv *conv, long n, long h, long w, char *impl, size_t impl_size);
/// `y [n, cout, hout, wout] = conv2d(x)`; 0 on success.
int sg_conv_run(sg_conv *conv, const float *x, long n, long h, long w, float *y, void *scratch);

/// 1 when, for an n×h×w input, the primitive reads bf16 NHWC and writes fp32 NHWC (oneDNN's bf16 convolutions),
/// so that `sg_conv_run_channels_last` applies; 0 when not; -1 when the size has no oneDNN kernel.
int sg_conv_channels_last(sg_conv *conv, long n, long h, long w);
/// `y [n, hout, wout, cout]` (fp32) = conv2d(x [n, h, w, cin], bf16 bits) without reorders; 0 on success.
int sg_conv_run_channels_last(sg_conv *conv, const uint16_t *x, long n, long h, long w, float *y);

// MARK: bf16 GEMM on AMX tiles (amx.c): `y = x Wᵀ + bias` with bf16 operands and fp32 sums

/// Whether this CPU has AMX-BF16 (with AVX512_BF16) and the kernel granted the tile state to this process.
int sg_amx_usable(void);
/// Bytes of the packed weights for [n, k].
size_t sg_amx_packed_bytes(long n, long k);
/// Packs column blocks [nb0, nb1) (32 rows of `weight` each) of `weight` [n, k] (row-major; fp32, or bf16 bits
/// when `weight_bf16`) into `packed` (`sg_amx_packed_bytes`), rounding fp32 to nearest even bf16. Runs on any CPU;
/// threads may pack disjoint blocks at once.
void sg_amx_pack(const void *weight, int weight_bf16, long n, long k, uint16_t *packed, long nb0, long nb1);
/// `sg_amx_pack` of an fp32 [n, k] matrix whose element (r, c) is at weight[r·row_stride + c·column_stride] (e.g.
/// attention keys, or values read transposed).
void sg_amx_pack_strided(const float *weight, long row_stride, long column_stride, long n, long k, uint16_t *packed,
                         long nb0, long nb1);
/// The packed weights back as fp32 [n, k].
void sg_amx_unpack(const uint16_t *packed, long n, long k, float *weight);
/// Bytes of the bf16 copy of `m` rows of `k` (rows padded to 32, columns to 32).
size_t sg_amx_src_bytes(long m, long k);
/// Rounds rows [m0, m1) of `x` [m, k] (row stride `ldx`) to bf16 into `a` (`sg_amx_src_bytes`); the call whose
/// range reaches `m` also zeroes the padding rows.
void sg_amx_convert(const float *x, long ldx, long m0, long m1, long m, long k, uint16_t *a);
/// Column blocks [nb0, nb1) (32 columns each) of `y [m, n]` (row stride `ldy`) = `a` · packedᵀ (+ bias [n]),
/// then SiLU when `activation` is 1. AMX only (`sg_amx_usable`); threads may run disjoint column blocks at once.
void sg_amx_gemm(const uint16_t *a, long m, long k, const uint16_t *packed, long n, const float *bias, float *y,
                 long ldy, long nb0, long nb1, int activation);
/// `sg_amx_gemm` with every tile instruction emulated in C: checks the packing and blocking on any CPU (slow).
void sg_amx_gemm_emulated(const uint16_t *a, long m, long k, const uint16_t *packed, long n, const float *bias,
                          float *y, long ldy, long nb0, long nb1, int activation);
/// Floats of `sg_amx_glumb`'s per-thread scratch for `m` rows.
size_t sg_amx_glumb_scratch_floats(long m);
/// GLUMBConv's first half (the DiT's `conv_inverted` → SiLU → depthwise 3×3 → GLU) for output channel blocks
/// [j0, j1) (32 channels each): for each, the GEMM's value block and its gate block (`a` · packedᵀ + bias, SiLU)
/// into `scratch` (`sg_amx_glumb_scratch_floats`, [m, 64]), then `sg_depthwise3x3_glu_rows` on it (taps [9, n]
/// tap-major, `depth_bias` [n] or NULL) into columns 32·j… of `out` [m, n/2]; m = B·height·width, n a multiple of
/// 64. The product never goes to memory. `emulated`: the tile instructions in C (any CPU; tests). Threads may run
/// disjoint block ranges at once, each with its own scratch.
void sg_amx_glumb(int emulated, const uint16_t *a, long m, long k, const uint16_t *packed, long n, const float *bias,
                  const float *taps, const float *depth_bias, long height, long width, float *out, long j0, long j1,
                  float *scratch, sg_isa isa);

// MARK: Depthwise 3×3 conv + GLU on channels-last tokens (depthwise.c)

/// Output pixels [p0, p1) (counted over B·H·W) of GLUMBConv's middle: `x` [B, H·W, 2C] fp32 (rows `ldx` ≥ 2C
/// apart) convolved depthwise with the 3×3 `taps` [9, 2C] (tap-major, (dy + 1)·3 + dx + 1; stride 1, zero padding)
/// plus `bias` [2C] (or NULL), then `out` [B, H·W, C] (rows `ldo` ≥ C apart) = a · silu(g), a and g the first and
/// second `c` channels. Threads may compute disjoint pixel ranges at once.
void sg_depthwise3x3_glu_rows(const float *x, long ldx, const float *taps, const float *bias, long height, long width,
                              long c, long p0, long p1, float *out, long ldo, sg_isa isa);

// MARK: Element-wise steps (elementwise.c); `isa` picks AVX-512, AVX2 + FMA or portable C

/// `y = x / (1 + e^−x)` over n floats (y may be x).
void sg_silu(const float *x, float *y, long n, sg_isa isa);
/// DC-AE's channel RMSNorm on one NCHW image (`c` planes of `plane` pixels), pixels [p0, p1):
/// out = x · rsqrt(mean_c(x²) + eps) · weight[c] + bias[c] (+ residual), weight / bias / residual may be NULL.
void sg_channel_rms_norm(const float *x, const float *residual, const float *weight, const float *bias, long c,
                         long plane, long p0, long p1, float eps, float *out, sg_isa isa);

// MARK: Channels-last activations between oneDNN's channels-last convolutions (layout.c); one image of `hw`
// pixels, pixels [p0, p1); bf16 values are `sg_bf16_bits` (round to nearest even)

/// `x` [c, hw] fp32 → `y` [hw, c] fp32, and its bf16 copy `y_bf16` [hw, c] unless NULL.
void sg_nchw_to_nhwc(const float *x, long c, long hw, long p0, long p1, float *y, uint16_t *y_bf16, sg_isa isa);
/// `x` [hw, c] fp32 → `y` [c, hw].
void sg_nhwc_to_nchw(const float *x, long c, long hw, long p0, long p1, float *y, sg_isa isa);
/// `y` = bf16 of x, or of silu(x) (`sg_silu`'s arithmetic) when `silu`; n elements.
void sg_to_bf16(const float *x, uint16_t *y, long n, int silu, sg_isa isa);
/// DC-AE's channel RMSNorm of channels-last `x` [pixels, c] added to `residual` [pixels, c]: out = residual +
/// x · rsqrt(mean_c(x²) + eps) · weight + bias (weight, bias may be NULL; `out` may be `residual`), and its bf16
/// copy `out_bf16` unless NULL. Pixels [p0, p1) of the buffers (not per image: each pixel is independent).
void sg_nhwc_add_rms_norm(const float *x, const float *residual, const float *weight, const float *bias, long c,
                          long p0, long p1, float eps, float *out, uint16_t *out_bf16, sg_isa isa);

// MARK: Softmax attention over a few keys (attention.c)

/// Floats of scratch `sg_attention_few_keys` needs for head dimension `d` (the keys, transposed).
long sg_attention_few_keys_scratch(long d);
/// `rows` query rows of one head against its first `n` ≤ 64 keys, fp32: `out` = softmax(alpha·q kᵀ + mask) v, row t
/// of q at q + t·q_stride (d floats), key j at k + j·k_stride, value j at v + j·v_stride (dv floats), mask (NULL:
/// none) value of key j at mask[j·mask_stride], the same for every row. A row whose keys are all −inf gives zeros.
/// With `check_padding`, every row must also show that the keys left out (L2 norm ≤ pad_key_norm, mask ≤
/// pad_mask_max) have exactly zero weight (exponent < −100); returns 0 as soon as one does not (the caller redoes
/// the rows over every key), 1 when done, −1 when n is out of range. With `bf16_operands`, q, k, v and the
/// probabilities are rounded to bf16 before their products (fp32 sums), as the AMX tile path computes.
/// `isa`: AVX-512, AVX2 (fp32 operands; bf16 ones take portable C there) or portable C. `scratch`:
/// `sg_attention_few_keys_scratch(d)` floats.
int sg_attention_few_keys(const float *q, long q_stride, long rows, long d, const float *k, long k_stride,
                          const float *v, long v_stride, long n, long dv, float alpha, const float *mask,
                          long mask_stride, int check_padding, float pad_key_norm, float pad_mask_max, float *out,
                          long out_stride, float *scratch, int bf16_operands, sg_isa isa);

/// Wall time spent in `sg_linear_run` and `sg_conv_run` (and AMX-kernel GEMMs, `sg_gemm_time_add`) since the
/// process started (input/output conversions included), and the number of those calls: benchmarks split a
/// model's time with it.
void sg_onednn_time(double *seconds, long *calls);
/// Adds one GEMM call of `nanoseconds` to the `sg_onednn_time` totals.
void sg_gemm_time_add(long long nanoseconds);

// MARK: ReLU linear attention, one (batch, head) pair (linear_attention.c)

/// SANA's linear attention core for one head: with relu(q) [n, d], relu(k) [n, d], v [n, dv] (row t of q at
/// q + t·q_stride, likewise k, v and out), KV = relu(k)ᵀ v [d, dv] and ksum = Σ_t relu(k_t), then row t of `out`
/// = relu(q_t) KV / (relu(q_t) · ksum + eps). relu maps NaN to 0. Any n, d ≥ 0 and dv ≥ 1; the KV workspace is on
/// the stack (heap beyond ~32 KB). `isa` must be one this CPU runs. Threads may run different heads at once.
void sg_relu_linear_attention_head(const float *q, long q_stride, const float *k, long k_stride, const float *v,
                                   long v_stride, long n, long d, long dv, float eps, float *out, long out_stride,
                                   sg_isa isa);

#ifdef __cplusplus
}
#endif
#endif
