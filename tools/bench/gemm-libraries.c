// GEMM and convolution libraries side by side on the models' shapes (issue #17's measurements; not part of the
// build). OpenBLAS and BLIS are opened with dlopen (both define cblas_sgemm); oneDNN is linked.
//
//   cc -O2 -o /tmp/gemm-libraries tools/bench/gemm-libraries.c -ldnnl -ldl -lm -lpthread
//   OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 BLIS_NUM_THREADS=2 /tmp/gemm-libraries
//
// Env: PROBE=1 prints only the bf16 packed-layout table (layout chosen at the actual rows vs at 256, 512, 1024,
// 4096 rows, as SanaGraph packs once for every row count). REPS (calls per round, default 5; the median of 5 rounds is printed), SPLIT=1 adds OpenBLAS run
// single-threaded on two threads splitting the rows (SanaGraph's scheme; run with OPENBLAS_NUM_THREADS=1),
// NOBLIS=1 skips BLIS, CONV=0 skips the convolutions. GFLOP/s; the error columns are max|Δ|/max|ref| against
// an fp64 product of the fp32 inputs (sampled rows). The "gemm:jit" column forces oneDNN's own sgemm (MKL's
// kernels) where it would pick another; tools/bench/gemm-torch.py times PyTorch on the same shapes.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static int REPS = 5;
#define ROUNDS 5
#define CHK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d line %d\n", #x, s_, __LINE__); exit(1); } } while (0)
// Median over ROUNDS of the mean of REPS calls, in seconds (after two warm-up calls).
#define TIME(stmt) ({ double ts_[ROUNDS]; for (int w_ = 0; w_ < 2; w_++) { stmt; } \
    for (int r_ = 0; r_ < ROUNDS; r_++) { double t0_ = now(); for (int i_ = 0; i_ < REPS; i_++) { stmt; } ts_[r_] = (now() - t0_) / REPS; } \
    qsort(ts_, ROUNDS, sizeof(double), cmpd); ts_[ROUNDS / 2]; })

static dnnl_engine_t eng;
static dnnl_stream_t stm;

static void fill(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; p[i] = ((seed >> 8) / 16777216.0f) - 0.5f; }
}

static void exec2(dnnl_primitive_t p, int a1, dnnl_memory_t m1, int a2, dnnl_memory_t m2) {
    dnnl_exec_arg_t args[2] = {{a1, m1}, {a2, m2}};
    CHK(dnnl_primitive_execute(p, stm, 2, args));
}

static dnnl_primitive_t reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    dnnl_primitive_desc_t pd; dnnl_primitive_t p;
    CHK(dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL));
    CHK(dnnl_primitive_create(&p, pd));
    return p;
}

// oneDNN matmul y[M,N] = x[M,K] W[N,K]ᵀ: weights prepacked (format any, reordered outside the timing) or plain
// ("ba"); bf16 converts x inside the timing, as SanaGraph does.
static const char *force_impl;  // an implementation name prefix to take instead of oneDNN's first choice
static double onednn_matmul_probe(int M, int K, int N, const float *A, const float *W, float *C, int bf16, int prepack,
                                  int probe_m, char *impl, size_t implsz);
