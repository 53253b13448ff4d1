// CUDA C for the neural-network kernels SanaGraph runs on the GPU (compiled at run time by NVRTC for the
// device's architecture; see KernelModule), after `KernelPrelude.source` (bf16 as `unsigned short`, conversions,
// reductions). All arithmetic is fp32.

extension NNKernels {
    /// The CUDA C source of every kernel below.
    public static let source = #"""
__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

#define GRID_STRIDE(idx, total) \
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < (total); idx += (i64)gridDim.x * blockDim.x)

// LayerNorm without affine over the last dim, then adaLN modulation, one block per row:
// out[r] = bf16(norm(x[r]) * (1 + scale[b]) + shift[b]), b = r / rows_per_batch. shift/scale may be null.
extern "C" __global__ void layernorm_modulate(const float* __restrict__ x, bf16* __restrict__ out,
                                              const float* __restrict__ shift, const float* __restrict__ scale,
                                              i64 mod_batch_stride, int rows_per_batch, int dim, float eps) {
    __shared__ float red[32];
    const i64 r = blockIdx.x;
    const float* xr = x + r * dim;
    float s = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i];
    const float mean = block_sum(s, red) / dim;
    float q = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) { const float d = xr[i] - mean; q += d * d; }
    const float rstd = rsqrtf(block_sum(q, red) / dim + eps);
    const i64 b = r / rows_per_batch;
    const float* sh = shift ? shift + b * mod_batch_stride : 0;
    const float* sc = scale ? scale + b * mod_batch_stride : 0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = (xr[i] - mean) * rstd;
        if (sc) v = v * (1.0f + sc[i]);
        if (sh) v = v + sh[i];
        out[r * dim + i] = f2bf(v);
    }
}

// RMSNorm over the last dim, one block per row: out[r] = bf16(x[r] * rsqrt(mean(x^2) + eps) * weight).
extern "C" __global__ void rmsnorm_f32_bf16(const float* __restrict__ x, const float* __restrict__ weight,
                                            bf16* __restrict__ out, int dim, float eps) {
    __shared__ float red[32];
    const i64 r = blockIdx.x;
    const float* xr = x + r * dim;
    float q = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) q += xr[i] * xr[i];
    const float rstd = rsqrtf(block_sum(q, red) / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) out[r * dim + i] = f2bf(xr[i] * rstd * weight[i]);
}

// RMSNorm in place on bf16 rows `dim` wide, `ld` apart (q/k norm across heads inside a fused projection).
extern "C" __global__ void rmsnorm_bf16_inplace(bf16* __restrict__ x, i64 ld, const float* __restrict__ weight,
                                                int dim, float eps) {
    __shared__ float red[32];
    bf16* xr = x + (i64)blockIdx.x * ld;
    float q = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) { const float v = bf2f(xr[i]); q += v * v; }
    const float rstd = rsqrtf(block_sum(q, red) / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) xr[i] = f2bf(bf2f(xr[i]) * rstd * weight[i]);
}

// x += gate[b] * clamp(y, ±clamp_mag) (gate null: 1), rows `dim` wide; also xb = bf16(x) when xb is not null.
// NaN passes the clamp (as torch.clamp).
extern "C" __global__ void gated_residual(float* __restrict__ x, const float* __restrict__ y,
                                          const float* __restrict__ gate, i64 gate_batch_stride,
                                          int rows_per_batch, int dim, i64 total, float clamp_mag,
                                          bf16* __restrict__ xb) {
    GRID_STRIDE(idx, total) {
        const i64 r = idx / dim;
        const int i = (int)(idx - r * dim);
        float v = y[idx];
        if (v > clamp_mag) v = clamp_mag;
        if (v < -clamp_mag) v = -clamp_mag;
        const float g = gate ? gate[(r / rows_per_batch) * gate_batch_stride + i] : 1.0f;
        const float nx = x[idx] + g * v;
        x[idx] = nx;
        if (xb) xb[idx] = f2bf(nx);
    }
}

// out[blk, b, k, d] = t[b * t_batch_stride + k * t_k_stride + d] + tables[blk, k, d]: every block's
// adaLN-single modulation (scale_shift_table + timestep embedding) for the whole batch in one launch.
extern "C" __global__ void add_mod_tables(const float* __restrict__ t, i64 t_batch_stride, i64 t_k_stride,
                                          const float* __restrict__ tables, float* __restrict__ out,
                                          int blocks, int batch, int k, int dim) {
    const i64 total = (i64)blocks * batch * k * dim;
    GRID_STRIDE(idx, total) {
        const int d = (int)(idx % dim);
        const int kk = (int)((idx / dim) % k);
        const int b = (int)((idx / ((i64)dim * k)) % batch);
        const int blk = (int)(idx / ((i64)dim * k * batch));
        out[idx] = t[b * t_batch_stride + kk * t_k_stride + d] + tables[((i64)blk * k + kk) * dim + d];
    }
}

