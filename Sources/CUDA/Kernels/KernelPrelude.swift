/// The CUDA C every kernel module starts with (`CUDAContext.module` puts it first): no CUDA headers, so bf16 is
/// carried as `unsigned short` and converted with bit operations (round to nearest even, as PyTorch does), and the
/// warp / block reductions. The CPU emulator (tools/cuda-emulator) includes it in every module's namespace too.
public enum KernelPrelude {
    public static let source = #"""
typedef unsigned short bf16;
typedef long long i64;

__device__ __forceinline__ float bf2f(bf16 x) { return __uint_as_float(((unsigned int)x) << 16); }
__device__ __forceinline__ bf16 f2bf(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40u);  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

// Sum over the block (blockDim.x a multiple of 32); every thread gets the total. `red` holds 32 floats.
__device__ float block_sum(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? red[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
"""#

    /// A module's complete source: the prelude, then the module's own kernels.
    public static func prefixed(_ module: String) -> String { source + "\n" + module }
}
