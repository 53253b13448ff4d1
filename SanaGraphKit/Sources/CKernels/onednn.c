// oneDNN matmul and convolution with weights packed once, in the layout the primitive chose for this CPU.
// Primitives are made per activation shape on first use and kept (a model sees a handful of shapes).
#define _GNU_SOURCE
#include "CKernels.h"
#include "dnnl_symbols.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define D(name) sg_p_##name
#define MAX_SHAPES 64

static void set_error(char *error, size_t size, const char *what, dnnl_status_t status) {
    if (error && size) snprintf(error, size, "%s (oneDNN status %d)", what, (int)status);
}

static void impl_name(const_dnnl_primitive_desc_t pd, char *impl, size_t size) {
    const char *info = NULL;
    if (impl && size && D(dnnl_primitive_desc_query)(pd, dnnl_query_impl_info_str, 0, &info) == dnnl_success && info)
        snprintf(impl, size, "%s", info);
}

/// Whether the implementation oneDNN picked is named `prefix`… ("ref", "jit").
static int impl_is(const_dnnl_primitive_desc_t pd, const char *prefix) {
    const char *info = NULL;
    return D(dnnl_primitive_desc_query)(pd, dnnl_query_impl_info_str, 0, &info) == dnnl_success && info
        && strncmp(info, prefix, strlen(prefix)) == 0;
}

/// Whether oneDNN picked its reference implementation: correct but 100–1000× slower than the JIT kernels (a
/// bf16 1×1 convolution took 30 s instead of 30 ms), so callers treat it as "no kernel for this shape".
static int is_reference(const_dnnl_primitive_desc_t pd) { return impl_is(pd, "ref"); }

// Wall time spent in sg_linear_run / sg_conv_run (conversions included) and in the AMX kernel's GEMMs
// (sg_gemm_time_add), for benchmarks that split a model's time into "GEMMs/convolutions" and "the rest".
static _Atomic long long onednn_nanoseconds, onednn_calls;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void count_call(long long start) {
    onednn_nanoseconds += now_ns() - start;
    onednn_calls += 1;
}

void sg_gemm_time_add(long long nanoseconds) {
    onednn_nanoseconds += nanoseconds;
    onednn_calls += 1;
}

void sg_onednn_time(double *seconds, long *calls) {
    *seconds = (double)onednn_nanoseconds * 1e-9;
    *calls = (long)onednn_calls;
}

// Every primitive here is made with a user-managed scratchpad and gets a private one per call. oneDNN's own
// ("library") scratchpad ties a primitive to the thread that made it in oneDNN's default build (its documentation:
// such primitives "cannot migrate between threads"), but ours are shared by every layer of a shape and run from
// whichever thread runs the node: results came out wrong when they ran elsewhere (LayerWeightsTests, concurrentUse).
static pthread_once_t attr_once = PTHREAD_ONCE_INIT;
static dnnl_primitive_attr_t user_scratchpad, user_scratchpad_silu;

static void make_user_scratchpad_attr(void) {
    if (D(dnnl_primitive_attr_create)(&user_scratchpad) != dnnl_success) { user_scratchpad = NULL; return; }
    D(dnnl_primitive_attr_set_scratchpad_mode)(user_scratchpad, dnnl_scratchpad_mode_user);
    // The same with SiLU (swish, α = 1) applied to the output as it is written: no second pass over it.
    dnnl_post_ops_t silu = NULL;
    if (D(dnnl_primitive_attr_create)(&user_scratchpad_silu) != dnnl_success) { user_scratchpad_silu = NULL; return; }
    D(dnnl_primitive_attr_set_scratchpad_mode)(user_scratchpad_silu, dnnl_scratchpad_mode_user);
    if (D(dnnl_post_ops_create)(&silu) != dnnl_success
        || D(dnnl_post_ops_append_eltwise)(silu, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f) != dnnl_success
        || D(dnnl_primitive_attr_set_post_ops)(user_scratchpad_silu, silu) != dnnl_success)
        user_scratchpad_silu = NULL;  // leaked attr on failure: once per process
    if (silu) D(dnnl_post_ops_destroy)(silu);
}

/// The attributes every primitive desc here is made with (read-only once made: oneDNN copies them).
static const_dnnl_primitive_attr_t primitive_attr(void) {
    pthread_once(&attr_once, make_user_scratchpad_attr);
    return user_scratchpad;
}

/// `primitive_attr` with a SiLU post-op (NULL if oneDNN refused it).
static const_dnnl_primitive_attr_t primitive_attr_silu(void) {
    pthread_once(&attr_once, make_user_scratchpad_attr);
    return user_scratchpad_silu;
}