static double onednn_matmul(int M, int K, int N, const float *A, const float *W, float *C, int bf16, int prepack, char *impl, size_t implsz) {
    return onednn_matmul_probe(M, K, N, A, W, C, bf16, prepack, 0, impl, implsz);
}
// probe_m > 0: the packed layout is the one oneDNN picks for probe_m rows, then used at M rows (SanaGraph packs
// once per layer for every row count).
static double onednn_matmul_probe(int M, int K, int N, const float *A, const float *W, float *C, int bf16, int prepack,
                                  int probe_m, char *impl, size_t implsz) {
    dnnl_data_type_t t = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N};
    dnnl_memory_desc_t smd, smd32, wmd, wplain, dmd;
    CHK(dnnl_memory_desc_init_by_tag(&smd, 2, sd, t, dnnl_ab));
    CHK(dnnl_memory_desc_init_by_tag(&smd32, 2, sd, dnnl_f32, dnnl_ab));
    CHK(dnnl_memory_desc_init_by_tag(&wplain, 2, wd, dnnl_f32, dnnl_ba));
    CHK(dnnl_memory_desc_init_by_tag(&wmd, 2, wd, t, prepack ? dnnl_format_tag_any : dnnl_ba));
    CHK(dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab));
    if (probe_m > 0) {
        dnnl_dims_t psd = {probe_m, K}, pdd = {probe_m, N};
        dnnl_memory_desc_t ps, pdm;
        CHK(dnnl_memory_desc_init_by_tag(&ps, 2, psd, t, dnnl_ab));
        CHK(dnnl_memory_desc_init_by_tag(&pdm, 2, pdd, dnnl_f32, dnnl_ab));
        dnnl_matmul_desc_t pmd; CHK(dnnl_matmul_desc_init(&pmd, &ps, &wmd, NULL, &pdm));
        dnnl_primitive_desc_t ppd; CHK(dnnl_primitive_desc_create(&ppd, &pmd, NULL, eng, NULL));
        wmd = *dnnl_primitive_desc_query_md(ppd, dnnl_query_weights_md, 0);
        dnnl_primitive_desc_destroy(ppd);
    }
    dnnl_matmul_desc_t md; CHK(dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd));
    dnnl_primitive_desc_t pd = NULL;
    if (force_impl) {  // the first implementation whose name starts with force_impl (none: no timing)
        dnnl_primitive_desc_iterator_t it;
        CHK(dnnl_primitive_desc_iterator_create(&it, &md, NULL, eng, NULL));
        do {
            dnnl_primitive_desc_t c = dnnl_primitive_desc_iterator_fetch(it);
            const char *name = NULL; dnnl_primitive_desc_query(c, dnnl_query_impl_info_str, 0, &name);
            if (name && !strncmp(name, force_impl, strlen(force_impl))) { pd = c; break; }
            dnnl_primitive_desc_destroy(c);
        } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
        dnnl_primitive_desc_iterator_destroy(it);
        if (!pd) { snprintf(impl, implsz, "no %s", force_impl); return 1e9; }
    } else if (dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) != dnnl_success) {
        snprintf(impl, implsz, "none");  // e.g. bf16 on a CPU without AVX-512
        return 1e9;
    }
    const char *info = NULL; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info);
    const dnnl_memory_desc_t *wl = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    char tag[64] = "";
    if (wl->format_kind == dnnl_blocked) {  // inner blocks, e.g. 16a64b2a
        char *p = tag;
        for (int i = 0; i < wl->format_desc.blocking.inner_nblks; i++)
            p += snprintf(p, tag + sizeof tag - p, "%ld%c", (long)wl->format_desc.blocking.inner_blks[i],
                          'a' + (int)wl->format_desc.blocking.inner_idxs[i]);
    }
    snprintf(impl, implsz, "%s [%s]", info, tag);
    const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_t prim; CHK(dnnl_primitive_create(&prim, pd));
    dnnl_memory_t m32, msrc, mwp, mw, mdst;
    CHK(dnnl_memory_create(&m32, &smd32, eng, (void *)A));
    CHK(dnnl_memory_create(&msrc, &smd, eng, bf16 ? DNNL_MEMORY_ALLOCATE : (void *)A));
    CHK(dnnl_memory_create(&mwp, &wplain, eng, (void *)W));
    CHK(dnnl_memory_create(&mw, wq, eng, DNNL_MEMORY_ALLOCATE));
    CHK(dnnl_memory_create(&mdst, &dmd, eng, C));
    exec2(reorder(&wplain, wq), DNNL_ARG_FROM, mwp, DNNL_ARG_TO, mw);
    dnnl_primitive_t sr = bf16 ? reorder(&smd32, &smd) : NULL;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, msrc}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mdst}};
    return TIME({ if (sr) exec2(sr, DNNL_ARG_FROM, m32, DNNL_ARG_TO, msrc); dnnl_primitive_execute(prim, stm, 3, args); dnnl_stream_wait(stm); });
}

