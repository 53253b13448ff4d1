// A CPU stand-in for the CUDA execution model, enough to run SanaGraph's CUDA C kernels on a machine without a
// GPU: each block's threads are OS threads, `__syncthreads` a barrier, warp shuffles exchange through memory;
// blocks run one after another, so `__shared__` variables can be function statics. Memory is host memory.
// Used only by the emulated driver (driver.cpp) for `make test-cuda-emulated`; nothing here ships.
#pragma once
#include <barrier>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>
#include <algorithm>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
// CUDA's built-in 16-byte vector type (the kernels' vectorised fp32 loads).
struct alignas(16) float4 {
    float x, y, z, w;
};

namespace emu {
struct Warp {
    std::unique_ptr<std::barrier<>> barrier;
    float values[32];
};
struct Block {
    std::unique_ptr<std::barrier<>> barrier;
    std::vector<std::unique_ptr<Warp>> warps;
};
inline Block* block = nullptr;
inline thread_local unsigned lane = 0, warp = 0;
}  // namespace emu

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

inline void __syncthreads() { emu::block->barrier->arrive_and_wait(); }
inline float __shfl_xor_sync(unsigned, float v, int offset) {
    emu::Warp& w = *emu::block->warps[emu::warp];
    w.values[emu::lane] = v;
    w.barrier->arrive_and_wait();
    const float r = w.values[emu::lane ^ (unsigned)offset];
    w.barrier->arrive_and_wait();
    return r;
}
inline float __shfl_sync(unsigned, float v, int src) {
    emu::Warp& w = *emu::block->warps[emu::warp];
    w.values[emu::lane] = v;
    w.barrier->arrive_and_wait();
    const float r = w.values[src & 31];
    w.barrier->arrive_and_wait();
    return r;
}
inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, 4); return u; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
// The fast-math intrinsics, exact here (the GPU's are within a few ulp).
inline float __expf(float x) { return std::exp(x); }
inline float __fdividef(float a, float b) { return a / b; }
#include <math.h>

using std::min;
using std::max;

namespace emu {
/// Runs `body` once per thread of every block of the grid (blocks in order, a block's threads concurrently).
template <typename F>
void launch(dim3 grid, dim3 blk, F body) {
    gridDim = grid;
    blockDim = blk;
    const unsigned threads = blk.x * blk.y * blk.z;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                Block b;
                b.barrier = std::make_unique<std::barrier<>>(threads);
                for (unsigned w = 0; w * 32 < threads; w++) {
                    auto wp = std::make_unique<Warp>();
                    wp->barrier = std::make_unique<std::barrier<>>(std::min(32u, threads - w * 32));
                    b.warps.push_back(std::move(wp));
                }
                block = &b;
                std::vector<std::thread> pool;
                pool.reserve(threads);
                for (unsigned t = 0; t < threads; t++) {
                    pool.emplace_back([=, &b] {
                        threadIdx = {t % blk.x, (t / blk.x) % blk.y, t / (blk.x * blk.y)};
                        blockIdx = {bx, by, bz};
                        lane = t % 32;
                        warp = t / 32;
                        body();
                        // A finished thread no longer takes part in the block's or its warp's barriers.
                        b.barrier->arrive_and_drop();
                        b.warps[warp]->barrier->arrive_and_drop();
                    });
                }
                for (auto& th : pool) th.join();
                block = nullptr;
            }
}
}  // namespace emu