/// Executes `p` on this thread's stream with a scratchpad of its own, and waits.
static dnnl_status_t execute(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    const_dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = D(dnnl_primitive_get_primitive_desc)(p, &pd);
    if (st != dnnl_success) return st;
    const dnnl_memory_desc_t *md = D(dnnl_primitive_desc_query_md)(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? D(dnnl_memory_desc_get_size)(md) : 0;
    dnnl_exec_arg_t all[8];
    memcpy(all, args, sizeof *args * (size_t)nargs);
    void *buffer = NULL;
    dnnl_memory_t scratchpad = NULL;
    if (bytes > 0) {
        if (posix_memalign(&buffer, 64, bytes) != 0) return dnnl_out_of_memory;
        if ((st = D(dnnl_memory_create)(&scratchpad, md, sg_dnnl_engine, buffer)) != dnnl_success) { free(buffer); return st; }
        all[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, scratchpad};
    }
    dnnl_stream_t s = sg_dnnl_stream();
    st = D(dnnl_primitive_execute)(p, s, nargs, all);
    if (st == dnnl_success) st = D(dnnl_stream_wait)(s);
    if (scratchpad) D(dnnl_memory_destroy)(scratchpad);
    free(buffer);
    return st;
}

static dnnl_status_t run2(dnnl_primitive_t p, int a1, dnnl_memory_t m1, int a2, dnnl_memory_t m2) {
    dnnl_exec_arg_t args[2] = {{a1, m1}, {a2, m2}};
    return execute(p, 2, args);
}

/// A reorder primitive from `from` to `to`.
/// A reorder; with `jit_only`, NULL (`dnnl_unimplemented`) where oneDNN has no JIT code for it: its generic code
/// converts bf16 element by element — packing Gemma-2-2B's bf16 weights for fp32 layers took 85 s instead of 6 on
/// an AVX2 CPU.
static dnnl_primitive_t make_reorder_if(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int jit_only,
                                        dnnl_status_t *st) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p = NULL;
    *st = D(dnnl_reorder_primitive_desc_create)(&pd, from, sg_dnnl_engine, to, sg_dnnl_engine, primitive_attr());
    if (*st != dnnl_success) return NULL;
    *st = jit_only && !impl_is(pd, "jit") ? dnnl_unimplemented : D(dnnl_primitive_create)(&p, pd);
    D(dnnl_primitive_desc_destroy)(pd);
    return *st == dnnl_success ? p : NULL;
}

static dnnl_primitive_t make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_status_t *st) {
    return make_reorder_if(from, to, 0, st);
}

/// Packs `src` (described by `from`) into a fresh 64-byte-aligned buffer described by `to`.
static void *pack(const void *src, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_status_t *st) {
    size_t bytes = D(dnnl_memory_desc_get_size)(to);
    void *dst = NULL;
    if (posix_memalign(&dst, 64, bytes ? bytes : 64) != 0) { *st = dnnl_out_of_memory; return NULL; }
    dnnl_primitive_t r = make_reorder(from, to, st);
    dnnl_memory_t ms = NULL, md = NULL;
    if (r && (*st = D(dnnl_memory_create)(&ms, from, sg_dnnl_engine, (void *)src)) == dnnl_success
        && (*st = D(dnnl_memory_create)(&md, to, sg_dnnl_engine, dst)) == dnnl_success)
        *st = run2(r, DNNL_ARG_FROM, ms, DNNL_ARG_TO, md);
    if (ms) D(dnnl_memory_destroy)(ms);
    if (md) D(dnnl_memory_destroy)(md);
    if (r) D(dnnl_primitive_destroy)(r);
    if (*st != dnnl_success) { free(dst); return NULL; }
    return dst;
}

// MARK: - Matmul
//
// A model has a few hundred linear layers but only a handful of distinct shapes (Sana-600M: 7 weight shapes),
// so everything that does not hold weights is made once per shape and shared by every layer of that shape:
// the packed layout oneDNN chose, the reorder that packs into it, and the matmul primitives per row count.
// Making them per layer cost seconds at load (one JIT-ed reorder and four primitive descriptors per layer) and
// again at the first forward. Primitives are safe to execute from several threads at once (oneDNN's library
// scratchpad is per thread); the caches live as long as the process.

typedef struct {
    long m;
    int bias, silu;
    dnnl_primitive_t matmul;
    dnnl_primitive_t src_reorder;  // f32 → bf16 rows (bf16 only)
    dnnl_memory_desc_t src_md, dst_md, bias_md, src_f32_md;
} linear_shape;

/// What every layer of one weight shape shares.
typedef struct {
    long n, k;
    int bf16;
    dnnl_memory_desc_t weights_md;  // the packed layout
    dnnl_primitive_t pack;          // plain fp32 [k, n] (ba) → weights_md
    dnnl_primitive_t pack_bf16;     // plain bf16 [k, n] (ba) → weights_md, made on first use where JIT-ed
    int pack_bf16_tried;
    int silu_refused;               // no fast matmul with the SiLU post-op: `sg_linear_run` says so at once
    char impl[128];
    linear_shape *shapes[MAX_SHAPES];
    int count;
} linear_layout;

struct sg_linear {
    long n, k;
    int bf16;
    linear_layout *layout;
    void *weights;
    dnnl_memory_t weights_mem;
};

