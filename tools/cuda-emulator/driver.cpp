// libcuda.so.1 stand-in: the CUDA driver calls SanaGraph makes (Sources/CUDA/Driver.swift), on the CPU.
// Kernels are the project's own CUDA C (extracted by build.sh, one namespace per module), compiled here with emulator.h.
#include "emulator.h"
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels.inc"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
enum { OK = 0, INVALID_VALUE = 1, NOT_FOUND = 500, INVALID_IMAGE = 200 };

namespace {
struct Kernel {
    const char* name;
    void (*call)(void**);
};

template <typename... Args, size_t... I>
void unpack(void (*f)(Args...), void** params, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<Args>>*>(params[I])...);
}
template <auto F>
struct Caller;
template <typename... Args, void (*F)(Args...)>
struct Caller<F> {
    static void call(void** params) { unpack(F, params, std::index_sequence_for<Args...>{}); }
};

#define REGISTER(module, name) {#name, &Caller<&module::name>::call},
const Kernel kernels[] = {
#include "registry.inc"
};

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

extern "C" {
CUresult cuInit(unsigned) { return OK; }
CUresult cuDriverGetVersion(int* v) { *v = 13000; return OK; }
CUresult cuDeviceGetCount(int* n) { *n = 1; return OK; }
CUresult cuDeviceGet(int* d, int i) { if (i != 0) return INVALID_VALUE; *d = 0; return OK; }
CUresult cuDeviceGetName(char* s, int len, int) { snprintf(s, len, "SanaGraph CPU emulator"); return OK; }
CUresult cuDeviceGetAttribute(int* v, int attr, int) {
    switch (attr) {
    case 16: *v = 4; return OK;              // multiprocessors
    case 75: *v = 9; return OK;              // compute capability 9.0
    case 76: *v = 0; return OK;
    case 97: *v = 227 * 1024; return OK;     // shared memory opt-in
    default: return INVALID_VALUE;
    }
}
CUresult cuDeviceTotalMem_v2(size_t* b, int) { *b = size_t(8) << 30; return OK; }
CUresult cuDevicePrimaryCtxRetain(void** c, int) { static int ctx; *c = &ctx; return OK; }
CUresult cuCtxSetCurrent(void*) { return OK; }
CUresult cuCtxSynchronize() { return OK; }
CUresult cuMemGetInfo_v2(size_t* f, size_t* t) { *f = size_t(8) << 30; *t = size_t(8) << 30; return OK; }
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
    void* m = std::aligned_alloc(256, (n + 255) / 256 * 256);
    if (!m) return 2;
    std::memset(m, 0xA5, n);  // garbage, as fresh device memory
    *p = (CUdeviceptr)m;
    return OK;
}
CUresult cuMemFree_v2(CUdeviceptr p) { std::free((void*)p); return OK; }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, void*) { std::memcpy((void*)d, s, n); return OK; }
CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, void*) { std::memcpy(d, (void*)s, n); return OK; }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void*) { std::memmove((void*)d, (void*)s, n); return OK; }
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void*) { std::memset((void*)d, v, n); return OK; }
CUresult cuMemsetD32Async(CUdeviceptr d, unsigned v, size_t n, void*) {
    for (size_t i = 0; i < n; i++) std::memcpy((char*)d + 4 * i, &v, 4);
    return OK;
}
CUresult cuStreamCreate(void** s, unsigned) { static int stream; *s = &stream; return OK; }
CUresult cuStreamDestroy_v2(void*) { return OK; }
CUresult cuStreamSynchronize(void*) { return OK; }
CUresult cuModuleLoadData(void** m, const void* image) {
    if (std::memcmp(image, "\x7f" "ELFSGEMU", 8) != 0) return INVALID_IMAGE;
    static int module;
    *m = &module;
    return OK;
}
CUresult cuModuleGetFunction(void** f, void*, const char* name) {
    for (const Kernel& k : kernels)
        if (std::strcmp(k.name, name) == 0) { *f = (void*)&k; return OK; }
    return NOT_FOUND;
}
CUresult cuFuncSetAttribute(void*, int, int) { return OK; }
CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void*, void** params, void** extra) {
    if (!f || extra || bx * by * bz == 0 || bx * by * bz > 1024 || shared > 227 * 1024 || gx == 0 || gy == 0 || gz == 0)
        return INVALID_VALUE;
    const Kernel* k = (const Kernel*)f;
    emu::launch(dim3{gx, gy, gz}, dim3{bx, by, bz}, [&] { k->call(params); });
    return OK;
}
CUresult cuEventCreate(void** e, unsigned) { *e = new double(0); return OK; }
CUresult cuEventRecord(void* e, void*) { *(double*)e = now(); return OK; }
CUresult cuEventSynchronize(void*) { return OK; }
CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) { *ms = float((*(double*)b - *(double*)a) * 1000); return OK; }
CUresult cuEventDestroy_v2(void* e) { delete (double*)e; return OK; }
CUresult cuGetErrorName(CUresult r, const char** s) { *s = r == OK ? "CUDA_SUCCESS" : "CUDA_ERROR_EMULATED"; return OK; }
CUresult cuGetErrorString(CUresult r, const char** s) { *s = r == OK ? "no error" : "emulator: invalid call"; return OK; }
}
