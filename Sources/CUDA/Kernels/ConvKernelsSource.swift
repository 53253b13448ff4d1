// CUDA C for the convolution-network kernels (DC-AE's decoder on the GPU; see ConvKernels), compiled at run time by
// NVRTC like NNKernels.source but as its own module ("conv"), so either source can change without the other.
// Feature maps are channels-last (NHWC: a pixel's channels contiguous), so every dense convolution is one GEMM
// (cuBLASLt) over im2col rows and every per-pixel norm reads one contiguous row. Helpers (bf16 as `unsigned short`,
// reductions) come from `KernelPrelude.source`; all arithmetic is fp32.

extension ConvKernels {
    /// The CUDA C source of every kernel below.
    public static let source = #"""
// Activations by code (ConvKernels.Activation): 0 identity, 1 SiLU, 2 ReLU, 3 GELU (erf), 4 Mish.
// SiLU with the fast exponential and division (relative error ~1e-6, far below the bf16 rounding that follows
// every use): im2col applies it to each input value once per tap (9× at 3×3), where the IEEE expf + division
// cost about as much as the columns' memory traffic. The clamp keeps 1 + e below 2^126, __fdividef's range.
__device__ __forceinline__ float act_fn(float x, int act) {
    switch (act) {
    case 1: return __fdividef(x, 1.0f + __expf(fminf(-x, 80.0f)));
    case 2: return x > 0.0f ? x : 0.0f;
    case 3: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case 4: { const float sp = x > 20.0f ? x : log1pf(expf(x)); return x * tanhf(sp); }
    default: return x;
    }
}

// im2col rows of a k×k convolution (stride 1, zero padding k/2) for output pixels row0 ..< row0+rows of a
// [B, OH, OW] grid: cols[r, (ky·k + kx)·c + ch] = act(in(oy + ky − k/2, ox + kx − k/2, ch)) as bf16, 0 outside.
// The input (fp32 when in_f32, else bf16, OH × OW) holds element (b, y, x, ch) at b·sb + y·sy + x·sx + ch·sc (NHWC
// or NCHW).
// One warp per output pixel, 8 per block; 4 channels per lane (one 8-byte store) when the channels are contiguous,
// a multiple of 4 and (bf16 input) 8-byte aligned.
extern "C" __global__ void __launch_bounds__(256) conv_im2col(const void* __restrict__ x, int in_f32, i64 sb, i64 sy,
                                                              i64 sx, i64 sc, int oh, int ow, int c, int k,
                                                              int act, bf16* __restrict__ cols, i64 row0, i64 rows) {
    const int lane = threadIdx.x & 31;
    const i64 r = (i64)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (r >= rows) return;
    const int pad = k / 2;
    const i64 p = row0 + r;
    const int ox = (int)(p % ow);
    const i64 t = p / ow;
    const int oy = (int)(t % oh);
    const i64 b = t / oh;
    const float* xf = (const float*)x;
    const bf16* xh = (const bf16*)x;
    // 8-byte bf16 loads need every pixel's channels 8-byte aligned.
    const bool quads = (c & 3) == 0 && sc == 1
                    && (in_f32 || (((sb | sy | sx) & 3) == 0 && ((unsigned long long)x & 7ull) == 0));
    // fp32 quads as one 16-byte load when every pixel's channels are 16-byte aligned (4 scalar loads per lane made
    // each warp load span 512 B for 128 useful bytes).
    const bool f32x4 = in_f32 && quads && ((sb | sy | sx) & 3) == 0 && ((unsigned long long)x & 15ull) == 0;
    bf16* dst = cols + r * ((i64)k * k * c);
    for (int ky = 0; ky < k; ky++) {
        const int yy = oy + ky - pad;
        for (int kx = 0; kx < k; kx++, dst += c) {
            const int xx = ox + kx - pad;
            if (yy < 0 || yy >= oh || xx < 0 || xx >= ow) {
                if (quads) {
                    for (int ch = 4 * lane; ch < c; ch += 128) *(unsigned long long*)(dst + ch) = 0ull;
                } else {
                    for (int ch = lane; ch < c; ch += 32) dst[ch] = 0;
                }
                continue;
            }
            const i64 base = b * sb + (i64)yy * sy + (i64)xx * sx;
            if (quads) {
                for (int ch = 4 * lane; ch < c; ch += 128) {
                    float v[4];
                    if (f32x4) {
                        const float4 f = *(const float4*)(xf + base + ch);
                        v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
                    } else if (in_f32) {
                        for (int e = 0; e < 4; e++) v[e] = xf[base + ch + e];
                    } else {
                        const unsigned long long u = *(const unsigned long long*)(xh + base + ch);
                        for (int e = 0; e < 4; e++) v[e] = bf2f((bf16)((u >> (16 * e)) & 0xffffu));
                    }
                    unsigned long long packed = 0ull;
                    for (int e = 0; e < 4; e++) packed |= (unsigned long long)f2bf(act_fn(v[e], act)) << (16 * e);
                    *(unsigned long long*)(dst + ch) = packed;
                }
            } else {
                for (int ch = lane; ch < c; ch += 32) {
                    const i64 off = base + ch * sc;
                    dst[ch] = f2bf(act_fn(in_f32 ? xf[off] : bf2f(xh[off]), act));
                }
            }
        }
    }
}

// Channel RMSNorm of fp32 rows (one pixel's c channels each), one warp per row, 8 rows per block:
// v = y·rsqrt(mean(y²) + eps)·w + bias; with x: x += v (the residual, in place) and v = the new x; then
// xb = bf16(act(v)) when xb is given (the next GEMM's or convolution's input).
extern "C" __global__ void __launch_bounds__(256) channel_rmsnorm(const float* __restrict__ y, const float* __restrict__ w,
                                                                  const float* __restrict__ bias, float* x,
                                                                  bf16* __restrict__ xb, i64 rows, int c, float eps,
                                                                  int act) {
    const int lane = threadIdx.x & 31;
    const i64 r = (i64)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float* yr = y + r * c;
    float q = 0.0f;
    for (int i = lane; i < c; i += 32) q += yr[i] * yr[i];
    const float rs = rsqrtf(warp_sum(q) / c + eps);
    for (int i = lane; i < c; i += 32) {
        float v = yr[i] * rs * w[i] + bias[i];
        if (x) { v += x[r * c + i]; x[r * c + i] = v; }
        if (xb) xb[r * c + i] = f2bf(act_fn(v, act));
    }
}

// DC-AE's channel shortcuts with an s×s pixel shuffle (s = 2: DCUpBlock2d; s = 1: the decoder's in-shortcut),
// writing fp32 NHWC out [B, s·h, s·w, cout]: out[b, s·Y+i, s·X+j, o] = x[b, Y, X, u / r] (repeat_interleave by r)
// + t[b, Y, X, u] (the pixel-shuffled conv output, NHWC [B, h, w, s²·cout]) with u = s²·o + s·i + j; either
// term is skipped when its pointer is null. x is fp32 at strides (sb, sy, sx, sc) (NHWC or NCHW).
// One warp per input pixel (b, Y, X), 8 per block, lanes along u: the warp reads t's row and x's row in order
// (coalesced) and its 32 lanes write s² output pixels' runs of 32/s² consecutive channels (whole 32-byte sectors
// for s = 2). (A warp per output pixel read t at a stride of s² floats: s² times the sectors it used.)
extern "C" __global__ void __launch_bounds__(256) shuffle_shortcut(const float* __restrict__ x, i64 sb, i64 sy, i64 sx,
                                                                   i64 sc, int r, const float* __restrict__ t,
                                                                   float* __restrict__ out, int batch, int h, int w,
                                                                   int s, int cout) {
    const int lane = threadIdx.x & 31, ow = s * w, ss = s * s;
    const i64 p = (i64)blockIdx.x * 8 + (threadIdx.x >> 5);
    if (p >= (i64)batch * h * w) return;
    const int X = (int)(p % w);
    const i64 q = p / w;
    const int Y = (int)(q % h);
    const i64 b = q / h;
    const float* xp = x ? x + b * sb + Y * sy + X * sx : 0;
    const float* tp = t ? t + p * (i64)(ss * cout) : 0;
    // Output pixel (s·Y + i, s·X + j) starts at out + ((b·s·h + s·Y + i)·ow + s·X + j)·cout.
    float* op = out + ((b * s * h + (i64)s * Y) * ow + (i64)s * X) * cout;
    for (int u = lane; u < ss * cout; u += 32) {
        // s = 2 (every up block) by shifts: runtime integer division costs ~20 instructions.
        const int o = s == 2 ? u >> 2 : u / ss, ij = u - o * ss, i = s == 2 ? ij >> 1 : ij / s, j = ij - i * s;
        float v = 0.0f;
        if (xp) v += xp[(i64)(u / r) * sc];
        if (tp) v += tp[u];
        op[((i64)i * ow + j) * cout + o] = v;
    }
}

// One multiscale branch of SanaMultiscaleLinearAttention on bf16 pixel rows `ld` apart: d = depthwise k×k
// (zero padding, no bias; taps [c3, k·k] fp32, PyTorch order) of channels [0, c3), then per group of 32 channels
// the grouped 1×1 (weights [c3, 32] fp32): dst[p, dst_off + 32g + o] = Σ_i wg[32g + o, i] · d[p, 32g + i].
// Grid (ceil(pixels / 128), c3 / 32); a warp per pixel (lane = channel of the group), 16 pixels per warp; the
// depthwise result stays fp32 in registers and crosses lanes by shuffles.
extern "C" __global__ void __launch_bounds__(256) multiscale_dw_grouped(const bf16* __restrict__ src,
                                                                        bf16* __restrict__ dst, i64 ld, int dst_off,
                                                                        const float* __restrict__ taps,
                                                                        const float* __restrict__ wg, int batch,
                                                                        int h, int w, int k) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int ch = 32 * blockIdx.y + lane, pad = k / 2;
    float wrow[32];
    #pragma unroll
    for (int i = 0; i < 32; i++) wrow[i] = wg[(i64)ch * 32 + i];
    const float* tp = taps + (i64)ch * k * k;
    const i64 pixels = (i64)batch * h * w;
    for (int e = 0; e < 16; e++) {
        const i64 p = ((i64)blockIdx.x * 8 + warp) * 16 + e;
        if (p >= pixels) break;  // the whole warp leaves together
        const int x0 = (int)(p % w);
        const i64 t = p / w;
        const int y0 = (int)(t % h);
        const i64 b = t / h;
        float d = 0.0f;
        for (int ky = 0; ky < k; ky++) {
            const int yy = y0 + ky - pad;
            if (yy < 0 || yy >= h) continue;
            for (int kx = 0; kx < k; kx++) {
                const int xx = x0 + kx - pad;
                if (xx < 0 || xx >= w) continue;
                d += bf2f(src[((b * h + yy) * w + xx) * ld + ch]) * tp[ky * k + kx];
            }
        }
        float o = 0.0f;
        #pragma unroll
        for (int i = 0; i < 32; i++) o += wrow[i] * __shfl_sync(0xffffffffu, d, i);
        dst[p * ld + dst_off + ch] = f2bf(o);
    }
}