#define MAX_LAYOUTS 256
static linear_layout *layouts[MAX_LAYOUTS];
static int layout_count;
static pthread_mutex_t layouts_lock = PTHREAD_MUTEX_INITIALIZER;

static dnnl_status_t linear_shape_make(const linear_layout *l, long m, int bias, int silu,
                                       const dnnl_memory_desc_t *weights_md, linear_shape *out,
                                       dnnl_primitive_desc_t *pd_out) {
    memset(out, 0, sizeof *out);
    out->m = m; out->bias = bias; out->silu = silu;
    const_dnnl_primitive_attr_t attr = silu ? primitive_attr_silu() : primitive_attr();
    if (!attr) return dnnl_unimplemented;
    dnnl_dims_t src = {m, l->k}, dst = {m, l->n}, b = {1, l->n};
    dnnl_data_type_t t = l->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_status_t st;
    if ((st = D(dnnl_memory_desc_init_by_tag)(&out->src_md, 2, src, t, dnnl_ab)) != dnnl_success) return st;
    if ((st = D(dnnl_memory_desc_init_by_tag)(&out->src_f32_md, 2, src, dnnl_f32, dnnl_ab)) != dnnl_success) return st;
    if ((st = D(dnnl_memory_desc_init_by_tag)(&out->dst_md, 2, dst, dnnl_f32, dnnl_ab)) != dnnl_success) return st;
    if ((st = D(dnnl_memory_desc_init_by_tag)(&out->bias_md, 2, b, dnnl_f32, dnnl_ab)) != dnnl_success) return st;
    dnnl_matmul_desc_t desc;
    st = D(dnnl_matmul_desc_init)(&desc, &out->src_md, weights_md, bias ? &out->bias_md : NULL, &out->dst_md);
    if (st != dnnl_success) return st;
    dnnl_primitive_desc_t pd;
    if ((st = D(dnnl_primitive_desc_create)(&pd, &desc, attr, sg_dnnl_engine, NULL)) != dnnl_success) return st;
    if (silu && is_reference(pd)) {  // the post-op only in oneDNN's reference code: SiLU as a pass of its own is faster
        D(dnnl_primitive_desc_destroy)(pd);
        return dnnl_unimplemented;
    }
    if (pd_out) { *pd_out = pd; return dnnl_success; }
    st = D(dnnl_primitive_create)(&out->matmul, pd);
    D(dnnl_primitive_desc_destroy)(pd);
    if (st == dnnl_success && l->bf16) out->src_reorder = make_reorder(&out->src_f32_md, &out->src_md, &st);
    return st;
}

/// The shared layout of [n, k] weights at bf16 or fp32, made on first request. Caller holds `layouts_lock`.
static linear_layout *linear_layout_get(long n, long k, int bf16, dnnl_status_t *st) {
    for (int i = 0; i < layout_count; i++)
        if (layouts[i]->n == n && layouts[i]->k == k && layouts[i]->bf16 == bf16) return layouts[i];
    linear_layout *l = calloc(1, sizeof *l);
    if (!l) { *st = dnnl_out_of_memory; return NULL; }
    l->n = n; l->k = k; l->bf16 = bf16;
    dnnl_dims_t wd = {k, n};
    dnnl_memory_desc_t any, plain;
    *st = D(dnnl_memory_desc_init_by_tag)(&any, 2, wd, bf16 ? dnnl_bf16 : dnnl_f32, dnnl_format_tag_any);
    if (*st == dnnl_success) *st = D(dnnl_memory_desc_init_by_tag)(&plain, 2, wd, dnnl_f32, dnnl_ba);
    // The layout the primitive wants for a typical row count (it did not depend on the row count in oneDNN 2.6).
    linear_shape probe;
    dnnl_primitive_desc_t pd = NULL;
    if (*st == dnnl_success) *st = linear_shape_make(l, 256, 0, 0, &any, &probe, &pd);
    if (*st == dnnl_success && is_reference(pd)) {
        D(dnnl_primitive_desc_destroy)(pd);
        *st = dnnl_unimplemented;  // the caller's own GEMM is faster than oneDNN's reference code
    }
    if (*st != dnnl_success) { free(l); return NULL; }
    impl_name(pd, l->impl, sizeof l->impl);
    l->weights_md = *D(dnnl_primitive_desc_query_md)(pd, dnnl_query_weights_md, 0);
    D(dnnl_primitive_desc_destroy)(pd);
    // Other row counts must accept the same packed layout; else keep the weights plain ([k, n] read transposed).
    for (long m = 1; m <= 8192; m *= 64) {
        dnnl_primitive_desc_t check = NULL;
        if (linear_shape_make(l, m, 1, 0, &l->weights_md, &probe, &check) != dnnl_success || is_reference(check)) {
            if (check) D(dnnl_primitive_desc_destroy)(check);
            *st = D(dnnl_memory_desc_init_by_tag)(&l->weights_md, 2, wd, bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ba);
            break;
        }
        D(dnnl_primitive_desc_destroy)(check);
    }
    if (*st == dnnl_success) l->pack = make_reorder(&plain, &l->weights_md, st);
    if (*st != dnnl_success || layout_count == MAX_LAYOUTS) {
        if (l->pack) D(dnnl_primitive_destroy)(l->pack);
        free(l);
        if (*st == dnnl_success) *st = dnnl_out_of_memory;  // more distinct shapes than any model has
        return NULL;
    }
    return layouts[layout_count++] = l;
}

