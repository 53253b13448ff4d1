// SanaGraph's AMX bf16 GEMM (SanaGraphKit/Sources/CKernels/amx.c) on the models' linear shapes: GFLOP/s on
// THREADS threads (default 2; rows converted, then column blocks split, as Ops.linear does) and its error against
// an fp64 product of the bf16-rounded operands (the kernel's own arithmetic: ~1e-6) and of the fp32 operands
// (what bf16 costs: ~2e-3), and the fused SiLU's error against SiLU of the result. A benchmark and a check for
// machines without Swift; not part of the build.
//
//   clang -O2 -I SanaGraphKit/Sources/CKernels/include -o /tmp/amx-gemm tools/bench/amx-gemm.c \
//       SanaGraphKit/Sources/CKernels/amx.c SanaGraphKit/Sources/CKernels/depthwise.c \
//       SanaGraphKit/Sources/CKernels/cpu.c -lpthread -lm
//   THREADS=2 /tmp/amx-gemm
//
// NOCHECK=1 leaves out the error columns (timings only).
// EMULATE=1 runs sg_amx_gemm_emulated (the tile instructions in C) on small shapes: checks the indexing anywhere.
// COLD=N cycles through N copies of the packed weights (as a model's forward meets each weight once, from memory
// rather than cache).
#define _GNU_SOURCE
#include "CKernels.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

typedef struct {
    const float *x; uint16_t *a; const uint16_t *w; const float *bias; float *y;
    long m, k, n;
    int activation;
} job;

static int threads = 2, emulate, cold, nocheck;
static pthread_barrier_t start_b, end_b;
static job current;
static volatile int quit;

static void run_part(int t) {
    job j = current;
    long rows = (j.m + threads - 1) / threads;
    long r0 = t * rows < j.m ? t * rows : j.m, r1 = r0 + rows < j.m ? r0 + rows : j.m;
    if (t == threads - 1) r1 = j.m;
    sg_amx_convert(j.x, j.k, r0, r1, j.m, j.k, j.a);
}

static void gemm_part(int t) {
    job j = current;
    long blocks = (j.n + 31) / 32, per = (blocks + threads - 1) / threads;
    long b0 = t * per < blocks ? t * per : blocks, b1 = b0 + per < blocks ? b0 + per : blocks;
    if (b0 < b1) (emulate ? sg_amx_gemm_emulated : sg_amx_gemm)(j.a, j.m, j.k, j.w, j.n, j.bias, j.y, j.n, b0, b1, j.activation);
}

static void *worker(void *arg) {
    int t = (int)(long)arg;
    for (;;) {
        pthread_barrier_wait(&start_b);
        if (quit) return NULL;
        run_part(t);
        pthread_barrier_wait(&end_b);
        gemm_part(t);
        pthread_barrier_wait(&end_b);
    }
}

static void call(void) {
    pthread_barrier_wait(&start_b);
    run_part(0);
    pthread_barrier_wait(&end_b);
    gemm_part(0);
    pthread_barrier_wait(&end_b);
}

/// The median over `rounds` of the mean time of `reps` calls, cycling through the `cold` weight copies if any.
static double median_time(int rounds, int reps, uint16_t **copies) {
    static long next;
    double times[7];
    for (int r = 0; r < rounds; r++) {
        double total = 0;
        for (int i = 0; i < reps; i++) {
            if (copies) current.w = copies[next++ % cold];
            double t0 = now();
            call();
            total += now() - t0;
        }
        times[r] = total / reps;
    }
    qsort(times, (size_t)rounds, sizeof(double), cmpd);
    return times[rounds / 2];
}

static void fill(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; p[i] = ((seed >> 8) / 16777216.0f) - 0.5f; }
}

static float bf(float f) {
    uint32_t b; memcpy(&b, &f, 4);
    b = (b + 0x7fffu + ((b >> 16) & 1)) & 0xffff0000u;
    memcpy(&f, &b, 4); return f;
}