// ReLU linear attention of DC-AE's EfficientViT blocks (diffusers SanaMultiscaleAttnProcessor2_0, fp32 inside):
// group g of a pixel row (bf16, `ld` apart) holds q, k, v as channels gs·g + [0, 32), + [32, 64), + [64, 96).
// Stage 1: per (batch·group, chunk of tokens) the partial sums kv[i][j] = Σ_n relu(k[n, i]) · [v; 1][n, j]
// (33 columns: the 1 row gives the normaliser). Grid (batch·groups, chunks), 256 threads.
#define MS_D 32
#define MS_TILE 64
#define MS_PAIRS (MS_D * (MS_D + 1))
extern "C" __global__ void __launch_bounds__(256) ms_linattn_kv(const bf16* __restrict__ qkv,
                                                                float* __restrict__ partial, int n_tokens, int groups,
                                                                i64 ld, int gs, int tokens_per_chunk) {
    __shared__ float ks[MS_TILE][MS_D];
    __shared__ float vs[MS_TILE][MS_D + 1];
    const int bg = blockIdx.x, b = bg / groups, g = bg % groups, chunk = blockIdx.y;
    const int start = chunk * tokens_per_chunk;
    const int end = min(start + tokens_per_chunk, n_tokens);
    constexpr int PER = (MS_PAIRS + 255) / 256;
    float acc[PER];
    #pragma unroll
    for (int p = 0; p < PER; p++) acc[p] = 0.0f;
    for (int t0 = start; t0 < end; t0 += MS_TILE) {
        __syncthreads();
        for (int e = threadIdx.x; e < MS_TILE * MS_D; e += blockDim.x) {
            const int t = e / MS_D, i = e % MS_D, n = t0 + t;
            float kv = 0.0f, vv = 0.0f;
            if (n < end) {
                const bf16* row = qkv + ((i64)b * n_tokens + n) * ld + (i64)gs * g;
                kv = fmaxf(bf2f(row[MS_D + i]), 0.0f);
                vv = bf2f(row[2 * MS_D + i]);
            }
            ks[t][i] = kv;
            vs[t][i] = vv;
            if (i == 0) vs[t][MS_D] = n < end ? 1.0f : 0.0f;
        }
        __syncthreads();
        #pragma unroll
        for (int p = 0; p < PER; p++) {
            const int pair = threadIdx.x + p * 256;
            if (pair < MS_PAIRS) {
                const int i = pair / (MS_D + 1), j = pair % (MS_D + 1);
                float s = 0.0f;
                for (int t = 0; t < MS_TILE; t++) s += ks[t][i] * vs[t][j];
                acc[p] += s;
            }
        }
    }
    float* dst = partial + ((i64)bg * gridDim.y + chunk) * MS_PAIRS;
    #pragma unroll
    for (int p = 0; p < PER; p++) {
        const int pair = threadIdx.x + p * 256;
        if (pair < MS_PAIRS) dst[pair] = acc[p];
    }
}