sg_linear *sg_linear_create(const void *weight, int weight_bf16, long n, long k, int bf16, char *impl,
                            size_t impl_size, char *error, size_t error_size) {
    if (!sg_dnnl_engine) { set_error(error, error_size, "oneDNN is not loaded", dnnl_runtime_error); return NULL; }
    dnnl_status_t st = dnnl_success;
    dnnl_dims_t wd = {k, n};
    dnnl_memory_desc_t plain;
    D(dnnl_memory_desc_init_by_tag)(&plain, 2, wd, weight_bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ba);
    pthread_mutex_lock(&layouts_lock);
    linear_layout *layout = linear_layout_get(n, k, bf16, &st);
    dnnl_primitive_t pack = layout ? layout->pack : NULL;
    if (layout && weight_bf16) {
        // bf16 → fp32 is exact and bf16 → bf16 a layout change: packing straight from a bf16 file skips the fp32
        // copy a checkpoint would otherwise be decoded into — where oneDNN has JIT code for it (not on AVX2 CPUs);
        // without, the caller decodes to fp32 first.
        if (!layout->pack_bf16_tried) {
            layout->pack_bf16 = make_reorder_if(&plain, &layout->weights_md, 1, &st);
            layout->pack_bf16_tried = 1;
        }
        pack = layout->pack_bf16;
        if (!pack) st = dnnl_unimplemented;
    }
    pthread_mutex_unlock(&layouts_lock);
    if (!layout || !pack) {
        set_error(error, error_size, weight_bf16 && layout ? "oneDNN has no JIT code to pack bf16 weights for this matmul"
                                                          : "oneDNN has no matmul for these weights", st);
        return NULL;
    }
    if (impl && impl_size) snprintf(impl, impl_size, "%s", layout->impl);
    sg_linear *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->n = n; l->k = k; l->bf16 = bf16; l->layout = layout;
    size_t bytes = D(dnnl_memory_desc_get_size)(&layout->weights_md);
    if (posix_memalign(&l->weights, 64, bytes ? bytes : 64) != 0) { l->weights = NULL; st = dnnl_out_of_memory; }
    else {
        dnnl_memory_t ms = NULL, md = NULL;
        if ((st = D(dnnl_memory_create)(&ms, &plain, sg_dnnl_engine, (void *)weight)) == dnnl_success
            && (st = D(dnnl_memory_create)(&md, &layout->weights_md, sg_dnnl_engine, l->weights)) == dnnl_success)
            st = run2(pack, DNNL_ARG_FROM, ms, DNNL_ARG_TO, md);
        if (ms) D(dnnl_memory_destroy)(ms);
        if (md) D(dnnl_memory_destroy)(md);
    }
    if (st != dnnl_success) { set_error(error, error_size, "oneDNN could not pack the weights", st); goto fail; }
    st = D(dnnl_memory_create)(&l->weights_mem, &layout->weights_md, sg_dnnl_engine, l->weights);
    if (st != dnnl_success) { set_error(error, error_size, "oneDNN memory", st); goto fail; }
    return l;
fail:
    sg_linear_destroy(l);
    return NULL;
}

void sg_linear_destroy(sg_linear *l) {
    if (!l) return;
    if (l->weights_mem) D(dnnl_memory_destroy)(l->weights_mem);
    free(l->weights);
    free(l);
}

size_t sg_linear_bytes(const sg_linear *l) { return D(dnnl_memory_desc_get_size)(&l->layout->weights_md); }

/// Reorders packed weights described by `from` back into `to` at `dst`.
static int unpack(const void *src, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, void *dst) {
    dnnl_status_t st;
    dnnl_primitive_t r = make_reorder(from, to, &st);
    dnnl_memory_t ms = NULL, md = NULL;
    if (r && (st = D(dnnl_memory_create)(&ms, from, sg_dnnl_engine, (void *)src)) == dnnl_success
        && (st = D(dnnl_memory_create)(&md, to, sg_dnnl_engine, dst)) == dnnl_success)
        st = run2(r, DNNL_ARG_FROM, ms, DNNL_ARG_TO, md);
    if (ms) D(dnnl_memory_destroy)(ms);
    if (md) D(dnnl_memory_destroy)(md);
    if (r) D(dnnl_primitive_destroy)(r);
    return (int)st;
}

int sg_linear_unpack(const sg_linear *l, float *weight) {
    dnnl_dims_t wd = {l->k, l->n};
    dnnl_memory_desc_t plain;
    D(dnnl_memory_desc_init_by_tag)(&plain, 2, wd, dnnl_f32, dnnl_ba);
    return unpack(l->weights, &l->layout->weights_md, &plain, weight);
}