// oneDNN convolution 3×3 pad 1 on NCHW f32 input and output (reorders to the primitive's layouts inside the
// timing, as SanaGraph does), filter prepacked.
static double onednn_conv(int C, int O, int H, int bf16, const float *x, const float *w, float *y, char *impl, size_t implsz) {
    dnnl_data_type_t t = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t sd = {1, C, H, H}, wd = {O, C, 3, 3}, dd = {1, O, H, H}, st = {1, 1}, pad = {1, 1};
    dnnl_memory_desc_t s_any, w_any, d_any, s_user, w_user, d_user;
    CHK(dnnl_memory_desc_init_by_tag(&s_any, 4, sd, t, dnnl_format_tag_any));
    CHK(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, t, dnnl_format_tag_any));
    CHK(dnnl_memory_desc_init_by_tag(&d_any, 4, dd, dnnl_f32, dnnl_format_tag_any));
    CHK(dnnl_memory_desc_init_by_tag(&s_user, 4, sd, dnnl_f32, dnnl_nchw));
    CHK(dnnl_memory_desc_init_by_tag(&w_user, 4, wd, dnnl_f32, dnnl_oihw));
    CHK(dnnl_memory_desc_init_by_tag(&d_user, 4, dd, dnnl_f32, dnnl_nchw));
    dnnl_convolution_desc_t cd;
    CHK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &s_any, &w_any, NULL, &d_any, st, pad, pad));
    dnnl_primitive_desc_t pd; CHK(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL));
    const char *info = NULL; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info); snprintf(impl, implsz, "%s", info);
    const dnnl_memory_desc_t *sq = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *wq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dq = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    dnnl_primitive_t prim; CHK(dnnl_primitive_create(&prim, pd));
    dnnl_memory_t mxu, mwu, myu, mx, mw, my;
    CHK(dnnl_memory_create(&mxu, &s_user, eng, (void *)x)); CHK(dnnl_memory_create(&mwu, &w_user, eng, (void *)w));
    CHK(dnnl_memory_create(&myu, &d_user, eng, y)); CHK(dnnl_memory_create(&mx, sq, eng, DNNL_MEMORY_ALLOCATE));
    CHK(dnnl_memory_create(&mw, wq, eng, DNNL_MEMORY_ALLOCATE)); CHK(dnnl_memory_create(&my, dq, eng, DNNL_MEMORY_ALLOCATE));
    exec2(reorder(&w_user, wq), DNNL_ARG_FROM, mwu, DNNL_ARG_TO, mw);
    dnnl_primitive_t rx = reorder(&s_user, sq), ry = reorder(dq, &d_user);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}};
    return TIME({ exec2(rx, DNNL_ARG_FROM, mxu, DNNL_ARG_TO, mx); dnnl_primitive_execute(prim, stm, 3, args);
                  exec2(ry, DNNL_ARG_FROM, my, DNNL_ARG_TO, myu); dnnl_stream_wait(stm); });
}

typedef struct { sgemm_fn f; int M, N, K; const float *A, *W; float *C; } job;
static void *runjob(void *p) { job *j = p; j->f(101, 111, 112, j->M, j->N, j->K, 1, j->A, j->K, j->W, j->K, 0, j->C, j->N); return NULL; }
// Two threads, each a single-threaded GEMM on half the rows.
static void split2(sgemm_fn f, int M, int N, int K, const float *A, const float *W, float *C) {
    int h = (M / 2 + 15) / 16 * 16;
    job a = {f, h, N, K, A, W, C}, b = {f, M - h, N, K, A + (size_t)h * K, W, C + (size_t)h * N};
    pthread_t t; pthread_create(&t, NULL, runjob, &b); runjob(&a); pthread_join(t, NULL);
}