// Stage 2: sums the chunks, then per token out[j] = (relu(q)·kv[:, j]) / (relu(q)·kv[:, 32] + eps) as bf16 at
// out[row · out_ld + 32g + j] (diffusers' reshape to [B, 32·groups, H, W], channels-last).
// Grid (batch·groups, ceil(n_tokens / 128)), 128 threads.
extern "C" __global__ void __launch_bounds__(128) ms_linattn_apply(const bf16* __restrict__ qkv,
                                                                   const float* __restrict__ partial,
                                                                   bf16* __restrict__ out, int n_tokens, int groups,
                                                                   i64 ld, int gs, int chunks, i64 out_ld, float eps) {
    __shared__ float kv[MS_PAIRS];
    const int bg = blockIdx.x, b = bg / groups, g = bg % groups;
    for (int p = threadIdx.x; p < MS_PAIRS; p += blockDim.x) {
        float s = 0.0f;
        for (int c = 0; c < chunks; c++) s += partial[((i64)bg * chunks + c) * MS_PAIRS + p];
        kv[p] = s;
    }
    __syncthreads();
    const int n = blockIdx.y * blockDim.x + threadIdx.x;
    if (n >= n_tokens) return;
    const i64 row = (i64)b * n_tokens + n;
    const bf16* qr = qkv + row * ld + (i64)gs * g;
    float q[MS_D];
    #pragma unroll
    for (int i = 0; i < MS_D; i++) q[i] = fmaxf(bf2f(qr[i]), 0.0f);
    float den = 0.0f;
    #pragma unroll
    for (int i = 0; i < MS_D; i++) den += q[i] * kv[i * (MS_D + 1) + MS_D];
    const float inv = 1.0f / (den + eps);
    bf16* o = out + row * out_ld + MS_D * g;
    #pragma unroll
    for (int j = 0; j < MS_D; j++) {
        float s = 0.0f;
        #pragma unroll
        for (int i = 0; i < MS_D; i++) s += q[i] * kv[i * (MS_D + 1) + j];
        o[j] = f2bf(s * inv);
    }
}