// Elementwise fp32 -> bf16 with an activation: 0 identity, 1 SiLU, 2 GELU(tanh).
extern "C" __global__ void activation_bf16(const float* __restrict__ x, bf16* __restrict__ out, i64 n, int kind) {
    GRID_STRIDE(idx, n) {
        const float v = x[idx];
        out[idx] = f2bf(kind == 1 ? silu(v) : (kind == 2 ? gelu_tanh(v) : v));
    }
}

// x[i] += add[i % period] (fp32; e.g. a positional embedding over the tokens of every batch item).
extern "C" __global__ void add_periodic(float* __restrict__ x, const float* __restrict__ add, i64 n, i64 period) {
    GRID_STRIDE(idx, n) { x[idx] += add[idx % period]; }
}

// latent [B, C, H, W] fp32 -> tokens [B * (H/p) * (W/p), C*p*p] bf16, features ordered (c, dy, dx) like a
// patch-embedding conv weight [D, C, p, p].
extern "C" __global__ void patchify(const float* __restrict__ x, bf16* __restrict__ out, int batch, int channels,
                                    int height, int width, int p) {
    const int hp = height / p, wp = width / p, feat = channels * p * p;
    const i64 total = (i64)batch * hp * wp * feat;
    GRID_STRIDE(idx, total) {
        const int f = (int)(idx % feat);
        const i64 tok = idx / feat;
        const int j = (int)(tok % wp), i = (int)((tok / wp) % hp), b = (int)(tok / ((i64)hp * wp));
        const int c = f / (p * p), dy = (f / p) % p, dx = f % p;
        out[idx] = f2bf(x[(((i64)b * channels + c) * height + i * p + dy) * width + j * p + dx]);
    }
}

// tokens [B * hp * wp, p*p*C] fp32 (features ordered (dy, dx, c)) -> [B, C, hp*p, wp*p] fp32.
extern "C" __global__ void unpatchify(const float* __restrict__ y, float* __restrict__ out, int batch, int channels,
                                      int hp, int wp, int p) {
    const int height = hp * p, width = wp * p;
    const i64 total = (i64)batch * channels * height * width;
    GRID_STRIDE(idx, total) {
        const int w = (int)(idx % width), h = (int)((idx / width) % height);
        const int c = (int)((idx / ((i64)width * height)) % channels);
        const int b = (int)(idx / ((i64)width * height * channels));
        const int i = h / p, dy = h % p, j = w / p, dx = w % p;
        out[idx] = y[(((i64)b * hp + i) * wp + j) * (p * p * channels) + (dy * p + dx) * channels + c];
    }
}

// Mix-FFN middle: a [B, H*W, 2C] bf16 is the inverted conv's output (bias included, before SiLU);
// u = depthwise3x3(silu(a)) + bias (zero padding, taps [9][2C] fp32, tap = ky*3+kx, cross-correlation);
// out [B, H*W, C] bf16 = u[:, :C] * silu(u[:, C:]).
extern "C" __global__ void dwconv3x3_glu(const bf16* __restrict__ a, const float* __restrict__ taps,
                                         const float* __restrict__ bias, bf16* __restrict__ out,
                                         int batch, int height, int width, int channels) {
    const int c2 = 2 * channels;
    const i64 total = (i64)batch * height * width * channels;
    GRID_STRIDE(idx, total) {
        const int c = (int)(idx % channels);
        const i64 pix = idx / channels;
        const int x = (int)(pix % width), y = (int)((pix / width) % height);
        const i64 b = pix / ((i64)width * height);
        float u0 = bias[c], u1 = bias[c + channels];
        #pragma unroll
        for (int ky = 0; ky < 3; ky++) {
            const int yy = y + ky - 1;
            if (yy < 0 || yy >= height) continue;
            #pragma unroll
            for (int kx = 0; kx < 3; kx++) {
                const int xx = x + kx - 1;
                if (xx < 0 || xx >= width) continue;
                const bf16* src = a + ((b * height + yy) * width + xx) * c2;
                const int t = ky * 3 + kx;
                u0 += taps[t * c2 + c] * silu(bf2f(src[c]));
                u1 += taps[t * c2 + channels + c] * silu(bf2f(src[channels + c]));
            }
        }
        out[pix * channels + c] = f2bf(u0 * silu(u1));
    }
}