int main(void) {
    if (getenv("THREADS")) threads = atoi(getenv("THREADS"));
    emulate = getenv("EMULATE") != NULL;
    nocheck = getenv("NOCHECK") != NULL;
    if (getenv("COLD")) cold = atoi(getenv("COLD"));
    if (!emulate && !sg_amx_usable()) { printf("AMX not usable on this CPU/kernel\n"); return 1; }
    pthread_barrier_init(&start_b, NULL, (unsigned)threads);
    pthread_barrier_init(&end_b, NULL, (unsigned)threads);
    for (long t = 1; t < threads; t++) { pthread_t th; pthread_create(&th, NULL, worker, (void *)t); }
    int shapes[][3] = {{512, 1152, 1152}, {512, 1152, 3456}, {512, 1152, 5760}, {512, 2880, 1152}, {600, 1152, 1152},
                       {2048, 1152, 5760}, {2048, 2880, 1152}, {741, 2304, 2048}, {741, 2304, 9216}, {741, 9216, 2304},
                       {256, 1024, 3072}, {2, 256, 1152}, {300, 2304, 1152}, {37, 100, 45}, {77, 64, 96}, {5, 32, 33}};
    printf("threads %d%s\n| M×K×N | GFLOP/s | ms | ms with SiLU | pack ms (1 thread, from fp32) | err vs bf16 operands | err vs fp32 operands | fused SiLU err |\n|---|---:|---:|---:|---:|---:|---:|---:|\n", threads,
           cold > 1 ? ", weights cold (cycling copies)" : "");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (emulate && (long)shapes[s][0] * shapes[s][1] * shapes[s][2] > (getenv("EMULATE_MAX") ? atol(getenv("EMULATE_MAX")) : 50000000L)) continue;
        long M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), *y = malloc(sizeof(float) * M * N);
        float *bias = malloc(sizeof(float) * N);
        fill(x, (size_t)(M * K), 1 + (unsigned)s); fill(w, (size_t)(N * K), 100 + (unsigned)s); fill(bias, (size_t)N, 7);
        uint16_t *packed = aligned_alloc(64, (sg_amx_packed_bytes(N, K) + 63) / 64 * 64);
        uint16_t *a = aligned_alloc(64, (sg_amx_src_bytes(M, K) + 63) / 64 * 64);
        sg_amx_pack(w, 0, N, K, packed, 0, (N + 31) / 32);  // first touch of the pages outside the timing
        double t0 = now();
        sg_amx_pack(w, 0, N, K, packed, 0, (N + 31) / 32);
        double pack_ms = (now() - t0) * 1e3;
        current = (job){x, a, packed, bias, y, M, K, N};
        uint16_t **copies = NULL;
        if (cold > 1) {
            copies = malloc(sizeof *copies * (size_t)cold);
            for (int c = 0; c < cold; c++) {
                copies[c] = aligned_alloc(64, (sg_amx_packed_bytes(N, K) + 63) / 64 * 64);
                memcpy(copies[c], packed, sg_amx_packed_bytes(N, K));
            }
        }
        for (int i = 0; i < 2; i++) call();
        int reps = emulate ? 1 : M * K * N > 400000000L ? 5 : 50;
        double t = median_time(7, reps, copies);
        // The same with the fused SiLU (the DiT's conv_inverted): its cost on top of the product.
        current.activation = 1;
        double t_silu = median_time(3, reps, copies);
        current.activation = 0;
        current.w = packed;
        call();
        // Errors on sampled rows (NOCHECK=1: timings only).
        double e16 = 0, e32 = 0, ref_max = 0;
        for (long r = 0; r < M && !nocheck; r += (M > 64 ? M / 61 : 1))
            for (long c = 0; c < N; c++) {
                double s16 = bias[c], s32 = bias[c];
                for (long i = 0; i < K; i++) {
                    s16 += (double)bf(x[r * K + i]) * bf(w[c * K + i]);
                    s32 += (double)x[r * K + i] * w[c * K + i];
                }
                double v = y[r * N + c];
                if (fabs(v - s16) > e16) e16 = fabs(v - s16);
                if (fabs(v - s32) > e32) e32 = fabs(v - s32);
                if (fabs(s32) > ref_max) ref_max = fabs(s32);
            }
        // The fused SiLU against SiLU of the plain result.
        float *plain = malloc(sizeof(float) * M * N);
        memcpy(plain, y, sizeof(float) * M * N);
        current.activation = 1;
        call();
        current.activation = 0;
        double es = 0, smax = 0;
        for (long i = 0; i < M * N && !nocheck; i++) {
            double want = plain[i] / (1.0 + exp(-(double)plain[i]));
            if (fabs(y[i] - want) > es) es = fabs(y[i] - want);
            if (fabs(want) > smax) smax = fabs(want);
        }
        free(plain);
        printf("| %ld×%ld×%ld | %.0f | %.3f | %.3f | %.1f | %.1e | %.1e | %.1e |\n", M, K, N, 2.0 * M * K * N / t * 1e-9, t * 1e3,
               t_silu * 1e3, pack_ms, e16 / ref_max, e32 / ref_max, es / smax);
        fflush(stdout);
        if (copies) { for (int c = 0; c < cold; c++) free(copies[c]); free(copies); }
        free(x); free(w); free(y); free(bias); free(packed); free(a);
    }
    return 0;
}