size_t sg_linear_scratch_bytes(const sg_linear *l, long m) { return l->bf16 ? (size_t)m * (size_t)l->k * 2 : 0; }

/// The primitives for `m` rows, shared by the layers of one layout: made on first use, kept (up to MAX_SHAPES;
/// beyond that made per call).
static linear_shape *linear_shape_get(linear_layout *l, long m, int bias, int silu, int *transient, dnnl_status_t *st) {
    *transient = 0;
    pthread_mutex_lock(&layouts_lock);
    if (silu && l->silu_refused) {
        pthread_mutex_unlock(&layouts_lock);
        *st = dnnl_unimplemented;
        return NULL;
    }
    for (int i = 0; i < l->count; i++) {
        if (l->shapes[i]->m == m && l->shapes[i]->bias == bias && l->shapes[i]->silu == silu) {
            linear_shape *s = l->shapes[i];
            pthread_mutex_unlock(&layouts_lock);
            return s;
        }
    }
    linear_shape *s = malloc(sizeof *s);
    *st = s ? linear_shape_make(l, m, bias, silu, &l->weights_md, s, NULL) : dnnl_out_of_memory;
    if (*st == dnnl_unimplemented && silu) l->silu_refused = 1;  // not asked again per call
    if (*st != dnnl_success) { free(s); s = NULL; }
    else if (l->count < MAX_SHAPES) l->shapes[l->count++] = s;
    else *transient = 1;
    pthread_mutex_unlock(&layouts_lock);
    return s;
}

int sg_linear_run(sg_linear *l, const float *x, long m, const float *bias, int silu, float *y, void *scratch) {
    long long start = now_ns();
    dnnl_status_t st = dnnl_success;
    int transient;
    linear_shape *s = linear_shape_get(l->layout, m, bias != NULL, silu != 0, &transient, &st);
    if (!s) return (int)st;
    dnnl_memory_t src = NULL, src32 = NULL, dst = NULL, b = NULL;
    if (l->bf16) {
        if ((st = D(dnnl_memory_create)(&src32, &s->src_f32_md, sg_dnnl_engine, (void *)x)) != dnnl_success) goto done;
        if ((st = D(dnnl_memory_create)(&src, &s->src_md, sg_dnnl_engine, scratch)) != dnnl_success) goto done;
        if ((st = run2(s->src_reorder, DNNL_ARG_FROM, src32, DNNL_ARG_TO, src)) != dnnl_success) goto done;
    } else if ((st = D(dnnl_memory_create)(&src, &s->src_md, sg_dnnl_engine, (void *)x)) != dnnl_success) goto done;
    if ((st = D(dnnl_memory_create)(&dst, &s->dst_md, sg_dnnl_engine, y)) != dnnl_success) goto done;
    if (bias && (st = D(dnnl_memory_create)(&b, &s->bias_md, sg_dnnl_engine, (void *)bias)) != dnnl_success) goto done;
    {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, l->weights_mem}, {DNNL_ARG_DST, dst},
                                   {DNNL_ARG_BIAS, b}};
        st = execute(s->matmul, bias ? 4 : 3, args);
    }
done:
    if (src) D(dnnl_memory_destroy)(src);
    if (src32) D(dnnl_memory_destroy)(src32);
    if (dst) D(dnnl_memory_destroy)(dst);
    if (b) D(dnnl_memory_destroy)(b);
    if (transient) {
        D(dnnl_primitive_destroy)(s->matmul);
        if (s->src_reorder) D(dnnl_primitive_destroy)(s->src_reorder);
        free(s);
    }
    count_call(start);
    return (int)st;
}

// MARK: - Convolution

typedef struct {
    long n, h, w;
    dnnl_primitive_t conv, src_reorder, dst_reorder;
    // The filter repacked for this size, when its kernel wants another layout than the shared one (else NULL).
    void *weights;
    dnnl_memory_t weights_mem;
    char impl[96];
    int channels_last;  // the primitive reads bf16 NHWC and writes fp32 NHWC (`sg_conv_channels_last`)
    dnnl_memory_desc_t user_src, user_dst, src_md, dst_md;
    size_t src_bytes, dst_bytes;  // scratch for src / dst when they need a reorder (0 otherwise)
} conv_shape;

struct sg_conv {
    long cout, cin, kh, kw, sh, sw, ph, pw, groups;
    int bf16;
    dnnl_memory_desc_t weights_md, bias_md;
    void *weights;
    float *bias;
    dnnl_memory_t weights_mem, bias_mem;
    pthread_mutex_t lock;
    conv_shape *shapes[MAX_SHAPES];
    int count;
};

