// OpenBLAS and oneDNN, loaded with dlopen once the process has set the environment they read at load time.
#define _GNU_SOURCE
#include "CKernels.h"
#include "dnnl_symbols.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// MARK: OpenBLAS

typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                               float *, int);
static cblas_sgemm_fn p_cblas_sgemm;
static char *(*p_openblas_get_corename)(void);
static char *(*p_openblas_get_config)(void);
static int (*p_openblas_get_num_threads)(void);

static void set_error(char *error, size_t size, const char *what, const char *detail) {
    if (error && size) snprintf(error, size, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

int sg_openblas_load(const char *path, char *error, size_t error_size) {
    if (p_cblas_sgemm) return 0;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { set_error(error, error_size, "cannot load OpenBLAS", dlerror()); return -1; }
    cblas_sgemm_fn gemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
    p_openblas_get_corename = (char *(*)(void))dlsym(h, "openblas_get_corename");
    p_openblas_get_config = (char *(*)(void))dlsym(h, "openblas_get_config");
    p_openblas_get_num_threads = (int (*)(void))dlsym(h, "openblas_get_num_threads");
    if (!gemm) { set_error(error, error_size, "no cblas_sgemm in", path); return -1; }
    p_cblas_sgemm = gemm;
    return 0;
}

int sg_openblas_loaded(void) { return p_cblas_sgemm != NULL; }
const char *sg_openblas_corename(void) { return p_openblas_get_corename ? p_openblas_get_corename() : ""; }
const char *sg_openblas_config(void) { return p_openblas_get_config ? p_openblas_get_config() : ""; }
int sg_openblas_num_threads(void) { return p_openblas_get_num_threads ? p_openblas_get_num_threads() : 0; }

void sg_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha, const float *a, long lda,
              const float *b, long ldb, float beta, float *c, long ldc) {
    // CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112.
    p_cblas_sgemm(101, trans_a ? 112 : 111, trans_b ? 112 : 111, (int)m, (int)n, (int)k, alpha, a, (int)lda, b,
                  (int)ldb, beta, c, (int)ldc);
}

// MARK: oneDNN

#define SG_DEFINE(name) __typeof__(name) *sg_p_##name;
SG_DNNL_SYMBOLS(SG_DEFINE)
#undef SG_DEFINE

dnnl_engine_t sg_dnnl_engine;
static char dnnl_version_string[32];

int sg_dnnl_load(const char *path, char *error, size_t error_size) {
    if (sg_dnnl_engine) return 0;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { set_error(error, error_size, "cannot load oneDNN", dlerror()); return -1; }
#define SG_RESOLVE(name)                                                                 \
    sg_p_##name = (__typeof__(name) *)dlsym(h, #name);                                   \
    if (!sg_p_##name) { set_error(error, error_size, "oneDNN lacks", #name); return -1; }
    SG_DNNL_SYMBOLS(SG_RESOLVE)
#undef SG_RESOLVE
    const dnnl_version_t *v = sg_p_dnnl_version();
    snprintf(dnnl_version_string, sizeof dnnl_version_string, "%d.%d.%d", v->major, v->minor, v->patch);
    dnnl_engine_t engine;
    if (sg_p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) {
        set_error(error, error_size, "oneDNN could not create its CPU engine", NULL);
        return -1;
    }
    sg_dnnl_engine = engine;
    return 0;
}

int sg_dnnl_loaded(void) { return sg_dnnl_engine != NULL; }
const char *sg_dnnl_version(void) { return sg_dnnl_engine ? dnnl_version_string : ""; }

int sg_dnnl_set_max_isa(int isa) {
    if (!sg_p_dnnl_set_max_cpu_isa) return -1;
    return sg_p_dnnl_set_max_cpu_isa((dnnl_cpu_isa_t)isa) == dnnl_success ? 0 : -1;
}

int sg_dnnl_effective_isa(void) { return sg_dnnl_engine ? (int)sg_p_dnnl_get_effective_cpu_isa() : 0; }

/// One in-order stream per thread: oneDNN streams are not meant to be shared between threads.
dnnl_stream_t sg_dnnl_stream(void) {
    static __thread dnnl_stream_t stream;
    if (!stream && sg_p_dnnl_stream_create(&stream, sg_dnnl_engine, dnnl_stream_default_flags) != dnnl_success)
        return NULL;
    return stream;
}