static double error(const float *C, const float *A, const float *W, int M, int K, int N) {
    double m = 0, r = 0;
    for (int i = 0; i < M; i += 37) for (int j = 0; j < N; j++) {
        double acc = 0; for (int k = 0; k < K; k++) acc += (double)A[(size_t)i * K + k] * W[(size_t)j * K + k];
        double d = fabs(C[(size_t)i * N + j] - acc); if (d > m) m = d; if (fabs(acc) > r) r = fabs(acc);
    }
    return m / r;
}

/// Random x [M, K] and W [N, K] (seeded by `s`), room for y [M, N]; returns the product's GFLOP.
static double operands(int M, int K, int N, unsigned s, float **A, float **W, float **C) {
    *A = malloc(sizeof(float) * M * K); *W = malloc(sizeof(float) * N * K); *C = malloc(sizeof(float) * M * N);
    fill(*A, (size_t)M * K, 1 + s); fill(*W, (size_t)N * K, 100 + s);
    return 2.0 * M * K * N / 1e9;
}

static int probe_table(void) {
    // bf16 matmul with the layout chosen at the actual rows vs at 256 rows (SanaGraph's packing), GFLOP/s.
    int shapes[][3] = {{512, 1152, 1152}, {512, 1152, 5760}, {512, 2880, 1152}, {2048, 1152, 5760},
                       {504, 2304, 9216}, {504, 9216, 2304}, {741, 2304, 9216}, {741, 9216, 2304}, {504, 2304, 1024}};
    int probes[] = {0, 256, 512, 1024, 4096};
    printf("| M×K×N | bf16 layout@M | @256 | @512 | @1024 | @4096 | f32@M | kernels (@M; @256) |\n|---|---:|---:|---:|---:|---:|---:|---|\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *A, *W, *C;
        double fl = operands(M, K, N, (unsigned)s, &A, &W, &C);
        char i0[160], i256[160], scratch[160];
        printf("| %d×%d×%d", M, K, N);
        for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
            double t = onednn_matmul_probe(M, K, N, A, W, C, 1, 1, probes[p], p == 0 ? i0 : p == 1 ? i256 : scratch, 160);
            printf(" | %.0f", fl / t);
        }
        printf(" | %.0f | %s; %s |\n", fl / onednn_matmul(M, K, N, A, W, C, 0, 1, scratch, sizeof scratch), i0, i256);
        fflush(stdout);
        free(A); free(W); free(C);
    }
    return 0;
}

