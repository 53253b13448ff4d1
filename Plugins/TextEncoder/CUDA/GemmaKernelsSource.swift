// CUDA C for the Gemma-2 text encoder's own kernels (compiled at run time by NVRTC, one module "gemma"; see
// CUDA.KernelModule), after `KernelPrelude.source` (bf16 as `unsigned short`, conversions, reductions). The encoder also
// uses NNKernels (RMSNorm). All arithmetic is fp32.
// Kernel names start with `gemma_`: the CPU emulator (tools/cuda-emulator) links every module into one library.

extension GemmaKernels {
    /// The CUDA C source of every kernel below.
    public static let source = #"""
// RoPE ("half" rotation, fp32, angle = position * inv_freq[i], positions 0..len-1) on the q and k heads of a fused
// q|k|v projection, scattered into the layouts the attention GEMMs take:
//   qkv [B*len, (heads + 2*kv_heads) * hd] bf16
//   -> q [B, kv_heads, len, group, hd]   (the `group` query heads of one KV head side by side: one GEMM's rows)
//      k [B, kv_heads, len, hd]
//      v [B, heads, len, hd]   (unchanged, each KV head repeated for its `group` query heads, as repeat_kv: P·V is
//                               then one GEMM over all query heads)
// One thread per (row, head slot, rotation pair).
extern "C" __global__ void gemma_rope_split(const bf16* __restrict__ qkv, const float* __restrict__ inv_freq,
                                            bf16* __restrict__ q, bf16* __restrict__ k, bf16* __restrict__ v,
                                            int batch, int len, int heads, int kv_heads, int hd) {
    const int half = hd / 2, slots = heads + 2 * kv_heads, group = heads / kv_heads;
    const i64 total = (i64)batch * len * slots * half;
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (i64)gridDim.x * blockDim.x) {
        const int p = (int)(idx % half);
        const i64 rs = idx / half;
        const int s = (int)(rs % slots);
        const i64 row = rs / slots;
        const int t = (int)(row % len);
        const i64 b = row / len;
        const bf16* src = qkv + (row * slots + s) * hd;
        if (s >= heads + kv_heads) {
            const bf16 a = src[p], c = src[p + half];
            for (int r = 0; r < group; r++) {
                bf16* dst = v + (((b * kv_heads + (s - heads - kv_heads)) * group + r) * len + t) * hd;
                dst[p] = a;
                dst[p + half] = c;
            }
            continue;
        }
        const float x1 = bf2f(src[p]), x2 = bf2f(src[p + half]);
        const float angle = (float)t * inv_freq[p];
        const float c = cosf(angle), sn = sinf(angle);
        bf16* dst;
        if (s < heads) {
            dst = q + (((b * kv_heads + s / group) * len + t) * group + s % group) * hd;
        } else {
            dst = k + ((b * kv_heads + (s - heads)) * len + t) * hd;
        }
        dst[p] = f2bf(x1 * c - x2 * sn);
        dst[p + half] = f2bf(x2 * c + x1 * sn);
    }
}