/// The filter as PyTorch holds it, fp32: [cout, cin, kh, kw], or 5-D [g, cout/g, cin/g, kh, kw] when grouped
/// (the same bytes as PyTorch's [cout, cin/g, kh, kw]).
static dnnl_memory_desc_t conv_plain_md(const sg_conv *c) {
    dnnl_memory_desc_t md;
    if (c->groups > 1) {
        dnnl_dims_t wd = {c->groups, c->cout / c->groups, c->cin / c->groups, c->kh, c->kw};
        D(dnnl_memory_desc_init_by_tag)(&md, 5, wd, dnnl_f32, dnnl_goihw);
    } else {
        dnnl_dims_t wd = {c->cout, c->cin, c->kh, c->kw};
        D(dnnl_memory_desc_init_by_tag)(&md, 4, wd, dnnl_f32, dnnl_oihw);
    }
    return md;
}

static dnnl_status_t conv_desc(sg_conv *c, long n, long h, long w, const dnnl_memory_desc_t *weights_md,
                               dnnl_primitive_desc_t *pd, conv_shape *s) {
    long ho = (h + 2 * c->ph - c->kh) / c->sh + 1, wo = (w + 2 * c->pw - c->kw) / c->sw + 1;
    dnnl_dims_t src = {n, c->cin, h, w}, dst = {n, c->cout, ho, wo};
    dnnl_dims_t strides = {c->sh, c->sw}, pad = {c->ph, c->pw};
    dnnl_memory_desc_t src_any, dst_any;
    dnnl_data_type_t t = c->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_status_t st;
    if ((st = D(dnnl_memory_desc_init_by_tag)(&src_any, 4, src, t, dnnl_format_tag_any)) != dnnl_success) return st;
    if ((st = D(dnnl_memory_desc_init_by_tag)(&dst_any, 4, dst, dnnl_f32, dnnl_format_tag_any)) != dnnl_success) return st;
    if (s) {
        memset(s, 0, sizeof *s);
        s->n = n; s->h = h; s->w = w;
        D(dnnl_memory_desc_init_by_tag)(&s->user_src, 4, src, dnnl_f32, dnnl_nchw);
        D(dnnl_memory_desc_init_by_tag)(&s->user_dst, 4, dst, dnnl_f32, dnnl_nchw);
    }
    dnnl_convolution_desc_t desc;
    st = D(dnnl_convolution_forward_desc_init)(&desc, dnnl_forward_inference, dnnl_convolution_direct, &src_any,
                                               weights_md, c->bias ? &c->bias_md : NULL, &dst_any, strides, pad, pad);
    if (st != dnnl_success) return st;
    return D(dnnl_primitive_desc_create)(pd, &desc, primitive_attr(), sg_dnnl_engine, NULL);
}

sg_conv *sg_conv_create(const float *weight, const float *bias, long cout, long cin, long kh, long kw,
                        long stride_h, long stride_w, long pad_h, long pad_w, long groups, int bf16,
                        long hint_h, long hint_w, char *impl, size_t impl_size, char *error, size_t error_size) {
    if (!sg_dnnl_engine) { set_error(error, error_size, "oneDNN is not loaded", dnnl_runtime_error); return NULL; }
    sg_conv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cout = cout; c->cin = cin; c->kh = kh; c->kw = kw; c->sh = stride_h; c->sw = stride_w;
    c->ph = pad_h; c->pw = pad_w; c->groups = groups; c->bf16 = bf16;
    pthread_mutex_init(&c->lock, NULL);
    dnnl_memory_desc_t plain = conv_plain_md(c), any = plain;
    dnnl_status_t st = D(dnnl_memory_desc_init_by_tag)(&any, plain.ndims, plain.dims, bf16 ? dnnl_bf16 : dnnl_f32,
                                                       dnnl_format_tag_any);
    if (bias) {
        dnnl_dims_t bd = {cout};
        D(dnnl_memory_desc_init_by_tag)(&c->bias_md, 1, bd, dnnl_f32, dnnl_a);
        c->bias = malloc(sizeof(float) * (size_t)cout);
        if (!c->bias) goto fail;
        memcpy(c->bias, bias, sizeof(float) * (size_t)cout);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success) st = conv_desc(c, 1, hint_h, hint_w, &any, &pd, NULL);
    if (st != dnnl_success) { set_error(error, error_size, "oneDNN has no convolution for this filter", st); goto fail; }
    impl_name(pd, impl, impl_size);
    c->weights_md = *D(dnnl_primitive_desc_query_md)(pd, dnnl_query_weights_md, 0);
    D(dnnl_primitive_desc_destroy)(pd);
    c->weights = pack(weight, &plain, &c->weights_md, &st);
    if (!c->weights) { set_error(error, error_size, "oneDNN could not pack the filter", st); goto fail; }
    if ((st = D(dnnl_memory_create)(&c->weights_mem, &c->weights_md, sg_dnnl_engine, c->weights)) != dnnl_success
        || (bias && (st = D(dnnl_memory_create)(&c->bias_mem, &c->bias_md, sg_dnnl_engine, c->bias)) != dnnl_success)) {
        set_error(error, error_size, "oneDNN memory", st);
        goto fail;
    }
    return c;
fail:
    sg_conv_destroy(c);
    return NULL;
}

