// libcublasLt.so stand-in: cublasLtMatmul on the CPU with cuBLAS's documented semantics (column-major,
// D = alpha·op(A)·op(B) + beta·C + bias[row], strided batches, bf16/fp32 data, fp32 compute). Only the attributes
// SanaGraph sets are accepted; anything else is CUBLAS_STATUS_INVALID_VALUE, so the emulator fails loudly where it
// would not be faithful.
#include <cstdint>
#include <cstring>

enum { OK = 0, INVALID_VALUE = 7, NOT_SUPPORTED = 15 };
enum { R_32F = 0, R_16BF = 14, COMPUTE_32F = 68 };

struct Desc {
    int32_t compute, scale, transA = 0, transB = 0;
    uint32_t epilogue = 1;
    const void* bias = nullptr;
    int32_t biasType = -1;
};
struct Layout {
    int32_t type;
    uint64_t rows, cols;
    int64_t ld;
    int32_t batch = 1;
    int64_t stride = 0;
};
struct Pref {};

static float load(const void* p, int type, int64_t i) {
    if (type == R_32F) return ((const float*)p)[i];
    uint32_t u = uint32_t(((const uint16_t*)p)[i]) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static void store(void* p, int type, int64_t i, float f) {
    if (type == R_32F) { ((float*)p)[i] = f; return; }
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) { ((uint16_t*)p)[i] = uint16_t((u >> 16) | 0x40); return; }
    u += 0x7fffu + ((u >> 16) & 1u);
    ((uint16_t*)p)[i] = uint16_t(u >> 16);
}

extern "C" {
int cublasLtCreate(void** h) { static int handle; *h = &handle; return OK; }
size_t cublasLtGetVersion() { return 1; }
int cublasLtMatmulDescCreate(Desc** d, int32_t compute, int32_t scale) {
    if (compute != COMPUTE_32F || scale != R_32F) return NOT_SUPPORTED;
    *d = new Desc{compute, scale};
    return OK;
}
int cublasLtMatmulDescDestroy(Desc* d) { delete d; return OK; }
int cublasLtMatmulDescSetAttribute(Desc* d, int attr, const void* v, size_t n) {
    switch (attr) {
    case 3: if (n != 4) return INVALID_VALUE; std::memcpy(&d->transA, v, 4); return OK;
    case 4: if (n != 4) return INVALID_VALUE; std::memcpy(&d->transB, v, 4); return OK;
    case 7: if (n != 4) return INVALID_VALUE; std::memcpy(&d->epilogue, v, 4);
            return d->epilogue == 1 || d->epilogue == 4 ? OK : NOT_SUPPORTED;
    case 8: if (n != 8) return INVALID_VALUE; std::memcpy(&d->bias, v, 8); return OK;
    case 26: if (n != 4) return INVALID_VALUE; std::memcpy(&d->biasType, v, 4); return OK;
    default: return INVALID_VALUE;
    }
}
int cublasLtMatrixLayoutCreate(Layout** l, int32_t type, uint64_t rows, uint64_t cols, int64_t ld) {
    if ((type != R_32F && type != R_16BF) || ld < int64_t(rows)) return INVALID_VALUE;
    *l = new Layout{type, rows, cols, ld};
    return OK;
}
int cublasLtMatrixLayoutDestroy(Layout* l) { delete l; return OK; }
int cublasLtMatrixLayoutSetAttribute(Layout* l, int attr, const void* v, size_t n) {
    switch (attr) {
    case 5: if (n != 4) return INVALID_VALUE; std::memcpy(&l->batch, v, 4); return OK;
    case 6: if (n != 8) return INVALID_VALUE; std::memcpy(&l->stride, v, 8); return OK;
    default: return INVALID_VALUE;
    }
}
int cublasLtMatmulPreferenceCreate(Pref** p) { *p = new Pref; return OK; }
int cublasLtMatmulPreferenceDestroy(Pref* p) { delete p; return OK; }
int cublasLtMatmulPreferenceSetAttribute(Pref*, int attr, const void*, size_t n) {
    if (attr == 1 && n == 8) return OK;                       // max workspace
    if (attr >= 5 && attr <= 8 && n == 4) return OK;          // minimum alignments
    return INVALID_VALUE;
}

// Shapes as cuBLAS checks them: op(A) m×k, op(B) k×n, C and D m×n, one batch count.
static int check(const Desc* d, const Layout* a, const Layout* b, const Layout* c, const Layout* dd) {
    const uint64_t m = d->transA ? a->cols : a->rows, k = d->transA ? a->rows : a->cols;
    const uint64_t kb = d->transB ? b->cols : b->rows, n = d->transB ? b->rows : b->cols;
    if (k != kb || c->rows != m || c->cols != n || dd->rows != m || dd->cols != n) return INVALID_VALUE;
    if (a->type != R_16BF || b->type != R_16BF || c->type != dd->type || c->ld != dd->ld) return NOT_SUPPORTED;
    if (a->batch != dd->batch || b->batch != dd->batch || c->batch != dd->batch) return INVALID_VALUE;
    if (d->epilogue == 4 && d->biasType != -1 && d->biasType != dd->type) return NOT_SUPPORTED;
    return OK;
}

int cublasLtMatmulAlgoGetHeuristic(void*, Desc* d, Layout* a, Layout* b, Layout* c, Layout* dd, Pref*, int requested,
                                   void* results, int* found) {
    if (requested < 1) return INVALID_VALUE;
    if (int r = check(d, a, b, c, dd)) return r;
    // algo, workspaceSize 0, state CUBLAS_STATUS_SUCCESS; two (identical) answers when more are asked for, so
    // callers' loops over candidates run.
    *found = requested > 1 ? 2 : 1;
    std::memset(results, 0, 96 * (size_t)*found);
    return OK;
}

int cublasLtMatmul(void*, Desc* d, const float* alpha, const void* A, Layout* a, const void* B, Layout* b,
                   const float* beta, const void* C, Layout* c, void* D, Layout* dd, const void*, void*, size_t, void*) {
    if (int r = check(d, a, b, c, dd)) return r;
    const int64_t m = dd->rows, n = dd->cols, k = d->transA ? a->rows : a->cols;
    if (d->epilogue == 4 && !d->bias) return INVALID_VALUE;
    for (int64_t t = 0; t < dd->batch; t++) {
        const int64_t oa = t * a->stride, ob = t * b->stride, oc = t * c->stride, od = t * dd->stride;
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < m; i++) {
                float s = 0;
                for (int64_t e = 0; e < k; e++) {
                    const float x = load(A, a->type, oa + (d->transA ? e + i * a->ld : i + e * a->ld));
                    const float y = load(B, b->type, ob + (d->transB ? j + e * b->ld : e + j * b->ld));
                    s += x * y;
                }
                float v = *alpha * s;
                if (*beta != 0) v += *beta * load(C, c->type, oc + i + j * c->ld);
                if (d->epilogue == 4) v += load(d->bias, dd->type, i);
                store(D, dd->type, od + i + j * dd->ld, v);
            }
    }
    return OK;
}
}