// ReLU linear attention (SANA), head dim 32, fp32 inside as diffusers. Stage 1: per (batch·head, chunk of
// tokens), partial[i][j] = sum_n relu(k[n,i]) * [v[n], 1][j] (32 × 33). Rows of qkv are `ld` apart; q/k/v of
// head h start at columns q_off/k_off/v_off + 32h. Grid (batch*heads, chunks), 256 threads.
#define LA_D 32
#define LA_TILE 64
#define LA_PAIRS (LA_D * (LA_D + 1))
extern "C" __global__ void __launch_bounds__(256) linattn_kv(const bf16* __restrict__ qkv, float* __restrict__ partial,
                                                             int n_tokens, int heads, i64 ld, int k_off, int v_off,
                                                             int tokens_per_chunk) {
    __shared__ float ks[LA_TILE][LA_D];
    __shared__ float vs[LA_TILE][LA_D + 1];
    const int bh = blockIdx.x, b = bh / heads, h = bh % heads, chunk = blockIdx.y;
    const int start = chunk * tokens_per_chunk;
    const int end = min(start + tokens_per_chunk, n_tokens);
    constexpr int PER = (LA_PAIRS + 255) / 256;
    float acc[PER];
    #pragma unroll
    for (int p = 0; p < PER; p++) acc[p] = 0.0f;
    for (int t0 = start; t0 < end; t0 += LA_TILE) {
        __syncthreads();
        for (int e = threadIdx.x; e < LA_TILE * LA_D; e += blockDim.x) {
            const int t = e / LA_D, i = e % LA_D, n = t0 + t;
            float kv = 0.0f, vv = 0.0f;
            if (n < end) {
                const bf16* row = qkv + ((i64)b * n_tokens + n) * ld;
                kv = fmaxf(bf2f(row[k_off + h * LA_D + i]), 0.0f);
                vv = bf2f(row[v_off + h * LA_D + i]);
            }
            ks[t][i] = kv;
            vs[t][i] = vv;
            if (i == 0) vs[t][LA_D] = n < end ? 1.0f : 0.0f;
        }
        __syncthreads();
        #pragma unroll
        for (int p = 0; p < PER; p++) {
            const int pair = threadIdx.x + p * 256;
            if (pair < LA_PAIRS) {
                const int i = pair / (LA_D + 1), j = pair % (LA_D + 1);
                float s = 0.0f;
                for (int t = 0; t < LA_TILE; t++) s += ks[t][i] * vs[t][j];
                acc[p] += s;
            }
        }
    }
    float* dst = partial + ((i64)bh * gridDim.y + chunk) * LA_PAIRS;
    #pragma unroll
    for (int p = 0; p < PER; p++) {
        const int pair = threadIdx.x + p * 256;
        if (pair < LA_PAIRS) dst[pair] = acc[p];
    }
}

// Stage 2: sums the chunks' partials, then per token out[j] = (relu(q)·kv[:, j]) / (relu(q)·kv[:, 32] + eps),
// written as bf16 at out[row * out_ld + 32h + j]. Grid (batch*heads, ceil(n_tokens/128)), 128 threads.
extern "C" __global__ void __launch_bounds__(128) linattn_apply(const bf16* __restrict__ qkv,
                                                                const float* __restrict__ partial,
                                                                bf16* __restrict__ out, int n_tokens, int heads,
                                                                i64 ld, int q_off, int chunks, i64 out_ld, float eps) {
    __shared__ float kv[LA_PAIRS];
    const int bh = blockIdx.x, b = bh / heads, h = bh % heads;
    for (int p = threadIdx.x; p < LA_PAIRS; p += blockDim.x) {
        float s = 0.0f;
        for (int c = 0; c < chunks; c++) s += partial[((i64)bh * chunks + c) * LA_PAIRS + p];
        kv[p] = s;
    }
    __syncthreads();
    const int n = blockIdx.y * blockDim.x + threadIdx.x;
    if (n >= n_tokens) return;
    const i64 row = (i64)b * n_tokens + n;
    const bf16* qr = qkv + row * ld + q_off + h * LA_D;
    float q[LA_D];
    #pragma unroll
    for (int i = 0; i < LA_D; i++) q[i] = fmaxf(bf2f(qr[i]), 0.0f);
    float den = 0.0f;
    #pragma unroll
    for (int i = 0; i < LA_D; i++) den += q[i] * kv[i * (LA_D + 1) + LA_D];
    const float inv = 1.0f / (den + eps);
    bf16* o = out + row * out_ld + h * LA_D;
    #pragma unroll
    for (int j = 0; j < LA_D; j++) {
        float s = 0.0f;
        #pragma unroll
        for (int i = 0; i < LA_D; i++) s += q[i] * kv[i * (LA_D + 1) + j];
        o[j] = f2bf(s * inv);
    }
}

// Softmax over the first `cols` of each fp32 score row (plus an additive per-batch bias [B, cols]), one warp per
// row, written as bf16 probabilities; columns cols..ld-1 get 0. rows_per_batch = heads * queries.
extern "C" __global__ void masked_softmax(const float* __restrict__ s, const float* __restrict__ bias,
                                          bf16* __restrict__ p, i64 rows, int cols, int ld, i64 rows_per_batch) {
    const int lane = threadIdx.x & 31;
    const i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const float* sr = s + row * ld;
    const float* br = bias ? bias + (row / rows_per_batch) * cols : 0;
    float m = -3.0e38f;
    for (int j = lane; j < cols; j += 32) m = fmaxf(m, sr[j] + (br ? br[j] : 0.0f));
    m = warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j < cols; j += 32) sum += expf(sr[j] + (br ? br[j] : 0.0f) - m);
    const float inv = 1.0f / warp_sum(sum);
    bf16* pr = p + row * ld;
    for (int j = lane; j < ld; j += 32)
        pr[j] = j < cols ? f2bf(expf(sr[j] + (br ? br[j] : 0.0f) - m) * inv) : (bf16)0;
}
"""#
}