static void conv_shape_free(conv_shape *s) {
    if (s->conv) D(dnnl_primitive_destroy)(s->conv);
    if (s->weights_mem) D(dnnl_memory_destroy)(s->weights_mem);
    free(s->weights);
    if (s->src_reorder) D(dnnl_primitive_destroy)(s->src_reorder);
    if (s->dst_reorder) D(dnnl_primitive_destroy)(s->dst_reorder);
    free(s);
}

void sg_conv_destroy(sg_conv *c) {
    if (!c) return;
    for (int i = 0; i < c->count; i++) conv_shape_free(c->shapes[i]);
    if (c->weights_mem) D(dnnl_memory_destroy)(c->weights_mem);
    if (c->bias_mem) D(dnnl_memory_destroy)(c->bias_mem);
    free(c->weights);
    free(c->bias);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

size_t sg_conv_bytes(const sg_conv *c) {
    return D(dnnl_memory_desc_get_size)(&c->weights_md) + (c->bias ? sizeof(float) * (size_t)c->cout : 0);
}

int sg_conv_unpack(const sg_conv *c, float *weight) {
    dnnl_memory_desc_t plain = conv_plain_md(c);
    return unpack(c->weights, &c->weights_md, &plain, weight);
}


/// The primitives for one input size, made on first use. A filter whose packed layout this size cannot use
/// fails here (the caller falls back to its own convolution).
static conv_shape *conv_shape_get(sg_conv *c, long n, long h, long w, int *transient, dnnl_status_t *st) {
    *transient = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->count; i++) {
        conv_shape *s = c->shapes[i];
        if (s->n == n && s->h == h && s->w == w) { pthread_mutex_unlock(&c->lock); return s; }
    }
    conv_shape *s = calloc(1, sizeof *s);
    dnnl_primitive_desc_t pd = NULL;
    *st = s ? conv_desc(c, n, h, w, &c->weights_md, &pd, s) : dnnl_out_of_memory;
    if (*st == dnnl_success && is_reference(pd)) {
        // The packed layout (chosen at the hint size) has no fast kernel at this size, e.g. bf16 1×1 filters
        // blocked by 48 at 16×16 inputs: ask for the layout this size wants and repack the filter into it once.
        D(dnnl_primitive_desc_destroy)(pd);
        pd = NULL;
        dnnl_memory_desc_t any = c->weights_md;
        *st = D(dnnl_memory_desc_init_by_tag)(&any, c->weights_md.ndims, c->weights_md.dims, c->weights_md.data_type,
                                              dnnl_format_tag_any);
        if (*st == dnnl_success) *st = conv_desc(c, n, h, w, &any, &pd, s);
        if (*st == dnnl_success && is_reference(pd)) *st = dnnl_unimplemented;
        if (*st == dnnl_success) {
            // Through plain fp32: oneDNN reorders between two blocked bf16 layouts only with its slow generic code.
            const dnnl_memory_desc_t *wmd = D(dnnl_primitive_desc_query_md)(pd, dnnl_query_weights_md, 0);
            dnnl_memory_desc_t plain = conv_plain_md(c);
            float *f32 = malloc(D(dnnl_memory_desc_get_size)(&plain));
            *st = !f32 ? dnnl_out_of_memory : (dnnl_status_t)unpack(c->weights, &c->weights_md, &plain, f32);
            if (*st == dnnl_success) s->weights = pack(f32, &plain, wmd, st);
            free(f32);
            if (s->weights) *st = D(dnnl_memory_create)(&s->weights_mem, wmd, sg_dnnl_engine, s->weights);
        }
        if (*st != dnnl_success && pd) { D(dnnl_primitive_desc_destroy)(pd); pd = NULL; }
    }
    if (*st == dnnl_success) {
        impl_name(pd, s->impl, sizeof s->impl);
        s->src_md = *D(dnnl_primitive_desc_query_md)(pd, dnnl_query_src_md, 0);
        s->dst_md = *D(dnnl_primitive_desc_query_md)(pd, dnnl_query_dst_md, 0);
        *st = D(dnnl_primitive_create)(&s->conv, pd);
        D(dnnl_primitive_desc_destroy)(pd);
    }
    if (*st == dnnl_success) {
        dnnl_memory_desc_t src, dst;
        D(dnnl_memory_desc_init_by_tag)(&src, 4, s->src_md.dims, dnnl_bf16, dnnl_nhwc);
        D(dnnl_memory_desc_init_by_tag)(&dst, 4, s->dst_md.dims, dnnl_f32, dnnl_nhwc);
        s->channels_last = D(dnnl_memory_desc_equal)(&src, &s->src_md) && D(dnnl_memory_desc_equal)(&dst, &s->dst_md);
    }
    if (*st == dnnl_success && !D(dnnl_memory_desc_equal)(&s->src_md, &s->user_src)) {
        s->src_reorder = make_reorder(&s->user_src, &s->src_md, st);
        s->src_bytes = (D(dnnl_memory_desc_get_size)(&s->src_md) + 63) / 64 * 64;
    }
    if (*st == dnnl_success && !D(dnnl_memory_desc_equal)(&s->dst_md, &s->user_dst)) {
        s->dst_reorder = make_reorder(&s->dst_md, &s->user_dst, st);
        s->dst_bytes = (D(dnnl_memory_desc_get_size)(&s->dst_md) + 63) / 64 * 64;
    }
    if (*st != dnnl_success) {
        if (s) conv_shape_free(s);
        s = NULL;
    } else if (c->count < MAX_SHAPES) {
        c->shapes[c->count++] = s;
    } else {
        *transient = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

size_t sg_conv_scratch_bytes(sg_conv *c, long n, long h, long w) {
    dnnl_status_t st;
    int transient;
    conv_shape *s = conv_shape_get(c, n, h, w, &transient, &st);
    if (!s) return (size_t)-1;
    size_t bytes = s->src_bytes + s->dst_bytes;
    if (transient) conv_shape_free(s);
    return bytes;
}

int sg_conv_impl(sg_conv *c, long n, long h, long w, char *impl, size_t impl_size) {
    dnnl_status_t st;
    int transient;
    conv_shape *s = conv_shape_get(c, n, h, w, &transient, &st);
    if (!s) return -1;
    snprintf(impl, impl_size, "%s", s->impl);
    if (transient) conv_shape_free(s);
    return 0;
}

int sg_conv_channels_last(sg_conv *c, long n, long h, long w) {
    dnnl_status_t st;
    int transient;
    conv_shape *s = conv_shape_get(c, n, h, w, &transient, &st);
    if (!s) return -1;
    int channels_last = s->channels_last;
    if (transient) conv_shape_free(s);
    return channels_last;
}

/// x and y in SanaGraph's NCHW fp32 (reordered to and from the primitive's layouts through `scratch`), or, when
/// `native`, already in the primitive's own layouts.
static int conv_run(sg_conv *c, const void *x, long n, long h, long w, float *y, int native, void *scratch) {
    long long start = now_ns();
    dnnl_status_t st = dnnl_success;
    int transient;
    conv_shape *s = conv_shape_get(c, n, h, w, &transient, &st);
    if (!s) return (int)st;
    dnnl_memory_t user_src = NULL, user_dst = NULL, src = NULL, dst = NULL;
    char *buffer = scratch;
    if (native) {
        if ((st = D(dnnl_memory_create)(&src, &s->src_md, sg_dnnl_engine, (void *)x)) != dnnl_success) goto done;
        if ((st = D(dnnl_memory_create)(&dst, &s->dst_md, sg_dnnl_engine, y)) != dnnl_success) goto done;
    } else {
        if ((st = D(dnnl_memory_create)(&user_src, &s->user_src, sg_dnnl_engine, (void *)x)) != dnnl_success) goto done;
        if ((st = D(dnnl_memory_create)(&user_dst, &s->user_dst, sg_dnnl_engine, y)) != dnnl_success) goto done;
    }
    if (s->src_reorder && !native) {
        if ((st = D(dnnl_memory_create)(&src, &s->src_md, sg_dnnl_engine, buffer)) != dnnl_success) goto done;
        if ((st = run2(s->src_reorder, DNNL_ARG_FROM, user_src, DNNL_ARG_TO, src)) != dnnl_success) goto done;
    }
    if (s->dst_reorder && !native
        && (st = D(dnnl_memory_create)(&dst, &s->dst_md, sg_dnnl_engine, buffer + s->src_bytes)) != dnnl_success)
        goto done;
    {
        dnnl_memory_t weights = s->weights_mem ? s->weights_mem : c->weights_mem;
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, src ? src : user_src}, {DNNL_ARG_WEIGHTS, weights},
                                   {DNNL_ARG_DST, dst ? dst : user_dst}, {DNNL_ARG_BIAS, c->bias_mem}};
        st = execute(s->conv, c->bias ? 4 : 3, args);
    }
    if (st == dnnl_success && dst && !native) st = run2(s->dst_reorder, DNNL_ARG_FROM, dst, DNNL_ARG_TO, user_dst);
done:
    if (user_src) D(dnnl_memory_destroy)(user_src);
    if (user_dst) D(dnnl_memory_destroy)(user_dst);
    if (src) D(dnnl_memory_destroy)(src);
    if (dst) D(dnnl_memory_destroy)(dst);
    if (transient) conv_shape_free(s);
    count_call(start);
    return (int)st;
}

int sg_conv_run(sg_conv *c, const float *x, long n, long h, long w, float *y, void *scratch) {
    return conv_run(c, x, n, h, w, y, 0, scratch);
}

int sg_conv_run_channels_last(sg_conv *c, const uint16_t *x, long n, long h, long w, float *y) {
    return conv_run(c, x, n, h, w, y, 1, NULL);
}