// Gemma-2 attention probabilities, one warp per row of scores [B*kv_heads, len*group, ld] fp32 (rows (b, g, t, r),
// already scaled by query_pre_attn_scalar^-0.5). Per row: logit soft-capping (cap > 0: s = cap * tanh(s / cap),
// written back), key j visible when j <= t, mask[b*len + j] != 0 and (window <= 0 or t - j < window); softmax over
// the visible keys -> bf16 p [B, heads, len, ld] at query head h = g*group + r (hidden keys and columns len..ld-1
// get 0). A row with no visible key gets 1/len on every key: what the finfo.min additive mask of transformers'
// eager attention gives.
extern "C" __global__ void gemma_attention_softmax(float* __restrict__ s, const float* __restrict__ mask,
                                                   bf16* __restrict__ p, i64 rows, int len, int group, int kv_heads,
                                                   int ld, float cap, int window) {
    const int lane = threadIdx.x & 31;
    const i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;
    const i64 per_bg = (i64)len * group, bg = row / per_bg;
    const int t = (int)((row % per_bg) / group), r = (int)(row % group);
    const i64 b = bg / kv_heads;
    float* sr = s + row * ld;
    const float* mr = mask + b * len;
    bf16* pr = p + ((bg * group + r) * len + t) * ld;
    float m = -3.0e38f, any = 0.0f;
    for (int j = lane; j < len; j += 32) {
        float x = sr[j];
        if (cap > 0.0f) { x = cap * tanhf(x / cap); sr[j] = x; }
        if (j <= t && mr[j] != 0.0f && (window <= 0 || t - j < window)) { m = fmaxf(m, x); any = 1.0f; }
    }
    m = warp_max(m);
    if (warp_max(any) == 0.0f) {
        for (int j = lane; j < ld; j += 32) pr[j] = j < len ? f2bf(1.0f / len) : (bf16)0;
        return;
    }
    float sum = 0.0f;
    for (int j = lane; j < len; j += 32)
        if (j <= t && mr[j] != 0.0f && (window <= 0 || t - j < window)) sum += expf(sr[j] - m);
    const float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < ld; j += 32) {
        const bool visible = j < len && j <= t && mr[j] != 0.0f && (window <= 0 || t - j < window);
        pr[j] = visible ? f2bf(expf(sr[j] - m) * inv) : (bf16)0;
    }
}

// Gated MLP middle: gu [rows, 2*inter] fp32 (gate | up, one GEMM) -> out [rows, inter] bf16 = act(gate) * up,
// act = GELU with the tanh approximation (exact == 0, `gelu_pytorch_tanh`) or with erf (exact != 0, `gelu`).
extern "C" __global__ void gemma_geglu(const float* __restrict__ gu, bf16* __restrict__ out, i64 rows, int inter,
                                       int exact) {
    const i64 total = rows * inter;
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (i64)gridDim.x * blockDim.x) {
        const i64 r = idx / inter;
        const int i = (int)(idx - r * inter);
        const float g = gu[r * 2 * inter + i], u = gu[r * 2 * inter + inter + i];
        const float a = exact ? 0.5f * g * (1.0f + erff(g * 0.7071067811865476f))
                              : 0.5f * g * (1.0f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g)));
        out[idx] = f2bf(a * u);
    }
}

// One block per row of the fp32 residual stream x [rows, dim]. With y: x += rmsnorm(y) * w_post (Gemma-2's
// post-attention / post-feedforward norm, the weights already 1 + w). Then rmsnorm(x) * w_next goes to out_bf16
// (the next pre-norm, a GEMM operand) or to out_f32 (the final norm: last_hidden_state).
extern "C" __global__ void gemma_residual_norm(float* __restrict__ x, const float* __restrict__ y,
                                               const float* __restrict__ w_post, const float* __restrict__ w_next,
                                               bf16* __restrict__ out_bf16, float* __restrict__ out_f32, int dim,
                                               float eps) {
    __shared__ float red[32];
    const i64 r = blockIdx.x;
    float* xr = x + r * dim;
    if (y) {
        const float* yr = y + r * dim;
        float q = 0.0f;
        for (int i = threadIdx.x; i < dim; i += blockDim.x) q += yr[i] * yr[i];
        const float rs = rsqrtf(block_sum(q, red) / dim + eps);
        // Each thread updates the elements it reads below: no barrier needed in between.
        for (int i = threadIdx.x; i < dim; i += blockDim.x) xr[i] += yr[i] * rs * w_post[i];
    }
    float q = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) q += xr[i] * xr[i];
    const float rs = rsqrtf(block_sum(q, red) / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float o = xr[i] * rs * w_next[i];
        if (out_bf16) out_bf16[r * dim + i] = f2bf(o);
        else out_f32[r * dim + i] = o;
    }
}
"""#
}