// A k×k convolution (stride 1, zero padding k/2) with few output channels, straight to fp32 NCHW with bias:
// out[b, o, y, x] = bias[o] + Σ w[o, (ky·k + kx)·c + ch] · in[b, y + ky − k/2, x + kx − k/2, ch], input bf16 NHWC.
// The decoder's conv_out (3 channels), where im2col + GEMM would move 9·c values per pixel through memory for 3
// outputs. One warp per output pixel (8 per block, grid-stride), lanes along the input channels so every load of
// the input and of the weights is one coalesced row segment; up to 4 output channels per pass, warp-summed. (A
// thread per output element along x made each warp load touch 32 pixels' rows, c·2 bytes apart: 32 sectors for
// 64 useful bytes.)
extern "C" __global__ void __launch_bounds__(256) conv_direct_nchw(const bf16* __restrict__ in,
                                                                   const float* __restrict__ wt,
                                                                   const float* __restrict__ bias,
                                                                   float* __restrict__ out, int batch, int h, int w,
                                                                   int c, int cout, int k) {
    const int lane = threadIdx.x & 31, pad = k / 2;
    const i64 pixels = (i64)batch * h * w, taps = (i64)k * k * c;
    for (i64 p = (i64)blockIdx.x * 8 + (threadIdx.x >> 5); p < pixels; p += (i64)gridDim.x * 8) {
        const int x0 = (int)(p % w);
        const i64 q = p / w;
        const int y0 = (int)(q % h);
        const i64 b = q / h;
        for (int o0 = 0; o0 < cout; o0 += 4) {
            const int no = min(4, cout - o0);
            float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int ky = 0; ky < k; ky++) {
                const int yy = y0 + ky - pad;
                if (yy < 0 || yy >= h) continue;
                for (int kx = 0; kx < k; kx++) {
                    const int xx = x0 + kx - pad;
                    if (xx < 0 || xx >= w) continue;
                    const bf16* ip = in + ((b * h + yy) * w + xx) * c;
                    const float* wp = wt + (i64)o0 * taps + (i64)(ky * k + kx) * c;
                    for (int ch = lane; ch < c; ch += 32) {
                        const float v = bf2f(ip[ch]);
                        #pragma unroll
                        for (int j = 0; j < 4; j++)
                            if (j < no) s[j] += v * wp[j * taps + ch];
                    }
                }
            }
            #pragma unroll
            for (int j = 0; j < 4; j++) s[j] = warp_sum(s[j]);
            if (lane < no) {
                const float v = lane == 0 ? s[0] : lane == 1 ? s[1] : lane == 2 ? s[2] : s[3];
                out[((b * cout + o0 + lane) * h + y0) * (i64)w + x0] = v + (bias ? bias[o0 + lane] : 0.0f);
            }
        }
    }
}
"""#
}