int main(void) {
    if (getenv("REPS")) REPS = atoi(getenv("REPS"));
    void *ob = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    void *bl = getenv("NOBLIS") ? NULL : dlopen("/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!ob) { fprintf(stderr, "no OpenBLAS: %s\n", dlerror()); return 1; }
    sgemm_fn ob_sgemm = (sgemm_fn)dlsym(ob, "cblas_sgemm"), bl_sgemm = bl ? (sgemm_fn)dlsym(bl, "cblas_sgemm") : NULL;
    char *(*corename)(void) = (char *(*)(void))dlsym(ob, "openblas_get_corename");
    CHK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHK(dnnl_stream_create(&stm, eng, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    printf("OpenBLAS core %s; oneDNN %d.%d.%d (ISA 0x%x); BLIS %s; calls per round %d, median of %d rounds\n", corename(),
           v->major, v->minor, v->patch, dnnl_get_effective_cpu_isa(), bl ? "openmp" : "skipped", REPS, ROUNDS);
    if (getenv("PROBE")) return probe_table();
    printf("| M×K×N | OpenBLAS | OpenBLAS split | BLIS | oneDNN f32 plain | oneDNN f32 packed | oneDNN f32 gemm:jit | oneDNN bf16 packed | err f32 packed | err bf16 | kernels |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    // Linear layers (rows × in × out): Sana-600M at 512 px (batch 2) and 1024 px, cross K/V, Gemma-2-2B (741 tokens),
    // DC-AE EViT qkv at 512 px.
    int shapes[][3] = {{512, 1152, 1152}, {512, 1152, 5760}, {512, 2880, 1152}, {600, 1152, 1152}, {2048, 1152, 5760},
                       {2048, 2880, 1152}, {741, 2304, 2048}, {741, 2304, 9216}, {741, 9216, 2304}, {256, 1024, 3072}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *A, *W, *C;
        double fl = operands(M, K, N, (unsigned)s, &A, &W, &C);
        char i32[128], i16[128], ipl[128];
        double t_ob = TIME(ob_sgemm(101, 111, 112, M, N, K, 1, A, K, W, K, 0, C, N));
        double t_sp = getenv("SPLIT") ? TIME(split2(ob_sgemm, M, N, K, A, W, C)) : 0;
        double t_bl = bl_sgemm ? TIME(bl_sgemm(101, 111, 112, M, N, K, 1, A, K, W, K, 0, C, N)) : 0;
        double t_pl = onednn_matmul(M, K, N, A, W, C, 0, 0, ipl, sizeof ipl);
        double t_pk = onednn_matmul(M, K, N, A, W, C, 0, 1, i32, sizeof i32);
        double e32 = error(C, A, W, M, K, N);
        char ijit[128];
        force_impl = "gemm:jit";  // oneDNN's own sgemm on plain weights, which it would not pick on AVX-512
        double t_jit = onednn_matmul(M, K, N, A, W, C, 0, 0, ijit, sizeof ijit);
        force_impl = NULL;
        double t_bf = onednn_matmul(M, K, N, A, W, C, 1, 1, i16, sizeof i16);
        double e16 = error(C, A, W, M, K, N);
        char split[16] = "–", blis[16] = "–";
        if (t_sp) snprintf(split, sizeof split, "%.0f", fl / t_sp);
        if (t_bl) snprintf(blis, sizeof blis, "%.0f", fl / t_bl);
        printf("| %d×%d×%d | %.0f | %s | %s | %.0f | %.0f | %.0f | %.0f | %.1e | %.1e | %s, %s, %s, %s |\n", M, K, N, fl / t_ob,
               split, blis, fl / t_pl, fl / t_pk, fl / t_jit, fl / t_bf, e32, e16, ipl, i32, ijit, i16);
        fflush(stdout);
        free(A); free(W); free(C);
    }
    if (getenv("CONV") && !strcmp(getenv("CONV"), "0")) return 0;
    printf("\n| conv 3×3 pad 1, NCHW in/out | oneDNN f32 | oneDNN bf16 | kernels |\n|---|---:|---:|---|\n");
    int convs[][2] = {{128, 256}, {512, 64}, {256, 128}};  // channels, side (DC-AE decoder ResBlocks, Swift rows conv2d_3x3_*)
    for (size_t s = 0; s < sizeof convs / sizeof convs[0]; s++) {
        int C = convs[s][0], H = convs[s][1];
        float *x = malloc(sizeof(float) * C * H * H), *w = malloc(sizeof(float) * C * C * 9), *y = malloc(sizeof(float) * C * H * H);
        fill(x, (size_t)C * H * H, 7); fill(w, (size_t)C * C * 9, 8);
        double fl = 2.0 * C * C * 9.0 * H * H / 1e9;
        char i32[128], i16[128];
        double t32 = onednn_conv(C, C, H, 0, x, w, y, i32, sizeof i32), t16 = onednn_conv(C, C, H, 1, x, w, y, i16, sizeof i16);
        printf("| [1,%d,%d,%d]→%d | %.0f | %.0f | %s, %s |\n", C, H, H, C, fl / t32, fl / t16, i32, i16);
        fflush(stdout);
        free(x); free(w); free(y);
    }
    return 0;
}
